//! Plan mode, consent, `ensure: Absent` and users blocked by a tenant policy.

use super::*;
use crate::api::{Ensure, PlannedAction};

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:00:01Z";
const T2: &str = "2026-01-01T00:00:02Z";

fn observing(spec: serde_json::Value) -> TeamsAppRollout {
    let mut r = rollout(spec, None);
    r.spec.management_policy = Some(ManagementPolicy::Observe);
    r
}

fn plan_of(p: &Plan) -> &crate::api::RolloutPlan {
    p.status.plan.as_ref().expect("a plan")
}

fn stalled(reason: &str) -> ChildState {
    ChildState::Stalled {
        reason: reason.into(),
        message: "m".into(),
    }
}

/// Gives each installation a plan: the first `installs` install, the next `upgrades` upgrade,
/// one is blocked by a policy without a plan, the rest are up to date.
fn computed(children: &mut [Child], installs: usize, upgrades: usize) {
    for (i, c) in children.iter_mut().enumerate() {
        c.plan = Some(match i {
            i if i < installs => (PlannedAction::Install, None),
            i if i < installs + upgrades => (PlannedAction::Upgrade, None),
            _ => (PlannedAction::None, None),
        });
    }
    if let Some(last) = children.last_mut() {
        last.plan = None;
        last.state = stalled("BlockedByPolicy");
    }
}

/// The first pass over 20 users, with every installation written in `state`.
fn first_pass(r: &mut TeamsAppRollout, state: ChildState) -> (Audience, Vec<Child>, Plan) {
    let audience = audience(20);
    let mut children = Vec::new();
    let first = pass(r, &audience, &mut children, state, T0);
    (audience, children, first)
}

#[test]
fn observe_creates_every_wave_in_observe_starts_none_and_removes_nothing() {
    let mut r = observing(two_waves());
    r.spec.removal_delay = Some("0s".into());
    let (mut audience_now, mut children, first) = first_pass(&mut r, ChildState::Observed);
    assert_eq!(first.apply.len(), 20, "every wave at once");
    assert!(first.apply.iter().any(|c| c.wave == "rest"));
    assert!(
        first
            .apply
            .iter()
            .all(|c| c.policy == ManagementPolicy::Observe)
    );
    assert!(first.status.waves.iter().all(|w| w.started_at.is_none()));
    assert!(first.events.iter().all(|e| e.reason != "WaveStarted"));
    assert_eq!(ready_reason(&first), "Observed");
    assert_eq!(
        plan_of(&first).waves[0].pending,
        first.status.waves[0].users
    );

    let leaver = children[0].user_id.clone();
    audience_now.eligible.remove(&leaver);
    let left = pass(
        &mut r,
        &audience_now,
        &mut children,
        ChildState::Observed,
        T1,
    );
    assert!(left.remove.is_empty() && left.mark_absent.is_empty());
    assert_eq!(plan_of(&left).removals, 1);
}

/// Two Observe passes over 20 users: one creates the installations, which then compute their
/// plans ([`computed`]); the second rolls them up.
fn observed(installs: usize, upgrades: usize) -> (TeamsAppRollout, Audience, Vec<Child>, Plan) {
    let mut r = observing(two_waves());
    let audience = audience(20);
    let mut children = Vec::new();
    pass(&mut r, &audience, &mut children, ChildState::Observed, T0);
    computed(&mut children, installs, upgrades);
    let done = pass(&mut r, &audience, &mut children, ChildState::Observed, T1);
    (r, audience, children, done)
}

#[test]
fn the_plan_rolls_the_installations_plans_up_per_wave() {
    let (mut r, audience, mut children, done) = observed(5, 3);
    let plan = plan_of(&done);
    let sum = |f: fn(&crate::api::WavePlan) -> u32| plan.waves.iter().map(f).sum::<u32>();
    assert_eq!(sum(|w| w.users), 20);
    assert_eq!(sum(|w| w.installs), 5);
    assert_eq!(sum(|w| w.upgrades), 3);
    assert_eq!(sum(|w| w.unchanged), 11);
    assert_eq!(sum(|w| w.pending), 0);
    let blocked: u32 = plan
        .waves
        .iter()
        .filter_map(|w| w.blocked.get("BlockedByPolicy"))
        .sum();
    assert_eq!(blocked, 1);
    assert_eq!(plan.calls["install"], 5);
    assert_eq!(plan.calls["upgrade"], 3);
    assert_eq!(plan.samples["Install"].len(), 3);
    assert_eq!(plan.catalog_version.as_deref(), Some("1.0.0"));
    // Both classes are well under a second's budget.
    assert_eq!(plan.estimated_duration.as_deref(), Some("1s"));
    let message = &done.status.conditions[0].message;
    assert!(
        message.starts_with("would install 5, upgrade 3, uninstall 0; 1 blocked"),
        "{message}"
    );
    assert_eq!(
        done.events
            .iter()
            .filter(|e| e.reason == "PlanComputed")
            .count(),
        1
    );

    // The same plan found again: no Event, the same computedTime.
    let again = pass(&mut r, &audience, &mut children, ChildState::Observed, T2);
    assert!(again.events.iter().all(|e| e.reason != "PlanComputed"));
    assert_eq!(plan_of(&again).computed_time, plan.computed_time);
}

#[test]
fn durations_read_like_kubectls() {
    assert_eq!(rollup::human(Duration::from_secs(100)), "1m40s");
    assert_eq!(rollup::human(Duration::from_secs(3725)), "1h2m5s");
    let waves = [crate::api::WavePlan {
        installs: 3000,
        uninstalls: 300,
        ..Default::default()
    }];
    assert_eq!(rollup::calls(&waves, 0).1, "1m40s");
}

#[test]
fn the_revision_is_stable_and_moves_with_version_audience_and_spec() {
    let r = rollout(two_waves(), None);
    let spec = revision(&r.spec);
    let base = plan_revision(&spec, &catalog(), &audience(10));
    assert_eq!(base, plan_revision(&spec, &catalog(), &audience(10)));
    assert!(base.len() <= 16);
    let bumped = Catalog {
        version: Some("2.0.0".into()),
        ..catalog()
    };
    assert_ne!(base, plan_revision(&spec, &bumped, &audience(10)));
    let asks_more = Catalog {
        required: vec!["TeamsActivity.Send.User".into()],
        ..catalog()
    };
    assert_ne!(base, plan_revision(&spec, &asks_more, &audience(10)));
    assert_ne!(base, plan_revision(&spec, &catalog(), &audience(11)));
    let mut other = r.spec.clone();
    other.target_version = Some("1.0.0".into());
    assert_ne!(
        base,
        plan_revision(&revision(&other), &catalog(), &audience(10))
    );
    // The policy is not part of what is approved: switching it is the approval's point.
    other = r.spec.clone();
    other.management_policy = Some(ManagementPolicy::Observe);
    assert_eq!(revision(&other), spec);
}

#[test]
fn a_stale_approval_writes_nothing_and_says_what_moved() {
    let (mut r, audience, mut children, observed) = observed(19, 0);
    let approved = plan_of(&observed).revision.clone();

    r.spec.management_policy = Some(ManagementPolicy::Manage);
    r.spec.approved_plan_revision = Some(approved.clone());
    let bumped = Catalog {
        version: Some("2.0.0".into()),
        ..catalog()
    };
    let mut held_pass = || {
        pass_with(
            &mut r,
            &audience,
            &bumped,
            &mut children,
            ChildState::Ready,
            T2,
        )
    };
    let held = held_pass();
    let again = held_pass();
    assert_eq!(ready_reason(&held), "PlanChanged");
    assert!(held.apply.is_empty() && held.remove.is_empty());
    let message = &held.status.conditions[0].message;
    assert!(message.contains("from 1.0.0 to 2.0.0"), "{message}");
    assert!(held.status.waves.iter().all(|w| w.started_at.is_none()));
    assert!(
        held.events
            .iter()
            .any(|e| e.warning && e.reason == "PlanChanged")
    );
    assert!(again.events.is_empty(), "announced once");

    // Approved as it is: the first wave starts, its installations switch to Manage.
    let go = pass(&mut r, &audience, &mut children, ChildState::Pending, T2);
    assert_ne!(ready_reason(&go), "PlanChanged");
    assert!(!go.apply.is_empty());
    assert!(
        go.apply
            .iter()
            .all(|c| c.wave == "pilot" && c.policy == ManagementPolicy::Manage)
    );
    assert_eq!(plan_of(&go).revision, approved);
}

#[test]
fn missing_consent_holds_the_next_wave() {
    let mut r = rollout(two_waves(), None);
    let audience = audience(20);
    let mut children = Vec::new();
    let asks = Catalog {
        required: vec!["TeamsActivity.Send.User".into()],
        ..catalog()
    };
    let held = pass_with(
        &mut r,
        &audience,
        &asks,
        &mut children,
        ChildState::Ready,
        T0,
    );
    assert_eq!(ready_reason(&held), "ConsentRequired");
    assert!(held.apply.is_empty());
    assert!(held.status.waves.iter().all(|w| w.started_at.is_none()));
    assert_eq!(held.status.required_permissions, asks.required);
    let message = &held.status.conditions[0].message;
    assert!(message.contains("TeamsActivity.Send.User") && message.contains("MatchCatalog"));

    r.spec.consent = Some(crate::api::Consent {
        mode: Default::default(),
        permissions: vec!["teamsactivity.send.user".into()],
    });
    let go = pass_with(
        &mut r,
        &audience,
        &asks,
        &mut children,
        ChildState::Ready,
        T1,
    );
    assert_eq!(ready_reason(&go), "WaveInProgress");
    assert!(!go.apply.is_empty());

    // Nothing is installed when the app is to be absent: no consent needed.
    let mut absent = rollout(two_waves(), None);
    absent.spec.ensure = Ensure::Absent;
    let removing = pass_with(
        &mut absent,
        &audience,
        &asks,
        &mut Vec::new(),
        ChildState::Ready,
        T0,
    );
    assert_ne!(ready_reason(&removing), "ConsentRequired");
}

#[test]
fn absent_runs_in_waves_and_ignores_the_removal_limit() {
    let mut r = rollout(two_waves(), None);
    r.spec.ensure = Ensure::Absent;
    r.spec.removal_delay = Some("0s".into());
    r.spec.removal_limit = Some(IntOrString::Int(1));
    let (mut audience_now, mut children, first) = first_pass(&mut r, ChildState::Pending);
    assert!(first.apply.iter().all(|c| c.wave == "pilot"));
    assert_ne!(
        revision(&r.spec),
        revision(&rollout(two_waves(), None).spec)
    );
    // Five users leave at once: removed, although the limit is 1.
    let leavers: Vec<String> = children.iter().take(5).map(|c| c.user_id.clone()).collect();
    leavers.iter().for_each(|l| {
        audience_now.eligible.remove(l);
    });
    let left = pass(
        &mut r,
        &audience_now,
        &mut children,
        ChildState::Pending,
        T1,
    );
    assert_eq!(left.remove.len(), 5);
}

#[test]
fn users_blocked_by_a_tenant_policy_are_skipped_not_failed() {
    let mut r = rollout(two_waves(), None);
    let audience = audience(20);
    let mut children = Vec::new();
    pass(&mut r, &audience, &mut children, ChildState::Ready, T0);
    children[0].state = stalled("BlockedByPolicy");
    children[1].state = stalled("ManagedByPolicy");
    let baking = pass(&mut r, &audience, &mut children, ChildState::Ready, T1);
    assert_eq!(ready_reason(&baking), "Baking");
    let pilot = &baking.status.waves[0];
    assert_eq!((pilot.blocked, pilot.failed), (2, 0));
    assert!(pilot.completed_at.is_some());
}

#[test]
fn observed_installations_are_not_done_in_manage() {
    let mut r = rollout(two_waves(), None);
    let audience = audience(20);
    let mut children = Vec::new();
    pass(&mut r, &audience, &mut children, ChildState::Observed, T0);
    // Installations left in Observe (say, switched back by hand) are Ready only as observed.
    children
        .iter_mut()
        .for_each(|c| c.policy = ManagementPolicy::Observe);
    let still = pass(&mut r, &audience, &mut children, ChildState::Observed, T1);
    assert_eq!(ready_reason(&still), "WaveInProgress");
    assert_eq!(still.status.waves[0].ready, 0);
    assert!(still.status.waves[0].completed_at.is_none());
    // ... and the pass puts them back in Manage.
    assert!(!still.apply.is_empty());
    assert!(
        still
            .apply
            .iter()
            .all(|c| c.policy == ManagementPolicy::Manage)
    );
}

/// The rollout's catalog read is cached, so its installations may be first to find that the
/// latest version needs more consent: each one Stalled `ConsentRequired` holds the rollout
/// (its next wave does not start) and is not a failure (no halt for `maxFailures`).
#[test]
fn installations_needing_consent_hold_the_rollout_not_halt_it() {
    let mut r = rollout(two_waves(), None);
    let audience = audience(20);
    let mut children = Vec::new();
    let needs = ChildState::Stalled {
        reason: "ConsentRequired".into(),
        message: "version 2.0.0 requires Chat.Read.User".into(),
    };
    let first = pass_with(
        &mut r,
        &audience,
        &catalog(),
        &mut children,
        needs.clone(),
        T0,
    );
    assert!(!first.apply.is_empty());
    let held = pass_with(&mut r, &audience, &catalog(), &mut children, needs, T1);
    assert_eq!(ready_reason(&held), "ConsentRequired");
    let message = &held.status.conditions[0].message;
    assert!(message.contains("Chat.Read.User"), "{message}");
    let pilot = &held.status.waves[0];
    assert_eq!((pilot.failed, pilot.completed_at.is_some()), (0, false));
    assert!(held.status.waves[1].started_at.is_none());
}
