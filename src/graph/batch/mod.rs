//! JSON batching: many Graph calls in one round trip.
//!
//! Graph takes at most 20 requests per `$batch` and throttles each item on its own: a batch can
//! come back 200 with some items 429 (each with its own `Retry-After`) or 5xx. Only those items
//! are sent again, and only under the client's rule for a quick retry (see
//! [`GraphClient::send`]): a `Retry-After` of at most [`QUICK_WAIT`]. Batching saves round trips,
//! not quota: every item passes the tenant budget.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::budget::CallClass;
use super::client::{Call, GraphClient, QUICK_WAIT, Target, decode};
use super::error::{GraphError, ResponseIds};
use super::headers::parse_retry_after;
use super::metrics::Operation;
use super::models::{
    AppRef, CatalogApp, ConsentedPermissionSet, Installation, Page, WireInstallation, WireTeamsApp,
};
use super::odata::Route;
use super::operations;

mod plan;
use plan::{chunks, validate};

/// Graph's limit per `$batch` request.
pub const MAX_BATCH_SIZE: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BatchMethod {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl BatchMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// One request inside a `$batch`. `url` is relative to the API version root (`/users/…`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    /// Unique within one [`GraphClient::batch`] call.
    pub id: String,
    pub method: BatchMethod,
    pub url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Ids that must succeed first; they are kept in the same `$batch`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

impl BatchRequest {
    /// The throttling class this item counts against (each item counts on its own).
    pub fn class(&self) -> CallClass {
        CallClass::of(self.method.as_str(), &self.url)
    }

    pub fn new(id: impl Into<String>, method: BatchMethod, url: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            method,
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            depends_on: Vec::new(),
        }
    }

    /// Adds a JSON body (and its content type, which Graph requires on batch items).
    pub fn with_body(mut self, body: serde_json::Value) -> Self {
        self.headers
            .insert("Content-Type".into(), "application/json".into());
        self.body = Some(body);
        self
    }

    /// The list request of [`GraphClient::find_installation`]; decode with
    /// [`BatchResponse::installation`].
    pub fn find_installation(id: impl Into<String>, user: &str, app: &AppRef) -> Self {
        let route = operations::find_installation_route(user, app);
        Self::new(id, BatchMethod::Get, route.relative())
    }

    /// The catalog request of [`GraphClient::catalog_app`]; decode with
    /// [`BatchResponse::catalog_app`].
    pub fn catalog_app(id: impl Into<String>, app: &AppRef) -> Self {
        Self::new(
            id,
            BatchMethod::Get,
            operations::catalog_route(app).relative(),
        )
    }

    pub fn get_installation(id: impl Into<String>, user: &str, installation_id: &str) -> Self {
        let route = operations::get_installation_route(user, installation_id);
        Self::new(id, BatchMethod::Get, route.relative())
    }

    pub fn upgrade(
        id: impl Into<String>,
        user: &str,
        installation_id: &str,
        consent: Option<&ConsentedPermissionSet>,
    ) -> Self {
        let route = operations::upgrade_route(user, installation_id);
        let request = Self::new(id, BatchMethod::Post, route.relative());
        match consent {
            Some(c) => request.with_body(serde_json::json!({"consentedPermissionSet": c})),
            None => request,
        }
    }

    pub fn uninstall(id: impl Into<String>, user: &str, installation_id: &str) -> Self {
        let route = operations::installation_route(user, installation_id);
        Self::new(id, BatchMethod::Delete, route.relative())
    }
}

/// One item's answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BatchResponse {
    pub id: String,
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// The request, for error messages.
    #[serde(skip)]
    request: Option<(BatchMethod, String)>,
}

impl BatchResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
    }

    /// The item's failure as a [`GraphError`], or `None` for a 2xx.
    pub fn error(&self) -> Option<GraphError> {
        if self.is_success() {
            return None;
        }
        let (method, path) = match &self.request {
            Some((method, url)) => (method.as_str(), url.split('?').next().unwrap_or_default()),
            None => ("BATCH", self.id.as_str()),
        };
        let ids = ResponseIds::from_lookup(|name| self.header(name));
        let body = self
            .body
            .as_ref()
            .map(|b| b.to_string().into_bytes())
            .unwrap_or_default();
        Some(GraphError::from_response(
            method,
            path,
            self.status,
            &ids,
            &body,
        ))
    }

    /// Decodes a successful item's body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GraphError> {
        if let Some(err) = self.error() {
            return Err(err);
        }
        let body = self.body.clone().unwrap_or(serde_json::Value::Null);
        serde_json::from_value(body).map_err(|e| GraphError::Decode {
            method: "BATCH".into(),
            path: self.id.clone(),
            status: self.status,
            request_id: self.header("request-id").map(str::to_string),
            message: e.to_string(),
        })
    }

    /// The answer to a [`BatchRequest::catalog_app`] item. Does not follow next links.
    pub fn catalog_app(&self, app: &AppRef) -> Result<Option<CatalogApp>, GraphError> {
        let page: Page<WireTeamsApp> = self.json()?;
        Ok(page
            .value
            .into_iter()
            .find(|a| a.matches(app))
            .map(WireTeamsApp::into_model))
    }

    /// The answer for an item that was not sent because a 429 block of its `$batch` (an earlier
    /// call's `Retry-After`) had `left` to run: a 429 of our own making, which says so.
    fn held_back(request: &BatchRequest, left: Duration) -> Self {
        let message = format!(
            "not sent: Graph is throttling this tenant's {} calls, {left:.1?} left of its Retry-After",
            request.class().as_str()
        );
        Self {
            id: request.id.clone(),
            status: 429,
            headers: BTreeMap::from([(
                "Retry-After".to_string(),
                format!("{:.3}", left.as_secs_f64()),
            )]),
            body: Some(
                serde_json::json!({"error": {"code": "TooManyRequests", "message": message}}),
            ),
            request: Some((request.method, request.url.clone())),
        }
    }

    /// The answer to a [`BatchRequest::find_installation`] item. Does not follow next links.
    pub fn installation(&self, app: &AppRef) -> Result<Option<Installation>, GraphError> {
        let page: Page<WireInstallation> = self.json()?;
        Ok(page
            .value
            .into_iter()
            .find(|i| i.matches(app))
            .and_then(WireInstallation::into_model))
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    requests: Vec<&'a BatchRequest>,
}

#[derive(Deserialize)]
struct EnvelopeReply {
    responses: Vec<BatchResponse>,
}

/// Whether an item's answer is worth another try within the call: a 429 or 5xx asking for a
/// quick one (the client's rule, see [`GraphClient::send`]). 424 (failed dependency) is retried
/// when what it depends on is.
fn quick_retry(answer: &BatchResponse) -> Option<Duration> {
    let retryable = answer.status == 429 || (500..=599).contains(&answer.status);
    retryable
        .then(|| answer.retry_after())
        .flatten()
        .filter(|wait| *wait <= QUICK_WAIT)
}

impl GraphClient {
    /// Sends any number of requests as `$batch`es of at most 20, retrying only the items that
    /// failed with a 429 or 5xx whose `Retry-After` is at most [`QUICK_WAIT`] (up to the client's
    /// `max_attempts` in all; a 429's `Retry-After` blocks its class for the whole tenant, however
    /// long). Returns one response per request, in request order; items that still fail come
    /// back with their failure status and `Retry-After` for the caller's own backoff. A batch
    /// whose items' class is blocked for longer than [`QUICK_WAIT`] is not sent: its items come
    /// back 429 with what is left of the block.
    pub async fn batch(
        &self,
        requests: Vec<BatchRequest>,
    ) -> Result<Vec<BatchResponse>, GraphError> {
        validate(&requests)?;
        let order: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
        let mut done: HashMap<String, BatchResponse> = HashMap::new();
        let mut pending = requests;
        let mut attempt = 1;
        while !pending.is_empty() {
            let last_attempt = attempt >= self.max_attempts();
            let mut answers: HashMap<String, BatchResponse> = HashMap::new();
            for chunk in chunks(&pending)? {
                match self.take_turns(&chunk).await {
                    Ok(()) => answers.extend(self.send_chunk(chunk).await?),
                    // Held back whole: an item left out would break the others' `dependsOn`.
                    Err(left) => answers.extend(
                        chunk
                            .iter()
                            .map(|r| (r.id.clone(), BatchResponse::held_back(r, left))),
                    ),
                }
            }
            let mut retry_ids: HashSet<String> = HashSet::new();
            let mut pause = Duration::ZERO;
            for request in &pending {
                let Some(answer) = answers.get(&request.id) else {
                    continue;
                };
                if let (429, Some(delay)) = (answer.status, answer.retry_after()) {
                    self.budget().block_for(Some(request.class()), delay);
                }
                if let Some(wait) = quick_retry(answer).filter(|_| !last_attempt) {
                    retry_ids.insert(request.id.clone());
                    // A 429's wait is the block's; a 5xx's is slept here.
                    if answer.status != 429 {
                        pause = pause.max(wait);
                    }
                }
            }
            // Dependents that failed only because their dependency did go along for the retry.
            for request in &pending {
                if answers.get(&request.id).is_some_and(|a| a.status == 424)
                    && request.depends_on.iter().any(|d| retry_ids.contains(d))
                {
                    retry_ids.insert(request.id.clone());
                }
            }
            let mut next = Vec::new();
            for mut request in pending {
                if retry_ids.contains(&request.id) {
                    request.depends_on.retain(|d| retry_ids.contains(d));
                    next.push(request);
                } else if let Some(answer) = answers.remove(&request.id) {
                    done.insert(request.id.clone(), answer);
                }
            }
            pending = next;
            if !pending.is_empty() && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            attempt += 1;
        }
        Ok(order.iter().filter_map(|id| done.remove(id)).collect())
    }

    /// Takes a turn in the tenant's budget for every item of a chunk (each counts on its own);
    /// `Err` with what is left when a 429 block of an item's class has more than
    /// [`QUICK_WAIT`] to run.
    async fn take_turns(&self, chunk: &[&BatchRequest]) -> Result<(), Duration> {
        for request in chunk {
            self.budget()
                .acquire_within(request.class(), QUICK_WAIT)
                .await?;
        }
        Ok(())
    }

    async fn send_chunk(
        &self,
        chunk: Vec<&BatchRequest>,
    ) -> Result<HashMap<String, BatchResponse>, GraphError> {
        let started = Instant::now();
        let body = serde_json::to_value(Envelope {
            requests: chunk.clone(),
        })
        .map_err(|e| GraphError::Invalid(e.to_string()))?;
        let reply = self
            .send(Call {
                op: Operation::Batch,
                method: Method::POST,
                target: Target::Route(Route::new().lit("$batch")),
                body: Some(body),
                class: None,
                eventual_consistency: false,
            })
            .await?;
        let latency = started.elapsed();
        let envelope: EnvelopeReply = decode(&reply, "POST")?;
        let mut answers: HashMap<String, BatchResponse> = envelope
            .responses
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        for request in &chunk {
            let Some(answer) = answers.get_mut(&request.id) else {
                return Err(GraphError::Decode {
                    method: "POST".into(),
                    path: "/$batch".into(),
                    status: reply.status,
                    request_id: reply.ids.request_id.clone(),
                    message: format!("no response for batch item {}", request.id),
                });
            };
            answer.request = Some((request.method, request.url.clone()));
            self.metrics()
                .request(Operation::BatchItem, Some(answer.status), latency);
            if answer.status == 429 {
                self.metrics()
                    .throttled(Operation::BatchItem, answer.retry_after());
            }
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(id: &str) -> BatchRequest {
        BatchRequest::new(id, BatchMethod::Get, format!("/x/{id}"))
    }

    #[test]
    fn serializes_in_graph_shape() {
        let request = BatchRequest::upgrade("1", "alice@contoso.com", "aWQ=", None);
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"id": "1", "method": "POST",
                "url": "/users/alice@contoso.com/teamwork/installedApps/aWQ=/upgrade"})
        );
        let with_body = get("2").with_body(serde_json::json!({}));
        let value = serde_json::to_value(&with_body).unwrap();
        assert_eq!(value["headers"]["Content-Type"], "application/json");
    }

    #[test]
    fn item_errors_keep_status_code_and_retry_after() {
        let response: BatchResponse = serde_json::from_value(serde_json::json!({
            "id": "1", "status": 429,
            "headers": {"Retry-After": "2.5", "request-id": "rid"},
            "body": {"error": {"code": "TooManyRequests", "message": "slow down"}}
        }))
        .unwrap();
        assert_eq!(response.retry_after(), Some(Duration::from_millis(2500)));
        let err = response.error().unwrap();
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.code(), Some("TooManyRequests"));
        assert_eq!(err.request_id(), Some("rid"));
        assert!(err.is_retryable());
    }
}
