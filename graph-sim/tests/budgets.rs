//! Graph's per-class throttling budgets (`budgets` of `PUT /_sim/faults`, `--graph-budgets` and
//! `--budget-*` of the binary) and latency jitter. Budgets are per tenant per sliding second; a
//! local round trip takes milliseconds, so "within the second" below holds with a wide margin.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const INSTALLED: &str = "/v1.0/users/alice@contoso.com/teamwork/installedApps";
const CATALOG: &str = "/v1.0/appCatalogs/teamsApps";

async fn put_faults(sim: &Sim, faults: Value) -> Reply {
    sim.admin(Method::PUT, "/faults", Some(faults)).await
}

#[tokio::test]
async fn exceeding_one_class_throttles_that_class_only() {
    let sim = start().await;
    let token = sim.token().await;
    let faults = json!({"budgets": {"installedAppsRead": 2, "catalogRead": 0}});
    assert_eq!(put_faults(&sim, faults).await.status, 204);

    for _ in 0..2 {
        assert_eq!(sim.get(INSTALLED, &token).await.status, 200);
    }
    let over = sim.get(&format!("{INSTALLED}?$top=1"), &token).await;
    assert_eq!(
        (over.status.as_u16(), over.code()),
        (429, "TooManyRequests")
    );
    assert_eq!(over.header("retry-after"), Some("1"));

    // The catalog (0 = unlimited), installs and users (no budget given) are not affected.
    for _ in 0..5 {
        assert_eq!(sim.get(CATALOG, &token).await.status, 200);
    }
    assert_eq!(sim.install(&token, ALICE, TASKS).await.status, 201);
    assert_eq!(
        sim.get("/v1.0/users/alice@contoso.com", &token)
            .await
            .status,
        200
    );
    // /beta is the same Graph: it shares the budget.
    assert_eq!(
        sim.get(
            "/beta/users/alice@contoso.com/teamwork/installedApps",
            &token
        )
        .await
        .status,
        429
    );
}

#[tokio::test]
async fn graphs_documented_budgets_throttle_the_sixteenth_uninstall() {
    let sim = start().await;
    let token = sim.token().await;
    let faults = json!({"budgets": {"installedAppsRead": 30, "catalogRead": 30, "install": 30, "delete": 15, "other": 30}});
    assert_eq!(put_faults(&sim, faults.clone()).await.status, 204);
    let reply = sim.admin(Method::GET, "/faults", None).await;
    assert_eq!(reply.body, faults, "GET /_sim/faults shows the budgets");

    // Uninstalls of an installation that does not exist still count: 15 answered, then 429.
    let gone = format!("{INSTALLED}/{}", b64(&format!("{ALICE}##nothing")));
    let statuses = call_n(&sim, Method::DELETE, &gone, &token, 16).await;
    assert!(statuses[..15].iter().all(|s| *s == 404), "{statuses:?}");
    assert_eq!(statuses[15], 429, "{statuses:?}");
    // Reads have their own 30.
    let reads = call_n(&sim, Method::GET, INSTALLED, &token, 30).await;
    assert!(reads.iter().all(|s| *s == 200), "{reads:?}");
}

/// `n` calls one after the other; their statuses.
async fn call_n(sim: &Sim, method: Method, path: &str, token: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        let reply = sim.call(method.clone(), path, Some(token), None).await;
        statuses.push(reply.status.as_u16());
    }
    statuses
}

#[tokio::test]
async fn throttled_requests_count_so_a_hammering_client_stays_throttled() {
    let sim = start().await;
    let token = sim.token().await;
    put_faults(&sim, json!({"budgets": {"catalogRead": 2}})).await;
    assert_eq!(sim.get(CATALOG, &token).await.status, 200);
    assert_eq!(sim.get(CATALOG, &token).await.status, 200);
    // Back-to-back calls for well over the one-second window: had throttled calls not counted,
    // the two admitted ones would have left the window after a second and calls would succeed.
    let started = Instant::now();
    let mut throttled = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let reply = sim.get(CATALOG, &token).await;
        assert_eq!(reply.status, 429, "after {:?}", started.elapsed());
        assert!(reply.header("retry-after").is_some());
        throttled += 1;
    }
    assert!(throttled > 2);
    // A client that honours Retry-After gets through.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(sim.get(CATALOG, &token).await.status, 200);
}

#[tokio::test]
async fn batch_items_count_individually_in_their_class() {
    let sim = start().await;
    let token = sim.token().await;
    put_faults(
        &sim,
        json!({"budgets": {"installedAppsRead": 2, "other": 1}}),
    )
    .await;
    let mut items: Vec<Value> = (0..4)
        .map(|i| {
            let url = "/users/alice@contoso.com/teamwork/installedApps";
            batch_item(&format!("read{i}"), "GET", url, None)
        })
        .collect();
    items.extend(
        (0..3).map(|i| batch_item(&format!("cat{i}"), "GET", "/appCatalogs/teamsApps", None)),
    );
    let reply = sim
        .post("/v1.0/$batch", &token, Some(json!({"requests": items})))
        .await;
    assert_eq!(reply.status, 200, "the envelope itself is not throttled");
    let status = |prefix: &str, code: u64| {
        reply.body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"].as_str().unwrap().starts_with(prefix) && r["status"] == code)
            .count()
    };
    assert_eq!(
        (status("read", 200), status("read", 429)),
        (2, 2),
        "{}",
        reply.body
    );
    assert_eq!(status("cat", 200), 3, "catalog reads have no budget here");
    let throttled = reply.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == 429)
        .unwrap();
    assert!(
        throttled["headers"]["Retry-After"].is_string(),
        "{throttled}"
    );
}

#[tokio::test]
async fn nonsense_budgets_and_latency_are_refused() {
    let sim = start().await;
    for faults in [
        json!({"budgets": {"install": -1}}),
        json!({"budgets": {"install": 2.5}}),
        json!({"budgets": {"install": "NaN"}}),
        json!({"budgets": {"reads": 30}}),
        json!({"budgets": 30}),
        json!({"latencyMs": -80}),
        json!({"latencyMs": 10, "latencyJitterMs": 20}),
        json!({"latencyJitterMs": 20}),
    ] {
        let reply = put_faults(&sim, faults.clone()).await;
        assert_eq!(reply.status, 400, "{faults}");
    }
    assert_eq!(
        sim.admin(Method::GET, "/faults", None).await.body,
        json!({})
    );
    let ok = json!({"budgets": {"install": 0}, "latencyMs": 80, "latencyJitterMs": 80});
    assert_eq!(put_faults(&sim, ok).await.status, 204);
}

#[tokio::test]
async fn the_binary_starts_with_graphs_budgets_and_reset_keeps_them() {
    let (mut child, base) = spawn_binary(&[
        "--graph-budgets",
        "--budget-delete",
        "1",
        "--latency-ms",
        "1",
    ])
    .await;
    let http = reqwest::Client::new();
    let expected = json!({
        "latencyMs": 1,
        "budgets": {"installedAppsRead": 30, "catalogRead": 30, "install": 30, "delete": 1, "other": 30},
    });
    let faults = |http: reqwest::Client| {
        let url = format!("{base}/_sim/faults");
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(faults(http.clone()).await, expected);
    let token = binary_token(&http, &base, GRAPH_SCOPE).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let gone = format!("{base}{INSTALLED}/{}", b64(&format!("{ALICE}##nothing")));
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let reply = http.delete(&gone).bearer_auth(&token).send().await.unwrap();
        statuses.push(reply.status().as_u16());
    }
    assert_eq!(statuses, [404, 429]);

    let reset = http
        .post(format!("{base}/_sim/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(
        faults(http.clone()).await,
        expected,
        "reset returns to the start-up faults"
    );
    let clear = http
        .delete(format!("{base}/_sim/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(clear.status(), 204);
    assert_eq!(faults(http).await, expected, "so does DELETE /_sim/faults");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_refuses_nonsense_flags() {
    for args in [
        &["--budget-install", "-1"][..],
        &["--budget-install", "NaN"],
        &["--latency-ms", "10", "--latency-jitter-ms", "20"],
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_graph-sim"))
            .args(["--listen", "127.0.0.1:0", "--empty"])
            .args(args)
            .output()
            .await
            .expect("graph-sim runs");
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "never listened: {args:?}");
    }
}
