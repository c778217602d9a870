//! The simulator's rough edges: the places where Microsoft Graph is less kind than a tidy API
//! would be, each reproduced (and, where Graph varies, scriptable through `/_sim/faults`) so the
//! operator's tests meet them. Plain HTTP against an in-process `SimServer`, like the other tests here.

mod support;

use graph_sim::{SimOptions, SimServer};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

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

async fn set_faults(sim: &Sim, faults: Value) {
    let reply = sim.admin(Method::PUT, "/faults", Some(faults)).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

fn id_of(installations: &[Value]) -> String {
    installations[0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn reads_trail_writes_by_the_read_lag() {
    let sim = start().await;
    let token = sim.token().await;
    // A lag no test step can outrun, so the stale reads below do not depend on speed.
    set_faults(&sim, json!({"readLagMs": 60000})).await;
    assert_eq!(
        sim.install(&token, "bob@contoso.com", BOT).await.status,
        201
    );
    assert_eq!(
        sim.installed(&token, "bob@contoso.com", BOT).await,
        Vec::<Value>::new()
    );
    // Writes act on the true state: a second install conflicts although reads show nothing.
    assert_eq!(
        sim.install(&token, "bob@contoso.com", BOT).await.status,
        409
    );
    // An upgrade of the installation reads cannot see yet works; get by id is stale too.
    let id = ids_installation(BOB, BOT);
    let one = format!("/v1.0/users/bob@contoso.com/teamwork/installedApps/{id}");
    assert_eq!(
        sim.post(&format!("{one}/upgrade"), &token, None)
            .await
            .status,
        204
    );
    assert_eq!(sim.get(&one, &token).await.status, 404);
    assert_eq!(
        sim.get(&format!("{one}/teamsAppDefinition"), &token)
            .await
            .status,
        404
    );
    // Only that user lags: alice's installation reads fresh.
    assert_eq!(
        sim.installed(&token, "alice@contoso.com", BOT).await.len(),
        1
    );

    // A new fault configuration starts without history: reads are fresh again.
    set_faults(&sim, json!({})).await;
    assert_eq!(
        id_of(&sim.installed(&token, "bob@contoso.com", BOT).await),
        id
    );

    // A short lag runs out by itself; writes meanwhile see the truth (a second delete is 404).
    set_faults(&sim, json!({"readLagMs": 200})).await;
    let delete = || sim.call(Method::DELETE, &one, Some(&token), None);
    assert_eq!(delete().await.status, 204);
    assert_eq!(delete().await.status, 404);
    let mut seen = vec![Value::Null];
    for _ in 0..250 {
        seen = sim.installed(&token, "bob@contoso.com", BOT).await;
        if seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(seen, Vec::<Value>::new(), "the uninstall surfaces");
}

const BOB: &str = "22222222-2222-2222-2222-222222222223";

fn ids_installation(user: &str, app: &str) -> String {
    b64(&format!("{user}##{app}"))
}

#[tokio::test]
async fn apply_first_failures_take_effect_before_they_answer() {
    let sim = start().await;
    let token = sim.token().await;
    set_faults(
        &sim,
        json!({"failures": [{"method": "POST", "pathContains": "/installedApps", "status": 503,
                             "applyFirst": true}]}),
    )
    .await;
    let install = sim.install(&token, "bob@contoso.com", BOT).await;
    assert_eq!(
        (install.status.as_u16(), install.code()),
        (503, "ServiceUnavailable")
    );
    assert_eq!(sim.installed(&token, "bob@contoso.com", BOT).await.len(), 1);
    assert_eq!(
        sim.install(&token, "bob@contoso.com", BOT).await.status,
        409
    );

    set_faults(
        &sim,
        json!({"failures": [{"pathContains": "/upgrade", "status": 429, "retryAfter": 2.5,
                             "applyFirst": true}]}),
    )
    .await;
    sim.publish(BOT, "1.1.0", "published").await;
    let id = id_of(&sim.installed(&token, "bob@contoso.com", BOT).await);
    let upgrade = sim
        .post(
            &format!("/v1.0/users/bob@contoso.com/teamwork/installedApps/{id}/upgrade"),
            &token,
            None,
        )
        .await;
    assert_eq!(upgrade.status, 429);
    assert_eq!(upgrade.header("retry-after"), Some("2.5"));
    let installed = sim.installed(&token, "bob@contoso.com", BOT).await;
    assert_eq!(installed[0]["teamsAppDefinition"]["version"], "1.1.0");
}

#[tokio::test]
async fn dropped_connections_answer_nothing() {
    let sim = start().await;
    let token = sim.token().await;
    set_faults(
        &sim,
        json!({"failures": [
            {"method": "POST", "pathContains": "/installedApps", "dropConnection": true, "applyFirst": true},
            {"method": "GET", "pathContains": "/installedApps", "dropConnection": true},
            {"pathContains": "/oauth2/", "dropConnection": true},
        ]}),
    )
    .await;
    let apps = sim.url("/v1.0/users/bob@contoso.com/teamwork/installedApps");
    let bind = json!({"teamsApp@odata.bind":
        format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}")});
    let install = sim
        .http
        .post(&apps)
        .bearer_auth(&token)
        .json(&bind)
        .send()
        .await;
    let err = install.expect_err("no HTTP response at all");
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    let list = sim.http.get(&apps).bearer_auth(&token).send().await;
    assert!(list.is_err(), "{list:?}");
    let token_url = sim.url(&format!("/{TENANT}/oauth2/v2.0/token"));
    let form = [("grant_type", "client_credentials"), ("client_id", CLIENT)];
    assert!(sim.http.post(token_url).form(&form).send().await.is_err());

    // applyFirst: the install happened; the log says nothing was answered.
    assert_eq!(sim.installed(&token, "bob@contoso.com", BOT).await.len(), 1);
    let statuses: Vec<u64> = sim
        .requests()
        .await
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [200, 0, 0, 0, 200],
        "token, install, list, token, list"
    );
}

#[tokio::test]
async fn a_throttled_batch_can_answer_424_after_running_its_items() {
    let sim = start().await;
    let token = sim.token().await;
    set_faults(
        &sim,
        json!({"failures": [{"pathContains": "$batch", "status": 424, "retryAfter": 3,
                             "applyFirst": true}]}),
    )
    .await;
    let bind = json!({"teamsApp@odata.bind":
        format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}")});
    let reply = sim
        .post(
            "/v1.0/$batch",
            &token,
            Some(json!({"requests": [
                batch_item("1", "POST", "/users/bob@contoso.com/teamwork/installedApps", Some(bind)),
            ]})),
        )
        .await;
    assert_eq!(reply.status, 424);
    assert_eq!(reply.header("retry-after"), Some("3"));
    assert_eq!(reply.body["responses"][0]["status"], 201, "{}", reply.body);
    assert_eq!(sim.installed(&token, "bob@contoso.com", BOT).await.len(), 1);

    // Without applyFirst the items do not run; an item's dropConnection drops the envelope.
    set_faults(
        &sim,
        json!({"failures": [{"pathContains": "$batch", "status": 503},
                            {"pathContains": "/users/carol", "dropConnection": true}]}),
    )
    .await;
    let carol = "/users/carol@contoso.com/teamwork/installedApps";
    let batch = json!({"requests": [batch_item("1", "GET", carol, None)]});
    assert_eq!(
        sim.post("/v1.0/$batch", &token, Some(batch.clone()))
            .await
            .status,
        503
    );
    let dropped = sim
        .http
        .post(sim.url("/v1.0/$batch"))
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
}

#[tokio::test]
async fn upgrading_at_the_latest_version_is_scriptable() {
    let sim = start().await;
    let token = sim.token().await;
    let id = id_of(&sim.installed(&token, "alice@contoso.com", BOT).await);
    let upgrade = format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{id}/upgrade");
    let faults = sim.admin(Method::GET, "/faults", None).await;
    assert_eq!(faults.body.get("upgradeAtLatest"), None::<&Value>);
    assert_eq!(
        sim.post(&upgrade, &token, None).await.status,
        204,
        "default"
    );
    set_faults(&sim, json!({"upgradeAtLatest": "noContent"})).await;
    assert_eq!(sim.post(&upgrade, &token, None).await.status, 204);
    set_faults(&sim, json!({"upgradeAtLatest": "badRequest"})).await;
    let refused = sim.post(&upgrade, &token, None).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (400, "BadRequest")
    );
    let faults = sim.admin(Method::GET, "/faults", None).await;
    assert_eq!(faults.body["upgradeAtLatest"], "badRequest");
    // With a newer version published it is an upgrade again.
    sim.publish(BOT, "1.0.1", "published").await;
    assert_eq!(sim.post(&upgrade, &token, None).await.status, 204);
    let bad = sim
        .admin(
            Method::PUT,
            "/faults",
            Some(json!({"upgradeAtLatest": "sometimes"})),
        )
        .await;
    assert_eq!(bad.status, 400);
}

const SELF_CLIENT: &str = "99999999-0000-0000-0000-000000000001";
const CATALOG_CLIENT: &str = "99999999-0000-0000-0000-000000000002";

async fn token_of(sim: &Sim, client: &str) -> String {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client),
        ("client_secret", "s"),
        ("scope", GRAPH_SCOPE),
    ];
    let reply = sim.token_form(TENANT, &form).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn token_roles_decide_which_installations_a_client_reaches() {
    let sim = start().await;
    for (id, roles) in [
        (
            SELF_CLIENT,
            json!(["TeamsAppInstallation.ReadWriteSelfForUser.All"]),
        ),
        (CATALOG_CLIENT, json!(["AppCatalog.Read.All"])),
    ] {
        let added = sim
            .admin(
                Method::POST,
                &format!("/tenants/{TENANT}/clients"),
                Some(json!({"id": id, "secret": "s", "roles": roles})),
            )
            .await;
        assert_eq!(added.status, 201, "{:?}", added.body);
    }
    let own = token_of(&sim, SELF_CLIENT).await;
    let apps = "/v1.0/users/alice@contoso.com/teamwork/installedApps";
    let listed = sim.get(apps, &own).await;
    assert_eq!(
        (listed.status.as_u16(), &listed.body["value"]),
        (200, &json!([]))
    );
    let forbidden = |reply: &Reply| {
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (403, "Forbidden"),
            "{:?}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("is not allowed to manage the Teams App"),
            "{message}"
        );
    };
    forbidden(&sim.install(&own, "bob@contoso.com", BOT).await);
    let id = ids_installation(ALICE, BOT);
    forbidden(&sim.post(&format!("{apps}/{id}/upgrade"), &own, None).await);
    forbidden(
        &sim.call(Method::DELETE, &format!("{apps}/{id}"), Some(&own), None)
            .await,
    );
    assert_eq!(sim.get(&format!("{apps}/{id}"), &own).await.status, 404);

    let none = token_of(&sim, CATALOG_CLIENT).await;
    let reply = sim.get(apps, &none).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (403, "Forbidden"));
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Missing role permissions on the request.")
    );
    // The default client (no roles field) has the full set.
    let full = sim.token().await;
    assert_eq!(
        sim.installed(&full, "alice@contoso.com", BOT).await.len(),
        1
    );
}
