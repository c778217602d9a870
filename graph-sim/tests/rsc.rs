//! Resource-specific consent: a definition's required permissions in the catalog, the consent an
//! install or upgrade must carry, the role it takes to consent, the tenant's personal-scope
//! switch, installations the tenant admin preinstalled, and request bodies in the log. Over HTTP
//! against an in-process `SimServer`, like the other tests here.

mod support;

use graph_sim::Seed;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const CONSENT_ROLE: &str = "TeamsAppInstallation.ReadWriteAndConsentForUser.All";

fn permission(kind: &str, value: &str) -> Value {
    json!({"permissionType": kind, "permissionValue": value})
}

fn consent(permissions: Vec<Value>) -> Value {
    json!({"resourceSpecificPermissions": permissions})
}

fn bind(app: &str) -> Value {
    json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{app}")})
}

fn install_body(app: &str, consent: Option<Value>) -> Value {
    let mut body = bind(app);
    if let Some(consent) = consent {
        body["consentedPermissionSet"] = consent;
    }
    body
}

/// Publishes `version` of `app` requiring `required`.
async fn publish_requiring(sim: &Sim, app: &str, version: &str, required: Vec<Value>) {
    let reply = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/apps/{app}/definitions"),
            Some(json!({"version": version, "publishingState": "published",
                        "requiredPermissions": required})),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
}

/// A token of the test client with the default roles plus `extra`.
async fn token_with(sim: &Sim, extra: &[&str]) -> String {
    let mut roles = vec![
        "TeamsAppInstallation.ReadWriteForUser.All",
        "AppCatalog.Read.All",
        "GroupMember.Read.All",
        "User.Read.All",
    ];
    roles.extend_from_slice(extra);
    let reply = sim
        .admin(
            Method::PATCH,
            &format!("/tenants/{TENANT}/clients/{CLIENT}"),
            Some(json!({"roles": roles})),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    sim.token().await
}

async fn install(sim: &Sim, token: &str, user: &str, body: Value) -> Reply {
    sim.post(
        &format!("/v1.0/users/{user}/teamwork/installedApps"),
        token,
        Some(body),
    )
    .await
}

/// The installations in `/_sim/state` of `app` for `user` (object id).
async fn state_installs(sim: &Sim, user: &str, app: &str) -> Vec<Value> {
    let state = sim.admin(Method::GET, "/state", None).await.body;
    state["tenants"][0]["installations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["user"] == user && i["app"] == app)
        .cloned()
        .collect()
}

const BOB: &str = "22222222-2222-2222-2222-222222222223";

#[tokio::test]
async fn the_catalog_shows_required_permissions_and_honours_a_nested_select() {
    let sim = start().await;
    let token = sim.token().await;
    publish_requiring(
        &sim,
        BOT,
        "1.1.0",
        vec![
            permission("application", "TeamsActivity.Send.User"),
            permission("delegated", "Chat.Read.User"),
        ],
    )
    .await;
    let full = sim
        .get(
            &format!("/v1.0/appCatalogs/teamsApps?$filter=id eq '{BOT}'&$expand=appDefinitions"),
            &token,
        )
        .await;
    assert_eq!(full.status, 200, "{}", full.body);
    let defs = full.body["value"][0]["appDefinitions"].as_array().unwrap();
    let by_version = |v: &str| defs.iter().find(|d| d["version"] == v).unwrap().clone();
    assert_eq!(
        by_version("1.0.0")["authorization"]["requiredPermissionSet"],
        json!({"resourceSpecificPermissions": []})
    );
    assert_eq!(
        by_version("1.1.0")["authorization"]["requiredPermissionSet"]["resourceSpecificPermissions"],
        json!([
            {"permissionType": "application", "permissionValue": "TeamsActivity.Send.User"},
            {"permissionType": "delegated", "permissionValue": "Chat.Read.User"},
        ])
    );

    let selected = sim
        .get(
            &format!(
                "/v1.0/appCatalogs/teamsApps?$filter=id eq '{BOT}'&$expand=appDefinitions($select=id,teamsAppId,displayName,version,publishingState,authorization)"
            ),
            &token,
        )
        .await;
    assert_eq!(selected.status, 200, "{}", selected.body);
    for def in selected.body["value"][0]["appDefinitions"]
        .as_array()
        .unwrap()
    {
        let mut keys: Vec<&str> = def
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "authorization",
                "displayName",
                "id",
                "publishingState",
                "teamsAppId",
                "version"
            ]
        );
    }
    let one = sim
        .get(
            &format!("/v1.0/appCatalogs/teamsApps/{BOT}?$expand=appDefinitions($select=version)"),
            &token,
        )
        .await;
    assert_eq!(one.body["appDefinitions"][0], json!({"version": "1.0.0"}));
    let unknown = sim
        .get(
            "/v1.0/appCatalogs/teamsApps?$expand=appDefinitions($select=id,colour)",
            &token,
        )
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (400, "BadRequest")
    );
}

#[tokio::test]
async fn an_install_must_consent_to_exactly_the_required_permissions() {
    let sim = start().await;
    publish_requiring(
        &sim,
        TASKS,
        "2.3.0",
        vec![
            permission("application", "TeamsActivity.Send.User"),
            permission("delegated", "Chat.Read.User"),
        ],
    )
    .await;
    let token = token_with(&sim, &[CONSENT_ROLE]).await;
    for (body, why) in [
        (install_body(TASKS, None), "missing"),
        (
            install_body(
                TASKS,
                Some(consent(vec![permission(
                    "application",
                    "TeamsActivity.Send.User",
                )])),
            ),
            "one left out",
        ),
        (
            install_body(
                TASKS,
                Some(consent(vec![
                    permission("application", "TeamsActivity.Send.User"),
                    permission("application", "Chat.Read.User"),
                ])),
            ),
            "wrong type",
        ),
    ] {
        let reply = install(&sim, &token, "bob@contoso.com", body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "BadRequest"),
            "{why}"
        );
        assert!(state_installs(&sim, BOB, TASKS).await.is_empty(), "{why}");
    }
    let sent = consent(vec![
        permission("delegated", "chat.read.user"),
        permission("application", "TEAMSACTIVITY.SEND.USER"),
    ]);
    let reply = install(
        &sim,
        &token,
        "bob@contoso.com",
        install_body(TASKS, Some(sent.clone())),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let stored = state_installs(&sim, BOB, TASKS).await;
    assert_eq!(stored[0]["version"], "2.3.0");
    assert_eq!(stored[0]["consentedPermissionSet"], sent);

    // Read back only with $select, as Graph returns it.
    let base = "/v1.0/users/bob@contoso.com/teamwork/installedApps";
    let filter = format!("$filter=teamsApp/id eq '{TASKS}'");
    let with_select = sim
        .get(
            &format!("{base}?$select=id,consentedPermissionSet&$expand=teamsApp,teamsAppDefinition&{filter}"),
            &token,
        )
        .await;
    assert_eq!(with_select.status, 200, "{}", with_select.body);
    let item = &with_select.body["value"][0];
    assert_eq!(item["consentedPermissionSet"], sent);
    assert_eq!(item["teamsApp"]["id"], TASKS, "expanded navigations stay");
    assert_eq!(item["teamsAppDefinition"]["version"], "2.3.0");
    let whole_list = sim
        .get(
            &format!(
                "{base}?$select=id,consentedPermissionSet&$expand=teamsApp,teamsAppDefinition"
            ),
            &token,
        )
        .await;
    assert_eq!(whole_list.body["value"][0]["consentedPermissionSet"], sent);
    let id_only = sim
        .get(&format!("{base}?$select=id&{filter}"), &token)
        .await;
    let keys: Vec<&String> = id_only.body["value"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert!(
        keys.iter().all(|k| *k == "id" || k.starts_with("@odata.")),
        "{keys:?}"
    );
    let without = sim.installed(&token, "bob@contoso.com", TASKS).await;
    assert!(without[0].get("consentedPermissionSet").is_none());
    let id = item["id"].as_str().unwrap();
    let one = sim
        .get(
            &format!("{base}/{id}?$select=consentedPermissionSet"),
            &token,
        )
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["consentedPermissionSet"], sent);
    assert_eq!(one.body["id"], id);
    let batch = sim
        .post(
            "/v1.0/$batch",
            &token,
            Some(json!({"requests": [batch_item(
                "1",
                "GET",
                &format!("/users/bob@contoso.com/teamwork/installedApps?$select=id,consentedPermissionSet&$expand=teamsApp,teamsAppDefinition&{filter}"),
                None,
            )]})),
        )
        .await;
    assert_eq!(
        batch.body["responses"][0]["body"]["value"][0]["consentedPermissionSet"],
        sent
    );
    let bad_select = sim.get(&format!("{base}?$select=id,colour"), &token).await;
    assert_eq!(bad_select.status, 400);
}

#[tokio::test]
async fn delegated_only_consent_may_be_left_out_but_must_match_when_given() {
    let sim = start().await;
    publish_requiring(
        &sim,
        TASKS,
        "2.3.0",
        vec![permission("delegated", "Chat.Read.User")],
    )
    .await;
    let token = sim.token().await;
    let wrong = install_body(
        TASKS,
        Some(consent(vec![permission(
            "delegated",
            "Chat.ReadWrite.User",
        )])),
    );
    let reply = install(&sim, &token, "bob@contoso.com", wrong).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (400, "BadRequest"));
    let reply = install(&sim, &token, "bob@contoso.com", install_body(TASKS, None)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = install(
        &sim,
        &token,
        "carol@contoso.com",
        install_body(
            TASKS,
            Some(consent(vec![permission("delegated", "chat.read.user")])),
        ),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn consenting_to_application_permissions_needs_the_and_consent_role() {
    let sim = start().await;
    publish_requiring(
        &sim,
        TASKS,
        "2.3.0",
        vec![permission("application", "TeamsActivity.Send.User")],
    )
    .await;
    let token = sim.token().await;
    let body = install_body(
        TASKS,
        Some(consent(vec![permission(
            "application",
            "TeamsActivity.Send.User",
        )])),
    );
    let reply = install(&sim, &token, "bob@contoso.com", body.clone()).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (403, "Forbidden"));
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(CONSENT_ROLE), "{message}");
    assert!(state_installs(&sim, BOB, TASKS).await.is_empty());

    let token = token_with(&sim, &[CONSENT_ROLE]).await;
    assert_eq!(
        install(&sim, &token, "bob@contoso.com", body).await.status,
        201
    );
}

#[tokio::test]
async fn the_tenant_switch_blocks_application_rsc_in_the_personal_scope() {
    let sim = start().await;
    let token = sim.token().await;
    let settings = sim.get("/v1.0/teamwork/teamsAppSettings", &token).await;
    assert_eq!(
        (settings.status.as_u16(), settings.code()),
        (403, "Forbidden")
    );
    let token = token_with(&sim, &[CONSENT_ROLE, "TeamworkAppSettings.Read.All"]).await;
    let settings = sim.get("/beta/teamwork/teamsAppSettings", &token).await;
    assert_eq!(settings.status, 200, "{}", settings.body);
    assert_eq!(
        settings.body["isUserPersonalScopeResourceSpecificConsentEnabled"],
        true
    );
    assert_eq!(settings.body["isChatResourceSpecificConsentEnabled"], true);
    assert!(
        settings.body["@odata.context"]
            .as_str()
            .unwrap()
            .contains("teamsAppSettings")
    );

    let patched = sim
        .admin(
            Method::PATCH,
            &format!("/tenants/{TENANT}/teamsAppSettings"),
            Some(json!({"isUserPersonalScopeResourceSpecificConsentEnabled": false})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let settings = sim.get("/v1.0/teamwork/teamsAppSettings", &token).await;
    assert_eq!(
        settings.body["isUserPersonalScopeResourceSpecificConsentEnabled"],
        false
    );

    publish_requiring(
        &sim,
        TASKS,
        "2.3.0",
        vec![permission("application", "TeamsActivity.Send.User")],
    )
    .await;
    let matching = install_body(
        TASKS,
        Some(consent(vec![permission(
            "application",
            "TeamsActivity.Send.User",
        )])),
    );
    let reply = install(&sim, &token, "bob@contoso.com", matching.clone()).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (403, "Forbidden"));
    // Checked before the consent: a missing one is refused by the switch too.
    let reply = install(&sim, &token, "bob@contoso.com", install_body(TASKS, None)).await;
    assert_eq!(reply.status, 403);
    assert!(state_installs(&sim, BOB, TASKS).await.is_empty());
    // Apps without application permissions still install.
    assert_eq!(
        install(&sim, &token, "bob@contoso.com", bind(BOT))
            .await
            .status,
        201
    );

    // Back on (from the seed too).
    sim.admin(
        Method::PATCH,
        &format!("/tenants/{TENANT}/teamsAppSettings"),
        Some(json!({"isUserPersonalScopeResourceSpecificConsentEnabled": true})),
    )
    .await;
    assert_eq!(
        install(&sim, &token, "bob@contoso.com", matching)
            .await
            .status,
        201
    );
    let seeded = Seed::from_yaml_str(&format!(
        "tenants:\n  - id: {TENANT}\n    teamsAppSettings: {{isUserPersonalScopeResourceSpecificConsentEnabled: false}}\n"
    ))
    .unwrap();
    assert_eq!(
        seeded.tenants[0]
            .teams_app_settings
            .is_user_personal_scope_resource_specific_consent_enabled,
        Some(false)
    );
}

#[tokio::test]
async fn the_consent_refusal_knob_changes_the_answer() {
    let sim = start().await;
    publish_requiring(
        &sim,
        TASKS,
        "2.3.0",
        vec![permission("application", "TeamsActivity.Send.User")],
    )
    .await;
    let token = sim.token().await;
    let faults = sim
        .admin(
            Method::PUT,
            "/faults",
            Some(json!({"consentRefusal": {"status": 403, "message": "no consent"}})),
        )
        .await;
    assert_eq!(faults.status, 204, "{}", faults.body);
    let reply = install(&sim, &token, "bob@contoso.com", install_body(TASKS, None)).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (403, "Forbidden"));
    assert_eq!(reply.body["error"]["message"], "no consent");
    let bad = sim
        .admin(
            Method::PUT,
            "/faults",
            Some(json!({"consentRefusal": {"status": 200}})),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn an_upgrade_consents_to_the_version_it_moves_to() {
    let sim = start().await;
    let token = token_with(&sim, &[CONSENT_ROLE]).await;
    let alice = sim.installed(&token, "alice@contoso.com", BOT).await;
    let id = alice[0]["id"].as_str().unwrap().to_string();
    let upgrade = format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{id}/upgrade");
    let required = vec![permission("application", "TeamsActivity.Send.User")];
    publish_requiring(&sim, BOT, "1.1.0", required.clone()).await;

    let reply = sim.post(&upgrade, &token, None).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (400, "BadRequest"));
    assert_eq!(
        state_installs(&sim, ALICE, BOT).await[0]["version"],
        "1.0.0"
    );
    let wrong = json!({"consentedPermissionSet": consent(vec![permission("application", "Other.Read.User")])});
    assert_eq!(sim.post(&upgrade, &token, Some(wrong)).await.status, 400);
    assert_eq!(state_installs(&sim, ALICE, BOT).await[0]["upgradeCount"], 0);

    let body = json!({"consentedPermissionSet": consent(required)});
    let reply = sim.post(&upgrade, &token, Some(body.clone())).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let after = state_installs(&sim, ALICE, BOT).await;
    assert_eq!(after[0]["version"], "1.1.0");
    assert_eq!(
        after[0]["consentedPermissionSet"],
        body["consentedPermissionSet"]
    );

    // The exact body sent is in the request log, for plain calls and $batch items alike.
    let batch = sim
        .post(
            "/v1.0/$batch",
            &token,
            Some(json!({"requests": [batch_item(
                "u",
                "POST",
                &format!("/users/alice@contoso.com/teamwork/installedApps/{id}/upgrade"),
                Some(body.clone()),
            )]})),
        )
        .await;
    assert_eq!(batch.body["responses"][0]["status"], 204, "{}", batch.body);
    let log = sim.requests().await;
    let upgrades: Vec<&Value> = log
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/upgrade"))
        .collect();
    assert_eq!(upgrades.len(), 4);
    assert!(upgrades[0].get("body").is_none(), "no body sent");
    assert_eq!(upgrades[2]["body"], body);
    assert_eq!(upgrades[3]["body"], body);
    assert_eq!(upgrades[3]["batch"], true);
    let envelope = log.iter().find(|r| r["path"] == "/v1.0/$batch").unwrap();
    assert!(
        envelope.get("body").is_none(),
        "the envelope's items carry the bodies"
    );
    assert!(
        log.iter()
            .filter(|r| r["method"] == "GET")
            .all(|r| r.get("body").is_none())
    );
}

#[tokio::test]
async fn an_installation_the_tenant_admin_preinstalled_cannot_be_removed() {
    let sim = start().await;
    let added = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/installations"),
            Some(json!({"user": "bob@contoso.com", "app": TASKS, "preinstalledByPolicy": true})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let token = sim.token().await;
    let id = b64(&format!("{BOB}##{TASKS}"));
    let path = format!("/v1.0/users/bob@contoso.com/teamwork/installedApps/{id}");
    let reply = sim.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(reply.status, 403);
    let error = &reply.body["error"];
    assert_eq!(error["code"], "Forbidden");
    assert_eq!(
        error["message"],
        "Trying to RemoveUserAppEntitlement for an App that is explicitly preinstalled by the tenant admin."
    );
    assert_eq!(error["innerError"]["code"], "AppIsTenantAdminPreinstalled");
    assert!(error["innerError"]["request-id"].is_string());
    assert!(error["innerError"]["date"].is_string());
    let stored = state_installs(&sim, BOB, TASKS).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["preinstalledByPolicy"], true);

    // Upgrades still work.
    sim.publish(TASKS, "2.2.0", "published").await;
    let reply = sim.post(&format!("{path}/upgrade"), &token, None).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(
        state_installs(&sim, BOB, TASKS).await[0]["version"],
        "2.2.0"
    );

    // From the seed too; other installations still go.
    let seed = Seed::from_yaml_str(
        "tenants:\n  - id: t\n    users: [{id: u, userPrincipalName: u@x}]\n    apps: [{id: a, displayName: A, definitions: [{version: '1.0', requiredPermissions: [{permissionType: application, permissionValue: TeamsActivity.Send.User}]}]}]\n    installations: [{user: u, app: a, preinstalledByPolicy: true}]\n",
    )
    .unwrap();
    assert!(seed.tenants[0].installations[0].preinstalled_by_policy);
    assert_eq!(
        seed.tenants[0].apps[0].definitions[0].required_permissions[0].permission_value,
        "TeamsActivity.Send.User"
    );
    let alice_bot = b64(&format!("{ALICE}##{BOT}"));
    let reply = sim
        .call(
            Method::DELETE,
            &format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{alice_bot}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, 204);
}
