//! Lenient app versions.
//!
//! Teams app manifests are meant to carry `MAJOR.MINOR.PATCH`, but real catalogs hold `"0.9"`,
//! `"1.7"` and the occasional odd string. The operator must order them all without ever failing:
//! a version string is split on `.`, each part compared numerically when it is a number, and
//! missing trailing parts count as zero (`1.7` == `1.7.0`).

use std::cmp::Ordering;
use std::fmt;

/// One version string from a Teams app manifest, ordered numerically part by part.
#[derive(Debug, Clone)]
pub struct AppVersion {
    raw: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    // Numbers sort below text so that `1.0.0` < `1.0.0-beta`'s odd tail never panics; the exact
    // order of odd strings matters less than being total and stable.
    Number(u64),
    Text(String),
}

impl AppVersion {
    /// Parses any string; never fails. Surrounding whitespace and a leading `v` are ignored.
    pub fn parse(raw: &str) -> Self {
        let trimmed = raw.trim();
        let body = trimmed
            .strip_prefix('v')
            .or_else(|| trimmed.strip_prefix('V'))
            .unwrap_or(trimmed);
        let mut parts: Vec<Part> = body
            .split('.')
            .map(|p| match p.parse::<u64>() {
                Ok(n) => Part::Number(n),
                Err(_) => Part::Text(p.to_string()),
            })
            .collect();
        // Trailing zeros carry no meaning: `1.7` and `1.7.0` are the same version.
        while matches!(parts.last(), Some(Part::Number(0))) && parts.len() > 1 {
            parts.pop();
        }
        Self {
            raw: trimmed.to_string(),
            parts,
        }
    }

    /// The string as Graph or the user wrote it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl PartialEq for AppVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for AppVersion {}

impl PartialOrd for AppVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AppVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let zero = Part::Number(0);
        let len = self.parts.len().max(other.parts.len());
        for i in 0..len {
            let a = self.parts.get(i).unwrap_or(&zero);
            let b = other.parts.get(i).unwrap_or(&zero);
            match a.cmp(b) {
                Ordering::Equal => continue,
                unequal => return unequal,
            }
        }
        Ordering::Equal
    }
}

impl fmt::Display for AppVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl From<&str> for AppVersion {
    fn from(raw: &str) -> Self {
        Self::parse(raw)
    }
}

impl serde::Serialize for AppVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> serde::Deserialize<'de> for AppVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(Self::parse(&raw))
    }
}

#[cfg(test)]
mod tests {
    use super::AppVersion;

    fn v(s: &str) -> AppVersion {
        AppVersion::parse(s)
    }

    #[test]
    fn orders_numerically_not_lexically() {
        assert!(v("1.10.0") > v("1.9.0"));
        assert!(v("2.0.0") > v("1.99.99"));
        assert!(v("0.9") < v("1.0"));
    }

    #[test]
    fn short_versions_equal_their_padded_form() {
        assert_eq!(v("1.7"), v("1.7.0"));
        assert_eq!(v("1"), v("1.0.0"));
        assert!(v("1.7") < v("1.7.1"));
    }

    #[test]
    fn odd_strings_never_panic_and_order_totally() {
        let odd = [
            "",
            ".",
            "..",
            "abc",
            "1..2",
            "v1.2",
            " 1.2 ",
            "1.2-beta",
            "18446744073709551616",
        ];
        for a in odd {
            for b in odd {
                let _ = v(a).cmp(&v(b));
            }
        }
        assert_eq!(v("v1.2"), v("1.2.0"));
        assert_eq!(v(" 1.2 ").as_str(), "1.2");
    }

    #[test]
    fn keeps_the_original_text_for_display() {
        assert_eq!(v("1.7").to_string(), "1.7");
    }
}
