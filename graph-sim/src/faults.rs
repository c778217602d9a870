//! Injected trouble: latency, a per-tenant rate limit, Graph's per-class budgets and scripted
//! failures, configured with `PUT /_sim/faults` (or at start-up) so tests and benchmarks can
//! prove a client copes with a misbehaving Graph.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rand::Rng;

use super::budgets::{Class, Meter, Window};
use super::errors::{AadError, GraphError, GraphResponse, RequestIds, default_code};
pub use super::fault_config::{ConsentRefusal, FaultConfig, ScriptedFailure, UpgradeAtLatest};

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
        tenant: Option<&str>,
        surface: Surface,
    ) -> Option<ScriptedFailure> {
        let index = self.config.failures.iter().position(|f| {
            f.count > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.tenant
                    .as_deref()
                    .is_none_or(|t| tenant.is_some_and(|caller| caller.eq_ignore_ascii_case(t)))
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

/// Uses up one of a knob's count (e.g. `upgradeNoopCount`); false when none is left.
pub(crate) fn take_one(count: &mut Option<u32>) -> bool {
    match count {
        Some(n) if *n > 0 => {
            *n -= 1;
            if *n == 0 {
                *count = None;
            }
            true
        }
        _ => {
            *count = None;
            false
        }
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

    /// The token endpoint's answer, in Entra's shape: the scripted status, OAuth `error` and
    /// AADSTS code, with Entra's description of that code unless a message is scripted.
    pub fn to_aad_error(&self) -> AadError {
        let error = self.code.as_deref().unwrap_or("temporarily_unavailable");
        let code = self.aadsts.unwrap_or(if error == "invalid_client" {
            7000215
        } else {
            90033
        });
        let description = self.message.clone().unwrap_or_else(|| {
            AadError::known_description(code)
                .unwrap_or("Simulated token endpoint failure (scripted by /_sim/faults).")
                .to_string()
        });
        let mut err = AadError::new(error, code, description);
        err.status = StatusCode::from_u16(self.status).ok();
        err.retry_after = self.retry_after;
        err
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
            tenant: None,
            status: 503,
            count,
            code: None,
            message: None,
            retry_after: None,
            aadsts: None,
            apply_first: false,
            drop_connection: false,
        }
    }

    #[test]
    fn a_failure_for_one_tenant_spares_the_others() {
        let mut faults = Faults::default();
        let mut only_a = failure(None, None, 5);
        only_a.tenant = Some("Tenant-A".into());
        faults.set(FaultConfig {
            failures: vec![only_a],
            ..Default::default()
        });
        assert!(
            faults
                .scripted("GET", "/v1.0/x", Some("tenant-b"), Surface::Graph)
                .is_none()
        );
        assert!(
            faults
                .scripted("GET", "/v1.0/x", None, Surface::Graph)
                .is_none()
        );
        assert!(
            faults
                .scripted("GET", "/v1.0/x", Some("tenant-a"), Surface::Graph)
                .is_some()
        );
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
                .scripted("GET", "/v1.0/x/upgrade", None, Surface::Graph)
                .is_some()
        );
        assert_eq!(faults.config.failures.len(), 1, "catch-all used up");
        for _ in 0..2 {
            let hit = faults
                .scripted("POST", "/v1.0/x/upgrade", None, Surface::Graph)
                .unwrap();
            assert_eq!(hit.to_graph_error().code, "ServiceUnavailable");
        }
        assert!(
            faults
                .scripted("POST", "/v1.0/x/upgrade", None, Surface::Graph)
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
                .scripted("POST", "/v1.0/$batch", None, Surface::Envelope)
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
}
