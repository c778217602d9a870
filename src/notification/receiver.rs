//! The HTTP side: the endpoint Graph POSTs to, as "Receive change notifications through
//! webhooks" (<https://learn.microsoft.com/graph/change-notifications-delivery-webhooks>) asks of
//! it.
//!
//! - A POST with `?validationToken=…` is the validation handshake Graph runs when a
//!   subscription is created: 200 with the token (URL-decoded) as `text/plain`, within 10 s. It
//!   is answered at once, without reading the body.
//! - Any other POST carries a notification collection. Graph wants a 2xx within 3 s and
//!   otherwise sends it again for up to 4 hours (and throttles a slow endpoint), so the receiver
//!   only checks the items, queues the accepted ones for the operator and answers 202; the work
//!   happens later. A queue with no room for all of them is answered 503 and nothing is queued,
//!   so Graph's resend is the only copy, and the receiver never waits for the operator.
//! - Items whose sender cannot be shown to be Graph are dropped and counted; when nothing in a
//!   request was accepted and something failed authentication the answer is 403 (it shows in
//!   Graph's delivery log, and a forger learns nothing it did not know). Authentic items the
//!   receiver cannot use are dropped too, with 202: sending them again would not help.
//! - A body over the limit is 413, refused on its `Content-Length` before a byte is read, or as
//!   soon as a chunked body passes the limit; a body that is not a collection is 400; a body that
//!   trickles in slower than the timeout is 408. Other paths are 404, other methods 405.
//!
//! Lifecycle events (<https://learn.microsoft.com/graph/change-notifications-lifecycle-events>)
//! come to [`LIFECYCLE_PATH`], changes to [`NOTIFICATION_PATH`]; both take both, since each item
//! says what it is (`lifecycleEvent` or not).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::Notification;
use super::counts::Counts;
use super::counts::Refusal;
use super::decrypt::DecryptionKeys;
use super::handoff::{FORWARDED_HEADER, Handoff, Route};
use super::payload::{Collection, Item};
use super::secrets::SubscriptionSecrets;
use super::verify::{self, Accepted};

/// Where change notifications are POSTed (the subscription's `notificationUrl`).
pub const NOTIFICATION_PATH: &str = "/graph/notifications";
/// Where lifecycle events are POSTed (the subscription's `lifecycleNotificationUrl`).
pub const LIFECYCLE_PATH: &str = "/graph/lifecycle";

/// How much the receiver takes in, and how long it waits for it.
#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    /// The largest body read, in bytes (default 1 MiB). Graph's collections of a few
    /// notifications are a few KiB each.
    pub body_limit: usize,
    /// Accepted events waiting for the operator at most (default 1024); past that, 503. Also
    /// the most notifications one request may carry (more is 413).
    pub queue_capacity: usize,
    /// How long a body may take to arrive (default 10 s).
    pub body_timeout: Duration,
    /// Whether accepted notifications are queued here or forwarded to the leader (default:
    /// queued here).
    pub handoff: Handoff,
}

impl Default for ReceiverSettings {
    fn default() -> Self {
        Self {
            body_limit: 1 << 20,
            queue_capacity: 1024,
            body_timeout: Duration::from_secs(10),
            handoff: Handoff::default(),
        }
    }
}

/// The operator's end of the receiver: the accepted events, in arrival order, and the counts.
#[derive(Debug)]
pub struct Receiving {
    pub events: mpsc::Receiver<Notification>,
    pub counts: Arc<Counts>,
}

#[derive(Clone)]
struct Shared {
    secrets: SubscriptionSecrets,
    keys: DecryptionKeys,
    queue: mpsc::Sender<Notification>,
    counts: Arc<Counts>,
    settings: ReceiverSettings,
}

/// The receiver's routes, for serving on a listener of the caller's choosing (see
/// [`super::serve`]), and the receiving end.
pub fn router(
    settings: ReceiverSettings,
    secrets: SubscriptionSecrets,
    keys: DecryptionKeys,
) -> (Router, Receiving) {
    let (queue, events) = mpsc::channel(settings.queue_capacity.max(1));
    let counts = Arc::new(Counts::default());
    let shared = Shared {
        secrets,
        keys,
        queue,
        counts: counts.clone(),
        settings,
    };
    let router = Router::new()
        .route(NOTIFICATION_PATH, post(receive))
        .route(LIFECYCLE_PATH, post(receive))
        .method_not_allowed_fallback(|| async {
            plain(StatusCode::METHOD_NOT_ALLOWED, "POST only")
        })
        .fallback(|| async { plain(StatusCode::NOT_FOUND, "not a notification endpoint") })
        .with_state(shared);
    (router, Receiving { events, counts })
}

async fn receive(State(s): State<Shared>, RawQuery(query): RawQuery, request: Request) -> Response {
    if let Some(token) = validation_token(query.as_deref()) {
        s.counts.update(|t| t.validations += 1);
        return handshake(token);
    }
    let route = s.settings.handoff.route();
    let path = request.uri().path().to_string();
    if request.headers().contains_key(FORWARDED_HEADER) && route != Route::Local {
        // Leadership moved since the standby looked: never a second hop.
        s.counts.update(|t| t.busy += 1);
        return plain(StatusCode::SERVICE_UNAVAILABLE, "not the leader");
    }
    let body = match read_body(request, &s.settings).await {
        Ok(body) => body,
        Err(refused) => return refused.answer(&s.counts),
    };
    let Ok(collection) = serde_json::from_slice::<Collection>(&body) else {
        return BodyRefusal::Unreadable.answer(&s.counts);
    };
    // A standby sends the body on as it came; the leader drops it now.
    let body = (route != Route::Local).then_some(body);
    if collection.value.len() > s.queue.max_capacity() {
        return BodyRefusal::TooMany.answer(&s.counts);
    }
    let (secrets, keys) = (s.secrets.clone(), s.keys.clone());
    // Rich notifications cost an RSA decryption each: off the executor.
    let checked = tokio::task::spawn_blocking(move || {
        collection
            .value
            .into_iter()
            .map(|value| {
                let item = Item::read(value).ok_or(Refusal::Malformed)?;
                verify::check(item, &secrets, &keys)
            })
            .collect::<Vec<_>>()
    })
    .await;
    match (checked, route, body) {
        (Ok(verdicts), Route::Local, _) => settle(&s, verdicts),
        (Ok(verdicts), Route::Forward(leader), Some(body)) => {
            relay(&s, verdicts, &leader, &path, body).await
        }
        (Ok(verdicts), _, _) => relay_to_nobody(&s, verdicts),
        (Err(err), _, _) => {
            tracing::error!(%err, "checking notifications failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// `validationToken` from the query string, URL-decoded; other parameters (Graph keeps any the
/// `notificationUrl` had) are ignored.
fn validation_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "validationToken")
        .map(|(_, token)| token.into_owned())
}

fn handshake(token: String) -> Response {
    let mut response = (StatusCode::OK, token).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    // The token is the caller's text: never let a browser read it as anything else.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Counts the verdicts, queues the accepted items all together or not at all, and answers.
fn settle(s: &Shared, verdicts: Vec<Result<Accepted, Refusal>>) -> Response {
    let mut accepted = Vec::new();
    let mut unauthenticated = false;
    for verdict in verdicts {
        match verdict {
            Ok(item) => accepted.push(item),
            Err(reason) => {
                tracing::debug!(reason = reason.as_str(), "notification refused");
                s.counts.refuse(reason);
                unauthenticated |= reason.is_authentication();
            }
        }
    }
    if accepted.is_empty() {
        return if unauthenticated {
            plain(StatusCode::FORBIDDEN, "no notification was accepted")
        } else {
            plain(StatusCode::ACCEPTED, "accepted")
        };
    }
    let Ok(permits) = s.queue.try_reserve_many(accepted.len()) else {
        tracing::warn!(
            notifications = accepted.len(),
            "the notification queue is full; Graph will send them again"
        );
        s.counts.update(|t| t.busy += 1);
        return plain(StatusCode::SERVICE_UNAVAILABLE, "busy, send again later");
    };
    s.counts.update(|t| {
        for item in &accepted {
            match item.notification {
                Notification::Change(_) => t.changes += 1,
                Notification::Lifecycle(_) => t.lifecycle_events += 1,
            }
            t.without_key += u64::from(item.without_key);
        }
    });
    for (permit, item) in permits.zip(accepted) {
        tracing::debug!(subscription = %item.notification.subscription_id(), "notification accepted");
        permit.send(item.notification);
    }
    plain(StatusCode::ACCEPTED, "accepted")
}

/// A standby's [`settle`]: refuses here what is surely not from Graph, and sends the request
/// on to the leader when anything in it may be. An id this replica does not know may be one the
/// leader is creating right now (its table reaches standbys a moment later), so it goes on too,
/// for the leader to judge.
async fn relay(
    s: &Shared,
    verdicts: Vec<Result<Accepted, Refusal>>,
    leader: &url::Url,
    path: &str,
    body: Vec<u8>,
) -> Response {
    let Some(count) = forwardable(s, verdicts) else {
        return plain(StatusCode::FORBIDDEN, "no notification was accepted");
    };
    if count == 0 {
        return plain(StatusCode::ACCEPTED, "accepted");
    }
    if s.settings.handoff.forward(leader, path, body).await {
        s.counts.update(|t| t.forwarded += count);
        plain(StatusCode::ACCEPTED, "accepted")
    } else {
        s.counts.update(|t| t.busy += 1);
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the leader is not reachable, send again later",
        )
    }
}

/// A standby that knows no leader yet: Graph must send again.
fn relay_to_nobody(s: &Shared, verdicts: Vec<Result<Accepted, Refusal>>) -> Response {
    match forwardable(s, verdicts) {
        None => plain(StatusCode::FORBIDDEN, "no notification was accepted"),
        Some(0) => plain(StatusCode::ACCEPTED, "accepted"),
        Some(_) => {
            tracing::warn!("a notification came before any leader published its receiver");
            s.counts.update(|t| t.busy += 1);
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "no leader yet, send again later",
            )
        }
    }
}

/// How many items the leader should see (accepted here, or of an id only it may know), after
/// counting the rest as refused; `None` when none is and something failed authentication.
fn forwardable(s: &Shared, verdicts: Vec<Result<Accepted, Refusal>>) -> Option<u64> {
    let (mut count, mut unauthenticated) = (0, false);
    for verdict in verdicts {
        match verdict {
            Ok(_) | Err(Refusal::UnknownSubscription) => count += 1,
            Err(reason) => {
                s.counts.refuse(reason);
                unauthenticated |= reason.is_authentication();
            }
        }
    }
    (count > 0 || !unauthenticated).then_some(count)
}

/// Why a request was refused whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyRefusal {
    TooLarge,
    TooMany,
    Unreadable,
    Slow,
}

impl BodyRefusal {
    fn answer(self, counts: &Counts) -> Response {
        match self {
            BodyRefusal::TooLarge | BodyRefusal::TooMany => counts.update(|t| t.too_large += 1),
            BodyRefusal::Unreadable | BodyRefusal::Slow => counts.update(|t| t.unreadable += 1),
        }
        let (status, text) = match self {
            BodyRefusal::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
            BodyRefusal::TooMany => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "more notifications than the receiver's queue holds",
            ),
            BodyRefusal::Unreadable => (
                StatusCode::BAD_REQUEST,
                "not a JSON changeNotificationCollection",
            ),
            BodyRefusal::Slow => (StatusCode::REQUEST_TIMEOUT, "body too slow"),
        };
        tracing::debug!(status = status.as_u16(), "notification request refused");
        plain(status, text)
    }
}

/// The body, at most `body_limit` bytes of it: a declared length over the limit is refused
/// before anything is read, a chunked body as soon as it passes the limit.
async fn read_body(request: Request, settings: &ReceiverSettings) -> Result<Vec<u8>, BodyRefusal> {
    let limit = settings.body_limit;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyRefusal::TooLarge);
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut body = Vec::with_capacity(capacity);
    let mut chunks = request.into_body().into_data_stream();
    let read = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|_| BodyRefusal::Unreadable)?;
            if body.len() + chunk.len() > limit {
                return Err(BodyRefusal::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    let outcome = tokio::time::timeout(settings.body_timeout, read).await;
    match outcome {
        Ok(Ok(())) => Ok(body),
        Ok(Err(refused)) => Err(refused),
        Err(_) => Err(BodyRefusal::Slow),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}
