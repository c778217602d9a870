//! The CRD under `crds/` (and in the Helm chart) is generated from the Rust types: fail when
//! someone changed the types without regenerating it.

use std::path::Path;

const CRD_FILE: &str = "crds/teamsapps.dev_teamsappinstallations.yaml";
const ROLLOUT_CRD_FILE: &str = "crds/teamsapps.dev_teamsapprollouts.yaml";
const CONNECTION_CRD_FILE: &str = "crds/teamsapps.dev_graphconnections.yaml";
const CLUSTER_CONNECTION_CRD_FILE: &str = "crds/teamsapps.dev_clustergraphconnections.yaml";

#[test]
fn crd_yaml_in_the_repository_is_current() {
    for (file, generated) in [
        (CRD_FILE, teams_app_operator::api::crd_yaml()),
        (
            ROLLOUT_CRD_FILE,
            teams_app_operator::api::rollout_crd_yaml(),
        ),
        (
            CONNECTION_CRD_FILE,
            teams_app_operator::api::connection_crd_yaml(),
        ),
        (
            CLUSTER_CONNECTION_CRD_FILE,
            teams_app_operator::api::cluster_connection_crd_yaml(),
        ),
    ] {
        let generated = generated.expect("CRD renders");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            committed == generated,
            "{file} is stale: regenerate with `cargo run -q -- crd` (it prints every CRD, separated by ---)"
        );
    }
}

#[test]
fn the_crd_command_prints_every_crd() {
    let all = teams_app_operator::api::all_crds_yaml().expect("CRDs render");
    assert_eq!(all.matches("kind: CustomResourceDefinition").count(), 4);
    assert!(all.contains("name: teamsapprollouts.teamsapps.dev"));
    assert!(all.contains("shortNames:\n    - tar"));
    assert!(all.contains("name: graphconnections.teamsapps.dev"));
    assert!(all.contains("name: clustergraphconnections.teamsapps.dev"));
    assert!(all.contains("scope: Cluster"));
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
