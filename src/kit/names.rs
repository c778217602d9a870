//! Names the operator makes from other names, kept within Kubernetes' limits: an object name is
//! at most 253 characters, a label value 63. A name that does not fit keeps its head and ends
//! in a digest of the whole, so two long names that share a head still differ.

use sha2::{Digest, Sha256};

/// The longest object name the API server takes (a DNS subdomain).
pub const MAX_NAME: usize = 253;

/// `name` if it fits in `max` characters, else its head, `-`, and 8 hex characters of its
/// digest. The head loses trailing `-` and `.`, so a DNS name stays one.
pub fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let digest = digest(name, 8);
    let keep = name.floor_char_boundary(max.saturating_sub(digest.len() + 1));
    let head = name[..keep].trim_end_matches(['-', '.']);
    format!("{head}-{digest}")
}

/// The first `hex_chars` (at most 64) hex characters of the SHA-256 of `text`.
pub fn digest(text: &str, hex_chars: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(hex_chars);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_with_a_digest_of_the_whole() {
        assert_eq!(shorten("helpdesk", 63), "helpdesk");
        let long = format!("{}-{}", "a".repeat(200), "b".repeat(52));
        let short = shorten(&long, 63);
        assert_eq!(short.len(), 63);
        assert!(short.starts_with("aaaa"));
        assert_ne!(short, shorten(&format!("{long}c"), 63));
        // The head never ends in a separator.
        let dotted = format!("{}.{}", "a".repeat(53), "b".repeat(100));
        assert!(
            !shorten(&dotted, 63).contains(".-"),
            "{}",
            shorten(&dotted, 63)
        );
        assert_eq!(digest("x", 16).len(), 16);
    }
}
