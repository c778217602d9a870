//! The chart's Grafana dashboard and Prometheus alerts, checked for real:
//! - `promtool` checks the rule file and runs its unit tests (a firing and a quiet case for
//!   every alert), and `helm template` renders the dashboard ConfigMap and the PrometheusRule
//!   from the same files ([`files`]);
//! - a real Prometheus scrapes the operator binary while it works (real kube-apiserver from
//!   `support`, graph-sim in process, Graph faults that make the rarer series appear), and every
//!   panel query of the dashboard and every alert expression runs against it: a metric renamed
//!   in the code fails here ([`end_to_end`]); the run is drawn as `target/dashboard.svg`
//!   ([`picture`]).
//!
//! prometheus and promtool come from `scripts/prometheus build` (built from the Go module proxy
//! on first use, cached under `~/.cache/teams-app-operator/prometheus-v3.16.0/`), helm from
//! `scripts/control-plane build`. Nothing here skips: a tool that cannot be built or started
//! fails the test with the reason.

#[path = "../support/mod.rs"]
mod support;

#[path = "../scenario/mod.rs"]
mod scenario;

mod end_to_end;
mod files;
mod picture;
mod prometheus;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const CHART: &str = "charts/teams-app-operator";
const DASHBOARD: &str = "charts/teams-app-operator/dashboards/teams-app-operator.json";
const RULES: &str = "charts/teams-app-operator/rules/alerts.yaml";
const RULE_TESTS: &str = "charts/teams-app-operator/rules/tests/alerts_test.yaml";
const CHART_README: &str = "charts/teams-app-operator/README.md";

fn repo_path(relative: &str) -> PathBuf {
    support::repo_root().join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

// ------------------------------------------------------------------------------------ tools

/// `NAME` from the binary folder of `scripts/SCRIPT`, running `scripts/SCRIPT build` first when
/// it is missing (minutes on a first run; its progress goes to stderr as it happens).
fn tool(script: &str, name: &str) -> PathBuf {
    let script_path = repo_path(&format!("scripts/{script}"));
    let bin_dir = must(
        Command::new(&script_path)
            .arg("bin-dir")
            .stdin(Stdio::null())
            .output(),
        &format!("scripts/{script} bin-dir"),
    );
    let binary = PathBuf::from(bin_dir.trim()).join(name);
    if !binary.is_file() {
        let status = Command::new(&script_path)
            .arg("build")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running scripts/{script} build: {e}"));
        assert!(
            status.success(),
            "`scripts/{script} build` failed ({status}): {name} is needed (see its output above)"
        );
    }
    assert!(
        binary.is_file(),
        "{name} is not at {} after `scripts/{script} build`",
        binary.display()
    );
    binary
}

fn promtool() -> &'static Path {
    static PROMTOOL: OnceLock<PathBuf> = OnceLock::new();
    PROMTOOL.get_or_init(|| tool("prometheus", "promtool"))
}

fn prometheus_binary() -> &'static Path {
    static PROMETHEUS: OnceLock<PathBuf> = OnceLock::new();
    PROMETHEUS.get_or_init(|| tool("prometheus", "prometheus"))
}

fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| tool("control-plane", "helm"))
}

/// stdout of a command that must succeed; panics with its output otherwise.
fn must(output: std::io::Result<Output>, what: &str) -> String {
    let output = output.unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn values_file(yaml: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temporary values file");
    file.write_all(yaml.as_bytes()).expect("write values file");
    file
}

// ------------------------------------------------------------------ the dashboard and rules

/// The dashboard JSON as the chart ships it.
fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// The rule file as the chart ships it, as JSON.
fn rules() -> Value {
    serde_saphyr::from_str(&read(RULES)).unwrap_or_else(|e| panic!("{RULES} is not YAML: {e}"))
}

/// One query of a dashboard panel.
#[derive(Debug, Clone)]
struct PanelQuery {
    panel: String,
    ref_id: String,
    expr: String,
}

/// Every panel of the dashboard that is not a row, in order.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"]
        .as_array()
        .expect("the dashboard has panels")
    {
        if panel["type"] == "row" {
            // A collapsed row carries its panels inside.
            out.extend(panel["panels"].as_array().into_iter().flatten());
        } else {
            out.push(panel);
        }
    }
    out
}

fn panel_queries(dashboard: &Value) -> Vec<PanelQuery> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| PanelQuery {
                    panel: title.clone(),
                    ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                    expr: t["expr"].as_str().unwrap_or_default().to_string(),
                })
        })
        .collect()
}

/// The dashboard's query variables: (name, `label_values(SELECTOR, LABEL)` split into its
/// selector and label).
fn label_value_variables(dashboard: &Value) -> Vec<(String, String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("the dashboard has variables")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let name = v["name"].as_str().unwrap_or_default().to_string();
            let query = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .unwrap_or_default();
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| {
                    panic!("variable {name}: only label_values(…) queries are checked, got {query}")
                });
            let (selector, label) = inner.rsplit_once(',').unwrap_or_else(|| {
                panic!("variable {name}: label_values needs a selector and a label: {query}")
            });
            (name, selector.trim().to_string(), label.trim().to_string())
        })
        .collect()
}

/// Every alerting rule: (alert name, expression).
fn alerts(rules: &Value) -> Vec<(String, String)> {
    rules["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules of a group"))
        .filter_map(|r| {
            Some((
                r["alert"].as_str()?.to_string(),
                r["expr"]
                    .as_str()
                    .expect("every rule has an expr")
                    .to_string(),
            ))
        })
        .collect()
}

/// `expr` with Grafana's variables replaced: `vars` (name → value, for `$name` and `${name}`).
/// Panics if a variable is left, so a new one must be given a value here.
fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut vars = vars.to_vec();
    // Longest first: `$__rate_interval` before a shorter name it starts with.
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = expr.to_string();
    for (name, value) in &vars {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    let leftover = out.char_indices().find(|(i, c)| {
        *c == '$'
            && out[i + 1..].starts_with(|n: char| n == '{' || n == '_' || n.is_ascii_alphabetic())
    });
    assert!(
        leftover.is_none(),
        "a Grafana variable without a test value in {expr:?} (after substitution: {out:?})"
    );
    out
}
