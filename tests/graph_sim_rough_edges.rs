//! The simulator's rough edges: the places where Microsoft Graph is less kind than a tidy API
//! would be, each reproduced (and, where Graph varies, scriptable through `/_sim/faults`) so the
//! operator's tests meet them. Plain HTTP against an in-process `SimServer`, like graph_sim.rs.

mod sim_support;

use reqwest::Method;
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

#[tokio::test]
async fn a_user_without_a_teams_licence_is_forbidden() {
    let sim = start().await;
    let token = sim.token().await;
    let message = "Failed to get license information for the user. Ensure user has a valid \
                   Office365 license assigned to them.";
    let apps = "/v1.0/users/erin@contoso.com/teamwork/installedApps";
    for reply in [
        sim.get(apps, &token).await,
        sim.install(&token, "erin@contoso.com", BOT).await,
    ] {
        assert_eq!((reply.status.as_u16(), reply.code()), (403, "Forbidden"));
        assert_eq!(reply.body["error"]["message"], message);
        assert!(reply.body["error"]["innerError"]["request-id"].is_string());
    }
}

#[tokio::test]
async fn install_for_an_unknown_user_or_app_is_not_found() {
    let sim = start().await;
    let token = sim.token().await;
    for reply in [
        sim.install(&token, "nobody@contoso.com", BOT).await,
        sim.install(
            &token,
            "bob@contoso.com",
            "99999999-9999-9999-9999-999999999999",
        )
        .await,
    ] {
        assert_eq!((reply.status.as_u16(), reply.code()), (404, "NotFound"));
        let error = &reply.body["error"];
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(error["innerError"]["date"].is_string());
        assert!(error["innerError"]["client-request-id"].is_string());
    }
}

#[tokio::test]
async fn scripted_transient_400s_carry_graph_messages_verbatim() {
    let sim = start().await;
    let token = sim.token().await;
    let messages = [
        "Failed to execute Skype backend request CreateThreadRequest.",
        "Failed to execute settings store request. Please retry.",
    ];
    let failures: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({"method": "POST", "pathContains": "/installedApps", "status": 400,
                   "code": "BadRequest", "message": m})
        })
        .collect();
    let set = sim
        .admin(Method::PUT, "/faults", Some(json!({"failures": failures})))
        .await;
    assert_eq!(set.status, 204, "{:?}", set.body);
    for message in messages {
        let reply = sim.install(&token, "bob@contoso.com", BOT).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (400, "BadRequest"));
        assert_eq!(reply.body["error"]["message"], message);
    }
    assert_eq!(
        sim.install(&token, "bob@contoso.com", BOT).await.status,
        201
    );
}
