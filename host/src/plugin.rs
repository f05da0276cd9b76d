//! Loading the configured plugin (built-in or `[sink] plugin`), its sandbox and secrets, and
//! a worker thread that owns the instance so async code can call it.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::oneshot;

use crate::config::PipelineConfig;
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::runtime::{Limits, Plugin, PluginRuntime};
use crate::sandbox::AllowList;
use crate::secrets::Masker;

/// A plugin ready to be configured, with what the host knows about it.
pub struct Loaded {
    pub manifest: Manifest,
    pub plugin: Plugin,
    pub masker: Masker,
    pub secret_names: Vec<String>,
}

/// The secret values of the settings, as the manifest's schema marks them.
pub fn masker_for(manifest: &Manifest, settings: &serde_json::Value) -> Masker {
    let names = manifest.secret_settings();
    Masker::new(
        names
            .iter()
            .filter_map(|n| settings.get(n).and_then(|v| v.as_str()).map(str::to_string)),
    )
}

/// Load and instantiate the plugin of a pipeline (not configured yet).
pub fn load(cfg: &PipelineConfig, metrics: Arc<Metrics>) -> Result<Loaded> {
    let (manifest, wasm) = match &cfg.sink.plugin {
        None => (
            Manifest::parse(crate::builtin::MANIFEST)?,
            crate::builtin::COMPONENT.to_vec(),
        ),
        Some(path) => {
            let (m, component) = Manifest::load(path)?;
            let wasm = std::fs::read(&component).with_context(|| {
                format!("cannot read the plugin component {}", component.display())
            })?;
            (m, wasm)
        }
    };
    let masker = masker_for(&manifest, &cfg.sink.settings);
    let mut allow = AllowList::new(&manifest.capabilities.outbound_hosts)
        .map_err(|e| anyhow::anyhow!("plugin manifest capabilities: {e}"))?;
    for h in &cfg.sink.allow_hosts {
        allow
            .add(h)
            .map_err(|e| anyhow::anyhow!("[sink] allow_hosts: {e}"))?;
    }
    if let Some(url) = cfg.console_url() {
        // A bad URL is the plugin's to report (configure); here it only grants nothing.
        let _ = allow.add_url(url);
    }
    let limits = Limits {
        memory_bytes: cfg.sink.memory_limit_bytes,
        call_timeout: cfg.sink.call_timeout,
    };
    let rt = PluginRuntime::new(&wasm, limits, allow, metrics, masker.clone())?;
    let plugin = Plugin::new(rt, cfg.sink.settings.to_string())?;
    let secret_names = manifest.secret_settings();
    Ok(Loaded {
        manifest,
        plugin,
        masker,
        secret_names,
    })
}

type Job = Box<dyn FnOnce(&mut Plugin) + Send>;

/// Owns a [`Plugin`] on its own thread (wasmtime calls block; the HTTP they make runs on
/// wasmtime-wasi's runtime). Cheap to clone.
#[derive(Clone)]
pub struct PluginWorker {
    tx: std::sync::mpsc::Sender<Job>,
}

impl PluginWorker {
    pub fn spawn(mut plugin: Plugin) -> PluginWorker {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("dbaudit-plugin".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut plugin);
                }
            })
            .expect("spawn the plugin thread");
        PluginWorker { tx }
    }

    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Plugin) -> R + Send + 'static,
    ) -> Result<R> {
        let (otx, orx) = oneshot::channel();
        self.tx
            .send(Box::new(move |p| {
                let _ = otx.send(f(p));
            }))
            .map_err(|_| anyhow::anyhow!("the plugin thread is gone"))?;
        orx.await
            .map_err(|_| anyhow::anyhow!("the plugin thread stopped during a call"))
    }
}
