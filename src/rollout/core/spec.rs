//! What a rollout's spec gives its installations, and the checks the CRD cannot make.

use sha2::{Digest, Sha256};

use crate::api::{InvalidSpec, TeamsAppRolloutSpec, parse_interval};

use super::waves::validate;

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
    if spec.app.id.is_some() == spec.app.external_id.is_some() {
        return Err(InvalidSpec {
            field: "spec.app",
            message: "set exactly one of app.id or app.externalId".into(),
        });
    }
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

/// The app as the spec names it (`status.app`).
pub fn app_name(spec: &TeamsAppRolloutSpec) -> String {
    spec.app
        .id
        .clone()
        .or_else(|| spec.app.external_id.clone())
        .unwrap_or_default()
}
