//! What every answer carries: correlation ids, Graph's error shape, `/beta` like `/v1.0`.
//! Over HTTP the way a client following graph-contract.md would; every test starts its own
//! in-process `SimServer` (or the binary), and one that cannot start fails the test.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn responses_carry_correlation_ids_and_graph_error_shape() {
    let sim = start().await;
    let token = sim.token().await;
    let reply = read(
        sim.http
            .get(sim.url("/v1.0/users/nobody@contoso.com/teamwork/installedApps"))
            .bearer_auth(&token)
            .header("client-request-id", "0f0f0f0f-0000-0000-0000-000000000001")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        reply.header("client-request-id"),
        Some("0f0f0f0f-0000-0000-0000-000000000001")
    );
    let request_id = reply
        .header("request-id")
        .expect("request-id header")
        .to_string();
    let inner = &reply.body["error"]["innerError"];
    assert_eq!(inner["request-id"], request_id.as_str());
    assert_eq!(
        inner["client-request-id"],
        "0f0f0f0f-0000-0000-0000-000000000001"
    );
    assert!(inner["date"].is_string());
    assert!(reply.body["error"]["message"].is_string());

    let ok = sim.get("/v1.0/appCatalogs/teamsApps", &token).await;
    assert!(ok.header("request-id").is_some() && ok.header("client-request-id").is_some());
    let token_reply = sim
        .token_form(TENANT, &[("grant_type", "client_credentials")])
        .await;
    assert!(token_reply.header("request-id").is_some());
}

#[tokio::test]
async fn beta_behaves_like_v1() {
    let sim = start().await;
    let token = sim.token().await;
    let list = sim
        .get(&format!("/beta/users/alice@contoso.com/teamwork/installedApps?$expand=teamsAppDefinition&$filter=teamsApp/id eq '{BOT}'"), &token)
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body["value"][0]["teamsAppDefinition"]["version"],
        "1.0.0"
    );
    let bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/beta/appCatalogs/teamsApps/{TASKS}")});
    assert_eq!(
        sim.post(
            "/beta/users/bob@contoso.com/teamwork/installedApps",
            &token,
            Some(bind)
        )
        .await
        .status,
        201
    );
    assert_eq!(
        sim.get("/v2.0/appCatalogs/teamsApps", &token).await.status,
        400
    );
}
