//! Directory reads for group rollouts: `GET /groups/{id}/transitiveMembers/microsoft.graph.user`
//! (ConsistencyLevel, `$select`, `$count`, paging by `@odata.nextLink`), `GET /users/{id}`, the
//! roles they need, the users' directory properties (`accountEnabled`, `userType`,
//! `assignedPlans`), the admin endpoints that change members and users, and the `directoryRead`
//! budget. Over HTTP, as a client following Graph's docs would call them.

mod support;

use std::collections::HashSet;

use graph_sim::{Seed, UserPatch, UserType};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const MEMBERS_ONLY_CLIENT: &str = "abababab-0000-0000-0000-00000000000a";
const USERS_ONLY_CLIENT: &str = "abababab-0000-0000-0000-00000000000b";

fn user_id(i: usize) -> String {
    format!("00000000-0000-0000-0001-{i:012}")
}

/// One tenant with the demo client, `users` users `u{i}@contoso.com` and the given groups.
fn seed_with(users: usize, groups: Value) -> Seed {
    let users: Vec<Value> = (0..users)
        .map(|i| json!({"id": user_id(i), "userPrincipalName": format!("u{i}@contoso.com")}))
        .collect();
    let seed = json!({"tenants": [{
        "id": TENANT,
        "clients": [{"id": CLIENT, "secret": "s3cret"}],
        "users": users,
        "groups": groups,
    }]});
    Seed::from_json_str(&seed.to_string()).expect("seed loads")
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(user_id).collect()
}

/// `big` holds users 0..150, `mid` and `low`; `mid` holds 100..200 and `big` (a cycle); `low`
/// holds 190..250 (one of them by UPN) and `mid`. Transitively each holds users 0..250.
fn nested_groups() -> Value {
    let mut big = ids(0..150);
    big.extend(["mid".to_string(), "low".to_string()]);
    let mut mid = ids(100..200);
    mid.push("big".into());
    let mut low = ids(190..249);
    low.extend(["u249@contoso.com".to_string(), "mid".to_string()]);
    json!([
        {"id": "big", "displayName": "Everyone", "members": big},
        {"id": "mid", "members": mid},
        {"id": "low", "members": low},
    ])
}

#[tokio::test]
async fn transitive_members_page_through_nested_groups_each_user_once() {
    let sim = start_with(seed_with(260, nested_groups())).await;
    let token = sim.token().await;
    let first = format!(
        "{}?$select=id,userPrincipalName&$count=true&$top=100",
        members_path("big")
    );
    let pages = all_pages(&sim, &first, &token).await;

    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["value"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(pages[0]["@odata.count"], 250, "the count is of all pages");
    assert!(pages[1..].iter().all(|p| p.get("@odata.count").is_none()));
    let link = pages[0]["@odata.nextLink"].as_str().unwrap();
    assert!(link.starts_with(&sim.url(&members_path("big"))), "{link}");
    assert!(
        link.contains("$skiptoken=") && link.contains("$select="),
        "{link}"
    );
    assert_eq!(
        pages[0]["@odata.context"],
        sim.url("/v1.0/$metadata#users(id,userPrincipalName)")
    );

    let members: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    let got: Vec<&str> = members.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids(0..250), "each user once, in id order");
    let upns: HashSet<&str> = members
        .iter()
        .map(|m| m["userPrincipalName"].as_str().unwrap())
        .collect();
    assert!(upns.contains("u249@contoso.com"));
    let keys: HashSet<&str> = members[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["@odata.type", "id", "userPrincipalName"])
    );

    // The cycle runs both ways; the alternative path form names the same group.
    let mid = all_pages(
        &sim,
        "/v1.0/groups('mid')/transitiveMembers/microsoft.graph.user?$top=999&$count=true",
        &token,
    )
    .await;
    assert_eq!(mid.len(), 1);
    assert_eq!(mid[0]["value"].as_array().unwrap().len(), 250);
}

#[tokio::test]
async fn consistency_level_eventual_is_required_on_every_page() {
    let sim = start_with(seed_with(5, json!([{"id": "g", "members": ids(0..5)}]))).await;
    let token = sim.token().await;
    let first = format!("{}?$top=2&$count=true", members_path("g"));
    let refused = directory_get(&sim, &first, &token, false).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (400, "Request_UnsupportedQuery")
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ConsistencyLevel")
    );
    // Without $count too: the cast alone is an advanced query.
    let plain = directory_get(&sim, &members_path("g"), &token, false).await;
    assert_eq!(plain.code(), "Request_UnsupportedQuery");

    let page = directory_get(&sim, &first, &token, true).await;
    assert_eq!(page.status, 200);
    let next = page.body["@odata.nextLink"].as_str().unwrap();
    let refused = directory_get(&sim, next, &token, false).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (400, "Request_UnsupportedQuery")
    );
    let page2 = directory_get(&sim, next, &token, true).await;
    assert_eq!(page2.body["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_queries_and_unknown_groups_are_graphs_errors() {
    let sim = start_with(seed_with(1, json!([{"id": "g", "members": ids(0..1)}]))).await;
    let token = sim.token().await;
    let too_big = directory_get(
        &sim,
        &format!("{}?$top=1000", members_path("g")),
        &token,
        true,
    )
    .await;
    assert_eq!(
        (too_big.status.as_u16(), too_big.code()),
        (400, "Request_UnsupportedQuery")
    );
    let at_max = directory_get(
        &sim,
        &format!("{}?$top=999&$count=true", members_path("g")),
        &token,
        true,
    )
    .await;
    assert_eq!(at_max.status, 200);
    let unknown_property = directory_get(
        &sim,
        &format!("{}?$select=id,shoeSize", members_path("g")),
        &token,
        true,
    )
    .await;
    assert_eq!(unknown_property.status, 400);

    let missing = "12121212-0000-0000-0000-000000000000";
    let reply = directory_get(
        &sim,
        &format!("{}?$count=true", members_path(missing)),
        &token,
        true,
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (404, "Request_ResourceNotFound")
    );
    assert_eq!(
        reply.body["error"]["message"],
        format!(
            "Resource '{missing}' does not exist or one of its queried reference-property objects are not present."
        )
    );
    let user = directory_get(&sim, "/v1.0/users/nobody@contoso.com", &token, false).await;
    assert_eq!(
        (user.status.as_u16(), user.code()),
        (404, "Request_ResourceNotFound")
    );
}
#[tokio::test]
async fn roles_decide_whether_members_and_their_properties_can_be_read() {
    let sim = start().await;
    let select = "?$select=id,userPrincipalName,accountEnabled,userType,assignedPlans,displayName&$count=true";
    let path = format!("{}{select}", members_path(SALES));

    let users_only = token_with_roles(&sim, USERS_ONLY_CLIENT, json!(["User.Read.All"])).await;
    let denied = directory_get(&sim, &path, &users_only, true).await;
    assert_eq!(
        (denied.status.as_u16(), denied.code()),
        (403, "Authorization_RequestDenied")
    );
    assert_eq!(
        denied.body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    assert_eq!(
        directory_get(&sim, "/v1.0/users/alice@contoso.com", &users_only, false)
            .await
            .status,
        200
    );

    // May read memberships, not users: every member is there, but as a bare id.
    let members_only =
        token_with_roles(&sim, MEMBERS_ONLY_CLIENT, json!(["GroupMember.Read.All"])).await;
    let reply = directory_get(&sim, &path, &members_only, true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let members = reply.body["value"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for member in members {
        assert!(member["id"].is_string(), "{member}");
        for property in [
            "userPrincipalName",
            "accountEnabled",
            "userType",
            "assignedPlans",
            "displayName",
        ] {
            assert!(member[property].is_null(), "{property} of {member}");
            assert!(
                member.get(property).is_some(),
                "selected, so present: {member}"
            );
        }
    }
    let user = directory_get(&sim, "/v1.0/users/alice@contoso.com", &members_only, false).await;
    assert_eq!(
        (user.status.as_u16(), user.code()),
        (403, "Authorization_RequestDenied")
    );
}

fn teams_plan(user: &Value) -> Option<&str> {
    user["assignedPlans"]
        .as_array()?
        .iter()
        .find(|p| p["servicePlanId"] == TEAMS_PLAN)?["capabilityStatus"]
        .as_str()
}

#[tokio::test]
async fn users_carry_account_state_type_and_teams_plan() {
    let seed = json!({"tenants": [{
        "id": TENANT,
        "clients": [{"id": CLIENT, "secret": "s3cret"}],
        "users": [
            {"id": user_id(1), "userPrincipalName": "member@contoso.com", "displayName": "Member"},
            {"id": user_id(2), "userPrincipalName": "guest_fabrikam.com#EXT#@contoso.com", "userType": "Guest"},
            {"id": user_id(3), "userPrincipalName": "gone@contoso.com", "accountEnabled": false},
            {"id": user_id(4), "userPrincipalName": "nolicence@contoso.com", "teamsEnabled": false},
        ],
        "groups": [{"id": "g", "members": [user_id(1), user_id(2), user_id(3), user_id(4)]}],
    }]});
    let sim = start_with(Seed::from_json_str(&seed.to_string()).unwrap()).await;
    let token = sim.token().await;
    let path = format!(
        "{}?$select=id,accountEnabled,userType,assignedPlans&$count=true",
        members_path("g")
    );
    let reply = directory_get(&sim, &path, &token, true).await;
    let members = reply.body["value"].as_array().unwrap();
    let row = |m: &Value| {
        (
            m["accountEnabled"].as_bool().unwrap(),
            m["userType"].as_str().unwrap().to_string(),
            teams_plan(m).map(str::to_string),
        )
    };
    let rows: Vec<_> = members.iter().map(row).collect();
    let enabled = Some("Enabled".to_string());
    assert_eq!(
        rows,
        [
            (true, "Member".into(), enabled.clone()),
            (true, "Guest".into(), enabled.clone()),
            (false, "Member".into(), enabled.clone()),
            (true, "Member".into(), Some("Deleted".to_string())),
        ]
    );
    assert!(
        members[0]["assignedPlans"].as_array().unwrap().len() > 1,
        "other plans too, so a client must look at the id"
    );

    // One user, by UPN in either path form; without $select, Graph's default set.
    let one = directory_get(
        &sim,
        "/v1.0/users('nolicence@contoso.com')?$select=id,assignedPlans",
        &token,
        false,
    )
    .await;
    assert_eq!(teams_plan(&one.body), Some("Deleted"), "{}", one.body);
    let default = directory_get(&sim, "/v1.0/users/member@contoso.com", &token, false).await;
    assert_eq!(default.body["displayName"], "Member");
    assert_eq!(default.body["id"], user_id(1));
    assert!(
        default.body.get("accountEnabled").is_none(),
        "not in the default set"
    );
    let guest = directory_get(
        &sim,
        "/v1.0/users/guest_fabrikam.com%23EXT%23@contoso.com?$select=userType",
        &token,
        false,
    )
    .await;
    assert_eq!(guest.body["userType"], "Guest", "{}", guest.body);
}

async fn sales_members(sim: &Sim, token: &str) -> Vec<String> {
    let reply = directory_get(
        sim,
        &format!(
            "{}?$select=userPrincipalName&$count=true",
            members_path(SALES)
        ),
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
async fn admin_endpoints_change_members_and_users_until_reset() {
    let sim = start().await;
    let token = sim.token().await;
    let demo = ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"];
    assert_eq!(sales_members(&sim, &token).await, demo);

    let members = format!("/tenants/{TENANT}/groups/{LEADS}/members");
    let add = |id: &str| sim.admin(Method::POST, &members, Some(json!({"id": id})));
    assert_eq!(add("dave@contoso.com").await.status, 204);
    assert_eq!(
        add("DAVE@contoso.com").await.status,
        409,
        "already a member"
    );
    assert_eq!(add("nobody@contoso.com").await.status, 404);
    assert_eq!(add(SALES).await.status, 204, "a group, making a cycle");
    assert_eq!(
        sim.admin(
            Method::POST,
            &format!("/tenants/{TENANT}/groups/nope/members"),
            Some(json!({"id": ALICE}))
        )
        .await
        .status,
        404
    );
    let mut grown = demo.to_vec();
    grown.push("dave@contoso.com");
    assert_eq!(sales_members(&sim, &token).await, grown);

    let admin = &sim;
    let remove = |id: &str| {
        let path = format!("{members}/{id}");
        async move { admin.admin(Method::DELETE, &path, None).await }
    };
    assert_eq!(remove("bob@contoso.com").await.status, 204);
    assert_eq!(
        remove("bob@contoso.com").await.status,
        404,
        "no longer a member"
    );
    assert_eq!(
        remove(ALICE).await.status,
        404,
        "a member of Sales, not of Sales Leads"
    );
    assert_eq!(
        sales_members(&sim, &token).await,
        ["alice@contoso.com", "carol@contoso.com", "dave@contoso.com"]
    );

    let patched = sim
        .admin(
            Method::PATCH,
            &format!("/tenants/{TENANT}/users/alice@contoso.com"),
            Some(json!({"accountEnabled": false, "teamsEnabled": false, "userType": "Guest"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["accountEnabled"], false);
    for bad in [json!({"userType": "Visitor"}), json!({"colour": "blue"})] {
        let reply = sim
            .admin(
                Method::PATCH,
                &format!("/tenants/{TENANT}/users/{ALICE}"),
                Some(bad),
            )
            .await;
        assert_eq!(reply.status, 400);
    }
    assert_eq!(
        sim.admin(
            Method::PATCH,
            &format!("/tenants/{TENANT}/users/nobody"),
            Some(json!({}))
        )
        .await
        .status,
        404
    );
    let alice = directory_get(
        &sim,
        &format!("/v1.0/users/{ALICE}?$select=accountEnabled,userType,assignedPlans"),
        &token,
        false,
    )
    .await;
    assert_eq!(
        (&alice.body["accountEnabled"], &alice.body["userType"]),
        (&json!(false), &json!("Guest"))
    );
    assert_eq!(teams_plan(&alice.body), Some("Deleted"));
    let licence = sim
        .get(
            "/v1.0/users/alice@contoso.com/teamwork/installedApps",
            &token,
        )
        .await;
    assert_eq!(licence.status, 403, "teamsEnabled is the Teams licence too");

    assert_eq!(sim.admin(Method::POST, "/reset", None).await.status, 204);
    let token = sim.token().await;
    assert_eq!(sales_members(&sim, &token).await, demo);
    let alice = directory_get(
        &sim,
        &format!("/v1.0/users/{ALICE}?$select=accountEnabled,userType,assignedPlans"),
        &token,
        false,
    )
    .await;
    assert_eq!(
        (&alice.body["accountEnabled"], &alice.body["userType"]),
        (&json!(true), &json!("Member"))
    );
    assert_eq!(teams_plan(&alice.body), Some("Enabled"));
}

#[tokio::test]
async fn the_in_process_server_changes_members_and_users_too() {
    let sim = start().await;
    let token = sim.token().await;
    let server = &sim.server;
    server
        .add_group_member(TENANT, LEADS, "erin@contoso.com")
        .unwrap();
    assert!(
        server
            .add_group_member(TENANT, LEADS, "erin@contoso.com")
            .is_err()
    );
    server.remove_group_member(TENANT, SALES, LEADS).unwrap();
    assert!(server.remove_group_member(TENANT, SALES, LEADS).is_err());
    assert_eq!(sales_members(&sim, &token).await, ["alice@contoso.com"]);
    let patch = UserPatch {
        user_type: Some(UserType::Guest),
        ..UserPatch::default()
    };
    server
        .patch_user(TENANT, "carol@contoso.com", patch.clone())
        .unwrap();
    assert!(server.patch_user(TENANT, "nobody", patch).is_err());
    let state = server.state();
    let leads = state["tenants"][0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == LEADS)
        .unwrap();
    assert_eq!(leads["members"].as_array().unwrap().len(), 3, "{leads}");
    server.reset();
    let token = sim.token().await;
    assert_eq!(sales_members(&sim, &token).await.len(), 3);
}

#[tokio::test]
async fn the_directory_read_budget_throttles_only_directory_reads() {
    let sim = start().await;
    let token = sim.token().await;
    let faults = json!({"budgets": {"directoryRead": 2}});
    assert_eq!(
        sim.admin(Method::PUT, "/faults", Some(faults)).await.status,
        204
    );
    assert_eq!(
        directory_get(&sim, &counted(SALES), &token, true)
            .await
            .status,
        200
    );
    assert_eq!(
        sim.get("/v1.0/users/bob@contoso.com", &token).await.status,
        200
    );
    let over = directory_get(&sim, &counted(SALES), &token, true).await;
    assert_eq!(
        (over.status.as_u16(), over.code()),
        (429, "TooManyRequests")
    );
    assert_eq!(over.header("retry-after"), Some("1"));
    assert_eq!(
        sim.get("/v1.0/users/bob@contoso.com", &token).await.status,
        429
    );
    for _ in 0..4 {
        let apps = sim
            .get("/v1.0/users/bob@contoso.com/teamwork/installedApps", &token)
            .await;
        assert_eq!(
            apps.status, 200,
            "installedApps reads have their own budget"
        );
        assert_eq!(
            sim.get("/v1.0/appCatalogs/teamsApps", &token).await.status,
            200
        );
    }
    let classes: Vec<(String, u64)> = sim
        .requests()
        .await
        .iter()
        .filter(|r| r["class"] == "directoryRead")
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(classes.len(), 4, "{classes:?}");
    assert_eq!(classes.iter().filter(|(_, s)| *s == 429).count(), 2);
}

#[tokio::test]
async fn batch_items_carry_their_own_consistency_level() {
    let sim = start().await;
    let token = sim.token().await;
    let url = format!("/groups/{SALES}/transitiveMembers/microsoft.graph.user?$count=true");
    let mut eventual = batch_item("eventual", "GET", &url, None);
    eventual["headers"] = json!({"ConsistencyLevel": "eventual"});
    let plain = batch_item("plain", "GET", &url, None);
    let reply = sim
        .post(
            "/v1.0/$batch",
            &token,
            Some(json!({"requests": [eventual, plain]})),
        )
        .await;
    let item = |id: &str| {
        reply.body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(item("eventual")["status"], 200);
    assert_eq!(item("eventual")["body"]["@odata.count"], 3);
    assert_eq!(item("plain")["status"], 400);
    assert_eq!(
        item("plain")["body"]["error"]["code"],
        "Request_UnsupportedQuery"
    );
    let envelope = sim
        .requests()
        .await
        .into_iter()
        .find(|r| r["path"] == "/v1.0/$batch")
        .unwrap();
    assert!(
        envelope.get("class").is_none(),
        "the envelope counts against no budget"
    );
}

#[tokio::test]
async fn thousands_of_members_page_quickly_at_the_largest_page_size() {
    // 2,500 users: 1,000 direct, 1,000 in a nested group, 500 two levels down, with overlaps.
    let groups = json!([
        {"id": "all", "members": ids(0..1000).into_iter().chain(["east".to_string()]).collect::<Vec<_>>()},
        {"id": "east", "members": ids(900..2000).into_iter().chain(["far".to_string()]).collect::<Vec<_>>()},
        {"id": "far", "members": ids(2000..2500).into_iter().chain(["all".to_string()]).collect::<Vec<_>>()},
    ]);
    let sim = start_with(seed_with(2500, groups)).await;
    let token = sim.token().await;
    let first = format!(
        "{}?$select=id,accountEnabled,assignedPlans&$count=true&$top=999",
        members_path("all")
    );
    let pages = all_pages(&sim, &first, &token).await;
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0]["@odata.count"], 2500);
    let ids_seen: Vec<&str> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids_seen.len(), 2500);
    assert_eq!(ids_seen.iter().collect::<HashSet<_>>().len(), 2500);
}

#[tokio::test]
async fn the_binary_serves_the_demo_groups_and_takes_a_directory_read_budget() {
    let (mut child, base) = spawn_binary(&["--budget-directory-read", "1"]).await;
    let http = reqwest::Client::new();
    let faults: Value = http
        .get(format!("{base}/_sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults, json!({"budgets": {"directoryRead": 1}}));
    let token = binary_token(&http, &base, GRAPH_SCOPE).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let get = || {
        http.get(format!("{base}{}?$count=true", members_path(SALES)))
            .bearer_auth(&token)
            .header("ConsistencyLevel", "eventual")
            .send()
    };
    let body: Value = get().await.unwrap().json().await.unwrap();
    assert_eq!(body["@odata.count"], 3, "{body}");
    assert_eq!(get().await.unwrap().status(), 429);
    child.kill().await.unwrap();
}
