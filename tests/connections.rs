//! `GraphConnection` and `ClusterGraphConnection` end to end: a real API server, a Graph
//! simulator with two tenants, and the operator binary watching every namespace with its own
//! connection turned off (`--default-connection none`), so every Graph call goes through a
//! connection a resource names.
//!
//! The operator here watches the whole cluster, so the tests of this file take turns (one
//! world at a time) and each removes what it created before the next starts.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use graph_sim::{Seed, SimOptions, SimServer};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::{Value, json};
use support::operator::{Operator, OperatorCommand, tail};
use support::wait;
use teams_app_operator::api::{ClusterGraphConnection, GraphConnection, TeamsAppInstallation};
use tokio::sync::Mutex;

const TENANT_A: &str = "aaaaaaaa-0000-0000-0000-00000000000a";
const TENANT_B: &str = "bbbbbbbb-0000-0000-0000-00000000000b";
const CLIENT_A: &str = "aaaaaaaa-1111-1111-1111-11111111111a";
const CLIENT_B: &str = "bbbbbbbb-1111-1111-1111-11111111111b";
const USER_A: &str = "aaaaaaaa-2222-2222-2222-22222222222a";
const USER_A2: &str = "aaaaaaaa-2222-2222-2222-22222222222b";
const USER_B: &str = "bbbbbbbb-2222-2222-2222-22222222222b";
const APP_A: &str = "aaaaaaaa-3333-3333-3333-33333333333a";
const OTHER_APP_A: &str = "aaaaaaaa-3333-3333-3333-33333333333b";
const APP_B: &str = "bbbbbbbb-3333-3333-3333-33333333333b";

/// One world at a time: each runs an operator over the whole cluster.
static TURN: Mutex<()> = Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(60);

fn seed() -> String {
    let users_b: Vec<String> = (0..10)
        .map(|i| format!("{{id: bbbbbbbb-2222-2222-2222-2222222222{i:02}, userPrincipalName: user{i}@b.example}}"))
        .collect();
    format!(
        r#"
tenants:
  - id: {TENANT_A}
    clients: [{{id: {CLIENT_A}, secret: secret-a}}]
    users:
      - {{id: {USER_A}, userPrincipalName: ann@a.example}}
      - {{id: {USER_A2}, userPrincipalName: art@a.example}}
    apps:
      - {{id: {APP_A}, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
      - {{id: {OTHER_APP_A}, externalId: com.contoso.other, displayName: Other,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
  - id: {TENANT_B}
    clients: [{{id: {CLIENT_B}, secret: secret-b}}]
    users:
      - {{id: {USER_B}, userPrincipalName: bo@b.example}}
      - {}
    apps:
      - {{id: {APP_B}, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
"#,
        users_b.join("\n      - ")
    )
}

/// A simulator, the operator over the whole cluster, and the namespaces a test made.
struct World {
    client: Client,
    sim: SimServer,
    http: reqwest::Client,
    /// Where ClusterGraphConnections' Secrets live (the operator's namespace).
    operator_namespace: String,
    operator: Operator,
    log: std::path::PathBuf,
}

impl World {
    async fn start(name: &str) -> Self {
        let client = support::client().await;
        let sim = SimServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            Seed::from_yaml_str(&seed()).expect("seed parses"),
            SimOptions::default(),
        )
        .await
        .expect("graph-sim starts");
        let operator_namespace = support::fresh_namespace(&client, &format!("{name}-op")).await;
        let log = std::env::temp_dir().join(format!("operator-{operator_namespace}.log"));
        let operator = OperatorCommand::new(&log)
            .clean_env()
            .kubeconfig(&support::kubeconfig_path())
            .env("POD_NAMESPACE", &operator_namespace)
            .args([
                "--default-connection",
                "none",
                "--min-interval",
                "1s",
                "--default-interval",
                "3s",
                "--verify-interval",
                "1s",
                "--catalog-cache-ttl",
                "1s",
                "--user-snapshot-ttl",
                "1s",
            ])
            .spawn();
        Self {
            client,
            sim,
            http: reqwest::Client::new(),
            operator_namespace,
            operator,
            log,
        }
    }

    fn context(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- operator log ---\n{}", tail(&log, 80))
    }

    async fn namespace(&self, prefix: &str, labels: &[(&str, &str)]) -> String {
        let name = support::fresh_namespace(&self.client, prefix).await;
        if !labels.is_empty() {
            self.label_namespace(&name, labels).await;
        }
        name
    }

    async fn label_namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let labels: BTreeMap<&str, Value> = labels
            .iter()
            .map(|(k, v)| (*k, if v.is_empty() { Value::Null } else { json!(v) }))
            .collect();
        Api::<Namespace>::all(self.client.clone())
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": labels}})),
            )
            .await
            .unwrap_or_else(|e| panic!("labelling namespace {name}: {e}"));
    }

    async fn secret(&self, namespace: &str, name: &str, value: &str) {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            string_data: Some(BTreeMap::from([("client-secret".into(), value.into())])),
            ..Secret::default()
        };
        api.patch(
            name,
            &PatchParams::apply("connections-test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap_or_else(|e| panic!("writing Secret {namespace}/{name}: {e}"));
    }

    fn connection_spec(&self, tenant: &str, client: &str, secret: &str, extra: Value) -> Value {
        let mut spec = json!({
            "tenantId": tenant,
            "clientId": client,
            "credential": {"secretRef": {"name": secret, "key": "client-secret"}},
            "graphUrl": self.sim.base_url(),
            "loginUrl": self.sim.base_url(),
        });
        if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
            spec.extend(extra);
        }
        spec
    }

    async fn graph_connection(&self, namespace: &str, name: &str, spec: Value) {
        let obj: GraphConnection = serde_json::from_value(json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "GraphConnection",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("valid GraphConnection");
        Api::<GraphConnection>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating GraphConnection {namespace}/{name}: {e}"));
    }

    /// A team's Secret and its GraphConnection `graph` to `tenant` (with `extra` spec fields).
    async fn connect(&self, namespace: &str, tenant: Tenant, extra: Value) {
        let (tenant, client, secret) = tenant.registration();
        self.secret(namespace, "graph", secret).await;
        let spec = self.connection_spec(tenant, client, "graph", extra);
        self.graph_connection(namespace, "graph", spec).await;
    }

    async fn cluster_connection(&self, name: &str, spec: Value) {
        let obj: ClusterGraphConnection = serde_json::from_value(json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "ClusterGraphConnection",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("valid ClusterGraphConnection");
        Api::<ClusterGraphConnection>::all(self.client.clone())
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating ClusterGraphConnection {name}: {e}"));
    }

    async fn install(&self, namespace: &str, name: &str, user: &str, app: &str, reference: Value) {
        let obj: TeamsAppInstallation = serde_json::from_value(json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppInstallation",
            "metadata": {"name": name},
            "spec": {"user": user, "app": {"id": app}, "connectionRef": reference,
                     "deletionPolicy": "Uninstall"},
        }))
        .expect("valid TeamsAppInstallation");
        self.installations(namespace)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating {namespace}/{name}: {e}"));
    }

    fn installations(&self, namespace: &str) -> Api<TeamsAppInstallation> {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn reason<K>(&self, api: &Api<K>, name: &str, reason: &str) -> K
    where
        K: teams_app_operator::kit::conditions::Conditioned
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        wait::until_reason(api, name, reason, WAIT, &|| self.context()).await
    }

    async fn ready(&self, namespace: &str, name: &str) -> TeamsAppInstallation {
        wait::until_ready(&self.installations(namespace), name, WAIT, &|| {
            self.context()
        })
        .await
    }

    /// Every Graph call (not token requests) the simulator served.
    async fn graph_calls(&self) -> Vec<Value> {
        let all: Vec<Value> = self
            .http
            .get(format!("{}/_sim/requests", self.sim.base_url()))
            .send()
            .await
            .expect("simulator answers")
            .json()
            .await
            .expect("request log is JSON");
        all.into_iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| !p.contains("/oauth2/")))
            .collect()
    }

    /// Graph calls that name `user` in their path, by the tenant that served them.
    async fn calls_for_user(&self, user: &str) -> Vec<(String, String)> {
        self.graph_calls()
            .await
            .into_iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.contains(user)))
            .map(|r| {
                (
                    r["tenant"].as_str().unwrap_or("-").to_string(),
                    format!(
                        "{} {}",
                        r["method"].as_str().unwrap_or(""),
                        r["path"].as_str().unwrap_or("")
                    ),
                )
            })
            .collect()
    }

    async fn sim(&self, method: reqwest::Method, path: &str, body: Value) {
        let res = self
            .http
            .request(method, format!("{}/_sim{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("simulator admin answers");
        assert!(res.status().is_success(), "sim {path}: {}", res.status());
    }

    /// Deletes what a test made in `namespaces` (and the cluster connections named), waiting
    /// until the operator let them go: the next test's operator must not meet them.
    async fn clean_up(&self, namespaces: &[&str], cluster_connections: &[&str]) {
        for ns in namespaces {
            let api = self.installations(ns);
            let _ = api
                .delete_collection(&DeleteParams::default(), &Default::default())
                .await;
            let connections: Api<GraphConnection> = Api::namespaced(self.client.clone(), ns);
            let _ = connections
                .delete_collection(&DeleteParams::default(), &Default::default())
                .await;
        }
        let cluster: Api<ClusterGraphConnection> = Api::all(self.client.clone());
        for name in cluster_connections {
            let _ = cluster.delete(name, &DeleteParams::default()).await;
        }
        for ns in namespaces {
            let api = self.installations(ns);
            let deadline = Instant::now() + WAIT;
            while !api
                .list(&Default::default())
                .await
                .map(|l| l.items.is_empty())
                .unwrap_or(true)
            {
                assert!(
                    Instant::now() < deadline,
                    "installations in {ns} not gone\n{}",
                    self.context()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        for name in cluster_connections {
            wait::until_gone(&cluster, name, WAIT, &|| self.context()).await;
        }
    }
}

/// The two tenants of the seed, by their app registration.
#[derive(Clone, Copy)]
enum Tenant {
    A,
    B,
}

impl Tenant {
    fn registration(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Tenant::A => (TENANT_A, CLIENT_A, "secret-a"),
            Tenant::B => (TENANT_B, CLIENT_B, "secret-b"),
        }
    }
}

fn gc(name: &str) -> Value {
    json!({"kind": "GraphConnection", "name": name})
}

fn cgc(name: &str) -> Value {
    json!({"kind": "ClusterGraphConnection", "name": name})
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

#[tokio::test]
async fn each_namespace_reaches_its_own_tenant_and_cannot_borrow_another() {
    let _turn = TURN.lock().await;
    let world = World::start("own-tenant").await;
    let team_a = world.namespace("team-a", &[]).await;
    let team_b = world.namespace("team-b", &[]).await;
    world.connect(&team_a, Tenant::A, json!({})).await;
    world.connect(&team_b, Tenant::B, json!({})).await;
    let conn_a: Api<GraphConnection> = Api::namespaced(world.client.clone(), &team_a);
    let ready = world.reason(&conn_a, "graph", "Connected").await;
    let status = ready.status.expect("status");
    assert!(
        status
            .granted_permissions
            .iter()
            .any(|r| r == "TeamsAppInstallation.ReadWriteForUser.All")
    );
    assert!(status.token_expires_at.is_some());

    world
        .install(&team_a, "ann", USER_A, APP_A, gc("graph"))
        .await;
    world
        .install(&team_b, "bo", USER_B, APP_B, gc("graph"))
        .await;
    world.ready(&team_a, "ann").await;
    world.ready(&team_b, "bo").await;
    for (user, tenant) in [(USER_A, TENANT_A), (USER_B, TENANT_B)] {
        let calls = world.calls_for_user(user).await;
        assert!(!calls.is_empty());
        assert!(
            calls.iter().all(|(t, _)| t.eq_ignore_ascii_case(tenant)),
            "calls for {user} reached another tenant: {calls:?}"
        );
    }

    // Each connection's Graph calls are counted under its own label.
    let metrics = world
        .http
        .get(format!("{}/metrics", world.operator.telemetry_url()))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    for ns in [&team_a, &team_b] {
        let label = format!(r#"connection="gc:{ns}/graph""#);
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("teams_app_operator_graph_requests_total")
                    && l.contains(&label)),
            "no Graph request series with {label}"
        );
    }

    // team-b names team-a's connection: refused before anything reaches Graph.
    let before = world.graph_calls().await.len();
    world
        .install(
            &team_b,
            "borrow",
            USER_A,
            APP_A,
            json!({"kind": "GraphConnection", "name": "graph", "namespace": team_a}),
        )
        .await;
    let refused = world
        .reason(
            &world.installations(&team_b),
            "borrow",
            "ConnectionNotAllowed",
        )
        .await;
    let message = teams_app_operator::kit::conditions::find(
        &refused.status.as_ref().unwrap().conditions,
        "Ready",
    )
    .unwrap()
    .message
    .clone();
    assert!(
        message.contains("serves only its own namespace"),
        "{message}"
    );
    assert!(teams_app_operator::kit::conditions::is_true(
        &refused.status.as_ref().unwrap().conditions,
        "Stalled"
    ));
    let borrowed: Vec<Value> = world
        .graph_calls()
        .await
        .into_iter()
        .skip(before)
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains(USER_A)))
        .collect();
    assert!(
        borrowed.is_empty(),
        "the refused resource made Graph calls: {borrowed:?}"
    );

    // A connection that does not exist.
    world
        .install(&team_b, "nowhere", USER_B, APP_B, gc("missing"))
        .await;
    world
        .reason(
            &world.installations(&team_b),
            "nowhere",
            "ConnectionNotFound",
        )
        .await;
    world.clean_up(&[&team_a, &team_b], &[]).await;
}

#[tokio::test]
async fn a_cluster_connection_serves_labelled_namespaces_and_stops_without_uninstalling() {
    let _turn = TURN.lock().await;
    let world = World::start("by-label").await;
    world
        .secret(&world.operator_namespace, "graph-b", "secret-b")
        .await;
    let name = unique("shared-b");
    world
        .cluster_connection(&name, {
            let mut spec = world.connection_spec(TENANT_B, CLIENT_B, "graph-b", json!({}));
            spec["allowedNamespaces"] =
                json!({"selector": {"matchLabels": {"teams.example/graph": "tenant-b"}}});
            spec
        })
        .await;
    let cluster: Api<ClusterGraphConnection> = Api::all(world.client.clone());
    world.reason(&cluster, &name, "Connected").await;

    let team = world.namespace("labelled", &[]).await;
    world.install(&team, "bo", USER_B, APP_B, cgc(&name)).await;
    world
        .reason(&world.installations(&team), "bo", "ConnectionNotAllowed")
        .await;
    assert!(
        world.calls_for_user(USER_B).await.is_empty(),
        "no call before the label"
    );

    world
        .label_namespace(&team, &[("teams.example/graph", "tenant-b")])
        .await;
    world.ready(&team, "bo").await;

    world
        .label_namespace(&team, &[("teams.example/graph", "")])
        .await;
    world
        .reason(&world.installations(&team), "bo", "ConnectionNotAllowed")
        .await;
    let deletes = world
        .graph_calls()
        .await
        .into_iter()
        .filter(|r| r["method"] == "DELETE")
        .count();
    assert_eq!(deletes, 0, "losing the label uninstalls nothing");
    // Deleting it now (deletionPolicy Uninstall) must not uninstall through a connection that
    // no longer serves the namespace: it is let go with an Event saying what was left.
    world.clean_up(&[&team], &[&name]).await;
    let deletes = world
        .graph_calls()
        .await
        .into_iter()
        .filter(|r| r["method"] == "DELETE")
        .count();
    assert_eq!(
        deletes, 0,
        "a namespace the connection refuses uninstalls nothing"
    );
}

#[tokio::test]
async fn allowed_apps_refuse_other_apps_without_a_graph_call() {
    let _turn = TURN.lock().await;
    let world = World::start("allowed-apps").await;
    let team = world.namespace("apps", &[]).await;
    world
        .connect(&team, Tenant::A, json!({"allowedApps": [APP_A]}))
        .await;
    world
        .install(&team, "allowed", USER_A, APP_A, gc("graph"))
        .await;
    world.ready(&team, "allowed").await;
    world
        .install(&team, "other", USER_A2, OTHER_APP_A, gc("graph"))
        .await;
    let refused = world
        .reason(&world.installations(&team), "other", "ConnectionNotAllowed")
        .await;
    let message = teams_app_operator::kit::conditions::find(
        &refused.status.as_ref().unwrap().conditions,
        "Ready",
    )
    .unwrap()
    .message
    .clone();
    assert!(message.contains("allowedApps"), "{message}");
    assert!(
        world.calls_for_user(USER_A2).await.is_empty(),
        "the refused app cost no Graph call"
    );
    world.clean_up(&[&team], &[]).await;
}

#[tokio::test]
async fn tenants_do_not_slow_or_break_each_other() {
    let _turn = TURN.lock().await;
    let world = World::start("independent").await;
    let team_a = world.namespace("storm-a", &[]).await;
    let team_b = world.namespace("calm-b", &[]).await;
    world.connect(&team_a, Tenant::A, json!({})).await;
    world.connect(&team_b, Tenant::B, json!({})).await;
    for ns in [&team_a, &team_b] {
        let api: Api<GraphConnection> = Api::namespaced(world.client.clone(), ns);
        world.reason(&api, "graph", "Connected").await;
    }
    // Tenant A: every Graph call throttled for the whole test.
    world
        .sim(reqwest::Method::PUT, "/faults", json!({"failures": [
            {"tenant": TENANT_A, "pathContains": "/users/", "status": 429, "retryAfter": 2, "count": 100000}
        ]}))
        .await;
    world
        .install(&team_a, "ann", USER_A, APP_A, gc("graph"))
        .await;
    let started = Instant::now();
    for i in 0..10 {
        let user = format!("bbbbbbbb-2222-2222-2222-2222222222{i:02}");
        world
            .install(&team_b, &format!("user{i}"), &user, APP_B, gc("graph"))
            .await;
    }
    for i in 0..10 {
        world.ready(&team_b, &format!("user{i}")).await;
    }
    let b_took = started.elapsed();
    world
        .reason(&world.installations(&team_a), "ann", "Throttled")
        .await;
    let throttled_a = world.calls_for_user(USER_A).await.len();
    println!(
        "tenant B: 10 installations Ready in {:.1} s while tenant A was throttled ({throttled_a} calls for A's user, all 429)",
        b_took.as_secs_f64()
    );

    // A broken secret on A: A's connection fails, B stays Ready.
    world
        .sim(reqwest::Method::DELETE, "/faults", json!({}))
        .await;
    world.secret(&team_a, "graph", "not-the-secret").await;
    world
        .sim(reqwest::Method::POST, "/tokens/expire", json!({}))
        .await;
    let conn_a: Api<GraphConnection> = Api::namespaced(world.client.clone(), &team_a);
    let conn_b: Api<GraphConnection> = Api::namespaced(world.client.clone(), &team_b);
    // The next check of A signs in again, with the broken secret.
    kube_annotate(&conn_a, "graph").await;
    world.reason(&conn_a, "graph", "AuthenticationFailed").await;
    kube_annotate(&conn_b, "graph").await;
    world.reason(&conn_b, "graph", "Connected").await;
    for i in 0..10 {
        world.ready(&team_b, &format!("user{i}")).await;
    }
    // Fixed: A's connection signs in again at its next check (a minute for a connection that
    // needs a person; asked for at once here) and A's resource goes on.
    world.secret(&team_a, "graph", "secret-a").await;
    // A refused token request stands for a second or two (the token cache's failure hold, so
    // that callers do not hammer the endpoint): a check asked for sooner would only repeat the
    // refusal and leave the fix to the next minute's check, racing this wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    kube_annotate(&conn_a, "graph").await;
    world.reason(&conn_a, "graph", "Connected").await;
    world.ready(&team_a, "ann").await;
    world.clean_up(&[&team_a, &team_b], &[]).await;
}

/// Asks for a re-check now, as a person would (`teamsapps.dev/reconcile-requested-at`).
async fn kube_annotate<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let stamp = uuid::Uuid::new_v4().to_string();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"teamsapps.dev/reconcile-requested-at": stamp}}}),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("annotating {name}: {e}"));
}

#[tokio::test]
async fn a_rotated_secret_is_used_without_a_restart() {
    let _turn = TURN.lock().await;
    let world = World::start("rotation").await;
    let team = world.namespace("rotate", &[]).await;
    world.connect(&team, Tenant::A, json!({})).await;
    world
        .install(&team, "ann", USER_A, APP_A, gc("graph"))
        .await;
    world.ready(&team, "ann").await;

    // Entra gets a new secret and refuses the old one; the Secret follows; tokens run out.
    world
        .sim(
            reqwest::Method::PATCH,
            &format!("/tenants/{TENANT_A}/clients/{CLIENT_A}"),
            json!({"secret": "secret-a-2"}),
        )
        .await;
    world.secret(&team, "graph", "secret-a-2").await;
    world
        .sim(reqwest::Method::POST, "/tokens/expire", json!({}))
        .await;
    let pid = world.operator.pid();
    world
        .install(&team, "art", USER_A2, APP_A, gc("graph"))
        .await;
    world.ready(&team, "art").await;
    assert_eq!(world.operator.pid(), pid, "no restart");
    let conn: Api<GraphConnection> = Api::namespaced(world.client.clone(), &team);
    kube_annotate(&conn, "graph").await;
    world.reason(&conn, "graph", "Connected").await;
    world.clean_up(&[&team], &[]).await;
}

#[tokio::test]
async fn deleting_a_connection_in_use_waits_and_uninstall_still_works() {
    let _turn = TURN.lock().await;
    let world = World::start("in-use").await;
    let team = world.namespace("in-use", &[]).await;
    world.connect(&team, Tenant::A, json!({})).await;
    world
        .install(&team, "ann", USER_A, APP_A, gc("graph"))
        .await;
    world.ready(&team, "ann").await;

    let conn: Api<GraphConnection> = Api::namespaced(world.client.clone(), &team);
    conn.delete("graph", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let waiting = world.reason(&conn, "graph", "InUse").await;
    let status = waiting.status.expect("status");
    assert!(
        teams_app_operator::kit::conditions::is_true(&status.conditions, "Ready"),
        "a connection being deleted still serves the resources that hold it"
    );
    assert_eq!(status.in_use, Some(1));
    assert!(
        status.used_by.iter().any(|u| u.contains("ann")),
        "{:?}",
        status.used_by
    );

    world
        .installations(&team)
        .delete("ann", &DeleteParams::default())
        .await
        .expect("delete");
    wait::until_gone(&world.installations(&team), "ann", WAIT, &|| {
        world.context()
    })
    .await;
    let uninstalls = world
        .graph_calls()
        .await
        .into_iter()
        .filter(|r| r["method"] == "DELETE" && r["status"] == 204)
        .count();
    assert_eq!(
        uninstalls, 1,
        "the app was uninstalled through the connection being deleted"
    );
    wait::until_gone(&conn, "graph", WAIT, &|| world.context()).await;
    world.clean_up(&[&team], &[]).await;
}

#[tokio::test]
async fn a_missing_role_is_named_on_the_connection() {
    let _turn = TURN.lock().await;
    let world = World::start("roles").await;
    world
        .sim(
            reqwest::Method::PATCH,
            &format!("/tenants/{TENANT_A}/clients/{CLIENT_A}"),
            json!({"roles": ["AppCatalog.Read.All"]}),
        )
        .await;
    let team = world.namespace("roles", &[]).await;
    world.connect(&team, Tenant::A, json!({})).await;
    let conn: Api<GraphConnection> = Api::namespaced(world.client.clone(), &team);
    let missing = world.reason(&conn, "graph", "MissingPermissions").await;
    let status = missing.status.expect("status");
    assert_eq!(
        status.missing_permissions,
        ["TeamsAppInstallation.ReadWriteForUser.All"]
    );
    assert_eq!(status.granted_permissions, ["AppCatalog.Read.All"]);
    // Its resources wait for it, without a Graph call for them.
    world
        .install(&team, "ann", USER_A, APP_A, gc("graph"))
        .await;
    world
        .reason(&world.installations(&team), "ann", "ConnectionNotReady")
        .await;
    assert!(world.calls_for_user(USER_A).await.is_empty());

    // An admin grants it: the next check takes a new token (the roles are in the token), the
    // connection is Ready, and its resources go on by themselves.
    world
        .sim(
            reqwest::Method::PATCH,
            &format!("/tenants/{TENANT_A}/clients/{CLIENT_A}"),
            json!({"roles": ["TeamsAppInstallation.ReadWriteForUser.All", "AppCatalog.Read.All"]}),
        )
        .await;
    kube_annotate(&conn, "graph").await;
    world.reason(&conn, "graph", "Connected").await;
    world.ready(&team, "ann").await;
    world.clean_up(&[&team], &[]).await;
}

#[tokio::test]
async fn workload_identity_federates_as_the_connections_service_account() {
    let _turn = TURN.lock().await;
    let world = World::start("federated").await;
    let team = world.namespace("federated", &[]).await;
    let issuer_key = std::fs::read_to_string(support::control_plane_dir().join("sa.pub"))
        .expect("the control plane's service-account key");
    let federated_client = "cccccccc-1111-1111-1111-11111111111c";
    world
        .sim(
            reqwest::Method::POST,
            &format!("/tenants/{TENANT_A}/clients"),
            json!({"id": federated_client, "federatedCredentials": [{
                "issuer": "https://kubernetes.default.svc",
                "subject": format!("system:serviceaccount:{team}:graph-identity"),
                "issuerKey": issuer_key,
            }]}),
        )
        .await;
    let accounts: Api<ServiceAccount> = Api::namespaced(world.client.clone(), &team);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("graph-identity".into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("ServiceAccount");
    let spec = json!({
        "tenantId": TENANT_A,
        "clientId": federated_client,
        "credential": {"workloadIdentity": {"serviceAccountName": "graph-identity"}},
        "graphUrl": world.sim.base_url(),
        "loginUrl": world.sim.base_url(),
    });
    world.graph_connection(&team, "graph", spec).await;
    let conn: Api<GraphConnection> = Api::namespaced(world.client.clone(), &team);
    world.reason(&conn, "graph", "Connected").await;
    world
        .install(&team, "ann", USER_A, APP_A, gc("graph"))
        .await;
    world.ready(&team, "ann").await;
    world.clean_up(&[&team], &[]).await;
}
