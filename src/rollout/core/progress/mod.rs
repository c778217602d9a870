//! One rollout pass, without I/O: the audience and the installations that exist → which
//! installations to create or update and remove, the status, the Events, when to look again.
//!
//! A pass sorts the eligible users into their waves ([`tally`]), moves the waves along —
//! start, complete, bake, halt ([`advance`]) — and sums it up as one verdict ([`summarize`]).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    APPROVE_REMOVALS_ANNOTATION, Ensure, ManagementPolicy, RemovalPolicy, RolloutPlan,
    TeamsAppRollout, TeamsAppRolloutSpec, TeamsAppRolloutStatus, Wave, parse_interval,
};
use crate::kit::Announcement;

use super::audience::Audience;
use super::children::{Child, ChildToApply};
use super::removals::{DEFAULT_REMOVAL_DELAY, Leaving, RemovalPlan, plan_removals, removal_limit};
use super::spec::{app_name, revision};
use super::verdict::{Reason, Verdict};
use super::waves::failure_budget;
use intent::{Facts, carried, consent_hold, plan_changed};
pub use rollup::{Catalog, plan_revision};
use rollup::{calls, rollup, stamp, summary};
use summary::{
    announce_decision, announce_halts, announce_removals, halt_message, ready_summary, summarize,
    wave_status,
};
use tally::{WaveTally, tally, to_apply};

/// What the pass concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub apply: Vec<ChildToApply>,
    /// Names of installations whose users left the audience (or became ineligible) for good:
    /// absent over `removalDelay`, within `removalLimit` (see [`super::removals`]).
    pub remove: Vec<String>,
    /// Installations to mark absent since the audience's read time.
    pub mark_absent: Vec<String>,
    /// Installations whose absent mark goes: their users are back.
    pub clear_absent: Vec<String>,
    pub status: TeamsAppRolloutStatus,
    pub events: Vec<Announcement>,
    /// When something is due without any watch event (a bake ending).
    pub requeue_after: Option<Duration>,
}

/// The status for a pass that could not get as far as the waves (invalid spec, unreadable
/// audience): everything else stays as it was.
pub fn blocked(rollout: &TeamsAppRollout, verdict: &Verdict, now: &Time) -> TeamsAppRolloutStatus {
    let previous = rollout.status.clone().unwrap_or_default();
    TeamsAppRolloutStatus {
        observed_generation: rollout.metadata.generation,
        app: Some(app_name(&rollout.spec)),
        conditions: verdict.conditions(rollout.metadata.generation, &previous.conditions, now),
        ..previous
    }
}

/// How the waves moved this pass.
#[derive(Default)]
pub(super) struct Movement {
    events: Vec<Announcement>,
    /// The halt message, when a wave has more failures than it may.
    halted: Option<String>,
    /// When a bake ends.
    requeue_after: Option<Duration>,
    /// The first wave not yet complete and baked.
    current: Option<usize>,
}

/// The audience a pass acts on, and how it was read.
pub struct Seen<'a> {
    pub audience: &'a Audience,
    /// When it was read from Graph.
    pub read_time: &'a Time,
    /// A group that had members read as empty: not to be acted on alone.
    pub suspect_read: bool,
    /// The rollout's effective policy: its spec's, else the operator's default.
    pub policy: ManagementPolicy,
    /// The app as the catalog has it now.
    pub catalog: &'a Catalog,
}

/// Decides one pass. `children` are the installations the rollout owns.
pub fn plan(rollout: &TeamsAppRollout, seen: &Seen<'_>, children: &[Child], now: &Time) -> Plan {
    let spec = &rollout.spec;
    let audience = seen.audience;
    let previous = rollout.status.clone().unwrap_or_default();
    let revision = revision(spec);
    let waves = spec.effective_waves();
    let mut tallies = tally(&waves, &previous, &revision, audience, children);
    let facts = Facts {
        revision: &revision,
        plan_revision: plan_revision(&revision, seen.catalog, audience),
        catalog: seen.catalog,
        previous: previous.plan.as_ref(),
        eligible: audience.counts.eligible,
    };
    let outcome = match seen.policy {
        ManagementPolicy::Observe => observe(rollout, seen, children, &tallies, &facts, now),
        ManagementPolicy::Manage => match plan_changed(spec, &facts) {
            Some(verdict) => held(&previous, &tallies, &facts, verdict),
            None => manage(rollout, seen, children, &mut tallies, &facts, now),
        },
    };
    let Outcome {
        apply,
        removals,
        verdict,
        mut movement,
        plan,
    } = outcome;
    let halts = announce_halts(&previous, &movement, &removals);
    movement.events.extend(halts);
    movement
        .events
        .extend(announce_decision(&previous, &verdict));
    announce_removals(&removals, &mut movement.events);
    let current = movement.current.unwrap_or(tallies.len().saturating_sub(1));
    let status = TeamsAppRolloutStatus {
        observed_generation: rollout.metadata.generation,
        app: Some(app_name(spec)),
        revision: Some(revision.clone()),
        audience: Some(crate::api::AudienceStatus {
            last_read_time: previous.audience.and_then(|a| a.last_read_time),
            ..audience.counts.clone()
        }),
        removals: removals.status,
        waves: tallies.iter().map(wave_status).collect(),
        current_wave: tallies.get(current).map(|t| t.wave.name.clone()),
        ready_summary: Some(ready_summary(&tallies)),
        last_handled_reconcile_at: previous.last_handled_reconcile_at,
        required_permissions: seen.catalog.required.clone(),
        plan: Some(plan),
        conditions: verdict.conditions(rollout.metadata.generation, &previous.conditions, now),
    };
    Plan {
        apply,
        remove: removals.remove,
        mark_absent: removals.mark,
        clear_absent: removals.clear,
        status,
        events: movement.events,
        requeue_after: movement.requeue_after,
    }
}

/// What one pass does, before it becomes the status.
struct Outcome {
    apply: Vec<ChildToApply>,
    removals: RemovalPlan,
    verdict: Verdict,
    movement: Movement,
    /// `status.plan`.
    plan: RolloutPlan,
}

/// `Manage`: the waves move along, unless consent is missing, which holds the next wave.
fn manage(
    rollout: &TeamsAppRollout,
    seen: &Seen<'_>,
    children: &[Child],
    tallies: &mut [WaveTally<'_>],
    facts: &Facts<'_>,
    now: &Time,
) -> Outcome {
    let spec = &rollout.spec;
    let hold = consent_hold(spec, seen.catalog, tallies);
    let movement = advance(spec, tallies, now, hold.is_some());
    let removals = if spec.paused {
        RemovalPlan::default()
    } else {
        removals(rollout, seen, children)
    };
    let apply = if spec.paused || movement.halted.is_some() {
        Vec::new()
    } else {
        to_apply(tallies, ManagementPolicy::Manage)
    };
    let verdict = match hold.filter(|_| movement.halted.is_none()) {
        Some(hold) => hold,
        None => summarize(spec, tallies, &movement, &removals),
    };
    Outcome {
        apply,
        removals,
        verdict,
        movement,
        plan: carried(facts),
    }
}

/// `Observe`: every installation exists in `Observe`, no wave starts, nothing is removed; the
/// installations' plans are rolled up into the rollout's.
fn observe(
    rollout: &TeamsAppRollout,
    seen: &Seen<'_>,
    children: &[Child],
    tallies: &[WaveTally<'_>],
    facts: &Facts<'_>,
    now: &Time,
) -> Outcome {
    let spec = &rollout.spec;
    let leavers = count(
        children
            .iter()
            .filter(|c| !c.deleting && !seen.audience.eligible.contains_key(&c.user_id))
            .count(),
    );
    let (waves, samples) = rollup(tallies, seen.audience, children, facts.revision);
    let removal_uninstalls = match spec.removal_policy {
        RemovalPolicy::Uninstall => leavers,
        RemovalPolicy::Orphan => 0,
    };
    let (calls, estimate) = calls(&waves, removal_uninstalls);
    let fresh = RolloutPlan {
        revision: facts.plan_revision.clone(),
        spec_revision: Some(facts.revision.to_string()),
        catalog_version: facts.catalog.version.clone(),
        waves,
        removals: leavers,
        calls,
        estimated_duration: Some(estimate),
        samples,
        computed_time: None,
    };
    let (plan, changed) = stamp(fresh, facts.previous, now);
    let summary = summary(&plan);
    let mut movement = Movement {
        current: tallies.iter().position(|t| t.completed_at.is_none()),
        ..Movement::default()
    };
    // Once per plan, when every installation has had its say: not per re-check, and not for
    // each of the partial plans on the way there.
    if changed && plan.waves.iter().all(|w| w.pending == 0) {
        let event = Announcement::normal("PlanComputed", "Plan", summary.clone());
        movement.events.push(event);
    }
    let apply = if spec.paused {
        Vec::new()
    } else {
        to_apply(tallies, ManagementPolicy::Observe)
    };
    Outcome {
        apply,
        removals: RemovalPlan {
            status: rollout.status.clone().unwrap_or_default().removals,
            ..RemovalPlan::default()
        },
        verdict: Verdict::settled(Reason::Observed, summary),
        movement,
        plan,
    }
}

/// `PlanChanged`: nothing is written, and the approved plan stays in the status so the next
/// pass can still say what moved.
fn held(
    previous: &TeamsAppRolloutStatus,
    tallies: &[WaveTally<'_>],
    facts: &Facts<'_>,
    verdict: Verdict,
) -> Outcome {
    let approved = facts.previous.cloned();
    Outcome {
        apply: Vec::new(),
        removals: RemovalPlan {
            status: previous.removals.clone(),
            ..RemovalPlan::default()
        },
        verdict,
        movement: Movement {
            current: tallies.iter().position(|t| t.completed_at.is_none()),
            ..Movement::default()
        },
        plan: approved.unwrap_or_else(|| carried(facts)),
    }
}

/// The removal rules applied to this pass's leavers (see [`super::removals`]).
fn removals(rollout: &TeamsAppRollout, seen: &Seen<'_>, children: &[Child]) -> RemovalPlan {
    let spec = &rollout.spec;
    let live = children.iter().filter(|c| !c.deleting);
    let (leavers, stayers): (Vec<&Child>, Vec<&Child>) =
        live.partition(|c| !seen.audience.eligible.contains_key(&c.user_id));
    let base = seen
        .audience
        .counts
        .eligible
        .saturating_add(count(leavers.len()));
    let delay = (spec.removal_delay.as_deref())
        .and_then(|d| parse_interval(d).ok())
        .unwrap_or(DEFAULT_REMOVAL_DELAY);
    plan_removals(&Leaving {
        returned: stayers
            .into_iter()
            .filter(|c| c.absent_since.is_some())
            .collect(),
        leavers,
        read_time: seen.read_time,
        delay,
        // Removing the app from everyone is what an explicit `Absent` asks for.
        limit: match spec.ensure {
            Ensure::Absent => u32::MAX,
            Ensure::Present => removal_limit(spec.removal_limit.as_ref(), base),
        },
        base,
        approved: rollout
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPROVE_REMOVALS_ANNOTATION))
            .map(String::as_str),
        suspect_read: seen.suspect_read,
    })
}

/// Moves the waves along, in order: a wave starts when the one before it is complete and baked
/// (and nothing is paused or halted), completes when every user's installation is Ready or a
/// tolerated failure, then bakes. A completed wave stays completed when users join it later.
/// `hold`: no new wave starts (consent is missing); started waves carry on.
fn advance(
    spec: &TeamsAppRolloutSpec,
    tallies: &mut [WaveTally<'_>],
    now: &Time,
    hold: bool,
) -> Movement {
    let mut movement = Movement::default();
    let mut open = true; // Whether the next wave may start.
    for (index, tally) in tallies.iter_mut().enumerate() {
        let size = tally.size();
        let budget = failure_budget(spec.max_failures.as_ref(), size);
        if tally.started_at.is_none() {
            if !open || spec.paused || hold || movement.halted.is_some() {
                movement.current.get_or_insert(index);
                open = false;
                continue;
            }
            tally.started_at = Some(now.clone());
            let note = format!("wave {} started: {size} users", tally.wave.name);
            (movement.events).push(Announcement::normal("WaveStarted", "Rollout", note));
        }
        if tally.failed() > budget && movement.halted.is_none() {
            movement.halted = Some(halt_message(tally, budget));
        }
        if tally.completed_at.is_none() && tally.settled() && tally.failed() <= budget {
            tally.completed_at = Some(now.clone());
            let note = format!(
                "wave {} completed: {} of {size} users Ready",
                tally.wave.name, tally.ready
            );
            (movement.events).push(Announcement::normal("WaveCompleted", "Rollout", note));
        }
        let Some(completed) = &tally.completed_at else {
            movement.current.get_or_insert(index);
            open = false;
            continue;
        };
        // An empty wave has nothing to bake.
        if let Some(bake) = bake_time(tally.wave).filter(|_| size > 0) {
            let since = now.0.duration_since(completed.0).unsigned_abs();
            if since < bake {
                movement.current.get_or_insert(index);
                movement.requeue_after = Some(bake - since);
                open = false;
            }
        }
    }
    movement
}

fn bake_time(wave: &Wave) -> Option<Duration> {
    wave.bake_time
        .as_deref()
        .and_then(|b| parse_interval(b).ok())
        .filter(|d| !d.is_zero())
}

pub(super) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

mod intent;
mod rollup;
mod summary;
mod tally;
#[cfg(test)]
mod tests;
