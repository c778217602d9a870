//! `TeamsAppRollout` on a real API server, with graph-sim's groups and the operator binary:
//! waves, eligibility, the failure budget, membership changes, deletion, and what `kubectl
//! wait` and kstatus read.

mod scenario;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use scenario::rollouts::*;
use scenario::{BOT, CLIENT_ID, SECRET, Scenario, TENANT, tail};
use serde_json::{Value, json};
use teams_app_operator::api::TeamsAppRollout;
use teams_app_operator::kit::conditions;
use teams_app_operator::rollout::core::waves::position;

#[tokio::test]
async fn a_nested_group_rolls_out_wave_by_wave() {
    // 1,000 members through nested groups, all eligible.
    let s = Scenario::start_with("tar-waves", &seed(1000, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "helpdesk",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [ALL]},
                "waves": [
                    {"name": "pilot", "percent": 1, "bakeTime": "3s"},
                    {"name": "early", "percent": 10, "bakeTime": "3s"},
                    {"name": "everyone", "percent": 100},
                ],
            }),
        )
        .await;

    // While it runs: no installation ever exists for a wave the status has not started.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen_waves = Vec::new();
    let mut seen_in_progress = false;
    let done = loop {
        let by_wave = rollouts.children_by_wave().await;
        let r = rollouts.get("helpdesk").await;
        let started: Vec<String> = r
            .status
            .as_ref()
            .map(|s| {
                s.waves
                    .iter()
                    .filter(|w| w.started_at.is_some())
                    .map(|w| w.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        for wave in by_wave.keys() {
            assert!(
                started.contains(wave),
                "installations of wave {wave} exist before it started: {by_wave:?}, started {started:?}"
            );
        }
        if seen_waves.last() != Some(&by_wave) {
            seen_waves.push(by_wave);
        }
        if ready(&r).is_some_and(|c| c.status == "True") && current(&r) {
            break r;
        }
        assert_ne!(kstatus(&r), "Failed", "{:?}", r.status);
        seen_in_progress |= kstatus(&r) == "InProgress";
        assert!(
            Instant::now() < deadline,
            "rollout never completed; status {}\n--- operator log ---\n{}",
            serde_json::to_string_pretty(&r.status).unwrap_or_default(),
            tail(&s.operator_log(), 60)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    assert!(
        seen_in_progress,
        "kstatus never read InProgress while the waves ran"
    );
    // Installations appeared wave by wave: pilot alone first, then pilot + early.
    assert!(
        seen_waves
            .iter()
            .any(|w| w.keys().collect::<Vec<_>>() == ["pilot"]),
        "never saw the pilot wave alone: {seen_waves:?}"
    );
    assert!(
        seen_waves
            .iter()
            .any(|w| w.keys().collect::<Vec<_>>() == ["early", "pilot"]),
        "never saw pilot + early without everyone: {seen_waves:?}"
    );

    let status = done.status.clone().expect("status");
    let audience = status.audience.clone().expect("audience counts");
    assert_eq!((audience.members, audience.eligible), (1000, 1000));
    let users: Vec<u32> = status.waves.iter().map(|w| w.users).collect();
    assert_eq!(
        users.iter().sum::<u32>(),
        1000,
        "every user in one wave: {users:?}"
    );
    // 1% and 10% of a hashed audience: near 10 and 90.
    assert!((2..=25).contains(&users[0]), "pilot wave: {users:?}");
    assert!(
        (60..=130).contains(&(users[0] + users[1])),
        "pilot + early: {users:?}"
    );
    for w in &status.waves {
        assert_eq!((w.ready, w.failed), (w.users, 0), "wave {}", w.name);
    }
    assert_eq!(status.ready_summary.as_deref(), Some("1000/1000"));
    assert_eq!(status.current_wave.as_deref(), Some("everyone"));
    // The next wave waited for the one before to be Ready, then its bake time.
    for (before, next) in [("pilot", "early"), ("early", "everyone")] {
        let completed = wave_status(&done, before)
            .completed_at
            .expect("completed")
            .0;
        let started = wave_status(&done, next).started_at.expect("started").0;
        let waited = started.duration_since(completed).as_secs_f64();
        assert!(
            waited >= 3.0,
            "{next} started {waited}s after {before} completed"
        );
    }
    assert_eq!(kstatus(&done), "Current");
    assert_eq!(
        ready(&done).map(|c| c.reason.as_str()),
        Some("RolloutComplete")
    );
    // The installation controller did the Graph work: one install per user.
    assert_eq!(
        s.count_requests("POST", "/teamwork/installedApps").await,
        1000
    );
    let children = rollouts.children().await;
    assert_eq!(children.len(), 1000);
    assert!(children.iter().all(|c| c.owner_references().len() == 1));
    for reason in ["WaveStarted", "WaveCompleted"] {
        assert_eq!(
            s.event_count("helpdesk", reason).await,
            3,
            "{reason} Events"
        );
    }
}

#[tokio::test]
async fn guests_disabled_unlicensed_and_excluded_users_get_nothing() {
    let kind = |i: usize| match i {
        0 => Kind::Guest,
        1 => Kind::Disabled,
        2 => Kind::Unlicensed,
        _ => Kind::Member,
    };
    // Users 3 and 4 are excluded through a group, user 5 by UPN, user 6 by id.
    let s = Scenario::start_with("tar-eligible", &seed(12, kind, &[3, 4]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"externalId": "com.contoso.bot"},
                "audience": {
                    "groups": [ALL],
                    "exclude": {"groups": [EXCLUDED], "users": [upn(5).to_uppercase(), user_id(6)]},
                },
            }),
        )
        .await;
    let r = rollouts
        .wait_for_reason("bot", "RolloutComplete", Duration::from_secs(60))
        .await;
    let audience = r.status.clone().and_then(|s| s.audience).expect("counts");
    assert_eq!(audience.members, 12);
    assert_eq!(audience.excluded, 4);
    assert_eq!(
        (
            audience.skipped.guests,
            audience.skipped.disabled,
            audience.skipped.unlicensed
        ),
        (1, 1, 1)
    );
    assert_eq!(audience.eligible, 5);
    // Alerting sees it: the rollout gauge counts it as ready.
    let metrics = reqwest::get(format!("{}/metrics", s.operator().telemetry_url()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains(r#"teams_app_operator_rollouts{state="ready"} 1"#),
        "{metrics}"
    );
    let users: Vec<String> = rollouts
        .children()
        .await
        .iter()
        .map(|c| c.spec.user.clone())
        .collect();
    assert_eq!(users.len(), 5);
    for i in 0..7 {
        assert!(!users.contains(&user_id(i)), "user {i} got an installation");
    }
    // Each member was read through the cast, with ConsistencyLevel (or the simulator would
    // have refused), and excluded users were never sent to Graph's Teams endpoints.
    assert!(
        s.count_requests("GET", "/transitiveMembers/microsoft.graph.user")
            .await
            >= 2
    );
    assert_eq!(s.count_requests("POST", &user_id(5)).await, 0);
}

#[tokio::test]
async fn failures_beyond_the_budget_halt_until_it_is_raised() {
    // 20 users, licences not checked, so the unlicensed ones fail (403) and stall. The first
    // wave holds the 10 users nearest the start of the hash line; two of them are unlicensed.
    let mut by_position: Vec<usize> = (0..20).collect();
    by_position.sort_by_key(|i| position(&user_id(*i)));
    let failing = [by_position[0], by_position[5]];
    let kind = move |i: usize| {
        if failing.contains(&i) {
            Kind::Unlicensed
        } else {
            Kind::Member
        }
    };
    let s = Scenario::start_with("tar-halt", &seed(20, kind, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [ALL]},
                "eligibility": {"requireTeamsLicense": false},
                "waves": [{"name": "first", "count": 10}, {"name": "rest", "percent": 100}],
                "maxFailures": 1,
            }),
        )
        .await;
    let r = rollouts
        .wait_for_reason("bot", "FailureBudgetExceeded", Duration::from_secs(60))
        .await;
    assert_eq!(kstatus(&r), "Failed");
    let message = ready(&r).map(|c| c.message.clone()).unwrap_or_default();
    assert!(
        message.contains(&upn(failing[0])) && message.contains("UserNotLicensed"),
        "the halt names a failing user and why: {message}"
    );
    assert_eq!(wave_status(&r, "first").failed, 2);
    // Halted: the next wave never starts, however long we wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rollouts.children_by_wave().await,
        BTreeMap::from([("first".to_string(), 10)])
    );
    s.wait_for_event("bot", "RolloutHalted").await;

    rollouts
        .merge_spec("bot", json!({"maxFailures": "20%"}))
        .await;
    let r = rollouts
        .wait_for_reason("bot", "RolloutComplete", Duration::from_secs(60))
        .await;
    assert_eq!(kstatus(&r), "Current");
    assert_eq!(
        rollouts.children_by_wave().await,
        BTreeMap::from([("first".to_string(), 10), ("rest".to_string(), 10)])
    );
    assert_eq!(
        r.status.and_then(|s| s.ready_summary).as_deref(),
        Some("18/20")
    );
}

#[tokio::test]
async fn membership_changes_follow_the_removal_policy() {
    let s = Scenario::start_with("tar-members", &seed(4, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [NESTED_A]},
                "removalPolicy": "Uninstall",
                "membershipInterval": "1s",
                // Leavers leave at the first read that misses them (the default waits an hour).
                "removalDelay": "0s",
            }),
        )
        .await;
    let r = rollouts
        .wait_for_reason("bot", "RolloutComplete", Duration::from_secs(60))
        .await;
    // kubectl wait reads the same condition.
    let kubectl = std::process::Command::new("kubectl")
        .env("KUBECONFIG", support::kubeconfig_path())
        .args([
            "wait",
            "--for=condition=Ready",
            "tar/bot",
            "-n",
            &s.namespace,
            "--timeout=30s",
        ])
        .output()
        .expect("kubectl runs");
    assert!(
        kubectl.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&kubectl.stderr)
    );
    assert_eq!(
        r.status.and_then(|s| s.ready_summary).as_deref(),
        Some("2/2")
    );

    // A member leaves (Uninstall): the installation goes, and Graph uninstalls the app.
    s.sim_admin(
        reqwest::Method::DELETE,
        &format!(
            "/_sim/tenants/{TENANT}/groups/{NESTED_A}/members/{}",
            user_id(0)
        ),
        json!({}),
    )
    .await;
    let child_of = |i: usize| format!("bot-{}", user_id(i));
    s.wait_gone(&child_of(0)).await;
    assert_eq!(s.count_requests("DELETE", &user_id(0)).await, 1);

    // A user joins: an installation in the (started) wave, and the app.
    rollouts
        .members(
            reqwest::Method::POST,
            NESTED_A,
            None,
            json!({"id": user_id(1)}),
        )
        .await;
    s.wait_for(&child_of(1), "Ready", Duration::from_secs(60), |o| {
        conditions::is_ready_for_generation(o)
    })
    .await;

    // Orphan: a member leaves, the installation goes, the app stays.
    rollouts
        .merge_spec("bot", json!({"removalPolicy": "Orphan"}))
        .await;
    s.sim_admin(
        reqwest::Method::DELETE,
        &format!(
            "/_sim/tenants/{TENANT}/groups/{NESTED_A}/members/{}",
            user_id(2)
        ),
        json!({}),
    )
    .await;
    s.wait_gone(&child_of(2)).await;
    assert_eq!(s.count_requests("DELETE", &user_id(2)).await, 0);
    let r = rollouts
        .wait_for_reason("bot", "RolloutComplete", Duration::from_secs(60))
        .await;
    assert_eq!(
        r.status.and_then(|s| s.ready_summary).as_deref(),
        Some("1/1")
    );

    // A member disabled in the directory is no longer eligible: removed like a leaver.
    s.sim_admin(
        reqwest::Method::PATCH,
        &format!("/_sim/tenants/{TENANT}/users/{}", user_id(1)),
        json!({"accountEnabled": false}),
    )
    .await;
    s.wait_gone(&child_of(1)).await;
}

#[tokio::test]
async fn deleting_the_rollout_removes_its_installations_by_their_policy() {
    let s = Scenario::start_with("tar-delete", &seed(6, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [ALL]},
                "template": {"deletionPolicy": "Uninstall"},
            }),
        )
        .await;
    let r = rollouts
        .wait_for_reason("bot", "RolloutComplete", Duration::from_secs(60))
        .await;
    assert_eq!(kstatus(&r), "Current");
    assert_eq!(rollouts.children().await.len(), 6);
    rollouts
        .api
        .delete("bot", &DeleteParams::default())
        .await
        .expect("delete rollout");
    let deadline = Instant::now() + Duration::from_secs(60);
    while rollouts.api.get_opt("bot").await.ok().flatten().is_some() {
        assert!(
            Instant::now() < deadline,
            "rollout not deleted\n{}",
            tail(&s.operator_log(), 60)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(rollouts.children().await.is_empty());
    assert_eq!(
        s.count_requests("DELETE", "/teamwork/installedApps/").await,
        6
    );
}

#[tokio::test]
async fn an_unreadable_audience_stalls_with_the_reason() {
    // The app registration lacks User.Read.All: members come back without properties.
    let seed = seed(3, |_| Kind::Member, &[]).replace(
        &format!("clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]"),
        &format!(
            "clients: [{{id: {CLIENT_ID}, secret: {SECRET}, roles: [TeamsAppInstallation.ReadWriteForUser.All, AppCatalog.Read.All, GroupMember.Read.All]}}]"
        ),
    );
    let s = Scenario::start_with("tar-perm", &seed, &FAST).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({"app": {"id": BOT}, "audience": {"groups": [ALL]}}),
        )
        .await;
    let r = rollouts
        .wait_for_reason("bot", "PermissionDenied", Duration::from_secs(60))
        .await;
    assert_eq!(kstatus(&r), "Failed");
    let message = ready(&r).map(|c| c.message.clone()).unwrap_or_default();
    assert!(message.contains("User.Read.All"), "{message}");
    assert!(rollouts.children().await.is_empty());

    // A group that does not exist.
    rollouts
        .create(
            "ghost",
            json!({"app": {"id": BOT}, "audience": {"groups": ["44444444-4444-4444-4444-999999999999"]}}),
        )
        .await;
    let r = rollouts
        .wait_for_reason("ghost", "AudienceNotFound", Duration::from_secs(60))
        .await;
    assert_eq!(kstatus(&r), "Failed");
}

#[tokio::test]
async fn the_api_server_refuses_rollouts_that_cannot_work() {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "tar-invalid").await;
    let api: Api<TeamsAppRollout> = Api::namespaced(client, &namespace);
    let cases = [
        (
            json!({"app": {"id": BOT}, "audience": {}}),
            "at least one group or user",
        ),
        (
            json!({"app": {"id": BOT}, "audience": {"groups": ["sales"]}}),
            "group object ids",
        ),
        (
            json!({"app": {"id": BOT}, "audience": {"users": ["not a user"]}}),
            "user principal names",
        ),
        (
            json!({"app": {"id": BOT}, "audience": {"groups": [ALL]},
                   "waves": [{"name": "a", "percent": 10, "count": 5}]}),
            "exactly one of percent or count",
        ),
        (
            json!({"app": {"id": BOT}, "audience": {"groups": [ALL]},
                   "waves": [{"name": "a", "percent": 10}, {"name": "a", "percent": 100}]}),
            "wave names must be unique",
        ),
        (
            json!({"app": {"id": BOT}, "audience": {"groups": [ALL]}, "maxFailures": "lots"}),
            "maxFailures",
        ),
        (
            json!({"app": {"id": BOT}, "audience": {"groups": [ALL]},
                   "waves": [{"name": "Pilot", "percent": 10}]}),
            "wave name",
        ),
    ];
    for (i, (spec, expected)) in cases.into_iter().enumerate() {
        let obj: Value = json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppRollout",
            "metadata": {"name": format!("bad-{i}")},
            "spec": spec,
        });
        let obj: TeamsAppRollout = serde_json::from_value(obj).expect("parses");
        let err = api
            .create(&PostParams::default(), &obj)
            .await
            .expect_err(&format!("case {i} must be refused"));
        assert!(
            err.to_string().contains(expected),
            "case {i}: expected {expected:?} in {err}"
        );
    }
}
