//! Injected faults: scripted failures and the per-tenant rate limit.
//! Over HTTP the way a client following graph-contract.md would; every test starts its own
//! in-process `SimServer` (or the binary), and one that cannot start fails the test.

mod support;

use reqwest::Method;
use serde_json::json;
use support::*;

#[tokio::test]
async fn scripted_failures_answer_in_order_then_stop() {
    let sim = start().await;
    let token = sim.token().await;
    let faults = json!({"failures": [
        {"method": "POST", "pathContains": "/upgrade", "status": 503, "count": 2},
        {"method": "GET", "pathContains": "/appCatalogs", "status": 429, "count": 1, "retryAfter": 2.128},
    ]});
    assert_eq!(
        sim.admin(Method::PUT, "/faults", Some(faults)).await.status,
        204
    );
    let upgrade = format!(
        "/v1.0/users/alice@contoso.com/teamwork/installedApps/{}/upgrade",
        b64(&format!("{ALICE}##{BOT}"))
    );
    for _ in 0..2 {
        let reply = sim.post(&upgrade, &token, None).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (503, "ServiceUnavailable")
        );
        assert!(reply.body["error"]["innerError"]["request-id"].is_string());
    }
    assert_eq!(sim.post(&upgrade, &token, None).await.status, 204);

    let throttled = sim.get("/v1.0/appCatalogs/teamsApps", &token).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("2.128"));
    assert_eq!(
        sim.get("/v1.0/appCatalogs/teamsApps", &token).await.status,
        200
    );

    let bad = sim
        .admin(
            Method::PUT,
            "/faults",
            Some(json!({"failures": [{"status": 200}]})),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let sim = start().await;
    let token = sim.token().await;
    let path = "/v1.0/users/alice@contoso.com/teamwork/installedApps";
    sim.admin(
        Method::PUT,
        "/faults",
        Some(json!({"rateLimitPerSecond": 1})),
    )
    .await;
    assert_eq!(sim.get(path, &token).await.status, 200);
    // The second call within the same second is over the limit (a local round trip takes
    // milliseconds; the window is a full second).
    let over = sim.get(path, &token).await;
    assert_eq!(
        (over.status.as_u16(), over.code()),
        (429, "TooManyRequests")
    );
    assert_eq!(over.header("retry-after"), Some("1"));

    sim.admin(
        Method::PUT,
        "/faults",
        Some(json!({"rateLimitPerSecond": 1, "retryAfterSeconds": 1.5})),
    )
    .await;
    sim.get(path, &token).await;
    let fractional = sim.get(path, &token).await;
    assert_eq!(
        (fractional.status.as_u16(), fractional.header("retry-after")),
        (429, Some("1.5"))
    );
    let log = sim.requests().await;
    assert_eq!(
        log.iter().filter(|r| r["status"] == 429).count(),
        2,
        "throttled calls are logged"
    );
}
