//! Directory reads as Graph answers a client that gets them slightly wrong, or a directory that
//! answers them slightly wrong (issue 20): the OData cast without the advanced query parameters,
//! `User.ReadBasic.All`, expired `@odata.nextLink` tokens and members that flap in and out of a
//! read. Over HTTP against an in-process `SimServer`, like the other tests here.

mod support;

use reqwest::Method;
use serde_json::json;
use support::*;

/// Graph's documented answer to an advanced-only query without `$count=true` and the header.
const CAST_REFUSED: &str = "OData cast 'microsoft.graph.user' is not supported because the \
    required parameters might be missing. Try adding $count=true query parameter and \
    ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more \
    information";

#[tokio::test]
async fn the_cast_needs_both_consistency_level_and_count() {
    let sim = start().await;
    let token = sim.token().await;
    let paged = format!("{}?$top=2", members_path(SALES));
    for (path, eventual, why) in [
        (paged.clone(), true, "the header without $count=true"),
        (
            format!("{paged}&$count=true"),
            false,
            "$count=true without the header",
        ),
        (format!("{paged}&$count=false"), true, "$count=false"),
        (paged.clone(), false, "neither"),
    ] {
        let reply = directory_get(&sim, &path, &token, eventual).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "Request_UnsupportedQuery"),
            "{why}"
        );
        assert_eq!(reply.body["error"]["message"], CAST_REFUSED, "{why}");
    }

    // Both: as before, every page (the nextLink keeps $count=true; the header must be resent).
    let first = directory_get(&sim, &format!("{paged}&$count=true"), &token, true).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["@odata.count"], 3);
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    assert!(next.contains("$count=true"), "{next}");
    assert_eq!(directory_get(&sim, next, &token, false).await.status, 400);
    let last = directory_get(&sim, next, &token, true).await;
    assert_eq!(last.body["value"].as_array().unwrap().len(), 1);

    // The same in a $batch item: its own headers carry ConsistencyLevel.
    let url = format!("/groups/{SALES}/transitiveMembers/microsoft.graph.user");
    let mut item = batch_item("1", "GET", &url, None);
    item["headers"] = json!({"ConsistencyLevel": "eventual"});
    let reply = sim
        .post("/v1.0/$batch", &token, Some(json!({"requests": [item]})))
        .await;
    let answer = &reply.body["responses"][0];
    assert_eq!(answer["status"], 400, "{answer}");
    assert_eq!(answer["body"]["error"]["message"], CAST_REFUSED);
}

#[tokio::test]
async fn user_read_basic_all_sees_the_basic_profile_and_nulls_for_the_rest() {
    let sim = start().await;
    let basic = token_with_roles(
        &sim,
        "abababab-0000-0000-0000-0000000000b1",
        json!(["GroupMember.Read.All", "User.ReadBasic.All"]),
    )
    .await;
    let select = "$select=id,displayName,userPrincipalName,accountEnabled,userType,assignedPlans";
    let reply = directory_get(
        &sim,
        &format!("{}?{select}&$count=true", members_path(SALES)),
        &basic,
        true,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let members = reply.body["value"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for member in members {
        for seen in ["id", "displayName", "userPrincipalName"] {
            assert!(member[seen].is_string(), "{seen} of {member}");
        }
        for hidden in ["accountEnabled", "userType", "assignedPlans"] {
            assert!(member[hidden].is_null(), "{hidden} of {member}");
            assert!(
                member.get(hidden).is_some(),
                "selected, so present: {member}"
            );
        }
    }

    // One user too: the same basic profile, not a 403.
    let alice = directory_get(
        &sim,
        &format!("/v1.0/users/alice@contoso.com?{select}"),
        &basic,
        false,
    )
    .await;
    assert_eq!(alice.status, 200, "{}", alice.body);
    assert_eq!(
        (
            &alice.body["id"],
            &alice.body["userPrincipalName"],
            &alice.body["displayName"]
        ),
        (&json!(ALICE), &json!("alice@contoso.com"), &json!("Alice"))
    );
    assert!(alice.body["accountEnabled"].is_null() && alice.body["assignedPlans"].is_null());

    // With User.Read.All as well, everything.
    let full = token_with_roles(
        &sim,
        "abababab-0000-0000-0000-0000000000b2",
        json!([
            "GroupMember.Read.All",
            "User.ReadBasic.All",
            "User.Read.All"
        ]),
    )
    .await;
    let alice = directory_get(&sim, &format!("/v1.0/users/{ALICE}?{select}"), &full, false).await;
    assert_eq!(alice.body["accountEnabled"], true);
    assert!(alice.body["assignedPlans"].is_array());

    // Without a membership role the members stay out of reach, basic profile or not.
    let users_only = token_with_roles(
        &sim,
        "abababab-0000-0000-0000-0000000000b3",
        json!(["User.ReadBasic.All"]),
    )
    .await;
    let denied = directory_get(&sim, &counted(SALES), &users_only, true).await;
    assert_eq!(
        (denied.status.as_u16(), denied.code()),
        (403, "Authorization_RequestDenied")
    );
}

/// One tenant whose group `g` holds `n` users, with the given tenant-level knobs.
fn group_of(n: usize, knobs: serde_json::Value) -> graph_sim::Seed {
    let users: Vec<serde_json::Value> = (0..n)
        .map(
            |i| json!({"id": format!("u{i:03}"), "userPrincipalName": format!("u{i}@contoso.com")}),
        )
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("u{i:03}")).collect();
    let mut tenant = json!({
        "id": TENANT,
        "clients": [{"id": CLIENT, "secret": "s3cret"}],
        "users": users,
        "groups": [{"id": "g", "members": ids}],
    });
    if let (Some(tenant), Some(knobs)) = (tenant.as_object_mut(), knobs.as_object()) {
        tenant.extend(knobs.clone());
    }
    let seed = json!({"tenants": [tenant]});
    graph_sim::Seed::from_json_str(&seed.to_string()).expect("seed loads")
}

/// Every member id of one whole read of group `g`, and its `@odata.count`.
async fn one_read(sim: &Sim, token: &str, top: usize) -> (Vec<String>, u64) {
    let first = format!("{}&$top={top}&$select=id", counted("g"));
    let pages = all_pages(sim, &first, token).await;
    let ids = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    (ids, pages[0]["@odata.count"].as_u64().unwrap())
}

#[tokio::test]
async fn a_flapping_directory_leaves_one_member_out_of_a_whole_read() {
    let sim = start_with(group_of(7, json!({"directoryFlap": 1.0}))).await;
    let token = sim.token().await;
    let everyone: Vec<String> = (0..7).map(|i| format!("u{i:03}")).collect();
    let mut left_out = std::collections::HashSet::new();
    for _ in 0..40 {
        // Three pages: one member missing from all of them together, none twice, in order.
        let (ids, count) = one_read(&sim, &token, 3).await;
        assert_eq!(ids.len(), 6, "{ids:?}");
        assert_eq!(count, 6, "the count agrees with the read");
        let missing: Vec<&String> = everyone.iter().filter(|u| !ids.contains(u)).collect();
        assert_eq!(missing.len(), 1, "{ids:?}");
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        left_out.insert(missing[0].clone());
    }
    assert!(
        left_out.len() > 1,
        "a random member, not always the same: {left_out:?}"
    );

    // Off (the faults override the tenant's 1.0), every read is whole.
    let off = sim
        .admin(Method::PUT, "/faults", Some(json!({"directoryFlap": 0})))
        .await;
    assert_eq!(off.status, 204);
    for _ in 0..10 {
        assert_eq!(one_read(&sim, &token, 3).await, (everyone.clone(), 7));
    }
    for bad in [
        json!({"directoryFlap": 1.5}),
        json!({"directoryFlap": -0.1}),
    ] {
        let refused = sim.admin(Method::PUT, "/faults", Some(bad.clone())).await;
        assert_eq!(refused.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn next_links_older_than_the_page_token_ttl_are_refused() {
    let sim = start_with(group_of(5, json!({"pageTokenTtlMs": 60000}))).await;
    let token = sim.token().await;
    let first = format!("{}&$top=2", counted("g"));
    let page = directory_get(&sim, &first, &token, true).await;
    let next = page.body["@odata.nextLink"].as_str().unwrap().to_string();
    let fresh = directory_get(&sim, &next, &token, true).await;
    assert_eq!(
        fresh.status, 200,
        "well within the lifetime: {}",
        fresh.body
    );

    // Every token older than 1 ms: the same link, a little later, has expired.
    let tenant = format!("/tenants/{TENANT}");
    let short = sim
        .admin(Method::PATCH, &tenant, Some(json!({"pageTokenTtlMs": 1})))
        .await;
    assert_eq!(short.status, 200, "{}", short.body);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let expired = directory_get(&sim, &next, &token, true).await;
    assert_eq!(
        (expired.status.as_u16(), expired.code()),
        (400, "Directory_ExpiredPageToken")
    );
    assert_eq!(
        expired.body["error"]["message"],
        "The specified page token value has expired and can no longer be included in your \
         request."
    );
    // A new read from the first page works; 0 turns expiry off.
    assert_eq!(directory_get(&sim, &first, &token, true).await.status, 200);
    let off = sim
        .admin(Method::PATCH, &tenant, Some(json!({"pageTokenTtlMs": 0})))
        .await;
    assert_eq!(off.status, 200);
    assert_eq!(directory_get(&sim, &next, &token, true).await.status, 200);

    // Other lists' nextLinks (installedApps, the catalog) do not expire.
    let faults = json!({"pageTokenTtlMs": 1});
    assert_eq!(
        sim.admin(Method::PUT, "/faults", Some(faults)).await.status,
        204
    );
    let catalog = sim.get("/v1.0/appCatalogs/teamsApps?$top=1", &token).await;
    assert_eq!(catalog.status, 200);
    let refused = sim
        .admin(
            Method::PATCH,
            &tenant,
            Some(json!({"pageTokenTtlMs": 86_400_001u64})),
        )
        .await;
    assert_eq!(refused.status, 400);
}
