//! The CRD under `crds/` (and in the Helm chart) is generated from the Rust types: fail when
//! someone changed the types without regenerating it.

use std::path::Path;

const CRD_FILE: &str = "crds/teamsapps.dev_teamsappinstallations.yaml";

#[test]
fn crd_yaml_in_the_repository_is_current() {
    let generated = teams_app_operator::api::crd_yaml().expect("CRD renders");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CRD_FILE);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        committed == generated,
        "{CRD_FILE} is stale: regenerate it with `cargo run -q -- crd > {CRD_FILE}`"
    );
}

#[test]
fn crd_carries_the_api_server_validations_and_columns() {
    let yaml = teams_app_operator::api::crd_yaml().expect("CRD renders");
    for needle in [
        "self == oldSelf",
        "has(self.id) != has(self.externalId)",
        "x-kubernetes-list-type: map",
        "shortNames:\n    - tai",
        "- teams",
        "name: Ready",
        "priority: 1",
    ] {
        assert!(yaml.contains(needle), "CRD lacks {needle:?}");
    }
}
