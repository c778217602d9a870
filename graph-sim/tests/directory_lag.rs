//! `directoryLagMs` (issue 20): changes to users and group memberships reach directory reads only
//! after the lag, while Teams and the admin API act on the truth at once; the knob per tenant
//! (seed, `PATCH /_sim/tenants/{t}`), for every tenant (`PUT /_sim/faults`, the seed's `faults`,
//! `--directory-lag-ms`). Over HTTP against an in-process `SimServer` (or the binary).

mod support;

use graph_sim::{FaultConfig, Seed, SimOptions};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

async fn set_faults(sim: &Sim, faults: Value) {
    let reply = sim.admin(Method::PUT, "/faults", Some(faults)).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

async fn sales_upns(sim: &Sim, token: &str) -> Vec<String> {
    let path = format!("{}&$select=userPrincipalName", counted(SALES));
    let reply = directory_get(sim, &path, token, true).await;
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

async fn account_enabled(sim: &Sim, token: &str, user: &str) -> Value {
    let reply = sim
        .get(&format!("/v1.0/users/{user}?$select=accountEnabled"), token)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["accountEnabled"].clone()
}

async fn admin_ok(sim: &Sim, method: Method, path: &str, body: Option<Value>) {
    let reply = sim.admin(method, path, body).await;
    assert!(reply.status.is_success(), "{path}: {:?}", reply.body);
}

#[tokio::test]
async fn directory_reads_show_changes_only_after_the_lag_and_teams_at_once() {
    let sim = start().await;
    let token = sim.token().await;
    let demo = ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"];
    // A lag no test step can outrun, so the stale reads below do not depend on speed.
    set_faults(&sim, json!({"directoryLagMs": 60000})).await;
    let leads = format!("/tenants/{TENANT}/groups/{LEADS}/members");
    let users = format!("/tenants/{TENANT}/users");
    admin_ok(
        &sim,
        Method::DELETE,
        &format!("{leads}/bob@contoso.com"),
        None,
    )
    .await;
    let dave = Some(json!({"id": "dave@contoso.com"}));
    admin_ok(&sim, Method::POST, &leads, dave).await;
    let disable = Some(json!({"accountEnabled": false}));
    admin_ok(
        &sim,
        Method::PATCH,
        &format!("{users}/alice@contoso.com"),
        disable,
    )
    .await;
    admin_ok(
        &sim,
        Method::DELETE,
        &format!("{users}/carol@contoso.com"),
        None,
    )
    .await;

    assert_eq!(sales_upns(&sim, &token).await, demo, "members as they were");
    assert_eq!(account_enabled(&sim, &token, ALICE).await, true);
    assert_eq!(
        account_enabled(&sim, &token, "carol@contoso.com").await,
        true
    );
    // Teams and the admin API know the truth already.
    let carol_apps = "/v1.0/users/carol@contoso.com/teamwork/installedApps";
    assert_eq!(sim.get(carol_apps, &token).await.status, 404);
    let again = sim
        .admin(
            Method::POST,
            &leads,
            Some(json!({"id": "dave@contoso.com"})),
        )
        .await;
    assert_eq!(again.status, 409, "dave is a member, whatever reads say");

    // Without the lag, the truth.
    set_faults(&sim, json!({})).await;
    assert_eq!(
        sales_upns(&sim, &token).await,
        ["alice@contoso.com", "dave@contoso.com"]
    );
    assert_eq!(account_enabled(&sim, &token, ALICE).await, false);
    let carol = sim.get("/v1.0/users/carol@contoso.com", &token).await;
    assert_eq!(carol.code(), "Request_ResourceNotFound");
}

#[tokio::test]
async fn a_short_directory_lag_runs_out_by_itself() {
    let sim = start().await;
    let token = sim.token().await;
    let users = format!("/tenants/{TENANT}/users");
    admin_ok(
        &sim,
        Method::DELETE,
        &format!("{users}/carol@contoso.com"),
        None,
    )
    .await;
    set_faults(&sim, json!({"directoryLagMs": 200})).await;
    admin_ok(
        &sim,
        Method::POST,
        &format!("{users}/carol@contoso.com/restore"),
        None,
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..250 {
        seen = sales_upns(&sim, &token).await;
        if seen.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen,
        ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"],
        "the restore surfaces"
    );
}

fn lagging_tenant(directory_lag_ms: u64) -> Value {
    json!({"tenants": [{
        "id": TENANT,
        "directoryLagMs": directory_lag_ms,
        "clients": [{"id": CLIENT, "secret": "s3cret"}],
        "users": [{"id": ALICE, "userPrincipalName": "alice@contoso.com"}],
        "groups": [{"id": SALES, "members": []}],
    }]})
}

#[tokio::test]
async fn the_lag_is_a_tenant_setting_the_faults_override() {
    let seed = Seed::from_json_str(&lagging_tenant(60000).to_string()).unwrap();
    let sim = start_with(seed).await;
    let token = sim.token().await;
    let members = format!("/tenants/{TENANT}/groups/{SALES}/members");
    admin_ok(&sim, Method::POST, &members, Some(json!({"id": ALICE}))).await;
    assert!(sales_upns(&sim, &token).await.is_empty(), "the seed's lag");

    let tenant = format!("/tenants/{TENANT}");
    let patched = sim
        .admin(Method::PATCH, &tenant, Some(json!({"directoryLagMs": 0})))
        .await;
    assert_eq!(patched.body, json!({"directoryLagMs": 0}));
    assert_eq!(sales_upns(&sim, &token).await, ["alice@contoso.com"]);
    let state = sim.admin(Method::GET, "/state", None).await;
    assert_eq!(state.body["tenants"][0]["settings"]["directoryLagMs"], 0);

    // The faults' value wins over the tenant's while set.
    set_faults(&sim, json!({"directoryLagMs": 60000})).await;
    admin_ok(&sim, Method::DELETE, &format!("{members}/{ALICE}"), None).await;
    assert_eq!(sales_upns(&sim, &token).await, ["alice@contoso.com"]);

    for bad in [
        json!({"directoryLagMs": 600001}),
        json!({"directoryLagMs": -1}),
    ] {
        let refused = sim.admin(Method::PATCH, &tenant, Some(bad.clone())).await;
        assert_eq!(refused.status, 400, "{bad}");
        let refused = sim.admin(Method::PUT, "/faults", Some(bad.clone())).await;
        assert_eq!(refused.status, 400, "{bad}");
    }
    let too_long = Seed::from_json_str(&lagging_tenant(600_001).to_string());
    assert!(too_long.is_err());
    sim.server.reset();
    assert_eq!(
        sim.admin(Method::GET, "/state", None).await.body["tenants"][0]["settings"],
        json!({"directoryLagMs": 60000}),
        "reset returns to the seed's settings"
    );
}

#[tokio::test]
async fn seed_faults_start_in_force_under_the_options_and_flags() {
    let mut seed = json!({"faults": {"directoryLagMs": 60000, "latencyMs": 1}});
    seed["tenants"] = lagging_tenant(0)["tenants"].clone();
    // Every tenant knob at tenant level too.
    let knobs = json!({"directoryFlap": 0.5, "pageTokenTtlMs": 1000, "catalogLagMs": 3000});
    if let (Some(tenant), Some(knobs)) = (seed["tenants"][0].as_object_mut(), knobs.as_object()) {
        tenant.extend(knobs.clone());
    }
    let seed = Seed::from_json_str(&seed.to_string()).unwrap();
    let options = SimOptions {
        faults: FaultConfig {
            latency_ms: Some(2),
            ..FaultConfig::default()
        },
        ..SimOptions::default()
    };
    let sim = start_with_options(seed, options).await;
    let settings =
        sim.admin(Method::GET, "/state", None).await.body["tenants"][0]["settings"].clone();
    assert_eq!(
        settings,
        json!({"directoryLagMs": 0, "directoryFlap": 0.5, "pageTokenTtlMs": 1000,
               "catalogLagMs": 3000})
    );
    let start_faults = json!({"latencyMs": 2, "directoryLagMs": 60000});
    assert_eq!(
        sim.admin(Method::GET, "/faults", None).await.body,
        start_faults
    );
    set_faults(&sim, json!({})).await;
    assert_eq!(sim.admin(Method::DELETE, "/faults", None).await.status, 204);
    assert_eq!(
        sim.admin(Method::GET, "/faults", None).await.body,
        start_faults
    );

    let bad_faults = json!({"faults": {"directoryLagMs": 600001}, "tenants": []});
    assert!(Seed::from_json_str(&bad_faults.to_string()).is_err());

    let flags = [
        "--directory-lag-ms",
        "1500",
        "--directory-flap",
        "0.25",
        "--page-token-ttl-ms",
        "300000",
        "--catalog-lag-ms",
        "2500",
    ];
    let (mut child, base) = spawn_binary(&flags).await;
    let faults: Value = reqwest::get(format!("{base}/_sim/faults"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        faults,
        json!({"directoryLagMs": 1500, "directoryFlap": 0.25, "pageTokenTtlMs": 300000,
               "catalogLagMs": 2500})
    );
    child.kill().await.unwrap();
}
