//! Injected trouble: latency, a per-tenant rate limit, Graph's per-class budgets and scripted
//! failures, configured with `PUT /_sim/faults` (or at start-up) so tests and benchmarks can
//! prove a client copes with a misbehaving Graph.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::budgets::{Budgets, Class, Meter, Window};
use super::errors::{GraphError, GraphResponse, RequestIds, default_code};

/// The whole fault configuration; `PUT /_sim/faults` replaces it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultConfig {
    /// Added before every Graph and token request is answered (once per `$batch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Spreads the latency uniformly over `latencyMs ± latencyJitterMs`, drawn per request (at
    /// most `latencyMs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_jitter_ms: Option<u64>,
    /// Graph requests per tenant per sliding second (each `$batch` item counts; throttled
    /// requests count too, as in Graph). Over it → 429 `TooManyRequests` + `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// Graph's per-class limits, each per tenant per sliding second and counted like
    /// `rateLimitPerSecond` (which still applies on top). Absent = no per-class limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<Budgets>,
    /// Overrides the computed `Retry-After` of rate-limit and budget 429s (may be fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<f64>,
    /// Write `@odata.nextLink`/`@odata.context` on the Graph resource host instead of the host
    /// the client addressed (overrides `--canonical-next-links` while set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_next_links: Option<bool>,
    /// Eventual consistency: for this many milliseconds after a write (install, upgrade,
    /// uninstall) for a user, reads of that user's installations (list, get, navigations) show
    /// the state as of `now - readLagMs`, i.e. from before every write younger than the lag.
    /// Writes act on the true state. Only writes made under this configuration lag: each
    /// `PUT`/`DELETE /_sim/faults` (and reset) starts with fresh reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_lag_ms: Option<u64>,
    /// What upgrading an installation already at the latest published version answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_at_latest: Option<UpgradeAtLatest>,
    /// Tried in order; the first match answers and uses up one of its `count`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ScriptedFailure>,
}

/// Graph's answer to an upgrade with nothing to upgrade to is undocumented; both are plausible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UpgradeAtLatest {
    /// 204, as for a real upgrade (the installation is re-applied at the same version).
    #[default]
    NoContent,
    /// 400 `BadRequest`, nothing changes.
    BadRequest,
}

/// A failure to answer to the next `count` matching requests.
///
/// Matching is on the HTTP method (case-insensitive, absent = any) and a substring of the path
/// as logged (e.g. `/v1.0/users/…/upgrade`; absent = any Graph call). The token endpoint and the
/// `$batch` envelope are only failed by failures whose `pathContains` names them (e.g.
/// `"/oauth2/"`, `"$batch"`), so a catch-all failure hits the Graph calls a test is about.
/// Graph calls meet them after the token check and the rate limit, before routing.
///
/// `applyFirst` performs the request (the write takes effect) and then answers the scripted
/// status instead of the real one; on a `$batch` envelope it runs the items first, and a 424
/// envelope then carries the items' normal `{"responses": […]}` body (older Graph answered a
/// throttled batch so). `dropConnection` answers nothing: the server closes the connection
/// without an HTTP response (after applying the request with `applyFirst`); `status` is then
/// ignored, and the request log records status 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptedFailure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    /// 400–599 (ignored, and may be left out, with `dropConnection`).
    #[serde(default)]
    pub status: u16,
    #[serde(default = "one")]
    pub count: u32,
    /// The Graph error `code` (default: the usual one for the status, e.g. `ServiceUnavailable`;
    /// for the token endpoint, the OAuth `error`, default `temporarily_unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Sends `Retry-After` with this many seconds (may be fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<f64>,
    /// Perform the request first, then answer the failure.
    #[serde(default, skip_serializing_if = "is_false")]
    pub apply_first: bool,
    /// Close the connection without answering.
    #[serde(default, skip_serializing_if = "is_false")]
    pub drop_connection: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn one() -> u32 {
    1
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        let ok_secs =
            |s: Option<f64>| s.is_none_or(|s| s.is_finite() && (0.0..=86_400.0).contains(&s));
        if !ok_secs(self.retry_after_seconds) {
            return Err("retryAfterSeconds must be 0..86400".into());
        }
        if self.rate_limit_per_second == Some(0) {
            return Err("rateLimitPerSecond must be at least 1 (omit it for no limit)".into());
        }
        if self.latency_ms.is_some_and(|ms| ms > 600_000) {
            return Err("latencyMs must be at most 600000".into());
        }
        if self.latency_jitter_ms.unwrap_or(0) > self.latency_ms.unwrap_or(0) {
            return Err(
                "latencyJitterMs must be at most latencyMs (latency is never negative)".into(),
            );
        }
        if self.read_lag_ms.is_some_and(|ms| ms > 600_000) {
            return Err("readLagMs must be at most 600000".into());
        }
        for f in &self.failures {
            if f.count == 0 {
                return Err("failure count must be at least 1".into());
            }
            if !f.drop_connection && !(400..=599).contains(&f.status) {
                return Err(format!("failure status {} is not 400..599", f.status));
            }
            if !ok_secs(f.retry_after) {
                return Err("failure retryAfter must be 0..86400".into());
            }
        }
        Ok(())
    }
}

/// Where a request came in, for matching scripted failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    Graph,
    /// The token endpoint or the `$batch` envelope.
    Envelope,
}

/// Live fault state: the configuration plus the rate limiter's and the budgets' windows.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub config: FaultConfig,
    windows: HashMap<String, Window>,
    budgets: Meter,
}

impl Faults {
    pub fn set(&mut self, config: FaultConfig) {
        self.config = config;
        self.windows.clear();
        self.budgets.clear();
    }

    /// This request's latency: `latencyMs ± latencyJitterMs`, uniformly.
    pub fn latency(&self) -> Option<Duration> {
        let ms = self.config.latency_ms.unwrap_or(0);
        let jitter = self.config.latency_jitter_ms.unwrap_or(0).min(ms);
        let ms = if jitter > 0 {
            rand::rng().random_range(ms - jitter..=ms + jitter)
        } else {
            ms
        };
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// Counts one request of `class` for `tenant` against the rate limit and the class's budget
    /// (against both even when one of them throttles it, as Graph counts throttled requests);
    /// a 429 error when it is over either.
    pub fn throttle(&mut self, tenant: &str, class: Class, now: Instant) -> Result<(), GraphError> {
        let overall = match self.config.rate_limit_per_second {
            Some(limit) => self
                .windows
                .entry(tenant.to_ascii_lowercase())
                .or_default()
                .count(now, limit),
            None => Ok(()),
        };
        let budget = match &self.config.budgets {
            Some(budgets) => self.budgets.count(budgets, tenant, class, now),
            None => Ok(()),
        };
        let wait = match (overall, budget) {
            (Ok(()), Ok(())) => return Ok(()),
            (Err(a), Err(b)) => a.max(b),
            (Err(w), Ok(())) | (Ok(()), Err(w)) => w,
        };
        let retry = self.config.retry_after_seconds.unwrap_or(wait);
        let mut err = GraphError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests. Please retry after the time specified in the Retry-After header.",
        );
        err.retry_after = Some(retry);
        Err(err)
    }

    /// The first scripted failure matching this request, used up by one.
    pub fn scripted(
        &mut self,
        method: &str,
        path: &str,
        surface: Surface,
    ) -> Option<ScriptedFailure> {
        let index = self.config.failures.iter().position(|f| {
            f.count > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && match (&f.path_contains, surface) {
                    (Some(p), _) => path.contains(p.as_str()),
                    (None, Surface::Graph) => true,
                    (None, Surface::Envelope) => false,
                }
        })?;
        let failure = &mut self.config.failures[index];
        failure.count -= 1;
        let hit = failure.clone();
        if failure.count == 0 {
            self.config.failures.remove(index);
        }
        Some(hit)
    }
}

impl ScriptedFailure {
    /// What the client gets: the scripted error, or nothing at all.
    pub fn to_response(&self, ids: &RequestIds) -> GraphResponse {
        if self.drop_connection {
            GraphResponse::dropped()
        } else {
            GraphResponse::error(&self.to_graph_error(), ids)
        }
    }

    pub fn to_graph_error(&self) -> GraphError {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut err = GraphError::new(
            status,
            self.code.as_deref().unwrap_or(default_code(status)),
            self.message
                .clone()
                .unwrap_or_else(|| format!("Simulated {} (scripted by /_sim/faults).", status)),
        );
        err.retry_after = self
            .retry_after
            .or((status == StatusCode::TOO_MANY_REQUESTS).then_some(1.0));
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(method: Option<&str>, path: Option<&str>, count: u32) -> ScriptedFailure {
        ScriptedFailure {
            method: method.map(str::to_string),
            path_contains: path.map(str::to_string),
            status: 503,
            count,
            code: None,
            message: None,
            retry_after: None,
            apply_first: false,
            drop_connection: false,
        }
    }

    #[test]
    fn scripted_failures_match_in_order_and_run_out() {
        let mut faults = Faults::default();
        faults.set(FaultConfig {
            failures: vec![
                failure(Some("post"), Some("/upgrade"), 2),
                failure(None, None, 1),
            ],
            ..Default::default()
        });
        assert!(
            faults
                .scripted("GET", "/v1.0/x/upgrade", Surface::Graph)
                .is_some()
        );
        assert_eq!(faults.config.failures.len(), 1, "catch-all used up");
        for _ in 0..2 {
            let hit = faults
                .scripted("POST", "/v1.0/x/upgrade", Surface::Graph)
                .unwrap();
            assert_eq!(hit.to_graph_error().code, "ServiceUnavailable");
        }
        assert!(
            faults
                .scripted("POST", "/v1.0/x/upgrade", Surface::Graph)
                .is_none()
        );
    }

    #[test]
    fn envelopes_only_match_failures_that_name_them() {
        let mut faults = Faults::default();
        faults.set(FaultConfig {
            failures: vec![failure(None, None, 5), failure(None, Some("$batch"), 1)],
            ..Default::default()
        });
        assert_eq!(
            faults
                .scripted("POST", "/v1.0/$batch", Surface::Envelope)
                .and_then(|f| f.path_contains),
            Some("$batch".to_string())
        );
    }

    #[test]
    fn rate_limit_counts_throttled_requests_and_says_when_to_retry() {
        let mut faults = Faults::default();
        faults.set(FaultConfig {
            rate_limit_per_second: Some(2),
            ..Default::default()
        });
        let t0 = Instant::now();
        assert!(faults.throttle("T", Class::Other, t0).is_ok());
        assert!(faults.throttle("t", Class::Install, t0).is_ok());
        let err = faults.throttle("t", Class::Delete, t0).unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.retry_after, Some(1.0));
        assert!(
            faults.throttle("other", Class::Other, t0).is_ok(),
            "per tenant"
        );
        assert!(
            faults
                .throttle("t", Class::Other, t0 + Duration::from_millis(999))
                .is_err()
        );
        // The three at t0 leave together; the 999 ms one stays, so one more fits.
        assert!(
            faults
                .throttle("t", Class::Other, t0 + Duration::from_millis(1000))
                .is_ok()
        );
    }

    #[test]
    fn latency_jitter_stays_within_bounds() {
        let mut faults = Faults::default();
        faults.set(FaultConfig {
            latency_ms: Some(80),
            latency_jitter_ms: Some(20),
            ..Default::default()
        });
        let drawn: Vec<u128> = (0..2000)
            .map(|_| faults.latency().unwrap().as_millis())
            .collect();
        assert!(drawn.iter().all(|ms| (60..=100).contains(ms)), "{drawn:?}");
        assert!(
            drawn.contains(&60) && drawn.contains(&100),
            "both ends are reachable"
        );
        faults.set(FaultConfig {
            latency_ms: Some(5),
            latency_jitter_ms: Some(5),
            ..Default::default()
        });
        assert!(
            (0..200).any(|_| faults.latency().is_none()),
            "0 ms is no delay"
        );
    }

    #[test]
    fn validation_rejects_nonsense() {
        let bad = [
            r#"{"rateLimitPerSecond": 0}"#,
            r#"{"retryAfterSeconds": -1}"#,
            r#"{"failures":[{"status": 200}]}"#,
            r#"{"failures":[{"count": 1}]}"#,
            r#"{"failures":[{"status": 503, "count": 0}]}"#,
            r#"{"readLagMs": 600001}"#,
            r#"{"latencyMs": 10, "latencyJitterMs": 11}"#,
            r#"{"latencyJitterMs": 1}"#,
        ];
        for json in bad {
            let config: FaultConfig = serde_json::from_str(json).unwrap();
            assert!(config.validate().is_err(), "{json}");
        }
        assert!(serde_json::from_str::<FaultConfig>(r#"{"latency": 1}"#).is_err());
        assert!(serde_json::from_str::<FaultConfig>(r#"{"upgradeAtLatest": "maybe"}"#).is_err());
        for budgets in [
            r#"{"install": -1}"#,
            r#"{"install": 1.5}"#,
            r#"{"install": "NaN"}"#,
            r#"{"reads": 30}"#,
        ] {
            let json = format!(r#"{{"budgets": {budgets}}}"#);
            assert!(
                serde_json::from_str::<FaultConfig>(&json).is_err(),
                "{json}"
            );
        }
        for latency in [r#"{"latencyMs": -80}"#, r#"{"latencyJitterMs": 2.5}"#] {
            assert!(
                serde_json::from_str::<FaultConfig>(latency).is_err(),
                "{latency}"
            );
        }
        let dropped: FaultConfig =
            serde_json::from_str(r#"{"failures":[{"dropConnection": true}]}"#).unwrap();
        assert_eq!(dropped.validate(), Ok(()), "no status needed to drop");
    }
}
