//! The test control plane itself: the API server is the pinned Kubernetes version, the CRDs in
//! `crds/` are served, and a custom resource behaves as the operator needs it to (create, read,
//! patch `status` through its subresource).

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde::Deserialize;
use serde_json::json;

#[tokio::test]
async fn api_server_reports_the_pinned_kubernetes_version() {
    let client = support::client().await;
    let info = client.apiserver_version().await.expect("GET /version");
    // Straight to stderr, past the test harness's capture: the run's output shows the version.
    let _ = writeln!(
        std::io::stderr(),
        "kube-apiserver version: {} (go {})",
        info.git_version,
        info.go_version
    );
    assert_eq!(info.git_version, "v1.36.3");
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "36"));
}

#[tokio::test]
async fn every_crd_in_the_repository_is_established() {
    let names = repository_crd_names();
    assert!(
        !names.is_empty(),
        "no CustomResourceDefinition found under crds/"
    );

    let crds = Api::<CustomResourceDefinition>::all(support::client().await);
    for name in names {
        let crd = crds
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("GET CRD {name}: {e}"));
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True"),
            "CRD {name} is not Established: {conditions:?}"
        );
        println!("CRD {name} is Established");
    }
}

#[tokio::test]
async fn custom_resource_round_trips_and_takes_a_status_patch() {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "control-plane").await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("teamsapps.dev", "v1alpha1", "TeamsAppInstallation"),
        "teamsappinstallations",
    );
    let api = Api::<DynamicObject>::namespaced_with(client, &namespace, &resource);

    let spec =
        json!({"user": "alice@contoso.com", "app": {"id": "33333333-3333-3333-3333-333333333333"}});
    let object = DynamicObject::new("alice-bot", &resource)
        .within(&namespace)
        .data(json!({ "spec": spec }));
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));

    let read = api.get("alice-bot").await.expect("get");
    assert_eq!(read.data["spec"]["user"], "alice@contoso.com");
    assert_eq!(
        read.data["spec"]["app"]["id"],
        "33333333-3333-3333-3333-333333333333"
    );

    let status = json!({"status": {
        "observedGeneration": 1,
        "conditions": [{
            "type": "Ready",
            "status": "False",
            "reason": "Testing",
            "message": "x",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    }});
    api.patch_status("alice-bot", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("merge patch on /status");

    let read = api.get("alice-bot").await.expect("get after status patch");
    assert_eq!(read.data["status"], status["status"]);
    // A status write is not a spec change: the generation stays put.
    assert_eq!(read.metadata.generation, Some(1));
    assert_eq!(read.data["spec"]["user"], "alice@contoso.com");
}

/// Names of every CustomResourceDefinition in the YAML files under `crds/`.
fn repository_crd_names() -> Vec<String> {
    #[derive(Deserialize)]
    struct Object {
        kind: String,
        metadata: Metadata,
    }
    #[derive(Deserialize)]
    struct Metadata {
        name: String,
    }

    let mut names = Vec::new();
    for file in yaml_files(&support::repo_root().join("crds")) {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let documents: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()));
        for value in documents {
            if value.is_null() {
                continue; // an empty document, e.g. after a trailing `---`
            }
            let object: Object = serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("{}: not a Kubernetes object: {e}", file.display()));
            if object.kind == "CustomResourceDefinition" {
                names.push(object.metadata.name);
            }
        }
    }
    names
}

/// `*.yaml` files under `dir`, recursively (what `scripts/control-plane up` installs).
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}
