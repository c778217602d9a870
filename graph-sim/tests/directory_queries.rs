//! Directory reads as Graph answers a client that gets them slightly wrong, or a directory that
//! answers them slightly wrong (issue 20): the OData cast without the advanced query parameters,
//! `User.ReadBasic.All`, expired `@odata.nextLink` tokens and members that flap in and out of a
//! read. Over HTTP against an in-process `SimServer`, like the other tests here.

mod support;

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
