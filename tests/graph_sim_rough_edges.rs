//! The simulator's rough edges: the places where Microsoft Graph is less kind than a tidy API
//! would be, each reproduced (and, where Graph varies, scriptable through `/_sim/faults`) so the
//! operator's tests meet them. Plain HTTP against an in-process `SimServer`, like graph_sim.rs.

mod sim_support;

use serde_json::{Value, json};
use sim_support::*;

#[tokio::test]
async fn versions_order_numerically_part_by_part() {
    let sim = start().await;
    let token = sim.token().await;
    for version in ["1.9.0", "1.10.0"] {
        assert!(
            sim.publish(BOT, version, "published")
                .await
                .status
                .is_success()
        );
    }
    let id = sim.installed(&token, "alice@contoso.com", BOT).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{id}");
    assert_eq!(
        sim.post(&format!("{path}/upgrade"), &token, None)
            .await
            .status,
        204
    );
    let got = sim
        .get(&format!("{path}?$expand=teamsAppDefinition"), &token)
        .await;
    assert_eq!(
        got.body["teamsAppDefinition"]["version"], "1.10.0",
        "not 1.9.0"
    );
}

#[tokio::test]
async fn batch_ids_differing_only_in_case_are_duplicates() {
    let sim = start().await;
    let token = sim.token().await;
    let url = "/users/alice@contoso.com/teamwork/installedApps";
    let reply = sim
        .post(
            "/v1.0/$batch",
            &token,
            Some(json!({"requests": [
                batch_item("a", "GET", url, None),
                batch_item("A", "GET", url, None),
            ]})),
        )
        .await;
    assert_eq!((reply.status.as_u16(), reply.code()), (400, "BadRequest"));
    assert_eq!(reply.body.get("responses"), None::<&Value>);
}
