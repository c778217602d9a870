//! A rollout's audience, read from Graph and kept per rollout until it is due again.
//!
//! Reading a 20,000-member group is 21 pages; doing that on every child's status change would
//! spend Graph's directory budget for nothing. The sifted audience is kept (compact: an id and
//! a UPN per eligible user) until `spec.membershipInterval` passes, the spec changes, or the
//! reconcile-requested-at annotation asks for a fresh read. The interval has a floor (the
//! operator's `--min-membership-interval`): a typo like `1ms` would otherwise read the whole
//! audience, and write the rollout's status, in a loop.

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
    /// A group that had members read as empty: nobody leaves on this read alone.
    pub suspect: bool,
}

/// A read that looked wrong is checked again this soon (or at the interval, if sooner).
const SUSPECT_RECHECK: Duration = Duration::from_secs(30);

struct Entry {
    generation: Option<i64>,
    requested_at: Option<String>,
    read_at: Instant,
    /// How long this read serves (shorter for a suspect read).
    valid_for: Duration,
    known: KnownAudience,
    /// Members per group as last accepted.
    group_sizes: HashMap<String, usize>,
    /// Groups that read as empty once after having members: the next empty read confirms.
    empty_once: HashSet<String>,
}

/// What one read of the directory gave, beyond the users.
struct Read {
    users: AudienceRead,
    /// Members per audience group.
    group_sizes: HashMap<String, usize>,
}

/// Why the audience is not known this pass: the verdict to report, and the Graph error when
/// it will pass (its `Retry-After` paces the retry).
#[derive(Debug)]
pub struct AudienceFailure {
    pub verdict: Verdict,
    pub error: Option<GraphError>,
}

/// Audiences by rollout uid.
pub struct Memberships {
    entries: Mutex<HashMap<String, Entry>>,
    /// The shortest `spec.membershipInterval` honoured.
    floor: Duration,
}

impl Memberships {
    /// Nothing known yet; intervals shorter than `floor` are raised to it.
    pub fn new(floor: Duration) -> Self {
        Self {
            entries: Mutex::default(),
            floor,
        }
    }

    /// The rollout's audience: the kept one while it is current, else read from Graph.
    pub async fn audience(
        &self,
        graph: &GraphClient,
        rollout: &TeamsAppRollout,
        requested_at: Option<&str>,
    ) -> Result<KnownAudience, AudienceFailure> {
        let uid = rollout.metadata.uid.clone().unwrap_or_default();
        let interval = membership_interval(rollout, self.floor);
        if let Some(known) = self.current(&uid, rollout, requested_at, interval) {
            return Ok(known);
        }
        let Read { users, group_sizes } = read(graph, rollout).await.map_err(Located::failure)?;
        let spec = &rollout.spec;
        let audience =
            sift(users, &spec.audience.exclude.users, &spec.eligibility).map_err(|e| {
                AudienceFailure {
                    verdict: Verdict::stalled(Reason::PermissionDenied, e.to_string()),
                    error: None,
                }
            })?;
        let mut map = self.lock();
        let (group_sizes, empty_once, suspect) = judge(map.get(&uid), group_sizes);
        let valid_for = if suspect {
            interval.min(SUSPECT_RECHECK)
        } else {
            interval
        };
        let known = KnownAudience {
            audience: Arc::new(audience),
            read_time: clock::now(),
            due_in: valid_for,
            suspect,
        };
        map.insert(
            uid,
            Entry {
                generation: rollout.metadata.generation,
                requested_at: requested_at.map(str::to_string),
                read_at: Instant::now(),
                valid_for,
                known: known.clone(),
                group_sizes,
                empty_once,
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
        let valid_for = entry.valid_for.min(interval);
        let current = entry.generation == rollout.metadata.generation
            && entry.requested_at.as_deref() == requested_at
            && age < valid_for;
        current.then(|| KnownAudience {
            due_in: valid_for - age,
            ..entry.known.clone()
        })
    }

    /// The rollout is gone: its audience is not needed any more.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `spec.membershipInterval` (or the default), at least `floor`.
fn membership_interval(rollout: &TeamsAppRollout, floor: Duration) -> Duration {
    rollout
        .spec
        .membership_interval
        .as_deref()
        .and_then(|i| parse_interval(i).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_MEMBERSHIP_INTERVAL)
        .max(floor)
}

/// Whether this read is suspect: a group that had members at the last accepted read comes
/// back empty for the first time. A second empty read in a row confirms it. Returns the group
/// sizes to remember, the groups seen empty once, and the verdict.
fn judge(
    previous: Option<&Entry>,
    sizes: HashMap<String, usize>,
) -> (HashMap<String, usize>, HashSet<String>, bool) {
    let mut remembered = HashMap::new();
    let mut empty_once = HashSet::new();
    let mut suspect = false;
    for (group, size) in sizes {
        let before = previous.and_then(|p| p.group_sizes.get(&group)).copied();
        let confirmed = previous.is_some_and(|p| p.empty_once.contains(&group));
        if size == 0 && before.unwrap_or(0) > 0 && !confirmed {
            suspect = true;
            empty_once.insert(group.clone());
            remembered.insert(group, before.unwrap_or(0));
        } else {
            remembered.insert(group, size);
        }
    }
    (remembered, empty_once, suspect)
}

/// Every group and user of the audience, one after the other (the directory budget paces
/// them; a rollout names a handful of groups).
async fn read(graph: &GraphClient, rollout: &TeamsAppRollout) -> Result<Read, Located> {
    let audience = &rollout.spec.audience;
    let mut read = AudienceRead::default();
    let mut group_sizes = HashMap::new();
    for group in &audience.members.groups {
        let members = graph
            .group_user_members(group)
            .await
            .map_err(|e| Located::group(group, e))?;
        group_sizes.insert(group.to_lowercase(), members.len());
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
    Ok(Read {
        users: read,
        group_sizes,
    })
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
        let error = &self.error;
        let class = error.status_class();
        let verdict = audience_failure(&self.what, class, error.code(), &error.to_string());
        if verdict.is_stalled() {
            return AudienceFailure {
                verdict,
                error: None,
            };
        }
        AudienceFailure {
            verdict: verdict.retried(),
            error: Some(self.error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sizes: &[(&str, usize)], empty_once: &[&str]) -> Entry {
        Entry {
            generation: Some(1),
            requested_at: None,
            read_at: Instant::now(),
            valid_for: Duration::from_secs(60),
            known: KnownAudience {
                audience: Arc::default(),
                read_time: clock::now(),
                due_in: Duration::from_secs(60),
                suspect: false,
            },
            group_sizes: sizes.iter().map(|(g, n)| (g.to_string(), *n)).collect(),
            empty_once: empty_once.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn sizes(sizes: &[(&str, usize)]) -> HashMap<String, usize> {
        sizes.iter().map(|(g, n)| (g.to_string(), *n)).collect()
    }

    #[test]
    fn a_group_that_empties_is_suspect_until_the_next_read_agrees() {
        // First read ever: nothing to compare with.
        let (_, _, suspect) = judge(None, sizes(&[("g", 0)]));
        assert!(!suspect);
        // Had members, now none: suspect, and the old size is remembered.
        let before = entry(&[("g", 5), ("h", 3)], &[]);
        let (kept, once, suspect) = judge(Some(&before), sizes(&[("g", 0), ("h", 2)]));
        assert!(suspect);
        assert_eq!((kept["g"], kept["h"]), (5, 2));
        assert!(once.contains("g"));
        // Empty again: confirmed.
        let after = entry(&[("g", 5), ("h", 2)], &["g"]);
        let (kept, once, suspect) = judge(Some(&after), sizes(&[("g", 0), ("h", 2)]));
        assert!(!suspect);
        assert_eq!(kept["g"], 0);
        assert!(once.is_empty());
        // Back with members: nothing suspect.
        let (_, once, suspect) = judge(Some(&after), sizes(&[("g", 4), ("h", 2)]));
        assert!(!suspect && once.is_empty());
    }
}
