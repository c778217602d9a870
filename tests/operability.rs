//! What a platform team checks before running the operator: metrics that move, health probes
//! that tell the truth, leader election with no two writers, logs without secrets. Real
//! kube-apiserver + etcd, graph-sim, and the operator binary as it runs in production.

mod scenario;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use scenario::{BOT, CLIENT_ID, Operator, Scenario, TENANT, default_seed, is_ready};
use serde_json::{Value, json};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

// ------------------------------------------------------------------------------------- metrics

async fn scrape(operator: &Operator) -> String {
    let res = reqwest::get(format!("{}/metrics", operator.telemetry_url()))
        .await
        .expect("GET /metrics");
    assert_eq!(res.status(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    res.text().await.expect("metrics body")
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

/// Scrapes until `check` holds (metrics are read while the operator keeps working).
async fn scrape_until(operator: &Operator, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(operator).await;
        if check(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

const RECONCILE_SUCCESS: &str =
    r#"controller_runtime_reconcile_total{controller="teamsappinstallation",result="success"}"#;
const RECONCILE_ERRORS: &str =
    r#"controller_runtime_reconcile_errors_total{controller="teamsappinstallation"}"#;

#[tokio::test]
async fn metrics_move_as_resources_reconcile_and_graph_throttles() {
    let s = Scenario::start("metrics", &default_seed()).await;
    s.publish_version(BOT, "1.1.0").await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for_reason("bot-alice", "UpToDate").await;

    // The state gauge follows the status write, the reconcile counter the reconcile's return a
    // moment later: wait for both.
    let text = scrape_until(s.operator(), "the ready resource, counted", |t| {
        sample(t, r#"teams_app_operator_resources{state="ready"}"#) == Some(1.0)
            && sample(t, RECONCILE_SUCCESS).is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(
        value(
            &text,
            r#"controller_runtime_reconcile_time_seconds_count{controller="teamsappinstallation"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &text,
            r#"controller_runtime_active_workers{controller="teamsappinstallation"}"#
        )
        .is_some()
    );
    assert_eq!(
        value(
            &text,
            r#"controller_runtime_max_concurrent_reconciles{controller="teamsappinstallation"}"#
        ),
        16.0
    );
    assert_eq!(
        value(
            &text,
            r#"teams_app_operator_graph_requests_total{operation="upgrade",code="204",connection="default"}"#
        ),
        1.0
    );
    assert!(
        value(
            &text,
            r#"teams_app_operator_graph_token_refreshes_total{result="success",connection="default"}"#
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            r#"teams_app_operator_graph_request_duration_seconds_count{operation="catalog_app",connection="default"}"#
        ) >= 1.0
    );

    // Graph throttles the next resource's reads twice: the 429s are counted, and so is the time
    // the tenant's requests then spend waiting out Retry-After (0.3 s: within the call).
    s.set_faults(json!({"failures": [{"method": "GET", "pathContains": "/installedApps", "status": 429, "count": 2, "retryAfter": 0.3}]}))
        .await;
    s.create(
        "bot-bob",
        json!({"user": "bob@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for_reason("bot-bob", "UpToDate").await;
    // Graph unavailable for bob: each of his resource's reconciles fails at its first 503 (no
    // retry within the call) and is retried on its backoff (its Ready stays True: a routine
    // re-check found nothing wrong with the install).
    s.set_faults(json!({"failures": [{"pathContains": "/users/bob@contoso.com/", "status": 503, "count": 1000}]}))
        .await;
    scrape_until(s.operator(), "failed reconciles", |t| {
        let unavailable =
            r#"teams_app_operator_graph_requests_total{operation="list_installations",code="503",connection="default"}"#;
        sample(t, RECONCILE_ERRORS).is_some_and(|n| n >= 2.0)
            && sample(t, unavailable).is_some_and(|n| n >= 2.0)
    })
    .await;
    s.set_faults(json!({})).await;
    // An unknown user stalls.
    s.create(
        "nobody",
        json!({"user": "nobody@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for_reason("nobody", "UserNotFound").await;

    let text = scrape_until(s.operator(), "the stalled resource", |t| {
        sample(t, r#"teams_app_operator_resources{state="stalled"}"#) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(
            &text,
            r#"teams_app_operator_graph_throttled_total{operation="list_installations",connection="default"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            r#"teams_app_operator_graph_requests_total{operation="list_installations",code="429",connection="default"}"#
        ),
        2.0
    );
    assert!(
        value(
            &text,
            r#"teams_app_operator_graph_budget_wait_seconds_count{class="installed_apps_read",connection="default"}"#
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            r#"teams_app_operator_graph_budget_wait_seconds_sum{class="installed_apps_read",connection="default"}"#
        ) > 0.0
    );
    assert_eq!(
        value(&text, r#"teams_app_operator_resources{state="ready"}"#),
        2.0
    );
    assert!(
        value(
            &text,
            r#"teams_app_operator_graph_requests_total{operation="list_installations",code="503",connection="default"}"#
        ) >= 2.0
    );
    assert!(
        value(
            &text,
            r#"teams_app_operator_graph_requests_total{operation="list_installations",code="404",connection="default"}"#
        ) >= 1.0
    );

    // Labels stay low-cardinality: no object, user or app names, no error texts.
    for needle in [
        "bot-alice",
        "nobody",
        "contoso",
        BOT,
        "request-id",
        "not found",
    ] {
        assert!(
            !text.contains(needle),
            "{needle:?} leaked into a label:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------- readiness

/// A TCP forwarder to the API server. It holds every connection until opened (the operator is
/// up, its probes answer, but it cannot list resources yet), and can be cut (a network
/// partition: open connections are dropped, new ones closed at once).
struct GatedProxy {
    port: u16,
    state: watch::Sender<Gate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Held,
    Open,
    Cut,
}

impl GatedProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (state, gate) = watch::channel(Gate::Held);
        let upstream = Arc::new(upstream);
        tokio::spawn(async move {
            while let Ok((mut downstream, _)) = listener.accept().await {
                let (mut gate, upstream) = (gate.clone(), upstream.clone());
                tokio::spawn(async move {
                    match gate.wait_for(|g| *g != Gate::Held).await.map(|g| *g) {
                        Ok(Gate::Open) => {}
                        _ => return,
                    }
                    let Ok(mut up) = TcpStream::connect(upstream.as_str()).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut downstream, &mut up) => {}
                        _ = gate.wait_for(|g| *g == Gate::Cut) => {}
                    }
                });
            }
        });
        Self { port, state }
    }

    fn open(&self) {
        let _ = self.state.send(Gate::Open);
    }

    fn cut(&self) {
        let _ = self.state.send(Gate::Cut);
    }
}

/// `HOST:PORT` of the control plane's API server, from its kubeconfig.
fn api_server_address() -> String {
    std::fs::read_to_string(support::kubeconfig_path())
        .expect("read kubeconfig")
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://").map(str::to_owned))
        .expect("kubeconfig names its server")
}

/// The control plane's kubeconfig with its server replaced by `https://127.0.0.1:PORT` (the
/// serving certificate is for 127.0.0.1, whatever the port).
fn kubeconfig_via(port: u16) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(support::kubeconfig_path()).expect("read kubeconfig");
    let rewritten = text.replace(
        &format!("server: https://{}", api_server_address()),
        &format!("server: https://127.0.0.1:{port}"),
    );
    let file = tempfile::NamedTempFile::new().expect("temporary kubeconfig");
    std::fs::write(file.path(), rewritten).expect("write kubeconfig");
    file
}

async fn probe(operator: &Operator, path: &str) -> Option<(u16, String)> {
    let res = reqwest::get(format!("{}{path}", operator.telemetry_url()))
        .await
        .ok()?;
    let status = res.status().as_u16();
    Some((status, res.text().await.unwrap_or_default()))
}

/// Polls `path` until it answers 200 and returns the body; fails if the operator exits first.
async fn wait_for_probe(operator: &mut Operator, path: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((200, body)) = probe(operator, path).await {
            return body;
        }
        assert!(
            operator.exited().is_none(),
            "the operator exited:\n{}",
            operator.log()
        );
        assert!(
            Instant::now() < deadline,
            "{path} never answered 200:\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readyz_fails_until_the_cache_has_synced_and_livez_answers_throughout() {
    let mut s = Scenario::start("readyz", &default_seed()).await;
    s.stop_operator();
    // An operator whose connections to the API server are held up.
    let proxy = GatedProxy::start(api_server_address()).await;
    let kubeconfig = kubeconfig_via(proxy.port);
    let kubeconfig_path = kubeconfig.path().to_string_lossy().to_string();
    let mut gated = s.spawn_operator_with_env("gated", &[], &[("KUBECONFIG", &kubeconfig_path)]);

    let body = wait_for_probe(&mut gated, "/livez", Duration::from_secs(30)).await;
    assert_eq!(body, "ok\n");
    // Live, but not ready while it cannot list TeamsAppInstallations — for as long as that lasts.
    for _ in 0..10 {
        let (status, body) = probe(&gated, "/readyz").await.expect("/readyz answers");
        assert_eq!(status, 503, "ready before the cache synced: {body}");
        assert!(body.contains("not ready"), "{body}");
        assert_eq!(probe(&gated, "/livez").await.map(|p| p.0), Some(200));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    proxy.open();
    let body = wait_for_probe(&mut gated, "/readyz", Duration::from_secs(60)).await;
    assert!(body.starts_with("ok"), "{body}");
    assert!(
        gated.log().contains("resource cache synced"),
        "{}",
        gated.log()
    );

    // SIGTERM: a clean exit.
    let status = gated.terminate();
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        gated.log()
    );
}

// ----------------------------------------------------------------------------- leader election

const USERS: usize = 4;

/// A second app registration of the tenant, so the simulator's request log tells two replicas
/// apart (`clientId`).
const SECOND_CLIENT_ID: &str = "11111111-1111-1111-1111-111111111112";

/// A tenant where every one of `USERS` users has Contoso Bot 1.0.0.
fn seed_with_users() -> String {
    let users: Vec<String> = (0..USERS)
        .map(|i| {
            format!(
                "{{id: 22222222-2222-2222-2222-00000000000{i}, userPrincipalName: user{i}@contoso.com}}"
            )
        })
        .collect();
    let installations: Vec<String> = (0..USERS)
        .map(|i| format!("{{user: user{i}@contoso.com, app: {BOT}, version: \"1.0.0\"}}"))
        .collect();
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients: [{{id: {CLIENT_ID}, secret: {secret}}}, {{id: {SECOND_CLIENT_ID}, secret: {secret}}}]
    users: [{users}]
    apps:
      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
    installations: [{installations}]
"#,
        secret = scenario::SECRET,
        users = users.join(", "),
        installations = installations.join(", "),
    )
}

/// Upgrade calls per installation path.
async fn upgrades_per_installation(s: &Scenario) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in s.graph_requests().await {
        let path = r["path"].as_str().unwrap_or_default();
        if r["method"] == "POST" && path.ends_with("/upgrade") && r["status"] == 204 {
            *counts.entry(path.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

async fn wait_all_at(s: &Scenario, version: &str) {
    for i in 0..USERS {
        s.wait_for(&format!("user{i}"), version, Duration::from_secs(90), |o| {
            is_ready(o) && scenario::installed_version(o).as_deref() == Some(version)
        })
        .await;
    }
}

#[tokio::test]
async fn one_replica_reconciles_and_a_standby_takes_over_when_the_leader_dies() {
    let election = |instance: &'static str| {
        [
            "--leader-elect",
            "--lease-name",
            "tao",
            "--lease-duration",
            "4s",
            "--instance",
            instance,
        ]
    };
    let mut s = Scenario::start("leader", &seed_with_users()).await;
    // The scenario's operator is replaced by two replicas in the same election.
    s.stop_operator();
    let lease_ns = ["--lease-namespace", s.namespace.as_str()];
    let args_a: Vec<&str> = election("replica-a")
        .iter()
        .chain(&lease_ns)
        .copied()
        .collect();
    let args_b: Vec<&str> = election("replica-b")
        .iter()
        .chain(&lease_ns)
        .copied()
        .collect();
    let mut a = s.spawn_operator("replica-a", &args_a);
    let mut b = s.spawn_operator("replica-b", &args_b);

    s.publish_version(BOT, "1.1.0").await;
    for i in 0..USERS {
        s.create(
            &format!("user{i}"),
            json!({"user": format!("user{i}@contoso.com"), "app": {"id": BOT}}),
        )
        .await;
    }
    wait_all_at(&s, "1.1.0").await;
    let upgrades = upgrades_per_installation(&s).await;
    assert_eq!(upgrades.len(), USERS, "{upgrades:?}");
    assert!(
        upgrades.values().all(|&n| n == 1),
        "duplicate upgrades: {upgrades:?}"
    );

    let leader = s.lease_holder().await.expect("the Lease has a holder");
    let (leader_proc, standby_proc, standby_name) = match leader.as_str() {
        "replica-a" => (&mut a, &mut b, "replica-b"),
        "replica-b" => (&mut b, &mut a, "replica-a"),
        other => panic!("unexpected Lease holder {other}"),
    };
    // Only the leader reconciled; both are ready (the standby is healthy, just waiting).
    let standby_metrics = scrape(standby_proc).await;
    assert_eq!(
        value(
            &standby_metrics,
            r#"leader_election_master_status{name="tao"}"#
        ),
        0.0
    );
    assert_eq!(
        sample(&standby_metrics, RECONCILE_SUCCESS),
        None,
        "{standby_metrics}"
    );
    assert!(!standby_metrics.contains("teams_app_operator_resources"));
    let leader_metrics = scrape(leader_proc).await;
    assert_eq!(
        value(
            &leader_metrics,
            r#"leader_election_master_status{name="tao"}"#
        ),
        1.0
    );
    assert!(value(&leader_metrics, RECONCILE_SUCCESS) >= USERS as f64);
    assert_eq!(probe(standby_proc, "/readyz").await.map(|p| p.0), Some(200));
    assert_eq!(probe(leader_proc, "/readyz").await.map(|p| p.0), Some(200));

    // The leader dies without releasing the Lease; the standby takes over once it expires and
    // converges what changed meanwhile.
    leader_proc.kill();
    s.publish_version(BOT, "1.2.0").await;
    wait_all_at(&s, "1.2.0").await;
    assert_eq!(s.lease_holder().await.as_deref(), Some(standby_name));
    let upgrades = upgrades_per_installation(&s).await;
    assert!(
        upgrades.values().all(|&n| n == 2),
        "one upgrade per version each: {upgrades:?}"
    );
    let metrics = scrape(standby_proc).await;
    assert_eq!(
        value(&metrics, r#"leader_election_master_status{name="tao"}"#),
        1.0
    );
    assert!(
        standby_proc.log().contains("became the leader"),
        "{}",
        standby_proc.log()
    );

    // SIGTERM on the new leader: it stops cleanly and releases the Lease for the next one.
    let status = standby_proc.terminate();
    assert!(status.success(), "{status}\n{}", standby_proc.log());
    assert_eq!(s.lease_holder().await, None, "the Lease was released");
}

/// Times of the Graph calls (token requests aside) made with app registration `client`.
async fn graph_call_times(s: &Scenario, client: &str) -> Vec<jiff::Timestamp> {
    s.graph_requests()
        .await
        .iter()
        .filter(|r| r["clientId"] == client)
        .filter(|r| !r["path"].as_str().unwrap_or_default().contains("/oauth2/"))
        .filter_map(|r| r["time"].as_str()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_stops_before_a_standby_takes_over() {
    let mut s = Scenario::start("partition", &seed_with_users()).await;
    s.stop_operator();
    let proxy = GatedProxy::start(api_server_address()).await;
    proxy.open();
    let kubeconfig = kubeconfig_via(proxy.port);
    let kubeconfig_path = kubeconfig.path().to_string_lossy().to_string();
    let args = |instance: &'static str| {
        vec![
            "--leader-elect",
            "--lease-name",
            "tao",
            "--lease-duration",
            "6s",
            "--lease-namespace",
            s.namespace.as_str(),
            "--instance",
            instance,
        ]
    };
    // Replica A reaches the API server only through the proxy; replica B directly.
    let mut a = s.spawn_operator_with_env(
        "replica-a",
        &args("replica-a"),
        &[("KUBECONFIG", &kubeconfig_path)],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.lease_holder().await.as_deref() != Some("replica-a") {
        assert!(Instant::now() < deadline, "A never led:\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let b = s.spawn_operator_with_env(
        "replica-b",
        &args("replica-b"),
        &[("AZURE_CLIENT_ID", SECOND_CLIENT_ID)],
    );
    s.publish_version(BOT, "1.1.0").await;
    for i in 0..USERS {
        s.create(
            &format!("user{i}"),
            // Drift checks every second: a leader that kept reconciling would keep calling Graph.
            json!({"user": format!("user{i}@contoso.com"), "app": {"id": BOT}, "interval": "1s"}),
        )
        .await;
    }
    wait_all_at(&s, "1.1.0").await;

    // The partition: A keeps running, with its cache, but cannot renew the Lease.
    proxy.cut();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.lease_holder().await.as_deref() != Some("replica-b") {
        assert!(Instant::now() < deadline, "B never took over:\n{}", b.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.publish_version(BOT, "1.2.0").await;
    wait_all_at(&s, "1.2.0").await;

    let a_calls = graph_call_times(&s, CLIENT_ID).await;
    let b_calls = graph_call_times(&s, SECOND_CLIENT_ID).await;
    let (Some(a_last), Some(b_first)) = (a_calls.iter().max(), b_calls.iter().min()) else {
        panic!("both replicas led in turn: A {a_calls:?}, B {b_calls:?}");
    };
    assert!(
        a_last < b_first,
        "A called Graph at {a_last} after B started at {b_first}: two writers"
    );
    let upgrades = upgrades_per_installation(&s).await;
    assert!(upgrades.values().all(|&n| n == 2), "{upgrades:?}");
    assert!(
        a.log().contains("cannot confirm holding the leader Lease"),
        "{}",
        a.log()
    );
    let a_metrics = scrape(&a).await;
    assert_eq!(
        value(&a_metrics, r#"leader_election_master_status{name="tao"}"#),
        0.0
    );
    assert_eq!(
        probe(&a, "/readyz").await.map(|p| p.0),
        Some(200),
        "a standby again"
    );
    a.kill();
}

// ---------------------------------------------------------------------------------------- logs

const DISTINCT_SECRET: &str = "tao-test-secret-6f1d2c9a8b7e";

#[tokio::test]
async fn json_logs_at_debug_carry_ids_and_never_the_secret_or_tokens() {
    let seed = default_seed().replace(scenario::SECRET, DISTINCT_SECRET);
    let mut s = Scenario::start("logs", &seed).await;
    s.stop_operator();
    let mut operator = s.spawn_operator_with_env(
        "logs",
        &["--log-format", "json"],
        &[
            ("AZURE_CLIENT_SECRET", DISTINCT_SECRET),
            ("RUST_LOG", "debug"),
        ],
    );
    s.publish_version(BOT, "1.1.0").await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.create(
        "nobody",
        json!({"user": "nobody@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for_reason("bot-alice", "UpToDate").await;
    s.wait_for_reason("nobody", "UserNotFound").await;
    let status = operator.terminate();
    assert!(status.success(), "{status}");

    let log = operator.log();
    assert!(log.lines().count() > 20, "debug logs were written:\n{log}");
    // The simulator's tokens all start with the same JWT header.
    let token_start = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6ImdyYXBoLXNpbSJ9";
    for needle in [DISTINCT_SECRET, token_start, "Bearer ", "client_secret="] {
        assert!(!log.contains(needle), "{needle:?} appears in the logs");
    }
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Graph request lines carry both request ids, inside the reconcile of a named resource.
    let graph_line = lines
        .iter()
        .find(|l| l["message"] == "graph request" && l["span"]["resource"] == "bot-alice")
        .unwrap_or_else(|| panic!("no graph request line for bot-alice:\n{log}"));
    assert_eq!(graph_line["span"]["namespace"], s.namespace.as_str());
    for id in ["request_id", "client_request_id"] {
        let value = graph_line[id].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "{id} missing: {graph_line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["span"]["resource"] == "nobody"),
        "the failure for nobody is logged with its resource:\n{log}"
    );
}
