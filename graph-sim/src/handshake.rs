//! `POST /subscriptions`: throttling, scripted failures and the checks
//! ([`subscriptions::prepare`]) under the lock, the
//! validation handshake without it, the store ([`subscriptions::commit`]) under it again.
//!
//! The handshake is Graph's
//! (<https://learn.microsoft.com/graph/change-notifications-delivery-webhooks>): a POST to
//! `{notificationUrl}?validationToken={token}` (and to the `lifecycleNotificationUrl` when
//! given), answered within 10 seconds with 200 and the token, URL-decoded, as `text/plain`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use rand::RngCore;

use super::Shared;
use super::auth::Principal;
use super::errors::{GraphError, GraphResponse};
use super::graph::{self, Call};
use super::subscriptions::{self, validation_failed};

/// How long a receiver has to answer the handshake.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates a subscription; logs the call as any other.
pub(crate) async fn create(
    shared: &Arc<Shared>,
    principal: &Principal,
    call: &Call<'_>,
) -> GraphResponse {
    let service_root = format!("{}{}", call.base, call.api.prefix());
    let draft = {
        let mut inner = shared.lock();
        match graph::injected(&mut inner, principal, call) {
            // Throttled, or a scripted failure (`applyFirst` cannot apply a create that waits
            // for a handshake: the failure simply answers).
            Err(err) => Err(err),
            Ok(Some(failure)) => {
                let response = failure.to_response(call.ids);
                inner
                    .journal
                    .push(call.record(response.logged_status(), Some(principal), None));
                return response;
            }
            Ok(None) => subscriptions::prepare(
                &inner.world,
                &inner.faults.config,
                principal,
                call.body.clone(),
                service_root,
            ),
        }
    };
    let result = match draft {
        Ok(draft) => {
            let mut checked = Ok(());
            for url in draft.urls() {
                checked = validate(&shared.http, &url).await;
                if checked.is_err() {
                    break;
                }
            }
            checked.map(|()| draft)
        }
        Err(err) => Err(err),
    };
    let mut inner = shared.lock();
    let response = match result {
        Ok(draft) => {
            tracing::info!(id = %draft.subscription.id, app = %draft.subscription.app_id, "subscription created");
            subscriptions::commit(&mut inner.subscriptions, draft)
        }
        Err(err) => GraphResponse::error(&err, call.ids),
    };
    inner
        .journal
        .push(call.record(response.logged_status(), Some(principal), None));
    response
}

/// One URL's handshake.
async fn validate(http: &reqwest::Client, url: &str) -> Result<(), GraphError> {
    let token = validation_token();
    let mut target = url::Url::parse(url)
        .map_err(|_| validation_failed("The notification URL is not a valid URL."))?;
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let answer = http
        .post(target)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(VALIDATION_TIMEOUT)
        .send()
        .await;
    let response = match answer {
        Ok(response) => response,
        Err(err) if err.is_timeout() => {
            return Err(validation_failed(
                "The notification endpoint did not respond within 10 seconds.",
            ));
        }
        Err(_) => {
            return Err(validation_failed(
                "Notification endpoint must respond with 200 OK to validation request.",
            ));
        }
    };
    if response.status() != reqwest::StatusCode::OK {
        return Err(validation_failed(
            "Notification endpoint must respond with 200 OK to validation request.",
        ));
    }
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/plain"));
    let body = response.text().await.unwrap_or_default();
    if !plain || body != token {
        return Err(validation_failed(
            "Response must exactly match validationToken query parameter, as text/plain.",
        ));
    }
    Ok(())
}

/// Graph's tokens are opaque text with spaces and punctuation (they must be URL-decoded before
/// they are echoed); this one has some too.
fn validation_token() -> String {
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("Validation: graph-sim token {hex}")
}
