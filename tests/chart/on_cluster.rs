//! The chart installed on the test control plane: RBAC, CRDs, the README's install block.

use super::*;
use crate::as_service_account::World;

pub(crate) fn kubectl() -> Command {
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

/// A PrometheusRule CRD as the Prometheus Operator defines it, reduced to the fields the rule
/// file uses.
const PROMETHEUS_RULE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheusrules.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: PrometheusRule, listKind: PrometheusRuleList, plural: prometheusrules, singular: prometheusrule}
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
              properties:
                groups:
                  type: array
                  items:
                    type: object
                    required: [name]
                    properties:
                      name: {type: string, minLength: 1}
                      interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      rules:
                        type: array
                        items:
                          type: object
                          required: [expr]
                          properties:
                            alert: {type: string}
                            record: {type: string}
                            expr: {x-kubernetes-int-or-string: true}
                            for: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                            keep_firing_for: {type: string, minLength: 1}
                            labels: {type: object, additionalProperties: {type: string}}
                            annotations: {type: object, additionalProperties: {type: string}}
"#;

#[tokio::test]
async fn every_rendered_object_is_accepted_by_the_api_server() {
    let client = support::client().await;
    let release_ns = support::fresh_namespace(&client, "chart-dry-run").await;
    let watch_ns = support::fresh_namespace(&client, "chart-dry-run-watch").await;
    must(
        run_with_stdin(
            kubectl().args(["apply", "-f", "-"]),
            &format!("{SERVICE_MONITOR_CRD}\n---\n{PROMETHEUS_RULE_CRD}"),
        ),
        "installing the ServiceMonitor and PrometheusRule CRD stubs",
    );
    must(
        kubectl()
            .args(["wait", "--for=condition=Established", "--timeout=60s"])
            .arg("crd/servicemonitors.monitoring.coreos.com")
            .arg("crd/prometheusrules.monitoring.coreos.com")
            .output(),
        "waiting for the ServiceMonitor and PrometheusRule CRDs",
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
const TAR: &str = "teamsapprollouts.teamsapps.dev";
const EVENTS: &str = "events.events.k8s.io";
const GC: &str = "graphconnections.teamsapps.dev";
const CGC: &str = "clustergraphconnections.teamsapps.dev";

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
            // Rollouts: watched, their status written, and their installations managed.
            &["list", TAR, "-A"],
            &["watch", TAR, "-A"],
            &["patch", TAR, "-n", &work_ns],
            &["patch", TAR, "--subresource=status", "-n", &work_ns],
            &["update", TAR, "--subresource=finalizers", "-n", &work_ns],
            &["create", TAI, "-n", &work_ns],
            &["delete", TAI, "-n", &work_ns],
            &["create", EVENTS, "-n", &work_ns],
            &["patch", EVENTS, "-n", &work_ns],
            // Connections: watched, their status and finalizers written; namespace labels for
            // a ClusterGraphConnection's selector; its Secrets by name in the release namespace.
            &["list", GC, "-A"],
            &["patch", GC, "--subresource=status", "-n", &work_ns],
            &["update", GC, "--subresource=finalizers", "-n", &work_ns],
            &["list", CGC],
            &["patch", CGC, "--subresource=status"],
            &["list", "namespaces"],
            &["get", "secrets", "-n", &release_ns],
        ],
        &[
            &["list", "secrets", "-A"],
            &["list", "secrets", "-n", &release_ns],
            // Only in the namespaces connections.secretNamespaces names.
            &["get", "secrets", "-n", &work_ns],
            &["create", "serviceaccounts/token", "-n", &release_ns],
            &["create", GC, "-n", &work_ns],
            &["delete", CGC],
            &["delete", "customresourcedefinitions.apiextensions.k8s.io"],
            &["create", TAR, "-n", &work_ns],
            &["delete", TAR, "-n", &work_ns],
            &["update", TAI, "-n", &work_ns],
            &["update", TAI, "--subresource=status", "-n", &work_ns],
            &["create", "pods", "-n", &release_ns],
            &["create", "events", "-n", &work_ns],
            &["create", "leases.coordination.k8s.io", "-n", &release_ns],
        ],
    );

    let _one_operator = OPERATOR_RUNS.lock().await;
    let mut world = World::start(&release_ns, "tao-cluster-teams-app-operator", None, &[]).await;
    world.install_and_uninstall(&client, &work_ns).await;
    world.roll_out_and_delete(&client, &work_ns).await;
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
            &["get", "secrets", "-n", &other_ns],
            // No cluster-wide connections or namespace labels in a namespaced install.
            &["list", CGC],
            &["list", "namespaces"],
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

/// Connections as the chart's ServiceAccount: with `connections.default: none` and the work
/// namespace in `connections.secretNamespaces`, a GraphConnection there (its Secret read by name)
/// installs and uninstalls; a resource without a connection is refused; and only the listed
/// namespaces' Secrets are readable.
#[tokio::test]
async fn connections_work_as_the_service_account_and_values_limit_the_own_connection() {
    let client = support::client().await;
    let release_ns = support::fresh_namespace(&client, "chart-conn").await;
    let work_ns = support::fresh_namespace(&client, "chart-conn-work").await;
    let other_ns = support::fresh_namespace(&client, "chart-conn-other").await;
    helm_install(
        "tao-conn",
        &release_ns,
        &format!("connections:\n  default: none\n  secretNamespaces: [{work_ns}]\n"),
    );
    let sa = format!("{release_ns}:tao-conn-teams-app-operator");
    assert_can(
        &sa,
        &[
            &["get", "secrets", "-n", &work_ns],
            &["get", "secrets", "-n", &release_ns],
        ],
        &[
            &["get", "secrets", "-n", &other_ns],
            &["list", "secrets", "-n", &work_ns],
        ],
    );
    let deployment = must(
        Command::new(helm())
            .args(["get", "manifest", "tao-conn", "--namespace", &release_ns])
            .env("KUBECONFIG", support::kubeconfig_path())
            .output(),
        "helm get manifest",
    );
    assert!(
        deployment.contains("name: DEFAULT_CONNECTION\n              value: \"none\""),
        "the Deployment turns the operator's own connection off"
    );

    let _one_operator = OPERATOR_RUNS.lock().await;
    let mut world = World::start(
        &release_ns,
        "tao-conn-teams-app-operator",
        None,
        &[("DEFAULT_CONNECTION", "none")],
    )
    .await;
    world.connected_install(&client, &work_ns).await;
}
