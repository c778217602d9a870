//! One rollout pass, without I/O: the audience and the installations that exist → which
//! installations to create or update and remove, the status, the Events, when to look again.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::{Digest, Sha256};

use crate::api::{
    InvalidSpec, TeamsAppRollout, TeamsAppRolloutSpec, TeamsAppRolloutStatus, Wave, WaveStatus,
    parse_interval,
};
use crate::reconcile::Standing;
use crate::reconcile::conditions::render_conditions;

use super::audience::Audience;
use super::waves::{WaveBounds, failure_budget, position, validate};

/// How many failing users a halt message names.
const NAMED_FAILURES: usize = 3;

/// An installation the rollout owns, as the pass sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub name: String,
    /// `spec.user`, lowercase (the rollout always writes the object id).
    pub user_id: String,
    /// The wave label it was created in.
    pub wave: Option<String>,
    /// The rollout revision it was last written for.
    pub revision: Option<String>,
    pub state: ChildState,
    pub deleting: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildState {
    /// Ready=True for its generation.
    Ready,
    /// Stalled=True: the reason and message of its Ready condition.
    Stalled { reason: String, message: String },
    /// Anything else: not yet reconciled, installing, upgrading, retrying.
    Pending,
}

/// An installation to create or bring to the current revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildToApply {
    pub user_id: String,
    pub wave: String,
}

/// A Kubernetes Event about the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// What the pass concluded.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub apply: Vec<ChildToApply>,
    /// Names of installations whose users left the audience (or became ineligible).
    pub remove: Vec<String>,
    pub status: TeamsAppRolloutStatus,
    pub events: Vec<RolloutEvent>,
    /// When something is due without any watch event (a bake ending).
    pub requeue_after: Option<Duration>,
}

/// Why the audience is not known this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceFailure {
    pub reason: &'static str,
    pub message: String,
    /// Stalled (needs a person: permission, unknown group) or Reconciling (will retry).
    pub terminal: bool,
}

/// A digest of everything an installation is given: when it changes, the waves start over.
pub fn revision(spec: &TeamsAppRolloutSpec) -> String {
    let given = serde_json::json!({
        "app": spec.app,
        "targetVersion": spec.target_version,
        "installPolicy": spec.install_policy,
        "template": spec.template,
    });
    let digest = Sha256::digest(given.to_string().as_bytes());
    digest[..5].iter().map(|b| format!("{b:02x}")).collect()
}

/// The spec checks the CRD cannot make.
pub fn validate_spec(spec: &TeamsAppRolloutSpec) -> Result<(), InvalidSpec> {
    spec.app_validate()?;
    validate(&spec.waves)?;
    for wave in &spec.waves {
        if let Some(bake) = &wave.bake_time {
            parse_interval(bake).map_err(|e| InvalidSpec {
                field: "spec.waves[].bakeTime",
                message: e.to_string(),
            })?;
        }
    }
    Ok(())
}

impl TeamsAppRolloutSpec {
    fn app_validate(&self) -> Result<(), InvalidSpec> {
        if self.app.id.is_some() == self.app.external_id.is_some() {
            return Err(InvalidSpec {
                field: "spec.app",
                message: "set exactly one of app.id or app.externalId".into(),
            });
        }
        Ok(())
    }
}

/// The status for a pass that could not get as far as the waves (invalid spec, unreadable
/// audience): everything else stays as it was.
pub fn blocked(
    rollout: &TeamsAppRollout,
    standing: Standing,
    reason: &str,
    message: &str,
    now: &Time,
) -> TeamsAppRolloutStatus {
    let previous = rollout.status.clone().unwrap_or_default();
    TeamsAppRolloutStatus {
        observed_generation: rollout.metadata.generation,
        app: Some(app_name(&rollout.spec)),
        conditions: render_conditions(
            standing,
            reason,
            message,
            rollout.metadata.generation,
            &previous.conditions,
            now,
        ),
        ..previous
    }
}

fn app_name(spec: &TeamsAppRolloutSpec) -> String {
    spec.app
        .id
        .clone()
        .or_else(|| spec.app.external_id.clone())
        .unwrap_or_default()
}

struct WaveTally<'a> {
    wave: &'a Wave,
    users: Vec<&'a str>,
    ready: u32,
    failed: Vec<(&'a str, &'a str, &'a str)>,
    /// Users without an installation at the current revision.
    missing: Vec<&'a str>,
    started_at: Option<Time>,
    completed_at: Option<Time>,
}

/// Decides one pass. `children` are the installations the rollout owns.
pub fn plan(
    rollout: &TeamsAppRollout,
    audience: &Audience,
    children: &[Child],
    now: &Time,
) -> Plan {
    let spec = &rollout.spec;
    let previous = rollout.status.clone().unwrap_or_default();
    let revision = revision(spec);
    let same_revision = previous.revision.as_deref() == Some(revision.as_str());
    let waves = spec.effective_waves();
    let by_user: HashMap<&str, &Child> = children
        .iter()
        .filter(|c| !c.deleting)
        .map(|c| (c.user_id.as_str(), c))
        .collect();

    // Each eligible user's wave: the one its installation was created in, else its place.
    let mut positions: Vec<u64> = audience.eligible.keys().map(|id| position(id)).collect();
    positions.sort_unstable();
    let bounds = WaveBounds::new(&waves, &positions);
    let mut tallies: Vec<WaveTally<'_>> = waves
        .iter()
        .map(|wave| {
            let before = previous
                .waves
                .iter()
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
        match child.filter(|c| c.revision.as_deref() == Some(revision.as_str())) {
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

    let mut events = Vec::new();
    let mut halted: Option<String> = None;
    let mut requeue_after = None;
    let mut open = true; // Whether the next wave may start.
    let mut current = None;
    for (index, tally) in tallies.iter_mut().enumerate() {
        let size = count(tally.users.len());
        let budget = failure_budget(spec.max_failures.as_ref(), size);
        let failed = count(tally.failed.len());
        if tally.started_at.is_none() {
            if !open || spec.paused || halted.is_some() {
                current.get_or_insert(index);
                open = false;
                continue;
            }
            tally.started_at = Some(now.clone());
            events.push(RolloutEvent {
                warning: false,
                reason: "WaveStarted",
                note: format!("wave {} started: {size} users", tally.wave.name),
            });
        }
        if failed > budget && halted.is_none() {
            halted = Some(halt_message(tally, budget));
        }
        // Every user has an installation at this revision, and each is Ready or a tolerated
        // failure. A completed wave stays completed when users join it later.
        let done = tally.missing.is_empty()
            && count(tally.users.len()) == tally.ready + failed
            && failed <= budget;
        if tally.completed_at.is_none() && done {
            tally.completed_at = Some(now.clone());
            events.push(RolloutEvent {
                warning: false,
                reason: "WaveCompleted",
                note: format!(
                    "wave {} completed: {} of {size} users Ready",
                    tally.wave.name, tally.ready
                ),
            });
        }
        let Some(completed) = &tally.completed_at else {
            current.get_or_insert(index);
            open = false;
            continue;
        };
        // An empty wave has nothing to bake.
        let bake = bake_time(tally.wave).filter(|_| size > 0);
        if let Some(bake) = bake {
            let since = now.0.duration_since(completed.0).unsigned_abs();
            if since < bake {
                current.get_or_insert(index);
                requeue_after = Some(bake - since);
                open = false;
            }
        }
    }

    let remove: Vec<String> = if spec.paused {
        Vec::new()
    } else {
        children
            .iter()
            .filter(|c| !c.deleting && !audience.eligible.contains_key(&c.user_id))
            .map(|c| c.name.clone())
            .collect()
    };
    let apply: Vec<ChildToApply> = if spec.paused || halted.is_some() {
        Vec::new()
    } else {
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
    };

    let eligible_in_waves: usize = tallies.iter().map(|t| t.users.len()).sum();
    let ready: u32 = tallies.iter().map(|t| t.ready).sum();
    let all_complete = tallies.iter().all(|t| t.completed_at.is_some()) && current.is_none();
    let everyone_settled = tallies.iter().all(|t| t.missing.is_empty())
        && tallies
            .iter()
            .all(|t| count(t.users.len()) == t.ready + count(t.failed.len()));
    let current_index = current.unwrap_or(tallies.len().saturating_sub(1));
    let current_name = tallies.get(current_index).map(|t| t.wave.name.clone());

    let (standing, reason, message) = if let Some(message) = &halted {
        (Standing::Stalled, "FailureBudgetExceeded", message.clone())
    } else if spec.paused {
        (
            Standing::Idle,
            "Paused",
            "the rollout is paused: no installations are created, changed or removed".to_string(),
        )
    } else if all_complete && everyone_settled && remove.is_empty() {
        (
            Standing::Ready,
            "RolloutComplete",
            format!("every wave is complete: {ready} of {eligible_in_waves} users have the app"),
        )
    } else {
        let t = &tallies[current_index];
        let reason = if t.completed_at.is_some() && requeue_after.is_some() {
            "Baking"
        } else {
            "WaveInProgress"
        };
        let message = match reason {
            "Baking" => format!(
                "wave {} is complete and baking; the next wave starts in {}s",
                t.wave.name,
                requeue_after.unwrap_or_default().as_secs()
            ),
            _ => format!(
                "wave {}: {} of {} users Ready, {} Stalled",
                t.wave.name,
                t.ready,
                t.users.len(),
                t.failed.len()
            ),
        };
        (Standing::Progressing, reason, message)
    };
    let was_halted = previous
        .conditions
        .iter()
        .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "FailureBudgetExceeded");
    if let Some(message) = &halted
        && !was_halted
    {
        events.push(RolloutEvent {
            warning: true,
            reason: "RolloutHalted",
            note: message.clone(),
        });
    }

    let mut counts = audience.counts.clone();
    counts.last_read_time = previous.audience.and_then(|a| a.last_read_time);
    let status = TeamsAppRolloutStatus {
        observed_generation: rollout.metadata.generation,
        app: Some(app_name(spec)),
        revision: Some(revision),
        audience: Some(counts),
        waves: tallies
            .iter()
            .map(|t| WaveStatus {
                name: t.wave.name.clone(),
                users: count(t.users.len()),
                ready: t.ready,
                failed: count(t.failed.len()),
                started_at: t.started_at.clone(),
                completed_at: t.completed_at.clone(),
            })
            .collect(),
        current_wave: current_name,
        ready_summary: Some(format!("{ready}/{eligible_in_waves}")),
        last_handled_reconcile_at: previous.last_handled_reconcile_at,
        conditions: render_conditions(
            standing,
            reason,
            &message,
            rollout.metadata.generation,
            &previous.conditions,
            now,
        ),
    };
    Plan {
        apply,
        remove,
        status,
        events,
        requeue_after,
    }
}

fn halt_message(tally: &WaveTally<'_>, budget: u32) -> String {
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

fn bake_time(wave: &Wave) -> Option<Duration> {
    wave.bake_time
        .as_deref()
        .and_then(|b| parse_interval(b).ok())
        .filter(|d| !d.is_zero())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::api::{AudienceStatus, TeamsAppRolloutSpec};
    use crate::rollout::audience::EligibleUser;

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
        let plan = plan(r, audience, children, &at(now));
        let revision = plan.status.revision.clone().unwrap_or_default();
        for c in &plan.apply {
            children.retain(|x| x.user_id != c.user_id);
            children.push(child(&c.user_id, &c.wave, &revision, state.clone()));
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
}
