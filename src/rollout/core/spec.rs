//! What a rollout's spec gives its installations, and whether the operator can act on it.

use sha2::{Digest, Sha256};

use crate::api::{Ensure, InvalidSpec, TeamsAppRolloutSpec};

/// A digest of everything an installation is given: when it changes, the waves start over.
/// `managementPolicy` is left out: switching Observe → Manage acts on the installations the
/// plan was computed with, it does not restart the waves.
pub fn revision(spec: &TeamsAppRolloutSpec) -> String {
    let mut given = serde_json::json!({
        "app": spec.app,
        "targetVersion": spec.target_version,
        "installPolicy": spec.install_policy,
        "template": spec.template,
    });
    // Only when set: a rollout stored before these fields existed keeps its revision (and its
    // waves) across an operator upgrade.
    if spec.ensure != Ensure::Present {
        given["ensure"] = serde_json::json!(spec.ensure);
    }
    if let Some(consent) = &spec.consent {
        given["consent"] = serde_json::json!(consent);
    }
    let digest = Sha256::digest(given.to_string().as_bytes());
    digest[..5].iter().map(|b| format!("{b:02x}")).collect()
}

/// The CRD's rules, for a rollout stored before one of them existed (see
/// [`TeamsAppRolloutSpec::validate`]): nothing is acted on until the spec is fixed.
pub fn validate_spec(spec: &TeamsAppRolloutSpec) -> Result<(), InvalidSpec> {
    spec.validate()
}

/// The app as the spec names it (`status.app`).
pub fn app_name(spec: &TeamsAppRolloutSpec) -> String {
    spec.app
        .id
        .clone()
        .or_else(|| spec.app.external_id.clone())
        .unwrap_or_default()
}
