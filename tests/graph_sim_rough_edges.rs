//! The simulator's rough edges: the places where Microsoft Graph is less kind than a tidy API
//! would be, each reproduced (and, where Graph varies, scriptable through `/_sim/faults`) so the
//! operator's tests meet them. Plain HTTP against an in-process `SimServer`, like graph_sim.rs.

mod sim_support;

use reqwest::Method;
use serde_json::{Value, json};
use sim_support::*;
use teams_app_operator::sim::{SimOptions, SimServer};

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

fn secret_form(scope: &str) -> [(&'static str, &str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT),
        ("client_secret", "s3cret"),
        ("scope", scope),
    ]
}

#[tokio::test]
async fn tokens_are_only_granted_for_the_graph_resource() {
    let sim = start().await;
    for scope in [
        "https://graph.microsoft.com/.default",
        "https://GRAPH.microsoft.com//.default",
        "00000003-0000-0000-c000-000000000000/.default",
    ] {
        let reply = sim.token_form(TENANT, &secret_form(scope)).await;
        assert_eq!(reply.status, 200, "{scope}: {:?}", reply.body);
    }
    // A client pointed at the simulator must still ask for Graph, not for the address it dials.
    let own = format!("{}/.default", sim.server.base_url());
    for scope in [own.as_str(), "https://graph.microsoft.us/.default"] {
        let reply = sim.token_form(TENANT, &secret_form(scope)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.body["error"].as_str()),
            (400, Some("invalid_resource")),
            "{scope}"
        );
        assert_eq!(reply.body["error_codes"], json!([500011]));
        let resource = scope.trim_end_matches("/.default");
        let description = reply.body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant"
            )),
            "{description}"
        );
    }
    let not_default = sim
        .token_form(
            TENANT,
            &secret_form("https://graph.microsoft.com/User.Read.All"),
        )
        .await;
    assert_eq!(not_default.body["error"], "invalid_scope");
}

#[tokio::test]
async fn another_cloud_is_a_graph_resource_option() {
    let options = SimOptions {
        graph_resource: "https://graph.microsoft.us/".into(),
        ..SimOptions::default()
    };
    let sim = start_with_options(seed(), options).await;
    let us = sim
        .token_form(TENANT, &secret_form("https://graph.microsoft.us/.default"))
        .await;
    assert_eq!(us.status, 200, "{:?}", us.body);
    let com = sim
        .token_form(TENANT, &secret_form("https://graph.microsoft.com/.default"))
        .await;
    assert_eq!(com.body["error_codes"], json!([500011]));

    let token = us.body["access_token"].as_str().unwrap();
    let apps = "/v1.0/users/bob@contoso.com/teamwork/installedApps";
    let bind = |host: &str| {
        Some(json!({"teamsApp@odata.bind": format!("{host}/v1.0/appCatalogs/teamsApps/{BOT}")}))
    };
    let public = sim
        .post(apps, token, bind("https://graph.microsoft.com"))
        .await;
    assert_eq!((public.status.as_u16(), public.code()), (400, "BadRequest"));
    assert_eq!(
        sim.post(apps, token, bind("https://graph.microsoft.us"))
            .await
            .status,
        201
    );
    assert!(
        SimServer::start(
            "127.0.0.1:0".parse().unwrap(),
            seed(),
            SimOptions {
                graph_resource: "https://graph.microsoft.com/v1.0".into(),
                ..SimOptions::default()
            }
        )
        .await
        .is_err(),
        "a resource is an origin, not a URL with a path"
    );
}

#[tokio::test]
async fn bind_urls_must_name_the_graph_host() {
    let sim = start().await;
    let token = sim.token().await;
    let apps = "/v1.0/users/bob@contoso.com/teamwork/installedApps";
    for bind in [
        format!("{}/v1.0/appCatalogs/teamsApps/{BOT}", sim.server.base_url()),
        format!("/appCatalogs/teamsApps/{BOT}"),
        format!("https://graph.microsoft.com.example/v1.0/appCatalogs/teamsApps/{BOT}"),
    ] {
        let reply = sim
            .post(apps, &token, Some(json!({"teamsApp@odata.bind": bind})))
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "BadRequest"),
            "{bind}"
        );
    }
    for version in ["v1.0", "beta"] {
        let bind = format!("https://graph.microsoft.com/{version}/appCatalogs/teamsApps/{BOT}");
        let user = if version == "beta" { "carol" } else { "bob" };
        let reply = sim
            .post(
                &format!("/v1.0/users/{user}@contoso.com/teamwork/installedApps"),
                &token,
                Some(json!({"teamsApp@odata.bind": bind})),
            )
            .await;
        assert_eq!(reply.status, 201, "{bind}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn canonical_next_links_name_graph_and_work_once_rewritten() {
    let sim = start().await;
    let token = sim.token().await;
    let set = sim
        .admin(
            Method::PUT,
            "/faults",
            Some(json!({"canonicalNextLinks": true})),
        )
        .await;
    assert_eq!(set.status, 204);
    let faults = sim.admin(Method::GET, "/faults", None).await;
    assert_eq!(faults.body["canonicalNextLinks"], true);
    let first = sim.get("/v1.0/appCatalogs/teamsApps?$top=1", &token).await;
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    let rest = next
        .strip_prefix("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps?")
        .unwrap_or_else(|| panic!("{next}"));
    assert!(
        first.body["@odata.context"]
            .as_str()
            .is_some_and(|c| c.starts_with("https://graph.microsoft.com/v1.0/$metadata#"))
    );
    let second = sim
        .get(&format!("/v1.0/appCatalogs/teamsApps?{rest}"), &token)
        .await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_ne!(second.body["value"][0]["id"], first.body["value"][0]["id"]);
}

#[tokio::test]
async fn the_binary_takes_the_graph_resource_and_canonical_links_as_flags() {
    let (mut child, base) = spawn_binary(&[
        "--graph-resource",
        "https://graph.microsoft.us",
        "--canonical-next-links",
    ])
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = binary_token(&http, &base, "https://graph.microsoft.us/.default").await;
    let token = token["access_token"].as_str().expect("a token for .us");
    let page: Value = http
        .get(format!("{base}/v1.0/appCatalogs/teamsApps?$top=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        page["@odata.nextLink"]
            .as_str()
            .is_some_and(|l| l.starts_with("https://graph.microsoft.us/v1.0/")),
        "{page}"
    );
    child.kill().await.unwrap();
}
