//! The organization's app catalog: `$filter` and `$expand=appDefinitions`.
//! Over HTTP the way a client following graph-contract.md would; every test starts its own
//! in-process `SimServer` (or the binary), and one that cannot start fails the test.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn catalog_filters_and_expands_definitions() {
    let sim = start().await;
    let token = sim.token().await;
    let by_ext = sim
        .get("/v1.0/appCatalogs/teamsApps?$filter=externalId eq 'com.contoso.tasks'&$expand=appDefinitions", &token)
        .await;
    assert_eq!(by_ext.status, 200);
    let apps = by_ext.body["value"].as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["id"], TASKS);
    let states: Vec<(&str, &str)> = apps[0]["appDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["version"].as_str().unwrap(),
                d["publishingState"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, vec![("2.1.0", "published"), ("2.2.0", "submitted")]);

    let by_id = sim
        .get(
            &format!("/v1.0/appCatalogs/teamsApps?$filter=id eq '{BOT}'"),
            &token,
        )
        .await;
    assert_eq!(by_id.body["value"][0]["displayName"], "Contoso Bot");
    assert!(by_id.body["value"][0].get("appDefinitions").is_none());
    let org = sim
        .get(
            "/v1.0/appCatalogs/teamsApps?$filter=distributionMethod eq 'organization'",
            &token,
        )
        .await;
    assert_eq!(org.body["value"].as_array().unwrap().len(), 2);
    let none = sim
        .get(
            "/v1.0/appCatalogs/teamsApps?$filter=distributionMethod eq 'store'",
            &token,
        )
        .await;
    assert_eq!(none.body["value"], json!([]));
}
