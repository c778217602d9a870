//! Just enough DER to find the RSA public key in an X.509 certificate or a `PUBLIC KEY` PEM
//! (jsonwebtoken's own PEM support is a feature this crate does not enable).

/// `rsaEncryption`, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: [u8; 9] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const EXPLICIT_0: u8 = 0xA0;

/// One tag-length-value at the start of `input`: `(tag, contents, rest)`.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let short = || "truncated DER".to_string();
    let (&tag, input) = input.split_first().ok_or_else(short)?;
    let (&first, mut input) = input.split_first().ok_or_else(short)?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 {
            return Err("unsupported DER length".into());
        }
        let (bytes, rest) = input.split_at_checked(n).ok_or_else(short)?;
        input = rest;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize)
    };
    let (contents, rest) = input.split_at_checked(len).ok_or_else(short)?;
    Ok((tag, contents, rest))
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    match tlv(input)? {
        (t, contents, rest) if t == tag => Ok((contents, rest)),
        (t, _, _) => Err(format!(
            "expected {what} (tag {tag:#04x}), found tag {t:#04x}"
        )),
    }
}

/// The PKCS#1 `RSAPublicKey` inside a `SubjectPublicKeyInfo` (given as the SEQUENCE's contents).
fn spki_rsa_key(spki: &[u8]) -> Result<Vec<u8>, String> {
    let (algorithm, rest) = expect(spki, SEQUENCE, "AlgorithmIdentifier")?;
    let (oid, _) = expect(algorithm, OID, "algorithm OID")?;
    if oid != RSA_ENCRYPTION {
        return Err("the public key is not an RSA key".into());
    }
    let (bits, _) = expect(rest, BIT_STRING, "subjectPublicKey")?;
    match bits.split_first() {
        Some((0, key)) => Ok(key.to_vec()),
        _ => Err("malformed subjectPublicKey".into()),
    }
}

/// The PKCS#1 `RSAPublicKey` of a DER X.509 certificate.
pub(crate) fn certificate_rsa_key(cert: &[u8]) -> Result<Vec<u8>, String> {
    let (certificate, _) = expect(cert, SEQUENCE, "Certificate")?;
    let (tbs, _) = expect(certificate, SEQUENCE, "TBSCertificate")?;
    let mut rest = tbs;
    if let Ok((EXPLICIT_0, _, after)) = tlv(rest) {
        rest = after;
    }
    (_, rest) = expect(rest, INTEGER, "serialNumber")?;
    for what in ["signature", "issuer", "validity", "subject"] {
        (_, rest) = expect(rest, SEQUENCE, what)?;
    }
    let (spki, _) = expect(rest, SEQUENCE, "subjectPublicKeyInfo")?;
    spki_rsa_key(spki)
}

/// The PKCS#1 RSA public key of a PEM `CERTIFICATE`, `PUBLIC KEY` or `RSA PUBLIC KEY`.
pub(crate) fn rsa_public_key_from_pem(text: &str) -> Result<Vec<u8>, String> {
    let block = pem::parse(text).map_err(|e| format!("not PEM: {e}"))?;
    match block.tag() {
        "CERTIFICATE" => certificate_rsa_key(block.contents()),
        "PUBLIC KEY" => spki_rsa_key(expect(block.contents(), SEQUENCE, "SubjectPublicKeyInfo")?.0),
        "RSA PUBLIC KEY" => Ok(block.contents().to_vec()),
        other => Err(format!("unsupported PEM block {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway self-signed certificate and its public key (`openssl x509 -pubkey`).
    const CERT: &str = include_str!("testdata/client-cert.pem");
    const PUBLIC_KEY: &str = include_str!("testdata/client-pubkey.pem");

    #[test]
    fn certificate_and_public_key_yield_the_same_rsa_key() {
        let from_cert = rsa_public_key_from_pem(CERT).unwrap();
        let from_spki = rsa_public_key_from_pem(PUBLIC_KEY).unwrap();
        assert_eq!(from_cert, from_spki);
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let (key, _) = expect(&from_cert, SEQUENCE, "RSAPublicKey").unwrap();
        let (_, rest) = expect(key, INTEGER, "modulus").unwrap();
        assert_eq!(expect(rest, INTEGER, "e").unwrap().0, [1, 0, 1]);
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
    }
}
