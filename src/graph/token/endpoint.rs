//! One token request on the wire: the client-credentials form, Entra's answer (`expires_in` as a
//! number or a string) and its refusals in Entra's error shape.

use std::time::Duration;

use serde::Deserialize;

use crate::graph::credentials::{CredentialSource, Secret};
use crate::graph::error::{AuthError, GraphError, ResponseIds, no_answer};

/// Where and as whom to ask for a token.
pub(super) struct TokenEndpoint {
    pub http: reqwest::Client,
    pub token_url: String,
    pub scope: String,
    pub client_id: String,
    pub credential: CredentialSource,
    /// Per request, from sending it to the end of the answer.
    pub timeout: Duration,
}

impl TokenEndpoint {
    /// Asks once: the token and its lifetime, or why not. The credential is read afresh each
    /// time (a workload identity's projected token rotates).
    pub async fn request(&self) -> Result<(Secret, Duration), GraphError> {
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
