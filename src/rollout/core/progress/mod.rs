//! One rollout pass, without I/O: the audience and the installations that exist → which
//! installations to create or update and remove, the status, the Events, when to look again.
//!
//! A pass sorts the eligible users into their waves ([`tally`]), moves the waves along —
//! start, complete, bake, halt ([`advance`]) — and sums it up as one verdict ([`summarize`]).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    APPROVE_REMOVALS_ANNOTATION, TeamsAppRollout, TeamsAppRolloutSpec, TeamsAppRolloutStatus, Wave,
    parse_interval,
};
use crate::kit::Announcement;

use super::audience::Audience;
use super::children::{Child, ChildState, ChildToApply};
use super::removals::{DEFAULT_REMOVAL_DELAY, Leaving, RemovalPlan, plan_removals, removal_limit};
use super::spec::{app_name, revision};
use super::verdict::Verdict;
use super::waves::{WaveBounds, failure_budget, position};
use summary::{
    announce_halts, announce_removals, halt_message, ready_summary, summarize, wave_status,
};

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

/// One wave's users and how their installations stand.
pub(super) struct WaveTally<'a> {
    wave: &'a Wave,
    users: Vec<&'a str>,
    ready: u32,
    /// (user, reason, message) of each Stalled installation.
    failed: Vec<(&'a str, &'a str, &'a str)>,
    /// Users without an installation at the current revision.
    missing: Vec<&'a str>,
    started_at: Option<Time>,
    completed_at: Option<Time>,
}

impl WaveTally<'_> {
    fn size(&self) -> u32 {
        count(self.users.len())
    }

    fn failed(&self) -> u32 {
        count(self.failed.len())
    }

    /// Every user has an installation at this revision, each Ready or a failure.
    fn settled(&self) -> bool {
        self.missing.is_empty() && self.size() == self.ready + self.failed()
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
}

/// Decides one pass. `children` are the installations the rollout owns.
pub fn plan(rollout: &TeamsAppRollout, seen: &Seen<'_>, children: &[Child], now: &Time) -> Plan {
    let spec = &rollout.spec;
    let audience = seen.audience;
    let previous = rollout.status.clone().unwrap_or_default();
    let revision = revision(spec);
    let waves = spec.effective_waves();
    let mut tallies = tally(&waves, &previous, &revision, audience, children);
    let mut movement = advance(spec, &mut tallies, now);

    let removals = if spec.paused {
        RemovalPlan::default()
    } else {
        removals(rollout, seen, children)
    };
    let apply = if spec.paused || movement.halted.is_some() {
        Vec::new()
    } else {
        to_apply(&tallies)
    };
    let verdict = summarize(spec, &tallies, &movement, &removals);
    let halts = announce_halts(&previous, &movement, &removals);
    movement.events.extend(halts);
    announce_removals(&removals, &mut movement.events);
    let current = movement.current.unwrap_or(tallies.len().saturating_sub(1));
    let status = TeamsAppRolloutStatus {
        observed_generation: rollout.metadata.generation,
        app: Some(app_name(spec)),
        revision: Some(revision),
        audience: Some(crate::api::AudienceStatus {
            last_read_time: previous.audience.and_then(|a| a.last_read_time),
            ..audience.counts.clone()
        }),
        removals: removals.status,
        waves: tallies.iter().map(wave_status).collect(),
        current_wave: tallies.get(current).map(|t| t.wave.name.clone()),
        ready_summary: Some(ready_summary(&tallies)),
        last_handled_reconcile_at: previous.last_handled_reconcile_at,
        required_permissions: previous.required_permissions,
        plan: previous.plan,
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
        limit: removal_limit(spec.removal_limit.as_ref(), base),
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

/// Sorts each eligible user into a wave — the one its installation was created in, else its
/// place — and counts how the wave's installations stand at this revision.
fn tally<'a>(
    waves: &'a [Wave],
    previous: &TeamsAppRolloutStatus,
    revision: &str,
    audience: &'a Audience,
    children: &'a [Child],
) -> Vec<WaveTally<'a>> {
    let same_revision = previous.revision.as_deref() == Some(revision);
    let by_user: HashMap<&str, &Child> = children
        .iter()
        .filter(|c| !c.deleting)
        .map(|c| (c.user_id.as_str(), c))
        .collect();
    let mut positions: Vec<u64> = audience.eligible.keys().map(|id| position(id)).collect();
    positions.sort_unstable();
    let bounds = WaveBounds::new(waves, &positions);
    let mut tallies: Vec<WaveTally<'a>> = waves
        .iter()
        .map(|wave| {
            let before = (previous.waves.iter())
                .find(|w| w.name == wave.name)
                .filter(|_| same_revision);
            WaveTally {
                wave,
                users: Vec::new(),
                ready: 0,
                failed: Vec::new(),
                missing: Vec::new(),
                started_at: before.and_then(|w| w.started_at.clone()),
                completed_at: before.and_then(|w| w.completed_at.clone()),
            }
        })
        .collect();
    for (id, user) in &audience.eligible {
        let child = by_user.get(id.as_str());
        let labelled = child
            .and_then(|c| c.wave.as_deref())
            .and_then(|name| waves.iter().position(|w| w.name == name));
        let Some(index) = labelled.or_else(|| bounds.wave_of(position(id))) else {
            continue;
        };
        let tally = &mut tallies[index];
        tally.users.push(id);
        match child.filter(|c| c.revision.as_deref() == Some(revision)) {
            None => tally.missing.push(id),
            Some(c) => match &c.state {
                ChildState::Ready => tally.ready += 1,
                ChildState::Stalled { reason, message } => {
                    let name = user.upn.as_deref().unwrap_or(id);
                    tally.failed.push((name, reason, message));
                }
                ChildState::Pending => {}
            },
        }
    }
    tallies
}

/// Moves the waves along, in order: a wave starts when the one before it is complete and baked
/// (and nothing is paused or halted), completes when every user's installation is Ready or a
/// tolerated failure, then bakes. A completed wave stays completed when users join it later.
fn advance(spec: &TeamsAppRolloutSpec, tallies: &mut [WaveTally<'_>], now: &Time) -> Movement {
    let mut movement = Movement::default();
    let mut open = true; // Whether the next wave may start.
    for (index, tally) in tallies.iter_mut().enumerate() {
        let size = tally.size();
        let budget = failure_budget(spec.max_failures.as_ref(), size);
        if tally.started_at.is_none() {
            if !open || spec.paused || movement.halted.is_some() {
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

/// The missing installations of every wave that has started.
fn to_apply(tallies: &[WaveTally<'_>]) -> Vec<ChildToApply> {
    tallies
        .iter()
        .filter(|t| t.started_at.is_some())
        .flat_map(|t| {
            t.missing.iter().map(|id| ChildToApply {
                user_id: (*id).to_string(),
                wave: t.wave.name.clone(),
            })
        })
        .collect()
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

mod summary;
#[cfg(test)]
mod tests;
