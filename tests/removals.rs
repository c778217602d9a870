//! Never uninstall by surprise (issue 20), on a real API server with graph-sim and the operator
//! binary: removals wait out a stale or flapping directory, a removal limit holds mass removals
//! until a person approves them, licences are read as Graph reports them, and one Graph
//! installation has one owner however many resources want it.

mod scenario;
mod support;

use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams};
use scenario::rollouts::*;
use scenario::{BOT, Scenario};
use serde_json::json;
use teams_app_operator::api::{APPROVE_REMOVALS_ANNOTATION, TeamsAppRollout};
use teams_app_operator::kit::conditions;

const MINUTE: Duration = Duration::from_secs(60);

fn child(rollout: &str, i: usize) -> String {
    format!("{rollout}-{}", user_id(i))
}

fn ready_reason(obj: &impl conditions::Conditioned) -> String {
    conditions::find(obj.conditions(), conditions::READY)
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

/// POSTs that installed the bot for user `i` (the install call names the user, not the app).
async fn installs_for(s: &Scenario, i: usize) -> usize {
    s.graph_requests()
        .await
        .iter()
        .filter(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(&user_id(i)) && p.ends_with("/installedApps"))
        })
        .count()
}

#[tokio::test]
async fn removing_most_of_a_group_at_once_waits_for_approval_of_exactly_that_set() {
    // NESTED_A holds the 10 even users of 20.
    let s = Scenario::start_with("tar-limit", &seed(20, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [NESTED_A]},
                "removalPolicy": "Uninstall",
                "removalDelay": "0s",
                "removalLimit": "10%",
                "membershipInterval": "1s",
            }),
        )
        .await;
    rollouts
        .wait_for_reason("bot", "RolloutComplete", MINUTE)
        .await;

    // Six of the ten leave at once: more than 10% — nothing is removed, a person must act.
    let leavers: Vec<usize> = (0..12).step_by(2).collect();
    for i in &leavers {
        rollouts
            .members(
                reqwest::Method::DELETE,
                NESTED_A,
                Some(&user_id(*i)),
                json!({}),
            )
            .await;
    }
    let held = rollouts
        .wait_for("bot", "holding 6 removals", MINUTE, |r| {
            ready_reason(r) == "RemovalLimitExceeded"
                && r.status.as_ref().is_some_and(|s| s.removals.blocked == 6)
        })
        .await;
    let status = held.status.clone().expect("status");
    let digest = status
        .removals
        .blocked_digest
        .clone()
        .expect("a digest to approve");
    let message = &conditions::find(&status.conditions, conditions::STALLED)
        .expect("Stalled")
        .message;
    assert!(
        message.contains("6 users") && message.contains(&digest),
        "{message}"
    );
    s.wait_for_event("bot", "RemovalLimitExceeded").await;
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 0);
    assert_eq!(
        rollouts.children().await.len(),
        10,
        "every installation kept"
    );

    // Approving that exact set removes exactly those six, once each.
    let approve = json!({"metadata": {"annotations": {APPROVE_REMOVALS_ANNOTATION: digest}}});
    rollouts
        .api
        .patch("bot", &PatchParams::default(), &Patch::Merge(&approve))
        .await
        .expect("annotate the rollout");
    rollouts
        .wait_for_reason("bot", "RolloutComplete", MINUTE)
        .await;
    for i in &leavers {
        s.wait_gone(&child("bot", *i)).await;
        assert_eq!(
            s.count_requests("DELETE", &user_id(*i)).await,
            1,
            "user {i}"
        );
    }
    assert_eq!(rollouts.children().await.len(), 4);
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 6);
    s.wait_for_event("bot", "Removed").await;
}

#[tokio::test]
async fn one_graph_installation_has_one_owner_and_is_handed_over_not_reinstalled() {
    // NESTED_A holds users 0 and 2.
    let s = Scenario::start_with("tar-owners", &seed(4, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    let context = || s.log_context();
    // A hand-written installation first: the oldest, so the owner of user 0's installation.
    let by_hand = json!({"user": user_id(0), "app": {"id": BOT}, "deletionPolicy": "Uninstall"});
    s.create("by-hand", by_hand).await;
    s.wait_for_reason("by-hand", "UpToDate").await;
    // Two rollouts for the same group, a second later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for name in ["first", "second"] {
        let spec = json!({
            "app": {"id": BOT},
            "audience": {"groups": [NESTED_A]},
            "template": {"deletionPolicy": "Uninstall"},
        });
        rollouts.create(name, spec).await;
    }
    for name in ["first", "second"] {
        // The duplicates are Ready: overlapping rollouts don't count them as failures.
        rollouts
            .wait_for_reason(name, "RolloutComplete", MINUTE)
            .await;
    }
    for name in [child("first", 0), child("second", 0), child("second", 2)] {
        let dup =
            support::wait::until_reason(&s.api, &name, "DuplicateInstallation", MINUTE, &context)
                .await;
        let message = &conditions::find(
            dup.status.as_ref().map_or(&[][..], |s| &s.conditions),
            conditions::READY,
        )
        .expect("Ready")
        .message;
        let owner = if name.ends_with(&user_id(0)) {
            "by-hand"
        } else {
            "first-"
        };
        assert!(message.contains(owner), "{name}: {message}");
    }
    assert_eq!(installs_for(&s, 0).await, 1, "one Graph install for user 0");
    assert_eq!(installs_for(&s, 2).await, 1, "one Graph install for user 2");

    // The owner goes with Uninstall while the rollouts still want the app: no DELETE, and the
    // oldest of the rest takes over.
    s.delete("by-hand").await;
    s.wait_gone("by-hand").await;
    s.wait_for_event("by-hand", "HandedOver").await;
    support::wait::until_reason(&s.api, &child("first", 0), "UpToDate", MINUTE, &context).await;
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 0);

    // The second rollout goes (its installations Uninstall): the first still wants both.
    let api = &rollouts.api;
    api.delete("second", &DeleteParams::default())
        .await
        .expect("delete second");
    support::wait::until_gone::<TeamsAppRollout>(api, "second", MINUTE, &context).await;
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 0);

    // The last one goes: one DELETE per user, and never a re-install.
    api.delete("first", &DeleteParams::default())
        .await
        .expect("delete first");
    support::wait::until_gone::<TeamsAppRollout>(api, "first", MINUTE, &context).await;
    assert_eq!(s.count_requests("DELETE", &user_id(0)).await, 1);
    assert_eq!(s.count_requests("DELETE", &user_id(2)).await, 1);
    assert_eq!(installs_for(&s, 0).await, 1, "no re-install for user 0");
    assert_eq!(installs_for(&s, 2).await, 1, "no re-install for user 2");
}

#[tokio::test]
async fn a_group_read_as_empty_is_not_acted_on_until_a_second_read_agrees() {
    // NESTED_A holds users 0 and 2.
    let s = Scenario::start_with("tar-empty", &seed(4, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [NESTED_A]},
                "removalPolicy": "Uninstall",
                "removalDelay": "0s",
                "removalLimit": "100%",
                // Reads come when asked for (below), not on a clock.
                "membershipInterval": "1h",
            }),
        )
        .await;
    rollouts
        .wait_for_reason("bot", "RolloutComplete", MINUTE)
        .await;
    for i in [0, 2] {
        rollouts
            .members(
                reqwest::Method::DELETE,
                NESTED_A,
                Some(&user_id(i)),
                json!({}),
            )
            .await;
    }
    let ask = |value: &'static str| {
        let patch =
            json!({"metadata": {"annotations": {"teamsapps.dev/reconcile-requested-at": value}}});
        let api = rollouts.api.clone();
        async move {
            api.patch("bot", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("annotate the rollout");
        }
    };
    // The first read that finds the group empty is held…
    ask("1").await;
    rollouts
        .wait_for("bot", "holding a suspect read", MINUTE, |r| {
            r.status.as_ref().is_some_and(|s| {
                s.last_handled_reconcile_at.as_deref() == Some("1") && s.removals.blocked == 2
            })
        })
        .await;
    assert_eq!(
        rollouts.children().await.len(),
        2,
        "nothing removed on one read"
    );
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 0);
    // …and the next read that agrees is acted on.
    ask("2").await;
    s.wait_gone(&child("bot", 0)).await;
    s.wait_gone(&child("bot", 2)).await;
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 2);
}
