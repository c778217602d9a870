//! Drift in seconds (issue 22), end to end: real kube-apiserver and etcd, graph-sim and the
//! operator binary receiving Graph's change notifications on `--notification-addr`. The
//! drift check is an hour away, so only a notification can explain a quick correction. Every
//! assertion on Graph is on the simulator's request and delivery logs.

mod scenario;
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use scenario::{
    ALICE, BOT, CLIENT_ID, SECRET, Scenario, TENANT, default_seed, installed_version, is_ready,
};
use support::operator::{Operator, free_port};
use teams_app_operator::api::GraphConnection;

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
    s.bot_for_alice_ready(WAIT).await;
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
    s.bot_for_alice_ready(WAIT).await;

    // One subscription for the app, created once the resource found it in the catalog; Graph's
    // validation handshake went through the operator's receiver.
    s.until("a subscription", async || {
        (subscriptions_created(&s) == 1).then_some(())
    })
    .await;

    // Alice removes the app herself. The drift check is an hour away.
    let (reinstalled, delivered) = removed_and_reinstalled(&s, 0).await;
    assert_eq!(delivered, Some(202), "the receiver accepted it");
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
    let value = metrics(s.operator()).await;
    assert!(value(ACCEPTED) >= 2.0);
    assert_eq!(value(HEALTHY), 1.0);
    // The removal's correction was timed; its own `created` echo needed none.
    assert_eq!(
        value("teams_app_operator_notification_correction_seconds_count"),
        1.0
    );
    let validations =
        r#"teams_app_operator_notifications_received_total{kind="validation",result="accepted"}"#;
    assert!(value(validations) >= 1.0);
}

const ACCEPTED: &str =
    r#"teams_app_operator_notifications_received_total{kind="change",result="accepted"}"#;
const FORWARDED: &str =
    r#"teams_app_operator_notifications_received_total{kind="notification",result="forwarded"}"#;
const HEALTHY: &str = r#"teams_app_operator_subscriptions{state="healthy"}"#;

/// An operator's metrics: series → value (panics, showing them all, on a missing series).
async fn metrics(operator: &Operator) -> impl Fn(&str) -> f64 {
    let text = operator.metrics().await;
    move |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }
}

/// Subscriptions Graph granted (`POST /subscriptions` answered 201).
fn subscriptions_created(s: &Scenario) -> usize {
    (s.sim.requests().into_iter())
        .filter(|r| r.method == "POST" && r.path.ends_with("/subscriptions") && r.status == 201)
        .count()
}

/// Removes alice's app out of band and waits for the operator to install it again: the time
/// it took, and the delivery's answer.
async fn removed_and_reinstalled(s: &Scenario, installs_before: usize) -> (Duration, Option<u16>) {
    s.sim.clear_notifications();
    let removed = jiff::Timestamp::now();
    s.sim
        .uninstall_for_user(TENANT, ALICE, BOT)
        .expect("uninstall for alice");
    let delivered = s
        .until("the deleted notification delivered", async || {
            (s.sim.notifications().into_iter())
                .find(|n| n.change_type.as_deref() == Some("deleted") && n.status.is_some())
                .map(|n| n.status)
        })
        .await;
    let took = s
        .until("alice's app installed again", async || {
            // Timed by the simulator's log: the install request's arrival.
            let posts: Vec<_> = (alice_calls(s).into_iter())
                .filter(|(m, _)| m == "POST")
                .collect();
            let (_, at) = posts.get(installs_before)?;
            Some(at.duration_since(removed).unsigned_abs())
        })
        .await;
    (took, delivered)
}

#[tokio::test]
async fn a_notification_the_standby_receives_reaches_the_leader_and_a_new_leader_keeps_the_subscription()
 {
    let mut s = Scenario::start("notify-ha", &default_seed()).await;
    s.stop_operator();
    let (port_a, port_b) = (free_port(), free_port());
    let (addr_a, addr_b) = (format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}"));
    // Graph reaches only replica B (the public URL is B's): whichever leads, B receives.
    let public = format!("http://{addr_b}");
    let replica = |instance: &'static str, addr: &str| -> Vec<String> {
        let args = [
            "--default-interval",
            "1h",
            "--leader-elect",
            "--lease-name",
            "tao",
            "--lease-duration",
            "4s",
            "--lease-namespace",
            &s.namespace,
            "--instance",
            instance,
            "--notification-addr",
            addr,
            "--notification-url",
            &public,
        ];
        args.iter().map(|a| a.to_string()).collect()
    };
    let args_a = replica("replica-a", &addr_a);
    let mut a = s.spawn_operator(
        "replica-a",
        &args_a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    s.until("replica A leads", async || {
        (s.lease_holder().await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let args_b = replica("replica-b", &addr_b);
    let mut b = s.spawn_operator(
        "replica-b",
        &args_b.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    s.until("replica B listens", async || {
        std::net::TcpStream::connect(&addr_b).ok().map(drop)
    })
    .await;

    s.bot_for_alice_ready(WAIT).await;
    s.until("a subscription", async || {
        (subscriptions_created(&s) == 1).then_some(())
    })
    .await;
    // The leader keeps it in the Secret, with where to forward to.
    let kept = s
        .until("the subscription kept in its Secret", async || {
            let secret = Api::<Secret>::namespaced(s.client.clone(), &s.namespace)
                .get_opt("teams-app-operator-subscriptions")
                .await
                .expect("read the Secret")?;
            let data = secret.data?;
            let list: Vec<serde_json::Value> =
                serde_json::from_slice(&data.get("subscriptions.json")?.0).ok()?;
            let leader = String::from_utf8(data.get("leader")?.0.clone()).ok()?;
            (list.len() == 1).then_some((list, leader))
        })
        .await;
    assert_eq!(kept.1, format!("http://{addr_a}/"));
    assert_eq!(kept.0[0]["teamsAppId"], BOT);

    // Alice removes the app; Graph tells B, the standby, which forwards to A.
    let (took, answer) = removed_and_reinstalled(&s, 0).await;
    println!("through the standby: removed → installed again in {took:?}");
    assert_eq!(answer, Some(202), "B accepted it for the leader");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(metrics(&b).await(FORWARDED) >= 1.0);
    assert!(metrics(&a).await(ACCEPTED) >= 1.0);

    // A dies without releasing the Lease; B takes over and goes on with A's subscription
    // instead of making another.
    a.kill();
    s.until("replica B leads", async || {
        (s.lease_holder().await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    s.until("B adopted the subscription", async || {
        b.log()
            .contains("adopted a kept subscription")
            .then_some(())
    })
    .await;
    let (took, answer) = removed_and_reinstalled(&s, 1).await;
    println!("after the takeover: removed → installed again in {took:?}");
    assert_eq!(answer, Some(202));
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(subscriptions_created(&s), 1, "no second subscription");
    assert_eq!(metrics(&b).await(HEALTHY), 1.0);
    b.kill();
}

/// A GraphConnection's status shows the subscription made through it: its app, Graph's id, its
/// expiry and health, soon after it is made (the connection is looked at again for it).
#[tokio::test]
async fn a_graph_connection_shows_the_subscription_made_through_it() {
    let port = free_port();
    let (addr, url) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    );
    let args = [
        "--notification-addr",
        addr.as_str(),
        "--notification-url",
        url.as_str(),
    ];
    let s = Scenario::start_with("notify-conn", &default_seed(), &args).await;
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.namespace);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "graph"},
        "stringData": {"client-secret": SECRET},
    }))
    .expect("a Secret");
    secrets
        .create(&Default::default(), &secret)
        .await
        .expect("create the Secret");
    let connections: Api<GraphConnection> = Api::namespaced(s.client.clone(), &s.namespace);
    let connection: GraphConnection = serde_json::from_value(serde_json::json!({
        "apiVersion": "teamsapps.dev/v1alpha1",
        "kind": "GraphConnection",
        "metadata": {"name": "graph"},
        "spec": {
            "tenantId": TENANT, "clientId": CLIENT_ID,
            "credential": {"secretRef": {"name": "graph", "key": "client-secret"}},
            "graphUrl": s.sim.base_url(), "loginUrl": s.sim.base_url(),
        },
    }))
    .expect("a GraphConnection");
    connections
        .create(&Default::default(), &connection)
        .await
        .expect("create the GraphConnection");
    s.create(
        "bot-alice",
        serde_json::json!({"user": "alice@contoso.com", "app": {"id": BOT},
            "connectionRef": {"kind": "GraphConnection", "name": "graph"}}),
    )
    .await;
    s.wait_for("bot-alice", "Ready", WAIT, is_ready).await;
    let id = s
        .until("a subscription", async || {
            let listed = s.subscriptions().await;
            (listed.first()).and_then(|sub| sub["id"].as_str().map(String::from))
        })
        .await;
    let shown = s
        .until("the subscription on the connection's status", async || {
            let status = connections.get("graph").await.ok()?.status?;
            status.subscriptions.into_iter().next()
        })
        .await;
    assert_eq!(shown.teams_app_id, BOT);
    assert_eq!(shown.id.as_deref(), Some(id.as_str()));
    assert_eq!(shown.health, "Healthy");
    assert!(shown.expires_at.is_some() && shown.message.is_none());
}
