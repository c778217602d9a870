//! The dashboard and rule files themselves: promtool, the rule unit tests' coverage, the
//! runbooks, and what the chart renders from them.

use std::collections::BTreeSet;

use super::*;

#[test]
fn promtool_checks_the_rule_file() {
    let out = must(
        Command::new(promtool())
            .args(["check", "rules", "--lint=all", "--lint-fatal"])
            .arg(repo_path(RULES))
            .output(),
        "promtool check rules",
    );
    let count = alerts(&rules()).len();
    assert!(
        out.contains(&format!("SUCCESS: {count} rules found")),
        "promtool check rules:\n{out}"
    );
}

#[test]
fn promtool_unit_tests_pass() {
    // Relative to the test file: `rule_files: [../alerts.yaml]`.
    let out = must(
        Command::new(promtool())
            .args(["test", "rules"])
            .arg(repo_path(RULE_TESTS))
            .output(),
        "promtool test rules",
    );
    assert!(out.contains("SUCCESS"), "promtool test rules:\n{out}");
}

/// Every alert has a unit test where it fires and one where it must stay quiet, so a new alert
/// without both fails here.
#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    let tests: Value = serde_saphyr::from_str(&read(RULE_TESTS)).expect("the rule tests are YAML");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for test in tests["tests"].as_array().expect("tests") {
        for case in test["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname").to_string();
            let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
            if fires { &mut firing } else { &mut quiet }.insert(name);
        }
    }
    for (alert, _) in alerts(&rules()) {
        assert!(
            firing.contains(&alert),
            "{RULE_TESTS}: no case where {alert} fires"
        );
        assert!(
            quiet.contains(&alert),
            "{RULE_TESTS}: no case where {alert} stays quiet"
        );
    }
}

/// GitHub's anchor of a Markdown heading: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every alert links its runbook, a section of the chart README that exists.
#[test]
fn every_alert_has_a_runbook_in_the_chart_readme() {
    let readme = read(CHART_README);
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let rules = rules();
    for rule in rules["groups"][0]["rules"].as_array().expect("rules") {
        let alert = rule["alert"].as_str().expect("alert");
        let runbook = rule["annotations"]["runbook"]
            .as_str()
            .unwrap_or_else(|| panic!("{alert} has no runbook annotation"));
        let (file, section) = runbook
            .split_once('#')
            .unwrap_or_else(|| panic!("{alert}: runbook {runbook} names no section"));
        assert_eq!(file, CHART_README, "{alert}: runbook {runbook}");
        assert_eq!(
            section,
            alert.to_lowercase(),
            "{alert}: the runbook section is the alert's name"
        );
        assert!(
            anchors.contains(section),
            "{alert}: {CHART_README} has no section #{section} (a `### {alert}` heading)"
        );
        for key in ["summary", "description"] {
            assert!(rule["annotations"][key].is_string(), "{alert} has no {key}");
        }
        assert!(
            ["warning", "critical"]
                .contains(&rule["labels"]["severity"].as_str().unwrap_or_default()),
            "{alert}: severity warning or critical"
        );
    }
}

/// The dashboard is one Grafana could load: unique panel ids, panels inside the 24-column grid,
/// every query on the `datasource` variable, every variable a panel uses defined.
#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["uid"], "teams-app-operator");
    let mut ids = BTreeSet::new();
    for panel in d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .chain(panels(&d))
    {
        ids.insert(panel["id"].as_u64().expect("panel id"));
        let grid = &panel["gridPos"];
        let (x, w) = (
            grid["x"].as_u64().expect("x"),
            grid["w"].as_u64().expect("w"),
        );
        assert!(x + w <= 24, "panel {} leaves the grid", panel["title"]);
    }
    assert_eq!(
        ids.len(),
        d["panels"].as_array().map_or(0, Vec::len),
        "panel ids are unique"
    );
    let variables: BTreeSet<String> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| v["name"].as_str().expect("variable name").to_string())
        .collect();
    assert!(
        ["datasource", "job", "controller"]
            .iter()
            .all(|v| variables.contains(*v)),
        "{variables:?}"
    );
    for panel in panels(&d) {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for t in targets {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "{}",
                panel["title"]
            );
            assert!(
                !t["expr"].as_str().unwrap_or_default().is_empty(),
                "{}",
                panel["title"]
            );
        }
    }
    // Every variable a query uses is the dashboard's or Grafana's own.
    let mut values: Vec<(&str, &str)> = variables.iter().map(|v| (v.as_str(), ".*")).collect();
    values.extend([
        ("__rate_interval", "1m"),
        ("__range", "1h"),
        ("__interval", "1m"),
    ]);
    for q in panel_queries(&d) {
        substitute(&q.expr, &values);
    }
    // The controller variable lists both kinds' controllers from controller-runtime's series.
    let controller = label_value_variables(&d)
        .into_iter()
        .find(|(name, ..)| name == "controller")
        .expect("a controller variable");
    assert_eq!(controller.2, "controller");
}

// -------------------------------------------------------------------------------- the chart

/// `helm template` of the chart with `values`, as JSON objects.
fn render(values: &str) -> Vec<Value> {
    let file = values_file(values);
    let manifest = must(
        Command::new(helm())
            .args(["template", "tao", CHART, "--namespace", "ops", "--values"])
            .arg(file.path())
            .current_dir(support::repo_root())
            .stdin(Stdio::null())
            .output(),
        "helm template",
    );
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&manifest).expect("helm renders YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn only<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, got {}", found.len());
    found[0]
}

#[test]
fn the_chart_renders_neither_by_default() {
    let objects = render("");
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "PrometheusRule" || o["kind"] == "ConfigMap"),
        "dashboard and alerts are off by default"
    );
}

#[test]
fn the_chart_ships_the_dashboard_file_for_grafanas_sidecar() {
    let objects = render("dashboard: {enabled: true}\n");
    let cm = only(&objects, "ConfigMap");
    assert_eq!(cm["metadata"]["namespace"], "ops");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        cm["data"]["teams-app-operator.json"].as_str(),
        Some(read(DASHBOARD).as_str()),
        "the ConfigMap holds {DASHBOARD} byte for byte"
    );

    let objects = render(
        r#"
dashboard:
  enabled: true
  namespace: monitoring
  label: example.com/dashboard
  labelValue: teams
  labels: {team: platform}
  annotations: {grafana_folder: Operators}
"#,
    );
    let meta = &only(&objects, "ConfigMap")["metadata"];
    assert_eq!(meta["namespace"], "monitoring");
    assert_eq!(meta["labels"]["example.com/dashboard"], "teams");
    assert_eq!(meta["labels"]["team"], "platform");
    assert!(meta["labels"]["grafana_dashboard"].is_null());
    assert_eq!(meta["annotations"]["grafana_folder"], "Operators");
}

#[test]
fn the_chart_ships_the_rule_file_as_a_prometheus_rule() {
    let objects = render("prometheusRule: {enabled: true, labels: {release: prometheus}}\n");
    let rule = only(&objects, "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["namespace"], "ops");
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        rule["spec"],
        rules(),
        "the PrometheusRule's spec is {RULES}"
    );

    // Routing labels and published runbooks: added to every alert, nothing else changes.
    let objects = render(
        r#"
prometheusRule:
  enabled: true
  namespace: monitoring
  additionalRuleLabels: {team: platform, severity: page}
  runbookBaseUrl: https://git.example.com/teams-app-operator/charts/teams-app-operator/README.md
"#,
    );
    let rule = only(&objects, "PrometheusRule");
    assert_eq!(rule["metadata"]["namespace"], "monitoring");
    let mut expected = rules();
    for r in expected["groups"][0]["rules"]
        .as_array_mut()
        .expect("rules")
    {
        let alert = r["alert"].as_str().expect("alert").to_lowercase();
        r["labels"]["team"] = "platform".into();
        r["annotations"]["runbook_url"] = format!(
            "https://git.example.com/teams-app-operator/charts/teams-app-operator/README.md#{alert}"
        )
        .into();
    }
    assert_eq!(rule["spec"], expected, "an alert's own severity wins");
}
