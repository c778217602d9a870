//! Checks that need no cluster: lint, render, schema, defaults.

use super::*;

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
            "Role",
            "RoleBinding",
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
    assert_least_privilege(only(&objs, "ClusterRole"), true);
    assert_connection_credentials(&objs, &["ops"], false);
    let binding = only(&objs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], "tao-teams-app-operator");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "tao-teams-app-operator", "namespace": "ops"}])
    );
}

/// Exactly the rules the controllers need, nothing else (no core Events; deleting
/// installations only, which rollouts own; connection Secrets only by name: in a cluster-wide
/// install through Roles of their own, see [`assert_connection_credentials`]).
fn assert_least_privilege(role: &Value, cluster_wide: bool) {
    let mut rules = json!([
        {"apiGroups": ["teamsapps.dev"], "resources": ["teamsappinstallations"],
         "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
        {"apiGroups": ["teamsapps.dev"],
         "resources": ["teamsappinstallations/status", "teamsapprollouts/status"],
         "verbs": ["patch"]},
        {"apiGroups": ["teamsapps.dev"], "resources": ["teamsapprollouts"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["teamsapps.dev"],
         "resources": ["teamsappinstallations/finalizers", "teamsapprollouts/finalizers"],
         "verbs": ["update"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ]);
    let more = if cluster_wide {
        json!([
            {"apiGroups": ["teamsapps.dev"],
             "resources": ["graphconnections", "clustergraphconnections"],
             "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["teamsapps.dev"],
             "resources": ["graphconnections/status", "graphconnections/finalizers",
                           "clustergraphconnections/status", "clustergraphconnections/finalizers"],
             "verbs": ["patch", "update"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        ])
    } else {
        json!([
            {"apiGroups": ["teamsapps.dev"], "resources": ["graphconnections"],
             "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["teamsapps.dev"],
             "resources": ["graphconnections/status", "graphconnections/finalizers"],
             "verbs": ["patch", "update"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        ])
    };
    let list = rules.as_array_mut().expect("rules");
    list.extend(more.as_array().expect("rules").iter().cloned());
    assert_eq!(role["rules"], rules);
}

/// The one namespaced grant of a cluster-wide install by default: Secrets by name (never list)
/// in the release namespace, where ClusterGraphConnections keep theirs.
fn assert_connection_credentials(objs: &[Value], namespaces: &[&str], tokens: bool) {
    let roles: Vec<&Value> = all(objs, "Role")
        .into_iter()
        .filter(|r| r["metadata"]["name"] == "tao-teams-app-operator-connection-credentials")
        .collect();
    let mut seen: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap_or(""))
        .collect();
    seen.sort();
    assert_eq!(seen, namespaces);
    let mut rules = vec![json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})];
    if tokens {
        rules.push(
            json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}),
        );
    }
    for role in roles {
        assert_eq!(role["rules"], json!(rules));
    }
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

    assert_connection_credentials(&objs, &["ops", "team-a"], true);
    assert_eq!(
        value("DEFAULT_CONNECTION_NAMESPACES").as_deref(),
        Some("platform,team-a")
    );
    assert_eq!(value("WRITE_VERIFY_WINDOW").as_deref(), Some("5m"));
    assert_eq!(value("TEAMS_PROVISIONING_TIMEOUT").as_deref(), Some("12h"));

    // Leases only with leader election, in the release namespace, on the one Lease.
    let roles: Vec<&Value> = all(&objs, "Role")
        .into_iter()
        .filter(|r| r["metadata"]["name"] == "tao-teams-app-operator-leader-election")
        .collect();
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
    assert!(
        all(&objs, "RoleBinding")
            .iter()
            .any(|b| b["roleRef"]["name"] == lease_role["metadata"]["name"]),
        "the leader-election Role is bound"
    );
    assert_least_privilege(only(&objs, "ClusterRole"), true);

    let pdb = only(&objs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);

    let monitor = only(&objs, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}])
    );
    // The dashboard and alerts (their contents: tests/observability).
    let dashboard = only(&objs, "ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        dashboard["metadata"]["annotations"]["grafana_folder"],
        "Operators"
    );
    let rules = only(&objs, "PrometheusRule");
    assert_eq!(rules["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        rules["spec"]["groups"][0]["rules"][0]["labels"]["team"],
        "platform"
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
    assert_least_privilege(role, false);
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
    let leader = |o: &&Value| {
        o["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-leader-election"))
    };
    assert!(
        !all(&objs, "Role").iter().any(leader) && !all(&objs, "RoleBinding").iter().any(leader)
    );
    assert!(all(&objs, "PodDisruptionBudget").is_empty());

    let objs = objects(&template("replicaCount: 2", "tao", "ops"));
    assert_eq!(env_value(&objs, "LEADER_ELECTION").as_deref(), Some("true"));
    assert_eq!(
        env_value(&objs, "LEASE_NAME").as_deref(),
        Some("tao-teams-app-operator")
    );
    let lease_role = all(&objs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "tao-teams-app-operator-leader-election")
        .expect("a leader-election Role");
    assert_eq!(
        lease_role["rules"][0]["apiGroups"],
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
        ("dashboard: {label: grafana dashboard}", "/dashboard/label"),
        ("dashboard: {labelValue: 1}", "/dashboard/labelValue"),
        (
            "prometheusRule: {runbookBaseUrl: docs/README.md}",
            "/prometheusRule/runbookBaseUrl",
        ),
        (
            "prometheusRule: {additionalRuleLabels: {team: [a]}}",
            "/prometheusRule/additionalRuleLabels/team",
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
        ("notifications: {enabled: true}", "needs notifications.url"),
        (
            "notifications: {encryptionCertificate: {secretName: notification-certificate}}",
            "encryptionCertificate.secretName needs notifications.enabled",
        ),
        (
            "notifications: {encryptionCertificate: {secret: x}}",
            "'secret' not allowed",
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

/// Notifications on: the receiver's port and address, the public URL, a Service and an Ingress
/// for the URL's host (TLS at the Ingress), and the NetworkPolicy lets Graph's posts in. Off by
/// default: none of it.
#[test]
fn notifications_render_a_port_a_service_and_an_ingress_for_the_public_url() {
    let defaults = objects(&template("", "tao", "ops"));
    assert!(!env(&defaults).contains_key("NOTIFICATION_ADDR"));
    assert!(!env(&defaults).contains_key("NOTIFICATION_CERTIFICATE"));
    assert!(all(&defaults, "Ingress").is_empty());

    let objs = objects(&template(&configuration("certificate"), "tao", "ops"));
    assert_eq!(
        env_value(&objs, "NOTIFICATION_ADDR").as_deref(),
        Some("0.0.0.0:8443")
    );
    assert_eq!(
        env_value(&objs, "NOTIFICATION_URL").as_deref(),
        Some("https://teams-operator.example.com")
    );
    let ports = container(&objs)["ports"].as_array().expect("ports").clone();
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "notifications" && p["containerPort"] == 8443)
    );
    let service = all(&objs, "Service")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "tao-teams-app-operator-notifications")
        .expect("a notifications Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "notifications");
    let ingress = only(&objs, "Ingress");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "teams-operator.example.com"
    );
    assert_eq!(
        ingress["spec"]["tls"][0]["secretName"],
        "teams-operator-tls"
    );
    let path = &ingress["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(path["path"], "/graph");
    assert_eq!(
        path["backend"]["service"]["name"],
        "tao-teams-app-operator-notifications"
    );
    let policy = only(&objs, "NetworkPolicy");
    let ingress_ports: Vec<&Value> = policy["spec"]["ingress"]
        .as_array()
        .expect("ingress rules")
        .iter()
        .flat_map(|rule| rule["ports"].as_array().into_iter().flatten())
        .collect();
    assert!(ingress_ports.iter().any(|p| p["port"] == "notifications"));
    // Any replica may receive: a standby forwards to the leader's pod IP, and the
    // subscriptions are kept in one Secret the replicas may read and the leader write.
    assert_eq!(
        env_value(&objs, "NOTIFICATION_PEER_URL").as_deref(),
        Some("http://$(POD_IP):8443")
    );
    assert_eq!(
        env_value(&objs, "NOTIFICATION_SECRET").as_deref(),
        Some("tao-teams-app-operator-subscriptions")
    );
    let forwards = policy["spec"]["egress"]
        .as_array()
        .expect("egress rules")
        .iter()
        .any(|rule| rule["ports"][0]["port"] == 8443 && rule["to"][0]["podSelector"].is_object());
    assert!(forwards, "{policy}");
    let role = all(&objs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "tao-teams-app-operator-notifications")
        .expect("a Role for the notification Secret");
    assert_eq!(
        role["rules"][1]["resourceNames"][0],
        "tao-teams-app-operator-subscriptions"
    );
    let two = objects(&template(
        "{replicaCount: 2, notifications: {enabled: true, url: \"https://x.example.com\"}}",
        "tao",
        "ops",
    ));
    assert_eq!(only(&two, "Deployment")["spec"]["replicas"], 2);

    // With encryptionCertificate: the kubernetes.io/tls Secret mounted read-only, its
    // certificate and key only, and NOTIFICATION_CERTIFICATE naming the directory.
    let dir = env_value(&objs, "NOTIFICATION_CERTIFICATE").expect("NOTIFICATION_CERTIFICATE");
    let pod = &only(&objs, "Deployment")["spec"]["template"]["spec"];
    let volume = (pod["volumes"].as_array().expect("volumes").iter())
        .find(|v| v["secret"]["secretName"] == "notification-certificate")
        .expect("a volume of the certificate's Secret");
    assert_eq!(
        volume["secret"]["items"],
        json!([{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}])
    );
    assert_eq!(volume["secret"]["defaultMode"], 0o440);
    let mounts = container(&objs)["volumeMounts"].clone();
    let mount = (mounts.as_array().expect("volumeMounts").iter())
        .find(|m| m["name"] == volume["name"])
        .expect("the certificate's volume is mounted");
    assert_eq!(mount["readOnly"], true);
    assert_eq!(mount["mountPath"].as_str(), Some(dir.as_str()));
}
