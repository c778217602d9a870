//! Access tokens for Graph: client-credentials grant, cached and refreshed ahead of expiry.
//!
//! Token lifetimes are random (60–90 minutes), so the refresh point comes from each response's
//! `expires_in`. One refresh is in flight at a time: callers queue on a mutex instead of stampeding
//! the token endpoint when the token ages out under load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::credentials::{CredentialSource, Secret};
use super::error::{AuthError, GraphError, ResponseIds, no_answer};
use super::metrics::GraphMetrics;
use crate::backoff::Backoff;

/// Refresh this long before expiry at most…
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// …and at most this fraction of the lifetime (short-lived tokens, e.g. in the simulator).
const REFRESH_MARGIN_FRACTION: f64 = 0.1;

/// A bearer token and the identity of the refresh that produced it.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub secret: Secret,
    /// Increments on every refresh; lets a 401 invalidate only the token it was sent with.
    pub generation: u64,
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
    expires_at: Instant,
}

pub(crate) struct TokenProvider {
    http: reqwest::Client,
    token_url: String,
    scope: String,
    client_id: String,
    credential: CredentialSource,
    timeout: Duration,
    backoff: Backoff,
    max_attempts: u32,
    metrics: Arc<dyn GraphMetrics>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    generation: u64,
}

pub(crate) struct TokenProviderConfig {
    pub token_url: String,
    pub scope: String,
    pub client_id: String,
    pub credential: CredentialSource,
    pub timeout: Duration,
    pub backoff: Backoff,
    pub max_attempts: u32,
}

impl TokenProvider {
    pub fn new(
        http: reqwest::Client,
        config: TokenProviderConfig,
        metrics: Arc<dyn GraphMetrics>,
    ) -> Self {
        Self {
            http,
            token_url: config.token_url,
            scope: config.scope,
            client_id: config.client_id,
            credential: config.credential,
            timeout: config.timeout,
            backoff: config.backoff,
            max_attempts: config.max_attempts.max(1),
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    /// A token valid for a while yet, refreshing it first when it is within its margin.
    pub async fn token(&self) -> Result<AccessToken, GraphError> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(cached) = &state.cached
            && now < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        match self.fetch().await {
            Ok((secret, lifetime)) => {
                state.generation += 1;
                let token = AccessToken {
                    secret,
                    generation: state.generation,
                };
                let now = Instant::now();
                state.cached = Some(Cached {
                    token: token.clone(),
                    refresh_at: now + lifetime.saturating_sub(refresh_margin(lifetime)),
                    expires_at: now + lifetime,
                });
                Ok(token)
            }
            // A failed early refresh is not fatal while the old token still works.
            Err(err) => match &state.cached {
                Some(cached) if Instant::now() < cached.expires_at => {
                    tracing::warn!(error = %err, "token refresh failed; using the current token until it expires");
                    Ok(cached.token.clone())
                }
                _ => Err(err),
            },
        }
    }

    /// Graph said 401 to `used`: drop it so the next [`TokenProvider::token`] refreshes. A token
    /// already replaced by a concurrent refresh is left alone.
    pub async fn invalidate(&self, used: &AccessToken) {
        let mut state = self.state.lock().await;
        if state
            .cached
            .as_ref()
            .is_some_and(|c| c.token.generation == used.generation)
        {
            state.cached = None;
        }
    }

    async fn fetch(&self) -> Result<(Secret, Duration), GraphError> {
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.fetch_once().await;
            self.metrics
                .token_refresh(result.is_ok(), started.elapsed());
            match result {
                Ok(token) => return Ok(token),
                Err(err) if err.is_retryable() && attempt < self.max_attempts => {
                    let delay = err
                        .retry_after()
                        .unwrap_or_else(|| self.backoff.delay(attempt));
                    tracing::warn!(error = %err, attempt, ?delay, "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn fetch_once(&self) -> Result<(Secret, Duration), GraphError> {
        let credential = self
            .credential
            .form_fields(&self.client_id, &self.token_url)
            .await?;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("scope", &self.scope),
        ];
        form.extend(credential.iter().map(|(k, v)| (*k, v.expose())));
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let sent = self
            .http
            .post(&self.token_url)
            .header("client-request-id", &client_request_id)
            .form(&form)
            .timeout(self.timeout)
            .send()
            .await;
        // No answer at all (connection, timeout), before or while reading the body.
        let unanswered = |e| {
            no_answer(
                "POST",
                "token endpoint",
                client_request_id.clone(),
                self.timeout,
                e,
            )
        };
        let response = sent.map_err(unanswered)?;
        let status = response.status().as_u16();
        let ids = ResponseIds::from_headers(response.headers());
        let body = response.bytes().await.map_err(unanswered)?;
        tracing::debug!(status, %client_request_id, "token request");
        if (200..300).contains(&status)
            && let Ok(ok) = serde_json::from_slice::<TokenResponse>(&body)
            && !ok.access_token.is_empty()
        {
            return Ok((Secret::new(ok.access_token), ok.expires_in.lifetime()));
        }
        Err(GraphError::Auth(Box::new(parse_aad_error(
            status, &ids, &body,
        ))))
    }
}

/// How long before expiry to refresh: 5 minutes, or 10% of the lifetime if that is smaller.
pub(crate) fn refresh_margin(lifetime: Duration) -> Duration {
    MAX_REFRESH_MARGIN.min(lifetime.mul_f64(REFRESH_MARGIN_FRACTION))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: ExpiresIn,
}

/// `expires_in` is a number in the v2 endpoint, a string in some older ones.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Number(f64),
    Text(String),
}

impl ExpiresIn {
    fn lifetime(&self) -> Duration {
        let seconds = match self {
            Self::Number(n) => *n,
            Self::Text(t) => t.trim().parse().unwrap_or(0.0),
        };
        if seconds.is_finite() && seconds > 0.0 {
            Duration::try_from_secs_f64(seconds).unwrap_or(Duration::from_secs(3600))
        } else {
            Duration::ZERO
        }
    }
}

#[derive(Deserialize, Default)]
struct AadErrorBody {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<i64>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
}

fn parse_aad_error(status: u16, ids: &ResponseIds, body: &[u8]) -> AuthError {
    let parsed: AadErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let error = parsed.error.unwrap_or_else(|| {
        if (200..300).contains(&status) {
            "invalid_token_response".to_string()
        } else {
            format!("http_{status}")
        }
    });
    AuthError {
        status: (!(200..300).contains(&status)).then_some(status),
        error,
        description: parsed.error_description,
        error_codes: parsed.error_codes,
        trace_id: parsed.trace_id.or_else(|| ids.request_id.clone()),
        correlation_id: parsed
            .correlation_id
            .or_else(|| ids.client_request_id.clone()),
        retry_after: ids.retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_five_minutes_or_ten_percent() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3599)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(60)),
            Duration::from_secs(6)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn parses_aad_errors() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215],"trace_id":"tr","correlation_id":"co"}"#;
        let e = parse_aad_error(401, &ResponseIds::default(), body);
        assert_eq!(e.error, "invalid_client");
        assert_eq!(e.error_codes, vec![7000215]);
        assert_eq!(e.trace_id.as_deref(), Some("tr"));
        assert!(!e.is_retryable());

        let body = br#"{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found","error_codes":[70021]}"#;
        assert!(parse_aad_error(400, &ResponseIds::default(), body).is_retryable());

        let body = br#"{"error":"temporarily_unavailable"}"#;
        assert!(parse_aad_error(503, &ResponseIds::default(), body).is_retryable());

        let e = parse_aad_error(502, &ResponseIds::default(), b"<html>bad gateway</html>");
        assert_eq!(e.error, "http_502");
        assert!(e.is_retryable());
    }

    #[test]
    fn expires_in_as_number_or_text() {
        assert_eq!(
            ExpiresIn::Number(3599.0).lifetime(),
            Duration::from_secs(3599)
        );
        assert_eq!(
            ExpiresIn::Text("60".into()).lifetime(),
            Duration::from_secs(60)
        );
        assert_eq!(ExpiresIn::Text("x".into()).lifetime(), Duration::ZERO);
    }
}
