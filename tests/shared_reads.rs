//! Graph's budget is spent per call: one list of a user's installed apps serves every resource
//! that names the user, a write makes the next read fresh (and that read serves the user's other
//! resources), a user's resources reconciled side by side share one list and one read after
//! their writes, a reconcile request reads afresh, and a list older than its bound is never used.
//! Counted on the simulator's request log, on the real API server with the operator binary.

mod scenario;
mod support;

use std::time::Duration;

use scenario::{BOT, Scenario, TENANT, installed_version, is_ready};
use serde_json::json;

const APPS: [&str; 4] = [
    BOT,
    "33333333-3333-3333-3333-333333333334",
    "33333333-3333-3333-3333-333333333335",
    "33333333-3333-3333-3333-333333333336",
];
const ALICE_LIST: &str = "/users/alice@contoso.com/teamwork/installedApps";

/// alice has four apps, each at its latest version 1.0.0.
fn seed() -> String {
    seed_where(&APPS)
}

/// Four apps at 1.0.0; alice has `installed` of them, at 1.0.0.
fn seed_where(installed: &[&str]) -> String {
    let apps: String = APPS
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                "      - {{id: {id}, externalId: app{i}, displayName: App {i}, distributionMethod: organization, definitions: [{{version: \"1.0.0\", publishingState: published}}]}}\n"
            )
        })
        .collect();
    let installs: String = installed
        .iter()
        .map(|id| format!("      - {{user: alice@contoso.com, app: {id}, version: \"1.0.0\"}}\n"))
        .collect();
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients: [{{id: 11111111-1111-1111-1111-111111111111, secret: s3cret}}]
    users: [{{id: 22222222-2222-2222-2222-222222222222, userPrincipalName: alice@contoso.com}}]
    apps:
{apps}    installations:
{installs}"#
    )
}

/// GETs of alice's installed apps (list or one) Graph served.
async fn alice_reads(s: &Scenario) -> usize {
    s.count_requests("GET", ALICE_LIST).await
}

async fn create_for_alice(s: &Scenario, name: &str, app: &str) {
    s.create(
        name,
        json!({"user": "alice@contoso.com", "app": {"id": app}}),
    )
    .await;
}

async fn request_reconcile(s: &Scenario, name: &str, value: &str) {
    s.api
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {
                "teamsapps.dev/reconcile-requested-at": value
            }}})),
        )
        .await
        .expect("annotate");
    s.wait_for(name, "re-checked", Duration::from_secs(60), |o| {
        o.status
            .as_ref()
            .and_then(|st| st.last_handled_reconcile_at.as_deref())
            == Some(value)
    })
    .await;
}

#[tokio::test]
async fn one_list_read_serves_all_of_a_users_resources() {
    let s = Scenario::start_with(
        "oneread",
        &seed(),
        &[
            "--user-snapshot-ttl",
            "1h",
            "--catalog-cache-ttl",
            "1h",
            "--default-interval",
            "1h",
        ],
    )
    .await;
    for (i, app) in APPS.iter().enumerate() {
        create_for_alice(&s, &format!("app{i}-alice"), app).await;
    }
    for i in 0..APPS.len() {
        s.wait_for_reason(&format!("app{i}-alice"), "UpToDate")
            .await;
    }
    assert_eq!(alice_reads(&s).await, 1, "one list for four resources");

    // Someone asks for a fresh look: that one reads afresh.
    request_reconcile(&s, "app2-alice", "now").await;
    assert_eq!(alice_reads(&s).await, 2);

    // A write for alice invalidates her list: the verifying re-read is fresh, and it serves the
    // next resource of hers without another read.
    s.publish_version(BOT, "1.1.0").await;
    request_reconcile(&s, "app0-alice", "upgrade-now").await;
    s.wait_for("app0-alice", "at 1.1.0", Duration::from_secs(60), |o| {
        is_ready(o) && installed_version(o).as_deref() == Some("1.1.0")
    })
    .await;
    assert_eq!(s.count_requests("POST", "/upgrade").await, 1);
    let after_upgrade = alice_reads(&s).await;
    assert!(
        after_upgrade >= 4,
        "the request-time read, then at least one fresh re-read: {after_upgrade}"
    );
    // A second resource for the same installation only reads (the first owns it): Ready as a
    // duplicate, from the same read.
    create_for_alice(&s, "app0-alice-again", BOT).await;
    let again = s
        .wait_for_reason("app0-alice-again", "DuplicateInstallation")
        .await;
    assert!(is_ready(&again));
    assert_eq!(
        installed_version(&again).as_deref(),
        Some("1.1.0"),
        "the post-write read, not the list from before the upgrade"
    );
    assert_eq!(alice_reads(&s).await, after_upgrade, "served by that read");
}

/// All four of alice's resources are there when the operator starts, so they are reconciled side
/// by side: one list serves the four, and after their four writes (one install, three upgrades)
/// one read verifies them all.
#[tokio::test]
async fn a_users_resources_reconciled_together_cost_one_list_and_one_verify_read() {
    let mut s = Scenario::start("together", &seed_where(&APPS[1..])).await;
    s.stop_operator();
    for app in &APPS[1..] {
        s.publish_version(app, "1.1.0").await;
    }
    for (i, app) in APPS.iter().enumerate() {
        create_for_alice(&s, &format!("app{i}-alice"), app).await;
    }
    // Graph's latency, and no client-side pacing: the four reconciles overlap as they do at
    // scale, where each call waits for its turn in the budget.
    s.set_faults(json!({"latencyMs": 100})).await;
    s.start_operator(&[
        "--graph-read-rps",
        "0",
        "--graph-write-rps",
        "0",
        "--catalog-cache-ttl",
        "1h",
        "--default-interval",
        "1h",
    ]);
    for i in 0..APPS.len() {
        let want = if i == 0 { "1.0.0" } else { "1.1.0" };
        s.wait_for(
            &format!("app{i}-alice"),
            "up to date",
            Duration::from_secs(60),
            |o| is_ready(o) && installed_version(o).as_deref() == Some(want),
        )
        .await;
    }
    assert_eq!(s.count_requests("POST", "/upgrade").await, 3);
    assert_eq!(
        s.statuses("POST", ALICE_LIST, "/installedApps").await,
        [201],
        "one install"
    );
    assert_eq!(
        alice_reads(&s).await,
        2,
        "one list for the four resources, one read after their writes"
    );
}

#[tokio::test]
async fn a_list_older_than_its_bound_is_never_used() {
    let s = Scenario::start_with(
        "bound",
        &seed(),
        &[
            "--user-snapshot-ttl",
            "2s",
            "--catalog-cache-ttl",
            "1h",
            "--default-interval",
            "1h",
        ],
    )
    .await;
    create_for_alice(&s, "app0-alice", APPS[0]).await;
    s.wait_for_reason("app0-alice", "UpToDate").await;
    assert_eq!(alice_reads(&s).await, 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    create_for_alice(&s, "app1-alice", APPS[1]).await;
    s.wait_for_reason("app1-alice", "UpToDate").await;
    assert_eq!(
        alice_reads(&s).await,
        2,
        "the two-second-old list was read again"
    );
}
