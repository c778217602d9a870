//! Input that must never wedge a resource: the API server refuses values that can never work
//! (with a message saying what is accepted), no Graph answer holds a deletion forever, and the
//! operator's own output stays clean (no colour codes in a log file, no errors counted for
//! resources that were simply deleted). Real kube-apiserver + etcd, graph-sim and the operator
//! binary.

mod scenario;
mod support;

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::{Client, CustomResourceExt};
use scenario::{BOT, Operator, Scenario, default_seed};
use serde_json::{Value, json};
use teams_app_operator::api::{TeamsAppInstallation, TeamsAppInstallationSpec};

// ------------------------------------------------------------------------------ the API server

/// Readable parts of each rule's message: what a user is told is accepted.
const USER_ACCEPTS: &str = "must be an Entra object id (a GUID";
const VERSION_ACCEPTS: &str = "must be 1 to 4 dot-separated numbers";
const INTERVAL_ACCEPTS: &str = "must be a duration like 30m";

fn tai_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<TeamsAppInstallation>(&());
    Api::namespaced_with(client.clone(), namespace, &resource)
}

fn manifest(name: &str, spec: &Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "teamsapps.dev/v1alpha1",
        "kind": "TeamsAppInstallation",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a manifest")
}

/// A spec for alice with `field` set to `value` (JSON, so `null` and odd strings go as written).
fn spec_with(field: &str, value: Value) -> Value {
    let mut spec = json!({"user": "alice@contoso.com", "app": {"id": BOT}});
    spec[field] = value;
    spec
}

/// What the operator itself concludes about a spec the API server stored or refused: it must
/// agree with the CRD, so an object stored before the rules existed is caught the same way.
fn operator_accepts(spec: &Value) -> bool {
    match serde_json::from_value::<TeamsAppInstallationSpec>(spec.clone()) {
        Ok(spec) => spec.validate().is_ok(),
        Err(_) => false,
    }
}

/// On a fresh namespace: the API server refuses `field` set to each of `refused` (a description
/// and a value) with `accepts` in its message, and stores each of `accepted`; the operator's own
/// check agrees with it every time. Returns the namespace's API for more checks.
async fn check_field(
    field: &str,
    accepts: &str,
    refused: &[(&str, &str)],
    accepted: &[(&str, &str)],
) -> Api<DynamicObject> {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, &format!("hostile-{field}")).await;
    let api = tai_api(&client, &namespace);
    for (i, (what, value)) in refused.iter().enumerate() {
        let spec = spec_with(field, json!(value));
        let name = format!("refused-{i}");
        let err = match api
            .create(&PostParams::default(), &manifest(&name, &spec))
            .await
        {
            Ok(_) => panic!("the API server accepted {field} {value:?} ({what})"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(accepts),
            "refusing {field} {value:?} ({what}) should say what is accepted ({accepts:?}); it said: {err}"
        );
        assert!(
            !operator_accepts(&spec),
            "the operator's own check accepts {field} {value:?} ({what}), which the API server refuses"
        );
    }
    for (i, (what, value)) in accepted.iter().enumerate() {
        let spec = spec_with(field, json!(value));
        api.create(
            &PostParams::default(),
            &manifest(&format!("accepted-{i}"), &spec),
        )
        .await
        .unwrap_or_else(|e| panic!("the API server refused {field} {value:?} ({what}): {e}"));
        assert!(
            operator_accepts(&spec),
            "the operator's own check refuses {field} {value:?} ({what}), which the API server accepts"
        );
    }
    api
}

#[tokio::test]
async fn users_the_graph_path_cannot_carry_are_refused_and_real_ones_accepted() {
    let longest = format!("{}@{}.com", "a".repeat(64), "b".repeat(44));
    let api = check_field(
        "user",
        USER_ACCEPTS,
        &[
            ("empty", ""),
            ("blank", " "),
            ("the dot segment", "."),
            ("the parent dot segment", ".."),
            ("a leading space", " alice@contoso.com"),
            ("a trailing space", "alice@contoso.com "),
            ("a space inside", "al ice@contoso.com"),
            ("a tab", "alice\t@contoso.com"),
            ("a newline", "alice@contoso.com\n"),
            ("a NUL", "alice\u{0}@contoso.com"),
            ("DEL", "alice\u{7f}@contoso.com"),
            ("no domain", "alice"),
            ("a leading dot", ".alice@contoso.com"),
            ("a dot before the @", "alice.@contoso.com"),
            ("an empty local part", "@contoso.com"),
            ("an empty domain", "alice@"),
            ("a dot-segment domain", "alice@.."),
            ("an empty domain label", "alice@contoso..com"),
            ("two @", "alice@bob@contoso.com"),
            ("a path", "../users/bob@contoso.com"),
            ("a slash", "alice/x@contoso.com"),
            ("a percent escape", "alice%2e@contoso.com"),
            ("a query", "alice?$top=1@contoso.com"),
            ("a fragment", "alice@contoso.com#x"),
            ("a non-ASCII letter", "józef@contoso.com"),
            ("a short GUID", "2222222-2222-2222-2222-222222222222"),
            ("a GUID in braces", "{22222222-2222-2222-2222-222222222222}"),
        ],
        &[
            ("a UPN", "alice@contoso.com"),
            (
                "a guest UPN",
                "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            ),
            ("an apostrophe", "o'neil@contoso.com"),
            ("a $-prefixed UPN", "$adm@contoso.com"),
            ("every allowed sign", "a.b-c_d!e#f^g~h'i$@sub-1.contoso.com"),
            ("an object id", "22222222-2222-2222-2222-222222222222"),
            (
                "an upper-case object id",
                "3F7A2B8E-ABCD-4EF0-8123-456789ABCDEF",
            ),
            ("113 characters, Entra's limit", &longest),
        ],
    )
    .await;

    // Longer than Entra allows (113 characters): refused by length.
    let long = spec_with("user", json!(format!("a{longest}")));
    let err = api
        .create(&PostParams::default(), &manifest("too-long", &long))
        .await
        .expect_err("a 114-character UPN");
    assert!(err.to_string().contains("113"), "{err}");
    assert!(!operator_accepts(&long));
}

#[tokio::test]
async fn target_versions_must_be_dotted_numbers() {
    let api = check_field(
        "targetVersion",
        VERSION_ACCEPTS,
        &[
            ("latest", "latest"),
            ("a negative number", "-1"),
            ("blank", " "),
            ("a v prefix", "v2"),
            ("full-width digits", "１.０"),
            ("a trailing dot", "1."),
            ("a leading dot", ".1"),
            ("an empty part", "1..0"),
            ("five parts", "1.2.3.4.5"),
            ("a pre-release tail", "1.0.0-beta"),
            ("a space", "1.0 "),
            ("a 19-digit part", "9999999999999999999"),
        ],
        &[
            ("one part", "2"),
            ("two parts", "1.7"),
            ("three parts", "1.4.0"),
            ("four parts", "1.4.0.12"),
            ("a leading zero", "0.9"),
            ("18 digits", "999999999999999999.0"),
        ],
    )
    .await;

    // Absent (written as null) is the latest published version.
    api.create(
        &PostParams::default(),
        &manifest("null", &spec_with("targetVersion", Value::Null)),
    )
    .await
    .expect("targetVersion: null");
    // The rules hold on update too.
    let patch = json!({"spec": {"targetVersion": "latest"}});
    let err = api
        .patch("accepted-0", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("an update to latest");
    assert!(err.to_string().contains(VERSION_ACCEPTS), "{err}");
}

#[tokio::test]
async fn intervals_that_overflow_or_do_not_parse_are_refused() {
    check_field(
        "interval",
        INTERVAL_ACCEPTS,
        &[
            ("an overflowing number", "99999999999999999999h"),
            ("ten digits", "9999999999h"),
            ("no unit", "30"),
            ("no number", "m"),
            ("a fraction", "1.5h"),
            ("a sign", "-1m"),
            ("a space", "1h 30m"),
            ("days", "1d"),
            ("full-width digits", "１m"),
            ("blank", " "),
            ("more than a week", "169h"),
            ("a week and a millisecond", "168h1ms"),
            ("nine digits", "999999999h"),
            (
                "the longest string of the largest numbers",
                &"9999h".repeat(12),
            ),
        ],
        &[
            ("minutes", "30m"),
            ("hours and minutes", "1h30m"),
            ("milliseconds", "1500ms"),
            ("a week, the most", "168h"),
            ("a week in seconds", "604800s"),
            ("a week in milliseconds", "604800000ms"),
        ],
    )
    .await;
}

// -------------------------------------------------------------------------- bounded deletion

/// The (type, note) of the Events on `name` with `reason`.
async fn events(s: &Scenario, name: &str, reason: &str) -> Vec<(String, String)> {
    s.events(name)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| (e.type_.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// What a deletion that Graph kept failing left: the note of its one `UninstallAbandoned`
/// Warning, and how many DELETEs were tried.
struct Abandoned {
    note: String,
    deletes: usize,
}

/// Creates alice's resource with `deletionPolicy: Uninstall`, lets it get up to date (so it
/// carries the finalizer and knows the installation id), makes Graph answer every uninstall
/// with `status`, deletes it and waits until it is gone. The abandonment Event must name the
/// user, the app, the installation and Graph's status.
async fn delete_while_failing(s: &Scenario, status: u16) -> Abandoned {
    let name = "bot-alice";
    s.create(
        name,
        json!({"user": "alice@contoso.com", "app": {"id": BOT}, "deletionPolicy": "Uninstall"}),
    )
    .await;
    let obj = s.wait_for_reason(name, "UpToDate").await;
    assert!(
        obj.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == teams_app_operator::api::UNINSTALL_FINALIZER)
    );
    let installation = obj
        .status
        .and_then(|st| st.installation_id)
        .expect("the status records the installation id");
    s.set_faults(json!({"failures": [{
        "method": "DELETE", "pathContains": "/installedApps/", "status": status, "count": 100_000,
    }]}))
    .await;
    s.delete(name).await;
    s.wait_gone(name).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let note = loop {
        let abandoned = events(s, name, "UninstallAbandoned").await;
        if let [(type_, note)] = abandoned.as_slice() {
            assert_eq!(type_, "Warning");
            break note.clone();
        }
        assert!(abandoned.is_empty(), "more than one: {abandoned:?}");
        assert!(Instant::now() < deadline, "no UninstallAbandoned Event");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let status = status.to_string();
    for part in ["alice@contoso.com", BOT, &installation, &status] {
        assert!(note.contains(part), "the Event lacks {part:?}: {note}");
    }
    let deletes: Vec<u64> = s
        .graph_requests()
        .await
        .iter()
        .filter(|r| r["method"] == "DELETE")
        .filter_map(|r| r["status"].as_u64())
        .collect();
    assert!(
        !deletes.is_empty() && deletes.iter().all(|d| d.to_string() == status),
        "{deletes:?}"
    );
    Abandoned {
        note,
        deletes: deletes.len(),
    }
}

#[tokio::test]
async fn an_uninstall_graph_refuses_releases_the_resource_and_says_what_was_left() {
    let s = Scenario::start("abandon-403", &default_seed()).await;
    // Well within the default --uninstall-timeout (10m): a 403 does not get better by waiting.
    let gone = delete_while_failing(&s, 403).await;
    assert!(gone.note.contains("request-id"), "{}", gone.note);
    assert!(events(&s, "bot-alice", "Uninstalled").await.is_empty());
}

#[tokio::test]
async fn an_uninstall_failing_past_the_timeout_releases_the_resource() {
    let s = Scenario::start_with(
        "abandon-503",
        &default_seed(),
        &["--uninstall-timeout", "5s"],
    )
    .await;
    let gone = delete_while_failing(&s, 503).await;
    assert!(
        gone.note.contains("--uninstall-timeout 5s"),
        "{}",
        gone.note
    );
    // The outage was retried, and reported, before the operator gave up.
    assert!(gone.deletes >= 2, "{} DELETEs", gone.deletes);
    let retried = events(&s, "bot-alice", "GraphUnavailable").await;
    assert!(!retried.is_empty() && retried.iter().all(|(t, _)| t == "Warning"));
}

// ------------------------------------------------------------------------------------ telemetry

async fn scrape(operator: &Operator) -> Option<String> {
    let res = reqwest::get(format!("{}/metrics", operator.telemetry_url()))
        .await
        .ok()?;
    (res.status() == 200).then_some(())?;
    res.text().await.ok()
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
}

async fn first_scrape(operator: &Operator) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(text) = scrape(operator).await {
            return text;
        }
        assert!(Instant::now() < deadline, "/metrics never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const ERRORS: &str =
    r#"controller_runtime_reconcile_errors_total{controller="teamsappinstallation"}"#;
const CONTROLLER_ERRORS: &str = "teams_app_operator_controller_errors_total";
/// kube-runtime's text for `controller::Error::ObjectNotFound`.
const NOT_IN_STORE: &str = "not found in local store";

#[tokio::test]
async fn reconcile_series_exist_at_zero_before_any_resource() {
    let s = Scenario::start("metrics-zero", &default_seed()).await;
    // They appear when the controller starts (after the leader election, when there is one).
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = first_scrape(s.operator()).await;
        if sample(&text, ERRORS).is_some() {
            break text;
        }
        assert!(Instant::now() < deadline, "no {ERRORS} in\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for result in ["success", "error", "requeue", "requeue_after"] {
        let series = format!(
            r#"controller_runtime_reconcile_total{{controller="teamsappinstallation",result="{result}"}}"#
        );
        assert_eq!(sample(&text, &series), Some(0.0), "{series} in\n{text}");
    }
    assert_eq!(sample(&text, ERRORS), Some(0.0), "{text}");
}

#[tokio::test]
async fn a_deleted_resources_pending_requeue_is_not_an_error() {
    let s = Scenario::start("deleted-requeue", &default_seed()).await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for_reason("bot-alice", "UpToDate").await;
    // Up to date: its next drift check (--default-interval 3s) is scheduled. Delete it first.
    s.delete("bot-alice").await;
    s.wait_gone("bot-alice").await;

    // kube-runtime reports the due requeue of an object gone from its cache as ObjectNotFound,
    // which the operator logs (at debug, as it should be; or as an error, as it should not).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !["requeue for a deleted resource dropped", NOT_IN_STORE]
        .iter()
        .any(|line| s.operator_log().contains(line))
    {
        assert!(
            Instant::now() < deadline,
            "the pending requeue never came due:\n{}",
            s.operator_log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let text = first_scrape(s.operator()).await;
    assert_eq!(sample(&text, ERRORS), Some(0.0), "{text}");
    assert_eq!(sample(&text, CONTROLLER_ERRORS), Some(0.0), "{text}");

    let log = s.operator_log();
    for line in log.lines().filter(|l| l.contains("WARN")) {
        assert!(
            !line.contains("controller error") && !line.contains(NOT_IN_STORE),
            "a deleted resource was reported as an error: {line}"
        );
    }
    // The log goes to a file, not a terminal: plain text, no colour codes.
    assert!(log.lines().count() > 5, "{log}");
    assert!(!log.contains("\x1b["), "colour codes in a log file:\n{log}");
}

#[test]
fn the_crd_names_what_is_accepted() {
    let crd = serde_json::to_string(&TeamsAppInstallation::crd()).expect("CRD");
    for message in [USER_ACCEPTS, VERSION_ACCEPTS, INTERVAL_ACCEPTS] {
        assert!(crd.contains(message), "the CRD lacks {message:?}");
    }
}
