//! Teams' own lag and refusals (issue 23): a user the directory knows but Teams has not
//! provisioned, a catalog that shows new apps late, upgrades that do nothing, apps the tenant
//! admin blocked. Over HTTP against an in-process `SimServer`, like the other tests here.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const BOB: &str = "22222222-2222-2222-2222-222222222223";

async fn patch_user(sim: &Sim, user: &str, patch: Value) {
    let path = format!("/tenants/{TENANT}/users/{user}");
    let reply = sim.admin(Method::PATCH, &path, Some(patch)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn a_user_teams_has_not_provisioned_is_known_to_the_directory_only() {
    let sim = start().await;
    let token = sim.token().await;
    patch_user(&sim, "bob@contoso.com", json!({"teamsProvisioned": false})).await;

    // The directory knows bob.
    assert_eq!(
        sim.get(&format!("/v1.0/users/{BOB}"), &token).await.status,
        200
    );
    let members = directory_get(&sim, &counted(SALES), &token, true).await;
    assert_eq!(members.body["@odata.count"], 3);

    // Teams does not, whichever way bob is named.
    let not_found = format!("User Id '{BOB}' not found.");
    for user in ["bob@contoso.com", BOB] {
        let list = sim
            .get(
                &format!("/v1.0/users/{user}/teamwork/installedApps"),
                &token,
            )
            .await;
        let install = sim.install(&token, user, BOT).await;
        for reply in [list, install] {
            assert_eq!((reply.status.as_u16(), reply.code()), (404, "NotFound"));
            assert_eq!(reply.body["error"]["message"], not_found);
            assert!(reply.body["error"]["innerError"]["request-id"].is_string());
        }
    }

    // Once Teams catches up, the same calls work.
    patch_user(&sim, BOB, json!({"teamsProvisioned": true})).await;
    assert_eq!(
        sim.install(&token, "bob@contoso.com", BOT).await.status,
        201
    );
    assert_eq!(sim.installed(&token, "bob@contoso.com", BOT).await.len(), 1);
    let state = sim.admin(Method::GET, "/state", None).await;
    let bob = state.body["tenants"][0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == BOB)
        .cloned()
        .unwrap();
    assert_eq!(bob["teamsProvisioned"], true);
}

#[tokio::test]
async fn a_seeded_user_can_start_unprovisioned() {
    let mut seed = seed();
    seed.tenants[0].users[1].teams_provisioned = false;
    let sim = start_with(seed).await;
    let token = sim.token().await;
    let reply = sim
        .get("/v1.0/users/bob@contoso.com/teamwork/installedApps", &token)
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.body["error"]["message"],
        format!("User Id '{BOB}' not found.")
    );
}

async fn set_faults(sim: &Sim, faults: Value) {
    let reply = sim.admin(Method::PUT, "/faults", Some(faults)).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

const NEW_APP: &str = "55555555-0000-0000-0000-000000000001";

/// The published versions of `app` the catalog shows (empty: the catalog does not show `app`).
async fn catalog_versions(sim: &Sim, token: &str, app: &str) -> Vec<String> {
    let reply = sim
        .get(
            &format!("/v1.0/appCatalogs/teamsApps?$filter=id eq '{app}'&$expand=appDefinitions"),
            token,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["appDefinitions"].as_array().unwrap())
        .filter(|d| d["publishingState"] == "published")
        .map(|d| d["version"].as_str().unwrap().to_string())
        .collect()
}

async fn upgrade_alices_bot(sim: &Sim, token: &str) -> Reply {
    let id = sim.installed(token, "alice@contoso.com", BOT).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{id}/upgrade");
    sim.post(&path, token, None).await
}

async fn alices_bot_version(sim: &Sim, token: &str) -> String {
    let installed = sim.installed(token, "alice@contoso.com", BOT).await;
    installed[0]["teamsAppDefinition"]["version"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_catalog_shows_new_apps_and_versions_only_after_the_catalog_lag() {
    let sim = start().await;
    let token = sim.token().await;
    set_faults(&sim, json!({"catalogLagMs": 60000})).await;
    let app = json!({"id": NEW_APP, "displayName": "New", "definitions": [{"version": "1.0.0"}]});
    let apps = format!("/tenants/{TENANT}/apps");
    assert_eq!(sim.admin(Method::POST, &apps, Some(app)).await.status, 201);
    assert_eq!(sim.publish(BOT, "1.1.0", "published").await.status, 201);

    // Not in the catalog yet: not listed, not found, not installable.
    assert!(catalog_versions(&sim, &token, NEW_APP).await.is_empty());
    let one = sim
        .get(&format!("/v1.0/appCatalogs/teamsApps/{NEW_APP}"), &token)
        .await;
    assert_eq!(one.status, 404);
    let install = sim.install(&token, "bob@contoso.com", NEW_APP).await;
    let unknown = sim
        .install(
            &token,
            "bob@contoso.com",
            "99999999-0000-0000-0000-000000000000",
        )
        .await;
    assert_eq!((install.status.as_u16(), install.code()), (404, "NotFound"));
    assert_eq!(
        install.body["error"]["message"],
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("99999999-0000-0000-0000-000000000000", NEW_APP),
        "as for an app the catalog never had"
    );
    // The new version neither: an upgrade stays where it is.
    assert_eq!(catalog_versions(&sim, &token, BOT).await, ["1.0.0"]);
    assert_eq!(upgrade_alices_bot(&sim, &token).await.status, 204);
    assert_eq!(alices_bot_version(&sim, &token).await, "1.0.0");

    // Without the lag the catalog shows both; the same calls go through.
    set_faults(&sim, json!({})).await;
    assert_eq!(catalog_versions(&sim, &token, NEW_APP).await, ["1.0.0"]);
    assert_eq!(
        sim.install(&token, "bob@contoso.com", NEW_APP).await.status,
        201
    );
    assert_eq!(upgrade_alices_bot(&sim, &token).await.status, 204);
    assert_eq!(alices_bot_version(&sim, &token).await, "1.1.0");

    // A short lag runs out by itself (here a tenant setting).
    let tenant = format!("/tenants/{TENANT}");
    let patched = sim
        .admin(Method::PATCH, &tenant, Some(json!({"catalogLagMs": 200})))
        .await;
    assert_eq!(patched.body["catalogLagMs"], 200, "{}", patched.body);
    assert_eq!(sim.publish(BOT, "1.2.0", "published").await.status, 201);
    let mut versions = Vec::new();
    for _ in 0..250 {
        versions = catalog_versions(&sim, &token, BOT).await;
        if versions.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        versions,
        ["1.0.0", "1.1.0", "1.2.0"],
        "the version surfaces"
    );
    let too_long = json!({"catalogLagMs": 600001});
    assert_eq!(
        sim.admin(Method::PATCH, &tenant, Some(too_long))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn the_next_upgrades_can_answer_204_and_change_nothing() {
    let mut seed = seed();
    seed.faults = serde_json::from_value(json!({"upgradeNoopCount": 1})).unwrap();
    let sim = start_with(seed).await;
    let token = sim.token().await;
    assert_eq!(sim.publish(BOT, "1.1.0", "published").await.status, 201);
    set_faults(&sim, json!({"upgradeNoopCount": 2})).await;

    // A failing upgrade answers as always and uses nothing up.
    let unknown = "/v1.0/users/alice@contoso.com/teamwork/installedApps/bm9wZQ==/upgrade";
    assert_eq!(sim.post(unknown, &token, None).await.status, 404);
    for left in [json!({"upgradeNoopCount": 1}), json!({})] {
        let reply = upgrade_alices_bot(&sim, &token).await;
        assert_eq!(reply.status, 204);
        assert_eq!(reply.body, Value::Null, "no body, as a real upgrade");
        assert_eq!(alices_bot_version(&sim, &token).await, "1.0.0");
        assert_eq!(sim.admin(Method::GET, "/faults", None).await.body, left);
    }
    assert_eq!(upgrade_alices_bot(&sim, &token).await.status, 204);
    assert_eq!(
        alices_bot_version(&sim, &token).await,
        "1.1.0",
        "this one upgrades"
    );

    // The seed's count is the start-up one: a reset brings it back.
    sim.server.reset();
    let token = sim.token().await;
    assert_eq!(sim.publish(BOT, "1.1.0", "published").await.status, 201);
    assert_eq!(upgrade_alices_bot(&sim, &token).await.status, 204);
    assert_eq!(alices_bot_version(&sim, &token).await, "1.0.0");
    assert_eq!(upgrade_alices_bot(&sim, &token).await.status, 204);
    assert_eq!(alices_bot_version(&sim, &token).await, "1.1.0");
}

#[tokio::test]
async fn apps_the_tenant_admin_blocked_cannot_be_installed_or_upgraded() {
    let mut seed = seed();
    seed.tenants[0].blocked_apps = vec!["COM.contoso.tasks".into()];
    let sim = start_with(seed).await;
    let token = sim.token().await;
    let assert_blocked = |reply: Reply| {
        assert_eq!((reply.status.as_u16(), reply.code()), (403, "Forbidden"));
        let message = reply.body["error"]["message"].as_str().unwrap().to_string();
        assert!(
            message.ends_with("explicitly blocked by the tenant admin."),
            "{message}"
        );
    };

    // Blocked by manifest id (any case); other apps install.
    assert_blocked(sim.install(&token, "bob@contoso.com", TASKS).await);
    assert_eq!(
        sim.install(&token, "bob@contoso.com", BOT).await.status,
        201
    );

    // A new list replaces the old: the bot (by catalog id) now, its upgrade refused too.
    let tenant = format!("/tenants/{TENANT}");
    let patched = sim
        .admin(Method::PATCH, &tenant, Some(json!({"blockedApps": [BOT]})))
        .await;
    assert_eq!(
        patched.body["blockedApps"],
        json!([BOT]),
        "{}",
        patched.body
    );
    assert_eq!(sim.publish(BOT, "1.1.0", "published").await.status, 201);
    assert_blocked(upgrade_alices_bot(&sim, &token).await);
    assert_eq!(alices_bot_version(&sim, &token).await, "1.0.0");
    assert_eq!(
        sim.install(&token, "carol@contoso.com", TASKS).await.status,
        201
    );

    // The faults' list stands for every tenant's while set.
    set_faults(&sim, json!({"blockedApps": [TASKS]})).await;
    assert_blocked(sim.install(&token, "alice@contoso.com", TASKS).await);
    assert_eq!(upgrade_alices_bot(&sim, &token).await.status, 204);
    assert_eq!(alices_bot_version(&sim, &token).await, "1.1.0");
    let empty = json!({"blockedApps": [" "]});
    assert_eq!(
        sim.admin(Method::PUT, "/faults", Some(empty)).await.status,
        400
    );
}
