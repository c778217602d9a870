//! A rollout's audience, read from Graph and kept per rollout until it is due again.
//!
//! Reading a 20,000-member group is 21 pages; doing that on every child's status change would
//! spend Graph's directory budget for nothing. The sifted audience is kept (compact: an id and
//! a UPN per eligible user) until `spec.membershipInterval` passes, the spec changes, or the
//! reconcile-requested-at annotation asks for a fresh read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{TeamsAppRollout, parse_interval};
use crate::graph::{GraphClient, GraphError};
use crate::kit::clock;

use super::super::core::audience::{Audience, AudienceRead, sift};
use super::super::core::{Reason, Verdict, audience_failure};

/// Default for `spec.membershipInterval`.
pub const DEFAULT_MEMBERSHIP_INTERVAL: Duration = Duration::from_secs(600);

/// An audience and when it was read.
#[derive(Debug, Clone)]
pub struct KnownAudience {
    pub audience: Arc<Audience>,
    pub read_time: Time,
    /// When it should be read again.
    pub due_in: Duration,
}

struct Entry {
    generation: Option<i64>,
    requested_at: Option<String>,
    read_at: Instant,
    known: KnownAudience,
}

/// Why the audience is not known this pass: the verdict to report, and the Graph error when
/// it will pass (its `Retry-After` paces the retry).
#[derive(Debug)]
pub struct AudienceFailure {
    pub verdict: Verdict,
    pub error: Option<GraphError>,
}

/// Audiences by rollout uid.
#[derive(Default)]
pub struct Memberships(Mutex<HashMap<String, Entry>>);

impl Memberships {
    /// The rollout's audience: the kept one while it is current, else read from Graph.
    pub async fn audience(
        &self,
        graph: &GraphClient,
        rollout: &TeamsAppRollout,
        requested_at: Option<&str>,
    ) -> Result<KnownAudience, AudienceFailure> {
        let uid = rollout.metadata.uid.clone().unwrap_or_default();
        let interval = membership_interval(rollout);
        if let Some(known) = self.current(&uid, rollout, requested_at, interval) {
            return Ok(known);
        }
        let read = read(graph, rollout).await.map_err(Located::failure)?;
        let spec = &rollout.spec;
        let audience =
            sift(read, &spec.audience.exclude.users, &spec.eligibility).map_err(|e| {
                AudienceFailure {
                    verdict: Verdict::stalled(Reason::PermissionDenied, e.to_string()),
                    error: None,
                }
            })?;
        let known = KnownAudience {
            audience: Arc::new(audience),
            read_time: clock::now(),
            due_in: interval,
        };
        self.lock().insert(
            uid,
            Entry {
                generation: rollout.metadata.generation,
                requested_at: requested_at.map(str::to_string),
                read_at: Instant::now(),
                known: known.clone(),
            },
        );
        Ok(known)
    }

    fn current(
        &self,
        uid: &str,
        rollout: &TeamsAppRollout,
        requested_at: Option<&str>,
        interval: Duration,
    ) -> Option<KnownAudience> {
        let map = self.lock();
        let entry = map.get(uid)?;
        let age = entry.read_at.elapsed();
        let current = entry.generation == rollout.metadata.generation
            && entry.requested_at.as_deref() == requested_at
            && age < interval;
        current.then(|| KnownAudience {
            due_in: interval - age,
            ..entry.known.clone()
        })
    }

    /// The rollout is gone: its audience is not needed any more.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn membership_interval(rollout: &TeamsAppRollout) -> Duration {
    rollout
        .spec
        .membership_interval
        .as_deref()
        .and_then(|i| parse_interval(i).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_MEMBERSHIP_INTERVAL)
}

/// Every group and user of the audience, one after the other (the directory budget paces
/// them; a rollout names a handful of groups).
async fn read(graph: &GraphClient, rollout: &TeamsAppRollout) -> Result<AudienceRead, Located> {
    let audience = &rollout.spec.audience;
    let mut read = AudienceRead::default();
    for group in &audience.members.groups {
        let members = graph
            .group_user_members(group)
            .await
            .map_err(|e| Located::group(group, e))?;
        read.included.extend(members);
    }
    for user in &audience.members.users {
        match graph.directory_user(user).await {
            Ok(Some(found)) => read.included.push(found),
            Ok(None) => read.not_found.push(user.clone()),
            Err(e) => return Err(Located::user(user, e)),
        }
    }
    let mut excluded = HashSet::new();
    for group in &audience.exclude.groups {
        let members = graph
            .group_user_members(group)
            .await
            .map_err(|e| Located::group(group, e))?;
        excluded.extend(members.into_iter().map(|m| m.id.to_lowercase()));
    }
    read.excluded_ids = excluded;
    Ok(read)
}

/// A Graph failure and what was being read.
struct Located {
    what: String,
    error: GraphError,
}

impl Located {
    fn group(id: &str, error: GraphError) -> Self {
        Self {
            what: format!("group {id}"),
            error,
        }
    }

    fn user(id: &str, error: GraphError) -> Self {
        Self {
            what: format!("user {id}"),
            error,
        }
    }

    /// The verdict from the pure failure table; a transient failure keeps its error for the
    /// retry's pacing.
    fn failure(self) -> AudienceFailure {
        let verdict = audience_failure(&self.what, self.error.class(), &self.error.to_string());
        let error = (!verdict.is_stalled()).then_some(self.error);
        AudienceFailure { verdict, error }
    }
}
