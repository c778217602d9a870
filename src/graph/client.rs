//! The Graph client and its one request path: budget → token → send → classify → a quick retry
//! or the error (the rule is on [`GraphClient::send`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::budget::{CallClass, TenantBudget};
use super::cloud::Endpoints;
use super::error::{GraphConfigError, GraphError, ResponseIds, no_answer};
use super::metrics::{GraphMetrics, Operation};
use super::odata::Route;
use super::settings::GraphSettings;
use super::token::{AccessToken, TokenFacts, TokenProvider, TokenProviderConfig};
use crate::backoff::Backoff;

/// The longest a call waits inside a reconcile, for a retry (a `Retry-After`) or for a 429 block
/// of its class to end. Anything longer ends the call with the error (see [`GraphClient::send`]).
pub const QUICK_WAIT: Duration = Duration::from_secs(1);

/// Token requests the start-up sign-in makes before it gives up on an endpoint that keeps
/// failing in a way that passes on its own.
pub const SIGN_IN_ATTEMPTS: u32 = 4;

/// A Microsoft Graph client for one tenant. Cheap to clone: clones share the token cache, the
/// request budget and the connection pool.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    api_base: String,
    tenant_id: String,
    client_id: String,
    tokens: TokenProvider,
    budget: Arc<TenantBudget>,
    metrics: Arc<dyn GraphMetrics>,
    timeout: Duration,
    max_attempts: u32,
    backoff: Backoff,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("api_base", &self.inner.api_base)
            .field("tenant_id", &self.inner.tenant_id)
            .finish_non_exhaustive()
    }
}

/// Where a request goes: a route under the API root, or a `@odata.nextLink` Graph gave us.
pub(crate) enum Target {
    Route(Route),
    NextLink(String),
}

/// One logical call; [`GraphClient::send`] may put it on the wire several times.
pub(crate) struct Call {
    pub op: Operation,
    pub method: Method,
    pub target: Target,
    pub body: Option<serde_json::Value>,
    /// `None` for the `$batch` envelope: its items pass the budget one by one.
    pub class: Option<CallClass>,
    /// Send `ConsistencyLevel: eventual`: Graph's advanced directory queries (casts, `$count`)
    /// need it on every page.
    pub eventual_consistency: bool,
}

/// What came back for one attempt: the HTTP status, the ids in its headers, the whole body.
type Answer = (u16, ResponseIds, Vec<u8>);

/// A 2xx answer.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub ids: ResponseIds,
    /// The path (no query) of the request, for error messages.
    pub path: String,
}

impl GraphClient {
    /// Builds a client, validating the cloud, URLs and credential up front.
    pub fn new(settings: GraphSettings) -> Result<Self, GraphConfigError> {
        Self::build(settings, None)
    }

    /// Builds a client that shares `budget` with others: Graph throttles per app registration
    /// per tenant, so every client of one (tenant, client id) must draw from one budget.
    pub fn with_budget(
        settings: GraphSettings,
        budget: Arc<TenantBudget>,
    ) -> Result<Self, GraphConfigError> {
        Self::build(settings, Some(budget))
    }

    fn build(
        settings: GraphSettings,
        budget: Option<Arc<TenantBudget>>,
    ) -> Result<Self, GraphConfigError> {
        let endpoints = Endpoints::resolve(
            settings.cloud,
            settings.graph_url.as_ref(),
            settings.login_url.as_ref(),
            &settings.api_version,
        )?;
        for (what, value) in [
            ("tenant id", &settings.tenant_id),
            ("client id", &settings.client_id),
        ] {
            if value.trim().is_empty() {
                return Err(GraphConfigError::Invalid(format!("the {what} is empty")));
            }
        }
        if settings.timeout.is_zero() {
            return Err(GraphConfigError::Invalid(
                "the Graph timeout must be > 0".into(),
            ));
        }
        settings.credential.validate()?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("teams-app-operator/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(GraphConfigError::Http)?;
        let max_attempts = settings.max_attempts.max(1);
        let tokens = TokenProvider::new(
            http.clone(),
            TokenProviderConfig {
                token_url: endpoints.token_url(&settings.tenant_id),
                scope: endpoints.scope(),
                client_id: settings.client_id.clone(),
                credential: settings.credential.clone(),
                timeout: settings.timeout,
                settings: settings.token,
            },
            settings.metrics.clone(),
        );
        let budget = budget.unwrap_or_else(|| {
            Arc::new(TenantBudget::new(settings.budget, settings.metrics.clone()))
        });
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api_base: endpoints.api_base(),
                endpoints,
                tenant_id: settings.tenant_id,
                client_id: settings.client_id,
                tokens,
                budget,
                metrics: settings.metrics,
                timeout: settings.timeout,
                max_attempts,
                backoff: settings.backoff,
            }),
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    /// The app registration this client signs in as.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The tenant's shared request budget (for its wait-time accessor).
    pub fn budget(&self) -> &Arc<TenantBudget> {
        &self.inner.budget
    }

    pub(crate) fn metrics(&self) -> &dyn GraphMetrics {
        self.inner.metrics.as_ref()
    }

    pub(crate) fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// Signs in once (a token request) so bad credentials or an unreachable login host surface
    /// as one clear start-up error instead of a failure in every reconcile. A token endpoint
    /// that is briefly unavailable is asked up to [`SIGN_IN_ATTEMPTS`] times, with backoff: no
    /// reconcile waits on this, and a process that gives up is restarted from scratch.
    pub async fn check_credentials(&self) -> Result<(), GraphError> {
        let backoff = self.inner.backoff;
        self.inner
            .tokens
            .sign_in(SIGN_IN_ATTEMPTS, backoff)
            .await
            .map(drop)
    }

    /// What the current token says about itself (granted roles, tenant, expiry), getting one
    /// if there is none — or a new one when `fresh` (roles granted since show only in a new
    /// token). Nothing of the token itself leaves the client.
    pub async fn token_facts(&self, fresh: bool) -> Result<TokenFacts, GraphError> {
        let mut token = self.inner.tokens.token().await?;
        if fresh {
            self.inner.tokens.invalidate(&token).await;
            token = self.inner.tokens.token().await?;
        }
        Ok(TokenFacts::read(token.secret.expose()).unwrap_or_default())
    }

    /// `https://graph.microsoft.com/{version}/appCatalogs/teamsApps/{id}`: what
    /// `teamsApp@odata.bind` expects — on the cloud's own Graph host even when requests go to an
    /// override, since Graph resolves the binding against itself.
    pub fn catalog_app_url(&self, catalog_app_id: &str) -> String {
        let route = Route::new()
            .lit("appCatalogs")
            .lit("teamsApps")
            .seg(catalog_app_id);
        format!(
            "{}{}",
            self.inner.endpoints.canonical_api_base(),
            route.relative()
        )
    }

    /// GET and decode JSON.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        op: Operation,
        class: CallClass,
        target: Target,
    ) -> Result<T, GraphError> {
        let reply = self
            .send(Call {
                op,
                method: Method::GET,
                target,
                body: None,
                class: Some(class),
                eventual_consistency: false,
            })
            .await?;
        decode(&reply, "GET")
    }

    /// Sends a call and returns the 2xx reply or the error.
    ///
    /// **One retry layer owns the schedule: the controller's.** A call is tried again here only
    /// when that is cheap and quick, at most `max_attempts` times in all (`--graph-max-attempts`):
    /// - a request that got no answer at all (a dropped connection, typically a pooled one the
    ///   server had closed): once, at once — a timeout is not repeated, it already took its time;
    /// - a 429 or 5xx whose `Retry-After` is at most [`QUICK_WAIT`]: after it;
    /// - a 401: once, with a fresh token (not counted as an attempt).
    ///
    /// Everything else ends the call with its error, `Retry-After` kept: a 429 or 5xx asking for
    /// longer or saying nothing, the Teams backend's transient 400s, a timeout, a token failure.
    /// The reconcile then reports it in the resource's status at once, and the controller's
    /// per-resource backoff (the controller kit's, which honours `Retry-After`) schedules the
    /// next try. Two nested schedules would multiply (a retry loop per call, restarted by every
    /// backoff step) and would hold the reconcile, and so its status, for as long as they last.
    /// For the same reason a 429 block of the call's class (an earlier call's `Retry-After`,
    /// held for the whole tenant) is waited out only while at most [`QUICK_WAIT`] of it is left;
    /// a longer one fails the call without sending it, as [`GraphError::Throttled`] carrying
    /// what is left. The budget's pacing, by contrast, is always waited for: it is the rate.
    pub(crate) async fn send(&self, call: Call) -> Result<Reply, GraphError> {
        let inner = &self.inner;
        let (url, path) = self.resolve(&call.target, call.method.as_str())?;
        let method = call.method.as_str();
        let mut attempt = 1;
        let mut refreshed = false;
        let mut reconnected = false;
        loop {
            self.take_turn(&call, method, &path).await?;
            let token = inner.tokens.token().await?;
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let (outcome, latency) = self
                .put_on_wire(&call, &url, &token, &client_request_id)
                .await;
            let (status, ids, body) = match outcome {
                Ok(answer) => answer,
                Err(e) => {
                    inner.metrics.request(call.op, None, latency);
                    let err = no_answer(method, &path, client_request_id, inner.timeout, e);
                    tracing::debug!(method, path, attempt, error = %err, "graph request failed");
                    let dropped = matches!(err, GraphError::Transport { .. });
                    if dropped && !reconnected && attempt < inner.max_attempts {
                        reconnected = true;
                        attempt += 1;
                        continue;
                    }
                    return Err(err);
                }
            };
            inner.metrics.request(call.op, Some(status), latency);
            tracing::debug!(
                method,
                path,
                status,
                client_request_id,
                request_id = ids.request_id.as_deref().unwrap_or(""),
                attempt,
                latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
                "graph request"
            );
            // Older Graph answered a whole `$batch` 424 when some items failed; its body still
            // holds every item's answer, and the items that succeeded must not be re-sent.
            let batch_with_answers = status == 424 && call.op == Operation::Batch;
            if (200..300).contains(&status) || batch_with_answers {
                return Ok(Reply {
                    status,
                    body,
                    ids,
                    path,
                });
            }
            let err = GraphError::from_response(method, &path, status, &ids, &body);
            if status == 401 && !refreshed {
                // Expired or revoked early: one fresh token, then the 401 is real.
                inner.tokens.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            match self.quick_retry(&call, status, &ids) {
                Some(delay) if attempt < inner.max_attempts => {
                    tracing::debug!(
                        method,
                        path,
                        status,
                        attempt,
                        ?delay,
                        "retrying graph request"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// Waits for the call's turn in the tenant's budget, or fails it at once when a 429 block of
    /// its class has more than [`QUICK_WAIT`] left. The `$batch` envelope (no class) only waits
    /// out a block: its items took their turns one by one.
    async fn take_turn(&self, call: &Call, method: &str, path: &str) -> Result<(), GraphError> {
        let budget = &self.inner.budget;
        let waited = match call.class {
            Some(class) => budget.acquire_within(class, QUICK_WAIT).await.map(drop),
            None => budget.wait_unblocked_within(None, QUICK_WAIT).await,
        };
        waited.map_err(|left| GraphError::Throttled {
            method: method.to_string(),
            path: path.to_string(),
            class: call.class.map_or("any", CallClass::as_str),
            retry_after: left,
        })
    }

    /// Puts one attempt of the call on the wire and reads the whole answer; returns it (or why
    /// none came) with the latency, measured from the send so the metric covers Graph alone.
    async fn put_on_wire(
        &self,
        call: &Call,
        url: &str,
        token: &AccessToken,
        client_request_id: &str,
    ) -> (Result<Answer, reqwest::Error>, Duration) {
        let inner = &self.inner;
        let mut request = inner
            .http
            .request(call.method.clone(), url)
            .bearer_auth(token.secret.expose())
            .header("client-request-id", client_request_id)
            .timeout(inner.timeout);
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        if call.eventual_consistency {
            request = request.header("ConsistencyLevel", "eventual");
        }
        let started = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let ids = ResponseIds::from_headers(response.headers());
                response
                    .bytes()
                    .await
                    .map(|body| (status, ids, body.to_vec()))
            }
            Err(e) => Err(e),
        };
        (outcome, started.elapsed())
    }

    /// The wait before trying an error answer again within the call, if it is quick (see
    /// [`GraphClient::send`]). A 429 is also counted here and, with `Retry-After`, blocks the
    /// call's class for the tenant however long it asks (nobody sends into a throttle).
    fn quick_retry(&self, call: &Call, status: u16, ids: &ResponseIds) -> Option<Duration> {
        let inner = &self.inner;
        let quick = ids.retry_after.filter(|wait| *wait <= QUICK_WAIT);
        match status {
            429 => {
                inner.metrics.throttled(call.op, ids.retry_after);
                if let Some(retry_after) = ids.retry_after {
                    inner.budget.block_for(call.class, retry_after);
                }
                // The block holds the retry: the budget waits it out.
                quick.map(|_| Duration::ZERO)
            }
            500..=599 => quick,
            _ => None,
        }
    }

    /// The absolute URL and the loggable path of a target. Next links must stay on the Graph
    /// host: the bearer token goes wherever they point.
    fn resolve(&self, target: &Target, method: &str) -> Result<(String, String), GraphError> {
        match target {
            Target::Route(route) => Ok((
                format!("{}{}", self.inner.api_base, route.relative()),
                route.path().to_string(),
            )),
            Target::NextLink(link) => match self.inner.endpoints.follow_link(link) {
                Some(next) => {
                    let path = next.path().to_string();
                    Ok((next.into(), path))
                }
                None => Err(GraphError::Decode {
                    method: method.to_string(),
                    path: "@odata.nextLink".into(),
                    status: 200,
                    request_id: None,
                    message: "refusing to follow a nextLink that leaves the Graph host".into(),
                }),
            },
        }
    }
}

/// Decodes a JSON reply body, turning failures into [`GraphError::Decode`].
pub(crate) fn decode<T: DeserializeOwned>(reply: &Reply, method: &str) -> Result<T, GraphError> {
    serde_json::from_slice(&reply.body).map_err(|e| GraphError::Decode {
        method: method.to_string(),
        path: reply.path.clone(),
        status: reply.status,
        request_id: reply.ids.request_id.clone(),
        message: e.to_string(),
    })
}
