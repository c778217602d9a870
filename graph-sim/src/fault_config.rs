//! The fault configuration: what `PUT /_sim/faults` (or the seed's `faults`, or the command
//! line) sets — latency, throttling, scripted failures and the knobs that model Graph's rough
//! edges — and how it is checked. [`super::faults`] applies it.

use serde::{Deserialize, Serialize};

use super::budgets::Budgets;
use super::seed::TenantSettings;

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
    /// Every tenant's `directoryLagMs` while set (see [`TenantSettings::directory_lag_ms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_lag_ms: Option<u64>,
    /// Every tenant's `directoryFlap` while set (see [`TenantSettings::directory_flap`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_flap: Option<f64>,
    /// Every tenant's `pageTokenTtlMs` while set (see [`TenantSettings::page_token_ttl_ms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token_ttl_ms: Option<u64>,
    /// Every tenant's `catalogLagMs` while set (see [`TenantSettings::catalog_lag_ms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_lag_ms: Option<u64>,
    /// Every tenant's `blockedApps` while set (see [`TenantSettings::blocked_apps`]); it
    /// replaces a tenant's list rather than adding to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_apps: Vec<String>,
    /// The next this-many upgrade calls that pass Teams' checks answer 204 and change nothing (the
    /// installation stays at its version), as Graph's upgrade sometimes does; each uses one up
    /// (`GET /_sim/faults` shows what is left). 0 or absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_noop_count: Option<u32>,
    /// What upgrading an installation already at the latest published version answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_at_latest: Option<UpgradeAtLatest>,
    /// How an install or upgrade whose `consentedPermissionSet` is missing or does not match the
    /// target definition's required resource-specific permissions is refused (default 400
    /// `BadRequest`, see `rsc`); each field optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_refusal: Option<ConsentRefusal>,
    /// Tried in order; the first match answers and uses up one of its `count`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ScriptedFailure>,
    /// Milliseconds between a change (or a lifecycle event) and the POST of its notification to
    /// the subscriber (Graph delivers "usually within seconds"). Absent = 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_delay_ms: Option<u64>,
    /// The share (0–1) of change notifications silently not sent (logged as `dropped` in
    /// `GET /_sim/notifications`), drawn from a generator seeded with `notificationDropSeed`:
    /// the same configuration and the same changes drop the same notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_drop_rate: Option<f64>,
    /// The seed of `notificationDropRate`'s draws (default 0); each `PUT /_sim/faults` starts the
    /// sequence again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_drop_seed: Option<u64>,
    /// Subscriptions created or renewed from now on expire at most this many minutes ahead,
    /// whatever `expirationDateTime` asked for (the answer shows the shortened expiry, as Graph
    /// does where a resource's lifetime is shorter): a short simulated lifetime to exercise
    /// renewal. At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_lifetime_cap_minutes: Option<u64>,
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

/// The answer to a consent that does not match, in place of the default; absent fields keep the
/// default's. Graph's real answer is not documented, so a test can try the others a client must
/// survive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentRefusal {
    /// 400–599.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
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
    /// Only calls of this tenant (by its seeded id, case-insensitive): the tenant of the
    /// caller's token, or the tenant in a token request's URL. Absent: every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// 400–599 (ignored, and may be left out, with `dropConnection`).
    #[serde(default)]
    pub status: u16,
    #[serde(default = "one")]
    pub count: u32,
    /// The Graph error `code` (default: the usual one for the status, e.g. `ServiceUnavailable`;
    /// for the token endpoint, the OAuth `error`, e.g. `invalid_client`, default
    /// `temporarily_unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The Graph error `message`; for the token endpoint, the text after `AADSTSnnnn: ` in
    /// `error_description` (default: Entra's wording for the AADSTS code when the simulator
    /// knows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The token endpoint only: the Entra (AADSTS) error code of the answer, in `error_codes` and
    /// as `error_description`'s `AADSTSnnnn:` prefix, e.g. 700213 (no matching federated identity
    /// record) or 70021. Default: 7000215 for `invalid_client`, else 90033.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aadsts: Option<u32>,
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
    pub fn is_empty(&self) -> bool {
        *self == FaultConfig::default()
    }

    /// The tenant knobs this configuration overrides in every tenant.
    pub fn tenant_overrides(&self) -> TenantSettings {
        TenantSettings {
            directory_lag_ms: self.directory_lag_ms,
            directory_flap: self.directory_flap,
            page_token_ttl_ms: self.page_token_ttl_ms,
            catalog_lag_ms: self.catalog_lag_ms,
            blocked_apps: (!self.blocked_apps.is_empty()).then(|| self.blocked_apps.clone()),
        }
    }

    /// This configuration with `over`'s keys where it has them (a key is replaced whole:
    /// `budgets` as one, `failures` as one list): the seed's faults under the command line's.
    pub fn overlaid(&self, over: &FaultConfig) -> Result<FaultConfig, String> {
        let as_object = |c: &FaultConfig| match serde_json::to_value(c) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err("a fault configuration is an object".to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut merged = as_object(self)?;
        merged.extend(as_object(over)?);
        serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| e.to_string())
    }

    pub fn validate(&self) -> Result<(), String> {
        self.tenant_overrides().validate()?;
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
        if let Some(status) = self.consent_refusal.as_ref().and_then(|r| r.status)
            && !(400..=599).contains(&status)
        {
            return Err(format!("consentRefusal status {status} is not 400..599"));
        }
        if self.notification_delay_ms.is_some_and(|ms| ms > 600_000) {
            return Err("notificationDelayMs must be at most 600000".into());
        }
        if self
            .notification_drop_rate
            .is_some_and(|r| !(r.is_finite() && (0.0..=1.0).contains(&r)))
        {
            return Err("notificationDropRate must be between 0 and 1".into());
        }
        if self.subscription_lifetime_cap_minutes == Some(0) {
            return Err("subscriptionLifetimeCapMinutes must be at least 1".into());
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

#[cfg(test)]
mod tests {
    use super::*;

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
            r#"{"consentRefusal": {"status": 200}}"#,
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
