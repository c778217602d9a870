//! JSON batching (`POST /v1.0/$batch`): up to 20 requests in one round trip. Batching saves round
//! trips, not quota — every item goes through the same pipeline as a plain request (rate limit,
//! scripted failures, request log), so an item can come back 429 with its own `Retry-After`.
//! Responses come back in reverse order, to keep clients from relying on order.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::Inner;
use super::auth::Principal;
use super::errors::{GraphError, GraphResponse, RequestIds, default_code};
use super::faults::Surface;
use super::graph::{Call, serve};

const MAX_REQUESTS: usize = 20;

/// One parsed item.
struct Item {
    id: String,
    method: String,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn invalid(message: impl Into<String>) -> GraphError {
    GraphError::bad_request(format!("Invalid batch payload: {}", message.into()))
}

fn parse_items(body: Option<Value>) -> Result<Vec<Item>, GraphError> {
    let body = body.ok_or_else(|| invalid("the request body is empty."))?;
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("'requests' must be an array."))?;
    if requests.is_empty() {
        return Err(invalid("at least one request is required."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(invalid(format!(
            "a batch holds at most {MAX_REQUESTS} requests, this one has {}.",
            requests.len()
        )));
    }
    let mut items = Vec::with_capacity(requests.len());
    let mut seen = HashSet::new();
    // Graph compares request ids case-insensitively: "a" and "A" are duplicates.
    let mut folded = HashSet::new();
    for request in requests {
        let text = |name: &str| {
            request
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let id = text("id").ok_or_else(|| invalid("every request needs a string 'id'."))?;
        if !folded.insert(id.to_lowercase()) {
            return Err(invalid(format!("duplicate request id '{id}'.")));
        }
        seen.insert(id.clone());
        let method =
            text("method").ok_or_else(|| invalid(format!("request '{id}' has no 'method'.")))?;
        let url = text("url").ok_or_else(|| invalid(format!("request '{id}' has no 'url'.")))?;
        let headers = match request.get("headers") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(h)) if h.values().all(Value::is_string) => h.clone(),
            Some(_) => {
                return Err(invalid(format!(
                    "request '{id}': 'headers' must map names to strings."
                )));
            }
        };
        let body = request.get("body").filter(|b| !b.is_null()).cloned();
        if body.is_some()
            && !headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            return Err(invalid(format!(
                "request '{id}' has a body but no Content-Type header."
            )));
        }
        let depends_on = match request.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|d| d.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid(format!("request '{id}': 'dependsOn' must list ids.")))?,
            Some(_) => {
                return Err(invalid(format!(
                    "request '{id}': 'dependsOn' must be an array."
                )));
            }
        };
        items.push(Item {
            id,
            method,
            url,
            headers,
            body,
            depends_on,
        });
    }
    for item in &items {
        if let Some(missing) = item.depends_on.iter().find(|d| !seen.contains(*d)) {
            return Err(invalid(format!(
                "request '{}' depends on unknown request '{missing}'.",
                item.id
            )));
        }
    }
    Ok(items)
}

/// Indices in an order that runs every item after the items it depends on.
fn execution_order(items: &[Item]) -> Result<Vec<usize>, GraphError> {
    let mut order = Vec::with_capacity(items.len());
    let mut done: HashSet<&str> = HashSet::new();
    while order.len() < items.len() {
        let ready = (0..items.len()).find(|i| {
            !order.contains(i)
                && items[*i]
                    .depends_on
                    .iter()
                    .all(|d| done.contains(d.as_str()))
        });
        let Some(i) = ready else {
            return Err(invalid("the dependsOn graph has a cycle."));
        };
        done.insert(&items[i].id);
        order.push(i);
    }
    Ok(order)
}

/// Splits an item URL into path and query; it must be relative to the version root.
fn split_url(url: &str) -> Result<(String, Option<String>), GraphError> {
    let url = url.trim();
    if url.contains("://") {
        return Err(GraphError::bad_request(format!(
            "Batch request URLs must be relative to the service root, got '{url}'."
        )));
    }
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (url, None),
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok((path, query))
}

fn header<'m>(headers: &'m Map<String, Value>, name: &str) -> Option<&'m str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn item_json(id: &str, response: &GraphResponse, ids: &RequestIds) -> Value {
    let headers: Map<String, Value> = response
        .all_headers(ids)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut value = json!({"id": id, "status": response.status.as_u16(), "headers": headers});
    if let Some(body) = &response.body {
        value["body"] = body.clone();
    }
    value
}

/// Answers a `$batch` envelope (already authenticated) and logs it after its items.
pub(crate) fn serve_batch(
    inner: &mut Inner,
    principal: &Principal,
    envelope: &Call<'_>,
) -> GraphResponse {
    let response = match run(inner, principal, envelope) {
        Ok(response) => response,
        Err(err) => GraphResponse::error(&err, envelope.ids),
    };
    let mut record = envelope.record(response.logged_status(), Some(principal), None);
    // The envelope counts against no budget, and logs no body: its items do.
    record.class = None;
    record.body = None;
    inner.journal.push(record);
    response
}

fn run(
    inner: &mut Inner,
    principal: &Principal,
    envelope: &Call<'_>,
) -> Result<GraphResponse, GraphError> {
    let failure = inner.faults.scripted(
        envelope.method.as_str(),
        &envelope.logged_path(),
        Some(&principal.tenant),
        Surface::Envelope,
    );
    if let Some(failure) = failure.as_ref().filter(|f| !f.apply_first) {
        return Ok(failure.to_response(envelope.ids));
    }
    let mut answered = run_items(inner, principal, envelope)?;
    match failure {
        None => Ok(answered),
        Some(failure) if failure.drop_connection => Ok(GraphResponse::dropped()),
        // Older Graph: a throttled batch answered 424 although its items had run.
        Some(failure) if failure.status == 424 => {
            answered.status = StatusCode::FAILED_DEPENDENCY;
            answered.headers = failure.to_response(envelope.ids).headers;
            Ok(answered)
        }
        Some(failure) => Ok(failure.to_response(envelope.ids)),
    }
}

/// Runs the items of a batch; the envelope's `{"responses": […]}`, dropped if an item was.
fn run_items(
    inner: &mut Inner,
    principal: &Principal,
    envelope: &Call<'_>,
) -> Result<GraphResponse, GraphError> {
    if *envelope.method != Method::POST {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequest",
            "$batch only accepts POST.",
        ));
    }
    let items = parse_items(envelope.body.clone()?)?;
    let order = execution_order(&items)?;
    let mut statuses: Vec<Option<StatusCode>> = vec![None; items.len()];
    let mut answers: Vec<Value> = Vec::with_capacity(items.len());
    // An item's scripted dropConnection drops the whole envelope, once every item has run.
    let mut dropped = false;
    for i in order {
        let item = &items[i];
        let ids = RequestIds::from_client(header(&item.headers, "client-request-id"));
        let failed_dependency = item.depends_on.iter().any(|d| {
            items
                .iter()
                .position(|x| &x.id == d)
                .and_then(|j| statuses[j])
                .is_none_or(|s| !s.is_success())
        });
        let method = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes());
        let response = match (split_url(&item.url), method) {
            (Err(err), _) => GraphResponse::error(&err, &ids),
            (_, Err(_)) => GraphResponse::error(
                &GraphError::bad_request(format!("Invalid method '{}'.", item.method)),
                &ids,
            ),
            (Ok((path, query)), Ok(method)) => {
                let call = Call {
                    method: &method,
                    api: envelope.api,
                    path: &path,
                    query: query.as_deref(),
                    body: Ok(item.body.clone()),
                    base: envelope.base,
                    graph_resource: envelope.graph_resource,
                    ids: &ids,
                    consistency_level: header(&item.headers, "ConsistencyLevel"),
                };
                if failed_dependency {
                    // Not executed, so not counted against the budget; logged so a test sees
                    // every item it sent.
                    let status = StatusCode::FAILED_DEPENDENCY;
                    let err =
                        GraphError::new(status, default_code(status), "Dependent request failed.");
                    let response = GraphResponse::error(&err, &ids);
                    inner.journal.push(call.record(
                        status.as_u16(),
                        Some(principal),
                        Some(&item.id),
                    ));
                    response
                } else {
                    serve(inner, principal, &call, Some(&item.id))
                }
            }
        };
        dropped |= response.dropped;
        statuses[i] = Some(response.status);
        answers.push(item_json(&item.id, &response, &ids));
    }
    answers.reverse();
    if dropped {
        return Ok(GraphResponse::dropped());
    }
    Ok(GraphResponse::json(
        StatusCode::OK,
        json!({"responses": answers}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(json: Value) -> Result<Vec<Item>, GraphError> {
        parse_items(Some(json))
    }

    #[test]
    fn whole_batch_errors() {
        let many: Vec<Value> = (0..21)
            .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/x"}))
            .collect();
        assert!(items(json!({"requests": many})).is_err());
        assert!(items(json!({"requests": []})).is_err());
        assert!(
            items(json!({"requests": [
                {"id": "1", "method": "GET", "url": "/a"}, {"id": "1", "method": "GET", "url": "/b"}
            ]}))
            .is_err()
        );
        assert!(
            items(json!({"requests": [
                {"id": "a", "method": "GET", "url": "/a"}, {"id": "A", "method": "GET", "url": "/b"}
            ]}))
            .is_err(),
            "ids differing only in case are duplicates"
        );
        assert!(
            items(json!({"requests": [{"id": "1", "method": "POST", "url": "/a", "body": {}}]}))
                .is_err()
        );
        assert!(
            items(
                json!({"requests": [{"id": "1", "method": "GET", "url": "/a", "dependsOn": ["2"]}]})
            )
            .is_err()
        );
        assert!(items(json!({"nope": []})).is_err());
    }

    #[test]
    fn dependencies_run_first_and_cycles_are_rejected() {
        let parsed = items(json!({"requests": [
            {"id": "a", "method": "GET", "url": "/a", "dependsOn": ["b"]},
            {"id": "b", "method": "GET", "url": "/b"},
        ]}))
        .unwrap();
        assert_eq!(execution_order(&parsed).unwrap(), vec![1, 0]);
        let cyclic = items(json!({"requests": [
            {"id": "a", "method": "GET", "url": "/a", "dependsOn": ["b"]},
            {"id": "b", "method": "GET", "url": "/b", "dependsOn": ["a"]},
        ]}))
        .unwrap();
        assert!(execution_order(&cyclic).is_err());
    }

    #[test]
    fn item_urls_are_relative() {
        assert_eq!(
            split_url("users/a/teamwork/installedApps?$top=1").unwrap(),
            (
                "/users/a/teamwork/installedApps".to_string(),
                Some("$top=1".to_string())
            )
        );
        assert!(split_url("https://graph.microsoft.com/v1.0/users").is_err());
    }
}
