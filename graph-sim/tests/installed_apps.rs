//! A user's installed Teams apps: list with `$filter`/`$expand`/paging, install, upgrade,
//! uninstall, and the errors Graph answers them with.
//! Over HTTP the way a client following graph-contract.md would; every test starts its own
//! in-process `SimServer` (or the binary), and one that cannot start fails the test.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn list_filters_and_expands_installed_apps() {
    let sim = start().await;
    let token = sim.token().await;
    let bob = sim
        .get("/v1.0/users/bob@contoso.com/teamwork/installedApps", &token)
        .await;
    assert_eq!(bob.status, 200);
    assert_eq!(bob.body["value"], json!([]));

    let by_id = sim.installed(&token, "ALICE@contoso.com", BOT).await;
    assert_eq!(by_id.len(), 1);
    let item = &by_id[0];
    assert_eq!(
        item["@odata.type"],
        "#microsoft.graph.userScopeTeamsAppInstallation"
    );
    assert_eq!(item["id"], b64(&format!("{ALICE}##{BOT}")));
    assert_eq!(item["consentedPermissionSet"], Value::Null);
    assert_eq!(item["teamsApp"]["externalId"], "com.contoso.bot");
    assert_eq!(item["teamsApp"]["distributionMethod"], "organization");
    assert_eq!(item["teamsAppDefinition"]["version"], "1.0.0");
    assert_eq!(item["teamsAppDefinition"]["teamsAppId"], BOT);
    assert_eq!(item["teamsAppDefinition"]["publishingState"], "published");
    assert_eq!(
        item["teamsAppDefinition"]["id"],
        b64(&format!("{BOT}##1.0.0##published"))
    );

    let by_object_id = sim
        .get(
            &format!("/v1.0/users/{ALICE}/teamwork/installedApps?$filter=teamsApp/externalId eq 'com.contoso.bot'"),
            &token,
        )
        .await;
    assert_eq!(by_object_id.body["value"].as_array().unwrap().len(), 1);
    let unexpanded = &by_object_id.body["value"][0];
    assert!(unexpanded.get("teamsApp").is_none() && unexpanded.get("teamsAppDefinition").is_none());

    let other_app = sim.installed(&token, "alice@contoso.com", TASKS).await;
    assert!(other_app.is_empty());

    let one = sim
        .get(
            &format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{}?$expand=teamsAppDefinition", item["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["teamsAppDefinition"]["version"], "1.0.0");
    assert!(one.body.get("teamsApp").is_none());

    let bad_filter = sim
        .get(
            "/v1.0/users/alice@contoso.com/teamwork/installedApps?$filter=startswith(id,'x')",
            &token,
        )
        .await;
    assert_eq!(
        (bad_filter.status.as_u16(), bad_filter.code()),
        (400, "BadRequest")
    );
}

#[tokio::test]
async fn lists_page_with_absolute_next_links() {
    let sim = start().await;
    let token = sim.token().await;
    for app in [BOT, TASKS] {
        assert_eq!(
            sim.install(&token, "bob@contoso.com", app).await.status,
            201
        );
    }
    let mut url =
        sim.url("/v1.0/users/bob@contoso.com/teamwork/installedApps?$expand=teamsApp&$top=1");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = sim.get(&url, &token).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        pages += 1;
        for item in page.body["value"].as_array().unwrap() {
            seen.push(item["teamsApp"]["id"].as_str().unwrap().to_string());
        }
        match page.body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&sim.server.base_url()) && next.contains("$skiptoken="),
                    "{next}"
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 2);
    seen.sort();
    assert_eq!(seen, vec![BOT, TASKS]);
}

#[tokio::test]
async fn install_then_conflict_and_only_published_versions_install() {
    let sim = start().await;
    let token = sim.token().await;
    let first = sim.install(&token, "carol@contoso.com", TASKS).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body, Value::Null, "201 has no body");
    let again = sim.install(&token, "carol@contoso.com", TASKS).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "Conflict"));
    let installed = sim.installed(&token, "carol@contoso.com", TASKS).await;
    // 2.2.0 is only submitted: the highest *published* definition is installed.
    assert_eq!(installed[0]["teamsAppDefinition"]["version"], "2.1.0");

    let odd_bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/beta/appCatalogs/teamsApps('{BOT}')")});
    let odd = sim
        .post(
            "/v1.0/users/carol@contoso.com/teamwork/installedApps",
            &token,
            Some(odd_bind),
        )
        .await;
    assert_eq!(odd.status, 201);
}

#[tokio::test]
async fn upgrade_moves_to_the_highest_published_definition() {
    let sim = start().await;
    let token = sim.token().await;
    let before = sim.installed(&token, "alice@contoso.com", BOT).await;
    let id = before[0]["id"].as_str().unwrap().to_string();
    let upgrade = format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{id}/upgrade");

    let published = sim.publish(BOT, "1.1.0", "published").await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    assert_eq!(published.body["version"], "1.1.0");
    assert_eq!(sim.publish(BOT, "1.2.0", "submitted").await.status, 201);

    let reply = sim.post(&upgrade, &token, None).await;
    assert_eq!(reply.status, 204);
    let after = sim.installed(&token, "alice@contoso.com", BOT).await;
    assert_eq!(
        after[0]["id"],
        id.as_str(),
        "the installation id survives upgrades"
    );
    assert_eq!(
        after[0]["teamsAppDefinition"]["version"], "1.1.0",
        "submitted 1.2.0 ignored"
    );

    // Already latest: still 204, still recorded (an empty consent matches an app that requires
    // no resource-specific permissions; rsc.rs covers the rest).
    let consent = json!({"consentedPermissionSet": {"resourceSpecificPermissions": []}});
    assert_eq!(sim.post(&upgrade, &token, Some(consent)).await.status, 204);
    let state = sim.admin(Method::GET, "/state", None).await.body;
    let install = state["tenants"][0]["installations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(install["upgradeCount"], 2);
    assert_eq!(install["version"], "1.1.0");

    // Approving the submitted version makes it the upgrade target.
    assert_eq!(sim.publish(BOT, "1.2.0", "published").await.status, 200);
    assert_eq!(sim.post(&upgrade, &token, None).await.status, 204);
    let latest = sim.installed(&token, "alice@contoso.com", BOT).await;
    assert_eq!(latest[0]["teamsAppDefinition"]["version"], "1.2.0");
    assert!(
        latest[0].get("consentedPermissionSet").is_none(),
        "only with $select"
    );

    let unknown = sim
        .post(
            &format!(
                "/v1.0/users/alice@contoso.com/teamwork/installedApps/{}/upgrade",
                b64("nope##nope")
            ),
            &token,
            None,
        )
        .await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "NotFound"));
}

#[tokio::test]
async fn uninstall_then_not_found() {
    let sim = start().await;
    let token = sim.token().await;
    let path = format!(
        "/v1.0/users/alice@contoso.com/teamwork/installedApps/{}",
        b64(&format!("{ALICE}##{BOT}"))
    );
    assert_eq!(
        sim.call(Method::DELETE, &path, Some(&token), None)
            .await
            .status,
        204
    );
    let again = sim.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!((again.status.as_u16(), again.code()), (404, "NotFound"));
    assert_eq!(sim.get(&path, &token).await.status, 404);
    assert!(
        sim.installed(&token, "alice@contoso.com", BOT)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_users_apps_bad_bodies_and_policies() {
    let sim = start().await;
    let token = sim.token().await;
    let nobody = sim.install(&token, "nobody@contoso.com", BOT).await;
    assert_eq!((nobody.status.as_u16(), nobody.code()), (404, "NotFound"));
    let no_app = sim
        .install(
            &token,
            "bob@contoso.com",
            "99999999-9999-9999-9999-999999999999",
        )
        .await;
    assert_eq!((no_app.status.as_u16(), no_app.code()), (404, "NotFound"));
    assert_eq!(
        sim.get(
            "/v1.0/users/nobody@contoso.com/teamwork/installedApps",
            &token
        )
        .await
        .status,
        404
    );

    let path = "/v1.0/users/bob@contoso.com/teamwork/installedApps";
    for body in [
        json!({}),
        json!({"teamsApp@odata.bind": "nonsense"}),
        json!([1]),
        json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}"), "colour": "blue"}),
    ] {
        let reply = sim.post(path, &token, Some(body.clone())).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "BadRequest"),
            "{body}"
        );
    }
    let not_json = read(
        sim.http
            .post(sim.url(path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(not_json.status, 400);

    let blocked = sim.install(&token, "dave@contoso.com", BOT).await;
    assert_eq!(
        (blocked.status.as_u16(), blocked.code()),
        (403, "Forbidden")
    );
    assert_eq!(
        blocked.body["error"]["message"],
        "App is blocked by app permission policy"
    );
    assert_eq!(
        sim.install(&token, "dave@contoso.com", TASKS).await.status,
        201,
        "only that app is blocked"
    );

    let unlicensed = sim.install(&token, "erin@contoso.com", BOT).await;
    assert_eq!(
        (unlicensed.status.as_u16(), unlicensed.code()),
        (403, "Forbidden")
    );

    let route = sim
        .get("/v1.0/users/bob@contoso.com/teamwork/nothingHere", &token)
        .await;
    assert_eq!((route.status.as_u16(), route.code()), (400, "BadRequest"));
}

#[tokio::test]
async fn blocked_app_upgrade_is_forbidden() {
    let sim = start().await;
    let token = sim.token().await;
    let dave = "77777777-7777-7777-7777-777777777777";
    let installed = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/installations"),
            Some(json!({"user": "dave@contoso.com", "app": BOT})),
        )
        .await;
    assert_eq!(installed.status, 201, "{:?}", installed.body);
    let id = b64(&format!("{dave}##{BOT}"));
    let reply = sim
        .post(
            &format!("/v1.0/users/{dave}/teamwork/installedApps/{id}/upgrade"),
            &token,
            None,
        )
        .await;
    assert_eq!((reply.status.as_u16(), reply.code()), (403, "Forbidden"));
}
