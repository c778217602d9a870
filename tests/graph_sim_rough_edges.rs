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

/// Users whose UPNs need care on the wire, and an app whose manifest id holds a quote.
async fn add_awkward_names(sim: &Sim) {
    let users = json!([
        {"id": "a0000000-0000-0000-0000-000000000001", "userPrincipalName": "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"},
        {"id": "a0000000-0000-0000-0000-000000000002", "userPrincipalName": "o'neil@contoso.com"},
        {"id": "a0000000-0000-0000-0000-000000000003", "userPrincipalName": "$adm@contoso.com"},
    ]);
    let added = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/users"),
            Some(users),
        )
        .await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    let app = json!({"id": "a1000000-0000-0000-0000-000000000001", "externalId": "it's.app",
                     "displayName": "Quoted", "definitions": [{"version": "1.0.0"}]});
    let added = sim
        .admin(Method::POST, &format!("/tenants/{TENANT}/apps"), Some(app))
        .await;
    assert_eq!(added.status, 201, "{:?}", added.body);
}

const QUOTED_APP: &str = "a1000000-0000-0000-0000-000000000001";

#[tokio::test]
async fn awkward_user_principal_names_work_end_to_end() {
    let sim = start().await;
    add_awkward_names(&sim).await;
    let token = sim.token().await;
    // (how the client writes the user in the path, the UPN Graph sees)
    let cases = [
        (
            "ann_fabrikam.com%23EXT%23@contoso.onmicrosoft.com",
            "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        ),
        ("o'neil@contoso.com", "o'neil@contoso.com"),
        ("o%27neil%40contoso.com", "o'neil@contoso.com"),
        ("('o''neil@contoso.com')", "o'neil@contoso.com"),
        ("('$adm@contoso.com')", "$adm@contoso.com"),
    ];
    for (i, (written, upn)) in cases.into_iter().enumerate() {
        let sep = if written.starts_with('(') { "" } else { "/" };
        let apps = format!("/v1.0/users{sep}{written}/teamwork/installedApps");
        sim.server.clear_requests();
        let listed = sim.get(&apps, &token).await;
        assert_eq!(listed.status, 200, "{written}: {:?}", listed.body);
        let bind = json!({"teamsApp@odata.bind":
            format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{QUOTED_APP}")});
        let installed = sim.post(&apps, &token, Some(bind)).await;
        // Two spellings of o'neil address the same user: the second install is a conflict.
        let expected = if i == 2 || i == 3 { 409 } else { 201 };
        assert_eq!(
            installed.status, expected,
            "{written}: {:?}",
            installed.body
        );
        let filtered = sim
            .get(
                &format!("{apps}?$filter=teamsApp/externalId eq 'it''s.app'"),
                &token,
            )
            .await;
        assert_eq!(
            filtered.body["value"].as_array().map(Vec::len),
            Some(1),
            "{written}"
        );
        for record in sim.requests().await {
            assert_eq!(record["user"], upn, "{record}");
        }
    }
}

#[tokio::test]
async fn paths_are_decoded_before_they_are_split() {
    let sim = start().await;
    add_awkward_names(&sim).await;
    let token = sim.token().await;
    for user in [
        "$adm@contoso.com",
        "%24adm@contoso.com",
        "alice%2Fcontoso.com",
    ] {
        let reply = sim
            .get(
                &format!("/v1.0/users/{user}/teamwork/installedApps"),
                &token,
            )
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "BadRequest"),
            "{user}"
        );
    }
    let log = sim.requests().await;
    assert_eq!(
        log.last().unwrap()["path"],
        "/v1.0/users/alice/contoso.com/teamwork/installedApps",
        "the log shows the path as Graph split it"
    );
    assert_eq!(log.last().unwrap()["user"], "alice");
}

#[tokio::test]
async fn catalog_filters_unescape_doubled_quotes() {
    let sim = start().await;
    add_awkward_names(&sim).await;
    let token = sim.token().await;
    let found = sim
        .get(
            "/v1.0/appCatalogs/teamsApps?$filter=externalId eq 'it''s.app'",
            &token,
        )
        .await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body["value"][0]["id"], QUOTED_APP);
    assert_eq!(found.body["value"][0]["externalId"], "it's.app");
}
