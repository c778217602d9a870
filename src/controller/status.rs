//! Writes `status` with server-side apply — only when it changed.
//!
//! Every status write is a watch event; writing an unchanged status would wake the controller
//! and loop. Conditions keep their `lastTransitionTime` unless their status flipped (see
//! [`crate::reconcile::Verdict::conditions`]), so an equal verdict yields an equal status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::api::{TeamsAppInstallation, TeamsAppInstallationStatus};

/// The field manager the operator's writes are recorded under.
pub const MANAGER: &str = "teams-app-operator";

/// Applies `status` unless it equals what the object already has. Returns whether it wrote.
pub async fn apply_status(
    api: &Api<TeamsAppInstallation>,
    obj: &TeamsAppInstallation,
    status: TeamsAppInstallationStatus,
) -> Result<bool, kube::Error> {
    if obj
        .status
        .as_ref()
        .is_some_and(|old| same_status(old, &status))
    {
        return Ok(false);
    }
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let patch = serde_json::json!({
        "apiVersion": "teamsapps.dev/v1alpha1",
        "kind": "TeamsAppInstallation",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

/// Equality that ignores the order of conditions (the API server keeps list-map order as
/// applied, but another writer may have reordered them).
fn same_status(a: &TeamsAppInstallationStatus, b: &TeamsAppInstallationStatus) -> bool {
    let sorted = |cs: &[Condition]| {
        let mut cs = cs.to_vec();
        cs.sort_by(|x, y| x.type_.cmp(&y.type_));
        cs
    };
    let strip = |s: &TeamsAppInstallationStatus| TeamsAppInstallationStatus {
        conditions: Vec::new(),
        ..s.clone()
    };
    strip(a) == strip(b) && sorted(&a.conditions) == sorted(&b.conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn cond(t: &str) -> Condition {
        Condition {
            type_: t.into(),
            status: "True".into(),
            reason: "R".into(),
            message: "m".into(),
            observed_generation: Some(1),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn condition_order_does_not_matter() {
        let a = TeamsAppInstallationStatus {
            conditions: vec![cond("Ready"), cond("Reconciling")],
            ..Default::default()
        };
        let b = TeamsAppInstallationStatus {
            conditions: vec![cond("Reconciling"), cond("Ready")],
            ..Default::default()
        };
        assert!(same_status(&a, &b));
        let c = TeamsAppInstallationStatus {
            installed_version: Some("1.0".into()),
            ..a.clone()
        };
        assert!(!same_status(&a, &c));
    }
}
