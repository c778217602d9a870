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
