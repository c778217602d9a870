//! A rollout against a noisy directory (issue 20), on a real API server with graph-sim's noise
//! knobs and the operator binary: flapping reads, licence states, partial visibility, expired
//! page tokens and soft-deleted users never make the operator uninstall by surprise.

mod scenario;
mod support;

use std::fmt::Write as _;
use std::time::Duration;

use scenario::rollouts::*;
use scenario::{BOT, CLIENT_ID, SECRET, Scenario, TENANT};
use serde_json::json;
use teams_app_operator::kit::conditions;

const MINUTE: Duration = Duration::from_secs(60);

fn child(rollout: &str, i: usize) -> String {
    format!("{rollout}-{}", user_id(i))
}

fn stalled_message(r: &teams_app_operator::api::TeamsAppRollout) -> String {
    let cs = r.status.as_ref().map_or(&[][..], |s| &s.conditions);
    conditions::find(cs, conditions::STALLED)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_flapping_directory_never_uninstalls_and_a_real_leaver_goes_once_after_the_delay() {
    // NESTED_A: the 200 even users of 400.
    let s = Scenario::start_with("tar-flap", &seed(400, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [NESTED_A]},
                "removalPolicy": "Uninstall",
                "removalDelay": "6s",
                "membershipInterval": "1s",
            }),
        )
        .await;
    rollouts
        .wait_for_reason("bot", "RolloutComplete", MINUTE)
        .await;

    // A fifth of the reads leave out a random member; a dozen reads go by.
    s.set_faults(json!({"directoryFlap": 0.2})).await;
    let reads_before = s.count_requests("GET", "/transitiveMembers").await;
    let deadline = std::time::Instant::now() + MINUTE;
    while s.count_requests("GET", "/transitiveMembers").await < reads_before + 12 {
        assert!(std::time::Instant::now() < deadline, "{}", s.log_context());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        s.count_requests("DELETE", "/installedApps/").await,
        0,
        "a flapping read never uninstalls"
    );
    assert_eq!(rollouts.children().await.len(), 200);

    // A real leaver goes once absent for removalDelay, and only that one.
    rollouts
        .members(
            reqwest::Method::DELETE,
            NESTED_A,
            Some(&user_id(0)),
            json!({}),
        )
        .await;
    s.wait_gone(&child("bot", 0)).await;
    assert_eq!(s.count_requests("DELETE", &user_id(0)).await, 1);
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 1);
    s.wait_for_event("bot", "RemovalPending").await;
    s.wait_for_event("bot", "Removed").await;
}

/// Users 0–7 in one group, each with the assigned plans of one row of the licence table.
fn licence_seed() -> String {
    const TEAMS1: &str = "57ff2da0-773e-42df-b2af-ffb7a2317929";
    const GCC: &str = "304767db-7d23-49e8-a945-4a7eb65f9f28";
    const FREE: &str = "4fa4026d-ce74-4962-a151-8e96d57ea8e4";
    let plan = |id: &str, state: &str| {
        format!("{{servicePlanId: {id}, capabilityStatus: {state}, service: TeamspaceAPI}}")
    };
    let rows = [
        plan(TEAMS1, "Enabled"),
        plan(TEAMS1, "Warning"),
        plan(TEAMS1, "Suspended"),
        plan(TEAMS1, "LockedOut"),
        format!("{}, {}", plan(TEAMS1, "Deleted"), plan(TEAMS1, "Enabled")),
        plan(GCC, "Enabled"),
        plan(FREE, "Enabled"),
        plan(TEAMS1, "PendingActivation"),
    ];
    let mut y = format!(
        "tenants:\n  - id: {TENANT}\n    clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]\n    apps:\n      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot, distributionMethod: organization, definitions: [{{version: \"1.0.0\", publishingState: published}}]}}\n    users:\n"
    );
    for (i, plans) in rows.iter().enumerate() {
        let _ = writeln!(
            y,
            "      - {{id: {}, userPrincipalName: {}, plans: [{plans}]}}",
            user_id(i),
            upn(i)
        );
    }
    let members: Vec<String> = (0..rows.len()).map(user_id).collect();
    let _ = writeln!(
        y,
        "    groups:\n      - {{id: {NESTED_A}, members: [{}]}}",
        members.join(", ")
    );
    y
}

#[tokio::test]
async fn licences_count_as_graph_reports_them_and_a_user_in_grace_keeps_the_app() {
    let s = Scenario::start_with("tar-licence", &licence_seed(), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [NESTED_A]},
                "removalPolicy": "Uninstall",
                "removalDelay": "0s",
                "membershipInterval": "1s",
                // The simulator does not know the unknown state either and refuses that user.
                "maxFailures": "100%",
            }),
        )
        .await;
    let r = rollouts
        .wait_for("bot", "sifted", MINUTE, |r| {
            r.status
                .as_ref()
                .and_then(|s| s.audience.as_ref())
                .is_some_and(|a| a.eligible == 6)
        })
        .await;
    let audience = r.status.and_then(|s| s.audience).expect("audience");
    assert_eq!(audience.skipped.unlicensed, 2, "Suspended and LockedOut");
    assert_eq!(audience.unknown_licence_states, 1, "PendingActivation");
    for i in [0, 1, 4, 5, 6] {
        support::wait::until_ready(&s.api, &child("bot", i), MINUTE, &|| s.log_context()).await;
    }
    let names: Vec<String> = rollouts
        .children()
        .await
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    for i in [2, 3] {
        assert!(
            !names.contains(&child("bot", i)),
            "user {i} is not licensed: {names:?}"
        );
    }
    assert!(
        names.contains(&child("bot", 7)),
        "an unknown state is never a reason to skip"
    );

    // User 0's subscription enters its grace period: a few reads later it still has the app.
    let warning = json!({"plans": [{"servicePlanId": "57ff2da0-773e-42df-b2af-ffb7a2317929", "capabilityStatus": "Warning", "service": "TeamspaceAPI"}]});
    s.sim_admin(
        reqwest::Method::PATCH,
        &format!("/_sim/tenants/{TENANT}/users/{}", user_id(0)),
        warning,
    )
    .await;
    let reads = s.count_requests("GET", "/transitiveMembers").await;
    let deadline = std::time::Instant::now() + MINUTE;
    while s.count_requests("GET", "/transitiveMembers").await < reads + 3 {
        assert!(std::time::Instant::now() < deadline, "{}", s.log_context());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 0);
    support::wait::until_ready(&s.api, &child("bot", 0), MINUTE, &|| s.log_context()).await;
}

#[tokio::test]
async fn user_read_basic_all_is_permission_denied_and_nothing_is_written() {
    let seed = seed(4, |_| Kind::Member, &[]).replace(
        &format!("clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]"),
        &format!(
            "clients: [{{id: {CLIENT_ID}, secret: {SECRET}, roles: [TeamsAppInstallation.ReadWriteForUser.All, AppCatalog.Read.All, GroupMember.Read.All, User.ReadBasic.All]}}]"
        ),
    );
    let s = Scenario::start_with("tar-basic", &seed, &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({"app": {"id": BOT}, "audience": {"groups": [ALL]}}),
        )
        .await;
    let r = rollouts
        .wait_for_reason("bot", "PermissionDenied", MINUTE)
        .await;
    let message = stalled_message(&r);
    assert!(message.contains("User.Read.All"), "{message}");
    assert!(rollouts.children().await.is_empty());
    assert_eq!(s.count_requests("POST", "/installedApps").await, 0);
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 0);
}

#[tokio::test]
async fn an_expired_page_token_restarts_the_read_and_the_rollout_proceeds() {
    // 2,000 users: NESTED_A's 1,000 need two pages of 999.
    let s = Scenario::start_with("tar-pages", &seed(2000, |_| Kind::Member, &[]), &FAST).await;
    // Every next link is older than the page token's lifetime by the time it is followed.
    s.set_faults(json!({"pageTokenTtlMs": 1, "latencyMs": 20}))
        .await;
    let rollouts = Rollouts::new(&s);
    let spec = json!({"app": {"id": BOT}, "audience": {"groups": [NESTED_A]}, "waves": [{"name": "pilot", "count": 5}]});
    rollouts.create("bot", spec).await;
    let r = rollouts
        .wait_for_reason("bot", "AudienceUnreadable", MINUTE)
        .await;
    let ready = conditions::find(
        r.status.as_ref().map_or(&[][..], |s| &s.conditions),
        conditions::READY,
    )
    .map(|c| c.message.clone())
    .unwrap_or_default();
    assert!(ready.contains("Directory_ExpiredPageToken"), "{ready}");
    assert!(
        stalled_message(&r).is_empty(),
        "an expiring token passes: Reconciling, not Stalled"
    );
    // The read started over at once, a bounded number of times: the first try and three restarts.
    let expired = s
        .graph_requests()
        .await
        .iter()
        .filter(|q| {
            q["status"] == 400
                && q["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("transitiveMembers"))
        })
        .count();
    assert!(expired >= 4, "{expired} expired page tokens");

    // The directory answers in time again: the rollout proceeds within seconds.
    s.set_faults(json!({})).await;
    rollouts
        .wait_for("bot", "read", MINUTE, |r| {
            r.status
                .as_ref()
                .and_then(|s| s.audience.as_ref())
                .is_some_and(|a| a.members == 1000)
        })
        .await;
    rollouts
        .wait_for_reason("bot", "WaveInProgress", MINUTE)
        .await;
}

#[tokio::test]
async fn a_soft_deleted_member_is_uninstalled_and_the_rollout_does_not_stall() {
    let s = Scenario::start_with("tar-deleted", &seed(4, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [NESTED_A]},
                "removalPolicy": "Uninstall",
                "removalDelay": "0s",
                "membershipInterval": "1s",
            }),
        )
        .await;
    rollouts
        .wait_for_reason("bot", "RolloutComplete", MINUTE)
        .await;
    s.sim_admin(
        reqwest::Method::DELETE,
        &format!("/_sim/tenants/{TENANT}/users/{}", user_id(0)),
        json!({}),
    )
    .await;
    s.wait_gone(&child("bot", 0)).await;
    let r = rollouts
        .wait_for_reason("bot", "RolloutComplete", MINUTE)
        .await;
    assert!(stalled_message(&r).is_empty());
    assert_eq!(
        s.event_count(&child("bot", 0), "UninstallAbandoned").await,
        0
    );
    assert_eq!(
        r.status.and_then(|s| s.ready_summary).as_deref(),
        Some("1/1")
    );
}
