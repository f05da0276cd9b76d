//! What the emulated tenant contains: tokens with their scopes, accounts, sites, switches.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default account, site and token of [`EmulatorConfig::default`].
pub const DEFAULT_ACCOUNT_ID: &str = "123456789";
pub const DEFAULT_ACCOUNT_NAME: &str = "DB Audit Demo";
pub const DEFAULT_SITE_ID: &str = "987654321";
pub const DEFAULT_SITE_NAME: &str = "Default site";
pub const DEFAULT_TOKEN: &str = "s1-demo-token";
/// nginx in front of the console limits bodies; 5 MiB unless configured.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// The accounts and sites a token may use. A site is also usable when its account is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenScope {
    pub account_ids: Vec<String>,
    pub site_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub account_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulatorConfig {
    /// API token -> scope.
    pub tokens: BTreeMap<String, TokenScope>,
    pub accounts: Vec<Account>,
    pub sites: Vec<Site>,
    /// Per-path rate limits as published by SentinelOne (off by default).
    pub rate_limits: bool,
    /// Bodies above this answer 413 (nginx page).
    pub max_body_bytes: usize,
    /// Validate events and rules strictly (on by default).
    pub validate: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig::empty()
            .with_account(DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_NAME)
            .with_site(DEFAULT_SITE_ID, DEFAULT_ACCOUNT_ID, DEFAULT_SITE_NAME)
            .with_token(
                DEFAULT_TOKEN,
                TokenScope {
                    account_ids: vec![DEFAULT_ACCOUNT_ID.into()],
                    site_ids: vec![DEFAULT_SITE_ID.into()],
                },
            )
    }
}

impl EmulatorConfig {
    /// No tokens, accounts or sites; default switches.
    pub fn empty() -> Self {
        EmulatorConfig {
            tokens: BTreeMap::new(),
            accounts: Vec::new(),
            sites: Vec::new(),
            rate_limits: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            validate: true,
        }
    }

    pub fn with_account(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.accounts.push(Account {
            id: id.into(),
            name: name.into(),
        });
        self
    }

    pub fn with_site(
        mut self,
        id: impl Into<String>,
        account_id: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        self.sites.push(Site {
            id: id.into(),
            name: name.into(),
            account_id: account_id.into(),
        });
        self
    }

    pub fn with_token(mut self, token: impl Into<String>, scope: TokenScope) -> Self {
        self.tokens.insert(token.into(), scope);
        self
    }

    /// Adds a token scoped to every account and site configured so far.
    pub fn with_full_token(self, token: impl Into<String>) -> Self {
        let scope = TokenScope {
            account_ids: self.accounts.iter().map(|a| a.id.clone()).collect(),
            site_ids: self.sites.iter().map(|s| s.id.clone()).collect(),
        };
        self.with_token(token, scope)
    }

    pub fn rate_limits(mut self, on: bool) -> Self {
        self.rate_limits = on;
        self
    }

    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    pub fn validate(mut self, on: bool) -> Self {
        self.validate = on;
        self
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.id == id)
    }

    /// Rejects configurations that reference accounts or sites that do not exist.
    pub fn check(&self) -> anyhow::Result<()> {
        for s in &self.sites {
            if self.account(&s.account_id).is_none() {
                anyhow::bail!("site {} refers to unknown account {}", s.id, s.account_id);
            }
        }
        for (token, scope) in &self.tokens {
            if token.is_empty() {
                anyhow::bail!("empty token");
            }
            for a in &scope.account_ids {
                if self.account(a).is_none() {
                    anyhow::bail!("a token's scope names unknown account {a}");
                }
            }
            for s in &scope.site_ids {
                if self.site(s).is_none() {
                    anyhow::bail!("a token's scope names unknown site {s}");
                }
            }
        }
        Ok(())
    }
}
