//! The operator binary running with the chart ServiceAccount's token: its RBAC is enough.

use super::*;
use teams_app_operator::api::TeamsAppRollout;

/// An Entra group with alice in it.
const GROUP: &str = "44444444-4444-4444-4444-444444444444";
use crate::on_cluster::kubectl;
use crate::support::wait;

const MINUTE: Duration = Duration::from_secs(60);
const HALF_MINUTE: Duration = Duration::from_secs(30);

/// A graph-sim and the operator binary running with the chart ServiceAccount's token.
pub(crate) struct World {
    sim: SimServer,
    operator: Operator,
    _dir: tempfile::TempDir,
}

impl World {
    /// `env`: more settings, as the chart's Deployment would set them.
    pub(crate) async fn start(
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
    groups: [{{id: {GROUP}, members: [alice@contoso.com]}}]
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
        // As the chart's Deployment runs it: only the chart's settings, nothing of the test's
        // environment (an admin KUBECONFIG, AZURE_*).
        let mut command = OperatorCommand::new(dir.path().join("operator.log"))
            .clean_env()
            .kubeconfig(&kubeconfig)
            .graph_sim(&sim.base_url(), TENANT, CLIENT_ID, SECRET)
            .env("VERIFY_INTERVAL", "1s")
            .env("POD_NAME", "chart-test")
            .env("POD_NAMESPACE", release_ns);
        if let Some(ns) = watch_namespace {
            command = command.env("WATCH_NAMESPACE", ns);
        }
        let operator = command.envs(env.iter().copied()).spawn();
        Self {
            sim,
            operator,
            _dir: dir,
        }
    }

    pub(crate) fn log(&self) -> String {
        self.operator.log()
    }

    /// What a failed wait prints: the operator's log (which ends with why, if it exited).
    fn context(&self) -> String {
        format!(
            "--- operator log (as the chart's ServiceAccount) ---\n{}",
            tail(&self.log(), 80)
        )
    }

    pub(crate) fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- operator log (as the chart's ServiceAccount) ---\n{}",
            tail(&self.log(), 80)
        )
    }

    /// Creates a TeamsAppInstallation (as admin, like a user would), waits until the operator
    /// installed the app and reports Ready for the current generation with an Event, then deletes
    /// it and waits until the operator uninstalled the app and released its finalizer.
    pub(crate) async fn install_and_uninstall(&mut self, client: &kube::Client, namespace: &str) {
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

        let context = || self.context();
        wait::until_ready(&api, "contoso-bot-alice", MINUTE, &context).await;
        wait::until_event(
            client,
            namespace,
            "contoso-bot-alice",
            "Installed",
            HALF_MINUTE,
            &context,
        )
        .await;
        assert_eq!(
            self.graph_requests("POST", "/installedApps").await,
            1,
            "one install in Graph"
        );

        api.delete("contoso-bot-alice", &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting the TeamsAppInstallation: {e}"));
        wait::until_gone(&api, "contoso-bot-alice", MINUTE, &context).await;
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

    /// As a team would: a Secret and a GraphConnection in `namespace`, then an installation
    /// through it (installed and uninstalled); an installation without `connectionRef` is
    /// refused (`ConnectionNotFound`: the operator's own connection is off) with no Graph call.
    pub(crate) async fn connected_install(&mut self, client: &kube::Client, namespace: &str) {
        let context = || self.context();
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), namespace);
        let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
            "metadata": {"name": "graph"},
            "stringData": {"client-secret": SECRET},
        }))
        .expect("a valid Secret");
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("creating the Secret: {e}"));
        let connections: Api<teams_app_operator::api::GraphConnection> =
            Api::namespaced(client.clone(), namespace);
        let connection = serde_json::from_value(json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "GraphConnection",
            "metadata": {"name": "contoso"},
            "spec": {
                "tenantId": TENANT, "clientId": CLIENT_ID,
                "credential": {"secretRef": {"name": "graph", "key": "client-secret"}},
                "graphUrl": self.sim.base_url(), "loginUrl": self.sim.base_url(),
            },
        }))
        .expect("a valid GraphConnection");
        connections
            .create(&PostParams::default(), &connection)
            .await
            .unwrap_or_else(|e| panic!("creating the GraphConnection: {e}"));
        wait::until_reason(&connections, "contoso", "Connected", MINUTE, &context).await;

        let api: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), namespace);
        for (name, reference) in [
            (
                "through-contoso",
                json!({"kind": "GraphConnection", "name": "contoso"}),
            ),
            ("no-connection", Value::Null),
        ] {
            let obj: TeamsAppInstallation = serde_json::from_value(json!({
                "apiVersion": "teamsapps.dev/v1alpha1",
                "kind": "TeamsAppInstallation",
                "metadata": {"name": name},
                "spec": {"user": "alice@contoso.com", "app": {"id": BOT},
                         "deletionPolicy": "Uninstall", "connectionRef": reference},
            }))
            .expect("a valid TeamsAppInstallation");
            api.create(&PostParams::default(), &obj)
                .await
                .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        }
        wait::until_ready(&api, "through-contoso", MINUTE, &context).await;
        wait::until_reason(
            &api,
            "no-connection",
            "ConnectionNotFound",
            MINUTE,
            &context,
        )
        .await;
        assert_eq!(
            self.graph_requests("POST", "/installedApps").await,
            1,
            "one install"
        );
        // The refused one first: while it exists it still wants the app, and deleting the
        // other would hand the installation over to it instead of uninstalling.
        for name in ["no-connection", "through-contoso"] {
            api.delete(name, &DeleteParams::default())
                .await
                .unwrap_or_else(|e| panic!("deleting {name}: {e}"));
            wait::until_gone(&api, name, MINUTE, &context).await;
        }
        assert_eq!(
            self.graph_requests("DELETE", "/installedApps/").await,
            1,
            "one uninstall"
        );
        connections
            .delete("contoso", &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting the GraphConnection: {e}"));
        wait::until_gone(&connections, "contoso", MINUTE, &context).await;
        if self.log().to_ascii_lowercase().contains("forbidden") {
            self.fail("the API server refused the operator something (\"forbidden\" in its log)");
        }
    }

    /// Creates a TeamsAppRollout for a group (as admin), waits until it is Ready with its one
    /// installation, then deletes it and waits until it and its installation are gone: the
    /// rollout controller's RBAC (rollouts, their status and finalizers; creating and deleting
    /// installations) is enough.
    pub(crate) async fn roll_out_and_delete(&mut self, client: &kube::Client, namespace: &str) {
        let api: Api<TeamsAppRollout> = Api::namespaced(client.clone(), namespace);
        let installations: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), namespace);
        let obj: TeamsAppRollout = serde_json::from_value(json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppRollout",
            "metadata": {"name": "contoso-bot-group"},
            "spec": {"app": {"id": BOT}, "audience": {"groups": [GROUP]}},
        }))
        .expect("a valid TeamsAppRollout");
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating the TeamsAppRollout: {e}"));
        let context = || self.context();
        wait::until_ready(&api, "contoso-bot-group", MINUTE, &context).await;
        let completed = "WaveCompleted";
        wait::until_event(
            client,
            namespace,
            "contoso-bot-group",
            completed,
            HALF_MINUTE,
            &context,
        )
        .await;
        let children = installations
            .list(&ListParams::default().labels("teamsapps.dev/rollout=contoso-bot-group"))
            .await
            .expect("list the rollout's installations");
        assert_eq!(
            children.items.len(),
            1,
            "one installation for the group's one user"
        );

        api.delete("contoso-bot-group", &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting the TeamsAppRollout: {e}"));
        wait::until_gone(&api, "contoso-bot-group", MINUTE, &context).await;
        let left = installations
            .list(&ListParams::default().labels("teamsapps.dev/rollout=contoso-bot-group"))
            .await
            .expect("list the rollout's installations");
        assert!(
            left.items.is_empty(),
            "the rollout's installations went with it"
        );
        if self.log().to_ascii_lowercase().contains("forbidden") {
            self.fail("the API server refused the operator something (\"forbidden\" in its log)");
        }
    }

    /// How many Graph requests with `method` had a path containing `fragment`.
    pub(crate) async fn graph_requests(&self, method: &str, fragment: &str) -> usize {
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
    let admin: Value = serde_saphyr::from_str(
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
    serde_saphyr::to_string(&config).expect("kubeconfig serializes")
}
