//! Client credentials other than secrets: JWT client assertions signed with a certificate's key,
//! and federated (workload identity) assertions from another issuer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::errors::AadError;
use super::keys;
use super::seed::FederatedCredentialSeed;

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// An uploaded certificate: its SHA-256 thumbprint (as `x5t#S256` carries it) and public key.
pub(crate) struct CertificateCredential {
    pub thumbprint_s256: String,
    key: DecodingKey,
}

impl CertificateCredential {
    pub fn from_pem(pem_text: &str) -> Result<Self, String> {
        let parsed = pem::parse(pem_text).map_err(|e| format!("certificate is not PEM: {e}"))?;
        if parsed.tag() != "CERTIFICATE" {
            return Err(format!(
                "expected a CERTIFICATE PEM block, found {}",
                parsed.tag()
            ));
        }
        let key = keys::certificate_rsa_key(parsed.contents())
            .map_err(|e| format!("certificate has no usable RSA public key: {e}"))?;
        Ok(Self {
            thumbprint_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(parsed.contents())),
            key: keys::decoding_key(&key),
        })
    }
}

/// A federated identity credential (see [`FederatedCredentialSeed`]).
pub(crate) struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    key: Option<DecodingKey>,
}

impl FederatedCredential {
    pub fn from_seed(seed: &FederatedCredentialSeed) -> Result<Self, String> {
        let key = match &seed.issuer_key {
            Some(pem) => Some(
                keys::rsa_public_key_from_pem(pem)
                    .map(|key| keys::decoding_key(&key))
                    .map_err(|e| format!("issuerKey is not an RSA public key PEM: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            issuer: seed.issuer.clone(),
            subject: seed.subject.clone(),
            audiences: seed.audiences.clone(),
            key,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<f64>,
    nbf: Option<f64>,
}

impl Claims {
    fn audiences(&self) -> Vec<&str> {
        match &self.aud {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    fn check_lifetime(&self, now: f64) -> Result<(), AadError> {
        let exp = self
            .exp
            .ok_or_else(|| malformed("the assertion has no exp claim"))?;
        let nbf = self.nbf.unwrap_or(f64::MIN);
        if exp <= now || nbf > now {
            return Err(AadError::new(
                "invalid_client",
                700024,
                format!(
                    "Client assertion is not within its valid time range. Current time: {now}, \
                     assertion valid from {nbf}, expiry time of assertion {exp}."
                ),
            ));
        }
        Ok(())
    }
}

fn malformed(reason: &str) -> AadError {
    AadError::new(
        "invalid_request",
        50027,
        format!("JWT token is invalid or malformed. [Reason - {reason}.]"),
    )
}

fn bad_signature(reason: &str) -> AadError {
    AadError::new(
        "invalid_client",
        700027,
        format!("Client assertion failed signature validation. [Reason - {reason}.]"),
    )
}

fn rsa_validation() -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.algorithms = RSA_ALGORITHMS.to_vec();
    // Claims are checked by hand below, to answer with Entra's error for each.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = 0;
    v
}

fn verify(assertion: &str, key: &DecodingKey) -> Result<Claims, AadError> {
    jsonwebtoken::decode::<Claims>(assertion, key, &rsa_validation())
        .map(|data| data.claims)
        .map_err(|e| bad_signature(&format!("signature check failed: {e}")))
}

/// What an accepted assertion proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AssertionKind {
    Certificate,
    Federated,
}

/// Checks a `client_assertion` for `client_id` at the token URL of a tenant; `tenant_names` are
/// the names (id, domains) that URL may use. `now` is Unix seconds.
pub(crate) fn check_assertion(
    assertion: &str,
    client_id: &str,
    certificate: Option<&CertificateCredential>,
    federated: &[FederatedCredential],
    tenant_names: &[&str],
    now: f64,
) -> Result<AssertionKind, AadError> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| malformed(&format!("cannot decode the header: {e}")))?;
    if header.x5t_s256.is_some() || header.x5t.is_some() {
        let Some(cert) = certificate else {
            return Err(bad_signature(
                "no certificate is registered for this application",
            ));
        };
        if header.x5t_s256.as_deref() != Some(cert.thumbprint_s256.as_str()) {
            return Err(bad_signature(&format!(
                "The key was not found. Thumbprint of key used by client: '{}' \
                 (graph-sim matches x5t#S256 only)",
                header.x5t_s256.or(header.x5t).unwrap_or_default()
            )));
        }
        let claims = verify(assertion, &cert.key)?;
        if !claims
            .audiences()
            .iter()
            .any(|a| is_token_url(a, tenant_names))
        {
            return Err(malformed(&format!(
                "aud {:?} is not this tenant's token endpoint",
                claims.audiences()
            )));
        }
        if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
            return Err(AadError::new(
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter. \
                 iss and sub must both be the client id.",
            ));
        }
        claims.check_lifetime(now)?;
        return Ok(AssertionKind::Certificate);
    }

    // No thumbprint: a token from a federated issuer (workload identity).
    let unverified = jsonwebtoken::dangerous::insecure_decode::<Claims>(assertion)
        .map_err(|e| malformed(&format!("cannot decode the claims: {e}")))?
        .claims;
    let found = federated.iter().find(|f| {
        unverified.iss.as_deref() == Some(f.issuer.as_str())
            && unverified.sub.as_deref() == Some(f.subject.as_str())
            && unverified
                .audiences()
                .iter()
                .any(|a| f.audiences.iter().any(|fa| fa == a))
    });
    let Some(credential) = found else {
        return Err(AadError::new(
            "invalid_request",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. \
                 Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: '{}'.",
                unverified.iss.as_deref().unwrap_or_default(),
                unverified.sub.as_deref().unwrap_or_default(),
                unverified.audiences().join(",")
            ),
        ));
    };
    let claims = match &credential.key {
        Some(key) => verify(assertion, key)?,
        None => unverified,
    };
    claims.check_lifetime(now)?;
    Ok(AssertionKind::Federated)
}

/// True for `…/{tenant}/oauth2/v2.0/token` (any scheme and host: the simulator may sit behind a
/// Service name or proxy).
fn is_token_url(aud: &str, tenant_names: &[&str]) -> bool {
    let Ok(url) = url::Url::parse(aud) else {
        return false;
    };
    let path = url.path().trim_end_matches('/');
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (Some(tenant), Some(rest)) = (parts.next(), parts.next()) else {
        return false;
    };
    rest.eq_ignore_ascii_case("oauth2/v2.0/token")
        && tenant_names.iter().any(|t| t.eq_ignore_ascii_case(tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_url_audience_must_name_the_tenant() {
        let names = ["tid", "contoso.onmicrosoft.com"];
        assert!(is_token_url(
            "http://127.0.0.1:1/tid/oauth2/v2.0/token",
            &names
        ));
        assert!(is_token_url(
            "https://login.microsoftonline.com/Contoso.onmicrosoft.com/oauth2/v2.0/token/",
            &names
        ));
        assert!(!is_token_url("https://x/other/oauth2/v2.0/token", &names));
        assert!(!is_token_url("https://x/tid/oauth2/token", &names));
        assert!(!is_token_url("tid", &names));
    }

    #[test]
    fn garbage_assertions_are_malformed_not_panics() {
        for junk in ["", "a.b", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9.e30.x"] {
            let err = check_assertion(junk, "c", None, &[], &["t"], 0.0).unwrap_err();
            assert!([50027, 70021].contains(&err.code), "{junk:?} → {err:?}");
        }
    }
}
