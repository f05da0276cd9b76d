//! `Authorization: ApiToken <token>` and what a token may touch.

use crate::config::{Account, EmulatorConfig, Site, TokenScope};

/// The token from an `Authorization` header value, if it uses the `ApiToken` scheme.
pub(crate) fn token_from_header(value: Option<&str>) -> Option<&str> {
    let v = value?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("ApiToken") && !token.is_empty()).then_some(token)
}

/// A known token's view of the tenant.
pub(crate) struct Scope<'a> {
    pub scope: &'a TokenScope,
    pub config: &'a EmulatorConfig,
}

impl<'a> Scope<'a> {
    /// None for a missing or unknown token (answer 401).
    pub fn resolve(config: &'a EmulatorConfig, token: Option<&'a str>) -> Option<Scope<'a>> {
        let token = token?;
        let scope = config.tokens.get(token)?;
        Some(Scope { scope, config })
    }

    pub fn can_account(&self, id: &str) -> bool {
        self.scope.account_ids.iter().any(|a| a == id)
    }

    /// A site is usable when named in the scope or when its account is.
    pub fn can_site(&self, id: &str) -> bool {
        self.scope.site_ids.iter().any(|s| s == id)
            || self
                .config
                .site(id)
                .is_some_and(|s| self.can_account(&s.account_id))
    }

    /// Accounts the token sees: its own plus the parents of its sites.
    pub fn visible_accounts(&self) -> Vec<&'a Account> {
        self.config
            .accounts
            .iter()
            .filter(|a| {
                self.can_account(&a.id)
                    || self
                        .scope
                        .site_ids
                        .iter()
                        .filter_map(|s| self.config.site(s))
                        .any(|s| s.account_id == a.id)
            })
            .collect()
    }

    pub fn visible_sites(&self) -> Vec<&'a Site> {
        self.config
            .sites
            .iter()
            .filter(|s| self.can_site(&s.id))
            .collect()
    }

    /// The account an event lands in when it names none: the token's only account, if any.
    pub fn default_account(&self) -> Option<&'a str> {
        match self.scope.account_ids.as_slice() {
            [only] => Some(only.as_str()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        assert_eq!(token_from_header(Some("ApiToken abc")), Some("abc"));
        assert_eq!(token_from_header(Some("apitoken  abc ")), Some("abc"));
        assert_eq!(token_from_header(Some("Bearer abc")), None);
        assert_eq!(token_from_header(Some("ApiToken ")), None);
        assert_eq!(token_from_header(None), None);
    }

    #[test]
    fn scope_rules() {
        let cfg = EmulatorConfig::default()
            .with_account("2", "Other")
            .with_site("22", "2", "Other site")
            .with_token(
                "site-only",
                TokenScope {
                    account_ids: vec![],
                    site_ids: vec!["22".into()],
                },
            );
        let s = Scope::resolve(&cfg, Some("s1-demo-token")).unwrap();
        assert!(s.can_account("123456789") && !s.can_account("2"));
        assert!(s.can_site("987654321") && !s.can_site("22"));
        let s = Scope::resolve(&cfg, Some("site-only")).unwrap();
        assert!(s.can_site("22") && !s.can_account("2"));
        assert_eq!(s.visible_accounts().len(), 1);
        assert!(Scope::resolve(&cfg, Some("nope")).is_none());
    }
}
