//! Plan mode, consent refusals and `ensure: Absent` as the status shows them (issue 21).

use super::*;
use crate::api::PlannedAction;

fn observing(spec: serde_json::Value) -> TeamsAppInstallation {
    let mut spec = spec;
    spec["managementPolicy"] = "Observe".into();
    resource(spec)
}

fn lagging() -> Findings {
    Findings {
        catalog: Some(CatalogView {
            latest_published: Some(AppVersion::parse("1.1.0")),
            ..catalog()
        }),
        before: Some(Some(installed("1.0.0"))),
        ..Default::default()
    }
}

#[test]
fn observe_is_ready_with_the_plan_and_announces_it_once() {
    let obj = observing(serde_json::json!({"user": "bob@contoso.com", "app": {"id": "app-1"}}));
    let pass = Pass::new(&obj, timing(), at(0));
    assert!(pass.observe);
    let outcome = conclude(&pass, lagging());
    let status = outcome.status.clone().expect("status");
    assert_eq!(ready_reason(&status), "Observed");
    assert!(conditions::is_true(&status.conditions, READY));
    let plan = status.plan.clone().expect("plan");
    assert_eq!(plan.action, PlannedAction::Upgrade);
    assert_eq!(plan.from_version.as_deref(), Some("1.0.0"));
    assert_eq!(plan.to_version.as_deref(), Some("1.1.0"));
    assert_eq!(
        plan.calls,
        vec!["POST /users/bob@contoso.com/teamwork/installedApps/inst-1/upgrade"]
    );
    assert_eq!(plan.computed_time, Some(at(0)));
    assert_eq!(reasons(&outcome), vec!["WouldUpgrade"]);
    assert!(status.last_upgrade_time.is_none(), "nothing was written");

    // The same plan a re-check later: no status write, no Event.
    let again = conclude(
        &Pass::new(&after(obj, &outcome), timing(), at(600)),
        lagging(),
    );
    assert_eq!(again.status, None);
    assert!(again.events.is_empty());
}

#[test]
fn observe_reports_a_consent_block_as_the_plan_not_a_stall() {
    let mut obj = observing(serde_json::json!({"user": "bob@contoso.com", "app": {"id": "app-1"}}));
    obj.metadata.generation = Some(2);
    let mut findings = lagging();
    if let Some(c) = findings.catalog.as_mut() {
        c.required = serde_json::from_value(serde_json::json!({"resourceSpecificPermissions": [
            {"permissionType": "application", "permissionValue": "TeamsActivity.Send.User"}
        ]}))
        .expect("set");
    }
    let outcome = conclude(&Pass::new(&obj, timing(), at(0)), findings);
    let status = outcome.status.expect("status");
    assert_eq!(ready_reason(&status), "Observed");
    let plan = status.plan.expect("plan");
    assert_eq!(plan.action, PlannedAction::Blocked);
    assert_eq!(plan.blocked_reason.as_deref(), Some("ConsentRequired"));
    assert_eq!(plan.generation, Some(2));
    assert_eq!(status.required_permissions, vec!["TeamsActivity.Send.User"]);
    assert!(outcome.events.is_empty(), "a block is no Would… Event");
}

#[test]
fn manage_clears_a_plan_left_from_observe() {
    let obj = observing(serde_json::json!({"user": "bob@contoso.com", "app": {"id": "app-1"}}));
    let observed = conclude(&Pass::new(&obj, timing(), at(0)), lagging());
    let mut managed = after(obj, &observed);
    managed.spec.management_policy = Some(crate::api::ManagementPolicy::Manage);
    let outcome = conclude(&Pass::new(&managed, timing(), at(5)), lagging());
    assert_eq!(outcome.status.expect("status").plan, None);
}

#[test]
fn a_refused_consent_tells_the_tenant_switch_from_a_missing_permission() {
    let forbidden = |disabled| Findings {
        failure: Some((
            GraphStep::Upgrade,
            Failure {
                class: ErrorClass::Forbidden,
                message: "HTTP 403 [request-id: r-1]".into(),
            },
        )),
        consented: true,
        consent_disabled: disabled,
        ..lagging()
    };
    let pass = Pass::new(&bob(), timing(), at(0));
    let status = conclude(&pass, forbidden(Some(true)))
        .status
        .expect("status");
    assert_eq!(ready_reason(&status), "ConsentDisabled");
    let status = conclude(&pass, forbidden(None)).status.expect("status");
    assert_eq!(ready_reason(&status), "PermissionDenied");
    let message = &conditions::find(&status.conditions, READY)
        .expect("ready")
        .message;
    assert!(message.contains("ReadWriteAndConsentForUser"), "{message}");
}
