//! RSA public keys from the PEM a seed carries: an X.509 certificate (certificate credentials) or
//! a `PUBLIC KEY` / `RSA PUBLIC KEY` (a federated issuer's signing key). jsonwebtoken's own PEM
//! support is a feature this crate does not enable, so the `rsa` crate reads the keys.

use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use spki::der::asn1::AnyRef;
use spki::der::{Decode, Reader, SliceReader, Tag, TagNumber};

/// The `subjectPublicKeyInfo` (DER) of a DER X.509 certificate. Only the fields before it are
/// walked; the certificate's signature is not checked (Entra doesn't either: the upload is trusted).
fn certificate_spki(cert: &[u8]) -> spki::der::Result<&[u8]> {
    let mut reader = SliceReader::new(cert)?;
    let spki = reader.sequence(|certificate| {
        let spki = certificate.sequence(|tbs| {
            // version [0] EXPLICIT, absent for v1 certificates
            let version = Tag::ContextSpecific {
                constructed: true,
                number: TagNumber::N0,
            };
            if tbs.peek_tag()? == version {
                AnyRef::decode(tbs)?;
            }
            // serialNumber, signature, issuer, validity, subject
            for _ in 0..5 {
                AnyRef::decode(tbs)?;
            }
            let spki = tbs.tlv_bytes()?;
            skip_rest(tbs)?;
            Ok(spki)
        })?;
        skip_rest(certificate)?;
        Ok(spki)
    })?;
    reader.finish(spki)
}

fn skip_rest<'a, R: Reader<'a>>(reader: &mut R) -> spki::der::Result<()> {
    while !reader.is_finished() {
        AnyRef::decode(reader)?;
    }
    Ok(())
}

/// The RSA public key of a DER X.509 certificate.
pub(crate) fn certificate_rsa_key(cert: &[u8]) -> Result<RsaPublicKey, String> {
    let spki = certificate_spki(cert).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    RsaPublicKey::from_public_key_der(spki).map_err(|e| format!("not an RSA public key: {e}"))
}

/// The RSA public key of a PEM `CERTIFICATE`, `PUBLIC KEY` or `RSA PUBLIC KEY`.
pub(crate) fn rsa_public_key_from_pem(text: &str) -> Result<RsaPublicKey, String> {
    let block = pem::parse(text).map_err(|e| format!("not PEM: {e}"))?;
    match block.tag() {
        "CERTIFICATE" => certificate_rsa_key(block.contents()),
        "PUBLIC KEY" => RsaPublicKey::from_public_key_der(block.contents())
            .map_err(|e| format!("not an RSA public key: {e}")),
        "RSA PUBLIC KEY" => RsaPublicKey::from_pkcs1_der(block.contents())
            .map_err(|e| format!("not an RSA public key: {e}")),
        other => Err(format!("unsupported PEM block {other}")),
    }
}

/// The key as jsonwebtoken verifies with it.
pub(crate) fn decoding_key(key: &RsaPublicKey) -> jsonwebtoken::DecodingKey {
    use rsa::traits::PublicKeyParts;
    jsonwebtoken::DecodingKey::from_rsa_raw_components(
        &key.n().to_bytes_be(),
        &key.e().to_bytes_be(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::BigUint;

    // A throwaway self-signed certificate and its public key (`openssl x509 -pubkey`).
    const CERT: &str = include_str!("testdata/client-cert.pem");
    const PUBLIC_KEY: &str = include_str!("testdata/client-pubkey.pem");
    const UNRELATED_KEY: &str = include_str!("testdata/unrelated-key.pem");

    #[test]
    fn certificate_and_public_key_yield_the_same_rsa_key() {
        use rsa::traits::PublicKeyParts;
        let from_cert = rsa_public_key_from_pem(CERT).unwrap();
        let from_spki = rsa_public_key_from_pem(PUBLIC_KEY).unwrap();
        assert_eq!(from_cert, from_spki);
        assert_eq!(*from_cert.e(), BigUint::from(65537u32));
        assert_eq!(from_cert.size(), 256);
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        for junk in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x05, 0x02],
            &[0x04, 0x00],
        ] {
            assert!(certificate_rsa_key(junk).is_err(), "{junk:?}");
        }
        assert!(rsa_public_key_from_pem("nope").is_err());
        // A private key is not a public key.
        assert!(rsa_public_key_from_pem(UNRELATED_KEY).is_err());
    }
}
