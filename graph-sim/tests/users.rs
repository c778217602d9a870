//! Users as the directory keeps them (issue 20): their service plans (`assignedPlans`, which also
//! decide the Teams licence) and soft deletion with restore. Over HTTP against an in-process
//! `SimServer`, like the other tests here.

mod support;

use graph_sim::Seed;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const EXCHANGE_PLAN: &str = "efb87545-963c-4e0d-99df-69c6916d9eb0";
const PLANNER_PLAN: &str = "b737dad2-2f6c-4c65-90e3-ca563267e8b9";
const DAN: &str = "00000000-0000-0000-0002-000000000001";

/// One tenant with the demo client and the given users.
fn seed_users(users: Value) -> Result<Seed, String> {
    let seed = json!({"tenants": [{
        "id": TENANT,
        "clients": [{"id": CLIENT, "secret": "s3cret"}],
        "users": users,
        "apps": [{"id": BOT, "displayName": "Contoso Bot", "definitions": [{"version": "1.0.0"}]}],
    }]});
    Seed::from_json_str(&seed.to_string()).map_err(|e| e.to_string())
}

async fn plans_of(sim: &Sim, token: &str, user: &str) -> Value {
    let reply = sim
        .get(
            &format!("/v1.0/users/{user}?$select=id,assignedPlans"),
            token,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["assignedPlans"].clone()
}

async fn installed_apps_status(sim: &Sim, token: &str, user: &str) -> u16 {
    sim.get(&format!("/v1.0/users/{user}/teamwork/installedApps"), token)
        .await
        .status
        .as_u16()
}

async fn patch_user(sim: &Sim, user: &str, patch: Value) -> Reply {
    sim.admin(
        Method::PATCH,
        &format!("/tenants/{TENANT}/users/{user}"),
        Some(patch),
    )
    .await
}

#[tokio::test]
async fn seeded_plans_come_back_as_assigned_plans_and_decide_the_teams_licence() {
    let plans = json!([
        {"servicePlanId": TEAMS_PLAN, "capabilityStatus": "Suspended"},
        {"servicePlanId": PLANNER_PLAN, "capabilityStatus": "Enabled", "service": "ProjectWorkManagement",
         "assignedDateTime": "2025-03-01T12:00:00Z"},
        {"servicePlanId": EXCHANGE_PLAN, "capabilityStatus": "LockedOut"},
    ]);
    let users = json!([{"id": DAN, "userPrincipalName": "dan@contoso.com", "plans": plans}]);
    let sim = start_with(seed_users(users).unwrap()).await;
    let token = sim.token().await;

    assert_eq!(
        plans_of(&sim, &token, "dan@contoso.com").await,
        json!([
            {"assignedDateTime": "2024-01-15T09:00:00Z", "capabilityStatus": "Suspended",
             "service": "TeamspaceAPI", "servicePlanId": TEAMS_PLAN},
            {"assignedDateTime": "2025-03-01T12:00:00Z", "capabilityStatus": "Enabled",
             "service": "ProjectWorkManagement", "servicePlanId": PLANNER_PLAN},
            {"assignedDateTime": "2024-01-15T09:00:00Z", "capabilityStatus": "LockedOut",
             "service": "exchange", "servicePlanId": EXCHANGE_PLAN},
        ])
    );
    // A suspended Teams plan is no Teams licence.
    assert_eq!(installed_apps_status(&sim, &token, DAN).await, 403);

    // In its grace period (Warning) the subscription still works.
    let warning = json!({"plans": [{"servicePlanId": TEAMS_PLAN, "capabilityStatus": "Warning"}]});
    let patched = patch_user(&sim, DAN, warning).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["teamsEnabled"], true);
    assert_eq!(installed_apps_status(&sim, &token, DAN).await, 200);
    let plans = plans_of(&sim, &token, DAN).await;
    assert_eq!(plans.as_array().unwrap().len(), 1, "replaced: {plans}");

    // teamsEnabled is the shorthand: it flips the Teams plans.
    assert_eq!(
        patch_user(&sim, DAN, json!({"teamsEnabled": false}))
            .await
            .status,
        200
    );
    assert_eq!(
        plans_of(&sim, &token, DAN).await[0]["capabilityStatus"],
        "Deleted"
    );
    assert_eq!(installed_apps_status(&sim, &token, DAN).await, 403);
    let both = json!({"teamsEnabled": true, "plans": []});
    assert_eq!(patch_user(&sim, DAN, both).await.status, 400);
    let no_status = json!({"plans": [{"servicePlanId": TEAMS_PLAN}]});
    assert_eq!(patch_user(&sim, DAN, no_status).await.status, 400);

    // No plans at all: no licence either, and Graph's empty collection.
    assert_eq!(
        patch_user(&sim, DAN, json!({"plans": []})).await.status,
        200
    );
    assert_eq!(plans_of(&sim, &token, DAN).await, json!([]));
    assert_eq!(installed_apps_status(&sim, &token, DAN).await, 403);
}

#[tokio::test]
async fn a_seed_gives_either_teams_enabled_or_plans() {
    let both = json!([{"id": DAN, "userPrincipalName": "dan@contoso.com", "teamsEnabled": false,
                       "plans": []}]);
    let refused = seed_users(both).unwrap_err();
    assert!(
        refused.contains("either teamsEnabled or plans"),
        "{refused}"
    );
    let shorthand = json!([{"id": DAN, "userPrincipalName": "dan@contoso.com"}]);
    let sim = start_with(seed_users(shorthand).unwrap()).await;
    let token = sim.token().await;
    let plans = plans_of(&sim, &token, DAN).await;
    let ids: Vec<&str> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["servicePlanId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [EXCHANGE_PLAN, TEAMS_PLAN],
        "the teamsEnabled shorthand"
    );
}

async fn sales_upns(sim: &Sim, token: &str) -> Vec<String> {
    let reply = directory_get(
        sim,
        &format!("{}&$select=userPrincipalName", counted(SALES)),
        token,
        true,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut upns: Vec<String> = reply.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userPrincipalName"].as_str().unwrap().to_string())
        .collect();
    upns.sort();
    upns
}

#[tokio::test]
async fn a_soft_deleted_user_leaves_reads_and_teams_until_restored() {
    let sim = start().await;
    let token = sim.token().await;
    let alice = format!("/tenants/{TENANT}/users/alice@contoso.com");
    let everyone = ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"];
    assert_eq!(sales_upns(&sim, &token).await, everyone);

    assert_eq!(sim.admin(Method::DELETE, &alice, None).await.status, 204);
    assert_eq!(
        sim.admin(Method::DELETE, &alice, None).await.status,
        404,
        "already deleted"
    );
    assert_eq!(
        sales_upns(&sim, &token).await,
        ["bob@contoso.com", "carol@contoso.com"]
    );
    for path in [
        "/v1.0/users/alice@contoso.com".to_string(),
        format!("/v1.0/users/{ALICE}?$select=id,accountEnabled"),
    ] {
        let gone = sim.get(&path, &token).await;
        assert_eq!(
            (gone.status.as_u16(), gone.code()),
            (404, "Request_ResourceNotFound"),
            "{path}"
        );
    }
    // Teams answers as for a user it never knew.
    let apps = |user: &'static str| format!("/v1.0/users/{user}/teamwork/installedApps");
    let deleted = sim.get(&apps("alice@contoso.com"), &token).await;
    let unknown = sim.get(&apps("nobody@contoso.com"), &token).await;
    assert_eq!((deleted.status.as_u16(), deleted.code()), (404, "NotFound"));
    assert_eq!(
        deleted.body["error"]["message"],
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("nobody", "alice")
    );
    assert_eq!(
        sim.install(&token, "alice@contoso.com", TASKS).await.status,
        404
    );
    // Its memberships are gone, so they cannot be changed either.
    let members = format!("/tenants/{TENANT}/groups/{SALES}/members");
    let add = sim
        .admin(Method::POST, &members, Some(json!({"id": ALICE})))
        .await;
    assert_eq!(add.status, 404);

    let restore = format!("{alice}/restore");
    let restored = sim.admin(Method::POST, &restore, None).await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    assert_eq!(restored.body["deleted"], false);
    assert_eq!(sim.admin(Method::POST, &restore, None).await.status, 404);
    assert_eq!(sales_upns(&sim, &token).await, everyone, "memberships back");
    assert_eq!(
        sim.installed(&token, "alice@contoso.com", BOT).await.len(),
        1,
        "and her installation"
    );
}

#[tokio::test]
async fn a_user_can_start_soft_deleted_and_the_library_deletes_and_restores_too() {
    let users = json!([
        {"id": DAN, "userPrincipalName": "dan@contoso.com", "deleted": true},
    ]);
    let mut seed = seed_users(users).unwrap();
    seed.tenants[0].groups = vec![graph_sim::GroupSeed {
        id: "g".into(),
        display_name: None,
        members: vec![DAN.into()],
    }];
    let sim = start_with(seed).await;
    let token = sim.token().await;
    let path = counted("g");
    let members = || directory_get(&sim, &path, &token, true);
    assert_eq!(members().await.body["@odata.count"], 0);
    assert_eq!(
        sim.get(&format!("/v1.0/users/{DAN}"), &token).await.status,
        404
    );

    sim.server.restore_user(TENANT, "dan@contoso.com").unwrap();
    assert_eq!(members().await.body["@odata.count"], 1);
    assert_eq!(
        sim.get(&format!("/v1.0/users/{DAN}"), &token).await.status,
        200
    );
    sim.server.delete_user(TENANT, DAN).unwrap();
    assert!(sim.server.delete_user(TENANT, DAN).is_err());
    assert_eq!(members().await.body["@odata.count"], 0);
    sim.server.reset();
    let token = sim.token().await;
    let reply = directory_get(&sim, &counted("g"), &token, true).await;
    assert_eq!(reply.body["@odata.count"], 0, "the seed's state again");
}
