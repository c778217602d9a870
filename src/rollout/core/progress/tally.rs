//! Where each eligible user stands: its wave, and how its installation stands at this
//! revision — and which installations a pass writes from that.

use std::collections::HashMap;

use crate::api::{ManagementPolicy, TeamsAppRolloutStatus, Wave};

use super::super::audience::Audience;
use super::super::children::{BLOCKED_REASONS, Child, ChildState, ChildToApply};
use super::super::waves::{WaveBounds, position};
use super::count;

/// The reason of an installation whose next version needs consent the rollout does not give.
const CONSENT_REQUIRED: &str = "ConsentRequired";
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// One wave's users and how their installations stand.
pub(in crate::rollout::core) struct WaveTally<'a> {
    pub(super) wave: &'a Wave,
    pub(super) users: Vec<&'a str>,
    pub(super) ready: u32,
    /// (user, reason, message) of each Stalled installation that counts as a failure.
    pub(super) failed: Vec<(&'a str, &'a str, &'a str)>,
    /// (user, reason) of each installation a tenant policy stops: skipped, not failed.
    pub(super) blocked: Vec<(&'a str, &'a str)>,
    /// (user, message) of each installation Stalled `ConsentRequired`: the version it would move
    /// to needs consent the rollout does not give. Not a failure — one decision for the whole
    /// rollout, which holds (see [`super::intent::consent_hold`]) — and not done either.
    pub(super) consent_held: Vec<(&'a str, &'a str)>,
    /// Users without an installation at the current revision.
    pub(super) missing: Vec<&'a str>,
    /// Users whose installation is at this revision, by its management policy: the pass
    /// flips them when the rollout's policy (or the wave's start) wants the other one.
    pub(super) observing: Vec<&'a str>,
    pub(super) managing: Vec<&'a str>,
    pub(super) started_at: Option<Time>,
    pub(super) completed_at: Option<Time>,
}

impl WaveTally<'_> {
    pub(super) fn size(&self) -> u32 {
        count(self.users.len())
    }

    pub(super) fn failed(&self) -> u32 {
        count(self.failed.len())
    }

    pub(super) fn blocked(&self) -> u32 {
        count(self.blocked.len())
    }

    /// Every user has a managed installation at this revision, each Ready, a failure, or
    /// blocked by a tenant policy.
    pub(super) fn settled(&self) -> bool {
        self.missing.is_empty() && self.size() == self.ready + self.failed() + self.blocked()
    }
}

/// Sorts each eligible user into a wave — the one its installation was created in, else its
/// place — and counts how the wave's installations stand at this revision.
pub(super) fn tally<'a>(
    waves: &'a [Wave],
    previous: &TeamsAppRolloutStatus,
    revision: &str,
    audience: &'a Audience,
    children: &'a [Child],
) -> Vec<WaveTally<'a>> {
    let same_revision = previous.revision.as_deref() == Some(revision);
    let by_user = live_by_user(children);
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
                blocked: Vec::new(),
                consent_held: Vec::new(),
                missing: Vec::new(),
                observing: Vec::new(),
                managing: Vec::new(),
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
        let Some(c) = child.filter(|c| c.revision.as_deref() == Some(revision)) else {
            tally.missing.push(id);
            continue;
        };
        match c.policy {
            ManagementPolicy::Observe => tally.observing.push(id),
            ManagementPolicy::Manage => tally.managing.push(id),
        }
        match &c.state {
            ChildState::Ready => tally.ready += 1,
            ChildState::Stalled { reason, .. } if BLOCKED_REASONS.contains(&reason.as_str()) => {
                tally.blocked.push((id, reason));
            }
            ChildState::Stalled { reason, message } if reason == CONSENT_REQUIRED => {
                let name = user.upn.as_deref().unwrap_or(id);
                tally.consent_held.push((name, message));
            }
            ChildState::Stalled { reason, message } => {
                let name = user.upn.as_deref().unwrap_or(id);
                tally.failed.push((name, reason, message));
            }
            // Observed wrote nothing: not done, whatever its Ready says.
            ChildState::Observed | ChildState::Pending => {}
        }
    }
    tallies
}

/// The installations not being deleted, by user.
pub(super) fn live_by_user(children: &[Child]) -> HashMap<&str, &Child> {
    children
        .iter()
        .filter(|c| !c.deleting)
        .map(|c| (c.user_id.as_str(), c))
        .collect()
}

/// What a pass writes. `Observe`: every wave's installations, in `Observe`, at once (nothing
/// they do writes to Graph). `Manage`: the installations of every started wave, in `Manage` —
/// those an `Observe` phase left included; an unstarted wave's stay as they are.
pub(super) fn to_apply(tallies: &[WaveTally<'_>], policy: ManagementPolicy) -> Vec<ChildToApply> {
    tallies
        .iter()
        .filter(|t| policy == ManagementPolicy::Observe || t.started_at.is_some())
        .flat_map(|t| {
            let flipped = match policy {
                ManagementPolicy::Observe => &t.managing,
                ManagementPolicy::Manage => &t.observing,
            };
            t.missing.iter().chain(flipped).map(move |id| ChildToApply {
                user_id: (*id).to_string(),
                wave: t.wave.name.clone(),
                policy,
            })
        })
        .collect()
}
