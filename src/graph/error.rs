//! Errors from the Graph boundary and how the operator should react to each.
//!
//! Graph errors keep everything an operator needs to act and to explain itself in a status
//! condition: HTTP status, Graph's `code`, the message, `request-id` / `client-request-id` (what
//! Microsoft support asks for) and `Retry-After`. Callers branch on [`GraphError::class`], never on
//! the message text; the one exception (transient 400s on install) is decided here, once.

use std::time::Duration;

use serde::Deserialize;

pub(crate) use super::headers::ResponseIds;

/// AADSTS70021: "No matching federated identity record found" while a new federated credential
/// is still propagating through Entra; it passes within minutes.
const FEDERATION_NOT_PROPAGATED: i64 = 70021;

/// Graph messages end up in Kubernetes condition messages; keep them readable.
const MAX_MESSAGE_CHARS: usize = 400;

/// What the operator should do about an error, independent of which call produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// 429: Graph asked us to slow down; retry after `Retry-After`.
    Throttled,
    /// 5xx, timeouts, transport failures, the Teams backend's transient 400s: retry with backoff.
    Unavailable,
    /// 404: user, app or installation does not exist (or the user is not Teams-enabled).
    NotFound,
    /// 403: a missing Graph permission (or only the `…Self…` variant of one).
    Forbidden,
    /// 403 "Failed to get license information for the user": the user has no Teams licence.
    NotLicensed,
    /// 403 "App is blocked by app permission policy": a Teams admin policy blocks the app for
    /// this user.
    BlockedByPolicy,
    /// 401 after a token refresh, or the token endpoint refused the credentials.
    Unauthorized,
    /// 400 that is not one of the known transient ones: the request itself is wrong.
    BadRequest,
    /// 409: the thing already exists (for install this is success and never surfaces).
    Conflict,
    /// Anything else, including bodies we could not decode.
    Other,
}

impl ErrorClass {
    /// A stable, low-cardinality name (for metrics labels and condition reasons).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::NotLicensed => "not_licensed",
            Self::BlockedByPolicy => "blocked_by_policy",
            Self::Unauthorized => "unauthorized",
            Self::BadRequest => "bad_request",
            Self::Conflict => "conflict",
            Self::Other => "other",
        }
    }
}

/// An error answer from Graph itself (a non-2xx HTTP status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub method: String,
    /// The request path without query string.
    pub path: String,
    pub status: u16,
    /// Graph's `error.code`, e.g. `NotFound`, `Forbidden`, `TooManyRequests`.
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub retry_after: Option<Duration>,
}

/// The token endpoint (Entra ID) refused or failed to issue a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// `None` when the token endpoint answered with something that was not HTTP-level failure
    /// (e.g. a 200 without a token).
    pub status: Option<u16>,
    /// OAuth `error`, e.g. `invalid_client`, `temporarily_unavailable`.
    pub error: String,
    /// `error_description`: starts with the `AADSTSnnnn` code and explains it. Never contains the
    /// credential itself.
    pub description: Option<String>,
    pub error_codes: Vec<i64>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    pub retry_after: Option<Duration>,
}

impl AuthError {
    /// `temporarily_unavailable`, AADSTS70021 (a federated credential not yet propagated), and
    /// throttling or server failures of the endpoint itself are worth retrying.
    ///
    /// Codes are matched exactly: AADSTS700211 (unknown issuer), 700213 (no matching federated
    /// identity) and 7002138 share 70021's prefix but need someone to fix the configuration.
    pub fn is_retryable(&self) -> bool {
        self.error == "temporarily_unavailable"
            || self
                .aadsts_codes()
                .any(|code| code == FEDERATION_NOT_PROPAGATED)
            || matches!(self.status, Some(429 | 500..=599))
    }

    /// Entra's `AADSTSnnnn` codes: `error_codes`, and the one `error_description` starts with
    /// (some proxies drop `error_codes`).
    pub fn aadsts_codes(&self) -> impl Iterator<Item = i64> + '_ {
        let described = self.description.as_deref().and_then(|d| {
            let digits = d.trim_start().strip_prefix("AADSTS")?;
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            digits[..end].parse::<i64>().ok()
        });
        self.error_codes.iter().copied().chain(described)
    }
}

/// Every way a Graph call can fail.
///
/// `Display` is meant for humans and status conditions: it carries status, code, message and
/// request ids, and never a token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{}", display_api(.0))]
    Api(Box<ApiError>),
    #[error("{}", display_auth(.0))]
    Auth(Box<AuthError>),
    /// The configured credential could not be used (file unreadable, key unusable).
    #[error("credential unusable: {0}")]
    Credential(String),
    #[error("{method} {path} timed out after {after:?} (client-request-id {client_request_id})")]
    Timeout {
        method: String,
        path: String,
        client_request_id: String,
        after: Duration,
    },
    #[error("{method} {path} failed (client-request-id {client_request_id}): {detail}")]
    Transport {
        method: String,
        path: String,
        client_request_id: String,
        /// The whole cause chain ("error sending request: connection refused"), without URL.
        detail: String,
        #[source]
        source: reqwest::Error,
    },
    /// Graph answered, but not in a shape we understand.
    #[error(
        "undecodable response to {method} {path} (HTTP {status}, request-id {}): {message}",
        .request_id.as_deref().unwrap_or("none")
    )]
    Decode {
        method: String,
        path: String,
        status: u16,
        request_id: Option<String>,
        message: String,
    },
    /// The caller asked for something we refuse to send (e.g. duplicate `$batch` ids).
    #[error("invalid request: {0}")]
    Invalid(String),
}

fn display_api(e: &ApiError) -> String {
    format!(
        "Graph {} {} returned HTTP {} ({}): {} [request-id: {}, client-request-id: {}]",
        e.method,
        e.path,
        e.status,
        e.code.as_deref().unwrap_or("no code"),
        e.message,
        e.request_id.as_deref().unwrap_or("none"),
        e.client_request_id.as_deref().unwrap_or("none"),
    )
}

fn display_auth(e: &AuthError) -> String {
    let status = e
        .status
        .map_or_else(|| "no status".to_string(), |s| format!("HTTP {s}"));
    format!(
        "token request failed ({status}): {}: {} [trace_id: {}, correlation_id: {}]",
        e.error,
        e.description.as_deref().unwrap_or("no description"),
        e.trace_id.as_deref().unwrap_or("none"),
        e.correlation_id.as_deref().unwrap_or("none"),
    )
}

impl GraphError {
    /// The HTTP status Graph (or the token endpoint) answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(e) => Some(e.status),
            Self::Auth(e) => e.status,
            Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Graph's `error.code`, or the OAuth `error` for token failures.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.code.as_deref(),
            Self::Auth(e) => Some(&e.error),
            _ => None,
        }
    }

    /// Graph's `request-id` (for token failures: Entra's `trace_id`, its equivalent).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.request_id.as_deref(),
            Self::Auth(e) => e.trace_id.as_deref(),
            Self::Decode { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The `client-request-id` we sent with the failed request.
    pub fn client_request_id(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.client_request_id.as_deref(),
            Self::Timeout {
                client_request_id, ..
            }
            | Self::Transport {
                client_request_id, ..
            } => Some(client_request_id),
            _ => None,
        }
    }

    /// How long the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(e) => e.retry_after,
            Self::Auth(e) => e.retry_after,
            _ => None,
        }
    }

    /// Whether trying the same call later can succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Throttled | ErrorClass::Unavailable
        )
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api(e) => classify_status(e.status, &e.message),
            Self::Auth(e) if e.status == Some(429) => ErrorClass::Throttled,
            Self::Auth(e) if e.is_retryable() => ErrorClass::Unavailable,
            Self::Auth(_) | Self::Credential(_) => ErrorClass::Unauthorized,
            Self::Timeout { .. } | Self::Transport { .. } => ErrorClass::Unavailable,
            Self::Decode { .. } => ErrorClass::Other,
            Self::Invalid(_) => ErrorClass::BadRequest,
        }
    }

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
        source: err,
    }
}

/// Status → class. The only place a message is read: Graph gives the Teams backend's transient
/// 400s and its three kinds of 403 no distinct code.
fn classify_status(status: u16, message: &str) -> ErrorClass {
    match status {
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::Unavailable,
        400 if is_transient_bad_request(message) => ErrorClass::Unavailable,
        400 => ErrorClass::BadRequest,
        401 => ErrorClass::Unauthorized,
        403 => classify_forbidden(message),
        404 => ErrorClass::NotFound,
        409 => ErrorClass::Conflict,
        408 => ErrorClass::Unavailable,
        _ => ErrorClass::Other,
    }
}

/// The Teams backend answers some installs with a 400 whose message is about its own internals
/// (an internal exception, its "settings store", a Skype backend request such as
/// `CreateThreadRequest`, as users have reported); those pass after a retry. Graph gives them no
/// distinct code, so this is the one place where the message decides.
pub(crate) fn is_transient_bad_request(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "internal exception",
        "settings store",
        "internal server error",
        "skype backend request",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// Graph answers 403 `Forbidden` for a missing permission, for a user without a Teams licence
/// and for an app permission policy; only the message tells them apart, and each needs a
/// different person to fix it.
fn classify_forbidden(message: &str) -> ErrorClass {
    let lower = message.to_ascii_lowercase();
    if lower.contains("license information") || lower.contains("valid office365 license") {
        ErrorClass::NotLicensed
    } else if lower.contains("permission policy") {
        ErrorClass::BlockedByPolicy
    } else {
        ErrorClass::Forbidden
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

/// Configuration problems found while building a client: reported once, at start-up.
#[derive(Debug, thiserror::Error)]
pub enum GraphConfigError {
    #[error(
        "the {cloud} cloud cannot be used: {reason}. The operator installs apps for users with \
         app-only permissions, which Microsoft supports only in the global (public) cloud"
    )]
    UnsupportedCloud {
        cloud: &'static str,
        reason: &'static str,
    },
    #[error(
        "no Graph credential configured: set exactly one of AZURE_CLIENT_SECRET, \
         --client-secret-file, --client-certificate-path or --federated-token-file"
    )]
    NoCredential,
    #[error("more than one Graph credential configured ({}): set exactly one", .0.join(", "))]
    ConflictingCredentials(Vec<&'static str>),
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("client certificate {path}: {message}")]
    Certificate {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("invalid Graph setting: {0}")]
    Invalid(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> GraphError {
        let body = serde_json::json!({
            "error": {"code": "Code", "message": message,
                      "innerError": {"date": "x", "request-id": "rid-inner",
                                     "client-request-id": "crid-inner"}}
        });
        GraphError::from_response(
            "GET",
            "/users/u",
            status,
            &ResponseIds::default(),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn classifies_by_status() {
        let cases = [
            (429, ErrorClass::Throttled),
            (500, ErrorClass::Unavailable),
            (502, ErrorClass::Unavailable),
            (503, ErrorClass::Unavailable),
            (504, ErrorClass::Unavailable),
            (400, ErrorClass::BadRequest),
            (401, ErrorClass::Unauthorized),
            (403, ErrorClass::Forbidden),
            (404, ErrorClass::NotFound),
            (409, ErrorClass::Conflict),
            (418, ErrorClass::Other),
        ];
        for (status, class) in cases {
            let err = api(status, "boom");
            assert_eq!(err.class(), class, "{status}");
            assert_eq!(
                err.is_retryable(),
                matches!(class, ErrorClass::Throttled | ErrorClass::Unavailable)
            );
        }
    }

    #[test]
    fn transient_install_400s_are_unavailable() {
        let err = api(
            400,
            "Failed to execute Skype backend request: Internal Exception",
        );
        assert_eq!(err.class(), ErrorClass::Unavailable);
        let err = api(400, "Error while reading the Settings Store");
        assert!(err.is_retryable());
        // Verbatim from users' reports.
        for reported in [
            "Failed to execute Skype backend request CreateThreadRequest.",
            "Request failed with: Failed to execute settings store request.",
        ] {
            assert_eq!(
                api(400, reported).class(),
                ErrorClass::Unavailable,
                "{reported}"
            );
        }
        assert_eq!(api(400, "Invalid bind URL").class(), ErrorClass::BadRequest);
    }

    #[test]
    fn forbidden_tells_licence_policy_and_permission_apart() {
        let cases = [
            (
                "Failed to get license information for the user. Ensure user has a valid \
                 Office365 license assigned to them.",
                ErrorClass::NotLicensed,
            ),
            (
                "App is blocked by app permission policy",
                ErrorClass::BlockedByPolicy,
            ),
            (
                "The application is not allowed to manage the Teams App for this user.",
                ErrorClass::Forbidden,
            ),
            ("Insufficient privileges", ErrorClass::Forbidden),
        ];
        for (message, class) in cases {
            let err = api(403, message);
            assert_eq!(err.class(), class, "{message}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn keeps_ids_and_code_and_displays_them() {
        let err = api(404, "User not found");
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.code(), Some("Code"));
        assert_eq!(err.request_id(), Some("rid-inner"));
        assert_eq!(err.client_request_id(), Some("crid-inner"));
        let text = err.to_string();
        for part in ["404", "Code", "User not found", "rid-inner"] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
    }

    #[test]
    fn header_ids_win_over_inner_error() {
        let ids = ResponseIds {
            request_id: Some("rid-header".into()),
            client_request_id: None,
            retry_after: Some(Duration::from_millis(1500)),
        };
        let err = GraphError::from_response("GET", "/x", 429, &ids, b"not json");
        assert_eq!(err.request_id(), Some("rid-header"));
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(err.class(), ErrorClass::Throttled);
        assert!(err.to_string().contains("not json"));
    }

    #[test]
    fn auth_errors_classify_by_retryability() {
        let mut e = AuthError {
            status: Some(400),
            error: "invalid_client".into(),
            description: Some("AADSTS7000215: Invalid client secret provided.".into()),
            error_codes: vec![7000215],
            trace_id: Some("t".into()),
            correlation_id: Some("c".into()),
            retry_after: None,
        };
        assert_eq!(
            GraphError::Auth(Box::new(e.clone())).class(),
            ErrorClass::Unauthorized
        );
        e.error = "invalid_client".into();
        e.error_codes = vec![70021];
        assert_eq!(
            GraphError::Auth(Box::new(e.clone())).class(),
            ErrorClass::Unavailable
        );
        // Same prefix, different (permanent) codes: a misconfigured federated credential.
        for code in [700211, 700213, 7002138] {
            e.error_codes = vec![code];
            e.description = Some(format!("AADSTS{code}: No matching federated identity."));
            assert_eq!(
                GraphError::Auth(Box::new(e.clone())).class(),
                ErrorClass::Unauthorized,
                "{code}"
            );
            // The description alone decides the same way.
            e.error_codes = vec![];
            assert_eq!(
                GraphError::Auth(Box::new(e.clone())).class(),
                ErrorClass::Unauthorized,
                "{code}"
            );
        }
        e.description = Some("AADSTS70021: No matching federated identity record found.".into());
        assert!(GraphError::Auth(Box::new(e.clone())).is_retryable());
        e.error = "temporarily_unavailable".into();
        e.error_codes = vec![];
        e.description = None;
        let err = GraphError::Auth(Box::new(e));
        assert!(err.is_retryable());
        assert_eq!(err.request_id(), Some("t"));
        assert!(err.to_string().contains("temporarily_unavailable"));
    }

    #[test]
    fn long_messages_are_truncated() {
        let err = api(400, &"x".repeat(5000));
        assert!(err.to_string().len() < 700);
    }
}
