//! Rollout passes, run as the controller would.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::api::ManagementPolicy;
use crate::api::{AudienceStatus, TeamsAppRolloutSpec};
use crate::rollout::core::audience::EligibleUser;
use crate::rollout::core::children::ChildState;

fn at(s: &str) -> Time {
    Time(s.parse().expect("timestamp"))
}

fn rollout(spec: serde_json::Value, status: Option<TeamsAppRolloutStatus>) -> TeamsAppRollout {
    let spec: TeamsAppRolloutSpec = serde_json::from_value(spec).expect("spec");
    let mut r = TeamsAppRollout::new("bot", spec);
    r.metadata.generation = Some(1);
    r.status = status;
    r
}

fn audience(n: usize) -> Audience {
    let eligible: BTreeMap<String, EligibleUser> = (0..n)
        .map(|i| {
            let id = format!("22222222-2222-2222-2222-{i:012}");
            (
                id.clone(),
                EligibleUser {
                    id,
                    upn: Some(format!("u{i}@c.com")),
                },
            )
        })
        .collect();
    Audience {
        counts: AudienceStatus {
            members: count(n),
            eligible: count(n),
            ..Default::default()
        },
        eligible,
    }
}

fn child(user: &str, wave: &str, revision: &str, state: ChildState) -> Child {
    Child {
        name: format!("bot-{user}"),
        user_id: user.to_string(),
        wave: Some(wave.to_string()),
        revision: Some(revision.to_string()),
        state,
        deleting: false,
        absent_since: None,
        policy: ManagementPolicy::Manage,
        plan: None,
    }
}

/// Version 1.0.0, asking for no RSC permission.
fn catalog() -> Catalog {
    Catalog {
        version: Some("1.0.0".into()),
        required: Vec::new(),
    }
}

fn two_waves() -> serde_json::Value {
    serde_json::json!({
        "app": {"id": "app"},
        "audience": {"groups": ["44444444-4444-4444-4444-444444444444"]},
        "waves": [{"name": "pilot", "percent": 50, "bakeTime": "1m"}, {"name": "rest", "percent": 100}],
    })
}

/// Runs passes as the controller would, feeding each status into the next, with every
/// written installation in `state`.
fn pass(
    r: &mut TeamsAppRollout,
    audience: &Audience,
    children: &mut Vec<Child>,
    state: ChildState,
    now: &str,
) -> Plan {
    pass_with(r, audience, &catalog(), children, state, now)
}

/// [`pass`] with the catalog as given.
fn pass_with(
    r: &mut TeamsAppRollout,
    audience: &Audience,
    catalog: &Catalog,
    children: &mut Vec<Child>,
    state: ChildState,
    now: &str,
) -> Plan {
    let read_time = at(now);
    let seen = Seen {
        audience,
        read_time: &read_time,
        suspect_read: false,
        policy: r.spec.management_policy.unwrap_or_default(),
        catalog,
    };
    let plan = plan(r, &seen, children, &read_time);
    let revision = plan.status.revision.clone().unwrap_or_default();
    for c in &plan.apply {
        children.retain(|x| x.user_id != c.user_id);
        let mut written = child(&c.user_id, &c.wave, &revision, state.clone());
        written.policy = c.policy;
        children.push(written);
    }
    r.status = Some(plan.status.clone());
    plan
}

#[test]
fn waves_start_in_order_after_ready_and_bake() {
    let mut r = rollout(two_waves(), None);
    let audience = audience(40);
    let mut children = Vec::new();
    let first = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Pending,
        "2026-01-01T00:00:00Z",
    );
    assert!(!first.apply.is_empty() && first.apply.iter().all(|c| c.wave == "pilot"));
    assert_eq!(first.events[0].reason, "WaveStarted");
    let pilot = first.apply.len();

    // Pilot's installations all Ready: the wave completes, and bakes.
    children
        .iter_mut()
        .for_each(|c| c.state = ChildState::Ready);
    let baking = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Pending,
        "2026-01-01T00:00:10Z",
    );
    assert!(baking.apply.is_empty());
    assert_eq!(baking.requeue_after, Some(Duration::from_secs(60)));
    assert_eq!(ready_reason(&baking), "Baking");

    // Still baking 30 s later; then the rest starts.
    let still = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Pending,
        "2026-01-01T00:00:40Z",
    );
    assert!(still.apply.is_empty());
    assert_eq!(still.requeue_after, Some(Duration::from_secs(30)));
    let rest = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Ready,
        "2026-01-01T00:01:10Z",
    );
    assert_eq!(rest.apply.len(), 40 - pilot);
    assert!(rest.apply.iter().all(|c| c.wave == "rest"));
    let done = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Ready,
        "2026-01-01T00:01:20Z",
    );
    assert_eq!(ready_reason(&done), "RolloutComplete");
    assert_eq!(done.status.ready_summary.as_deref(), Some("40/40"));
    assert_eq!(done.status.current_wave.as_deref(), Some("rest"));
}

fn ready_reason(plan: &Plan) -> String {
    plan.status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

#[test]
fn too_many_failures_halt_and_name_the_users() {
    let mut r = rollout(two_waves(), None);
    let audience = audience(40);
    let mut children = Vec::new();
    let stalled = ChildState::Stalled {
        reason: "UserNotLicensed".into(),
        message: "no licence".into(),
    };
    pass(
        &mut r,
        &audience,
        &mut children,
        stalled,
        "2026-01-01T00:00:00Z",
    );
    let halted = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Ready,
        "2026-01-01T00:00:05Z",
    );
    assert_eq!(ready_reason(&halted), "FailureBudgetExceeded");
    assert!(halted.apply.is_empty());
    assert!(
        halted
            .events
            .iter()
            .any(|e| e.warning && e.reason == "RolloutHalted")
    );
    let message = &halted.status.conditions[0].message;
    assert!(
        message.contains("@c.com (UserNotLicensed: no licence)"),
        "{message}"
    );
    // Not announced again while it stays halted.
    let again = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Ready,
        "2026-01-01T00:00:06Z",
    );
    assert!(again.events.is_empty());
    // Raising the budget resumes: the pilot completes with its failures tolerated.
    r.spec.max_failures = Some(IntOrString::String("100%".into()));
    let resumed = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Ready,
        "2026-01-01T00:00:07Z",
    );
    assert_eq!(ready_reason(&resumed), "Baking");
}

#[test]
fn leavers_are_removed_joiners_get_their_wave_and_paused_does_nothing() {
    let mut r = rollout(two_waves(), None);
    r.spec.removal_delay = Some("0s".into());
    let mut audience_now = audience(10);
    let mut children = Vec::new();
    pass(
        &mut r,
        &audience_now,
        &mut children,
        ChildState::Ready,
        "2026-01-01T00:00:00Z",
    );
    let leaver = children[0].user_id.clone();
    audience_now.eligible.remove(&leaver);
    let plan = pass(
        &mut r,
        &audience_now,
        &mut children,
        ChildState::Ready,
        "2026-01-01T00:00:01Z",
    );
    assert_eq!(plan.remove, [format!("bot-{leaver}")]);

    r.spec.paused = true;
    audience_now.eligible.clear();
    let paused = pass(
        &mut r,
        &audience_now,
        &mut children,
        ChildState::Ready,
        "2026-01-01T00:00:02Z",
    );
    assert!(paused.remove.is_empty() && paused.apply.is_empty());
    assert_eq!(ready_reason(&paused), "Paused");
}

#[test]
fn a_new_revision_rolls_out_wave_by_wave_again() {
    let mut r = rollout(two_waves(), None);
    let audience = audience(40);
    let mut children = Vec::new();
    for now in [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:01Z",
        "2026-01-01T00:02:00Z",
        "2026-01-01T00:02:01Z",
    ] {
        pass(&mut r, &audience, &mut children, ChildState::Ready, now);
    }
    assert_eq!(children.len(), 40);
    r.spec.target_version = Some("2.0.0".into());
    let again = pass(
        &mut r,
        &audience,
        &mut children,
        ChildState::Pending,
        "2026-01-01T00:03:00Z",
    );
    assert!(!again.apply.is_empty());
    assert!(
        again.apply.iter().all(|c| c.wave == "pilot"),
        "only the pilot gets 2.0.0 first"
    );
    assert_eq!(ready_reason(&again), "WaveInProgress");
}

mod plan_mode;
