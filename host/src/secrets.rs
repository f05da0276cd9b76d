//! Masking of secret setting values in every output (logs, errors, dead letters, validate).

use std::sync::Arc;

pub const MASK: &str = "********";

/// Replaces every known secret value in a text with [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Arc<Vec<String>>,
}

impl Masker {
    pub fn new(values: impl IntoIterator<Item = String>) -> Masker {
        let mut v: Vec<String> = values.into_iter().filter(|s| s.len() >= 3).collect();
        // Longest first so that a secret containing another is masked whole.
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v.dedup();
        Masker {
            secrets: Arc::new(v),
        }
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// A copy of a settings object with the secret fields replaced by [`MASK`].
    pub fn mask_settings(
        &self,
        settings: &serde_json::Value,
        secret_names: &[String],
    ) -> serde_json::Value {
        let mut v = settings.clone();
        if let Some(obj) = v.as_object_mut() {
            for name in secret_names {
                if let Some(x) = obj.get_mut(name) {
                    *x = serde_json::Value::String(MASK.into());
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence() {
        let m = Masker::new(["s3cr3t-token".to_string()]);
        assert_eq!(
            m.mask("Authorization: ApiToken s3cr3t-token (s3cr3t-token)"),
            format!("Authorization: ApiToken {MASK} ({MASK})")
        );
        assert_eq!(m.mask("nothing here"), "nothing here");
    }
}
