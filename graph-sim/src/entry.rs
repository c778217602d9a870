//! The HTTP entry of every Graph request (not the token endpoint, not `/_sim`): latency, the
//! version prefix, the bearer token, then one call ([`super::graph::serve`]) or a `$batch` of
//! them ([`super::batch`]). Kept apart from the pipeline so that `$batch`, which serves its
//! items through the pipeline, and the pipeline do not depend on each other.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;

use super::batch;
use super::errors::{GraphError, GraphResponse, RequestIds};
use super::graph::{Call, parse_body, serve, split_api};
use super::journal::RequestRecord;
use super::odata::percent_decode;
use super::{Shared, handshake, notify};

/// `http://{Host}`, falling back to our own address when the header is missing or odd.
fn request_base(headers: &HeaderMap, fallback: &str) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
        })
        .map_or_else(|| fallback.to_string(), |h| format!("http://{h}"))
}

/// Every request that is not the token endpoint or `/_sim`.
pub(crate) async fn entry(
    State(shared): State<Arc<Shared>>,
    Extension(ids): Extension<RequestIds>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (latency, canonical) = {
        let inner = shared.lock();
        let canonical = inner.faults.config.canonical_next_links;
        (
            inner.faults.latency(),
            canonical.unwrap_or(shared.options.canonical_next_links),
        )
    };
    if let Some(delay) = latency {
        tokio::time::sleep(delay).await;
    }
    let base = if canonical {
        shared.options.graph_resource.clone()
    } else {
        request_base(&headers, &shared.base_url)
    };
    let Some((api, rest)) = split_api(uri.path()) else {
        let first = uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        let err = GraphError::bad_request(format!("Invalid version: '{}'.", percent_decode(first)));
        let response = GraphResponse::error(&err, &ids);
        shared.lock().journal.push(RequestRecord {
            method: method.to_string(),
            path: percent_decode(uri.path()),
            user: None,
            class: None,
            query: uri.query().map(percent_decode),
            body: None,
            status: response.status.as_u16(),
            tenant: None,
            client_id: None,
            batch: false,
            batch_item_id: None,
            time: jiff::Timestamp::now(),
            request_id: ids.request_id.clone(),
            client_request_id: ids.client_request_id.clone(),
        });
        return response.into_http(&ids);
    };
    let call = Call {
        method: &method,
        api,
        path: rest,
        query: uri.query(),
        body: parse_body(&body),
        base: &base,
        graph_resource: &shared.options.graph_resource,
        ids: &ids,
        consistency_level: headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok()),
    };
    let creator = {
        let mut inner = shared.lock();
        let principal = inner
            .tokens
            .authenticate(headers.get(header::AUTHORIZATION), Instant::now());
        let answered = match principal {
            Err(err) => {
                let response = GraphResponse::error(&err, &ids);
                inner
                    .journal
                    .push(call.record(response.logged_status(), None, None));
                Ok(response)
            }
            Ok(principal) if method == Method::POST && creates_subscription(rest) => Err(principal),
            Ok(principal) if percent_decode(rest).eq_ignore_ascii_case("/$batch") => {
                Ok(batch::serve_batch(&mut inner, &principal, &call))
            }
            Ok(principal) => Ok(serve(&mut inner, &principal, &call, None)),
        };
        // The writes this request made notify their subscribers.
        notify::flush(&mut inner);
        match answered {
            Ok(response) => return response.into_http(&ids),
            Err(principal) => principal,
        }
    };
    // The validation handshake calls the subscriber: not under the lock.
    handshake::create(&shared, &creator, &call)
        .await
        .into_http(&ids)
}

/// `POST /subscriptions` (with or without a trailing slash).
fn creates_subscription(rest: &str) -> bool {
    percent_decode(rest)
        .trim_end_matches('/')
        .eq_ignore_ascii_case("/subscriptions")
}
