//! Who leaves a rollout, and when — decided so that Graph's noise never uninstalls anyone.
//!
//! Graph's membership index lags changes and its reads are eventually consistent, so one read
//! that misses a member proves little. A user leaves only after being absent from every read
//! over `removalDelay` (their installation carries the time they were first missed, so the
//! span survives restarts and reappearing clears it). Like Entra's own "accidental deletions
//! prevention", a read that would remove more than `removalLimit` at once holds every removal
//! until a person raises the limit or approves that exact set; and a read in which a group that
//! had members comes back empty is never acted on alone.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use crate::api::RemovalStatus;

use super::children::Child;

/// `removalDelay` when the spec sets none: Graph's lag and two reads at the default interval.
pub const DEFAULT_REMOVAL_DELAY: Duration = Duration::from_secs(3600);

/// `removalLimit` when the spec sets none.
pub const DEFAULT_REMOVAL_LIMIT: &str = "10%";

/// What the rules are applied to.
pub struct Leaving<'a> {
    /// Installations the rollout owns whose users are not eligible in this read.
    pub leavers: Vec<&'a Child>,
    /// Installations whose users are eligible again though marked absent.
    pub returned: Vec<&'a Child>,
    /// When the audience this pass acts on was read.
    pub read_time: &'a Time,
    pub delay: Duration,
    /// The limit, resolved to a count.
    pub limit: u32,
    /// The audience the limit's percentage is of (eligible now plus the leavers).
    pub base: u32,
    /// The digest a person approved (`teamsapps.dev/approve-removals`).
    pub approved: Option<&'a str>,
    /// The read looked wrong (a group that had members came back empty): act on nothing.
    pub suspect_read: bool,
}

/// What to do about the leavers this pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemovalPlan {
    /// Installations to mark absent since the read time.
    pub mark: Vec<String>,
    /// Installations whose absent mark goes (their users are back).
    pub clear: Vec<String>,
    /// Installations to delete now.
    pub remove: Vec<String>,
    /// A removal set held by the limit: (how many, the digest that approves them).
    pub over_limit: Option<(u32, String)>,
    pub status: RemovalStatus,
}

/// Resolves `removalLimit` against an audience of `base` users: a count as written, a
/// percentage rounded up and at least 1.
pub fn removal_limit(limit: Option<&IntOrString>, base: u32) -> u32 {
    match limit {
        Some(IntOrString::Int(n)) => u32::try_from(*n).unwrap_or(0),
        Some(IntOrString::String(text)) => percent_of(text, base),
        None => percent_of(DEFAULT_REMOVAL_LIMIT, base),
    }
}

fn percent_of(text: &str, base: u32) -> u32 {
    let percent: u64 = text.trim_end_matches('%').parse().unwrap_or(0);
    let count = (u64::from(base) * percent).div_ceil(100).max(1);
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// A digest naming exactly this set of installations (order does not matter).
pub fn removal_digest(names: &[String]) -> String {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let digest = Sha256::digest(sorted.join("\n").as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies the removal rules (see the module docs).
pub fn plan_removals(leaving: &Leaving<'_>) -> RemovalPlan {
    let mut plan = RemovalPlan {
        clear: leaving.returned.iter().map(|c| c.name.clone()).collect(),
        ..RemovalPlan::default()
    };
    let mut due = Vec::new();
    let mut next_due: Option<jiff::Timestamp> = None;
    for child in &leaving.leavers {
        let since = child.absent_since.as_ref().unwrap_or(leaving.read_time);
        let due_at = since.0 + leaving.delay;
        if leaving.read_time.0 >= due_at && !leaving.suspect_read {
            due.push(child.name.clone());
            continue;
        }
        if child.absent_since.is_none() && !leaving.suspect_read {
            plan.mark.push(child.name.clone());
        }
        plan.status.pending += 1;
        next_due = Some(next_due.map_or(due_at, |t| t.min(due_at)));
    }
    plan.status.next_due_time = next_due.map(Time);
    if leaving.suspect_read {
        plan.status.blocked = plan.status.pending;
        return plan;
    }
    let count = u32::try_from(due.len()).unwrap_or(u32::MAX);
    let digest = removal_digest(&due);
    if count > leaving.limit && leaving.approved != Some(digest.as_str()) {
        plan.status.blocked = count;
        plan.status.blocked_digest = Some(digest.clone());
        plan.over_limit = Some((count, digest));
    } else {
        plan.remove = due;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::core::children::ChildState;

    fn at(s: &str) -> Time {
        Time(s.parse().expect("timestamp"))
    }

    fn child(n: usize, absent_since: Option<&str>) -> Child {
        Child {
            name: format!("bot-{n}"),
            user_id: format!("u{n}"),
            wave: None,
            revision: None,
            state: ChildState::Ready,
            deleting: false,
            absent_since: absent_since.map(at),
            policy: Default::default(),
            plan: None,
        }
    }

    fn leaving<'a>(leavers: &'a [Child], read_time: &'a Time, limit: u32) -> Leaving<'a> {
        Leaving {
            leavers: leavers.iter().collect(),
            returned: Vec::new(),
            read_time,
            delay: Duration::from_secs(3600),
            limit,
            base: 100,
            approved: None,
            suspect_read: false,
        }
    }

    #[test]
    fn a_leaver_is_marked_then_removed_once_absent_for_the_delay() {
        let t0 = at("2026-01-01T00:00:00Z");
        let first = [child(1, None)];
        let plan = plan_removals(&leaving(&first, &t0, 10));
        assert_eq!(plan.mark, ["bot-1"]);
        assert!(plan.remove.is_empty());
        assert_eq!(plan.status.pending, 1);
        assert_eq!(plan.status.next_due_time, Some(at("2026-01-01T01:00:00Z")));

        let marked = [child(1, Some("2026-01-01T00:00:00Z"))];
        let soon = at("2026-01-01T00:30:00Z");
        let plan = plan_removals(&leaving(&marked, &soon, 10));
        assert!(plan.mark.is_empty() && plan.remove.is_empty());
        let later = at("2026-01-01T01:00:00Z");
        let plan = plan_removals(&leaving(&marked, &later, 10));
        assert_eq!(plan.remove, ["bot-1"]);
        assert_eq!(plan.status, RemovalStatus::default());
    }

    #[test]
    fn no_delay_removes_at_the_first_read_that_misses_the_user() {
        let t0 = at("2026-01-01T00:00:00Z");
        let first = [child(1, None)];
        let mut l = leaving(&first, &t0, 10);
        l.delay = Duration::ZERO;
        let plan = plan_removals(&l);
        assert_eq!(plan.remove, ["bot-1"]);
        assert!(plan.mark.is_empty());
    }

    #[test]
    fn more_than_the_limit_holds_every_removal_until_that_set_is_approved() {
        let t = at("2026-01-01T02:00:00Z");
        let many: Vec<Child> = (0..6)
            .map(|n| child(n, Some("2026-01-01T00:00:00Z")))
            .collect();
        let plan = plan_removals(&leaving(&many, &t, 5));
        assert!(plan.remove.is_empty());
        let (count, digest) = plan.over_limit.clone().expect("held");
        assert_eq!(count, 6);
        assert_eq!(plan.status.blocked, 6);
        assert_eq!(plan.status.blocked_digest.as_deref(), Some(digest.as_str()));

        let mut approved = leaving(&many, &t, 5);
        approved.approved = Some(&digest);
        assert_eq!(plan_removals(&approved).remove.len(), 6);
        // An approval is for that exact set: one more leaver needs a new one.
        let more: Vec<Child> = (0..7)
            .map(|n| child(n, Some("2026-01-01T00:00:00Z")))
            .collect();
        let mut stale = leaving(&more, &t, 5);
        stale.approved = Some(&digest);
        assert!(plan_removals(&stale).remove.is_empty());
        // Within the limit nothing is held.
        assert_eq!(plan_removals(&leaving(&many, &t, 6)).remove.len(), 6);
    }

    #[test]
    fn a_suspect_read_marks_and_removes_nobody() {
        let t = at("2026-01-01T02:00:00Z");
        let leavers = [child(1, None), child(2, Some("2026-01-01T00:00:00Z"))];
        let mut l = leaving(&leavers, &t, 10);
        l.suspect_read = true;
        let plan = plan_removals(&l);
        assert!(plan.mark.is_empty() && plan.remove.is_empty());
        assert_eq!(plan.status.blocked, 2);
    }

    #[test]
    fn returning_users_are_cleared() {
        let t = at("2026-01-01T00:10:00Z");
        let back = [child(1, Some("2026-01-01T00:00:00Z"))];
        let l = Leaving {
            returned: back.iter().collect(),
            ..leaving(&[], &t, 10)
        };
        assert_eq!(plan_removals(&l).clear, ["bot-1"]);
    }

    #[test]
    fn limits_resolve_counts_and_percentages() {
        assert_eq!(removal_limit(None, 100), 10);
        assert_eq!(removal_limit(None, 5), 1);
        assert_eq!(
            removal_limit(Some(&IntOrString::String("10%".into())), 0),
            1
        );
        assert_eq!(
            removal_limit(Some(&IntOrString::String("25%".into())), 10),
            3
        );
        assert_eq!(removal_limit(Some(&IntOrString::Int(0)), 100), 0);
        assert_eq!(removal_limit(Some(&IntOrString::Int(7)), 100), 7);
        assert_eq!(
            removal_digest(&["b".into(), "a".into()]),
            removal_digest(&["a".into(), "b".into()])
        );
    }
}
