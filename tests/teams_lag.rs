//! Teams' own lag and refusals (issue 23), end to end: real kube-apiserver + etcd, graph-sim's
//! knobs (`teamsProvisioned`, `catalogLagMs`, `upgradeNoopCount`, tenant `blockedApps`, scripted
//! AADSTS token failures) and the operator binary. Each test follows a resource's reasons over
//! time, bounds the Graph calls it makes from the simulator's request log, and sees it recover
//! with no edit once the cause goes away.
//!
//! The call bounds are upper bounds over the time the test watched (a slow machine only makes
//! fewer calls), never assertions on how fast anything happened.

mod scenario;
mod support;

use std::time::{Duration, Instant};

use scenario::rollouts::{Rollouts, kstatus, ready as rollout_ready};
use scenario::{BOB, BOT, SECRET, Scenario, TENANT, condition, default_seed, installed_version};
use serde_json::{Value, json};
use teams_app_operator::api::TeamsAppInstallation;

/// A user the directory knows and Teams does not yet.
const CAROL: &str = "22222222-2222-2222-2222-222222222225";
/// An app the tenant publishes during a test.
const NEW_APP: &str = "33333333-3333-3333-3333-333333333334";

/// The drift interval the scenario's operator runs with (its test-speed default).
const INTERVAL_SECS: u64 = 3;

/// The scenario's tenant (alice has Contoso Bot 1.0.0, bob nothing) with carol, whom Teams has
/// not provisioned yet.
fn seed() -> String {
    let carol =
        format!("{{id: {CAROL}, userPrincipalName: carol@contoso.com, teamsProvisioned: false}}, ");
    let seed = default_seed().replacen("    users: [", &format!("    users: [{carol}"), 1);
    assert!(
        seed.contains(CAROL),
        "the default seed lists its users in one flow list"
    );
    seed
}

/// The Ready reason, and whether Reconciling / Stalled are True.
fn standing(obj: &TeamsAppInstallation) -> (String, bool, bool) {
    let is_true = |type_: &str| condition(obj, type_).is_some_and(|c| c.status == "True");
    (
        condition(obj, "Ready").map_or_else(String::new, |c| c.reason.clone()),
        is_true("Reconciling"),
        is_true("Stalled"),
    )
}

fn ready_message(obj: &TeamsAppInstallation) -> String {
    condition(obj, "Ready").map_or_else(String::new, |c| c.message.clone())
}

/// Every distinct Ready reason a resource shows, in order, sampled until `done` holds for it (or
/// the deadline passes, which fails the test with what was seen).
async fn reasons_until(
    s: &Scenario,
    name: &str,
    timeout: Duration,
    done: impl Fn(&TeamsAppInstallation) -> bool,
) -> Vec<(String, bool, bool)> {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<(String, bool, bool)> = Vec::new();
    loop {
        if let Some(obj) = s.api.get_opt(name).await.ok().flatten() {
            let now = standing(&obj);
            if !now.0.is_empty() && seen.last() != Some(&now) {
                seen.push(now);
            }
            if done(&obj) {
                return seen;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name}: reasons seen {seen:?}\n{}",
            s.log_context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn up_to_date(obj: &TeamsAppInstallation) -> bool {
    standing(obj).0 == "UpToDate"
}

/// The simulator's request log, filtered.
async fn calls(s: &Scenario, pick: impl Fn(&Value) -> bool) -> Vec<Value> {
    s.graph_requests().await.into_iter().filter(pick).collect()
}

fn path(r: &Value) -> &str {
    r["path"].as_str().unwrap_or_default()
}

fn is(r: &Value, method: &str) -> bool {
    r["method"] == method
}

/// At most one call per `every` over `elapsed`, plus `slack` (the first call, a look between
/// slots).
fn at_most(elapsed: Duration, every: Duration, slack: usize) -> usize {
    (elapsed.as_secs_f64() / every.as_secs_f64()).floor() as usize + slack
}

#[tokio::test]
async fn a_user_teams_has_not_provisioned_yet_is_waited_for_without_failing_the_rollout() {
    let s = Scenario::start("lag-user", &seed()).await;
    let rollouts = Rollouts::new(&s);
    let started = Instant::now();
    rollouts
        .create(
            "bot",
            json!({"app": {"id": BOT}, "audience": {"users": [BOB, CAROL]}, "maxFailures": 0}),
        )
        .await;
    // A user the directory does not know either stays what it was: Stalled UserNotFound.
    s.create(
        "nobody",
        json!({"user": "nobody@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    let carol = format!("bot-{CAROL}");
    let bob = format!("bot-{BOB}");

    let obj = s.wait_for_reason(&carol, "UserNotProvisioned").await;
    assert_eq!(standing(&obj), ("UserNotProvisioned".into(), true, false));
    assert!(
        ready_message(&obj).contains("24h"),
        "{}",
        ready_message(&obj)
    );
    s.wait_for_event(&carol, "UserNotProvisioned").await;
    s.wait_for_reason(&bob, "UpToDate").await;
    let nobody = s.wait_for_reason("nobody", "UserNotFound").await;
    assert_eq!(standing(&nobody), ("UserNotFound".into(), false, true));

    // Several retry periods: carol's resource keeps waiting, never Stalled, and the rollout
    // does not count it against maxFailures: in progress, not halted.
    let watch_until = Instant::now() + Duration::from_secs(4 * INTERVAL_SECS);
    while Instant::now() < watch_until {
        let obj = s.get(&carol).await;
        assert_eq!(standing(&obj), ("UserNotProvisioned".into(), true, false));
        let r = rollouts.get("bot").await;
        let reason = rollout_ready(&r).map(|c| c.reason.clone());
        assert_eq!(reason.as_deref(), Some("WaveInProgress"), "{r:?}");
        assert_eq!(kstatus(&r), "InProgress");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Retried on a backoff (here the resource's 3 s interval, the shortest it may be), not on
    // the failure backoff's seconds: one list (404) and one directory read per retry.
    let elapsed = started.elapsed();
    let carol_calls = calls(&s, |r| r["user"] == CAROL).await;
    let lists = carol_calls
        .iter()
        .filter(|r| path(r).contains("/installedApps"))
        .count();
    let directory = carol_calls.len() - lists;
    let bound = at_most(elapsed, Duration::from_secs(INTERVAL_SECS), 2);
    assert!(
        (1..=bound).contains(&lists) && directory <= lists + 2,
        "{lists} installedApps calls and {directory} directory reads for carol in {elapsed:?} (at most {bound})"
    );
    eprintln!(
        "figures: carol waiting {elapsed:.1?}: {lists} installedApps calls (404), {directory} directory reads"
    );
    assert!(
        carol_calls.iter().all(|r| !is(r, "POST")),
        "never an install while the list is 404"
    );

    // Teams provisions carol: installed, Ready, and the rollout completes, with no edit.
    s.sim_admin(
        reqwest::Method::PATCH,
        &format!("/_sim/tenants/{TENANT}/users/{CAROL}"),
        json!({"teamsProvisioned": true}),
    )
    .await;
    let reasons = reasons_until(&s, &carol, Duration::from_secs(60), up_to_date).await;
    assert!(
        reasons.iter().all(|(_, _, stalled)| !stalled),
        "{reasons:?}"
    );
    rollouts
        .wait_for_reason("bot", "RolloutComplete", Duration::from_secs(60))
        .await;
    let installs = calls(&s, |r| {
        r["user"] == CAROL && is(r, "POST") && path(r).ends_with("/installedApps")
    })
    .await;
    assert_eq!(installs.len(), 1, "{installs:?}");
    assert_eq!(
        s.get("nobody")
            .await
            .status
            .and_then(|st| st.installation_id),
        None
    );
}

#[tokio::test]
async fn an_app_or_version_the_catalog_does_not_show_yet_is_picked_up_without_an_edit() {
    let s = Scenario::start("lag-catalog", &seed()).await;
    // Everything published from now on shows in catalog reads 8 s later.
    s.sim_admin(
        reqwest::Method::PATCH,
        &format!("/_sim/tenants/{TENANT}"),
        json!({"catalogLagMs": 8000}),
    )
    .await;
    s.sim_admin(
        reqwest::Method::POST,
        &format!("/_sim/tenants/{TENANT}/apps"),
        json!({"id": NEW_APP, "externalId": "com.contoso.new", "displayName": "Contoso New",
               "distributionMethod": "organization",
               "definitions": [{"version": "1.0.0", "publishingState": "published"}]}),
    )
    .await;
    s.publish_version(BOT, "1.1.0").await;
    let started = Instant::now();
    s.create(
        "new-bob",
        json!({"user": "bob@contoso.com", "app": {"externalId": "com.contoso.new"}}),
    )
    .await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}, "targetVersion": "1.1.0"}),
    )
    .await;

    let (app, version) = tokio::join!(
        reasons_until(&s, "new-bob", Duration::from_secs(60), up_to_date),
        reasons_until(&s, "bot-alice", Duration::from_secs(60), up_to_date),
    );
    let elapsed = started.elapsed();
    // Meanwhile: the app is AppNotFound (Stalled: nothing tells a typo from a catalog that
    // lags), the version WaitingForCatalogVersion (Reconciling); both recover by themselves.
    assert_eq!(
        app.first(),
        Some(&("AppNotFound".into(), false, true)),
        "{app:?}"
    );
    assert_eq!(
        version.first(),
        Some(&("WaitingForCatalogVersion".into(), true, false)),
        "{version:?}"
    );
    assert_eq!(
        installed_version(&s.get("bot-alice").await).as_deref(),
        Some("1.1.0")
    );

    // One install, one upgrade; the catalog read at most once per look of each resource.
    let log = s.graph_requests().await;
    let count = |pick: &dyn Fn(&Value) -> bool| log.iter().filter(|r| pick(r)).count();
    assert_eq!(
        count(&|r| is(r, "POST") && path(r).ends_with("/installedApps")),
        1
    );
    assert_eq!(
        count(&|r| is(r, "POST") && path(r).ends_with("/upgrade")),
        1
    );
    let catalog_reads = count(&|r| path(r).contains("/appCatalogs/"));
    let bound = 2 * at_most(elapsed, Duration::from_secs(1), 2);
    eprintln!(
        "figures: catalog lag, both up to date after {elapsed:.1?}: {catalog_reads} catalog reads, {} Graph calls in all",
        log.len()
    );
    assert!(
        catalog_reads <= bound,
        "{catalog_reads} catalog reads in {elapsed:?} (at most {bound})"
    );
}

#[tokio::test]
async fn an_upgrade_graph_accepts_but_does_not_apply_is_asked_again_once_per_window() {
    let window = Duration::from_secs(3);
    let s = Scenario::start_with("lag-noop", &seed(), &["--write-verify-window", "3s"]).await;
    s.set_faults(json!({"upgradeNoopCount": 1000})).await;
    s.publish_version(BOT, "1.1.0").await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;

    // Watch until it has asked three times: Upgrading all along, never Stalled.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_upgrade: Option<Instant> = None;
    let upgrades = loop {
        let n = s.count_requests("POST", "/upgrade").await;
        if n > 0 && first_upgrade.is_none() {
            first_upgrade = Some(Instant::now());
        }
        let obj = s.get("bot-alice").await;
        let (reason, _, stalled) = standing(&obj);
        assert!(!stalled && reason != "UpToDate", "{reason}");
        if n >= 3 {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "{n} upgrades\n{}",
            s.log_context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = first_upgrade.map(|t| t.elapsed()).unwrap_or_default();
    // Observed after the first call: one more allowed for the part of its window not seen.
    let bound = at_most(elapsed, window, 2);
    eprintln!(
        "figures: {upgrades} upgrade calls (204, not applied) in {elapsed:.1?} after the first"
    );
    assert!(
        upgrades <= bound,
        "{upgrades} upgrade calls in {elapsed:?} (at most {bound}): asked in a loop"
    );
    assert_eq!(standing(&s.get("bot-alice").await).0, "Upgrading");
    s.wait_for_event("bot-alice", "UpgradeNotApplied").await;
    let event = s
        .events("bot-alice")
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("UpgradeNotApplied"))
        .expect("the Event");
    let note = event.note.unwrap_or_default();
    assert!(note.contains("1.1.0") && note.contains("1.0.0"), "{note}");

    // Graph applies upgrades again: the next window's call takes, with no edit.
    s.set_faults(json!({})).await;
    s.wait_for_reason("bot-alice", "UpToDate").await;
    s.wait_for_event("bot-alice", "Upgraded").await;
    let done = s.count_requests("POST", "/upgrade").await;
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL_SECS)).await;
    assert_eq!(
        s.count_requests("POST", "/upgrade").await,
        done,
        "no call once it shows"
    );
    assert_eq!(s.upgrade_statuses().await.last(), Some(&204));
}

#[tokio::test]
async fn an_app_blocked_tenant_wide_is_blocked_by_policy_until_unblocked() {
    let s = Scenario::start("lag-blocked", &seed()).await;
    s.sim_admin(
        reqwest::Method::PATCH,
        &format!("/_sim/tenants/{TENANT}"),
        json!({"blockedApps": [BOT]}),
    )
    .await;
    s.publish_version(BOT, "1.1.0").await;
    let started = Instant::now();
    s.create(
        "bot-bob",
        json!({"user": "bob@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;

    for name in ["bot-bob", "bot-alice"] {
        let obj = s.wait_for_reason(name, "BlockedByPolicy").await;
        assert_eq!(standing(&obj), ("BlockedByPolicy".into(), false, true));
        let message = ready_message(&obj);
        assert!(
            message.contains("403") && message.contains("tenant admin"),
            "{message}"
        );
        s.wait_for_event(name, "BlockedByPolicy").await;
    }
    // Stalled, it is re-checked on its user's slot, at most one interval apart: one write
    // attempt per look, never a retry loop.
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL_SECS)).await;
    let elapsed = started.elapsed();
    let bound = at_most(elapsed, Duration::from_secs(INTERVAL_SECS), 2);
    let installs = s.statuses("POST", "", "/installedApps").await;
    let upgrades = s.upgrade_statuses().await;
    eprintln!("figures: blocked {elapsed:.1?}: installs {installs:?}, upgrades {upgrades:?}");
    assert!(
        installs.iter().all(|st| *st == 403) && (1..=bound).contains(&installs.len()),
        "installs {installs:?} in {elapsed:?} (at most {bound})"
    );
    assert!(
        upgrades.iter().all(|st| *st == 403) && (1..=bound).contains(&upgrades.len()),
        "upgrades {upgrades:?} in {elapsed:?} (at most {bound})"
    );

    // The admin unblocks the app: both recover at their next look, with no edit.
    s.sim_admin(
        reqwest::Method::PATCH,
        &format!("/_sim/tenants/{TENANT}"),
        json!({"blockedApps": []}),
    )
    .await;
    for name in ["bot-bob", "bot-alice"] {
        let obj = s.wait_for_reason(name, "UpToDate").await;
        assert_eq!(installed_version(&obj).as_deref(), Some("1.1.0"));
    }
    let installs = s.statuses("POST", "", "/installedApps").await;
    assert_eq!(installs.iter().filter(|st| **st == 201).count(), 1);
    let upgrades = s.upgrade_statuses().await;
    assert_eq!(upgrades.iter().filter(|st| **st == 204).count(), 1);
}

#[tokio::test]
async fn an_aadsts_refusal_shows_as_authentication_failed_and_passes_when_entra_does() {
    let s = Scenario::start("lag-aadsts", &seed()).await;
    // Signed in and working: an up-to-date resource.
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for_reason("bot-alice", "UpToDate").await;
    // Entra refuses the operator's credential from now on; the token it holds stops working.
    s.set_faults(
        json!({"failures": [{"pathContains": "/oauth2/", "status": 400,
        "code": "invalid_client", "aadsts": 700213, "count": 100000}]}),
    )
    .await;
    s.sim_admin(reqwest::Method::POST, "/_sim/tokens/expire", json!({}))
        .await;
    let started = Instant::now();
    s.create(
        "bot-bob",
        json!({"user": "bob@contoso.com", "app": {"id": BOT}}),
    )
    .await;

    let obj = s.wait_for_reason("bot-bob", "AuthenticationFailed").await;
    // The operator's credential, not the resource: Reconciling, retried on the resource's
    // backoff, and fixed once for every resource by whoever owns the app registration.
    assert_eq!(standing(&obj), ("AuthenticationFailed".into(), true, false));
    let message = ready_message(&obj);
    assert!(
        message.contains("AADSTS700213")
            && message.contains("No matching federated identity record found"),
        "{message}"
    );
    assert!(!message.contains(SECRET), "no secret in status: {message}");
    s.wait_for_event("bot-bob", "AuthenticationFailed").await;
    assert!(!s.operator_log().contains(SECRET), "no secret in the log");

    // A few retries: token requests stay one per standing failure (1–2 s), never one per call.
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL_SECS)).await;
    let elapsed = started.elapsed();
    let tokens = calls(&s, |r| path(r).contains("/oauth2/") && r["status"] == 400).await;
    let bound = at_most(elapsed, Duration::from_secs(1), 2);
    eprintln!(
        "figures: token refused {elapsed:.1?}: {} token requests (400 AADSTS700213)",
        tokens.len()
    );
    assert!(
        (1..=bound).contains(&tokens.len()),
        "{} refused token requests in {elapsed:?} (at most {bound})",
        tokens.len()
    );
    assert_eq!(s.count_requests("POST", "/installedApps").await, 0);
    // A routine check of an up-to-date resource that cannot sign in changes nothing known about
    // the install: still Ready, and a Warning Event says why the check failed.
    s.wait_for_event("bot-alice", "AuthenticationFailed").await;
    assert_eq!(standing(&s.get("bot-alice").await).0, "UpToDate");

    // Entra accepts the credential again: the resource recovers on its own.
    s.set_faults(json!({})).await;
    let reasons = reasons_until(&s, "bot-bob", Duration::from_secs(90), up_to_date).await;
    assert!(
        reasons.iter().all(|(_, _, stalled)| !stalled),
        "{reasons:?}"
    );
}
