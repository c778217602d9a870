//! A rollout's plan mode, approval and `ensure: Absent` on a real API server, with graph-sim and
//! the operator binary: what `Observe` says `Manage` would do is what `Manage` then does.

mod scenario;
mod support;

use std::time::Duration;

use scenario::rollouts::*;
use scenario::{BOT, Scenario};
use serde_json::{Value, json};
use teams_app_operator::api::{RolloutPlan, TeamsAppRollout};

const WAIT: Duration = Duration::from_secs(180);

/// `users` members of ALL; the bot has versions 1.0.0 and 2.0.0. `installed(i)`: the version
/// user `i` has, if any; users in `blocked` have the bot blocked by an app permission policy.
fn world(
    users: usize,
    installed: impl Fn(usize) -> Option<&'static str>,
    blocked: &[usize],
) -> String {
    let mut y = seed(users, |_| Kind::Member, &[]).replace(
        r#"definitions: [{version: "1.0.0", publishingState: published}]"#,
        r#"definitions: [{version: "1.0.0", publishingState: published}, {version: "2.0.0", publishingState: published}]"#,
    );
    for i in blocked {
        let user = format!("userPrincipalName: {}}}", upn(*i));
        y = y.replace(
            &user,
            &format!("userPrincipalName: {}, blockedApps: [{BOT}]}}", upn(*i)),
        );
    }
    let installations: Vec<String> = (0..users)
        .filter_map(|i| {
            let version = installed(i)?;
            Some(format!(
                "{{user: {}, app: {BOT}, version: \"{version}\"}}",
                user_id(i)
            ))
        })
        .collect();
    y.push_str(&format!(
        "    installations: [{}]\n",
        installations.join(", ")
    ));
    y
}

/// Graph writes to installedApps the simulator served: (installs, upgrades, uninstalls).
async fn writes(s: &Scenario) -> (usize, usize, usize) {
    let requests = s.graph_requests().await;
    let count = |method: &str, suffix: &str| {
        requests
            .iter()
            .filter(|r| r["method"] == method)
            .filter(|r| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("/installedApps") && suffix_matches(p, suffix))
            })
            .count()
    };
    (
        count("POST", "/installedApps"),
        count("POST", "/upgrade"),
        count("DELETE", ""),
    )
}

fn suffix_matches(path: &str, suffix: &str) -> bool {
    path.split('?').next().is_some_and(|p| p.ends_with(suffix))
}

fn plan(r: &TeamsAppRollout) -> RolloutPlan {
    r.status
        .as_ref()
        .and_then(|s| s.plan.clone())
        .unwrap_or_default()
}

fn total(plan: &RolloutPlan, f: fn(&teams_app_operator::api::WavePlan) -> u32) -> u32 {
    plan.waves.iter().map(f).sum()
}

/// Observed, with every installation's plan in.
fn planned(r: &TeamsAppRollout) -> bool {
    let p = plan(r);
    ready(r).is_some_and(|c| c.reason == "Observed")
        && current(r)
        && !p.waves.is_empty()
        && total(&p, |w| w.pending) == 0
}

fn three_waves(policy: &str) -> Value {
    json!({
        "app": {"id": BOT},
        "audience": {"groups": [ALL]},
        "managementPolicy": policy,
        "waves": [
            {"name": "pilot", "percent": 10, "bakeTime": "0s"},
            {"name": "early", "percent": 50, "bakeTime": "0s"},
            {"name": "everyone", "percent": 100},
        ],
    })
}

#[tokio::test]
async fn observe_plans_without_writing_and_manage_does_exactly_the_plan() {
    // A quarter without the bot, a quarter at 1.0.0, half at 2.0.0 (the latest); two users
    // without it are blocked by an app permission policy.
    let installed = |i: usize| match i % 4 {
        0 => None,
        1 => Some("1.0.0"),
        _ => Some("2.0.0"),
    };
    let seed = world(200, installed, &[4, 104]);
    let s = Scenario::start_with("tar-plan", &seed, &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts.create("helpdesk", three_waves("Observe")).await;
    let observed = rollouts
        .wait_for("helpdesk", "a complete plan", WAIT, planned)
        .await;

    assert_eq!(writes(&s).await, (0, 0, 0), "Observe wrote to Graph");
    let p = plan(&observed);
    assert_eq!(p.waves.len(), 3, "{p:?}");
    assert_eq!(total(&p, |w| w.users), 200);
    assert_eq!(
        (total(&p, |w| w.installs), total(&p, |w| w.upgrades)),
        (50, 50),
        "{p:?}"
    );
    assert_eq!(total(&p, |w| w.unchanged), 100);
    assert_eq!(p.catalog_version.as_deref(), Some("2.0.0"));
    assert_eq!(p.calls.get("install"), Some(&50));
    assert!(!p.revision.is_empty());
    let status = observed.status.clone().expect("status");
    assert!(status.waves.iter().all(|w| w.started_at.is_none()));
    assert_eq!(kstatus(&observed), "Current");
    s.wait_for_event("helpdesk", "PlanComputed").await;
    assert_eq!(s.event_count("helpdesk", "PlanComputed").await, 1);

    // Approved as planned: it converges, and does exactly what the plan said.
    rollouts
        .merge_spec(
            "helpdesk",
            json!({"managementPolicy": "Manage", "approvedPlanRevision": p.revision}),
        )
        .await;
    let done = rollouts
        .wait_for_reason("helpdesk", "RolloutComplete", WAIT)
        .await;
    let (installs, upgrades, uninstalls) = writes(&s).await;
    assert_eq!(
        (installs as u32, upgrades as u32, uninstalls),
        (total(&p, |w| w.installs), total(&p, |w| w.upgrades), 0),
        "the plan: {p:?}"
    );
    let status = done.status.expect("status");
    let blocked: u32 = status.waves.iter().map(|w| w.blocked).sum();
    let failed: u32 = status.waves.iter().map(|w| w.failed).sum();
    assert_eq!((blocked, failed), (2, 0), "{:?}", status.waves);
}

#[tokio::test]
async fn a_catalog_bump_after_review_stalls_the_approval_and_writes_nothing() {
    let seed = world(20, |_| None, &[]);
    let s = Scenario::start_with("tar-stale", &seed, &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts.create("helpdesk", three_waves("Observe")).await;
    let observed = rollouts
        .wait_for("helpdesk", "a complete plan", WAIT, planned)
        .await;
    let approved = plan(&observed).revision;

    s.publish_version(BOT, "3.0.0").await;
    rollouts
        .merge_spec(
            "helpdesk",
            json!({"managementPolicy": "Manage", "approvedPlanRevision": approved}),
        )
        .await;
    let held = rollouts
        .wait_for_reason("helpdesk", "PlanChanged", WAIT)
        .await;
    let message = ready(&held).map(|c| c.message.clone()).unwrap_or_default();
    assert!(message.contains("2.0.0 to 3.0.0"), "{message}");
    assert_eq!(kstatus(&held), "Failed");
    // A few passes later, still nothing written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(writes(&s).await, (0, 0, 0));
    let children = rollouts.children().await;
    assert!(
        children.iter().all(|c| c.spec.management_policy
            == Some(teams_app_operator::api::ManagementPolicy::Observe)),
        "an installation was switched to Manage"
    );
}

#[tokio::test]
async fn ensure_absent_uninstalls_in_waves() {
    let seed = world(30, |_| Some("2.0.0"), &[]);
    let s = Scenario::start_with("tar-absent", &seed, &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "retire",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [ALL]},
                "ensure": "Absent",
                "removalLimit": 1,
                "waves": [
                    {"name": "pilot", "percent": 20, "bakeTime": "1s"},
                    {"name": "everyone", "percent": 100},
                ],
            }),
        )
        .await;
    let done = rollouts
        .wait_for_reason("retire", "RolloutComplete", WAIT)
        .await;
    assert_eq!(writes(&s).await, (0, 0, 30));
    let pilot = wave_status(&done, "pilot");
    let everyone = wave_status(&done, "everyone");
    assert_eq!(pilot.ready + everyone.ready, 30);
    assert!(
        everyone.started_at.as_ref().map(|t| t.0) >= pilot.completed_at.as_ref().map(|t| t.0),
        "the second wave started before the pilot completed"
    );
}

/// The bot's 1.0.0 needs one application RSC permission, which the rollout consents; 2.0.0,
/// published while the pilot bakes, needs a second one. One decision for every user: no new
/// wave starts, nobody is upgraded, and the rollout says which permission to add. Adding it lets
/// the rollout go on, every write sending exactly the two.
#[tokio::test]
async fn a_version_needing_more_consent_holds_the_rollout_until_it_is_given() {
    const SEND: &str = "TeamsActivity.Send.User";
    const READ: &str = "Chat.Read.User";
    let seed = world(20, |_| None, &[])
        .replace(
            r#"clients: [{id: "#,
            r#"clients: [{roles: [TeamsAppInstallation.ReadWriteAndConsentForUser.All, AppCatalog.Read.All, User.Read.All, GroupMember.Read.All], id: "#,
        )
        .replace(
            r#"{version: "2.0.0", publishingState: published}"#,
            "",
        )
        .replace(
            r#"{version: "1.0.0", publishingState: published}, "#,
            &format!(
                r#"{{version: "1.0.0", publishingState: published, requiredPermissions: [{{permissionType: application, permissionValue: {SEND}}}]}}"#
            ),
        );
    let s = Scenario::start_with("tar-consent", &seed, &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "rsc",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [ALL]},
                "consent": {"permissions": [SEND]},
                "waves": [
                    // Longer than the rollout's catalog cache (30 s): the version published
                    // meanwhile is seen before the next wave would start.
                    {"name": "pilot", "percent": 50, "bakeTime": "40s"},
                    {"name": "everyone", "percent": 100},
                ],
            }),
        )
        .await;
    rollouts
        .wait_for("rsc", "the pilot installed", WAIT, |r| {
            r.status.as_ref().is_some_and(|s| {
                s.waves
                    .iter()
                    .any(|w| w.name == "pilot" && w.completed_at.is_some())
            })
        })
        .await;
    assert_eq!(writes(&s).await, (10, 0, 0));

    s.publish_version_requiring(BOT, "2.0.0", &[SEND, READ])
        .await;
    let held = rollouts
        .wait_for_reason("rsc", "ConsentRequired", WAIT)
        .await;
    let message = ready(&held).map(|c| c.message.clone()).unwrap_or_default();
    assert!(
        message.contains(READ) && !message.contains(SEND),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let waves = rollouts.children_by_wave().await;
    assert_eq!(
        waves.get("everyone"),
        None,
        "a wave started while held: {waves:?}"
    );
    assert_eq!(writes(&s).await, (10, 0, 0), "nothing written while held");

    rollouts
        .merge_spec("rsc", json!({"consent": {"permissions": [SEND, READ]}}))
        .await;
    rollouts
        .wait_for_reason("rsc", "RolloutComplete", WAIT)
        .await;
    assert_eq!(writes(&s).await, (20, 10, 0));
    let requests = s.graph_requests().await;
    let consented: Vec<Vec<String>> = requests
        .iter()
        .filter(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("/installedApps"))
        })
        .filter(|r| r["status"].as_u64().is_some_and(|c| c < 300))
        .skip(10)
        .map(|r| {
            let mut names: Vec<String> =
                r["body"]["consentedPermissionSet"]["resourceSpecificPermissions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["permissionValue"].as_str().map(String::from))
                    .collect();
            names.sort();
            names
        })
        .collect();
    assert_eq!(
        consented.len(),
        20,
        "10 installs and 10 upgrades after the consent"
    );
    let both = vec![READ.to_string(), SEND.to_string()];
    assert!(consented.iter().all(|c| *c == both), "{consented:?}");
}
