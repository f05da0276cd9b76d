//! `plugin.toml`: what a plugin is, what it may reach, and its settings schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub plugin: PluginInfo,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub settings: BTreeMap<String, SettingSchema>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub world: String,
    /// The component file, relative to the manifest.
    pub component: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts the plugin may reach over HTTP: `host`, `host:port` or `*.domain`.
    #[serde(default)]
    pub outbound_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SettingSchema {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    #[serde(default)]
    pub items: Option<String>,
    #[serde(default)]
    pub description: String,
}

impl SettingSchema {
    /// Whether values of this setting must never be shown.
    pub fn is_secret(&self) -> bool {
        self.secret || self.kind == "password"
    }
}

/// The world every plugin must implement.
pub const WORLD: &str = "dbaudit:sink/siem-sink@0.1.0";

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest> {
        let m: Manifest = toml::from_str(text).context("invalid plugin manifest")?;
        if m.plugin.world != WORLD {
            anyhow::bail!(
                "plugin manifest declares world `{}`, this host implements `{WORLD}`",
                m.plugin.world
            );
        }
        Ok(m)
    }

    pub fn load(path: &Path) -> Result<(Manifest, PathBuf)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read plugin manifest {}", path.display()))?;
        let m = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let component = dir.join(&m.plugin.component);
        Ok((m, component))
    }

    /// Names of the settings whose values are secrets.
    pub fn secret_settings(&self) -> Vec<String> {
        self.settings
            .iter()
            .filter(|(_, s)| s.is_secret())
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses() {
        let m = Manifest::parse(crate::builtin::MANIFEST).unwrap();
        assert_eq!(m.plugin.name, "sentinelone");
        assert!(m.secret_settings().contains(&"api_token".to_string()));
        assert!(!m.capabilities.outbound_hosts.is_empty());
    }

    #[test]
    fn wrong_world_is_refused() {
        let text = crate::builtin::MANIFEST.replace(WORLD, "x:y/z@1.0.0");
        assert!(Manifest::parse(&text).is_err());
    }
}
