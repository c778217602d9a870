//! The conclusion table, pass by pass.

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::TeamsAppInstallation;
use crate::kit::conditions::{self, READY, STALLED};

use crate::api::RECONCILE_REQUESTED_ANNOTATION;
use crate::graph::ErrorClass;

use super::super::Timing;

const MINUTE: Duration = Duration::from_secs(60);

fn timing() -> Timing {
    Timing {
        default_policy: crate::api::ManagementPolicy::Manage,
        default_interval: 30 * MINUTE,
        min_interval: MINUTE,
        verify_interval: Duration::from_secs(10),
        write_window: 10 * MINUTE,
        provisioning_timeout: 24 * 60 * MINUTE,
    }
}

fn at(seconds: i64) -> Time {
    Time(jiff::Timestamp::from_second(1_800_000_000 + seconds).expect("valid time"))
}

fn resource(spec: serde_json::Value) -> TeamsAppInstallation {
    let mut obj =
        TeamsAppInstallation::new("bot-bob", serde_json::from_value(spec).expect("valid spec"));
    obj.metadata.generation = Some(1);
    obj
}

fn bob() -> TeamsAppInstallation {
    resource(serde_json::json!({"user": "bob@contoso.com", "app": {"id": "app-1"}}))
}

fn catalog() -> CatalogView {
    CatalogView {
        app_id: "app-1".into(),
        display_name: Some("Contoso Bot".into()),
        latest_published: Some(AppVersion::parse("1.0.0")),
        required: Default::default(),
    }
}

fn installed(version: &str) -> InstalledView {
    InstalledView {
        id: "inst-1".into(),
        version: Some(AppVersion::parse(version)),
        app_display_name: None,
        consented: Vec::new(),
    }
}

fn reasons(outcome: &Outcome) -> Vec<&str> {
    outcome.events.iter().map(|e| e.reason.as_str()).collect()
}

fn ready_reason(status: &TeamsAppInstallationStatus) -> &str {
    conditions::find(&status.conditions, READY).map_or("", |c| c.reason.as_str())
}

/// Applies an outcome's status the way the API server would.
fn after(mut obj: TeamsAppInstallation, outcome: &Outcome) -> TeamsAppInstallation {
    if let Some(status) = &outcome.status {
        obj.status = Some(status.clone());
    }
    obj
}

/// Bob's app, missing, installed by the operator at 0; the re-read after shows `after`.
fn installed_at_0(after: Option<InstalledView>) -> Outcome {
    conclude(
        &Pass::new(&bob(), timing(), at(0)),
        Findings {
            catalog: Some(catalog()),
            before: Some(None),
            wrote: Some(Action::Install {
                catalog_app_id: "app-1".into(),
                consent: None,
            }),
            after: Some(after),
            ..Default::default()
        },
    )
}

#[test]
fn an_install_graph_does_not_show_yet_is_announced_once_when_it_shows() {
    // The install call succeeded; the re-read does not show it yet (Graph's reads lag).
    let outcome = installed_at_0(None);
    let status = outcome.status.clone().expect("first status");
    assert_eq!(ready_reason(&status), "Installing");
    assert_eq!(status.last_install_time, Some(at(0)));
    assert!(outcome.events.is_empty(), "nothing to announce yet");
    assert_eq!(outcome.requeue, timing().verify_interval);

    // Next reconcile, still lagging: the decision must not install again.
    let obj = after(bob(), &outcome);
    let pass = Pass::new(&obj, timing(), at(5));
    let observed = pass.observed(catalog(), None);
    assert!(observed.install_in_flight);
    assert_eq!(decide(&pass.wanted, &observed).action, Action::Nothing);
    let waiting = conclude(
        &pass,
        Findings {
            catalog: Some(catalog()),
            before: Some(None),
            ..Default::default()
        },
    );
    assert_eq!(waiting.status, None, "nothing changed: nothing written");
    assert!(waiting.events.is_empty());

    // Graph shows it: Ready, announced once.
    let shown = conclude(
        &pass,
        Findings {
            catalog: Some(catalog()),
            before: Some(Some(installed("1.0.0"))),
            ..Default::default()
        },
    );
    assert_eq!(reasons(&shown), vec!["Installed"]);
    let obj = after(obj, &shown);
    assert_eq!(
        ready_reason(obj.status.as_ref().expect("status")),
        "UpToDate"
    );
    let again = conclude(
        &Pass::new(&obj, timing(), at(60)),
        Findings {
            catalog: Some(catalog()),
            before: Some(Some(installed("1.0.0"))),
            ..Default::default()
        },
    );
    assert!(again.events.is_empty() && again.status.is_none());

    // The user removes it, still inside the write window: Graph showed it, so its absence is
    // a change made elsewhere, not lag — installed again at once.
    let removed = Pass::new(&obj, timing(), at(90));
    let observed = removed.observed(catalog(), None);
    assert!(!observed.install_in_flight);
    let action = decide(&removed.wanted, &observed).action;
    assert!(matches!(action, Action::Install { .. }), "{action:?}");
}

#[test]
fn an_install_graph_showed_and_a_user_then_removed_is_installed_again_at_once() {
    // Installed at 0 and shown at 20: the status records the installation.
    let obj = after(bob(), &installed_at_0(Some(installed("1.0.0"))));
    // Two minutes later, well inside the write window, the user has removed it: that is drift,
    // not Graph's lag, so it is installed again rather than waited for.
    let pass = Pass::new(&obj, timing(), at(120));
    let observed = pass.observed(catalog(), None);
    assert!(!observed.install_in_flight);
    assert!(matches!(
        decide(&pass.wanted, &observed).action,
        Action::Install { .. }
    ));
}

#[test]
fn a_routine_check_that_fails_keeps_ready_and_writes_nothing() {
    let first = conclude(
        &Pass::new(&bob(), timing(), at(0)),
        Findings {
            catalog: Some(catalog()),
            before: Some(Some(installed("1.0.0"))),
            ..Default::default()
        },
    );
    let obj = after(bob(), &first);
    let outage = Failure {
        class: ErrorClass::Unavailable,
        message: "HTTP 503".into(),
    };
    let outcome = conclude(
        &Pass::new(&obj, timing(), at(60)),
        Findings {
            failure: Some((GraphStep::ListInstallations, outage.clone())),
            catalog: Some(catalog()),
            ..Default::default()
        },
    );
    assert_eq!(outcome.status, None);
    assert!(outcome.retry);
    assert_eq!(reasons(&outcome), vec!["GraphUnavailable"]);

    // The same outage while an install is pending is written down.
    let outcome = conclude(
        &Pass::new(&bob(), timing(), at(0)),
        Findings {
            failure: Some((GraphStep::Install, outage)),
            catalog: Some(catalog()),
            before: Some(None),
            ..Default::default()
        },
    );
    assert_eq!(
        ready_reason(outcome.status.as_ref().expect("status")),
        "GraphUnavailable"
    );
    assert!(outcome.retry);
}

#[test]
fn a_failure_that_keeps_coming_back_is_written_once_per_reason() {
    let failing = |class, request_id: &str| Findings {
        failure: Some((
            GraphStep::Catalog,
            Failure {
                class,
                message: format!("HTTP 429 [request-id: {request_id}]"),
            },
        )),
        ..Default::default()
    };
    // A new resource meets throttling: written at once, with the first failure's message.
    let first = conclude(
        &Pass::new(&bob(), timing(), at(0)),
        failing(ErrorClass::Throttled, "r-1"),
    );
    let status = first.status.clone().expect("a first status");
    assert_eq!(ready_reason(&status), "Throttled");
    assert!(conditions::is_true(
        &status.conditions,
        conditions::RECONCILING
    ));
    let obj = after(bob(), &first);
    // Each retry's failure has its own request-id: nothing to write while the reason stands.
    for (n, second) in [(10, "r-2"), (30, "r-3")] {
        let again = conclude(
            &Pass::new(&obj, timing(), at(n)),
            failing(ErrorClass::Throttled, second),
        );
        assert_eq!(again.status, None, "retry at {n}s");
        assert!(again.retry);
    }
    // Another reason is written, its message new, Ready's transition time kept (still False).
    let outage = conclude(
        &Pass::new(&obj, timing(), at(60)),
        failing(ErrorClass::Unavailable, "r-4"),
    );
    let status = outage.status.expect("a new reason");
    let ready = conditions::find(&status.conditions, READY).expect("Ready");
    assert_eq!(ready.reason, "GraphUnavailable");
    assert!(ready.message.contains("r-4"), "{}", ready.message);
    assert_eq!(ready.last_transition_time, at(0));
}

#[test]
fn a_stall_warns_once() {
    let licence = Failure {
        class: ErrorClass::NotLicensed,
        message: "no licence".into(),
    };
    let findings = Findings {
        failure: Some((GraphStep::ListInstallations, licence)),
        catalog: Some(catalog()),
        ..Default::default()
    };
    let first = conclude(&Pass::new(&bob(), timing(), at(0)), findings.clone());
    assert_eq!(reasons(&first), vec!["UserNotLicensed"]);
    assert!(!first.retry, "a person has to act: no backoff loop");
    let status = first.status.clone().expect("status");
    assert!(conditions::is_true(&status.conditions, STALLED));
    let second = conclude(
        &Pass::new(&after(bob(), &first), timing(), at(60)),
        findings,
    );
    assert!(second.events.is_empty() && second.status.is_none());
}

#[test]
fn invalid_specs_and_suspension_make_no_graph_decisions() {
    let bad = resource(serde_json::json!({
        "user": "bob@contoso.com", "app": {"id": "a", "externalId": "b"}}));
    let pass = Pass::new(&bad, timing(), at(0));
    assert!(pass.invalid_spec().is_some());
    let outcome = conclude(&pass, Findings::default());
    assert_eq!(
        ready_reason(outcome.status.as_ref().expect("status")),
        "InvalidSpec"
    );
    assert_eq!(reasons(&outcome), vec!["InvalidSpec"]);

    // An object stored before the CRD refused such values is stalled, never sent to Graph.
    let old = resource(serde_json::json!({
        "user": "bob@contoso.com", "app": {"id": "a"}, "targetVersion": "latest"}));
    let outcome = conclude(&Pass::new(&old, timing(), at(0)), Findings::default());
    let status = outcome.status.expect("status");
    assert_eq!(ready_reason(&status), "InvalidSpec");
    assert!(
        conditions::find(&status.conditions, READY)
            .is_some_and(|c| c.message.contains("targetVersion")),
        "{status:?}"
    );

    let paused = resource(serde_json::json!({
        "user": "bob@contoso.com", "app": {"id": "a"}, "suspend": true}));
    let outcome = conclude(&Pass::new(&paused, timing(), at(0)), Findings::default());
    assert_eq!(
        ready_reason(outcome.status.as_ref().expect("status")),
        "Suspended"
    );
    assert_eq!(reasons(&outcome), vec!["Suspended"]);
}

#[test]
fn a_reconcile_request_is_recorded_once() {
    let mut obj = bob();
    obj.metadata.annotations =
        Some([(RECONCILE_REQUESTED_ANNOTATION.to_string(), "42".to_string())].into());
    let pass = Pass::new(&obj, timing(), at(0));
    assert!(pass.refresh());
    let outcome = conclude(
        &pass,
        Findings {
            catalog: Some(catalog()),
            before: Some(Some(installed("1.0.0"))),
            ..Default::default()
        },
    );
    let obj = after(obj, &outcome);
    assert_eq!(
        obj.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref()),
        Some("42")
    );
    assert!(!Pass::new(&obj, timing(), at(1)).refresh(), "handled");
}

#[test]
fn an_upgrade_seen_later_is_announced_from_the_recorded_version() {
    let first = conclude(
        &Pass::new(&bob(), timing(), at(0)),
        Findings {
            catalog: Some(CatalogView {
                latest_published: Some(AppVersion::parse("1.1.0")),
                ..catalog()
            }),
            before: Some(Some(installed("1.0.0"))),
            wrote: Some(Action::Upgrade {
                installation_id: "inst-1".into(),
                consent: None,
            }),
            after: Some(Some(installed("1.0.0"))),
            ..Default::default()
        },
    );
    assert!(first.events.is_empty());
    let obj = after(bob(), &first);
    assert_eq!(
        ready_reason(obj.status.as_ref().expect("status")),
        "Upgrading"
    );
    let pass = Pass::new(&obj, timing(), at(5));
    let newer = CatalogView {
        latest_published: Some(AppVersion::parse("1.1.0")),
        ..catalog()
    };
    assert!(
        pass.observed(newer.clone(), Some(installed("1.0.0")))
            .upgrade_in_flight
    );
    let seen = conclude(
        &pass,
        Findings {
            catalog: Some(newer),
            before: Some(Some(installed("1.1.0"))),
            ..Default::default()
        },
    );
    assert_eq!(reasons(&seen), vec!["Upgraded"]);
}

mod plan_mode;
mod teams_lag;
