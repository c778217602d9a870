//! The app's credential for the client-credentials grant.
//!
//! Three forms, as Entra ID accepts them: a client secret, a client certificate (we sign a JWT
//! assertion with its key), and workload identity federation (the Kubernetes projected
//! service-account token *is* the assertion). Files are re-read on every token request: mounted
//! secrets and projected tokens rotate underneath a running process.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::GraphConfigError;
use super::error::GraphError;

/// The OAuth `client_assertion_type` for JWT bearer assertions (certificate and federated).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Entra ID rejects assertions valid for longer than 10 minutes.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// A secret value (client secret, access token, private key). `Debug` and `Display` print
/// `[redacted]`, so it cannot leak through a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The secret itself: only for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the client's credential comes from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// A client secret given directly (from `AZURE_CLIENT_SECRET`).
    ClientSecret(Secret),
    /// A file holding the client secret (a mounted Kubernetes Secret); surrounding whitespace is
    /// ignored.
    ClientSecretFile(PathBuf),
    /// A PEM file with the certificate (first `CERTIFICATE` block) and its RSA private key.
    CertificateFile(PathBuf),
    /// Workload identity: the projected service-account token at this path is the assertion.
    FederatedTokenFile(PathBuf),
    /// Loaded afresh for every token request by someone else (a `GraphConnection`'s Secret or
    /// a TokenRequest for its ServiceAccount), so a rotated credential is used at the next
    /// token without a restart.
    Loaded(Arc<dyn CredentialLoader>),
}

/// A credential as it is presented to the token endpoint.
pub enum Credential {
    ClientSecret(Secret),
    /// A PEM with the certificate and its RSA private key.
    CertificatePem(Secret),
    /// A signed JWT from a federated issuer (workload identity).
    Assertion(Secret),
}

/// Fetches a credential when a token is requested. Its errors become the token request's
/// error (`GraphError::Credential`), so they reach the resources that wait on the token.
pub trait CredentialLoader: Send + Sync + fmt::Debug {
    fn load(&self) -> futures::future::BoxFuture<'_, Result<Credential, GraphError>>;
}

impl CredentialSource {
    /// Reads the credential once so misconfiguration fails at start-up, not at the first call.
    pub(crate) fn validate(&self) -> Result<(), GraphConfigError> {
        match self {
            Self::ClientSecret(secret) if secret.is_empty() => Err(GraphConfigError::Invalid(
                "the client secret is empty".into(),
            )),
            Self::ClientSecret(_) => Ok(()),
            Self::ClientSecretFile(path) => {
                let text = read_config_file(path, "client secret file")?;
                if text.trim().is_empty() {
                    return Err(GraphConfigError::Invalid(format!(
                        "client secret file {} is empty",
                        path.display()
                    )));
                }
                Ok(())
            }
            Self::CertificateFile(path) => {
                let pem = read_config_file(path, "client certificate")?;
                let cert = ClientCertificate::from_pem(&pem).map_err(|message| {
                    GraphConfigError::Certificate {
                        path: path.clone(),
                        message,
                    }
                })?;
                // Sign once now: a key that parses but cannot sign should fail at start-up.
                cert.assertion("validation", "https://localhost/token", SystemTime::now())
                    .map(drop)
                    .map_err(|message| GraphConfigError::Certificate {
                        path: path.clone(),
                        message,
                    })
            }
            Self::FederatedTokenFile(path) => {
                read_config_file(path, "federated token file").map(drop)
            }
            // Its owner reports a credential it cannot load, at the first token request.
            Self::Loaded(_) => Ok(()),
        }
    }

    /// The form fields that prove who we are, for one token request.
    pub(crate) async fn form_fields(
        &self,
        client_id: &str,
        token_url: &str,
    ) -> Result<Vec<(&'static str, Secret)>, GraphError> {
        let credential = match self {
            Self::ClientSecret(secret) => Credential::ClientSecret(secret.clone()),
            Self::ClientSecretFile(path) => {
                let text = read_runtime_file(path, "client secret file").await?;
                Credential::ClientSecret(Secret::new(text.trim()))
            }
            Self::CertificateFile(path) => Credential::CertificatePem(Secret::new(
                read_runtime_file(path, "client certificate").await?,
            )),
            Self::FederatedTokenFile(path) => {
                let text = read_runtime_file(path, "federated token file").await?;
                Credential::Assertion(Secret::new(text.trim()))
            }
            Self::Loaded(loader) => loader.load().await?,
        };
        credential.form_fields(client_id, token_url)
    }
}

impl Credential {
    /// The form fields that present this credential to `token_url`.
    fn form_fields(
        self,
        client_id: &str,
        token_url: &str,
    ) -> Result<Vec<(&'static str, Secret)>, GraphError> {
        match self {
            Self::ClientSecret(secret) if secret.is_empty() => {
                Err(GraphError::Credential("the client secret is empty".into()))
            }
            Self::ClientSecret(secret) => Ok(vec![("client_secret", secret)]),
            Self::CertificatePem(pem) => {
                let cert =
                    ClientCertificate::from_pem(pem.expose()).map_err(GraphError::Credential)?;
                let jwt = cert
                    .assertion(client_id, token_url, SystemTime::now())
                    .map_err(GraphError::Credential)?;
                Ok(assertion_fields(jwt))
            }
            Self::Assertion(jwt) => Ok(assertion_fields(jwt.expose().to_string())),
        }
    }
}

fn assertion_fields(jwt: String) -> Vec<(&'static str, Secret)> {
    vec![
        ("client_assertion_type", Secret::new(JWT_BEARER)),
        ("client_assertion", Secret::new(jwt)),
    ]
}

fn read_config_file(path: &Path, what: &'static str) -> Result<String, GraphConfigError> {
    std::fs::read_to_string(path).map_err(|source| GraphConfigError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

async fn read_runtime_file(path: &Path, what: &str) -> Result<String, GraphError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|e| GraphError::Credential(format!("cannot read {what} {}: {e}", path.display())))
}

/// A certificate credential: the leaf certificate's thumbprint and its RSA private key.
pub struct ClientCertificate {
    /// base64url(SHA-256(certificate DER)), the `x5t#S256` header Entra ID matches on.
    thumbprint_s256: String,
    key: jsonwebtoken::EncodingKey,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("thumbprint_s256", &self.thumbprint_s256)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The claims of a client assertion, as Entra ID expects them.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssertionClaims {
    pub aud: String,
    pub iss: String,
    pub sub: String,
    pub jti: String,
    pub nbf: u64,
    pub iat: u64,
    pub exp: u64,
}

impl ClientCertificate {
    /// Parses a PEM bundle: the first `CERTIFICATE` is ours (any others are its chain), the key is
    /// `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1). Entra ID certificates are RSA.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let blocks = pem::parse_many(text).map_err(|e| format!("not valid PEM: {e}"))?;
        let cert = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or("no CERTIFICATE block")?;
        let key_der = blocks
            .iter()
            .find_map(|b| match b.tag() {
                "RSA PRIVATE KEY" => Some(Ok(b.contents().to_vec())),
                "PRIVATE KEY" => Some(pkcs8_rsa_key(b.contents()).map(<[u8]>::to_vec)),
                "ENCRYPTED PRIVATE KEY" => {
                    Some(Err("encrypted private keys are not supported".to_string()))
                }
                "EC PRIVATE KEY" => Some(Err(
                    "the private key is an EC key; Entra ID client certificates must be RSA"
                        .to_string(),
                )),
                _ => None,
            })
            .ok_or("no PRIVATE KEY or RSA PRIVATE KEY block")??;
        Ok(Self {
            thumbprint_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(cert.contents())),
            key: jsonwebtoken::EncodingKey::from_rsa_der(&key_der),
        })
    }

    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// Signs a client assertion for one token request: PS256, `x5t#S256`, `aud` = token URL,
    /// `iss` = `sub` = client id, a fresh `jti`, valid from now for at most 10 minutes.
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: SystemTime,
    ) -> Result<String, String> {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970")?
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5t_s256 = Some(self.thumbprint_s256.clone());
        let claims = AssertionClaims {
            aud: token_url.to_string(),
            iss: client_id.to_string(),
            sub: client_id.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign the client assertion with the private key: {e}"))
    }
}

/// `rsaEncryption`, the algorithm of an RSA key in a PKCS#8 `PrivateKeyInfo`.
const RSA_ENCRYPTION: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Unwraps the PKCS#1 RSA key (what the signer takes) from a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_rsa_key(der: &[u8]) -> Result<&[u8], String> {
    let info = pkcs8::PrivateKeyInfo::try_from(der)
        .map_err(|_| "the PRIVATE KEY block is not a PKCS#8 key".to_string())?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return Err(
            "the private key is not an RSA key; Entra ID client certificates must be RSA"
                .to_string(),
        );
    }
    Ok(info.private_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        let source = CredentialSource::ClientSecret(s.clone());
        assert!(!format!("{source:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    /// A self-signed RSA certificate and its key: `(bundle PEM, cert DER, public key PKCS#1 DER)`.
    fn self_signed() -> (String, Vec<u8>, Vec<u8>) {
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        use rsa::pkcs8::EncodePrivateKey as _;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let key_pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
            .unwrap();
        let cert = rcgen::CertificateParams::new(vec!["operator".to_string()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        let public = key.to_public_key().to_pkcs1_der().unwrap();
        (
            format!("{}{}", cert.pem(), key_pem.as_str()),
            cert.der().to_vec(),
            public.as_bytes().to_vec(),
        )
    }

    #[test]
    fn signs_assertions_entra_id_accepts() {
        let (bundle, cert_der, public_der) = self_signed();
        let cert = ClientCertificate::from_pem(&bundle).unwrap();
        let token_url = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
        let now = SystemTime::now();
        let jwt = cert.assertion("client-1", token_url, now).unwrap();

        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256);
        assert_eq!(
            header.x5t_s256.as_deref(),
            Some(URL_SAFE_NO_PAD.encode(Sha256::digest(&cert_der)).as_str())
        );
        // The header really is spelled `x5t#S256` on the wire.
        let raw_header = URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap();
        assert!(
            String::from_utf8(raw_header)
                .unwrap()
                .contains("\"x5t#S256\"")
        );

        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::PS256);
        validation.set_audience(&[token_url]);
        validation.set_issuer(&["client-1"]);
        let key = jsonwebtoken::DecodingKey::from_rsa_der(&public_der);
        let claims = jsonwebtoken::decode::<AssertionClaims>(&jwt, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims.sub, "client-1");
        assert!(claims.exp > claims.nbf && claims.exp - claims.nbf <= 600);
        assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
        let again = cert.assertion("client-1", token_url, now).unwrap();
        let again = jsonwebtoken::decode::<AssertionClaims>(&again, &key, &validation).unwrap();
        assert_ne!(again.claims.jti, claims.jti, "jti is unique per assertion");
    }

    #[test]
    fn rejects_pem_without_cert_or_key() {
        assert!(ClientCertificate::from_pem("nothing here").is_err());
        let only_key = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let err = ClientCertificate::from_pem(only_key).unwrap_err();
        assert!(err.contains("CERTIFICATE"), "{err}");
        let ec = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
                  -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let err = ClientCertificate::from_pem(ec).unwrap_err();
        assert!(err.contains("RSA"), "{err}");
    }

    #[test]
    fn refuses_pkcs8_keys_that_are_not_rsa_or_not_pkcs8() {
        // rcgen's default key is ECDSA P-256, in a PKCS#8 `PRIVATE KEY` block.
        let pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["operator".to_string()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        let bundle = format!("{}{}", cert.pem(), pair.serialize_pem());
        let err = ClientCertificate::from_pem(&bundle).unwrap_err();
        assert!(err.contains("not an RSA key"), "{err}");

        let garbage = format!(
            "{}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            cert.pem()
        );
        let err = ClientCertificate::from_pem(&garbage).unwrap_err();
        assert!(err.contains("not a PKCS#8 key"), "{err}");
    }
}
