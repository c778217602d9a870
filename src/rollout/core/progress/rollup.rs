//! A rollout's plan (`status.plan`): its installations' own plans rolled up per wave, what the
//! plan was computed from (its `revision`), and the plan in words.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::{Digest, Sha256};

use crate::api::{ManagementPolicy, PlannedAction, RolloutPlan, WavePlan};
use crate::graph::BudgetConfig;

use super::super::audience::Audience;
use super::super::children::{Child, ChildState};
use super::tally::{WaveTally, live_by_user};

/// Sample users named per action.
const SAMPLES: usize = 3;

/// What the catalog says of the app right now: the version `Manage` would move users to and
/// the application RSC permissions that version requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// The latest published version; `None` when the catalog has no such app.
    pub version: Option<String>,
    pub required: Vec<String>,
}

/// A digest of what a plan is computed from: the spec's revision, the catalog's version and
/// required permissions, and exactly who is eligible. Any of them moving makes a new plan,
/// which is what `approvedPlanRevision` guards against.
pub fn plan_revision(spec_revision: &str, catalog: &Catalog, audience: &Audience) -> String {
    let mut required: Vec<String> = catalog.required.iter().map(|p| p.to_lowercase()).collect();
    required.sort_unstable();
    let mut hash = Sha256::new();
    hash.update(spec_revision.as_bytes());
    hash.update([0]);
    hash.update(catalog.version.as_deref().unwrap_or_default().as_bytes());
    for name in required.iter().chain(std::iter::once(&String::new())) {
        hash.update([0]);
        hash.update(name.as_bytes());
    }
    // The eligible map is ordered: the same members give the same digest.
    for id in audience.eligible.keys() {
        hash.update([1]);
        hash.update(id.as_bytes());
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The installations' plans per wave. A user counts as pending until its installation is at
/// this revision in `Observe` with a plan for its generation; an installation Stalled without
/// a plan counts as blocked by its reason.
pub(super) fn rollup(
    tallies: &[WaveTally<'_>],
    audience: &Audience,
    children: &[Child],
    revision: &str,
) -> (Vec<WavePlan>, BTreeMap<String, Vec<String>>) {
    let by_user = live_by_user(children);
    let mut samples: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let waves = tallies
        .iter()
        .map(|t| {
            let mut wave = WavePlan {
                name: t.wave.name.clone(),
                users: t.size(),
                ..WavePlan::default()
            };
            for id in &t.users {
                let child = (by_user.get(id).copied())
                    .filter(|c| c.revision.as_deref() == Some(revision))
                    .filter(|c| c.policy == ManagementPolicy::Observe);
                let Some(action) = child.and_then(|c| count_one(&mut wave, c)) else {
                    continue;
                };
                let name = (audience.eligible.get(*id))
                    .and_then(|u| u.upn.clone())
                    .unwrap_or_else(|| id.to_string());
                let list = samples.entry(action.as_str().to_string()).or_default();
                if list.len() < SAMPLES {
                    list.push(name);
                }
            }
            wave.pending = wave.users
                - (wave.installs + wave.upgrades + wave.uninstalls + wave.unchanged)
                - wave.blocked.values().sum::<u32>();
            wave
        })
        .collect();
    (waves, samples)
}

/// Counts one installation's plan into its wave; the action, for samples (`None`: pending).
fn count_one(wave: &mut WavePlan, child: &Child) -> Option<PlannedAction> {
    let (action, reason) = match (&child.plan, &child.state) {
        (Some((action, reason)), _) => (*action, reason.clone()),
        (None, ChildState::Stalled { reason, .. }) => {
            (PlannedAction::Blocked, Some(reason.clone()))
        }
        (None, _) => return None,
    };
    match action {
        PlannedAction::None => wave.unchanged += 1,
        PlannedAction::Install => wave.installs += 1,
        PlannedAction::Upgrade => wave.upgrades += 1,
        PlannedAction::Uninstall => wave.uninstalls += 1,
        PlannedAction::Blocked => {
            let reason = reason.unwrap_or_else(|| "Blocked".to_string());
            *wave.blocked.entry(reason).or_default() += 1;
        }
    }
    (action != PlannedAction::None).then_some(action)
}

/// The Graph writes `Manage` would make, by kind, and the least time they take: each class has
/// its own per-tenant budget, so they run side by side and the slowest class sets the time.
pub(super) fn calls(
    waves: &[WavePlan],
    removal_uninstalls: u32,
) -> (BTreeMap<String, u32>, String) {
    let sum = |f: fn(&WavePlan) -> u32| waves.iter().map(f).sum::<u32>();
    let (installs, upgrades) = (sum(|w| w.installs), sum(|w| w.upgrades));
    let uninstalls = sum(|w| w.uninstalls) + removal_uninstalls;
    let rates = BudgetConfig::default();
    let seconds = [
        f64::from(installs) / rates.write_per_second,
        f64::from(upgrades) / rates.write_per_second,
        f64::from(uninstalls) / rates.delete_per_second,
    ]
    .into_iter()
    .filter(|s| s.is_finite())
    .fold(0.0, f64::max);
    let calls = [
        ("install", installs),
        ("upgrade", upgrades),
        ("uninstall", uninstalls),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    (calls, human(Duration::from_secs_f64(seconds.ceil())))
}

/// `1h2m3s`, `1m40s`, `0s`: the form `kubectl` prints durations in.
pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// The plan in words, for the Ready condition and the Event.
pub(super) fn summary(plan: &RolloutPlan) -> String {
    let total = |f: fn(&WavePlan) -> u32| plan.waves.iter().map(f).sum::<u32>();
    let blocked: u32 = plan.waves.iter().flat_map(|w| w.blocked.values()).sum();
    let pending = total(|w| w.pending);
    let mut text = format!(
        "would install {}, upgrade {}, uninstall {}; {blocked} blocked; {} removals; revision {}",
        total(|w| w.installs),
        total(|w| w.upgrades),
        total(|w| w.uninstalls),
        plan.removals,
        plan.revision
    );
    if pending > 0 {
        text.push_str(&format!(" ({pending} users not planned yet)"));
    }
    text
}

/// Stamps `computedTime`: kept when nothing but the time changed. Also says whether the plan
/// changed (for the Event).
pub(super) fn stamp(
    mut plan: RolloutPlan,
    previous: Option<&RolloutPlan>,
    now: &Time,
) -> (RolloutPlan, bool) {
    let kept = previous
        .filter(|p| {
            RolloutPlan {
                computed_time: None,
                ..(*p).clone()
            } == plan
        })
        .and_then(|p| p.computed_time.clone());
    let changed = kept.is_none();
    plan.computed_time = Some(kept.unwrap_or_else(|| now.clone()));
    (plan, changed)
}
