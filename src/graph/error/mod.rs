//! Errors from the Graph boundary and how the operator should react to each.
//!
//! Graph errors keep everything an operator needs to act and to explain itself in a status
//! condition: HTTP status, Graph's `code`, the message, `request-id` / `client-request-id` (what
//! Microsoft support asks for) and `Retry-After`. Callers branch on [`GraphError::class`], never on
//! the message text; the one exception (transient 400s on install) is decided here, once.
//!
//! - `classify`: status (and message) → [`ErrorClass`], the one place a message decides.
//! - `response`: Graph's error answers (and requests that got none) → [`GraphError`].
//! - `auth`: the token endpoint's refusals ([`AuthError`]).
//! - `config`: start-up configuration problems ([`GraphConfigError`]).

mod auth;
mod classify;
mod config;
mod response;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use auth::AuthError;
pub use classify::ErrorClass;
use classify::classify_status;
pub use config::GraphConfigError;
pub use response::ApiError;
pub(crate) use response::no_answer;

pub(crate) use super::headers::ResponseIds;

/// Every way a Graph call can fail.
///
/// `Display` is meant for humans and status conditions: it carries status, code, message and
/// request ids, and never a token or a secret.
///
/// Cloneable so that one failed token request can be handed to every caller that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
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
        source: Arc<reqwest::Error>,
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
    /// Not sent: an earlier call's 429 holds this call's class for the whole tenant, for longer
    /// than a call waits (see [`GraphClient::send`](super::GraphClient)). `retry_after` is what
    /// is left of that `Retry-After`.
    #[error(
        "{method} {path} not sent: Graph is throttling this tenant's {class} calls (429 Too Many Requests), {retry_after:.1?} left of its Retry-After"
    )]
    Throttled {
        method: String,
        path: String,
        /// The call class, as the metrics name it (`installed_apps_read`, …).
        class: &'static str,
        retry_after: Duration,
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
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// What a resource's status reports this failure as: its [`class`](Self::class), except
    /// that any failed token request is the operator failing to sign in
    /// ([`ErrorClass::Unauthorized`]): Graph was never asked, whether Entra refused the
    /// credential or was down, and the message (Entra's error and status) says which.
    pub fn status_class(&self) -> ErrorClass {
        match self {
            Self::Auth(_) | Self::Credential(_) => ErrorClass::Unauthorized,
            _ => self.class(),
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
            Self::Api(e) => classify_status(e.status, e.inner_code.as_deref(), &e.message),
            Self::Auth(e) if e.status == Some(429) => ErrorClass::Throttled,
            Self::Auth(e) if e.is_retryable() => ErrorClass::Unavailable,
            Self::Auth(_) | Self::Credential(_) => ErrorClass::Unauthorized,
            Self::Throttled { .. } => ErrorClass::Throttled,
            Self::Timeout { .. } | Self::Transport { .. } => ErrorClass::Unavailable,
            Self::Decode { .. } => ErrorClass::Other,
            Self::Invalid(_) => ErrorClass::BadRequest,
        }
    }
}
