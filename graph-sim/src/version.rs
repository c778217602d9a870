//! How the simulator orders `teamsAppDefinition.version` strings to find an app's latest
//! published definition. Deliberately its own small rule, independent of the operator's version
//! parsing: the simulator stands in for Graph, so the operator's code must not be what decides
//! what "latest" means in the tests that check the operator.
//!
//! The rule: split on `.`; compare part by part, a missing or empty part counting as `0`; two numeric parts
//! compare as numbers (`9 < 10`, leading zeros ignored), a numeric part sorts before a
//! non-numeric one, two non-numeric parts compare as text, case-insensitively. So
//! `1.9.0 < 1.10.0`, `0.9 < 0.10`, `1.0 == 1.0.0`, `1.0.0 < 1.0.beta`.

use std::cmp::Ordering;

/// Orders two version strings by the rule above; never fails, whatever the strings hold.
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    let (a, b): (Vec<&str>, Vec<&str>) =
        (a.trim().split('.').collect(), b.trim().split('.').collect());
    (0..a.len().max(b.len()))
        .map(|i| part(a.get(i).copied()).cmp(&part(b.get(i).copied())))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// One dotted part, ready to compare: numbers first (by digit count, then digits, which orders
/// numbers of any length without overflow), then text.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Number(usize, String),
    Text(String),
}

fn part(raw: Option<&str>) -> Part {
    let raw = raw.unwrap_or("0").trim();
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        let digits = raw.trim_start_matches('0');
        Part::Number(digits.len(), digits.to_string())
    } else {
        Part::Text(raw.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn numeric_parts_compare_as_numbers() {
        assert_eq!(compare("1.9.0", "1.10.0"), Less);
        assert_eq!(compare("0.9", "0.10"), Less);
        assert_eq!(compare("2.0.0", "10.0.0"), Less);
        assert_eq!(compare("1.01", "1.1"), Equal);
        assert_eq!(compare("99999999999999999999999.0", "1.0"), Greater);
    }

    #[test]
    fn missing_parts_are_zero() {
        assert_eq!(compare("1.0", "1.0.0"), Equal);
        assert_eq!(compare("1", "1.0.1"), Less);
        assert_eq!(compare("1.7", "1.6.9"), Greater);
    }

    #[test]
    fn text_parts_sort_after_numbers() {
        assert_eq!(compare("1.0.0", "1.0.beta"), Less);
        assert_eq!(compare("1.0.Beta", "1.0.beta"), Equal);
        assert_eq!(compare("1.0.alpha", "1.0.beta"), Less);
        assert_eq!(compare("1.", "1"), Equal, "an empty part is 0");
    }
}
