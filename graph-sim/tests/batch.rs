//! `$batch`: each item answered on its own, bad envelopes refused, items throttled one by one.
//! Over HTTP the way a client following graph-contract.md would; every test starts its own
//! in-process `SimServer` (or the binary), and one that cannot start fails the test.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn batch_answers_each_item_and_rejects_bad_envelopes() {
    let sim = start().await;
    let token = sim.token().await;
    let bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}")});
    let requests = json!({"requests": [
        batch_item("1", "POST", "/users/bob@contoso.com/teamwork/installedApps", Some(bind.clone())),
        batch_item("2", "POST", "/users/alice@contoso.com/teamwork/installedApps", Some(bind.clone())),
        batch_item("3", "GET", "/users/nobody@contoso.com/teamwork/installedApps", None),
        batch_item("4", "GET", &format!("/users/bob@contoso.com/teamwork/installedApps?$expand=teamsAppDefinition&$filter=teamsApp/id eq '{BOT}'"), None),
    ]});
    let reply = sim.post("/v1.0/$batch", &token, Some(requests)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let responses = reply.body["responses"].as_array().unwrap();
    let by_id = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id("1")["status"], 201);
    assert_eq!(by_id("2")["status"], 409);
    assert_eq!(by_id("2")["body"]["error"]["code"], "Conflict");
    assert_eq!(by_id("3")["status"], 404);
    assert_eq!(by_id("4")["status"], 200);
    assert_eq!(
        by_id("4")["body"]["value"][0]["teamsAppDefinition"]["version"],
        "1.0.0"
    );
    assert!(by_id("4")["headers"]["request-id"].is_string());

    let too_many: Vec<Value> = (0..21)
        .map(|i| batch_item(&i.to_string(), "GET", "/appCatalogs/teamsApps", None))
        .collect();
    let big = sim
        .post("/v1.0/$batch", &token, Some(json!({"requests": too_many})))
        .await;
    assert_eq!((big.status.as_u16(), big.code()), (400, "BadRequest"));
    let dup = json!({"requests": [batch_item("a", "GET", "/appCatalogs/teamsApps", None), batch_item("a", "GET", "/appCatalogs/teamsApps", None)]});
    assert_eq!(
        sim.post("/v1.0/$batch", &token, Some(dup)).await.status,
        400
    );

    let chained = json!({"requests": [
        batch_item("x", "GET", "/users/nobody@contoso.com/teamwork/installedApps", None),
        {"id": "y", "method": "GET", "url": "/appCatalogs/teamsApps", "dependsOn": ["x"]},
    ]});
    let reply = sim.post("/beta/$batch", &token, Some(chained)).await;
    let y = reply.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "y")
        .unwrap()
        .clone();
    assert_eq!(y["status"], 424);

    let no_auth = sim
        .call(
            Method::POST,
            "/v1.0/$batch",
            None,
            Some(json!({"requests": []})),
        )
        .await;
    assert_eq!(no_auth.status, 401);
}

#[tokio::test]
async fn batch_items_are_throttled_one_by_one() {
    let sim = start().await;
    let token = sim.token().await;
    sim.admin(
        Method::PUT,
        "/faults",
        Some(json!({"rateLimitPerSecond": 2})),
    )
    .await;
    let items: Vec<Value> = (0..5)
        .map(|i| batch_item(&i.to_string(), "GET", "/appCatalogs/teamsApps", None))
        .collect();
    let reply = sim
        .post("/v1.0/$batch", &token, Some(json!({"requests": items})))
        .await;
    assert_eq!(reply.status, 200);
    let throttled: Vec<&Value> = reply.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 429)
        .collect();
    assert!(throttled.len() >= 3, "{:?}", reply.body);
    assert!(
        throttled
            .iter()
            .all(|r| r["headers"]["Retry-After"].is_string())
    );
    let log = sim.requests().await;
    let items = log.iter().filter(|r| r["batch"] == true).count();
    assert_eq!(items, 5, "each item is logged");
}
