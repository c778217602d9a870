//! `spec.interval` durations in the Go/Flux style users already write: `30m`, `1h30m`, `90s`.

use std::time::Duration;

/// A `spec.interval` the operator cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid interval {input:?}: use a duration like 30m, 1h or 90s")]
pub struct IntervalError {
    input: String,
}

/// Parses a sequence of `<number><unit>` pairs with units `ms`, `s`, `m`, `h`.
///
/// The CRD's rules already reject anything else at `kubectl apply` (and durations past each
/// field's limit, so every value they accept parses here); this parser still refuses bad input
/// (instead of panicking or overflowing) because objects may predate the rules. The operator's
/// flags use it too.
pub fn parse_interval(input: &str) -> Result<Duration, IntervalError> {
    let err = || IntervalError {
        input: input.to_string(),
    };
    let mut rest = input.trim();
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let (part, len) = if rest.starts_with("ms") {
            (Some(Duration::from_millis(value)), 2)
        } else if rest.starts_with('s') {
            (Some(Duration::from_secs(value)), 1)
        } else if rest.starts_with('m') {
            (value.checked_mul(60).map(Duration::from_secs), 1)
        } else if rest.starts_with('h') {
            (value.checked_mul(3600).map(Duration::from_secs), 1)
        } else {
            return Err(err());
        };
        let part = part.ok_or_else(err)?;
        total = total.checked_add(part).ok_or_else(err)?;
        rest = &rest[len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_interval;
    use std::time::Duration;

    #[test]
    fn reads_go_style_durations() {
        assert_eq!(parse_interval("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_interval("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_interval("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_interval("1500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for bad in [
            "",
            "m",
            "30",
            "30x",
            "1.5h",
            "-1m",
            "99999999999999999999h",
            "1h 30m",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad} should be refused");
        }
    }
}
