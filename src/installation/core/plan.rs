//! Plan mode (`managementPolicy: Observe`): the decision a `Manage` pass would act on, turned
//! into `status.plan` instead of a Graph write. The plan comes from the very same reads and the
//! very same [`decide`](super::decide), so switching to `Manage` does what the plan says.

use crate::api::{InstallationPlan, PlannedAction};
use crate::kit::Announcement;

use super::decision::{Action, Decision, Observed};
use super::pass::Pass;
use super::verdict::{Reason, Verdict};

/// The plan for `decision`, the verdict an observed resource reports — Ready (reason
/// `Observed`), so GitOps tools see a settled resource, with the plan in the message — and the
/// Event announcing a changed plan.
pub fn observe(
    pass: &Pass,
    decision: &Decision,
    observed: &Observed,
) -> (InstallationPlan, Verdict, Vec<Announcement>) {
    let user = pass.user.as_str();
    let to_version = (observed.catalog.latest_published.as_ref()).map(ToString::to_string);
    let from_version =
        (observed.installation.as_ref()).and_then(|i| i.version.as_ref().map(ToString::to_string));
    let path = format!("/users/{user}/teamwork/installedApps");
    let (action, calls, consent) = match &decision.action {
        Action::Install { consent, .. } => (
            PlannedAction::Install,
            vec![format!("POST {path}")],
            consent.as_ref().map(|c| c.application()),
        ),
        Action::Upgrade {
            installation_id,
            consent,
        } => (
            PlannedAction::Upgrade,
            vec![format!("POST {path}/{installation_id}/upgrade")],
            consent.as_ref().map(|c| c.application()),
        ),
        Action::Uninstall { installation_id } => (
            PlannedAction::Uninstall,
            vec![format!("DELETE {path}/{installation_id}")],
            None,
        ),
        Action::Nothing if blocks(&decision.verdict) => (PlannedAction::Blocked, Vec::new(), None),
        Action::Nothing => (PlannedAction::None, Vec::new(), None),
    };
    let blocked_reason =
        (action == PlannedAction::Blocked).then(|| decision.verdict.reason.as_str().to_string());
    let message = describe(
        action,
        &decision.verdict,
        from_version.as_deref(),
        &to_version,
    );
    let plan = InstallationPlan {
        action,
        blocked_reason,
        message: message.clone(),
        from_version,
        to_version: match action {
            PlannedAction::Install | PlannedAction::Upgrade => to_version,
            _ => None,
        },
        consent: consent.unwrap_or_default(),
        calls,
        generation: pass.generation,
        computed_time: Some(pass.now.clone()),
    };
    let plan = keep_time(pass, plan);
    let verdict = Verdict::settled(
        Reason::Observed,
        format!("managementPolicy is Observe, nothing is written: {message}"),
    );
    let events = announce(pass, &plan).into_iter().collect();
    (plan, verdict, events)
}

/// `WouldInstall` / `WouldUpgrade` / `WouldUninstall`, once per change of the plan (never per
/// re-check that finds the same plan).
fn announce(pass: &Pass, plan: &InstallationPlan) -> Option<Announcement> {
    let unchanged = pass
        .previous
        .plan
        .as_ref()
        .is_some_and(|before| before.same_plan(plan));
    if unchanged {
        return None;
    }
    let reason = match plan.action {
        PlannedAction::Install => "WouldInstall",
        PlannedAction::Upgrade => "WouldUpgrade",
        PlannedAction::Uninstall => "WouldUninstall",
        PlannedAction::None | PlannedAction::Blocked => return None,
    };
    let calls = plan.calls.join(", ");
    Some(Announcement::normal(
        reason,
        "Plan",
        format!("{} ({calls})", plan.message),
    ))
}

/// A decision that writes nothing because something stops it (not because all is well, nor
/// because an earlier write is still being verified).
fn blocks(verdict: &Verdict) -> bool {
    verdict.is_stalled() || verdict.reason == Reason::WaitingForCatalogVersion
}

fn describe(
    action: PlannedAction,
    verdict: &Verdict,
    from: Option<&str>,
    to: &Option<String>,
) -> String {
    let to = to.as_deref().unwrap_or("the latest version");
    match action {
        PlannedAction::Install => format!("would install {to}"),
        PlannedAction::Upgrade => format!("would upgrade from {} to {to}", from.unwrap_or("?")),
        PlannedAction::Uninstall => {
            format!("would uninstall {}", from.unwrap_or("the app"))
        }
        PlannedAction::Blocked => {
            format!("blocked ({}): {}", verdict.reason, verdict.message)
        }
        PlannedAction::None => format!("nothing to do: {}", verdict.message),
    }
}

/// The plan's `computedTime` moves only when the plan changes, so a re-check that finds the
/// same plan writes no status.
fn keep_time(pass: &Pass, plan: InstallationPlan) -> InstallationPlan {
    match &pass.previous.plan {
        Some(before) if before.same_plan(&plan) => InstallationPlan {
            computed_time: before.computed_time.clone().or(plan.computed_time),
            ..plan
        },
        _ => plan,
    }
}
