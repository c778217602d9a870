//! What a pass reports: the rollout's one verdict, the status of each wave, and the Events for
//! halts and removals.

use crate::api::{TeamsAppRolloutSpec, TeamsAppRolloutStatus, WaveStatus};
use crate::kit::Announcement;
use crate::kit::conditions::{STALLED, find};

use super::super::removals::RemovalPlan;
use super::super::verdict::{Reason, Verdict};
use super::Movement;
use super::tally::WaveTally;

/// How many failing users a halt message names.
const NAMED_FAILURES: usize = 3;

/// The rollout's one verdict for this pass.
pub(super) fn summarize(
    spec: &TeamsAppRolloutSpec,
    tallies: &[WaveTally<'_>],
    movement: &Movement,
    removals: &RemovalPlan,
) -> Verdict {
    if let Some(message) = &movement.halted {
        return Verdict::stalled(Reason::FailureBudgetExceeded, message.clone());
    }
    if let Some((count, digest)) = &removals.over_limit {
        let message = format!(
            "{count} users would leave the rollout at once, more than spec.removalLimit allows: every removal is held (installs go on). To go ahead, raise spec.removalLimit, or approve exactly this set: kubectl annotate teamsapprollout <name> teamsapps.dev/approve-removals={digest}"
        );
        return Verdict::stalled(Reason::RemovalLimitExceeded, message);
    }
    let no_leavers = removals.remove.is_empty();
    if spec.paused {
        let message = "the rollout is paused: no installations are created, changed or removed";
        return Verdict::idle(Reason::Paused, message.to_string());
    }
    let all_complete =
        tallies.iter().all(|t| t.completed_at.is_some()) && movement.current.is_none();
    if all_complete && tallies.iter().all(WaveTally::settled) && no_leavers {
        let (ready, eligible) = totals(tallies);
        let message = format!("every wave is complete: {ready} of {eligible} users have the app");
        return Verdict::settled(Reason::RolloutComplete, message);
    }
    let current = movement.current.unwrap_or(tallies.len().saturating_sub(1));
    let t = &tallies[current];
    match movement.requeue_after.filter(|_| t.completed_at.is_some()) {
        Some(wait) => Verdict::progressing(
            Reason::Baking,
            format!(
                "wave {} is complete and baking; the next wave starts in {}s",
                t.wave.name,
                wait.as_secs()
            ),
        ),
        None => Verdict::progressing(
            Reason::WaveInProgress,
            format!(
                "wave {}: {} of {} users Ready, {} Stalled, {} blocked by a tenant policy",
                t.wave.name,
                t.ready,
                t.users.len(),
                t.failed.len(),
                t.blocked.len()
            ),
        ),
    }
}

/// `ready/eligible` over every wave.
pub(super) fn ready_summary(tallies: &[WaveTally<'_>]) -> String {
    let (ready, eligible) = totals(tallies);
    format!("{ready}/{eligible}")
}

/// Users with the app Ready, and eligible users, over every wave.
fn totals(tallies: &[WaveTally<'_>]) -> (u32, usize) {
    let ready = tallies.iter().map(|t| t.ready).sum();
    (ready, tallies.iter().map(|t| t.users.len()).sum())
}

pub(super) fn wave_status(t: &WaveTally<'_>) -> WaveStatus {
    WaveStatus {
        name: t.wave.name.clone(),
        users: t.size(),
        ready: t.ready,
        failed: t.failed(),
        blocked: t.blocked(),
        started_at: t.started_at.clone(),
        completed_at: t.completed_at.clone(),
    }
}

pub(super) fn halt_message(tally: &WaveTally<'_>, budget: u32) -> String {
    let named: Vec<String> = tally
        .failed
        .iter()
        .take(NAMED_FAILURES)
        .map(|(user, reason, message)| format!("{user} ({reason}: {message})"))
        .collect();
    let more = tally.failed.len().saturating_sub(NAMED_FAILURES);
    format!(
        "wave {}: {} of {} installations are Stalled, more than maxFailures allows ({budget}); no new installations until that changes: {}{}",
        tally.wave.name,
        tally.failed.len(),
        tally.users.len(),
        named.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    )
}

/// Whether the last status was already Stalled for `reason` (its Event went out then).
fn stalled_for(previous: &TeamsAppRolloutStatus, reason: Reason) -> bool {
    find(&previous.conditions, STALLED)
        .is_some_and(|c| c.status == "True" && c.reason == reason.as_str())
}

/// A Warning Event when the rollout starts waiting on a person's decision (a stale approval,
/// consent to add), once, not per pass.
pub(super) fn announce_decision(
    previous: &TeamsAppRolloutStatus,
    verdict: &Verdict,
) -> Option<Announcement> {
    let waits = matches!(
        verdict.reason,
        Reason::PlanChanged | Reason::ConsentRequired
    );
    (waits && !stalled_for(previous, verdict.reason))
        .then(|| Announcement::warning(verdict.reason.as_str(), "Rollout", verdict.message.clone()))
}

/// Warning Events for a halt or a held removal set, once when it starts.
pub(super) fn announce_halts(
    previous: &TeamsAppRolloutStatus,
    movement: &Movement,
    removals: &RemovalPlan,
) -> Vec<Announcement> {
    let stalled_for = |reason: Reason| stalled_for(previous, reason);
    let mut events = Vec::new();
    if let Some(message) = &movement.halted
        && !stalled_for(Reason::FailureBudgetExceeded)
    {
        events.push(Announcement::warning(
            "RolloutHalted",
            "Rollout",
            message.clone(),
        ));
    }
    if let Some((count, digest)) = &removals.over_limit
        && movement.halted.is_none()
        && !stalled_for(Reason::RemovalLimitExceeded)
    {
        let note = format!(
            "{count} users would leave at once, more than removalLimit allows; removals are held (approve with the annotation teamsapps.dev/approve-removals={digest})"
        );
        events.push(Announcement::warning(
            "RemovalLimitExceeded",
            "Rollout",
            note,
        ));
    }
    events
}

/// Events for users found absent and for removals made.
pub(super) fn announce_removals(removals: &RemovalPlan, events: &mut Vec<Announcement>) {
    if !removals.mark.is_empty() {
        let due = (removals.status.next_due_time.as_ref())
            .map_or_else(String::new, |t| format!(" at {}", t.0));
        let note = format!(
            "{} users are absent from the audience; they leave the rollout{due} if still absent then",
            removals.mark.len()
        );
        events.push(Announcement::normal("RemovalPending", "Rollout", note));
    }
    if !removals.remove.is_empty() {
        let note = format!(
            "{} users left the audience: their installations are removed",
            removals.remove.len()
        );
        events.push(Announcement::normal("Removed", "Rollout", note));
    }
}
