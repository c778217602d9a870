//! The decisions a `Manage` pass makes before any wave moves: is the approved plan still the
//! current one (`approvedPlanRevision`), and does `spec.consent` cover what the catalog's
//! latest version requires.

use crate::api::{Consent, Ensure, RolloutPlan, TeamsAppRolloutSpec};

use super::super::verdict::{Reason, Verdict};
use super::rollup::Catalog;
use super::tally::WaveTally;

/// What the current plan is computed from, and the plan the status holds.
pub(super) struct Facts<'a> {
    /// The spec's revision.
    pub revision: &'a str,
    pub plan_revision: String,
    pub catalog: &'a Catalog,
    /// `status.plan` as the last pass left it.
    pub previous: Option<&'a RolloutPlan>,
    /// Eligible users now.
    pub eligible: u32,
}

/// `Stalled` `PlanChanged` when `approvedPlanRevision` is set and is not the current plan's.
pub(super) fn plan_changed(spec: &TeamsAppRolloutSpec, facts: &Facts<'_>) -> Option<Verdict> {
    let approved = spec.approved_plan_revision.as_deref()?;
    if approved == facts.plan_revision {
        return None;
    }
    let message = format!(
        "spec.approvedPlanRevision is {approved} but the current plan's revision is {}: {}; nothing is written until they match (review the new plan in Observe, or set approvedPlanRevision to {})",
        facts.plan_revision,
        what_changed(approved, facts),
        facts.plan_revision
    );
    Some(Verdict::stalled(Reason::PlanChanged, message))
}

/// What moved since the approved plan, when the status still holds it.
fn what_changed(approved: &str, facts: &Facts<'_>) -> String {
    let Some(plan) = facts.previous.filter(|p| p.revision == approved) else {
        return "the approved plan is not the last one computed here, so what changed cannot be told".to_string();
    };
    let mut changes = Vec::new();
    if plan.catalog_version != facts.catalog.version {
        changes.push(format!(
            "the catalog's latest version moved from {} to {}",
            plan.catalog_version.as_deref().unwrap_or("none"),
            facts.catalog.version.as_deref().unwrap_or("none")
        ));
    }
    if plan.spec_revision.as_deref() != Some(facts.revision) {
        changes.push("the spec changed".to_string());
    }
    let users: u32 = plan.waves.iter().map(|w| w.users).sum();
    if users != facts.eligible {
        changes.push(format!(
            "the audience went from {users} to {} eligible users",
            facts.eligible
        ));
    }
    if changes.is_empty() {
        // Same version, spec and size: who is in the audience, or the required permissions.
        changes.push("the audience's members or the version's required permissions changed".into());
    }
    changes.join("; ")
}

/// `Stalled` `ConsentRequired` when the latest version needs application permissions the
/// rollout's consent does not cover: one decision for every user, made before the next wave.
/// Its installations may find that out first (the rollout's catalog read is cached): one of
/// them Stalled `ConsentRequired` holds the rollout just the same.
pub(super) fn consent_hold(
    spec: &TeamsAppRolloutSpec,
    catalog: &Catalog,
    tallies: &[WaveTally<'_>],
) -> Option<Verdict> {
    if spec.ensure == Ensure::Absent {
        return None;
    }
    let missing = Consent::missing(spec.consent.as_ref(), &catalog.required);
    if missing.is_empty() {
        let held: Vec<&(&str, &str)> = tallies.iter().flat_map(|t| &t.consent_held).collect();
        let (user, message) = held.first()?;
        let message = format!(
            "{} installations need consent that spec.consent does not give: no new wave starts; {user}: {message}",
            held.len()
        );
        return Some(Verdict::stalled(Reason::ConsentRequired, message));
    }
    let message = format!(
        "version {} needs the application RSC permissions {} that spec.consent does not cover: no new wave starts; add them to spec.consent.permissions, or set spec.consent.mode to MatchCatalog",
        catalog.version.as_deref().unwrap_or("?"),
        missing.join(", ")
    );
    Some(Verdict::stalled(Reason::ConsentRequired, message))
}

/// `status.plan` in `Manage`: the last plan while it is still the current one (the plan that
/// was approved stays visible), else just the current revision — counts computed for another
/// revision would be wrong for this one (only `Observe` computes them).
pub(super) fn carried(facts: &Facts<'_>) -> RolloutPlan {
    match facts.previous {
        Some(plan) if plan.revision == facts.plan_revision => plan.clone(),
        _ => RolloutPlan {
            revision: facts.plan_revision.clone(),
            spec_revision: Some(facts.revision.to_string()),
            catalog_version: facts.catalog.version.clone(),
            ..RolloutPlan::default()
        },
    }
}
