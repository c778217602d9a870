//! The controller end to end: real kube-apiserver + etcd, graph-sim, and the operator binary.
//! Each test has its own namespace, simulator and operator process.

mod scenario;
mod support;

use std::time::Duration;

use scenario::{BOT, Scenario, condition, default_seed, installed_version, is_ready};
use serde_json::json;

#[tokio::test]
async fn lagging_install_is_upgraded_exactly_once() {
    let s = Scenario::start("upgrade", &default_seed()).await;
    s.publish_version(BOT, "1.1.0").await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;

    let obj = s.wait_for_reason("bot-alice", "UpToDate").await;
    assert_eq!(installed_version(&obj).as_deref(), Some("1.1.0"));
    assert_eq!(
        obj.status
            .as_ref()
            .and_then(|st| st.latest_version.as_deref()),
        Some("1.1.0")
    );
    assert!(
        obj.status
            .as_ref()
            .is_some_and(|st| st.last_upgrade_time.is_some())
    );
    s.wait_for_event("bot-alice", "Upgraded").await;
    // Let a few drift checks pass: still exactly one upgrade call.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(s.count_requests("POST", "/upgrade").await, 1);
    assert_eq!(
        s.count_requests("POST", "/installedApps").await,
        1,
        "no install for an installed app"
    );
}

#[tokio::test]
async fn missing_install_is_installed_unless_policy_is_never() {
    let s = Scenario::start("install", &default_seed()).await;
    s.create(
        "bot-bob",
        json!({"user": "bob@contoso.com", "app": {"externalId": "com.contoso.bot"}}),
    )
    .await;
    s.create(
        "bot-bob-never",
        json!({"user": "bob@contoso.com", "app": {"id": BOT}, "installPolicy": "Never"}),
    )
    .await;

    let obj = s.wait_for_reason("bot-bob", "UpToDate").await;
    assert_eq!(installed_version(&obj).as_deref(), Some("1.0.0"));
    assert!(
        obj.status
            .as_ref()
            .is_some_and(|st| st.installation_id.is_some())
    );
    s.wait_for_event("bot-bob", "Installed").await;
    assert_eq!(s.count_requests("POST", "/teamwork/installedApps").await, 1);

    // The Never resource is about the same user and app; once bob has it (installed by the
    // other resource), it is simply up to date. Before that it must not install.
    let never = s.get("bot-bob-never").await;
    let reason = condition(&never, "Ready").map(|c| c.reason.clone());
    assert!(
        matches!(
            reason.as_deref(),
            Some("NotInstalled") | Some("UpToDate") | None
        ),
        "unexpected {reason:?}"
    );
}

#[tokio::test]
async fn install_policy_never_reports_not_installed_without_installing() {
    let s = Scenario::start("never", &default_seed()).await;
    s.create(
        "bot-bob",
        json!({"user": "bob@contoso.com", "app": {"id": BOT}, "installPolicy": "Never"}),
    )
    .await;
    let obj = s.wait_for_reason("bot-bob", "NotInstalled").await;
    // Nothing is left to do: Ready, so `kubectl wait` and kstatus see a settled resource.
    assert_eq!(
        condition(&obj, "Ready").map(|c| c.status.as_str()),
        Some("True")
    );
    assert!(condition(&obj, "Reconciling").is_none());
    assert!(condition(&obj, "Stalled").is_none());
    assert_eq!(s.count_requests("POST", "/installedApps").await, 0);
}

#[tokio::test]
async fn target_above_catalog_waits_then_upgrades_when_published() {
    let s = Scenario::start("waitcat", &default_seed()).await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}, "targetVersion": "2.0.0"}),
    )
    .await;
    let obj = s
        .wait_for_reason("bot-alice", "WaitingForCatalogVersion")
        .await;
    assert_eq!(
        condition(&obj, "Reconciling").map(|c| c.status.as_str()),
        Some("True")
    );
    assert_eq!(s.count_requests("POST", "/upgrade").await, 0);

    s.publish_version(BOT, "2.0.0").await;
    let obj = s.wait_for_reason("bot-alice", "UpToDate").await;
    assert_eq!(installed_version(&obj).as_deref(), Some("2.0.0"));
    assert_eq!(s.count_requests("POST", "/upgrade").await, 1);
}

#[tokio::test]
async fn terminal_graph_errors_stall_with_request_id() {
    let s = Scenario::start("stall", &default_seed()).await;
    s.create(
        "nobody",
        json!({"user": "nobody@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.create(
        "no-app",
        json!({"user": "alice@contoso.com", "app": {"id": "99999999-9999-9999-9999-999999999999"}}),
    )
    .await;
    s.create(
        "blocked",
        json!({"user": "mallory@contoso.com", "app": {"id": BOT}}),
    )
    .await;

    let obj = s.wait_for_reason("nobody", "UserNotFound").await;
    assert_eq!(
        condition(&obj, "Stalled").map(|c| c.status.as_str()),
        Some("True")
    );
    let message = condition(&obj, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("404"),
        "message carries the HTTP status: {message}"
    );
    assert!(
        message.contains("request-id"),
        "message carries Graph's request-id: {message}"
    );

    let obj = s.wait_for_reason("no-app", "AppNotFound").await;
    assert_eq!(
        condition(&obj, "Stalled").map(|c| c.status.as_str()),
        Some("True")
    );

    let obj = s.wait_for_reason("blocked", "BlockedByPolicy").await;
    let message = condition(&obj, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("403"), "{message}");
    s.wait_for_event("nobody", "UserNotFound").await;
}

#[tokio::test]
async fn forbidden_graph_answer_is_permission_denied() {
    let s = Scenario::start("forbidden", &default_seed()).await;
    s.set_faults(json!({"failures": [{"method": "GET", "pathContains": "/installedApps", "status": 403, "code": "Forbidden", "count": 1000}]}))
        .await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    let obj = s.wait_for_reason("bot-alice", "PermissionDenied").await;
    assert_eq!(
        condition(&obj, "Stalled").map(|c| c.status.as_str()),
        Some("True")
    );
}

#[tokio::test]
async fn deletion_policy_uninstall_removes_the_app_and_orphan_does_not() {
    let s = Scenario::start("delete", &default_seed()).await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}, "deletionPolicy": "Uninstall"}),
    )
    .await;
    s.create(
        "bot-bob",
        json!({"user": "bob@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    let obj = s.wait_for_reason("bot-alice", "UpToDate").await;
    assert!(
        obj.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == "teamsapps.dev/uninstall"))
    );
    s.wait_for_reason("bot-bob", "UpToDate").await;

    s.delete("bot-alice").await;
    s.wait_gone("bot-alice").await;
    assert_eq!(s.count_requests("DELETE", "/installedApps/").await, 1);

    s.delete("bot-bob").await;
    s.wait_gone("bot-bob").await;
    assert_eq!(
        s.count_requests("DELETE", "/installedApps/").await,
        1,
        "Orphan leaves the app"
    );
}

#[tokio::test]
async fn suspended_resources_make_no_graph_calls() {
    let s = Scenario::start("suspend", &default_seed()).await;
    s.create(
        "bot-bob",
        json!({"user": "bob@contoso.com", "app": {"id": BOT}, "suspend": true}),
    )
    .await;
    let obj = s
        .wait_for("bot-bob", "observed", Duration::from_secs(30), |o| {
            o.status.as_ref().and_then(|st| st.observed_generation) == o.metadata.generation
        })
        .await;
    assert!(
        condition(&obj, "Ready").is_some(),
        "Ready is always present"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let graph_calls = s
        .graph_requests()
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains("/users/")))
        .count();
    assert_eq!(graph_calls, 0);
}

#[tokio::test]
async fn steady_state_writes_nothing_and_only_rechecks() {
    let s = Scenario::start("steady", &default_seed()).await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}, "interval": "2s"}),
    )
    .await;
    let ready = s
        .wait_for("bot-alice", "ready", Duration::from_secs(60), is_ready)
        .await;
    let before = s.graph_requests().await.len();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let after = s.get("bot-alice").await;
    assert_eq!(
        ready.metadata.resource_version, after.metadata.resource_version,
        "no status writes in steady state"
    );
    let calls = s.graph_requests().await.len() - before;
    // Each drift check is one catalog read and one installation read; ~4 checks at 2s ± 10%
    // (plus token refreshes never happen within a token lifetime).
    assert!(calls >= 4, "drift checks happen: {calls} calls");
    assert!(
        calls <= 12,
        "nothing beyond the scheduled re-checks: {calls} calls"
    );
    assert_eq!(s.count_requests("POST", "").await, 0);
}

#[tokio::test]
async fn api_server_rejects_bad_manifests() {
    let s = Scenario::start("reject", &default_seed()).await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    let err = s
        .merge_spec("bot-alice", json!({"user": "bob@contoso.com"}))
        .await
        .expect_err("spec.user is immutable");
    assert!(err.to_string().contains("immutable"), "{err}");

    let both: Result<teams_app_operator::api::TeamsAppInstallation, _> = serde_json::from_value(
        json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppInstallation",
            "metadata": {"name": "both"},
            "spec": {"user": "alice@contoso.com", "app": {"id": BOT, "externalId": "com.contoso.bot"}},
        }),
    );
    let both = both.expect("serde accepts it; the API server must not");
    let err = s
        .api
        .create(&Default::default(), &both)
        .await
        .expect_err("both app.id and app.externalId");
    assert!(err.to_string().contains("exactly one"), "{err}");

    let bad_interval = s
        .merge_spec("bot-alice", json!({"interval": "soon"}))
        .await
        .expect_err("interval must be a duration");
    assert!(
        bad_interval.to_string().contains("interval"),
        "{bad_interval}"
    );
}

#[tokio::test]
async fn upgrade_503_twice_is_retried_to_one_effective_upgrade() {
    let s = Scenario::start("retry", &default_seed()).await;
    s.publish_version(BOT, "1.1.0").await;
    s.set_faults(json!({"failures": [{"method": "POST", "pathContains": "/upgrade", "status": 503, "count": 2}]}))
        .await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    let obj = s.wait_for_reason("bot-alice", "UpToDate").await;
    assert_eq!(installed_version(&obj).as_deref(), Some("1.1.0"));
    assert_eq!(
        s.upgrade_statuses().await,
        vec![503, 503, 204],
        "two failures, then one effective upgrade"
    );
}

#[tokio::test]
async fn throttling_retry_after_is_honoured() {
    let s = Scenario::start("throttle", &default_seed()).await;
    s.set_faults(json!({"failures": [{"method": "GET", "pathContains": "/installedApps", "status": 429, "count": 3, "retryAfter": 1.5}]}))
        .await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for("bot-alice", "ready", Duration::from_secs(90), is_ready)
        .await;

    // One resource, so requests are sequential: after each 429 the next Graph request must come
    // no sooner than the Retry-After (1.5 s) the simulator asked for.
    let log: Vec<(f64, u64)> = s
        .graph_requests()
        .await
        .iter()
        .filter(|r| !r["path"].as_str().is_some_and(|p| p.contains("oauth2")))
        .filter_map(|r| {
            let at: jiff::Timestamp = r["time"].as_str()?.parse().ok()?;
            Some((at.as_millisecond() as f64 / 1000.0, r["status"].as_u64()?))
        })
        .collect();
    let throttled: Vec<usize> = (0..log.len()).filter(|&i| log[i].1 == 429).collect();
    assert_eq!(
        throttled.len(),
        3,
        "the simulator throttled three times: {log:?}"
    );
    for i in throttled {
        let (at, _) = log[i];
        let (next, _) = log.get(i + 1).copied().expect("a retry follows each 429");
        assert!(
            next - at >= 1.4,
            "retried {:.3}s after a 429 with Retry-After 1.5",
            next - at
        );
    }
}

#[tokio::test]
async fn kubectl_wait_returns_once_ready() {
    let s = Scenario::start("kwait", &default_seed()).await;
    s.create(
        "bot-bob",
        json!({"user": "bob@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    let out = tokio::process::Command::new("kubectl")
        .args([
            "wait",
            "--for=condition=Ready",
            "tai/bot-bob",
            "--timeout=60s",
        ])
        .args(["-n", &s.namespace])
        .env("KUBECONFIG", support::kubeconfig_path())
        .output()
        .await
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl wait failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
    assert!(is_ready(&s.get("bot-bob").await));
}

#[tokio::test]
async fn reconcile_request_annotation_rechecks_now_with_a_fresh_catalog() {
    // Long intervals and catalog cache: only the annotation can make the new version show.
    let s = Scenario::start_with(
        "annotate",
        &default_seed(),
        &["--default-interval", "1h", "--catalog-cache-ttl", "1h"],
    )
    .await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for_reason("bot-alice", "UpToDate").await;
    s.publish_version(BOT, "1.1.0").await;

    s.api
        .patch(
            "bot-alice",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {
                "teamsapps.dev/reconcile-requested-at": "2026-12-02T10:00:00Z"
            }}})),
        )
        .await
        .expect("annotate");
    let obj = s
        .wait_for("bot-alice", "upgraded", Duration::from_secs(60), |o| {
            is_ready(o) && installed_version(o).as_deref() == Some("1.1.0")
        })
        .await;
    assert_eq!(
        obj.status
            .as_ref()
            .and_then(|st| st.last_handled_reconcile_at.as_deref()),
        Some("2026-12-02T10:00:00Z")
    );
    assert_eq!(s.count_requests("POST", "/upgrade").await, 1);
    assert_eq!(
        s.count_requests("GET", "/appCatalogs/").await,
        2,
        "one read per reconcile request"
    );
}

#[tokio::test]
async fn graph_outage_while_an_upgrade_is_pending_reports_reconciling_then_recovers() {
    let s = Scenario::start("outage", &default_seed()).await;
    s.publish_version(BOT, "1.1.0").await;
    s.set_faults(json!({"failures": [{"method": "POST", "pathContains": "/upgrade", "status": 503, "count": 1000}]}))
        .await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    let obj = s.wait_for_reason("bot-alice", "GraphUnavailable").await;
    assert_eq!(
        condition(&obj, "Ready").map(|c| c.status.as_str()),
        Some("False")
    );
    assert_eq!(
        condition(&obj, "Reconciling").map(|c| c.status.as_str()),
        Some("True")
    );
    assert!(
        condition(&obj, "Stalled").is_none(),
        "transient, not stalled"
    );
    let message = condition(&obj, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("503") && message.contains("request-id"),
        "{message}"
    );
    s.wait_for_event("bot-alice", "GraphUnavailable").await;

    // Graph is back: the retry (with backoff) upgrades once.
    s.set_faults(json!({})).await;
    let obj = s.wait_for_reason("bot-alice", "UpToDate").await;
    assert_eq!(installed_version(&obj).as_deref(), Some("1.1.0"));
    let effective = s
        .upgrade_statuses()
        .await
        .iter()
        .filter(|&&st| st == 204)
        .count();
    assert_eq!(effective, 1, "one effective upgrade");
}

#[tokio::test]
async fn a_failed_drift_check_of_an_up_to_date_install_keeps_it_ready() {
    let s = Scenario::start("driftfail", &default_seed()).await;
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}, "interval": "1s"}),
    )
    .await;
    let ready = s
        .wait_for("bot-alice", "ready", Duration::from_secs(60), is_ready)
        .await;
    s.set_faults(json!({"failures": [{"method": "GET", "pathContains": "/users/alice@contoso.com/", "status": 503, "count": 1000}]}))
        .await;
    // The re-checks fail: a Warning Event says so, but nothing is known to be wrong with the
    // install, so Ready stays True and the status is not rewritten.
    s.wait_for_event("bot-alice", "GraphUnavailable").await;
    let during = s.get("bot-alice").await;
    assert!(is_ready(&during));
    assert_eq!(
        ready.metadata.resource_version,
        during.metadata.resource_version
    );
    s.set_faults(json!({})).await;
}
