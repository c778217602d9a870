//! The Helm chart (`charts/teams-app-operator`): lint, render, schema, and the proof that its RBAC
//! is enough — the real operator binary runs with the chart's ServiceAccount token against the
//! test control plane (kube-apiserver v1.36 + etcd, see `support`) and a Graph simulator.
//!
//! helm comes from `scripts/control-plane bin-dir` (built with the control plane); kubectl is on
//! PATH. Nothing here skips: a missing tool or control plane fails the test with the reason.

#[path = "../support/mod.rs"]
mod support;

mod as_service_account;
mod offline;
mod on_cluster;

use support::operator::{Operator, OperatorCommand, tail};

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use graph_sim::{Seed, SimOptions, SimServer};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use teams_app_operator::api::TeamsAppInstallation;

const CHART: &str = "charts/teams-app-operator";
const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "s3cret";
const BOT: &str = "33333333-3333-3333-3333-333333333333";

/// The operator runs below watch TeamsAppInstallations cluster-wide or in one namespace; two at
/// once on the shared control plane would reconcile each other's objects. One at a time.
static OPERATOR_RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ------------------------------------------------------------------------------------ values

/// The values files the chart is checked with: defaults, every optional feature on (twice: the
/// chart-made client secret and workload identity exclude each other), the other credential
/// modes, and Role-only mode watching `watch_namespace`.
fn configurations(watch_namespace: &str) -> Vec<(&'static str, String)> {
    vec![
        ("defaults", String::new()),
        (
            "all-features",
            format!(
                r#"
replicaCount: 2
image: {{repository: registry.example.com/teams-app-operator, tag: "0.1.0-rc.1", pullPolicy: Always}}
imagePullSecrets: [{{name: registry-credentials}}]
controller: {{defaultInterval: 1h30m, minInterval: 2m, verifyInterval: 15s, concurrency: 8,
             writeVerifyWindow: 5m, teamsProvisioningTimeout: 12h}}
connections: {{defaultNamespaces: [platform, {watch_namespace}], secretNamespaces: [{watch_namespace}],
              workloadIdentity: true}}
logFormat: text
logLevel: info,teams_app_operator=debug
graph:
  cloud: public
  url: https://graph.example.com
  authorityHost: https://login.example.com
  apiVersion: beta
  tenantId: {TENANT}
  clientId: {CLIENT_ID}
  clientSecret: {SECRET}
  rateLimits: {{readPerSecond: 10, writePerSecond: 2.5, deletePerSecond: 0}}
  timeout: 1500ms
  maxAttempts: 6
leaderElection: {{leaseName: teams-app-operator-leader}}
metrics:
  port: 9090
  service: {{port: 8443, annotations: {{prometheus.io/scrape: "true"}}}}
  serviceMonitor: {{enabled: true, interval: 15s, scrapeTimeout: 10s, labels: {{release: prometheus}}}}
dashboard: {{enabled: true, labels: {{team: platform}}, annotations: {{grafana_folder: Operators}}}}
prometheusRule:
  enabled: true
  labels: {{release: prometheus}}
  additionalRuleLabels: {{team: platform}}
  runbookBaseUrl: https://git.example.com/teams-app-operator/charts/teams-app-operator/README.md
networkPolicy:
  enabled: true
  metricsFrom: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: monitoring}}}}}}]
  apiServer: {{ports: [6443], cidrs: [10.0.0.1/32]}}
  extraEgress: [{{ports: [{{port: 8080, protocol: TCP}}]}}]
podDisruptionBudget: {{minAvailable: 1}}
serviceAccount: {{annotations: {{example.com/owner: platform}}}}
podAnnotations: {{example.com/team: platform}}
podLabels: {{example.com/tier: operators}}
resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{memory: 512Mi}}}}
extraEnv: [{{name: EXTRA, value: "1"}}]
nodeSelector: {{kubernetes.io/os: linux}}
tolerations: [{{key: dedicated, operator: Equal, value: operators, effect: NoSchedule}}]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector: {{matchLabels: {{app.kubernetes.io/name: teams-app-operator}}}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector: {{matchLabels: {{app.kubernetes.io/name: teams-app-operator}}}}
"#
            ),
        ),
        (
            "workload-identity",
            format!(
                r#"
replicaCount: 3
graph: {{credential: workloadIdentity, tenantId: {TENANT}, clientId: {CLIENT_ID}}}
metrics: {{serviceMonitor: {{enabled: true}}}}
networkPolicy: {{enabled: true}}
"#
            ),
        ),
        (
            "certificate",
            format!(
                r#"
notifications:
  enabled: true
  url: https://teams-operator.example.com
  ingress: {{enabled: true, className: nginx, tlsSecretName: teams-operator-tls}}
  encryptionCertificate: {{secretName: notification-certificate}}
networkPolicy: {{enabled: true}}
graph:
  credential: certificate
  tenantId: {TENANT}
  clientId: {CLIENT_ID}
  clientCertificate: |
    -----BEGIN CERTIFICATE-----
    MIIBfake
    -----END CERTIFICATE-----
    -----BEGIN PRIVATE KEY-----
    MIIEfake
    -----END PRIVATE KEY-----
"#
            ),
        ),
        (
            "existing-secret-as-env",
            format!(
                r#"
leaderElection: {{enabled: true}}
graph: {{tenantId: {TENANT}, clientId: {CLIENT_ID}, existingSecret: graph-credentials, existingSecretKey: secret, clientSecretAsEnv: true}}
"#
            ),
        ),
        ("role-only", format!("watchNamespace: {watch_namespace}\n")),
    ]
}

fn configuration(name: &str) -> String {
    configurations("team-a")
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no configuration {name}"))
}

// ------------------------------------------------------------------------------------- tools

fn repo_path(relative: &str) -> PathBuf {
    support::repo_root().join(relative)
}

/// The helm binary, built with the control plane when it is not there yet.
fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let script = repo_path("scripts/control-plane");
        let bin_dir = must(
            Command::new(&script)
                .arg("bin-dir")
                .stdin(Stdio::null())
                .output(),
            "scripts/control-plane bin-dir",
        );
        let helm = PathBuf::from(bin_dir.trim()).join("helm");
        if !helm.is_file() {
            let status = Command::new(&script)
                .arg("build")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .unwrap_or_else(|e| panic!("running {} build: {e}", script.display()));
            assert!(
                status.success(),
                "`scripts/control-plane build` failed ({status})"
            );
        }
        assert!(
            helm.is_file(),
            "helm is not at {} after the build",
            helm.display()
        );
        helm
    })
}

/// stdout of a command that must succeed; panics with its stderr otherwise.
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

/// Runs `command`, feeding `stdin`.
fn run_with_stdin(command: &mut Command, stdin: &str) -> std::io::Result<Output> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())?;
    child.wait_with_output()
}

fn values_file(yaml: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temporary values file");
    file.write_all(yaml.as_bytes()).expect("write values file");
    file
}

fn helm_command(args: &[&str], values: &str) -> (Command, tempfile::NamedTempFile) {
    let file = values_file(values);
    let mut command = Command::new(helm());
    command
        .args(args)
        .arg("--values")
        .arg(file.path())
        .current_dir(support::repo_root())
        .stdin(Stdio::null());
    (command, file)
}

/// `helm template` of the chart; Err carries helm's stderr.
fn try_template(values: &str, release: &str, namespace: &str) -> Result<String, String> {
    let (mut command, _file) = helm_command(
        &["template", release, CHART, "--namespace", namespace],
        values,
    );
    let output = command.output().expect("running helm template");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn template(values: &str, release: &str, namespace: &str) -> String {
    try_template(values, release, namespace)
        .unwrap_or_else(|e| panic!("helm template failed with values\n{values}\n{e}"))
}

/// The rendered objects, as JSON.
fn objects(manifest: &str) -> Vec<Value> {
    let documents: Vec<Value> =
        serde_saphyr::from_str_multiple(manifest).expect("helm renders valid YAML");
    documents.into_iter().filter(|doc| !doc.is_null()).collect()
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| o["kind"].as_str().map(str::to_owned))
        .collect()
}

fn only<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, got {}",
        found.len()
    );
    found[0]
}

fn all<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn container(objects: &[Value]) -> &Value {
    &only(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

/// The operator container's environment: name → the EnvVar object.
fn env(objects: &[Value]) -> BTreeMap<String, Value> {
    container(objects)["env"]
        .as_array()
        .expect("the container has env")
        .iter()
        .map(|e| (e["name"].as_str().expect("env name").to_owned(), e.clone()))
        .collect()
}

fn env_value(objects: &[Value], name: &str) -> Option<String> {
    env(objects)
        .get(name)
        .and_then(|e| e["value"].as_str().map(str::to_owned))
}
