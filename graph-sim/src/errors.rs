//! Response and error shapes: Graph's `{"error":{"code","message","innerError"}}` and Entra's
//! OAuth error body, plus the `request-id` / `client-request-id` pair every response carries.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// The correlation ids of one request: the client's `client-request-id` (echoed, or generated
/// when absent) and our `request-id`.
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    /// Fresh ids, keeping the client's `client-request-id` when it sent a usable one.
    pub fn from_client(client_request_id: Option<&str>) -> Self {
        let fresh = || uuid::Uuid::new_v4().to_string();
        Self {
            request_id: fresh(),
            client_request_id: client_request_id
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 200)
                .map_or_else(fresh, str::to_string),
        }
    }

    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_client(
            headers
                .get("client-request-id")
                .and_then(|v| v.to_str().ok()),
        )
    }
}

/// A Graph error before it is rendered for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Seconds for a `Retry-After` header (may be fractional).
    pub retry_after: Option<f64>,
    /// `innerError.code`: the Teams backend's exception type, where Graph passes one on (e.g.
    /// `AppIsTenantAdminPreinstalled`).
    pub inner_code: Option<String>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            retry_after: None,
            inner_code: None,
        }
    }

    /// This error with `innerError.code`.
    pub fn with_inner_code(mut self, code: &str) -> Self {
        self.inner_code = Some(code.to_string());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }

    pub fn body(&self, ids: &RequestIds) -> Value {
        let mut body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now()).to_string(),
                "request-id": ids.request_id,
                "client-request-id": ids.client_request_id,
            }
        }});
        if let Some(code) = &self.inner_code {
            body["error"]["innerError"]["code"] = json!(code);
        }
        body
    }
}

/// The conventional Graph error code for a status, used when a scripted failure names none.
pub fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "InvalidAuthenticationToken",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        424 => "FailedDependency",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "UnknownError",
    }
}

/// Formats seconds for `Retry-After`: whole numbers without a fraction, others as given
/// (Graph has been seen to send `2.128`).
pub fn format_retry_after(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("{}", seconds as u64)
    } else {
        format!("{seconds}")
    }
}

/// One Graph answer, independent of transport: an HTTP response or a `$batch` item.
#[derive(Debug, Clone)]
pub struct GraphResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// No answer at all: the connection is closed instead (a scripted `dropConnection`).
    pub dropped: bool,
}

impl GraphResponse {
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
            dropped: false,
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
            dropped: false,
        }
    }

    /// The connection is closed without a response.
    pub fn dropped() -> Self {
        Self {
            dropped: true,
            ..Self::empty(StatusCode::SERVICE_UNAVAILABLE)
        }
    }

    /// The status the request log records: 0 when nothing was answered.
    pub fn logged_status(&self) -> u16 {
        if self.dropped {
            0
        } else {
            self.status.as_u16()
        }
    }

    pub fn error(err: &GraphError, ids: &RequestIds) -> Self {
        let mut response = Self::json(err.status, err.body(ids));
        if let Some(secs) = err.retry_after {
            response
                .headers
                .push(("Retry-After".into(), format_retry_after(secs)));
        }
        response
    }

    /// All headers of this answer, including content type and correlation ids.
    pub fn all_headers(&self, ids: &RequestIds) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        if self.body.is_some() {
            headers.push((
                "Content-Type".into(),
                "application/json; odata.metadata=minimal; charset=utf-8".into(),
            ));
        }
        headers.push(("request-id".into(), ids.request_id.clone()));
        headers.push(("client-request-id".into(), ids.client_request_id.clone()));
        headers
    }

    pub fn into_http(self, ids: &RequestIds) -> Response {
        if self.dropped {
            return dropped_connection();
        }
        let headers = self.all_headers(ids);
        // An empty body gets no Content-Type at all (201/204 from Graph carry none).
        let body = self
            .body
            .map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        set_headers(response.headers_mut(), headers);
        response
    }
}

/// A response hyper never sends: its body fails before the first byte, so hyper closes the
/// connection with the head still unflushed and the client sees a connection error, not a status.
pub fn dropped_connection() -> Response {
    let abort = futures::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "graph-sim: scripted dropConnection",
        ))
    });
    Response::new(Body::from_stream(abort))
}

pub fn set_headers(map: &mut HeaderMap, headers: Vec<(String, String)>) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            map.insert(name, value);
        }
    }
}

/// An Entra (AAD) token-endpoint error. `invalid_client` is a 401, everything else a 400, as
/// Entra answers (scripted failures may choose another status).
#[derive(Debug, Clone, PartialEq)]
pub struct AadError {
    pub error: String,
    pub code: u32,
    pub description: String,
    pub status: Option<StatusCode>,
    pub retry_after: Option<f64>,
}

impl AadError {
    pub fn new(error: &str, code: u32, description: impl Into<String>) -> Self {
        Self {
            error: error.to_string(),
            code,
            description: description.into(),
            status: None,
            retry_after: None,
        }
    }

    /// Entra's description of an AADSTS code the simulator knows, for scripted answers that
    /// name only the code. Where Entra quotes the request (an app id, an assertion's subject) the
    /// quote is left out.
    pub fn known_description(code: u32) -> Option<&'static str> {
        Some(match code {
            90033 => "A transient error has occurred. Please try again.",
            7000215 => {
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app."
            }
            7000222 => {
                "The provided client secret keys for app are expired. Visit the Azure portal to \
                 create new keys for your app: https://aka.ms/NewClientSecret, or consider using \
                 certificate credentials for added security: https://aka.ms/certCreds."
            }
            70021 => "No matching federated identity record found for presented assertion.",
            700213 => {
                "No matching federated identity record found for presented assertion subject. \
                 Please note that the matching is done using a case-sensitive comparison. Check \
                 your federated identity credential Subject, Audience and Issuer against the \
                 presented assertion."
            }
            700016 => {
                "Application was not found in the directory. This can happen if the application \
                 has not been installed by the administrator of the tenant or consented to by any \
                 user in the tenant."
            }
            _ => return None,
        })
    }

    pub fn http_status(&self) -> StatusCode {
        match self.status {
            Some(status) => status,
            None if self.error == "invalid_client" => StatusCode::UNAUTHORIZED,
            None => StatusCode::BAD_REQUEST,
        }
    }

    pub fn body(&self, ids: &RequestIds) -> Value {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M:%SZ")
            .to_string();
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {} Correlation ID: {} Timestamp: {now}",
                self.code, self.description, ids.request_id, ids.client_request_id
            ),
            "error_codes": [self.code],
            "timestamp": now,
            "trace_id": ids.request_id,
            "correlation_id": ids.client_request_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_keeps_fractions_only_when_present() {
        assert_eq!(format_retry_after(2.0), "2");
        assert_eq!(format_retry_after(2.128), "2.128");
        assert_eq!(format_retry_after(0.5), "0.5");
    }

    #[test]
    fn graph_error_body_has_graph_shape() {
        let ids = RequestIds::from_client(Some("abc"));
        let body = GraphError::not_found("nope").body(&ids);
        assert_eq!(body["error"]["code"], "NotFound");
        assert_eq!(body["error"]["innerError"]["client-request-id"], "abc");
        assert_eq!(body["error"]["innerError"]["request-id"], ids.request_id);
        assert!(body["error"]["innerError"].get("code").is_none());
        let inner = GraphError::not_found("nope").with_inner_code("AppIsTenantAdminPreinstalled");
        assert_eq!(
            inner.body(&ids)["error"]["innerError"]["code"],
            "AppIsTenantAdminPreinstalled"
        );
    }

    #[test]
    fn aad_status_follows_error_kind() {
        assert_eq!(
            AadError::new("invalid_client", 7000215, "x").http_status(),
            401
        );
        assert_eq!(
            AadError::new("invalid_request", 90002, "x").http_status(),
            400
        );
    }
}
