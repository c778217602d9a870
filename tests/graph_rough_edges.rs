//! Graph as it really behaves, end to end: the real API server, graph-sim scripted to misbehave
//! the way Graph does (reads that lag writes, writes that took effect but failed, undocumented
//! answers, licences, odd identifiers, the `…Self…` permissions), and the operator binary.
//! Each test checks what a user sees: conditions, Events and the Graph calls made.

mod scenario;
mod support;

use scenario::{BOT, Scenario, TENANT, condition, installed_version};
use serde_json::{Value, json};

const SELF_ONLY_CLIENT: &str = "11111111-1111-1111-1111-111111111112";
const QUOTED_APP: &str = "33333333-3333-3333-3333-333333333334";

/// alice has Contoso Bot 1.0.0; bob, carol and dave have nothing; erin has no Teams licence;
/// three users whose names need care on the wire; an app whose manifest id holds a quote; and
/// a second client that only has the `…Self…` permission.
fn seed() -> String {
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients:
      - {{id: 11111111-1111-1111-1111-111111111111, secret: s3cret}}
      - {{id: {SELF_ONLY_CLIENT}, secret: s3cret, roles: [TeamsAppInstallation.ReadWriteSelfForUser.All, AppCatalog.Read.All]}}
    users:
      - {{id: 22222222-2222-2222-2222-222222222222, userPrincipalName: alice@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222223, userPrincipalName: bob@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222225, userPrincipalName: carol@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222226, userPrincipalName: dave@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222227, userPrincipalName: erin@contoso.com, teamsEnabled: false}}
      - {{id: 22222222-2222-2222-2222-222222222228, userPrincipalName: "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"}}
      - {{id: 22222222-2222-2222-2222-222222222229, userPrincipalName: "o'neil@contoso.com"}}
      - {{id: 22222222-2222-2222-2222-22222222222a, userPrincipalName: "$adm@contoso.com"}}
    apps:
      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
      - {{id: {QUOTED_APP}, externalId: "it's.contoso.app", displayName: Its App,
         distributionMethod: organization, definitions: [{{version: "0.9", publishingState: published}}]}}
    installations: [{{user: alice@contoso.com, app: {BOT}, version: "1.0.0"}}]
"#
    )
}

fn for_user(user: &str) -> Value {
    json!({"user": user, "app": {"id": BOT}})
}

async fn install_statuses(s: &Scenario, user: &str) -> Vec<u64> {
    s.statuses(
        "POST",
        &format!("/users/{user}/"),
        "/teamwork/installedApps",
    )
    .await
}

#[tokio::test]
async fn reads_that_lag_writes_get_one_install_one_upgrade_and_one_event_each() {
    let s = Scenario::start("readlag", &seed()).await;
    s.set_faults(json!({"readLagMs": 5000})).await;

    s.create("bot-bob", for_user("bob@contoso.com")).await;
    let reasons = s.reasons_until_ready("bot-bob").await;
    assert!(
        reasons.contains(&"Installing".to_string()),
        "{reasons:?}: {:#?}",
        s.graph_requests().await
    );
    assert_eq!(reasons.last().map(String::as_str), Some("UpToDate"));
    // At most one extra install call, and Graph answered it 409 (already installed).
    let installs = install_statuses(&s, "bob@contoso.com").await;
    assert!(
        matches!(installs.as_slice(), [201] | [201, 409]),
        "{installs:?}"
    );
    assert_eq!(s.event_count("bot-bob", "Installed").await, 1);

    s.publish_version(BOT, "1.1.0").await;
    s.create("bot-alice", for_user("alice@contoso.com")).await;
    // It may first be UpToDate at 1.0.0 (the catalog read is cached for a second); then the
    // upgrade lags in Graph's reads for five seconds.
    s.wait_for_reason("bot-alice", "Upgrading").await;
    s.reasons_until_ready("bot-alice").await;
    assert_eq!(
        installed_version(&s.get("bot-alice").await).as_deref(),
        Some("1.1.0")
    );
    // bob, now at 1.0.0 too, is upgraded as well: one call each.
    s.wait_for(
        "bot-bob",
        "at 1.1.0",
        std::time::Duration::from_secs(60),
        |o| installed_version(o).as_deref() == Some("1.1.0") && scenario::is_ready(o),
    )
    .await;
    for user in ["alice", "bob"] {
        let upgrades = s
            .statuses("POST", &format!("/users/{user}@"), "/upgrade")
            .await;
        assert_eq!(upgrades, vec![204], "{user}");
        assert_eq!(s.event_count(&format!("bot-{user}"), "Upgraded").await, 1);
    }
}

#[tokio::test]
async fn writes_that_took_effect_but_failed_converge_without_duplicates() {
    let s = Scenario::start("applyfirst", &seed()).await;
    s.publish_version(BOT, "1.1.0").await;
    s.set_faults(json!({"failures": [
        {"method": "POST", "pathContains": "/users/bob@contoso.com/teamwork/installedApps",
         "status": 503, "applyFirst": true, "count": 1},
        {"method": "POST", "pathContains": "/users/carol@contoso.com/teamwork/installedApps",
         "status": 429, "retryAfter": 1, "applyFirst": true, "count": 1},
        {"method": "POST", "pathContains": "/users/dave@contoso.com/teamwork/installedApps",
         "dropConnection": true, "status": 503, "applyFirst": true, "count": 1},
        {"method": "POST", "pathContains": "/upgrade", "status": 503, "applyFirst": true, "count": 1},
    ]}))
    .await;
    for user in ["alice", "bob", "carol", "dave"] {
        s.create(
            &format!("bot-{user}"),
            for_user(&format!("{user}@contoso.com")),
        )
        .await;
    }
    for user in ["alice", "bob", "carol", "dave"] {
        let name = format!("bot-{user}");
        s.reasons_until_ready(&name).await;
        let obj = s.get(&name).await;
        assert_eq!(installed_version(&obj).as_deref(), Some("1.1.0"), "{name}");
    }
    for user in ["bob", "carol", "dave"] {
        let name = format!("bot-{user}");
        assert!(
            s.event_count(&name, "Installed").await <= 1,
            "{name}: one Installed Event at most"
        );
        // The first call took effect (whatever it was answered); every later one was answered
        // 409, already installed. (A quick retry within the call — carol's 429 asking for 1 s,
        // dave's dropped connection — asks again; bob's 503 ends the reconcile, and the next
        // one reads the install before it would ask.)
        let installs = install_statuses(&s, &format!("{user}@contoso.com")).await;
        assert!(
            !installs.is_empty() && installs[1..].iter().all(|st| *st == 409),
            "{name}: {installs:?}"
        );
    }
    assert!(s.event_count("bot-alice", "Upgraded").await <= 1);
}

async fn upgrade_at_latest_is_nothing_to_do(mode: &str) {
    let s = Scenario::start(&format!("atlatest-{}", mode.to_lowercase()), &seed()).await;
    s.publish_version(BOT, "1.1.0").await;
    s.set_faults(json!({"readLagMs": 6000, "upgradeAtLatest": mode}))
        .await;
    s.create("bot-alice", for_user("alice@contoso.com")).await;
    s.wait_for_reason("bot-alice", "Upgrading").await;
    // The resource is re-created (a GitOps tool re-applying it, say): the new one knows of no
    // upgrade, reads the lagging version and asks again — Graph now upgrades an app that is
    // already at its latest version. (Two resources side by side would not: only the oldest
    // writes.)
    s.delete("bot-alice").await;
    s.wait_gone("bot-alice").await;
    s.create("bot-alice-again", for_user("alice@contoso.com"))
        .await;
    s.reasons_until_ready("bot-alice-again").await;
    let expected_second = if mode == "badRequest" { 400 } else { 204 };
    assert_eq!(s.upgrade_statuses().await, vec![204, expected_second]);
}

#[tokio::test]
async fn upgrading_an_app_already_at_latest_is_never_stalled_when_graph_says_400() {
    upgrade_at_latest_is_nothing_to_do("badRequest").await;
}

#[tokio::test]
async fn upgrading_an_app_already_at_latest_is_never_stalled_when_graph_says_204() {
    upgrade_at_latest_is_nothing_to_do("noContent").await;
}

#[tokio::test]
async fn unlicensed_users_and_missing_users_are_told_apart() {
    let s = Scenario::start("licence", &seed()).await;
    s.create("bot-erin", for_user("erin@contoso.com")).await;
    let obj = s.wait_for_reason("bot-erin", "UserNotLicensed").await;
    let stalled = condition(&obj, "Stalled").expect("Stalled");
    assert!(stalled.message.contains("license"), "{}", stalled.message);

    // A 404 on install while the catalog has the app: the user, not the app. The directory
    // knows bob, so it is Teams that does not know him yet: waited for, not Stalled.
    s.set_faults(json!({"failures": [
        {"method": "POST", "pathContains": "/users/bob@contoso.com/teamwork/installedApps",
         "status": 404, "code": "NotFound", "count": 1000},
    ]}))
    .await;
    s.create("bot-bob", for_user("bob@contoso.com")).await;
    let obj = s.wait_for_reason("bot-bob", "UserNotProvisioned").await;
    assert!(condition(&obj, "Reconciling").is_some());
    assert!(condition(&obj, "Stalled").is_none());
    // A user the directory does not know either is missing: Stalled.
    s.create("bot-nobody", for_user("nobody@contoso.com")).await;
    let obj = s.wait_for_reason("bot-nobody", "UserNotFound").await;
    assert!(condition(&obj, "Stalled").is_some());
}

#[tokio::test]
async fn transient_install_400s_are_retried_not_stalled() {
    let s = Scenario::start("transient400", &seed()).await;
    s.set_faults(json!({"failures": [
        {"method": "POST", "pathContains": "/users/bob@contoso.com/teamwork/installedApps",
         "status": 400, "code": "BadRequest", "count": 3,
         "message": "Failed to execute Skype backend request CreateThreadRequest."},
        {"method": "POST", "pathContains": "/users/carol@contoso.com/teamwork/installedApps",
         "status": 400, "code": "BadRequest", "count": 3,
         "message": "Request failed with: Failed to execute settings store request."},
    ]}))
    .await;
    for user in ["bob", "carol"] {
        s.create(
            &format!("bot-{user}"),
            for_user(&format!("{user}@contoso.com")),
        )
        .await;
    }
    for user in ["bob", "carol"] {
        s.reasons_until_ready(&format!("bot-{user}")).await;
        let installs = install_statuses(&s, &format!("{user}@contoso.com")).await;
        assert_eq!(installs, vec![400, 400, 400, 201], "{user}");
        assert_eq!(s.event_count(&format!("bot-{user}"), "Installed").await, 1);
    }
}

#[tokio::test]
async fn odd_identifiers_travel_intact() {
    let s = Scenario::start("identifiers", &seed()).await;
    let users = [
        "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "o'neil@contoso.com",
        "$adm@contoso.com",
    ];
    for (i, user) in users.iter().enumerate() {
        s.create(&format!("bot-{i}"), for_user(user)).await;
    }
    s.create(
        "quoted-app",
        json!({"user": "bob@contoso.com", "app": {"externalId": "it's.contoso.app"}}),
    )
    .await;
    for i in 0..users.len() {
        s.wait_for_reason(&format!("bot-{i}"), "UpToDate").await;
    }
    let obj = s.wait_for_reason("quoted-app", "UpToDate").await;
    assert_eq!(installed_version(&obj).as_deref(), Some("0.9"));

    // What Graph saw: each user as one whole key, the quote doubled inside the key form and
    // the filter, and no request that went astray.
    let log = s.graph_requests().await;
    let paths: Vec<&str> = log.iter().filter_map(|r| r["path"].as_str()).collect();
    for expected in [
        "/v1.0/users/ann_fabrikam.com#EXT#@contoso.onmicrosoft.com/teamwork/installedApps",
        "/v1.0/users/o'neil@contoso.com/teamwork/installedApps",
        "/v1.0/users('$adm@contoso.com')/teamwork/installedApps",
    ] {
        assert!(
            paths.contains(&expected),
            "no request to {expected}: {paths:?}"
        );
    }
    assert!(
        log.iter().any(|r| r["query"]
            .as_str()
            .is_some_and(|q| q.contains("externalId eq 'it''s.contoso.app'"))),
        "the catalog filter quotes the externalId: {log:?}"
    );
    // The simulator records the user as Graph decoded it: one whole UPN each.
    for user in users {
        assert!(
            log.iter().any(|r| r["user"].as_str() == Some(user)),
            "Graph never saw user {user}"
        );
    }
    let failed: Vec<&Value> = log
        .iter()
        .filter(|r| r["status"].as_u64().is_some_and(|st| st >= 400))
        .collect();
    assert!(failed.is_empty(), "requests Graph refused: {failed:?}");
}

#[tokio::test]
async fn self_only_permission_is_permission_denied_after_one_attempt() {
    let mut s = Scenario::start("selfonly", &seed()).await;
    s.stop_operator();
    let operator =
        s.spawn_operator_with_env("self-only", &[], &[("AZURE_CLIENT_ID", SELF_ONLY_CLIENT)]);
    s.create("bot-bob", for_user("bob@contoso.com")).await;
    let obj = s.wait_for_reason("bot-bob", "PermissionDenied").await;
    let stalled = condition(&obj, "Stalled").expect("Stalled");
    assert!(
        stalled.message.contains("not allowed to manage"),
        "{}",
        stalled.message
    );
    assert_eq!(install_statuses(&s, "bob@contoso.com").await, vec![403]);
    drop(operator);
}

#[tokio::test]
async fn versions_order_numerically_on_both_sides() {
    let s = Scenario::start("versions", &seed()).await;
    s.publish_version(BOT, "1.9.0").await;
    s.create("bot-alice", for_user("alice@contoso.com")).await;
    s.wait_for(
        "bot-alice",
        "at 1.9.0",
        std::time::Duration::from_secs(60),
        |o| installed_version(o).as_deref() == Some("1.9.0") && scenario::is_ready(o),
    )
    .await;
    s.publish_version(BOT, "1.10.0").await;
    s.wait_for(
        "bot-alice",
        "at 1.10.0",
        std::time::Duration::from_secs(60),
        |o| installed_version(o).as_deref() == Some("1.10.0") && scenario::is_ready(o),
    )
    .await;

    s.create(
        "its-bob",
        json!({"user": "bob@contoso.com", "app": {"id": QUOTED_APP}}),
    )
    .await;
    s.wait_for_reason("its-bob", "UpToDate").await;
    s.publish_version(QUOTED_APP, "0.10").await;
    s.wait_for(
        "its-bob",
        "at 0.10",
        std::time::Duration::from_secs(60),
        |o| installed_version(o).as_deref() == Some("0.10") && scenario::is_ready(o),
    )
    .await;
    assert_eq!(s.upgrade_statuses().await, vec![204, 204, 204]);
}
