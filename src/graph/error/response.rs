//! Graph's error answers (and requests that got none) turned into [`GraphError`]s that keep
//! Graph's code, message, request ids and `Retry-After`.

use std::time::Duration;

use serde::Deserialize;

use super::{GraphError, ResponseIds};

/// Graph messages end up in Kubernetes condition messages; keep them readable.
const MAX_MESSAGE_CHARS: usize = 400;

/// An error answer from Graph itself (a non-2xx HTTP status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub method: String,
    /// The request path without query string.
    pub path: String,
    pub status: u16,
    /// Graph's `error.code`, e.g. `NotFound`, `Forbidden`, `TooManyRequests`.
    pub code: Option<String>,
    /// `innerError.code`, where Graph names the Teams backend's exception (e.g.
    /// `AppIsTenantAdminPreinstalled`) under a generic `error.code`.
    pub inner_code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub retry_after: Option<Duration>,
}

impl GraphError {
    /// Builds an [`GraphError::Api`] from an error response (of a direct call or a `$batch` item).
    pub(crate) fn from_response(
        method: &str,
        path: &str,
        status: u16,
        headers: &ResponseIds,
        body: &[u8],
    ) -> Self {
        let parsed = serde_json::from_slice::<ErrorEnvelope>(body).ok();
        let detail = parsed.as_ref().map(|p| &p.error);
        let code = detail
            .and_then(|d| d.code.clone())
            .filter(|c| !c.is_empty());
        let message = detail
            .and_then(|d| d.message.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| fallback_message(status, body));
        let inner = detail.and_then(|d| d.inner_error.as_ref());
        let request_id = headers
            .request_id
            .clone()
            .or_else(|| inner.and_then(|i| i.find("request-id")));
        let client_request_id = headers
            .client_request_id
            .clone()
            .or_else(|| inner.and_then(|i| i.find("client-request-id")));
        Self::Api(Box::new(ApiError {
            method: method.to_string(),
            path: path.to_string(),
            status,
            code,
            inner_code: inner.and_then(|i| i.find("code")).filter(|c| !c.is_empty()),
            message: truncate(&message),
            request_id,
            client_request_id,
            retry_after: headers.retry_after,
        }))
    }
}

/// A request that got no HTTP answer: timed out, or failed to connect or to read.
pub(crate) fn no_answer(
    method: &str,
    path: &str,
    client_request_id: String,
    timeout: Duration,
    err: reqwest::Error,
) -> GraphError {
    if err.is_timeout() {
        return GraphError::Timeout {
            method: method.to_string(),
            path: path.to_string(),
            client_request_id,
            after: timeout,
        };
    }
    let err = err.without_url();
    let mut detail = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(inner) = cause {
        detail.push_str(": ");
        detail.push_str(&inner.to_string());
        cause = inner.source();
    }
    GraphError::Transport {
        method: method.to_string(),
        path: path.to_string(),
        client_request_id,
        detail,
        source: std::sync::Arc::new(err),
    }
}

fn fallback_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status} without an error body")
    } else {
        text.to_string()
    }
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
    inner_error: Option<InnerError>,
}

/// `innerError` is loosely specified: ids may sit at any depth, under `innerError` again.
#[derive(Deserialize)]
struct InnerError(serde_json::Map<String, serde_json::Value>);

impl InnerError {
    fn find(&self, key: &str) -> Option<String> {
        fn walk(map: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return Some(s.clone());
            }
            map.iter().find_map(|(k, v)| match v {
                serde_json::Value::Object(inner) if k.eq_ignore_ascii_case("innererror") => {
                    walk(inner, key)
                }
                _ => None,
            })
        }
        walk(&self.0, key)
    }
}
