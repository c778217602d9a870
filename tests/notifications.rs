//! Drift in seconds (issue 22), end to end: real kube-apiserver and etcd, graph-sim and the
//! operator binary receiving Graph's change notifications on `--notification-addr`. The
//! drift check is an hour away, so only a notification can explain a quick correction. Every
//! assertion on Graph is on the simulator's request and delivery logs.

mod scenario;
mod support;

use std::time::{Duration, Instant};

use scenario::{ALICE, BOT, Scenario, TENANT, default_seed, installed_version, is_ready};
use support::operator::free_port;

const WAIT: Duration = Duration::from_secs(60);

/// Graph requests for alice's installed apps: (method, time).
fn alice_calls(s: &Scenario) -> Vec<(String, jiff::Timestamp)> {
    s.sim
        .requests()
        .into_iter()
        .filter(|r| {
            r.path
                .contains("/users/alice@contoso.com/teamwork/installedApps")
        })
        .map(|r| (r.method.clone(), r.time))
        .collect()
}

fn reads(calls: &[(String, jiff::Timestamp)]) -> usize {
    calls.iter().filter(|(m, _)| m == "GET").count()
}

#[tokio::test]
async fn a_healthy_subscription_slows_the_drift_check_and_a_removed_one_rechecks_at_once() {
    let port = free_port();
    let (addr, url) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    );
    let args = [
        "--default-interval",
        "20s",
        "--min-interval",
        "10s",
        "--notification-resync",
        "1h",
        "--notification-addr",
        &addr,
        "--notification-url",
        &url,
    ];
    let s = Scenario::start_with("resync", &default_seed(), &args).await;
    s.create(
        "bot-alice",
        serde_json::json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for("bot-alice", "Ready", WAIT, is_ready).await;
    let id = s
        .until("a subscription", async || {
            let listed = s.subscriptions().await;
            listed
                .first()
                .and_then(|sub| sub["id"].as_str().map(String::from))
        })
        .await;
    // The check scheduled before the subscription was there runs at the 20 s interval; from
    // then on the resync period (1 h) holds: no drift-check read for 45 s.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let before = reads(&alice_calls(&s));
    tokio::time::sleep(Duration::from_secs(45)).await;
    let quiet = reads(&alice_calls(&s)) - before;
    assert_eq!(
        quiet,
        0,
        "drift checks while notifications are healthy\n{}",
        s.log_context()
    );

    // Graph removes the subscription: its resources look again at once, and a new one is made.
    s.sim
        .send_lifecycle(&id, graph_sim::LifecycleEvent::SubscriptionRemoved)
        .expect("lifecycle event");
    s.until("alice re-checked after the removal", async || {
        (reads(&alice_calls(&s)) > before).then_some(())
    })
    .await;
    s.until("a new subscription", async || {
        let listed = s.subscriptions().await;
        listed
            .iter()
            .any(|sub| sub["id"].as_str().is_some_and(|other| other != id))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_app_a_user_removed_is_back_within_seconds_and_our_own_writes_cost_no_extra_read() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("http://127.0.0.1:{port}");
    let s = Scenario::start_with(
        "notify",
        &default_seed(),
        &[
            "--default-interval",
            "1h",
            "--notification-addr",
            &addr,
            "--notification-url",
            &url,
        ],
    )
    .await;
    s.create(
        "bot-alice",
        serde_json::json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for("bot-alice", "Ready", WAIT, is_ready).await;

    // One subscription for the app, created once the resource found it in the catalog; Graph's
    // validation handshake went through the operator's receiver.
    s.until("a subscription", async || {
        let created = s.sim.requests().into_iter().filter(|r| {
            r.method == "POST" && r.path.ends_with("/subscriptions") && r.status == 201
        });
        (created.count() == 1).then_some(())
    })
    .await;

    // Alice removes the app herself. The drift check is an hour away.
    let removed = Instant::now();
    s.sim
        .uninstall_for_user(TENANT, ALICE, BOT)
        .expect("uninstall for alice");
    let delivered = s
        .until("the deleted notification delivered", async || {
            s.sim
                .notifications()
                .into_iter()
                .find(|n| n.change_type.as_deref() == Some("deleted"))
                .map(|n| n.status)
        })
        .await;
    assert_eq!(delivered, Some(202), "the receiver accepted it");
    let reinstalled = s
        .until("alice's app installed again", async || {
            let posts = alice_calls(&s)
                .into_iter()
                .filter(|(m, _)| m == "POST")
                .count();
            (posts == 1).then(|| removed.elapsed())
        })
        .await;
    println!("removed → installed again in {reinstalled:?}");
    assert!(reinstalled < Duration::from_secs(15), "{reinstalled:?}");
    let obj = s
        .wait_for("bot-alice", "Ready again", WAIT, |o| {
            is_ready(o) && installed_version(o).is_some()
        })
        .await;
    assert_eq!(installed_version(&obj).as_deref(), Some("1.0.0"));

    // The reinstall is notified too (`created`): the operator's own write, which its verify
    // read already covers — no read for alice beyond that one.
    s.until("the created notification delivered", async || {
        s.sim
            .notifications()
            .into_iter()
            .find(|n| n.change_type.as_deref() == Some("created"))
            .map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = alice_calls(&s);
    let post = calls
        .iter()
        .position(|(m, _)| m == "POST")
        .expect("the reinstall");
    let reads_after = calls[post..].iter().filter(|(m, _)| m == "GET").count();
    assert_eq!(reads_after, 1, "{calls:?}\n{}", s.log_context());

    // What the receiver did and the subscription's health, on /metrics.
    let metrics = s.operator().metrics().await;
    let value = |series: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    let accepted =
        r#"teams_app_operator_notifications_received_total{kind="change",result="accepted"}"#;
    assert!(value(accepted) >= 2.0, "{metrics}");
    assert_eq!(
        value(r#"teams_app_operator_subscriptions{state="healthy"}"#),
        1.0
    );
    let validations =
        r#"teams_app_operator_notifications_received_total{kind="validation",result="accepted"}"#;
    assert!(value(validations) >= 1.0);
}
