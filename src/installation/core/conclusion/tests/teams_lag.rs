//! Teams' own lag and refusals (issue 23): a user Teams has not provisioned, an app or version
//! the catalog does not show yet, an upgrade Graph accepted but did not apply.

use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn not_found() -> Failure {
    Failure {
        class: ErrorClass::NotFound,
        message: "Graph GET …/installedApps returned HTTP 404 (NotFound): User Id 'u' not found. [request-id: r-1]".into(),
    }
}

fn teams_404(step: GraphStep, in_directory: Option<bool>) -> Findings {
    Findings {
        failure: Some((step, not_found())),
        catalog: Some(catalog()),
        user_in_directory: in_directory,
        ..Default::default()
    }
}

fn standing_of(outcome: &Outcome) -> (bool, bool) {
    let status = outcome.status.as_ref().expect("status");
    (
        conditions::is_true(&status.conditions, conditions::RECONCILING),
        conditions::is_true(&status.conditions, STALLED),
    )
}

#[test]
fn a_user_teams_does_not_know_yet_is_waited_for_on_a_backoff_then_stalled() {
    for step in [GraphStep::ListInstallations, GraphStep::Install] {
        let first = conclude(
            &Pass::new(&bob(), timing(), at(0)),
            teams_404(step, Some(true)),
        );
        let status = first.status.clone().expect("first status");
        assert_eq!(ready_reason(&status), "UserNotProvisioned", "{step:?}");
        assert_eq!(
            standing_of(&first),
            (true, false),
            "Reconciling, not Stalled"
        );
        assert!(
            !first.retry,
            "its own backoff, not the failure backoff's seconds"
        );
        assert_eq!(first.requeue, MINUTE, "a minute at first");
        assert_eq!(reasons(&first), vec!["UserNotProvisioned"]);
        assert!(
            first.events[0].note.contains("request-id: r-1"),
            "the Event carries Graph's answer"
        );

        // An hour later: nothing to write, no new Event, a longer wait.
        let obj = after(bob(), &first);
        let later = conclude(
            &Pass::new(&obj, timing(), at(3600)),
            teams_404(step, Some(true)),
        );
        assert_eq!(later.status, None);
        assert!(later.events.is_empty());
        assert_eq!(later.requeue, 5 * MINUTE);

        // A day after it was first seen: Stalled, saying how long, re-checked on its slot.
        let day = conclude(
            &Pass::new(&obj, timing(), at(24 * 3600)),
            teams_404(step, Some(true)),
        );
        assert_eq!(standing_of(&day), (false, true));
        let status = day.status.clone().expect("stalled status");
        assert_eq!(ready_reason(&status), "UserNotProvisioned");
        let message = &conditions::find(&status.conditions, READY)
            .expect("Ready")
            .message;
        assert!(message.contains("24h after"), "{message}");
        assert_eq!(reasons(&day), vec!["UserNotProvisioned"]);
        assert!(day.requeue <= timing().default_interval);

        // Teams catches up: installed and Ready with no edit.
        let obj = after(obj, &day);
        let ready = conclude(
            &Pass::new(&obj, timing(), at(24 * 3600 + 60)),
            Findings {
                catalog: Some(catalog()),
                before: Some(Some(installed("1.0.0"))),
                ..Default::default()
            },
        );
        assert_eq!(
            ready_reason(ready.status.as_ref().expect("status")),
            "UpToDate"
        );
    }
}

#[test]
fn the_wait_is_bounded_by_the_configured_timeout() {
    let short = Timing {
        provisioning_timeout: 10 * MINUTE,
        ..timing()
    };
    let first = conclude(
        &Pass::new(&bob(), short, at(0)),
        teams_404(GraphStep::Install, Some(true)),
    );
    let obj = after(bob(), &first);
    let stalled = conclude(
        &Pass::new(&obj, short, at(600)),
        teams_404(GraphStep::Install, Some(true)),
    );
    assert_eq!(standing_of(&stalled), (false, true));
    let waiting = conclude(
        &Pass::new(&obj, timing(), at(600)),
        teams_404(GraphStep::Install, Some(true)),
    );
    // The message names the bound, so this status is written again; it is still waiting.
    assert_eq!(
        standing_of(&waiting),
        (true, false),
        "waiting under {DAY:?}"
    );
}

#[test]
fn a_user_the_directory_does_not_know_either_is_user_not_found() {
    for known in [Some(false), None] {
        let outcome = conclude(
            &Pass::new(&bob(), timing(), at(0)),
            teams_404(GraphStep::Install, known),
        );
        assert_eq!(
            ready_reason(outcome.status.as_ref().expect("status")),
            "UserNotFound",
            "{known:?}"
        );
        assert_eq!(standing_of(&outcome), (false, true));
    }
    // A 404 elsewhere (the installation vanished) is never about provisioning.
    let outcome = conclude(
        &Pass::new(&bob(), timing(), at(0)),
        teams_404(GraphStep::Upgrade, Some(true)),
    );
    assert_eq!(
        ready_reason(outcome.status.as_ref().expect("status")),
        "GraphUnavailable"
    );
}

#[test]
fn what_waits_on_the_catalog_or_an_admin_looks_again_within_one_interval() {
    let interval = timing().default_interval;
    let missing = conclude(
        &Pass::new(&bob(), timing(), at(0)),
        Findings {
            app_missing: Some("not in the catalog".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        ready_reason(missing.status.as_ref().expect("status")),
        "AppNotFound"
    );
    let blocked = conclude(
        &Pass::new(&bob(), timing(), at(0)),
        Findings {
            failure: Some((
                GraphStep::Install,
                Failure {
                    class: ErrorClass::BlockedByPolicy,
                    message: "blocked by the tenant admin".into(),
                },
            )),
            catalog: Some(catalog()),
            ..Default::default()
        },
    );
    let target = resource(serde_json::json!({
        "user": "bob@contoso.com", "app": {"id": "app-1"}, "targetVersion": "2.0.0"}));
    let waiting = conclude(
        &Pass::new(&target, timing(), at(0)),
        Findings {
            catalog: Some(catalog()),
            before: Some(Some(installed("1.0.0"))),
            ..Default::default()
        },
    );
    assert_eq!(
        ready_reason(waiting.status.as_ref().expect("status")),
        "WaitingForCatalogVersion"
    );
    // Checked at many moments: never more than one interval away (a Ready resource may be up to
    // one and a half, on its user's slot).
    for t in (0..3600).step_by(97) {
        let pass = Pass::new(&bob(), timing(), at(t));
        let again = conclude(
            &pass,
            Findings {
                app_missing: Some("not in the catalog".into()),
                ..Default::default()
            },
        );
        assert!(again.requeue <= interval, "{:?} at {t}", again.requeue);
    }
    for outcome in [&missing, &blocked, &waiting] {
        assert!(outcome.requeue <= interval, "{:?}", outcome.requeue);
    }
}

#[test]
fn an_upgrade_graph_accepted_but_did_not_apply_is_asked_again_once_per_window_and_said() {
    let newer = CatalogView {
        latest_published: Some(AppVersion::parse("1.1.0")),
        ..catalog()
    };
    let upgrade = |before: &str| Findings {
        catalog: Some(newer.clone()),
        before: Some(Some(installed(before))),
        wrote: Some(Action::Upgrade {
            installation_id: "inst-1".into(),
            consent: None,
        }),
        after: Some(Some(installed(before))),
        ..Default::default()
    };
    let first = conclude(&Pass::new(&bob(), timing(), at(0)), upgrade("1.0.0"));
    assert!(first.events.is_empty(), "a first upgrade is not news");
    let obj = after(bob(), &first);

    // Within the window the decision only verifies: no second call, nothing to say.
    let pass = Pass::new(&obj, timing(), at(300));
    let observed = pass.observed(newer.clone(), Some(installed("1.0.0")));
    assert_eq!(decide(&pass.wanted, &observed).action, Action::Nothing);

    // A window later it asks again, and says why.
    let pass = Pass::new(&obj, timing(), at(600));
    let observed = pass.observed(newer.clone(), Some(installed("1.0.0")));
    assert!(matches!(
        decide(&pass.wanted, &observed).action,
        Action::Upgrade { .. }
    ));
    let again = conclude(&pass, upgrade("1.0.0"));
    assert_eq!(reasons(&again), vec!["UpgradeNotApplied"]);
    let note = &again.events[0].note;
    assert!(note.contains("1.1.0") && note.contains("1.0.0"), "{note}");
    assert_eq!(
        again
            .status
            .as_ref()
            .and_then(|s| s.last_upgrade_time.clone()),
        Some(at(600)),
        "the next window starts now"
    );

    // A newer version published meanwhile is a first call for it, not a repeat.
    let newest = CatalogView {
        latest_published: Some(AppVersion::parse("1.2.0")),
        ..catalog()
    };
    let first_for_newest = conclude(
        &Pass::new(&obj, timing(), at(60)),
        Findings {
            catalog: Some(newest),
            ..upgrade("1.0.0")
        },
    );
    assert!(!reasons(&first_for_newest).contains(&"UpgradeNotApplied"));

    // An upgrade long ago (an earlier one, not this version's) is not a repeat either.
    let long_ago = conclude(&Pass::new(&obj, timing(), at(86_400)), upgrade("1.0.0"));
    assert!(!reasons(&long_ago).contains(&"UpgradeNotApplied"));
}
