//! Rich notifications: decrypting the resource data Graph attaches when a subscription sets
//! `includeResourceData` and hands over a certificate, as "Decrypting resource data from change
//! notifications" (<https://learn.microsoft.com/graph/change-notifications-with-resource-data>)
//! describes it:
//! 1. the certificate's private key, found by `encryptionCertificateId`, decrypts `dataKey`
//!    (RSA with OAEP, SHA-1: `RSA/ECB/OAEPWithSHA1AndMGF1Padding`,
//!    <https://learn.microsoft.com/graph/api/resources/changenotificationencryptedcontent>);
//! 2. HMAC-SHA256 over the ciphertext (`data`, base64-decoded), keyed with that key, must equal
//!    `dataSignature` — checked before anything is decrypted, in constant time, since a CBC
//!    decryption that answers differently for bad padding is an oracle;
//! 3. AES-CBC with PKCS7 padding, the IV being the key's first 16 bytes, decrypts `data` into
//!    the resource's JSON.
//!
//! The encryption proves nothing about the sender (the certificate is public); `clientState`
//! does. What it gives the operator is the installation itself, with the user it belongs to.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use aes::{Aes128, Aes192, Aes256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::rand_core::OsRng;
use rsa::{Oaep, RsaPrivateKey};
use sha1::Sha1;
use sha2::Sha256;

use super::payload::EncryptedContent;

/// Why a rich notification's resource data could not be had. None of them carries key
/// material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// No private key for the notification's `encryptionCertificateId`: the notification is
    /// still Graph's (its `clientState` matched), just not readable by this process.
    #[error("no private key for encryption certificate id {0:?}")]
    UnknownCertificate(String),
    #[error("{0} is not base64")]
    NotBase64(&'static str),
    /// RSA-OAEP refused `dataKey`, or it is not an AES key.
    #[error("dataKey does not decrypt to an AES key with this certificate's private key")]
    DataKey,
    /// `dataSignature` does not match: the data was changed on the way (or made up).
    #[error("dataSignature does not match the data")]
    Signature,
    #[error("the data does not decrypt (padding)")]
    Cipher,
    #[error("not an RSA private key in PKCS#8 or PKCS#1 PEM")]
    Pem,
}

/// The private keys of the certificates subscriptions were created with, by the
/// `encryptionCertificateId` given with each. Graph may still use an old certificate for a while
/// after a subscription moves to a new one, so several can be held at once. Cheap to clone:
/// every clone is the same set. Its `Debug` shows the ids only.
#[derive(Clone, Default)]
pub struct DecryptionKeys {
    keys: Arc<RwLock<HashMap<String, RsaPrivateKey>>>,
}

impl DecryptionKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the key of `certificate_id`.
    pub fn insert(&self, certificate_id: &str, key: RsaPrivateKey) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(certificate_id.to_string(), key);
    }

    /// Adds the key of `certificate_id` from PEM: PKCS#8 (`PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`).
    pub fn insert_pem(&self, certificate_id: &str, pem: &str) -> Result<(), DecryptError> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| DecryptError::Pem)?;
        self.insert(certificate_id, key);
        Ok(())
    }

    /// Forgets the key of `certificate_id`; whether it was held.
    pub fn remove(&self, certificate_id: &str) -> bool {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(certificate_id)
            .is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// The plaintext (the resource's JSON) of `content`. Costs an RSA decryption: run it off the
    /// async executor.
    pub(crate) fn decrypt(&self, content: &EncryptedContent) -> Result<Vec<u8>, DecryptError> {
        let data_key = decode("dataKey", &content.data_key)?;
        let data = decode("data", &content.data)?;
        let signature = decode("dataSignature", &content.data_signature)?;
        let key = {
            let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            let private = keys
                .get(&content.encryption_certificate_id)
                .ok_or_else(|| {
                    DecryptError::UnknownCertificate(content.encryption_certificate_id.clone())
                })?;
            // Blinded, so that the time an RSA decryption takes says nothing about the key.
            private
                .decrypt_blinded(&mut OsRng, Oaep::new::<Sha1>(), &data_key)
                .map_err(|_| DecryptError::DataKey)?
        };
        verify_signature(&key, &data, &signature)?;
        aes_cbc_decrypt(&key, &data)
    }
}

impl fmt::Debug for DecryptionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<&String> = keys.keys().collect();
        ids.sort();
        f.debug_struct("DecryptionKeys")
            .field("certificate_ids", &ids)
            .finish()
    }
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, DecryptError> {
    STANDARD
        .decode(text.trim())
        .map_err(|_| DecryptError::NotBase64(field))
}

/// HMAC-SHA256 of the ciphertext under the symmetric key; `verify_slice` compares in constant
/// time.
fn verify_signature(key: &[u8], data: &[u8], signature: &[u8]) -> Result<(), DecryptError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| DecryptError::DataKey)?;
    mac.update(data);
    mac.verify_slice(signature)
        .map_err(|_| DecryptError::Signature)
}

/// AES-CBC, PKCS7, IV = the key's first 16 bytes. Graph's keys are 32 bytes (AES-256); the
/// documentation does not fix the size, so the other AES sizes are read too.
fn aes_cbc_decrypt(key: &[u8], data: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let iv = key.get(..16).ok_or(DecryptError::DataKey)?;
    let plain = match key.len() {
        16 => cbc::Decryptor::<Aes128>::new_from_slices(key, iv)
            .map_err(|_| DecryptError::DataKey)?
            .decrypt_padded_vec_mut::<Pkcs7>(data),
        24 => cbc::Decryptor::<Aes192>::new_from_slices(key, iv)
            .map_err(|_| DecryptError::DataKey)?
            .decrypt_padded_vec_mut::<Pkcs7>(data),
        32 => cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
            .map_err(|_| DecryptError::DataKey)?
            .decrypt_padded_vec_mut::<Pkcs7>(data),
        _ => return Err(DecryptError::DataKey),
    };
    plain.map_err(|_| DecryptError::Cipher)
}

/// Encrypts the way Graph does, for the tests of this module and its neighbours.
#[cfg(test)]
pub(crate) mod graph_side {
    use super::*;
    use cbc::cipher::BlockEncryptMut;
    use rand::RngCore;
    use rsa::RsaPublicKey;
    use std::sync::OnceLock;

    /// One 2048-bit key for every test (generating one takes a while).
    pub fn test_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut OsRng, 2048).expect("an RSA key"))
    }

    pub fn encrypt(public: &RsaPublicKey, certificate_id: &str, plain: &[u8]) -> EncryptedContent {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let data = cbc::Encryptor::<Aes256>::new_from_slices(&key, &key[..16])
            .expect("key and IV sizes")
            .encrypt_padded_vec_mut::<Pkcs7>(plain);
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key size");
        mac.update(&data);
        let data_key = public
            .encrypt(&mut OsRng, Oaep::new::<Sha1>(), &key)
            .expect("RSA-OAEP");
        EncryptedContent {
            data: STANDARD.encode(&data),
            data_key: STANDARD.encode(data_key),
            data_signature: STANDARD.encode(mac.finalize().into_bytes()),
            encryption_certificate_id: certificate_id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::graph_side::{encrypt, test_key};
    use super::*;

    fn keys() -> DecryptionKeys {
        let keys = DecryptionKeys::new();
        keys.insert("cert-1", test_key().clone());
        keys
    }

    #[test]
    fn round_trip() {
        let plain = br#"{"id":"abc","scopeInfo":{"scope":"personal","userId":"u"}}"#;
        let content = encrypt(&test_key().to_public_key(), "cert-1", plain);
        assert_eq!(keys().decrypt(&content).unwrap(), plain);
    }

    #[test]
    fn a_tampered_signature_or_ciphertext_is_refused_before_decrypting() {
        let content = encrypt(&test_key().to_public_key(), "cert-1", b"{}");
        let mut signature = STANDARD.decode(&content.data_signature).unwrap();
        signature[0] ^= 1;
        let forged = EncryptedContent {
            data_signature: STANDARD.encode(&signature),
            ..content.clone()
        };
        assert_eq!(keys().decrypt(&forged), Err(DecryptError::Signature));
        // A flipped ciphertext byte would decrypt to garbage (or bad padding); the signature
        // catches it first.
        let mut data = STANDARD.decode(&content.data).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        let flipped = EncryptedContent {
            data: STANDARD.encode(&data),
            ..content
        };
        assert_eq!(keys().decrypt(&flipped), Err(DecryptError::Signature));
    }

    #[test]
    fn other_keys_and_junk_are_errors() {
        let content = encrypt(&test_key().to_public_key(), "cert-2", b"{}");
        assert_eq!(
            keys().decrypt(&content),
            Err(DecryptError::UnknownCertificate("cert-2".into()))
        );
        let wrong_key = EncryptedContent {
            encryption_certificate_id: "cert-1".into(),
            data_key: STANDARD.encode([7u8; 256]),
            ..content.clone()
        };
        assert_eq!(keys().decrypt(&wrong_key), Err(DecryptError::DataKey));
        let junk = EncryptedContent {
            data: "not base64!".into(),
            ..content
        };
        assert_eq!(keys().decrypt(&junk), Err(DecryptError::NotBase64("data")));
        assert_eq!(
            DecryptionKeys::new().insert_pem("x", "nope"),
            Err(DecryptError::Pem)
        );
        assert!(!format!("{:?}", keys()).contains("BEGIN"));
    }
}
