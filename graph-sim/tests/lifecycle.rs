//! Starting and stopping: invalid seeds refuse to start, shutdown stops the server, and the
//! `graph-sim` binary as a user runs it.
//! Over HTTP the way a client following graph-contract.md would; every test starts its own
//! in-process `SimServer` (or the binary), and one that cannot start fails the test.

mod support;

use std::time::Duration;

use graph_sim::{Seed, SimOptions, SimServer};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn invalid_seeds_refuse_to_start() {
    let seed = Seed::from_yaml_str("tenants: [{id: t, installations: [{user: ghost, app: a}]}]");
    assert!(seed.is_err());
    let seed = Seed {
        page_size: Some(0),
        ..Seed::default()
    };
    let started =
        SimServer::start("127.0.0.1:0".parse().unwrap(), seed, SimOptions::default()).await;
    assert!(started.is_err());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = start().await;
    let url = sim.url("/_sim/healthz");
    assert_eq!(sim.http.get(&url).send().await.unwrap().status(), 200);
    sim.server.shutdown().await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(http.get(&url).send().await.is_err());
}

#[tokio::test]
async fn the_binary_prints_its_address_and_serves_the_seed() {
    let (mut child, base) = spawn_binary(&["--token-lifetime", "120"]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = binary_token(&http, &base, GRAPH_SCOPE).await;
    assert_eq!(token["expires_in"], 120);
    let list: Value = http
        .get(format!(
            "{base}/v1.0/users/alice@contoso.com/teamwork/installedApps"
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    child.kill().await.unwrap();
}

/// The acceptance walk, with a plain HTTP client against the binary: token, list,
/// install, install again → 409, publish a version, upgrade → 204, list shows it, uninstall →
/// 204, again → 404.
#[tokio::test]
async fn a_plain_http_client_gets_the_documented_answers_from_the_binary() {
    let (mut child, base) = spawn_binary(&[]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = binary_token(&http, &base, GRAPH_SCOPE).await;
    let bearer = token["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let apps = format!("{base}/v1.0/users/bob@contoso.com/teamwork/installedApps");
    let list = || {
        http.get(format!(
            "{apps}?$expand=teamsApp,teamsAppDefinition&$filter=teamsApp/id eq '{BOT}'"
        ))
        .bearer_auth(&bearer)
        .send()
    };
    let listed: Value = list().await.unwrap().json().await.unwrap();
    assert_eq!(listed["value"], json!([]), "bob has nothing yet");

    // The bind URL names Graph itself, not the address the client dials (graph-sim checks).
    let bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}")});
    let install = || http.post(&apps).bearer_auth(&bearer).json(&bind).send();
    let first = install().await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.text().await.unwrap().is_empty(), "201 has no body");
    let again = install().await.unwrap();
    assert_eq!(again.status(), 409);
    let error: Value = again.json().await.unwrap();
    assert!(
        error["error"]["innerError"]["request-id"].is_string(),
        "{error}"
    );

    let listed: Value = list().await.unwrap().json().await.unwrap();
    let installation = &listed["value"][0];
    assert_eq!(installation["teamsAppDefinition"]["version"], "1.0.0");
    let id = installation["id"]
        .as_str()
        .expect("installation id")
        .to_string();

    let published = http
        .post(format!(
            "{base}/_sim/tenants/{TENANT}/apps/{BOT}/definitions"
        ))
        .json(&json!({"version": "1.1.0", "publishingState": "published"}))
        .send()
        .await
        .unwrap();
    assert!(published.status().is_success(), "{}", published.status());
    let upgrade = http
        .post(format!("{apps}/{id}/upgrade"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), 204);
    let listed: Value = list().await.unwrap().json().await.unwrap();
    assert_eq!(listed["value"][0]["teamsAppDefinition"]["version"], "1.1.0");

    let uninstall = || {
        http.delete(format!("{apps}/{id}"))
            .bearer_auth(&bearer)
            .send()
    };
    assert_eq!(uninstall().await.unwrap().status(), 204);
    assert_eq!(uninstall().await.unwrap().status(), 404);
    child.kill().await.unwrap();
}
