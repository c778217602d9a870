//! Rich notifications: the resource data Graph encrypts for a subscriber that set
//! `includeResourceData` and gave an `encryptionCertificate`, as documented in
//! "Set up change notifications that include resource data"
//! (<https://learn.microsoft.com/graph/change-notifications-with-resource-data>) and the
//! changeNotificationEncryptedContent resource
//! (<https://learn.microsoft.com/graph/api/resources/changenotificationencryptedcontent>):
//! a random 32-byte symmetric key, encrypted with the certificate's RSA public key under
//! `RSA/ECB/OAEPWithSHA1AndMGF1Padding` (`dataKey`); the resource JSON encrypted with that key
//! under `AES/CBC/PKCS5PADDING`, the IV being the key's first 16 bytes (`data`); and an
//! HMAC-SHA256 of the encrypted bytes keyed with the same key (`dataSignature`).

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rsa::{Oaep, RsaPublicKey};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use sha2::Sha256;

/// The RSA public key of a base64 DER X.509 certificate (white space ignored).
pub(crate) fn certificate_key(certificate: &str) -> Result<RsaPublicKey, String> {
    let der = certificate_der(certificate)?;
    super::keys::certificate_rsa_key(&der)
}

fn certificate_der(certificate: &str) -> Result<Vec<u8>, String> {
    let compact: String = certificate.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|e| format!("not base64: {e}"))
}

/// `encryptedContent` for `resource` (the installation's JSON), or why it cannot be made.
pub(crate) fn encrypted_content(
    certificate: &str,
    certificate_id: &str,
    resource: &Value,
) -> Result<Value, String> {
    let der = certificate_der(certificate)?;
    let public = super::keys::certificate_rsa_key(&der)?;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let plain = serde_json::to_vec(resource).map_err(|e| e.to_string())?;
    let (iv, _) = key.split_at(16);
    let data = cbc::Encryptor::<Aes256>::new_from_slices(&key, iv)
        .map_err(|e| e.to_string())?
        .encrypt_padded_vec_mut::<Pkcs7>(&plain);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(&data);
    let signature = mac.finalize().into_bytes();
    let data_key = public
        .encrypt(&mut OaepRng, Oaep::new::<Sha1>(), &key)
        .map_err(|e| e.to_string())?;
    let thumbprint: String = Sha1::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    Ok(json!({
        "data": STANDARD.encode(&data),
        "dataSignature": STANDARD.encode(signature),
        "dataKey": STANDARD.encode(data_key),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": thumbprint,
    }))
}

/// The OAEP padding's randomness from `rand`'s thread generator: `rsa` 0.9 takes a generator of
/// `rand_core` 0.6, an older trait than `rand` 0.9's.
struct OaepRng;

impl rsa::rand_core::RngCore for OaepRng {
    fn next_u32(&mut self) -> u32 {
        rand::rng().next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        rand::rng().next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::rng().fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        rand::rng().fill_bytes(dest);
        Ok(())
    }
}

/// `rand`'s thread generator is a CSPRNG (ChaCha, reseeded from the OS).
impl rsa::rand_core::CryptoRng for OaepRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use cbc::cipher::BlockDecryptMut;
    use rsa::RsaPrivateKey;
    use rsa::pkcs1::DecodeRsaPrivateKey;

    const CERT: &str = include_str!("testdata/client-cert.pem");
    const KEY: &str = include_str!("testdata/client-key.pem");

    fn cert_base64() -> String {
        CERT.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    #[test]
    fn decrypts_back_with_the_private_key() {
        let resource = json!({"id": "abc", "scopeInfo": {"scope": "personal", "userId": "u"}});
        let content = encrypted_content(&cert_base64(), "cert-1", &resource).unwrap();
        let private = RsaPrivateKey::from_pkcs1_pem(KEY).unwrap();
        let field = |n: &str| STANDARD.decode(content[n].as_str().unwrap()).unwrap();
        let key = private
            .decrypt(Oaep::new::<Sha1>(), &field("dataKey"))
            .unwrap();
        let data = field("data");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(&data);
        mac.verify_slice(&field("dataSignature")).unwrap();
        let plain = cbc::Decryptor::<Aes256>::new_from_slices(&key, &key[..16])
            .unwrap()
            .decrypt_padded_vec_mut::<Pkcs7>(&data)
            .unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&plain).unwrap(), resource);
        assert_eq!(content["encryptionCertificateId"], "cert-1");
        assert_eq!(
            content["encryptionCertificateThumbprint"]
                .as_str()
                .unwrap()
                .len(),
            40
        );
    }

    #[test]
    fn junk_certificates_are_errors() {
        assert!(certificate_key("not base64!").is_err());
        assert!(certificate_key("AAAA").is_err());
        assert!(certificate_key(&cert_base64()).is_ok());
    }
}
