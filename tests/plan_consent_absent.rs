//! Know before you write (issue 21), one installation at a time, end to end: real kube-apiserver
//! and etcd, graph-sim and the operator binary. Plan mode reads and never writes, and `Manage` then
//! makes exactly the writes the plan named; RSC consent is decided from the catalog before any
//! write and sends the exact set; `ensure: Absent` uninstalls, keeps the app absent on drift, and
//! a setup policy's install is refused once, never retried. Every assertion on Graph is on the
//! simulator's request log.

mod scenario;
mod support;

use std::time::Duration;

use reqwest::Method;
use scenario::{
    ALICE, BOB, BOT, CLIENT_ID, SECRET, Scenario, TENANT, condition, installed_version,
};
use serde_json::{Value, json};
use teams_app_operator::api::{PlannedAction, TeamsAppInstallation};

const CAROL: &str = "22222222-2222-2222-2222-222222222225";
/// An app with resource-specific permissions.
const RSC_APP: &str = "33333333-3333-3333-3333-3333333333a1";
const SEND: &str = "TeamsActivity.Send.User";
const READ: &str = "Chat.Read.User";
const WAIT: Duration = Duration::from_secs(60);

/// Alice has the bot at 1.0.0 and bob has nothing; the catalog publishes 1.1.0. Carol has the
/// bot because a Teams setup policy put it there. The client may consent RSC permissions and
/// read the tenant's Teams app settings.
fn seed() -> String {
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients:
      - id: {CLIENT_ID}
        secret: {SECRET}
        roles: [TeamsAppInstallation.ReadWriteAndConsentForUser.All, AppCatalog.Read.All,
                User.Read.All, GroupMember.Read.All, TeamworkAppSettings.Read.All]
    users:
      - {{id: {ALICE}, userPrincipalName: alice@contoso.com}}
      - {{id: {BOB}, userPrincipalName: bob@contoso.com}}
      - {{id: {CAROL}, userPrincipalName: carol@contoso.com}}
    apps:
      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot, distributionMethod: organization,
         definitions: [{{version: "1.0.0", publishingState: published}}, {{version: "1.1.0", publishingState: published}}]}}
      - id: {RSC_APP}
        externalId: com.contoso.notifier
        displayName: Contoso Notifier
        distributionMethod: organization
        definitions:
          - version: "1.0.0"
            publishingState: published
            requiredPermissions:
              - {{permissionType: application, permissionValue: {SEND}}}
              - {{permissionType: delegated, permissionValue: ChannelMessage.Read.Group}}
    installations:
      - {{user: alice@contoso.com, app: {BOT}, version: "1.0.0"}}
      - {{user: carol@contoso.com, app: {BOT}, version: "1.0.0", preinstalledByPolicy: true}}
"#
    )
}

fn reason(obj: &TeamsAppInstallation) -> String {
    condition(obj, "Ready").map_or_else(String::new, |c| c.reason.clone())
}

fn message(obj: &TeamsAppInstallation) -> String {
    condition(obj, "Ready").map_or_else(String::new, |c| c.message.clone())
}

/// Graph writes to users' installed apps, from the simulator's log.
async fn writes(s: &Scenario) -> Vec<Value> {
    s.graph_requests()
        .await
        .into_iter()
        .filter(|r| {
            let path = r["path"].as_str().unwrap_or_default();
            r["method"] != "GET" && path.contains("/installedApps")
        })
        .collect()
}

/// The permissions a write consented, sorted.
fn consented(write: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        write["body"]["consentedPermissionSet"]["resourceSpecificPermissions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                p["permissionValue"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
    names.sort();
    names
}

#[tokio::test]
async fn observe_writes_nothing_and_manage_then_writes_what_the_plan_said() {
    let s = Scenario::start("plan", &seed()).await;
    let observe = |user: &str| json!({"user": user, "app": {"id": BOT}, "managementPolicy": "Observe", "deletionPolicy": "Uninstall"});
    s.create("alice", observe("alice@contoso.com")).await;
    s.create("bob", observe("bob@contoso.com")).await;
    let alice = s.wait_for_reason("alice", "Observed").await;
    let bob = s.wait_for_reason("bob", "Observed").await;
    assert_eq!(
        condition(&alice, "Ready").map(|c| c.status.as_str()),
        Some("True"),
        "an observed resource is Ready, so GitOps syncs settle"
    );
    let alice_plan = alice.status.clone().and_then(|st| st.plan).expect("plan");
    assert_eq!(alice_plan.action, PlannedAction::Upgrade, "{alice_plan:?}");
    assert_eq!(alice_plan.from_version.as_deref(), Some("1.0.0"));
    assert_eq!(alice_plan.to_version.as_deref(), Some("1.1.0"));
    assert_eq!(alice_plan.calls.len(), 1);
    assert!(
        alice_plan.calls[0].starts_with("POST /users/alice@contoso.com/teamwork/installedApps/")
    );
    let bob_plan = bob.status.clone().and_then(|st| st.plan).expect("plan");
    assert_eq!(bob_plan.action, PlannedAction::Install, "{bob_plan:?}");
    s.wait_for_event("alice", "WouldUpgrade").await;
    s.wait_for_event("bob", "WouldInstall").await;

    // Several drift intervals later: still nothing written, and each plan announced once.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        writes(&s).await,
        Vec::<Value>::new(),
        "Observe never writes"
    );
    assert_eq!(s.event_count("alice", "WouldUpgrade").await, 1);
    assert_eq!(s.event_count("bob", "WouldInstall").await, 1);

    // Manage acts at once, and makes exactly the planned writes.
    for name in ["alice", "bob"] {
        s.merge_spec(name, json!({"managementPolicy": "Manage"}))
            .await
            .expect("switch to Manage");
    }
    let alice = s.wait_for_reason("alice", "UpToDate").await;
    let bob = s.wait_for_reason("bob", "UpToDate").await;
    assert_eq!(installed_version(&alice).as_deref(), Some("1.1.0"));
    assert_eq!(installed_version(&bob).as_deref(), Some("1.1.0"));
    assert!(
        alice.status.and_then(|st| st.plan).is_none(),
        "Manage clears the plan"
    );
    let made: Vec<(String, String)> = writes(&s)
        .await
        .iter()
        .filter(|r| r["status"].as_u64().is_some_and(|c| c < 300))
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_string(),
                r["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let planned: Vec<(String, String)> = [alice_plan.calls[0].clone(), bob_plan.calls[0].clone()]
        .iter()
        .map(|c| {
            let (method, path) = c.split_once(' ').expect("METHOD path");
            (method.to_string(), format!("/v1.0{path}"))
        })
        .collect();
    let mut made_sorted = made.clone();
    made_sorted.sort();
    let mut planned_sorted = planned;
    planned_sorted.sort();
    assert_eq!(made_sorted, planned_sorted, "the writes are the plan's");

    // Back to Observe: deleting writes nothing, even with deletionPolicy Uninstall.
    s.merge_spec("bob", json!({"managementPolicy": "Observe"}))
        .await
        .expect("switch to Observe");
    s.wait_for_reason("bob", "Observed").await;
    let before = writes(&s).await.len();
    s.delete("bob").await;
    s.wait_gone("bob").await;
    assert_eq!(writes(&s).await.len(), before, "Observe never uninstalls");
}

#[tokio::test]
async fn consent_is_decided_from_the_catalog_and_sent_exactly() {
    let s = Scenario::start("consent", &seed()).await;
    // Alice consents to what 1.0.0 needs; bob lets the catalog decide.
    s.create(
        "alice",
        json!({"user": "alice@contoso.com", "app": {"id": RSC_APP}, "consent": {"permissions": [SEND]}}),
    )
    .await;
    s.create(
        "bob",
        json!({"user": "bob@contoso.com", "app": {"id": RSC_APP}, "consent": {"mode": "MatchCatalog"}}),
    )
    .await;
    // Carol consents to nothing: the install would need consent, so it is never tried.
    s.create(
        "carol",
        json!({"user": "carol@contoso.com", "app": {"id": RSC_APP}}),
    )
    .await;
    s.wait_for_reason("alice", "UpToDate").await;
    s.wait_for_reason("bob", "UpToDate").await;
    let carol = s.wait_for_reason("carol", "ConsentRequired").await;
    assert!(message(&carol).contains(SEND), "{}", message(&carol));
    let installs = writes(&s).await;
    assert_eq!(
        installs.len(),
        2,
        "one install each for alice and bob: {installs:?}"
    );
    // The definition's whole set, its delegated permission included, as Graph wants it.
    for install in &installs {
        assert_eq!(
            consented(install),
            vec!["ChannelMessage.Read.Group".to_string(), SEND.to_string()],
            "{install}"
        );
    }

    // 2.0.0 adds an application permission.
    s.publish_version_requiring(RSC_APP, "2.0.0", &[SEND, READ])
        .await;
    let alice = s.wait_for_reason("alice", "ConsentRequired").await;
    assert!(
        message(&alice).contains(READ) && message(&alice).contains("1.0.0 stays"),
        "{}",
        message(&alice)
    );
    let status = alice.status.clone().expect("status");
    assert_eq!(
        status.required_permissions,
        vec![SEND.to_string(), READ.to_string()]
    );
    assert_eq!(status.consented_permissions, vec![SEND.to_string()]);
    let bob = s
        .wait_for("bob", "upgraded to 2.0.0", WAIT, |o| {
            installed_version(o).as_deref() == Some("2.0.0") && reason(o) == "UpToDate"
        })
        .await;
    assert_eq!(bob.status.expect("status").consented_permissions.len(), 2);
    let upgrades = |all: Vec<Value>, user: &str| -> Vec<Value> {
        all.into_iter()
            .filter(|r| {
                let path = r["path"].as_str().unwrap_or_default();
                path.ends_with("/upgrade")
                    && r["user"]
                        .as_str()
                        .is_some_and(|u| u.eq_ignore_ascii_case(user))
            })
            .collect()
    };
    assert!(
        upgrades(writes(&s).await, "alice@contoso.com").is_empty(),
        "no write without consent"
    );

    // Adding the permission upgrades once, with exactly the required set.
    s.merge_spec("alice", json!({"consent": {"permissions": [SEND, READ]}}))
        .await
        .expect("consent more");
    s.wait_for("alice", "upgraded to 2.0.0", WAIT, |o| {
        installed_version(o).as_deref() == Some("2.0.0")
    })
    .await;
    let alice_upgrades = upgrades(writes(&s).await, "alice@contoso.com");
    assert_eq!(alice_upgrades.len(), 1, "{alice_upgrades:?}");
    let mut want = vec![SEND.to_string(), READ.to_string()];
    want.sort();
    assert_eq!(consented(&alice_upgrades[0]), want);

    // The tenant turns RSC in personal scope off: a new install is refused, and the operator
    // says why.
    s.sim_admin(
        Method::PATCH,
        &format!("/_sim/tenants/{TENANT}/teamsAppSettings"),
        json!({"isUserPersonalScopeResourceSpecificConsentEnabled": false}),
    )
    .await;
    s.merge_spec("carol", json!({"consent": {"mode": "MatchCatalog"}}))
        .await
        .expect("consent to what the catalog asks");
    let carol = s.wait_for_reason("carol", "ConsentDisabled").await;
    assert!(
        message(&carol).contains("isUserPersonalScopeResourceSpecificConsentEnabled"),
        "{}",
        message(&carol)
    );
}

#[tokio::test]
async fn absent_uninstalls_keeps_it_absent_and_leaves_a_policy_install_alone() {
    let s = Scenario::start("absent", &seed()).await;
    let absent = |user: &str| json!({"user": user, "app": {"id": BOT}, "ensure": "Absent"});
    s.create("alice", absent("alice@contoso.com")).await;
    s.create("bob", absent("bob@contoso.com")).await;
    s.create("carol", absent("carol@contoso.com")).await;
    let alice = s.wait_for_reason("alice", "Absent").await;
    assert!(alice.status.and_then(|st| st.installation_id).is_none());
    s.wait_for_event("alice", "Uninstalled").await;
    s.wait_for_reason("bob", "Absent").await;
    let carol = s.wait_for_reason("carol", "ManagedByPolicy").await;
    assert_eq!(
        condition(&carol, "Stalled").map(|c| c.status.as_str()),
        Some("True")
    );
    assert!(
        message(&carol).contains("setup policy"),
        "{}",
        message(&carol)
    );

    // Someone installs the app for alice again: it goes again. Carol's is never asked twice.
    s.sim_admin(
        Method::POST,
        &format!("/_sim/tenants/{TENANT}/installations"),
        json!({"user": "alice@contoso.com", "app": BOT, "version": "1.1.0"}),
    )
    .await;
    s.wait_for("alice", "absent again", WAIT, |o| {
        reason(o) == "Absent"
            && o.status
                .as_ref()
                .is_some_and(|st| st.installed_version.is_none())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let deletes = |user: &str, all: &[Value]| {
        all.iter()
            .filter(|r| {
                r["method"] == "DELETE"
                    && r["user"]
                        .as_str()
                        .is_some_and(|u| u.eq_ignore_ascii_case(user))
            })
            .count()
    };
    let all = writes(&s).await;
    assert_eq!(
        deletes("carol@contoso.com", &all),
        1,
        "refused once, never retried"
    );
    assert!(
        deletes("alice@contoso.com", &all) >= 2,
        "uninstalled on drift"
    );
    assert_eq!(deletes("bob@contoso.com", &all), 0, "nothing to uninstall");
    assert!(
        all.iter().all(|r| r["method"] != "POST"),
        "Absent never installs"
    );
}
