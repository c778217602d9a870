//! Objects the API server stored before today's rules, and objects the operator cannot read at
//! all (issue 23). A CRD change never revalidates what is stored: a rollout written when
//! `maxFailures` had no upper bound keeps its `3000000000`, and a field whose type changed keeps
//! its old value. Such an object must be reported on — `Stalled` with `InvalidSpec` naming the
//! field when the operator can read it, a Warning Event `Unreadable` when it cannot — and must
//! never stall the watch of its kind: every other object keeps being reconciled.
//!
//! To store such objects for real, the test loosens the CRDs for a moment, stores them through
//! the API server, and puts the generated CRDs back before the operator starts. Changing the
//! CRDs would disturb other tests, so this file is its own test binary, with its own control
//! plane, and holds one test.

mod scenario;
mod support;

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::{Client, CustomResourceExt, ResourceExt};
use scenario::rollouts::*;
use scenario::{BOT, Scenario};
use serde_json::{Value, json};
use teams_app_operator::api::{TeamsAppInstallation, TeamsAppRollout};
use teams_app_operator::kit::conditions;

/// `crd` with the schema of `spec` loosened by `loosen`.
fn loosened<K: CustomResourceExt>(loosen: impl Fn(&mut Value)) -> CustomResourceDefinition {
    let mut crd = serde_json::to_value(K::crd()).expect("CRD as JSON");
    loosen(
        &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"],
    );
    serde_json::from_value(crd).expect("still a CRD")
}

/// Replaces the CRD of the same name with `crd` (a PUT: every field as given).
async fn replace_crd(client: &Client, crd: CustomResourceDefinition) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let current = api.get(&name).await.expect("the CRD is installed");
        let mut new = crd.clone();
        new.metadata.resource_version = current.metadata.resource_version;
        match api.replace(&name, &PostParams::default(), &new).await {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 409 && Instant::now() < deadline => continue,
            Err(e) => panic!("replacing the CRD {name}: {e}"),
        }
    }
}

fn dynamic<K: kube::Resource<DynamicType = ()>>(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<K>(&()))
}

fn object<K: kube::Resource<DynamicType = ()>>(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a manifest")
}

/// Creates `obj`, retrying while the API server still applies the schema it had before a CRD
/// change (it takes a moment to switch).
async fn create_once_accepted(api: &Api<DynamicObject>, obj: &DynamicObject) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api.create(&PostParams::default(), obj).await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet accepted: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("{} never accepted: {e}", obj.name_any()),
        }
    }
}

/// A rollout to NESTED_B (odd users), which no reconciled rollout reads.
fn to_odd_users(extra: Value) -> Value {
    let mut spec = json!({"app": {"id": BOT}, "audience": {"groups": [NESTED_B]}});
    for (field, value) in extra.as_object().cloned().unwrap_or_default() {
        spec[field] = value;
    }
    spec
}

#[tokio::test]
async fn objects_stored_before_the_rules_are_reported_and_stall_nothing() {
    let mut s = Scenario::start_with("stored-early", &seed(4, |_| Kind::Member, &[]), &FAST).await;
    s.stop_operator();
    let rollouts_api = dynamic::<TeamsAppRollout>(&s.client, &s.namespace);
    let installations_api = dynamic::<TeamsAppInstallation>(&s.client, &s.namespace);

    // The CRDs as they might have been: no bounds on counts and waits, and `paused` and
    // `suspend` strings.
    replace_crd(
        &s.client,
        loosened::<TeamsAppRollout>(|spec| {
            let wave = &mut spec["waves"]["items"]["properties"];
            let count = wave["count"].as_object_mut().expect("count");
            count.remove("maximum");
            let bake = wave["bakeTime"].as_object_mut().expect("bakeTime");
            bake.remove("x-kubernetes-validations");
            let max_failures = spec["maxFailures"].as_object_mut().expect("maxFailures");
            max_failures.remove("x-kubernetes-validations");
            spec["paused"] = json!({"type": "string"});
        }),
    )
    .await;
    replace_crd(
        &s.client,
        loosened::<TeamsAppInstallation>(|spec| spec["suspend"] = json!({"type": "string"})),
    )
    .await;
    let stored_early = [
        (
            "huge-count",
            json!({"waves": [{"name": "all", "count": 5_000_000_000u64}]}),
            "spec.waves[].count",
        ),
        (
            "huge-max-failures",
            json!({"maxFailures": 3_000_000_000u64}),
            "spec.maxFailures",
        ),
        (
            "long-bake",
            json!({"waves": [{"name": "all", "percent": 100, "bakeTime": "876000000h"}]}),
            "spec.waves[].bakeTime",
        ),
    ];
    for (name, extra, _) in &stored_early {
        create_once_accepted(
            &rollouts_api,
            &object::<TeamsAppRollout>(name, to_odd_users(extra.clone())),
        )
        .await;
    }
    create_once_accepted(
        &rollouts_api,
        &object::<TeamsAppRollout>("unreadable-rollout", to_odd_users(json!({"paused": "yes"}))),
    )
    .await;
    let odd_user = upn(1);
    create_once_accepted(
        &installations_api,
        &object::<TeamsAppInstallation>(
            "unreadable-installation",
            json!({"user": odd_user, "app": {"id": BOT}, "suspend": "yes"}),
        ),
    )
    .await;

    // Today's CRDs again: the same values are refused now, but what is stored stays.
    replace_crd(&s.client, TeamsAppRollout::crd()).await;
    replace_crd(&s.client, TeamsAppInstallation::crd()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let late = object::<TeamsAppRollout>("too-late", to_odd_users(stored_early[1].1.clone()));
    while rollouts_api
        .create(&PostParams::default(), &late)
        .await
        .is_ok()
    {
        let _ = rollouts_api.delete("too-late", &Default::default()).await;
        assert!(Instant::now() < deadline, "the bounds never came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The operator, whose first list of each kind holds those objects; then a rollout written
    // today.
    s.start_operator(&FAST);
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "healthy",
            json!({"app": {"id": BOT}, "audience": {"groups": [NESTED_A]}}),
        )
        .await;

    // Neither watch stalled: the healthy rollout's installations were reconciled to Ready, and
    // the rollout saw them.
    let healthy = rollouts
        .wait_for_reason("healthy", "RolloutComplete", Duration::from_secs(90))
        .await;
    assert_eq!(
        healthy.status.and_then(|st| st.ready_summary).as_deref(),
        Some("2/2")
    );

    // Readable but out of bounds: Stalled, InvalidSpec, the field named.
    for (name, _, field) in &stored_early {
        let r = rollouts
            .wait_for(
                name,
                "Stalled with InvalidSpec",
                Duration::from_secs(60),
                |r| {
                    ready(r).is_some_and(|c| c.reason == "InvalidSpec")
                        && current(r)
                        && r.status.as_ref().is_some_and(|st| {
                            conditions::is_true(&st.conditions, conditions::STALLED)
                        })
                },
            )
            .await;
        let message = ready(&r).map(|c| c.message.clone()).unwrap_or_default();
        assert!(message.starts_with(field), "{name}: {message}");
        assert_eq!(kstatus(&r), "Failed");
    }

    // Unreadable: a Warning Event on each, naming the field; no status written for them.
    for (name, field) in [
        ("unreadable-rollout", "spec.paused"),
        ("unreadable-installation", "spec.suspend"),
    ] {
        s.wait_for_event(name, "Unreadable").await;
        let notes: Vec<String> = s
            .events(name)
            .await
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("Unreadable"))
            .filter_map(|e| e.note)
            .collect();
        assert!(
            notes.iter().any(|n| n.contains(field)),
            "no Unreadable Event names {field}: {notes:?}"
        );
    }
    for api in [&rollouts_api, &installations_api] {
        let name = if std::ptr::eq(api, &rollouts_api) {
            "unreadable-rollout"
        } else {
            "unreadable-installation"
        };
        let unreadable = api.get(name).await.expect("still there");
        assert!(unreadable.data.get("status").is_none(), "{unreadable:?}");
    }
    assert!(
        s.operator_log().contains("cannot read a resource"),
        "{}",
        s.operator_log()
    );

    // Nothing was done for any of them: only the healthy rollout's installations exist (and
    // the unreadable one stored by hand), and Graph never heard of the odd users' group or the
    // unreadable installation's user.
    // (Listed as JSON: the typed list would fail on the unreadable installation.)
    let owners: Vec<String> = installations_api
        .list(&Default::default())
        .await
        .expect("list installations")
        .items
        .into_iter()
        .filter(|c| c.name_any() != "unreadable-installation")
        .flat_map(|c| {
            c.owner_references()
                .iter()
                .map(|o| o.name.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(owners, ["healthy", "healthy"]);
    for fragment in [NESTED_B.to_string(), user_id(1), odd_user] {
        let calls: Vec<Value> = s
            .graph_requests()
            .await
            .into_iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.contains(&fragment)))
            .collect();
        assert!(calls.is_empty(), "Graph calls for {fragment}: {calls:?}");
    }
}
