//! The `/_sim` admin API: the request log, reset, and growing the tenant.
//! Over HTTP the way a client following graph-contract.md would; every test starts its own
//! in-process `SimServer` (or the binary), and one that cannot start fails the test.

mod support;

use reqwest::Method;
use serde_json::json;
use support::*;

#[tokio::test]
async fn request_log_records_every_call_in_order() {
    let sim = start().await;
    let token = sim.token().await;
    sim.installed(&token, "alice@contoso.com", BOT).await;
    sim.install(&token, "alice@contoso.com", BOT).await;
    let batch = json!({"requests": [batch_item("1", "GET", "users/bob@contoso.com/teamwork/installedApps", None)]});
    sim.post("/v1.0/$batch", &token, Some(batch)).await;

    let log = sim.requests().await;
    let summary: Vec<(String, String, u64, bool)> = log
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
                r["batch"].as_bool().unwrap(),
            )
        })
        .collect();
    let expect = |m: &str, p: &str, s: u64, b: bool| (m.to_string(), p.to_string(), s, b);
    assert_eq!(
        summary,
        vec![
            expect("POST", &format!("/{TENANT}/oauth2/v2.0/token"), 200, false),
            expect(
                "GET",
                "/v1.0/users/alice@contoso.com/teamwork/installedApps",
                200,
                false
            ),
            expect(
                "POST",
                "/v1.0/users/alice@contoso.com/teamwork/installedApps",
                409,
                false
            ),
            expect(
                "GET",
                "/v1.0/users/bob@contoso.com/teamwork/installedApps",
                200,
                true
            ),
            expect("POST", "/v1.0/$batch", 200, false),
        ]
    );
    assert!(log.iter().all(|r| r["tenant"] == TENANT));
    // POST bodies are logged as sent (never the token form, never the $batch envelope);
    // requests without one have no `body`.
    assert_eq!(
        log[2]["body"],
        json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}")})
    );
    for i in [0, 1, 3, 4] {
        assert!(log[i].get("body").is_none(), "{}", log[i]);
    }
    assert_eq!(sim.server.requests()[2].body, Some(log[2]["body"].clone()));
    assert_eq!(sim.server.requests().len(), 5, "in-process view agrees");
    assert_eq!(
        sim.admin(Method::DELETE, "/requests", None).await.status,
        204
    );
    assert!(sim.requests().await.is_empty());
}

#[tokio::test]
async fn reset_returns_to_the_seed() {
    let sim = start().await;
    let token = sim.token().await;
    sim.install(&token, "bob@contoso.com", BOT).await;
    sim.publish(BOT, "9.0.0", "published").await;
    sim.admin(Method::PUT, "/faults", Some(json!({"latencyMs": 1})))
        .await;
    assert_eq!(sim.admin(Method::POST, "/reset", None).await.status, 204);

    assert!(sim.requests().await.is_empty(), "log cleared");
    assert_eq!(
        sim.admin(Method::GET, "/faults", None).await.body,
        json!({})
    );
    assert_eq!(
        sim.get("/v1.0/appCatalogs/teamsApps", &token).await.status,
        401,
        "tokens dropped"
    );
    let token = sim.token().await;
    assert!(
        sim.installed(&token, "bob@contoso.com", BOT)
            .await
            .is_empty()
    );
    let catalog = sim
        .get(
            &format!("/v1.0/appCatalogs/teamsApps/{BOT}?$expand=appDefinitions"),
            &token,
        )
        .await;
    assert_eq!(catalog.body["appDefinitions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn admin_api_grows_the_tenant() {
    let sim = start().await;
    let token = sim.token().await;
    let app = json!({"id": "abababab-0000-0000-0000-000000000001", "externalId": "com.contoso.new", "displayName": "New",
                     "definitions": [{"version": "0.9"}]});
    assert_eq!(
        sim.admin(
            Method::POST,
            &format!("/tenants/{TENANT}/apps"),
            Some(app.clone())
        )
        .await
        .status,
        201
    );
    assert_eq!(
        sim.admin(Method::POST, &format!("/tenants/{TENANT}/apps"), Some(app))
            .await
            .status,
        409
    );
    let users = json!([{"id": "cdcdcdcd-0000-0000-0000-000000000001", "userPrincipalName": "u1@contoso.com"},
                       {"id": "cdcdcdcd-0000-0000-0000-000000000002", "userPrincipalName": "u2@contoso.com"}]);
    assert_eq!(
        sim.admin(
            Method::POST,
            &format!("/tenants/{TENANT}/users"),
            Some(users)
        )
        .await
        .status,
        201
    );
    let seeded = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/installations"),
            Some(json!([{"user": "u1@contoso.com", "app": "com.contoso.new"}])),
        )
        .await;
    assert_eq!(seeded.status, 201, "{:?}", seeded.body);
    let list = sim
        .installed(
            &token,
            "u1@contoso.com",
            "abababab-0000-0000-0000-000000000001",
        )
        .await;
    assert_eq!(list[0]["teamsAppDefinition"]["version"], "0.9");
    assert_eq!(
        sim.install(
            &token,
            "u2@contoso.com",
            "abababab-0000-0000-0000-000000000001"
        )
        .await
        .status,
        201
    );

    let unknown = sim
        .admin(
            Method::POST,
            "/tenants/nope/apps/x/definitions",
            Some(json!({"version": "1"})),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let garbage = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/users"),
            Some(json!({"id": 1})),
        )
        .await;
    assert_eq!(garbage.status, 400);
    assert_eq!(sim.admin(Method::GET, "/nothing", None).await.status, 404);
}
