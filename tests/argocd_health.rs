//! The Argo CD health check (`deploy/argocd/health.lua`) run the way Argo CD runs it: the
//! resource as the global table `obj`, the script's returned table read for `status` and
//! `message`. Argo CD embeds gopher-lua, a Lua 5.1 implementation, so the script runs on Lua 5.1
//! here too: a 5.2+ feature that gopher-lua would reject fails this test.

use std::path::PathBuf;

use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::{Value, json};

const HEALTH_KEYS: [&str; 2] = [
    "resource.customizations.health.teamsapps.dev_TeamsAppInstallation",
    "resource.customizations.health.teamsapps.dev_TeamsAppRollout",
];

fn deploy_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/argocd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs the health script against `obj` and returns `(status, message)`.
fn health(obj: &Value) -> (String, String) {
    let lua = Lua::new();
    // Argo CD hands Lua the object as decoded JSON: absent and null fields are both nil.
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let table = lua
        .to_value_with(obj, options)
        .expect("object converts to Lua");
    lua.globals().set("obj", table).expect("set obj");
    let hs: Table = lua
        .load(deploy_file("health.lua"))
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("health.lua failed on {obj}: {e}"));
    let status: String = hs.get("status").expect("hs.status is a string");
    let message: String = hs.get("message").expect("hs.message is a string");
    (status, message)
}

fn tai(generation: i64, spec: Value, status: Option<Value>) -> Value {
    let mut obj = json!({
        "apiVersion": "teamsapps.dev/v1alpha1",
        "kind": "TeamsAppInstallation",
        "metadata": {"name": "contoso-bot-alice", "namespace": "teams", "generation": generation},
        "spec": spec,
    });
    if let Some(status) = status {
        obj["status"] = status;
    }
    obj
}

fn spec() -> Value {
    json!({"user": "alice@contoso.com", "app": {"id": "33333333-3333-3333-3333-333333333333"}})
}

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": "2026-11-28T12:00:00Z", "observedGeneration": 1,
    })
}

fn up_to_date() -> Value {
    cond(
        "Ready",
        "True",
        "UpToDate",
        "Contoso Bot 1.0.0 is installed (latest 1.0.0)",
    )
}

#[test]
fn no_status_yet_is_progressing() {
    let (status, message) = health(&tai(1, spec(), None));
    assert_eq!(status, "Progressing");
    assert_eq!(message, "Waiting for the operator to report status");

    let (status, _) = health(&tai(1, spec(), Some(Value::Null)));
    assert_eq!(status, "Progressing", "status: null is no status");
}

#[test]
fn ready_for_the_current_generation_is_healthy() {
    let obj = tai(
        2,
        spec(),
        Some(
            json!({"observedGeneration": 2, "installedVersion": "1.0.0", "conditions": [up_to_date()]}),
        ),
    );
    assert_eq!(
        health(&obj),
        (
            "Healthy".into(),
            "Contoso Bot 1.0.0 is installed (latest 1.0.0)".into()
        )
    );
}

#[test]
fn ready_for_an_older_generation_is_progressing() {
    let obj = tai(
        3,
        spec(),
        Some(json!({"observedGeneration": 2, "conditions": [up_to_date()]})),
    );
    assert_eq!(
        health(&obj),
        (
            "Progressing".into(),
            "Waiting for the operator to observe generation 3".into()
        )
    );
    let obj = tai(3, spec(), Some(json!({"conditions": [up_to_date()]})));
    assert_eq!(
        health(&obj).0,
        "Progressing",
        "no observedGeneration at all"
    );
}

#[test]
fn stalled_is_degraded_with_the_condition_message() {
    let message = "user alice@contoso.com not found in Graph (Request_ResourceNotFound, HTTP 404, request-id 6f1c…)";
    let obj = tai(
        1,
        spec(),
        Some(json!({"observedGeneration": 1, "conditions": [
            cond("Ready", "False", "UserNotFound", message),
            cond("Stalled", "True", "UserNotFound", message),
        ]})),
    );
    assert_eq!(health(&obj), ("Degraded".into(), message.into()));

    // Stalled wins over suspend: suspending does not fix what the operator is stuck on.
    let mut suspended = obj.clone();
    suspended["spec"]["suspend"] = json!(true);
    assert_eq!(health(&suspended).0, "Degraded");

    // A message-less condition still says why.
    let obj = tai(
        1,
        spec(),
        Some(json!({"observedGeneration": 1, "conditions": [
            {"type": "Stalled", "status": "True", "reason": "PermissionDenied", "message": ""},
        ]})),
    );
    assert_eq!(health(&obj), ("Degraded".into(), "PermissionDenied".into()));
}

#[test]
fn a_stalled_condition_that_is_not_true_does_not_degrade() {
    let obj = tai(
        1,
        spec(),
        Some(json!({"observedGeneration": 1, "conditions": [
            up_to_date(),
            cond("Stalled", "False", "Recovered", "was stuck"),
        ]})),
    );
    assert_eq!(health(&obj).0, "Healthy");
}

#[test]
fn suspended_resources_are_suspended() {
    let mut spec = spec();
    spec["suspend"] = json!(true);
    let obj = tai(
        4,
        spec.clone(),
        Some(json!({"observedGeneration": 3, "conditions": [up_to_date()]})),
    );
    let (status, message) = health(&obj);
    assert_eq!(status, "Suspended");
    assert!(message.contains("spec.suspend"), "{message}");
    assert_eq!(
        health(&tai(1, spec, None)).0,
        "Suspended",
        "suspended before any status"
    );

    let mut resumed = obj.clone();
    resumed["spec"]["suspend"] = json!(false);
    assert_eq!(
        health(&resumed).0,
        "Progressing",
        "generation 4 not observed yet"
    );
}

#[test]
fn work_in_progress_is_progressing_with_the_reconciling_message() {
    let obj = tai(
        1,
        spec(),
        Some(json!({"observedGeneration": 1, "conditions": [
            cond("Ready", "False", "Upgrading", "upgrade to 1.1.0 requested"),
            cond("Reconciling", "True", "Upgrading", "upgrading Contoso Bot from 1.0.0 to 1.1.0"),
        ]})),
    );
    assert_eq!(
        health(&obj),
        (
            "Progressing".into(),
            "upgrading Contoso Bot from 1.0.0 to 1.1.0".into()
        )
    );

    let obj = tai(
        1,
        spec(),
        Some(json!({"observedGeneration": 1, "conditions": [
            cond("Ready", "True", "NotInstalled", "not installed and installPolicy is Never"),
        ]})),
    );
    assert_eq!(
        health(&obj),
        (
            "Healthy".into(),
            "not installed and installPolicy is Never".into()
        ),
        "nothing left to do: settled, not in progress"
    );

    let obj = tai(
        1,
        spec(),
        Some(json!({"observedGeneration": 1, "conditions": []})),
    );
    assert_eq!(health(&obj).0, "Progressing", "no Ready condition yet");
}

/// The argocd-cm snippet carries the script itself, byte for byte.
#[test]
fn argocd_cm_snippet_embeds_the_script() {
    let cm: serde_json::Value =
        serde_saphyr::from_str(&deploy_file("argocd-cm.yaml")).expect("argocd-cm.yaml is YAML");
    assert_eq!(cm["kind"].as_str(), Some("ConfigMap"));
    assert_eq!(cm["metadata"]["name"].as_str(), Some("argocd-cm"));
    for key in HEALTH_KEYS {
        let embedded = cm["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("argocd-cm.yaml has no data.{key}"));
        assert!(
            embedded == deploy_file("health.lua"),
            "deploy/argocd/argocd-cm.yaml is out of date: {key} must hold deploy/argocd/health.lua \
             verbatim (indented by four spaces)"
        );
    }
}

/// Rollouts read the same way; a paused one is Suspended, a halted one Degraded.
#[test]
fn rollouts_paused_halted_and_complete() {
    let rollout = |spec: Value, conditions: Value| {
        json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppRollout",
            "metadata": {"name": "helpdesk", "namespace": "teams", "generation": 1},
            "spec": spec,
            "status": {"observedGeneration": 1, "conditions": conditions},
        })
    };
    let spec = json!({"app": {"id": "33333333-3333-3333-3333-333333333333"},
                      "audience": {"groups": ["44444444-4444-4444-4444-444444444444"]}});
    let mut paused = spec.clone();
    paused["paused"] = json!(true);
    let (status, message) = health(&rollout(
        paused,
        json!([cond("Ready", "False", "Paused", "the rollout is paused")]),
    ));
    assert_eq!(status, "Suspended");
    assert!(message.contains("spec.paused"), "{message}");

    let halted = "wave pilot: 3 of 10 installations are Stalled, more than maxFailures allows (1)";
    assert_eq!(
        health(&rollout(
            spec.clone(),
            json!([
                cond("Ready", "False", "FailureBudgetExceeded", halted),
                cond("Stalled", "True", "FailureBudgetExceeded", halted),
            ]),
        )),
        ("Degraded".into(), halted.into())
    );
    let done = "every wave is complete: 1000 of 1000 users have the app";
    assert_eq!(
        health(&rollout(
            spec,
            json!([cond("Ready", "True", "RolloutComplete", done)])
        )),
        ("Healthy".into(), done.into())
    );
}

/// Issue 21's states: plan mode and `ensure: Absent` settle as Healthy (a GitOps sync of an
/// observed resource must not hang), a consent or policy block needs a person (Degraded), an
/// uninstall under way is Progressing; the same for a rollout's plan states.
#[test]
fn plan_mode_consent_and_absent_states() {
    let with = |conditions: Value| {
        tai(
            1,
            spec(),
            Some(json!({"observedGeneration": 1, "conditions": conditions})),
        )
    };
    let observed =
        "managementPolicy is Observe, nothing is written: would upgrade from 1.0.0 to 1.1.0";
    let rows = [
        (
            json!([cond("Ready", "True", "Observed", observed)]),
            "Healthy",
        ),
        (
            json!([cond("Ready", "True", "Absent", "the app is not installed")]),
            "Healthy",
        ),
        (
            json!([
                cond(
                    "Ready",
                    "False",
                    "Uninstalling",
                    "uninstalling version 1.0.0"
                ),
                cond(
                    "Reconciling",
                    "True",
                    "Uninstalling",
                    "uninstalling version 1.0.0"
                ),
            ]),
            "Progressing",
        ),
    ];
    for (conditions, want) in rows {
        assert_eq!(health(&with(conditions.clone())).0, want, "{conditions}");
    }
    assert_eq!(
        health(&with(json!([cond("Ready", "True", "Observed", observed)]))).1,
        observed
    );
    for reason in ["ConsentRequired", "ConsentDisabled", "ManagedByPolicy"] {
        let conditions = json!([
            cond("Ready", "False", reason, "needs a person"),
            cond("Stalled", "True", reason, "needs a person"),
        ]);
        assert_eq!(health(&with(conditions)).0, "Degraded", "{reason}");
    }
    let rollout = |conditions: Value| {
        json!({
            "apiVersion": "teamsapps.dev/v1alpha1", "kind": "TeamsAppRollout",
            "metadata": {"name": "bot", "namespace": "teams", "generation": 1},
            "spec": {"app": {"id": "x"}, "audience": {"users": ["alice@contoso.com"]}},
            "status": {"observedGeneration": 1, "conditions": conditions},
        })
    };
    let plan = rollout(json!([cond(
        "Ready",
        "True",
        "Observed",
        "would install 3"
    )]));
    assert_eq!(health(&plan).0, "Healthy");
    let changed = rollout(json!([
        cond("Ready", "False", "PlanChanged", "approved abc, now def"),
        cond("Stalled", "True", "PlanChanged", "approved abc, now def"),
    ]));
    assert_eq!(health(&changed).0, "Degraded");
}
