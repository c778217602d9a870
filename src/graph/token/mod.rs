//! Access tokens for Graph: the client-credentials grant, cached, refreshed ahead of expiry — and
//! a token outage is one outage, however many callers it meets.
//!
//! Token lifetimes are random (60–90 minutes), so the refresh point comes from each answer's
//! `expires_in`: a margin before expiry (5 minutes, or 10% of a short lifetime).
//!
//! **One token request at a time, and its answer is everyone's.** At most one request is on the
//! wire. A caller without a valid token waits for the request in flight (or starts it) and gets
//! its answer, success or error; it never starts a second one. A failure then stands for a short,
//! jittered while (1–2 s; the endpoint's `Retry-After` if longer, up to 30 s): callers in that
//! window get the same error at once, without a request. The provider does not retry (except, at
//! once, a request that got no answer at all: a pooled connection the server had closed); the
//! retry schedule is the caller's — a reconcile fails and the controller backs that resource off.
//! Why: when the provider retried inside a lock held across its retries, ten reconciles queued
//! behind a token endpoint that was down each sat through a whole retry cycle in turn, so the
//! delay grew with the number of resources waiting. Now a caller waits for one request at most.
//!
//! **A valid token is used while its refresh fails.** Past the refresh point, the first caller
//! starts a refresh in the background and everyone goes on with the current token until it really
//! expires. A failed refresh is logged and counted (`token_refresh(false, …)`, like every failed
//! request) and tried again once its failure no longer stands. Nobody waits for a refresh while a
//! valid token exists.
//!
//! A 401 from Graph [invalidates](TokenProvider::invalidate) only the token it was sent with.

mod claims;
mod endpoint;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::credentials::{CredentialSource, Secret};
use super::error::{AuthError, GraphError};
use super::metrics::GraphMetrics;
use crate::backoff::{Backoff, jitter};
pub use claims::TokenFacts;
use endpoint::TokenEndpoint;

/// A token endpoint's `Retry-After` makes its failure stand this long at most; a longer wait is
/// the caller's backoff to decide (the error still carries the whole `Retry-After`).
const MAX_FAILURE_HOLD: Duration = Duration::from_secs(30);

/// When tokens are refreshed and how long a failed token request stands for every caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenSettings {
    /// Refresh when this much of a token's lifetime is left (5 minutes)…
    pub max_refresh_margin: Duration,
    /// …or this fraction of the lifetime, if that is less (0.1: short-lived tokens).
    pub refresh_fraction: f64,
    /// A failed token request is every caller's answer for this long, jittered up to twice as
    /// long (1 s: 1–2 s), or for the endpoint's `Retry-After` if that is longer (at most 30 s).
    pub failure_hold: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            max_refresh_margin: Duration::from_secs(5 * 60),
            refresh_fraction: 0.1,
            failure_hold: Duration::from_secs(1),
        }
    }
}

impl TokenSettings {
    /// How long before expiry to refresh a token of this lifetime.
    pub fn refresh_margin(&self, lifetime: Duration) -> Duration {
        let fraction = if self.refresh_fraction.is_finite() {
            self.refresh_fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let share = Duration::try_from_secs_f64(lifetime.as_secs_f64() * fraction)
            .unwrap_or(Duration::ZERO);
        self.max_refresh_margin.min(share)
    }

    /// How long this failure stands: the jittered hold, or the endpoint's `Retry-After` (capped)
    /// if longer. The jitter keeps replicas and restarts from asking again in step.
    fn hold_for(&self, error: &GraphError) -> Duration {
        let held = self.failure_hold.saturating_add(jitter(self.failure_hold));
        match error.retry_after() {
            Some(asked) => held.max(asked.min(MAX_FAILURE_HOLD)),
            None => held,
        }
    }
}

/// A bearer token and the identity of the refresh that produced it.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub secret: Secret,
    /// Increments on every refresh; lets a 401 invalidate only the token it was sent with.
    pub generation: u64,
}

pub(crate) struct TokenProviderConfig {
    pub token_url: String,
    pub scope: String,
    pub client_id: String,
    pub credential: CredentialSource,
    pub timeout: Duration,
    pub settings: TokenSettings,
}

/// The token cache of one client (shared by its clones).
pub(crate) struct TokenProvider {
    shared: Arc<Shared>,
}

/// What the provider and its request in flight (a spawned task) both reach.
struct Shared {
    endpoint: TokenEndpoint,
    settings: TokenSettings,
    metrics: Arc<dyn GraphMetrics>,
    /// Never held across an `.await`.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    generation: u64,
    /// The last request failed: its error stands until `until`.
    failure: Option<Failure>,
    /// The request on the wire, if any.
    flight: Option<Flight>,
    flights: u64,
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
    expires_at: Instant,
}

struct Failure {
    error: GraphError,
    until: Instant,
}

type Outcome = Result<AccessToken, GraphError>;

/// A request in flight; its answer is published on `answer` when it lands.
#[derive(Clone)]
struct Flight {
    id: u64,
    answer: watch::Receiver<Option<Outcome>>,
}

/// What a caller does next.
enum Next {
    Answer(Outcome),
    Wait(Flight),
}

impl TokenProvider {
    pub fn new(
        http: reqwest::Client,
        config: TokenProviderConfig,
        metrics: Arc<dyn GraphMetrics>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                endpoint: TokenEndpoint {
                    http,
                    token_url: config.token_url,
                    scope: config.scope,
                    client_id: config.client_id,
                    credential: config.credential,
                    timeout: config.timeout,
                },
                settings: config.settings,
                metrics,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// A token that is still valid, or the error of the latest token request.
    ///
    /// Waits only when there is no valid token, and then for one request: the one in flight, or
    /// one it starts. A failure that still stands is answered at once.
    pub async fn token(&self) -> Result<AccessToken, GraphError> {
        let mut abandoned = 0;
        loop {
            let mut flight = match Shared::next(&self.shared) {
                Next::Answer(outcome) => return outcome,
                Next::Wait(flight) => flight,
            };
            let answer = flight
                .answer
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|answer| answer.clone());
            if let Some(answer) = answer {
                return answer;
            }
            // The request's task ended without landing (it panicked): forget it, and try once
            // more rather than loop on a bug.
            self.shared.abandon(flight.id);
            abandoned += 1;
            if abandoned > 1 {
                return Err(abandoned_request());
            }
        }
    }

    /// A token at start-up: retries a failure that passes on its own (`attempts` in all, the
    /// first included, `backoff` apart, and never before the failure stops standing), so a blip
    /// of the token endpoint does not stop the process; refused credentials fail at once.
    pub async fn sign_in(
        &self,
        attempts: u32,
        backoff: Backoff,
    ) -> Result<AccessToken, GraphError> {
        let mut attempt = 1;
        loop {
            match self.token().await {
                Err(err) if err.is_retryable() && attempt < attempts => {
                    let delay = backoff.delay(attempt).max(self.shared.failure_left());
                    tracing::warn!(error = %err, attempt, ?delay, "signing in failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Graph said 401 to `used`: drop it so the next [`TokenProvider::token`] asks for a new one.
    /// A token already replaced by a newer one is left alone.
    pub async fn invalidate(&self, used: &AccessToken) {
        let mut state = self.shared.lock();
        if state
            .cached
            .as_ref()
            .is_some_and(|c| c.token.generation == used.generation)
        {
            state.cached = None;
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached token if it is fresh; otherwise start a request unless one is in flight or a
    /// failure stands, and answer with a still-valid token (never waiting for the refresh), the
    /// standing failure, or the request to wait for.
    fn next(this: &Arc<Self>) -> Next {
        let mut state = this.lock();
        let now = Instant::now();
        let valid = state.cached.as_ref().filter(|c| now < c.expires_at);
        if let Some(cached) = valid
            && now < cached.refresh_at
        {
            return Next::Answer(Ok(cached.token.clone()));
        }
        let valid = valid.map(|c| c.token.clone());
        let flight = if let Some(flight) = &state.flight {
            flight.clone()
        } else if let Some(failure) = state.failure.as_ref().filter(|f| now < f.until) {
            return Next::Answer(valid.ok_or_else(|| failure.error.clone()));
        } else {
            Self::take_off(this, &mut state)
        };
        match valid {
            Some(token) => Next::Answer(Ok(token)),
            None => Next::Wait(flight),
        }
    }

    /// Starts a token request in its own task, so that it lands (and its answer is cached) even
    /// when the caller that started it has gone, and so that a refresh keeps nobody waiting.
    fn take_off(this: &Arc<Self>, state: &mut State) -> Flight {
        state.flights += 1;
        let (publish, answer) = watch::channel(None);
        let flight = Flight {
            id: state.flights,
            answer,
        };
        state.flight = Some(flight.clone());
        let shared = Arc::clone(this);
        let id = flight.id;
        tokio::spawn(async move {
            let outcome = shared.request().await;
            let answer = shared.land(id, outcome);
            publish.send_replace(Some(answer));
        });
        flight
    }

    /// One request, and once more at once if it got no answer at all (typically a pooled
    /// connection the server had closed). A timeout is not repeated: it already took its time.
    async fn request(&self) -> Result<(Secret, Duration), GraphError> {
        match self.request_once().await {
            Err(err @ GraphError::Transport { .. }) => {
                tracing::debug!(error = %err, "token request got no answer; asking once more");
                self.request_once().await
            }
            outcome => outcome,
        }
    }

    async fn request_once(&self) -> Result<(Secret, Duration), GraphError> {
        let started = Instant::now();
        let outcome = self.endpoint.request().await;
        self.metrics
            .token_refresh(outcome.is_ok(), started.elapsed());
        outcome
    }

    /// Records a request's outcome: a new token, or a failure that stands for a while.
    fn land(&self, id: u64, outcome: Result<(Secret, Duration), GraphError>) -> Outcome {
        let mut state = self.lock();
        if state.flight.as_ref().is_some_and(|f| f.id == id) {
            state.flight = None;
        }
        let now = Instant::now();
        match outcome {
            Ok((secret, lifetime)) => {
                state.generation += 1;
                let token = AccessToken {
                    secret,
                    generation: state.generation,
                };
                let margin = self.settings.refresh_margin(lifetime);
                state.cached = Some(Cached {
                    token: token.clone(),
                    refresh_at: now + lifetime.saturating_sub(margin),
                    expires_at: now + lifetime,
                });
                state.failure = None;
                Ok(token)
            }
            Err(error) => {
                let hold = self.settings.hold_for(&error);
                if state.cached.as_ref().is_some_and(|c| now < c.expires_at) {
                    tracing::warn!(error = %error, retry_in = ?hold,
                        "token request failed; the current token is still used until it expires");
                } else {
                    tracing::warn!(error = %error, retry_in = ?hold,
                        "token request failed; callers get this error until it is tried again");
                }
                state.failure = Some(Failure {
                    error: error.clone(),
                    until: now + hold,
                });
                Err(error)
            }
        }
    }

    /// Forgets a request whose task ended without landing.
    fn abandon(&self, id: u64) {
        let mut state = self.lock();
        if state.flight.as_ref().is_some_and(|f| f.id == id) {
            state.flight = None;
        }
    }

    /// How long the standing failure, if any, still stands.
    fn failure_left(&self) -> Duration {
        let state = self.lock();
        state.failure.as_ref().map_or(Duration::ZERO, |f| {
            f.until.saturating_duration_since(Instant::now())
        })
    }
}

/// The answer of a request whose task ended without one (a bug): not worth retrying as is.
fn abandoned_request() -> GraphError {
    GraphError::Auth(Box::new(AuthError {
        status: None,
        error: "token_request_abandoned".into(),
        description: Some("the token request ended without an answer (see the log)".into()),
        error_codes: Vec::new(),
        trace_id: None,
        correlation_id: None,
        retry_after: None,
    }))
}

#[cfg(test)]
mod tests;
