//! The Helm chart (`charts/teams-app-operator`): lint, render, schema, and the proof that its RBAC
//! is enough — the real operator binary runs with the chart's ServiceAccount token against the
//! test control plane (kube-apiserver v1.36 + etcd, see `support`) and a Graph simulator.
//!
//! helm comes from `scripts/control-plane bin-dir` (built with the control plane); kubectl is on
//! PATH. Nothing here skips: a missing tool or control plane fails the test with the reason.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use graph_sim::{Seed, SimOptions, SimServer};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::Deserialize as _;
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
controller: {{defaultInterval: 1h30m, minInterval: 2m, verifyInterval: 15s, concurrency: 8}}
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
    serde_yaml::Deserializer::from_str(manifest)
        .map(|doc| serde_yaml::Value::deserialize(doc).expect("helm renders valid YAML"))
        .filter(|doc| !doc.is_null())
        .map(|doc| serde_json::to_value(doc).expect("YAML converts to JSON"))
        .collect()
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

// ------------------------------------------------------------------------ offline checks

#[test]
fn chart_crds_are_the_generated_crds() {
    let listing = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(repo_path(dir))
            .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    let top = listing("crds");
    assert_eq!(
        listing(&format!("{CHART}/crds")),
        top,
        "{CHART}/crds must hold exactly the files of crds/"
    );
    for file in &top {
        let read = |p: String| std::fs::read(repo_path(&p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(
            read(format!("crds/{file}")) == read(format!("{CHART}/crds/{file}")),
            "{CHART}/crds/{file} differs from crds/{file}: cp crds/{file} {CHART}/crds/"
        );
    }
}

#[test]
fn helm_lint_strict_passes_for_every_configuration() {
    for (name, values) in configurations("team-a") {
        let (mut command, _file) = helm_command(&["lint", "--strict", CHART], &values);
        must(command.output(), &format!("helm lint --strict ({name})"));
    }
}

#[test]
fn defaults_render_a_hardened_cluster_wide_operator() {
    let objs = objects(&template("", "tao", "ops"));
    assert_eq!(
        kinds(&objs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into(),
        "defaults create no Secret, PodDisruptionBudget, NetworkPolicy, ServiceMonitor or Role"
    );

    let deployment = only(&objs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["strategy"]["type"], "Recreate",
        "without leader election two operators must never overlap"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "tao-teams-app-operator");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );

    let c = container(&objs);
    assert_eq!(
        c["image"], "ghcr.io/teamsapps/teams-app-operator:0.1.0",
        "tag = appVersion"
    );
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        c["ports"][0],
        json!({"name": "metrics", "containerPort": 8080, "protocol": "TCP"})
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/livez", "port": "metrics"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "metrics"})
    );

    let env = env(&objs);
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert_eq!(
            env[name]["valueFrom"]["fieldRef"]["fieldPath"], field,
            "{name} from the downward API"
        );
    }
    assert_eq!(env["METRICS_ADDR"]["value"], "0.0.0.0:8080");
    assert_eq!(env["LOG_FORMAT"]["value"], "json");
    for absent in [
        "WATCH_NAMESPACE",
        "LEADER_ELECTION",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_SECRET_FILE",
        "AZURE_CLIENT_CERTIFICATE_PATH",
    ] {
        assert!(!env.contains_key(absent), "{absent} is set by default");
    }

    let service = only(&objs, "Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");

    assert_eq!(
        only(&objs, "ServiceAccount")["automountServiceAccountToken"],
        true
    );
    assert_least_privilege(only(&objs, "ClusterRole"));
    let binding = only(&objs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], "tao-teams-app-operator");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "tao-teams-app-operator", "namespace": "ops"}])
    );
}

/// Exactly the rules the controller needs, nothing else (no Secrets, no core Events, no delete).
fn assert_least_privilege(role: &Value) {
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["teamsapps.dev"], "resources": ["teamsappinstallations"],
             "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["teamsapps.dev"], "resources": ["teamsappinstallations/status"],
             "verbs": ["patch"]},
            {"apiGroups": ["teamsapps.dev"], "resources": ["teamsappinstallations/finalizers"],
             "verbs": ["update"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ])
    );
}

#[test]
fn all_features_render_leader_election_pdb_monitoring_and_network_policy() {
    let objs = objects(&template(&configuration("all-features"), "tao", "ops"));
    let deployment = only(&objs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");

    let env = env(&objs);
    let value = |name: &str| env[name]["value"].as_str().map(str::to_owned);
    assert_eq!(
        value("LEADER_ELECTION").as_deref(),
        Some("true"),
        "on by itself with 2 replicas"
    );
    assert_eq!(
        value("LEASE_NAME").as_deref(),
        Some("teams-app-operator-leader")
    );
    assert_eq!(value("LEASE_NAMESPACE").as_deref(), Some("ops"));
    for (name, expected) in [
        ("DEFAULT_INTERVAL", "1h30m"),
        ("MIN_INTERVAL", "2m"),
        ("VERIFY_INTERVAL", "15s"),
        ("CONCURRENCY", "8"),
        ("LOG_FORMAT", "text"),
        ("RUST_LOG", "info,teams_app_operator=debug"),
        ("METRICS_ADDR", "0.0.0.0:9090"),
        ("GRAPH_CLOUD", "public"),
        ("GRAPH_URL", "https://graph.example.com"),
        ("AZURE_AUTHORITY_HOST", "https://login.example.com"),
        ("GRAPH_API_VERSION", "beta"),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("GRAPH_READ_RPS", "10"),
        ("GRAPH_WRITE_RPS", "2.5"),
        ("GRAPH_DELETE_RPS", "0"),
        ("GRAPH_TIMEOUT", "1500ms"),
        ("GRAPH_MAX_ATTEMPTS", "6"),
        ("EXTRA", "1"),
    ] {
        assert_eq!(value(name).as_deref(), Some(expected), "{name}");
    }
    // The chart-made client secret is a mounted file, never an environment variable.
    assert!(!env.contains_key("AZURE_CLIENT_SECRET"));
    let secret = only(&objs, "Secret");
    assert_eq!(secret["data"], json!({"client-secret": "czNjcmV0"}));
    assert_secret_file(
        &objs,
        "AZURE_CLIENT_SECRET_FILE",
        "tao-teams-app-operator-graph",
        "client-secret",
    );

    let c = container(&objs);
    assert_eq!(
        c["image"],
        "registry.example.com/teams-app-operator:0.1.0-rc.1"
    );
    assert_eq!(c["ports"][0]["containerPort"], 9090);
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["example.com/tier"], "operators");
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/team"],
        "platform"
    );
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["spec"]["tolerations"][0]["key"], "dedicated");
    assert!(pod["spec"]["affinity"]["podAntiAffinity"].is_object());
    assert!(pod["spec"]["topologySpreadConstraints"].is_array());
    assert_eq!(
        pod["spec"]["imagePullSecrets"],
        json!([{"name": "registry-credentials"}])
    );

    // Leases only with leader election, in the release namespace, on the one Lease.
    let roles = all(&objs, "Role");
    assert_eq!(roles.len(), 1, "only the leader-election Role");
    let lease_role = roles[0];
    assert_eq!(lease_role["metadata"]["namespace"], "ops");
    for rule in lease_role["rules"].as_array().expect("rules") {
        assert_eq!(rule["apiGroups"], json!(["coordination.k8s.io"]));
        assert_eq!(rule["resources"], json!(["leases"]));
    }
    let verbs: BTreeSet<&str> = lease_role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .flat_map(|r| {
            r["verbs"]
                .as_array()
                .expect("verbs")
                .iter()
                .filter_map(Value::as_str)
        })
        .collect();
    assert_eq!(verbs, ["create", "get", "patch", "update"].into());
    assert_eq!(
        only(&objs, "RoleBinding")["roleRef"]["name"],
        lease_role["metadata"]["name"]
    );
    assert_least_privilege(only(&objs, "ClusterRole"));

    let pdb = only(&objs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);

    let monitor = only(&objs, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}])
    );
    let service = only(&objs, "Service");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
    assert_eq!(service["spec"]["ports"][0]["port"], 8443);
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"]
    );

    let policy = &only(&objs, "NetworkPolicy")["spec"];
    assert_eq!(policy["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(policy["ingress"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        policy["ingress"][0]["ports"],
        json!([{"port": "metrics", "protocol": "TCP"}])
    );
    assert!(policy["ingress"][0]["from"][0]["namespaceSelector"].is_object());
    let egress = policy["egress"].as_array().expect("egress rules");
    let ports: Vec<Value> = egress.iter().map(|r| r["ports"].clone()).collect();
    assert_eq!(
        ports,
        vec![
            json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]),
            json!([{"port": 6443, "protocol": "TCP"}]),
            json!([{"port": 443, "protocol": "TCP"}]),
            json!([{"port": 8080, "protocol": "TCP"}]),
        ],
        "DNS, the API server, HTTPS for Graph, then the extra rule"
    );
    assert_eq!(
        egress[1]["to"],
        json!([{"ipBlock": {"cidr": "10.0.0.1/32"}}])
    );
}

/// `env_name` points at a file in a read-only mount of `secret`'s `key` (and only that key).
fn assert_secret_file(objs: &[Value], env_name: &str, secret: &str, key: &str) {
    let path = env_value(objs, env_name).unwrap_or_else(|| panic!("{env_name} is not set"));
    let pod = &only(objs, "Deployment")["spec"]["template"]["spec"];
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["secret"]["secretName"] == secret)
        .unwrap_or_else(|| panic!("no volume of Secret {secret}"));
    assert_eq!(
        volume["secret"]["items"],
        json!([{"key": key, "path": key}])
    );
    assert_eq!(
        volume["secret"]["defaultMode"], 0o440,
        "readable by the pod's group only"
    );
    let mount = container(objs)["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the Secret volume is mounted");
    assert_eq!(mount["readOnly"], true);
    let dir = mount["mountPath"].as_str().expect("mountPath");
    assert_eq!(
        path,
        format!("{dir}/{key}"),
        "{env_name} points into the mount"
    );
}

#[test]
fn credentials_come_from_files_env_or_workload_identity() {
    // A chart-made certificate: a PEM file.
    let objs = objects(&template(&configuration("certificate"), "tao", "ops"));
    let secret = only(&objs, "Secret");
    assert!(secret["data"]["client.pem"].is_string());
    assert!(secret["data"].get("client-secret").is_none());
    assert_secret_file(
        &objs,
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "tao-teams-app-operator-graph",
        "client.pem",
    );
    assert!(!env(&objs).contains_key("AZURE_CLIENT_SECRET_FILE"));

    // An existing Secret, as an environment variable on request; the chart makes none.
    let objs = objects(&template(
        &configuration("existing-secret-as-env"),
        "tao",
        "ops",
    ));
    assert!(
        all(&objs, "Secret").is_empty(),
        "existingSecret: no chart-made Secret"
    );
    assert_eq!(
        env(&objs)["AZURE_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"],
        json!({"name": "graph-credentials", "key": "secret"})
    );
    assert!(!env(&objs).contains_key("AZURE_CLIENT_SECRET_FILE"));
    assert_eq!(
        env_value(&objs, "LEADER_ELECTION").as_deref(),
        Some("true"),
        "leaderElection.enabled with one replica"
    );
    assert!(
        all(&objs, "PodDisruptionBudget").is_empty(),
        "no PDB for one replica"
    );

    // The same existing Secret as a file (the default).
    let values = format!(
        "graph: {{tenantId: {TENANT}, clientId: {CLIENT_ID}, existingSecret: graph-credentials}}"
    );
    let objs = objects(&template(&values, "tao", "ops"));
    assert_secret_file(
        &objs,
        "AZURE_CLIENT_SECRET_FILE",
        "graph-credentials",
        "client-secret",
    );

    // Workload identity: no Secret at all; the webhook's annotation and label.
    let objs = objects(&template(&configuration("workload-identity"), "tao", "ops"));
    assert!(all(&objs, "Secret").is_empty());
    let annotations = &only(&objs, "ServiceAccount")["metadata"]["annotations"];
    assert_eq!(annotations["azure.workload.identity/client-id"], CLIENT_ID);
    assert_eq!(annotations["azure.workload.identity/tenant-id"], TENANT);
    let pod = &only(&objs, "Deployment")["spec"]["template"];
    assert_eq!(
        pod["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    let env = env(&objs);
    for absent in [
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_SECRET_FILE",
        "AZURE_CLIENT_CERTIFICATE_PATH",
    ] {
        assert!(!env.contains_key(absent), "{absent} with workload identity");
    }
    assert!(
        pod["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .all(|v| v.get("secret").is_none()),
        "no Secret volume with workload identity"
    );
}

#[test]
fn role_only_mode_renders_nothing_cluster_scoped() {
    let objs = objects(&template(&configuration("role-only"), "tao", "ops"));
    let kinds = kinds(&objs);
    assert!(
        !kinds.contains("ClusterRole") && !kinds.contains("ClusterRoleBinding"),
        "Role-only mode renders {kinds:?}"
    );
    let role = only(&objs, "Role");
    assert_eq!(role["metadata"]["namespace"], "team-a");
    assert_least_privilege(role);
    let binding = only(&objs, "RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], "team-a");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tao-teams-app-operator"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "tao-teams-app-operator", "namespace": "ops"}])
    );
    assert_eq!(
        env_value(&objs, "WATCH_NAMESPACE").as_deref(),
        Some("team-a")
    );
}

#[test]
fn leader_election_and_its_lease_rbac_only_with_more_than_one_replica() {
    let objs = objects(&template("replicaCount: 1", "tao", "ops"));
    assert!(env_value(&objs, "LEADER_ELECTION").is_none());
    assert!(all(&objs, "Role").is_empty() && all(&objs, "RoleBinding").is_empty());
    assert!(all(&objs, "PodDisruptionBudget").is_empty());

    let objs = objects(&template("replicaCount: 2", "tao", "ops"));
    assert_eq!(env_value(&objs, "LEADER_ELECTION").as_deref(), Some("true"));
    assert_eq!(
        env_value(&objs, "LEASE_NAME").as_deref(),
        Some("tao-teams-app-operator")
    );
    assert_eq!(
        only(&objs, "Role")["rules"][0]["apiGroups"],
        json!(["coordination.k8s.io"])
    );
    assert_eq!(
        only(&objs, "PodDisruptionBudget")["spec"]["minAvailable"],
        1
    );
}

#[test]
fn wrong_values_are_rejected_with_a_reason() {
    let cases = [
        // The schema: types, enums, minimums, unknown keys at every level.
        ("replicaCount: \"two\"", "/replicaCount"),
        ("replicaCount: 0", "/replicaCount"),
        ("logFormat: xml", "/logFormat"),
        ("replicas: 2", "'replicas' not allowed"),
        ("graph: {cloud: mars}", "/graph/cloud"),
        ("graph: {clientSecrett: x}", "'clientSecrett' not allowed"),
        ("controller: {concurrency: 0}", "/controller/concurrency"),
        (
            "controller: {defaultInterval: 1.5h}",
            "/controller/defaultInterval",
        ),
        ("graph: {timeout: soon}", "/graph/timeout"),
        (
            "graph: {rateLimits: {readPerSecond: -1}}",
            "/graph/rateLimits/readPerSecond",
        ),
        ("metrics: {port: 70000}", "/metrics/port"),
        ("image: {pullPolicy: Sometimes}", "/image/pullPolicy"),
        ("watchNamespace: Team_A", "/watchNamespace"),
        (
            "networkPolicy: {enabled: yes please}",
            "/networkPolicy/enabled",
        ),
        // Cross-field checks in the templates.
        (
            "graph: {credential: workloadIdentity, clientId: a, clientSecret: x}",
            "graph.credential is workloadIdentity",
        ),
        (
            "graph: {credential: workloadIdentity}",
            "set graph.clientId",
        ),
        ("graph: {clientSecret: x, existingSecret: mine}", "not both"),
        (
            "graph: {clientCertificate: \"-----BEGIN X\"}",
            "graph.credential=certificate",
        ),
        (
            "graph: {credential: certificate, clientSecret: x}",
            "graph.clientCertificate",
        ),
        (
            "metrics: {service: {enabled: false}, serviceMonitor: {enabled: true}}",
            "needs metrics.service.enabled",
        ),
    ];
    for (values, reason) in cases {
        match try_template(values, "tao", "ops") {
            Ok(_) => panic!("values were accepted: {values}"),
            Err(stderr) => assert!(
                stderr.contains(reason),
                "values {values} were rejected, but not for {reason:?}:\n{stderr}"
            ),
        }
    }
}

/// Every environment variable of `teams-app-operator run --help` is set by the chart in some
/// configuration, so every flag is reachable from values. A flag added to the binary fails this
/// test until the chart exposes it.
#[test]
fn every_operator_flag_is_reachable_from_values() {
    let help = must(
        Command::new(env!("CARGO_BIN_EXE_teams-app-operator"))
            .args(["run", "--help"])
            .env_clear()
            .output(),
        "teams-app-operator run --help",
    );
    let flags: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(str::to_owned)
        .collect();
    assert!(
        flags.contains("WATCH_NAMESPACE") && flags.contains("AZURE_TENANT_ID"),
        "{help}"
    );

    let mut set_by_chart = BTreeSet::new();
    for (_, values) in configurations("team-a") {
        set_by_chart.extend(env(&objects(&template(&values, "tao", "ops"))).into_keys());
    }
    // Injected by the Azure workload identity webhook, not by the chart.
    set_by_chart.insert("AZURE_FEDERATED_TOKEN_FILE".to_owned());
    let missing: Vec<&String> = flags.difference(&set_by_chart).collect();
    assert!(
        missing.is_empty(),
        "the chart cannot set {missing:?}: add them to values.yaml"
    );
}

// ---------------------------------------------------------------------- control plane checks

fn kubectl() -> Command {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    // A discovery cache of this control plane's own: it knows about CRDs added during the run.
    let cache = CACHE.get_or_init(|| support::control_plane_dir().join("kubectl-cache"));
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(support::kubeconfig_path())
        .arg("--cache-dir")
        .arg(cache)
        .stdin(Stdio::null());
    command
}

/// A ServiceMonitor CRD as the Prometheus Operator defines it, reduced to the fields the chart
/// uses (the test API server has no Prometheus Operator).
const SERVICE_MONITOR_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [selector, endpoints]
              x-kubernetes-preserve-unknown-fields: true
              properties:
                selector:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                namespaceSelector:
                  type: object
                  properties:
                    any: {type: boolean}
                    matchNames: {type: array, items: {type: string}}
                endpoints:
                  type: array
                  items:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
                    properties:
                      port: {type: string}
                      path: {type: string}
                      interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      scrapeTimeout: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
"#;

#[tokio::test]
async fn every_rendered_object_is_accepted_by_the_api_server() {
    let client = support::client().await;
    let release_ns = support::fresh_namespace(&client, "chart-dry-run").await;
    let watch_ns = support::fresh_namespace(&client, "chart-dry-run-watch").await;
    must(
        run_with_stdin(kubectl().args(["apply", "-f", "-"]), SERVICE_MONITOR_CRD),
        "installing the ServiceMonitor CRD stub",
    );
    must(
        kubectl()
            .args(["wait", "--for=condition=Established", "--timeout=60s"])
            .arg("crd/servicemonitors.monitoring.coreos.com")
            .output(),
        "waiting for the ServiceMonitor CRD",
    );

    // The pods must pass the "restricted" Pod Security Standard: the API server warns about any
    // Deployment whose pod template would violate it.
    for ns in [&release_ns, &watch_ns] {
        must(
            kubectl()
                .args([
                    "label",
                    "namespace",
                    ns,
                    "pod-security.kubernetes.io/warn=restricted",
                ])
                .output(),
            "labelling the namespace for Pod Security warnings",
        );
    }

    for (name, values) in configurations(&watch_ns) {
        let (mut command, _file) = helm_command(
            &[
                "template",
                "tao-dry",
                CHART,
                "--namespace",
                &release_ns,
                "--include-crds",
            ],
            &values,
        );
        let manifest = must(command.output(), &format!("helm template ({name})"));
        let expected = objects(&manifest).len();
        // Every namespaced object names its namespace, so no --namespace here: kubectl would
        // refuse the Role-only objects that live in the watched namespace.
        let output = run_with_stdin(
            kubectl().args(["apply", "--dry-run=server", "-o", "name", "-f", "-"]),
            &manifest,
        );
        let warnings = output
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        let applied = must(output, &format!("kubectl apply --dry-run=server ({name})"));
        assert_eq!(
            applied.lines().count(),
            expected,
            "({name}) not every rendered object was applied:\n{applied}"
        );
        assert!(
            !warnings.contains("PodSecurity"),
            "({name}) the pod would violate the restricted Pod Security Standard:\n{warnings}"
        );
    }
}

/// Installs the chart with `values` as release `release` into `namespace` (no hooks, no wait:
/// no Pod ever runs on the test control plane).
fn helm_install(release: &str, namespace: &str, values: &str) {
    let (mut command, _file) = helm_command(
        &[
            "install",
            release,
            CHART,
            "--namespace",
            namespace,
            "--no-hooks",
        ],
        values,
    );
    command.env("KUBECONFIG", support::kubeconfig_path());
    must(command.output(), &format!("helm install {release}"));
}

/// `kubectl auth can-i` as the chart's ServiceAccount: `args` are the verb, the resource and
/// `-n`/`-A`.
fn can_i(service_account: &str, args: &[&str]) -> bool {
    let output = kubectl()
        .args(["auth", "can-i"])
        .args(args)
        .arg(format!("--as=system:serviceaccount:{service_account}"))
        .output()
        .expect("running kubectl auth can-i");
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match answer.as_str() {
        "yes" => true,
        "no" => false,
        _ => panic!(
            "kubectl auth can-i {args:?} answered {answer:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn assert_can(service_account: &str, allowed: &[&[&str]], denied: &[&[&str]]) {
    for args in allowed {
        assert!(
            can_i(service_account, args),
            "{service_account} should be allowed to {args:?}"
        );
    }
    for args in denied {
        assert!(
            !can_i(service_account, args),
            "{service_account} must not be allowed to {args:?}"
        );
    }
}

const TAI: &str = "teamsappinstallations.teamsapps.dev";
const EVENTS: &str = "events.events.k8s.io";

#[tokio::test]
async fn the_installed_chart_lets_the_operator_do_its_job_and_nothing_more() {
    let client = support::client().await;
    let release_ns = support::fresh_namespace(&client, "chart-install").await;
    let work_ns = support::fresh_namespace(&client, "chart-install-work").await;
    helm_install("tao-cluster", &release_ns, "");
    let sa = format!("{release_ns}:tao-cluster-teams-app-operator");

    assert_can(
        &sa,
        &[
            &["list", TAI, "-A"],
            &["watch", TAI, "-A"],
            &["get", TAI, "-n", &work_ns],
            &["patch", TAI, "-n", &work_ns],
            &["patch", TAI, "--subresource=status", "-n", &work_ns],
            &["update", TAI, "--subresource=finalizers", "-n", &work_ns],
            &["create", EVENTS, "-n", &work_ns],
            &["patch", EVENTS, "-n", &work_ns],
        ],
        &[
            &["list", "secrets", "-A"],
            &["get", "secrets", "-n", &release_ns],
            &["delete", "customresourcedefinitions.apiextensions.k8s.io"],
            &["delete", TAI, "-n", &work_ns],
            &["create", TAI, "-n", &work_ns],
            &["update", TAI, "-n", &work_ns],
            &["update", TAI, "--subresource=status", "-n", &work_ns],
            &["create", "pods", "-n", &release_ns],
            &["create", "events", "-n", &work_ns],
            &["create", "leases.coordination.k8s.io", "-n", &release_ns],
            &["list", "namespaces"],
        ],
    );

    let _one_operator = OPERATOR_RUNS.lock().await;
    let mut world = World::start(&release_ns, "tao-cluster-teams-app-operator", None, &[]).await;
    world.install_and_uninstall(&client, &work_ns).await;
}

#[tokio::test]
async fn role_only_mode_confines_the_operator_to_its_namespace() {
    let client = support::client().await;
    let release_ns = support::fresh_namespace(&client, "chart-roles").await;
    let watch_ns = support::fresh_namespace(&client, "chart-roles-watch").await;
    let other_ns = support::fresh_namespace(&client, "chart-roles-other").await;
    helm_install(
        "tao-roles",
        &release_ns,
        &format!("watchNamespace: {watch_ns}"),
    );
    let sa = format!("{release_ns}:tao-roles-teams-app-operator");

    let manifest = must(
        Command::new(helm())
            .args(["get", "manifest", "tao-roles", "--namespace", &release_ns])
            .env("KUBECONFIG", support::kubeconfig_path())
            .output(),
        "helm get manifest",
    );
    let kinds = kinds(&objects(&manifest));
    assert!(
        kinds.contains("Role") && kinds.contains("RoleBinding"),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains("ClusterRole") && !kinds.contains("ClusterRoleBinding"),
        "{kinds:?}"
    );

    assert_can(
        &sa,
        &[
            &["list", TAI, "-n", &watch_ns],
            &["watch", TAI, "-n", &watch_ns],
            &["patch", TAI, "--subresource=status", "-n", &watch_ns],
            &["create", EVENTS, "-n", &watch_ns],
        ],
        &[
            &["list", TAI, "-A"],
            &["list", TAI, "-n", &other_ns],
            &["list", TAI, "-n", &release_ns],
            &["create", EVENTS, "-n", &other_ns],
            &["list", "secrets", "-n", &watch_ns],
        ],
    );

    let _one_operator = OPERATOR_RUNS.lock().await;
    let mut world = World::start(
        &release_ns,
        "tao-roles-teams-app-operator",
        Some(&watch_ns),
        &[],
    )
    .await;
    world.install_and_uninstall(&client, &watch_ns).await;
}

#[tokio::test]
async fn leader_election_adds_lease_rbac_in_the_release_namespace_only() {
    let client = support::client().await;
    let release_ns = support::fresh_namespace(&client, "chart-leader").await;
    let other_ns = support::fresh_namespace(&client, "chart-leader-other").await;
    helm_install("tao-leader", &release_ns, "replicaCount: 2");
    let sa = format!("{release_ns}:tao-leader-teams-app-operator");
    let lease = "leases.coordination.k8s.io/tao-leader-teams-app-operator";
    assert_can(
        &sa,
        &[
            &["create", "leases.coordination.k8s.io", "-n", &release_ns],
            &["get", lease, "-n", &release_ns],
            &["update", lease, "-n", &release_ns],
            &["patch", lease, "-n", &release_ns],
        ],
        &[
            &[
                "get",
                "leases.coordination.k8s.io/someone-elses",
                "-n",
                &release_ns,
            ],
            &["delete", lease, "-n", &release_ns],
            &["create", "leases.coordination.k8s.io", "-n", &other_ns],
            &["list", "leases.coordination.k8s.io", "-A"],
        ],
    );

    // With that RBAC the operator wins the election (creating the Lease) and reconciles.
    let work_ns = support::fresh_namespace(&client, "chart-leader-work").await;
    let _one_operator = OPERATOR_RUNS.lock().await;
    let mut world = World::start(
        &release_ns,
        "tao-leader-teams-app-operator",
        None,
        &[
            ("LEADER_ELECTION", "true"),
            ("LEASE_NAME", "tao-leader-teams-app-operator"),
            ("LEASE_NAMESPACE", &release_ns),
        ],
    )
    .await;
    world.install_and_uninstall(&client, &work_ns).await;
    let lease: Lease = Api::namespaced(client.clone(), &release_ns)
        .get("tao-leader-teams-app-operator")
        .await
        .expect("the operator created its Lease");
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(
        holder.as_deref(),
        Some("chart-test"),
        "held by the operator's POD_NAME"
    );
}

/// The shell block after `<!-- install` in the README, exactly as a user would paste it.
fn readme_install_block() -> String {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("read README.md");
    let after = readme
        .split_once("<!-- install")
        .map(|(_, rest)| rest)
        .expect("README.md has an <!-- install --> block");
    after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block.to_string())
        .expect("a ```sh block follows the install marker")
}

#[tokio::test]
async fn the_readme_install_section_works_as_written() {
    let client = support::client().await;
    let block = readme_install_block();
    let helm_dir = helm().parent().expect("helm's folder").to_path_buf();
    let path = format!(
        "{}:{}",
        helm_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block])
        .current_dir(support::repo_root())
        .env("PATH", path)
        .env("KUBECONFIG", support::kubeconfig_path())
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .stdin(Stdio::null())
        .output();
    must(output, &format!("the README's install block:\n{block}"));

    let deployment: Value = serde_json::from_str(&must(
        kubectl()
            .args([
                "get",
                "deployment",
                "teams-app-operator",
                "-n",
                "teams-app-operator",
            ])
            .args(["-o", "json"])
            .output(),
        "kubectl get deployment",
    ))
    .expect("deployment JSON");
    let objs = std::slice::from_ref(&deployment);
    assert_eq!(env_value(objs, "AZURE_TENANT_ID").as_deref(), Some(TENANT));
    assert_eq!(
        env_value(objs, "AZURE_CLIENT_ID").as_deref(),
        Some(CLIENT_ID)
    );
    let secret: k8s_openapi::api::core::v1::Secret =
        Api::namespaced(client.clone(), "teams-app-operator")
            .get("teams-app-operator-graph")
            .await
            .expect("the README's Secret exists");
    let stored = secret
        .data
        .and_then(|d| d.get("client-secret").cloned())
        .expect("key client-secret");
    assert_eq!(stored.0, SECRET.as_bytes());
}

// ------------------------------------------------------------ the operator as the chart's SA

/// A graph-sim and the operator binary running with the chart ServiceAccount's token.
struct World {
    sim: SimServer,
    operator: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    /// `env`: more settings, as the chart's Deployment would set them.
    async fn start(
        release_ns: &str,
        service_account: &str,
        watch_namespace: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let seed = format!(
            r#"
tenants:
  - id: {TENANT}
    clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]
    users: [{{id: 22222222-2222-2222-2222-222222222222, userPrincipalName: alice@contoso.com}}]
    apps:
      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
    installations: []
"#
        );
        let seed = Seed::from_yaml_str(&seed).expect("test seed parses");
        let sim = SimServer::start(
            "127.0.0.1:0".parse().expect("address"),
            seed,
            SimOptions::default(),
        )
        .await
        .expect("graph-sim starts");

        let dir = tempfile::tempdir().expect("temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            service_account_kubeconfig(release_ns, service_account),
        )
        .expect("write the ServiceAccount kubeconfig");
        let log = dir.path().join("operator.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_teams-app-operator"));
        command
            .arg("run")
            // Nothing of the test's environment (an admin KUBECONFIG, AZURE_*) leaks in.
            .env_clear()
            .env("KUBECONFIG", &kubeconfig)
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", SECRET)
            .env("GRAPH_URL", sim.base_url())
            .env("AZURE_AUTHORITY_HOST", sim.base_url())
            .env("VERIFY_INTERVAL", "1s")
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("POD_NAME", "chart-test")
            .env("POD_NAMESPACE", release_ns)
            .env("RUST_LOG", "info,teams_app_operator=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("operator log file"));
        if let Some(ns) = watch_namespace {
            command.env("WATCH_NAMESPACE", ns);
        }
        command.envs(env.iter().copied());
        let operator = command.spawn().expect("the operator binary starts");
        Self {
            sim,
            operator,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- operator log (as the chart's ServiceAccount) ---\n{}",
            tail(&self.log(), 80)
        )
    }

    /// Creates a TeamsAppInstallation (as admin, like a user would), waits until the operator
    /// installed the app and reports Ready for the current generation with an Event, then deletes
    /// it and waits until the operator uninstalled the app and released its finalizer.
    async fn install_and_uninstall(&mut self, client: &kube::Client, namespace: &str) {
        let api: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), namespace);
        let obj: TeamsAppInstallation = serde_json::from_value(json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppInstallation",
            "metadata": {"name": "contoso-bot-alice"},
            "spec": {"user": "alice@contoso.com", "app": {"id": BOT}, "deletionPolicy": "Uninstall"},
        }))
        .expect("a valid TeamsAppInstallation");
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating the TeamsAppInstallation: {e}"));

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let current = api.get_opt("contoso-bot-alice").await.ok().flatten();
            if current.as_ref().is_some_and(is_ready) {
                break;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "contoso-bot-alice did not become Ready; last seen:\n{}",
                    serde_json::to_string_pretty(&current).unwrap_or_default()
                ));
            }
            if let Ok(Some(status)) = self.operator.try_wait() {
                self.fail(&format!("the operator exited ({status})"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.wait_for_event(client, namespace, "contoso-bot-alice", "Installed")
            .await;
        assert_eq!(
            self.graph_requests("POST", "/installedApps").await,
            1,
            "one install in Graph"
        );

        api.delete("contoso-bot-alice", &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting the TeamsAppInstallation: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while api
            .get_opt("contoso-bot-alice")
            .await
            .ok()
            .flatten()
            .is_some()
        {
            if Instant::now() > deadline {
                self.fail("contoso-bot-alice was not released after deletion (finalizer kept)");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            self.graph_requests("DELETE", "/installedApps/").await,
            1,
            "one uninstall in Graph"
        );

        let log = self.log();
        if log.to_ascii_lowercase().contains("forbidden") {
            self.fail("the API server refused the operator something (\"forbidden\" in its log)");
        }
    }

    async fn wait_for_event(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
        reason: &str,
    ) {
        let events: Api<Event> = Api::namespaced(client.clone(), namespace);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen: Vec<String> = events
                .list(&ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("listing Events: {e}"))
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter_map(|e| e.reason)
                .collect();
            if seen.iter().any(|r| r == reason) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("no {reason} Event for {name}; saw {seen:?}"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// How many Graph requests with `method` had a path containing `fragment`.
    async fn graph_requests(&self, method: &str, fragment: &str) -> usize {
        let requests: Vec<Value> = reqwest::get(format!("{}/_sim/requests", self.sim.base_url()))
            .await
            .expect("the simulator answers")
            .json()
            .await
            .expect("the request log is JSON");
        requests
            .iter()
            .filter(|r| {
                r["method"] == method && r["path"].as_str().is_some_and(|p| p.contains(fragment))
            })
            .count()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
    }
}

fn is_ready(obj: &TeamsAppInstallation) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.observed_generation == obj.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// A kubeconfig for the test cluster that authenticates with a fresh token of `service_account`
/// (TokenRequest through `kubectl create token`), instead of the admin's client certificate.
fn service_account_kubeconfig(namespace: &str, service_account: &str) -> String {
    let token = must(
        kubectl()
            .args([
                "create",
                "token",
                service_account,
                "--namespace",
                namespace,
                "--duration=1h",
            ])
            .output(),
        "kubectl create token",
    );
    let admin: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(support::kubeconfig_path()).expect("read the admin kubeconfig"),
    )
    .expect("the admin kubeconfig is YAML");
    let cluster = &admin["clusters"][0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .expect("the admin kubeconfig has a server");
    let ca = cluster["certificate-authority-data"]
        .as_str()
        .expect("the admin kubeconfig has certificate-authority-data");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": service_account, "user": {"token": token.trim()}}],
        "contexts": [{"name": "operator", "context": {"cluster": "test", "user": service_account, "namespace": namespace}}],
        "current-context": "operator",
    });
    serde_yaml::to_string(&config).expect("kubeconfig serializes")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
