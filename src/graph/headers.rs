//! What Graph's response headers tell the client: correlation ids and `Retry-After`.

use std::time::{Duration, SystemTime};

/// No sane server asks for more than this; a larger value is clamped rather than obeyed.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The correlation headers of one response.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResponseIds {
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub retry_after: Option<Duration>,
}

impl ResponseIds {
    /// Reads headers by case-insensitive name, from a live response or a `$batch` item.
    pub(crate) fn from_lookup<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            request_id: get("request-id").map(str::to_string),
            client_request_id: get("client-request-id").map(str::to_string),
            retry_after: get("retry-after").and_then(|v| parse_retry_after(v, SystemTime::now())),
        }
    }

    pub(crate) fn from_headers(headers: &reqwest::header::HeaderMap) -> Self {
        Self::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()))
    }
}

/// Parses a `Retry-After` value: delta-seconds, possibly fractional as Graph sends them
/// (`"2.128"`), or an HTTP-date. A date in the past means "now". Garbage yields `None` so the
/// caller falls back to its own backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        let seconds: f64 = value.parse().ok()?;
        if !seconds.is_finite() || seconds < 0.0 {
            return None;
        }
        let delay = Duration::try_from_secs_f64(seconds).unwrap_or(MAX_RETRY_AFTER);
        return Some(delay.min(MAX_RETRY_AFTER));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let at = SystemTime::from(at);
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_fractional_and_integer_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("2.128", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("999999999", now),
            Some(MAX_RETRY_AFTER),
            "absurd values are clamped"
        );
    }

    #[test]
    fn retry_after_accepts_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_767); // 08:49:27 GMT
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(10))
        );
        let later = now + Duration::from_secs(60);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO),
            "a date in the past means retry now"
        );
    }

    #[test]
    fn retry_after_rejects_garbage() {
        let now = SystemTime::now();
        for bad in ["", "soon", "-1", "1.2.3", "NaN", "inf", "2s", "Sun, 99 Foo"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
