//! What an access token says about itself, for a connection's status: the application
//! permissions granted (`roles`), the tenant and the expiry. Entra's app-only tokens for Graph
//! are JWTs whose payload is readable by the client; the signature is Graph's to check, not
//! ours, so it is not verified here and nothing here decides access. The token itself never
//! leaves this module.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The facts of one token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFacts {
    /// The application permissions in the token (sorted); empty when it has none.
    pub roles: Vec<String>,
    /// The tenant that issued it (`tid`).
    pub tenant: Option<String>,
    /// When it expires (`exp`).
    pub expires_at: Option<SystemTime>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
}

impl TokenFacts {
    /// Reads a JWT's payload; `None` when the token is not a JWT (opaque tokens exist, e.g.
    /// for other audiences) or its payload is not JSON.
    pub(crate) fn read(token: &str) -> Option<Self> {
        let payload = token.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let claims: Claims = serde_json::from_slice(&bytes).ok()?;
        let mut roles = claims.roles;
        roles.sort();
        roles.dedup();
        Some(Self {
            roles,
            tenant: claims.tid,
            expires_at: claims
                .exp
                .map(|exp| SystemTime::UNIX_EPOCH + Duration::from_secs(exp)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_roles_tenant_and_expiry() {
        let token = jwt(r#"{"tid":"t-1","exp":1700000000,"roles":["b","a","b"]}"#);
        let facts = TokenFacts::read(&token).expect("a JWT");
        assert_eq!(facts.roles, ["a", "b"]);
        assert_eq!(facts.tenant.as_deref(), Some("t-1"));
        assert_eq!(
            facts.expires_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
    }

    #[test]
    fn a_token_without_roles_has_none() {
        let facts = TokenFacts::read(&jwt(r#"{"tid":"t-1"}"#)).expect("a JWT");
        assert!(facts.roles.is_empty());
        assert_eq!(facts.expires_at, None);
    }

    #[test]
    fn opaque_tokens_and_garbage_say_nothing() {
        assert_eq!(TokenFacts::read("opaque-token"), None);
        assert_eq!(TokenFacts::read("a.!!!.c"), None);
        assert_eq!(TokenFacts::read(&jwt("[1,2]")), None);
    }
}
