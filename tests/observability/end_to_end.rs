//! A real Prometheus scraping the operator binary while it installs apps, upgrades, stalls,
//! rolls out to a group and meets throttling, a refused token, a failing token endpoint and a
//! Graph outage: every panel query of the chart's dashboard and every alert expression is run
//! against it.

use std::time::{Duration, Instant, SystemTime};

use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use serde_json::json;

use super::prometheus::Prometheus;
use super::*;
use crate::scenario::{BOT, CLIENT_ID, SECRET, Scenario, TENANT, is_ready, tail};

const GROUP: &str = "44444444-4444-4444-4444-444444444444";

/// alice has the bot at 1.0.0 (1.1.0 gets published: an upgrade), bob has nothing (an
/// install), carol and dave are the group a rollout gives the bot to; nobody@ does not exist
/// (Stalled).
fn seed() -> String {
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]
    users:
      - {{id: 22222222-2222-2222-2222-222222222222, userPrincipalName: alice@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222223, userPrincipalName: bob@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222224, userPrincipalName: carol@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222225, userPrincipalName: dave@contoso.com}}
    groups: [{{id: {GROUP}, members: [carol@contoso.com, dave@contoso.com]}}]
    apps:
      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
    installations: [{{user: alice@contoso.com, app: {BOT}, version: "1.0.0"}}]
"#
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Polls until `check` holds for the instant query `expr`'s summed value.
async fn wait_for_value(
    prometheus: &Prometheus,
    s: &Scenario,
    expr: &str,
    what: &str,
    check: impl Fn(f64) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = prometheus.value(expr).await;
        if check(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw {what}: {expr} = {value}\n--- operator log ---\n{}\n--- prometheus log ---\n{}",
            tail(&s.operator_log(), 40),
            tail(&prometheus.log(), 20)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_real_prometheus_answers_every_dashboard_query_and_alert_expression() {
    // The tools first: a missing one fails here, with the build's reason, before anything runs.
    prometheus_binary();
    let s = Scenario::start_with(
        "observability",
        &seed(),
        // Leader election on, so the leader series exist; the Lease lives in the kubeconfig's
        // namespace, named for this test alone.
        &["--leader-elect", "--lease-name", "tao-observability"],
    )
    .await;
    let target = s
        .operator()
        .telemetry_url()
        .trim_start_matches("http://")
        .to_string();
    let rules_path = repo_path(RULES);
    let prometheus = Prometheus::start(&[target], &[&rules_path]).await;
    let started = now();
    // The controllers run (the leader reports its resources) before Graph misbehaves.
    wait_for_value(
        &prometheus,
        &s,
        "count(teams_app_operator_resources) + count(teams_app_operator_rollouts)",
        "both controllers",
        |n| n >= 10.0,
    )
    .await;

    // Work arrives while Graph throttles twice (429s, then the client waits out Retry-After:
    // budget waits), answers 401 once (the token is dropped) and the token endpoint 503 once
    // (a failed refresh, retried).
    s.set_faults(json!({"failures": [
        {"method": "GET", "pathContains": "/installedApps", "status": 429, "count": 2, "retryAfter": 0.5},
        {"pathContains": "/installedApps", "status": 401, "count": 1},
        {"pathContains": "/oauth2/", "status": 503, "count": 1, "retryAfter": 0.2},
    ]}))
    .await;
    s.publish_version(BOT, "1.1.0").await;
    for (name, user) in [
        ("bot-alice", "alice@contoso.com"),
        ("bot-bob", "bob@contoso.com"),
        ("nobody", "nobody@contoso.com"),
    ] {
        s.create(name, json!({"user": user, "app": {"id": BOT}}))
            .await;
    }
    let rollouts: Api<DynamicObject> = Api::namespaced_with(
        s.client.clone(),
        &s.namespace,
        &ApiResource {
            group: "teamsapps.dev".into(),
            version: "v1alpha1".into(),
            api_version: "teamsapps.dev/v1alpha1".into(),
            kind: "TeamsAppRollout".into(),
            plural: "teamsapprollouts".into(),
        },
    );
    let rollout: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "teamsapps.dev/v1alpha1",
        "kind": "TeamsAppRollout",
        "metadata": {"name": "helpdesk"},
        "spec": {"app": {"id": BOT}, "audience": {"groups": [GROUP]}},
    }))
    .expect("a rollout");
    rollouts
        .create(&PostParams::default(), &rollout)
        .await
        .expect("create the rollout");

    for name in ["bot-alice", "bot-bob"] {
        s.wait_for(name, "Ready", Duration::from_secs(60), is_ready)
            .await;
    }
    s.wait_for_reason("nobody", "UserNotFound").await;
    s.wait_for_object(
        &rollouts,
        "helpdesk",
        "Ready",
        Duration::from_secs(60),
        |r| {
            r.data["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        },
    )
    .await;
    for expr in [
        r#"sum(teams_app_operator_graph_token_refreshes_total{result="failure"})"#,
        "sum(teams_app_operator_graph_throttled_total)",
        "sum(teams_app_operator_graph_budget_wait_seconds_count)",
    ] {
        wait_for_value(&prometheus, &s, expr, expr, |n| n >= 1.0).await;
    }

    // The same trouble again (rate() and increase() over it: its counters exist at 0 from the
    // start), and Graph down for bob for longer than the client retries: one of his reconciles
    // fails.
    s.set_faults(json!({"failures": [
        {"method": "GET", "pathContains": "/installedApps", "status": 429, "count": 3, "retryAfter": 1},
        {"pathContains": "/installedApps", "status": 401, "count": 1},
        {"pathContains": "/oauth2/", "status": 503, "count": 1, "retryAfter": 0.2},
        {"pathContains": "/users/bob@contoso.com/", "status": 503, "count": 4},
    ]}))
    .await;
    for (expr, at_least) in [
        ("sum(controller_runtime_reconcile_errors_total)", 1.0),
        ("sum(teams_app_operator_graph_throttled_total)", 5.0),
        (
            r#"sum(teams_app_operator_graph_token_refreshes_total{result="failure"})"#,
            2.0,
        ),
    ] {
        wait_for_value(&prometheus, &s, expr, expr, |n| n >= at_least).await;
    }
    s.set_faults(json!({})).await;

    // Prometheus saw the final state: 4 installations Ready (2 of the rollout), 1 Stalled, the
    // rollout Ready, one leader.
    for (expr, expected) in [
        (r#"sum(teams_app_operator_resources{state="ready"})"#, 4.0),
        (r#"sum(teams_app_operator_resources{state="stalled"})"#, 1.0),
        (r#"sum(teams_app_operator_rollouts{state="ready"})"#, 1.0),
        ("sum(leader_election_master_status)", 1.0),
    ] {
        wait_for_value(&prometheus, &s, expr, expr, |n| n == expected).await;
    }
    // A few more scrapes, so every rate() has samples after the last event.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let dashboard = dashboard();
    let mut failures = Vec::new();

    // The variables: each lists values, and the controller's include the installation one.
    let mut controllers = Vec::new();
    for (name, selector, label) in label_value_variables(&dashboard) {
        let selector = substitute(&selector, &[("job", ".*")]);
        match prometheus.label_values(&label, &selector).await {
            Ok(values) if !values.is_empty() => {
                if name == "controller" {
                    controllers = values;
                }
            }
            Ok(_) => failures.push(format!(
                "variable ${name}: label_values({selector}, {label}) lists nothing"
            )),
            Err(e) => failures.push(format!("variable ${name}: {e}")),
        }
    }
    assert!(
        controllers.iter().any(|c| c == "teamsappinstallation"),
        "controllers {controllers:?}"
    );

    // Every panel query, with every variable at "All" and with each controller on its own.
    let mut checked = 0;
    for q in panel_queries(&dashboard) {
        let mut choices = vec![".*".to_string()];
        if q.expr.contains("$controller") {
            choices.extend(controllers.iter().cloned());
        }
        for controller in &choices {
            let expr = substitute(
                &q.expr,
                &[
                    ("job", ".*"),
                    ("controller", controller),
                    ("__rate_interval", "1m"),
                    ("__range", "5m"),
                    ("__interval", "1s"),
                ],
            );
            checked += 1;
            let what = format!("panel {:?} query {} ({expr})", q.panel, q.ref_id);
            if let Err(e) = check_expression(&prometheus, &expr, true).await {
                failures.push(format!("{what}: {e}"));
            }
        }
    }

    // Every alert expression parses, evaluates, and selects series that exist.
    for (alert, expr) in alerts(&rules()) {
        if let Err(e) = check_expression(&prometheus, &expr, false).await {
            failures.push(format!("alert {alert} ({expr}): {e}"));
        }
    }
    // ... and the rule file loaded into a real Prometheus evaluates without errors.
    if let Err(e) = rules_healthy(&prometheus).await {
        failures.push(e);
    }

    assert!(
        failures.is_empty(),
        "{} of {checked} dashboard queries and the alerts failed against a Prometheus scraping the operator:\n{}\n--- prometheus log ---\n{}",
        failures.len(),
        failures.join("\n"),
        tail(&prometheus.log(), 20)
    );

    super::picture::draw(&prometheus, &dashboard, started, now()).await;
}

/// `expr` parses, evaluates, and every series selector in it matches series; with
/// `needs_result`, the expression itself returns at least one series too. Waits a few seconds
/// for a result (a `rate()` needs two samples after a series appears).
async fn check_expression(
    prometheus: &Prometheus,
    expr: &str,
    needs_result: bool,
) -> Result<(), String> {
    let selectors = prometheus.selectors(expr).await?;
    if selectors.is_empty() {
        return Err("selects no series at all".into());
    }
    for selector in selectors {
        if prometheus.series(&selector).await? == 0 {
            return Err(format!("no series match {selector}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let result = prometheus.query(expr).await?;
        if !needs_result || !result.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("returned no series".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every rule of the loaded rule file has been evaluated, without an error.
async fn rules_healthy(prometheus: &Prometheus) -> Result<(), String> {
    let expected = alerts(&rules()).len();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let data = prometheus.api("rules", &[]).await?;
        let rules: Vec<&Value> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let unhealthy: Vec<String> = rules
            .iter()
            .filter(|r| r["health"] != "ok")
            .map(|r| format!("{} {}: {}", r["name"], r["health"], r["lastError"]))
            .collect();
        if rules.len() == expected && unhealthy.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the rule file loaded into Prometheus: {} of {expected} rules, unhealthy: {unhealthy:?}",
                rules.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
