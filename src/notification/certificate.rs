//! The certificate Graph encrypts rich notifications for (`--notification-certificate`): its
//! public part goes to Graph with every subscription (`encryptionCertificate`), its private key
//! decrypts the resource data ([`super::decrypt`]).
//!
//! What it buys: a notification without resource data names only the installation, which the
//! operator can match only if it has read that installation before. The resource data names the
//! user, so a change to an installation the operator never read (a user installed the app a
//! resource says must stay absent) still re-reads exactly that user, and no one else.
//!
//! Graph asks for an X.509 certificate with an RSA key of 2048 to 4096 bits, base64 DER, and an
//! id of up to 128 characters the subscriber chooses; it checks no issuer, so a self-signed
//! certificate does (<https://learn.microsoft.com/graph/change-notifications-with-resource-data>).
//! The id here is the certificate's SHA-256 thumbprint in hex (64 characters): a restart with the
//! same files names it the same, a rotated certificate gets a new one.
//!
//! Everything is checked once, at start-up, so a bad file is one clear error rather than
//! notifications nobody can read: the key must be RSA of a size Graph takes and belong to the
//! certificate, and the certificate must be valid now. Errors name files and reasons, never key
//! material.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

use super::DecryptionKeys;
use crate::graph::ResourceData;

/// The certificate's file in a directory, as a `kubernetes.io/tls` Secret mounts it.
pub const CERTIFICATE_FILE: &str = "tls.crt";
/// The private key's file in a directory, as a `kubernetes.io/tls` Secret mounts it.
pub const KEY_FILE: &str = "tls.key";

/// The RSA key sizes Graph encrypts for.
const KEY_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// Why the notification certificate cannot be used. No variant carries key material.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The PEM parser's own message is left out: it may quote bytes of the key.
    #[error("the {0} is not PEM")]
    NotPem(&'static str),
    #[error("no CERTIFICATE block in the certificate")]
    NoCertificate,
    #[error("no PRIVATE KEY or RSA PRIVATE KEY block in the key")]
    NoKey,
    #[error("the CERTIFICATE block is not an X.509 certificate ({0})")]
    NotX509(String),
    #[error("the certificate's public key is not RSA: Graph encrypts for RSA keys only")]
    CertificateNotRsa,
    #[error(
        "the private key is not an unencrypted RSA key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`)"
    )]
    KeyNotRsa,
    #[error("the RSA key has {0} bits: Graph takes 2048 to 4096")]
    KeySize(usize),
    #[error("the private key does not belong to the certificate (their public keys differ)")]
    KeyMismatch,
    #[error("the certificate expired at {0}")]
    Expired(Timestamp),
    #[error("the certificate is not valid before {0}")]
    NotYetValid(Timestamp),
}

/// A certificate and its RSA private key, checked to belong together and valid when loaded.
/// Its `Debug` shows the id and validity only.
#[derive(Clone)]
pub struct EncryptionCertificate {
    id: String,
    der: Vec<u8>,
    not_after: Timestamp,
    key: RsaPrivateKey,
}

impl EncryptionCertificate {
    /// Reads `path`: a directory holding [`CERTIFICATE_FILE`] and [`KEY_FILE`] (a mounted
    /// `kubernetes.io/tls` Secret), or one PEM file holding both.
    pub fn load(path: &Path, now: Timestamp) -> Result<Self, CertificateError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| CertificateError::Read { path, source })
        };
        if path.is_dir() {
            let certificate = read(path.join(CERTIFICATE_FILE))?;
            let key = read(path.join(KEY_FILE))?;
            Self::from_pem(&certificate, &key, now)
        } else {
            let bundle = read(path.to_path_buf())?;
            Self::from_pem(&bundle, &bundle, now)
        }
    }

    /// The first `CERTIFICATE` of `certificate` (any others are its chain, which Graph does not
    /// want) and the first private key of `key`; both may be the same text.
    pub fn from_pem(
        certificate: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Self, CertificateError> {
        let blocks =
            pem::parse_many(certificate).map_err(|_| CertificateError::NotPem("certificate"))?;
        let der = blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or(CertificateError::NoCertificate)?
            .into_contents();
        let key = private_key(key)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| CertificateError::NotX509(e.to_string()))?;
        let public = RsaPublicKey::from_public_key_der(parsed.public_key().raw)
            .map_err(|_| CertificateError::CertificateNotRsa)?;
        if public != key.to_public_key() {
            return Err(CertificateError::KeyMismatch);
        }
        if !KEY_BITS.contains(&(public.size() * 8)) {
            return Err(CertificateError::KeySize(public.size() * 8));
        }
        let validity = parsed.validity();
        let (not_before, not_after) = (
            timestamp(validity.not_before.timestamp()),
            timestamp(validity.not_after.timestamp()),
        );
        if now > not_after {
            return Err(CertificateError::Expired(not_after));
        }
        if now < not_before {
            return Err(CertificateError::NotYetValid(not_before));
        }
        Ok(Self {
            id: hex(&Sha256::digest(&der)),
            der,
            not_after,
            key,
        })
    }

    /// The id subscriptions and notifications name the certificate by: its SHA-256 thumbprint,
    /// lower-case hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the certificate expires. Graph cannot encrypt for it after that: a restart with a
    /// renewed one is needed before.
    pub fn not_after(&self) -> Timestamp {
        self.not_after
    }

    /// What subscriptions send Graph to ask for rich notifications encrypted for this
    /// certificate.
    pub fn resource_data(&self) -> ResourceData {
        ResourceData {
            certificate_base64: STANDARD.encode(&self.der),
            certificate_id: self.id.clone(),
        }
    }

    /// The receiver's keys: this certificate's private key, under its id.
    pub fn decryption_keys(&self) -> DecryptionKeys {
        let keys = DecryptionKeys::new();
        keys.insert(&self.id, self.key.clone());
        keys
    }
}

impl fmt::Debug for EncryptionCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionCertificate")
            .field("id", &self.id)
            .field("not_after", &self.not_after)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The first private key block of `text`: PKCS#8 (RSA only) or PKCS#1.
fn private_key(text: &str) -> Result<RsaPrivateKey, CertificateError> {
    let blocks = pem::parse_many(text).map_err(|_| CertificateError::NotPem("private key"))?;
    let block = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or(CertificateError::NoKey)?;
    let key = match block.tag() {
        "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(block.contents()).ok(),
        "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(block.contents()).ok(),
        _ => None,
    };
    key.ok_or(CertificateError::KeyNotRsa)
}

/// X.509 times are whole seconds between the years 1950 and 9999, all within jiff's range.
fn timestamp(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap_or(Timestamp::MAX)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::decrypt::graph_side::{encrypt, test_key};
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    /// A self-signed certificate for `key`, valid from `not_before` to `not_after` (years).
    fn certificate(key: &RsaPrivateKey, not_before: i32, not_after: i32) -> String {
        let key_pem = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8");
        let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
            .expect("an rcgen key pair");
        let mut params =
            rcgen::CertificateParams::new(vec!["notifications".to_string()]).expect("params");
        params.not_before = rcgen::date_time_ymd(not_before, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
        params.self_signed(&pair).expect("self-signed").pem()
    }

    fn key_pem(key: &RsaPrivateKey) -> String {
        key.to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8")
            .to_string()
    }

    fn now() -> Timestamp {
        "2026-12-06T09:00:00Z".parse().expect("a timestamp")
    }

    #[test]
    fn a_matching_pair_gives_a_stable_id_the_resource_data_and_the_key_that_decrypts() {
        let cert = certificate(test_key(), 2025, 2030);
        let loaded = EncryptionCertificate::from_pem(&cert, &key_pem(test_key()), now()).unwrap();
        assert_eq!(loaded.id().len(), 64, "SHA-256, hex");
        let again = EncryptionCertificate::from_pem(&cert, &key_pem(test_key()), now()).unwrap();
        assert_eq!(again.id(), loaded.id(), "the same files, the same id");
        assert_eq!(loaded.not_after(), "2030-01-01T00:00:00Z".parse().unwrap());

        let data = loaded.resource_data();
        assert_eq!(data.certificate_id, loaded.id());
        let der = STANDARD.decode(&data.certificate_base64).unwrap();
        assert_eq!(hex(&Sha256::digest(&der)), loaded.id());

        // What Graph encrypts for the certificate, the receiver's keys decrypt.
        let content = encrypt(&test_key().to_public_key(), loaded.id(), b"{\"id\":\"x\"}");
        assert_eq!(
            loaded.decryption_keys().decrypt(&content).unwrap(),
            b"{\"id\":\"x\"}"
        );
        assert!(!format!("{loaded:?}").contains("PRIVATE"));
    }

    #[test]
    fn one_bundle_and_pkcs1_keys_and_a_chain_are_read() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let cert = certificate(test_key(), 2025, 2030);
        let pkcs1 = test_key().to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
        let chain = format!("{cert}{}", certificate(test_key(), 2024, 2031));
        let bundle = format!("{chain}{pkcs1}");
        let loaded = EncryptionCertificate::from_pem(&bundle, &bundle, now()).unwrap();
        let leaf_only = EncryptionCertificate::from_pem(&cert, &pkcs1, now()).unwrap();
        assert_eq!(
            loaded.id(),
            leaf_only.id(),
            "the first certificate is the one"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let other = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let cert = certificate(test_key(), 2025, 2030);
        let err = EncryptionCertificate::from_pem(&cert, &key_pem(&other), now()).unwrap_err();
        assert!(matches!(err, CertificateError::KeyMismatch), "{err}");
    }

    #[test]
    fn not_pem_no_certificate_and_no_key_are_refused() {
        let cert = certificate(test_key(), 2025, 2030);
        let key = key_pem(test_key());
        let err = |c: &str, k: &str| {
            EncryptionCertificate::from_pem(c, k, now())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err("", &key), "no CERTIFICATE block in the certificate");
        assert_eq!(
            err(&cert, &cert),
            "no PRIVATE KEY or RSA PRIVATE KEY block in the key"
        );
        assert_eq!(
            err(&cert, "just text"),
            "no PRIVATE KEY or RSA PRIVATE KEY block in the key"
        );
        let broken = "-----BEGIN PRIVATE KEY-----\n!!secret-bytes!!\n-----END PRIVATE KEY-----\n";
        let message = err(&cert, broken);
        assert_eq!(message, "the private key is not PEM");
        assert!(!message.contains("secret-bytes"));
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(err(junk, &key).starts_with("the CERTIFICATE block is not an X.509"));
    }

    #[test]
    fn keys_that_are_not_rsa_are_refused() {
        // rcgen's default key is ECDSA P-256, in a PKCS#8 `PRIVATE KEY` block.
        let pair = rcgen::KeyPair::generate().unwrap();
        let ec_cert = rcgen::CertificateParams::new(vec!["notifications".to_string()])
            .unwrap()
            .self_signed(&pair)
            .unwrap()
            .pem();
        let err = EncryptionCertificate::from_pem(&ec_cert, &pair.serialize_pem(), now());
        assert!(matches!(err, Err(CertificateError::KeyNotRsa)), "{err:?}");
        let rsa_key = key_pem(test_key());
        let err = EncryptionCertificate::from_pem(&ec_cert, &rsa_key, now());
        assert!(
            matches!(err, Err(CertificateError::CertificateNotRsa)),
            "{err:?}"
        );
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = EncryptionCertificate::from_pem(&ec_cert, encrypted, now());
        assert!(matches!(err, Err(CertificateError::KeyNotRsa)), "{err:?}");
    }

    /// An RSA public key as rcgen puts it into a certificate (PKCS#1 DER).
    struct RsaSubject(Vec<u8>);

    impl rcgen::PublicKeyData for RsaSubject {
        fn der_bytes(&self) -> &[u8] {
            &self.0
        }

        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            &rcgen::PKCS_RSA_SHA256
        }
    }

    #[test]
    fn a_key_graph_would_not_take_is_refused() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        // ring signs with 2048 bits at least: the test key issues a certificate for a smaller one.
        let small = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let subject = RsaSubject(small.to_public_key().to_pkcs1_der().unwrap().into_vec());
        let issuer_key = key_pem(test_key());
        let issuer_pair =
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&issuer_key, &rcgen::PKCS_RSA_SHA256)
                .unwrap();
        let params = rcgen::CertificateParams::new(vec!["notifications".to_string()]).unwrap();
        let issuer = rcgen::Issuer::new(params.clone(), issuer_pair);
        let cert = params.signed_by(&subject, &issuer).unwrap().pem();
        let err = EncryptionCertificate::from_pem(&cert, &key_pem(&small), now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the RSA key has 1024 bits: Graph takes 2048 to 4096"
        );
    }

    #[test]
    fn a_certificate_outside_its_validity_is_refused() {
        let key = key_pem(test_key());
        let expired = certificate(test_key(), 2020, 2025);
        let err = EncryptionCertificate::from_pem(&expired, &key, now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the certificate expired at 2025-01-01T00:00:00Z"
        );
        let future = certificate(test_key(), 2027, 2030);
        let err = EncryptionCertificate::from_pem(&future, &key, now()).unwrap_err();
        assert!(matches!(err, CertificateError::NotYetValid(_)), "{err}");
    }

    #[test]
    fn a_directory_holds_tls_crt_and_tls_key_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let year = i32::from(now.to_zoned(jiff::tz::TimeZone::UTC).year());
        std::fs::write(
            dir.path().join(CERTIFICATE_FILE),
            certificate(test_key(), year - 1, year + 1),
        )
        .unwrap();
        let err = EncryptionCertificate::load(dir.path(), now).unwrap_err();
        assert!(err.to_string().contains(KEY_FILE), "{err}");
        std::fs::write(dir.path().join(KEY_FILE), key_pem(test_key())).unwrap();
        let loaded = EncryptionCertificate::load(dir.path(), now).unwrap();
        assert_eq!(loaded.id().len(), 64);
        let missing = dir.path().join("nowhere");
        let err = EncryptionCertificate::load(&missing, now).unwrap_err();
        assert!(err.to_string().contains("nowhere"), "{err}");
    }
}
