//! Where a replica's accepted notifications go. Graph posts to one public URL, and the Service
//! behind it may pick any replica, but only the leader reconciles: a replica that leads queues
//! them for its own controllers; a standby sends the request on, body unchanged, to the leader's
//! receiver, whose address the leader publishes (see `crate::subscription::persist`).
//!
//! The leader checks a forwarded request exactly as one from Graph — the `clientState` inside is
//! the proof — so forwarding needs no credential of its own. A forwarded request is marked
//! ([`FORWARDED_HEADER`]) and never forwarded again: a replica that gets one without leading
//! (leadership just moved) answers 503, and the standby answers Graph 503 in turn, so Graph
//! sends it again later, by when the new leader has published its address.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::http::StatusCode;

/// Marks a request one replica forwarded to another.
pub const FORWARDED_HEADER: &str = "x-teams-app-operator-forwarded";

/// How long a standby waits for the leader: Graph wants an answer within 3 s.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// This replica's part: leading (queue locally) or standing by (forward to the leader).
/// Cheap to clone: every clone is the same switch. The default leads, for a receiver that
/// runs without leader election.
#[derive(Clone)]
pub struct Handoff {
    state: Arc<RwLock<State>>,
    http: reqwest::Client,
}

#[derive(Debug, Clone)]
struct State {
    leading: bool,
    /// The leader's receiver (its base URL), as it published it.
    leader: Option<url::Url>,
}

/// Where one request's accepted notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Local,
    Forward(url::Url),
    /// A standby that knows no leader yet: 503, Graph sends again.
    Nobody,
}

impl Default for Handoff {
    fn default() -> Self {
        Self::with(true)
    }
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Handoff").field(&*self.read()).finish()
    }
}

impl Handoff {
    /// A replica under leader election: it forwards until [`Self::lead`].
    pub fn standby() -> Self {
        Self::with(false)
    }

    fn with(leading: bool) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            state: Arc::new(RwLock::new(State {
                leading,
                leader: None,
            })),
            http,
        }
    }

    /// Queues locally until the returned guard is dropped (when this replica stops leading).
    pub fn lead(&self) -> Leading {
        self.write().leading = true;
        Leading(self.clone())
    }

    /// The leader's receiver, as it published it (`None`: not known).
    pub fn set_leader(&self, leader: Option<url::Url>) {
        self.write().leader = leader;
    }

    pub fn is_leading(&self) -> bool {
        self.read().leading
    }

    pub(crate) fn route(&self) -> Route {
        let state = self.read();
        match (&state.leading, &state.leader) {
            (true, _) => Route::Local,
            (false, Some(url)) => Route::Forward(url.clone()),
            (false, None) => Route::Nobody,
        }
    }

    /// Sends `body` on to `path` under the leader's URL; whether the leader accepted it.
    pub(crate) async fn forward(&self, leader: &url::Url, path: &str, body: Vec<u8>) -> bool {
        let target = format!("{}{path}", leader.as_str().trim_end_matches('/'));
        let sent = self
            .http
            .post(&target)
            .header(FORWARDED_HEADER, "1")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => true,
            Ok(answer) => {
                let status = StatusCode::from_u16(answer.status().as_u16()).ok();
                tracing::warn!(leader = %leader, status = ?status,
                    "the leader did not take a forwarded notification; Graph will send it again");
                false
            }
            Err(err) => {
                tracing::warn!(leader = %leader, error = %err,
                    "forwarding a notification to the leader failed; Graph will send it again");
                false
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// This replica leads while this lives.
#[must_use = "the replica stops leading when this is dropped"]
pub struct Leading(Handoff);

impl Drop for Leading {
    fn drop(&mut self) {
        self.0.write().leading = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_forwards_to_the_published_leader_and_leads_while_the_guard_lives() {
        let handoff = Handoff::standby();
        assert_eq!(handoff.route(), Route::Nobody);
        let url = url::Url::parse("http://10.0.0.7:8443").unwrap();
        handoff.set_leader(Some(url.clone()));
        assert_eq!(handoff.route(), Route::Forward(url.clone()));
        let guard = handoff.lead();
        assert_eq!(handoff.route(), Route::Local);
        drop(guard);
        assert_eq!(handoff.route(), Route::Forward(url));
        assert_eq!(Handoff::default().route(), Route::Local);
    }
}
