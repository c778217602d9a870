//! One test's world: a fresh namespace on the shared control plane, its own Graph simulator, and
//! the real `teams-app-operator` binary watching that namespace — the operator runs as it does
//! in production, as a separate process configured by flags and environment
//! ([`crate::support::operator`], the one way tests and benchmarks start it).
//!
//! Adding a test:
//! 1. In a test file that has `mod scenario; mod support;`, start a world with
//!    `Scenario::start("short-prefix", &default_seed())` — or your own seed YAML (see
//!    `examples/tenant.yaml`), or `Scenario::start_with(prefix, seed, &["--flag", "value"])` for
//!    operator flags (test-speed intervals are the default unless you pass the flag).
//! 2. Script Graph with `set_faults(json!({...}))` (the simulator's `PUT /_sim/faults`),
//!    `publish_version`, or `sim_admin` for any other admin call.
//! 3. Act as a user would: `create`, `merge_spec`, `delete`.
//! 4. Assert what a user sees: `wait_for_reason`, `wait_for`, `reasons_until_ready` (fails if the
//!    resource ever stalls), `events_for` / `event_count`, and the Graph calls the simulator
//!    served (`graph_requests`, `count_requests`, `upgrade_statuses`). Poll with a deadline; never
//!    assert on timing. A failing wait prints the resource and the operator's log.

#![allow(dead_code)]

pub mod rollouts;

use std::time::{Duration, Instant};

use graph_sim::{Seed, SimOptions, SimServer};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::Value;
use teams_app_operator::api::TeamsAppInstallation;
use teams_app_operator::kit::conditions;

pub use crate::support::operator::{Operator, OperatorCommand, tail};
use crate::support::{self, wait};

pub const TENANT: &str = "00000000-0000-0000-0000-000000000001";
pub const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const SECRET: &str = "s3cret";
pub const ALICE: &str = "22222222-2222-2222-2222-222222222222";
pub const BOB: &str = "22222222-2222-2222-2222-222222222223";
pub const BOT: &str = "33333333-3333-3333-3333-333333333333";

/// A tenant where alice has Contoso Bot 1.0.0 and bob has nothing.
pub fn default_seed() -> String {
    seed_with(
        &[
            format!("{{id: {ALICE}, userPrincipalName: alice@contoso.com}}"),
            format!("{{id: {BOB}, userPrincipalName: bob@contoso.com}}"),
            format!(
                "{{id: 22222222-2222-2222-2222-222222222224, userPrincipalName: mallory@contoso.com, blockedApps: [{BOT}]}}"
            ),
        ],
        &[format!(
            "{{user: alice@contoso.com, app: {BOT}, version: \"1.0.0\"}}"
        )],
    )
}

/// The default tenant (its client, Contoso Bot 1.0.0 in its catalog) with these `users` and
/// `installations`, each a YAML flow mapping as the seed's lists take them.
pub fn seed_with(users: &[String], installations: &[String]) -> String {
    let (users, installations) = (users.join(", "), installations.join(", "));
    format!(
        r#"
tenants:
  - id: {TENANT}
    clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]
    users: [{users}]
    apps:
      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
    installations: [{installations}]
"#
    )
}

pub struct Scenario {
    pub client: Client,
    pub namespace: String,
    pub sim: SimServer,
    pub api: Api<TeamsAppInstallation>,
    operator: Option<Operator>,
    http: reqwest::Client,
}

impl Scenario {
    /// Starts the simulator with `seed` and the operator for a fresh namespace.
    pub async fn start(prefix: &str, seed: &str) -> Self {
        Self::start_with(prefix, seed, &[]).await
    }

    pub async fn start_with(prefix: &str, seed: &str, extra_args: &[&str]) -> Self {
        let client = support::client().await;
        let namespace = support::fresh_namespace(&client, prefix).await;
        let seed = Seed::from_yaml_str(seed).expect("test seed parses");
        let sim = SimServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            seed,
            SimOptions::default(),
        )
        .await
        .expect("graph-sim starts");
        let api = Api::namespaced(client.clone(), &namespace);
        let mut scenario = Self {
            client,
            namespace,
            sim,
            api,
            operator: None,
            http: reqwest::Client::new(),
        };
        scenario.start_operator(extra_args);
        scenario
    }

    /// Runs the operator binary against this scenario's namespace and simulator (replacing the
    /// one running, if any).
    pub fn start_operator(&mut self, extra_args: &[&str]) {
        self.stop_operator();
        self.operator = Some(self.spawn_operator("operator", extra_args));
    }

    /// Another operator process for this namespace and simulator, e.g. a second replica.
    /// `name` tells its log file apart.
    pub fn spawn_operator(&self, name: &str, extra_args: &[&str]) -> Operator {
        self.spawn_operator_with_env(name, extra_args, &[])
    }

    /// [`Scenario::spawn_operator`] with extra (or overriding) environment variables.
    pub fn spawn_operator_with_env(
        &self,
        name: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let log = std::env::temp_dir().join(format!("{name}-{}.log", self.namespace));
        let mut command = OperatorCommand::new(log)
            .kubeconfig(&support::kubeconfig_path())
            .graph_sim(&self.sim.base_url(), TENANT, CLIENT_ID, SECRET)
            .args(["--namespace", self.namespace.as_str()]);
        // Test-speed defaults, unless the test sets the flag itself.
        for (flag, value) in [
            ("--min-interval", "1s"),
            ("--min-membership-interval", "1s"),
            ("--default-interval", "3s"),
            ("--verify-interval", "1s"),
            ("--catalog-cache-ttl", "1s"),
            ("--user-snapshot-ttl", "1s"),
        ] {
            if !extra_args.contains(&flag) {
                command = command.args([flag, value]);
            }
        }
        command
            .args(extra_args.iter().copied())
            .envs(env.iter().copied())
            .spawn()
    }

    pub fn stop_operator(&mut self) {
        if let Some(mut operator) = self.operator.take() {
            operator.kill();
        }
    }

    /// The scenario's own operator.
    pub fn operator(&self) -> &Operator {
        self.operator
            .as_ref()
            .expect("the scenario's operator is running")
    }

    pub fn operator_log(&self) -> String {
        self.operator
            .as_ref()
            .map(Operator::log)
            .unwrap_or_default()
    }

    pub async fn create(&self, name: &str, spec: Value) -> TeamsAppInstallation {
        let obj: TeamsAppInstallation = serde_json::from_value(serde_json::json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppInstallation",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("valid TeamsAppInstallation");
        self.api
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"))
    }

    pub async fn get(&self, name: &str) -> TeamsAppInstallation {
        self.api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"))
    }

    pub async fn delete(&self, name: &str) {
        self.api
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }

    pub async fn merge_spec(
        &self,
        name: &str,
        spec: Value,
    ) -> Result<TeamsAppInstallation, kube::Error> {
        self.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": spec})),
            )
            .await
    }

    /// Polls until `check` holds for the resource, or panics with its last state and the
    /// operator's log after `timeout`.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&TeamsAppInstallation) -> bool,
    ) -> TeamsAppInstallation {
        self.wait_for_object(&self.api, name, what, timeout, check)
            .await
    }

    /// [`Scenario::wait_for`] for an object of any kind.
    pub async fn wait_for_object<K>(
        &self,
        api: &Api<K>,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&K) -> bool,
    ) -> K
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        wait::until(api, name, what, timeout, check, &|| self.log_context()).await
    }

    pub async fn wait_for_reason(&self, name: &str, reason: &str) -> TeamsAppInstallation {
        let timeout = Duration::from_secs(60);
        wait::until_reason(&self.api, name, reason, timeout, &|| self.log_context()).await
    }

    pub async fn wait_gone(&self, name: &str) {
        let timeout = Duration::from_secs(60);
        wait::until_gone(&self.api, name, timeout, &|| self.log_context()).await
    }

    /// Polls `probe` until it finds something, or panics after a minute with the operator's log.
    pub async fn until<T>(&self, what: &str, probe: impl AsyncFnMut() -> Option<T>) -> T {
        let timeout = Duration::from_secs(60);
        wait::until_found(what, timeout, probe, &|| self.log_context()).await
    }

    /// Who holds the Lease `tao` the tests' replicas elect a leader with (in the scenario's
    /// namespace).
    pub async fn lease_holder(&self) -> Option<String> {
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
            self.client.clone(),
            &self.namespace,
        )
        .get_opt("tao")
        .await
        .expect("read the Lease")
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty())
    }

    /// Creates `bot-alice` (the bot for alice) and waits until it is Ready.
    pub async fn bot_for_alice_ready(&self, wait: Duration) {
        self.create(
            "bot-alice",
            serde_json::json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
        )
        .await;
        self.wait_for("bot-alice", "Ready", wait, is_ready).await;
    }

    /// What a failed wait prints: the tail of the operator's log.
    pub fn log_context(&self) -> String {
        format!("--- operator log ---\n{}", tail(&self.operator_log(), 60))
    }

    /// Every Graph request the simulator served, in order.
    pub async fn graph_requests(&self) -> Vec<Value> {
        self.sim_get("/_sim/requests").await
    }

    /// A simulator admin `GET`, its JSON answer.
    pub async fn sim_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let url = format!("{}{path}", self.sim.base_url());
        let res = (self.http.get(&url).send().await).unwrap_or_else(|e| panic!("GET {url}: {e}"));
        res.json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not the JSON expected: {e}"))
    }

    /// Graph requests (not token requests) whose method matches and path contains `fragment`.
    pub async fn count_requests(&self, method: &str, fragment: &str) -> usize {
        self.graph_requests()
            .await
            .iter()
            .filter(|r| {
                r["method"].as_str() == Some(method)
                    && r["path"]
                        .as_str()
                        .is_some_and(|p| p.contains(fragment) && !p.contains("/oauth2/"))
            })
            .count()
    }

    /// The HTTP statuses Graph answered, in order, to `method` calls whose path contains
    /// `fragment` and ends with `suffix`.
    pub async fn statuses(&self, method: &str, fragment: &str, suffix: &str) -> Vec<u64> {
        self.graph_requests()
            .await
            .iter()
            .filter(|r| r["method"] == method)
            .filter(|r| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(fragment) && p.ends_with(suffix))
            })
            .filter_map(|r| r["status"].as_u64())
            .collect()
    }

    /// The HTTP statuses Graph answered upgrade calls with, in order.
    pub async fn upgrade_statuses(&self) -> Vec<u64> {
        self.statuses("POST", "", "/upgrade").await
    }

    pub async fn sim_admin(&self, method: reqwest::Method, path: &str, body: Value) {
        let res = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("simulator admin answers");
        assert!(
            res.status().is_success(),
            "sim admin {path}: {}",
            res.status()
        );
    }

    /// The simulator's change-notification subscriptions, as `GET /_sim/subscriptions` lists
    /// them (with `id`, `expirationDateTime`, `tenantId`, `appId`).
    pub async fn subscriptions(&self) -> Vec<Value> {
        self.sim_get("/_sim/subscriptions").await
    }

    pub async fn publish_version(&self, app: &str, version: &str) {
        self.publish_version_requiring(app, version, &[]).await;
    }

    /// Publishes `version` of `app`, requiring the application RSC permissions `application`.
    pub async fn publish_version_requiring(&self, app: &str, version: &str, application: &[&str]) {
        let permissions: Vec<Value> = (application.iter())
            .map(|p| serde_json::json!({"permissionType": "application", "permissionValue": p}))
            .collect();
        self.sim_admin(
            reqwest::Method::POST,
            &format!("/_sim/tenants/{TENANT}/apps/{app}/definitions"),
            serde_json::json!({"version": version, "publishingState": "published",
                               "requiredPermissions": permissions}),
        )
        .await;
    }

    pub async fn set_faults(&self, faults: Value) {
        self.sim_admin(reqwest::Method::PUT, "/_sim/faults", faults)
            .await;
    }

    /// The Events recorded for a resource.
    pub async fn events(&self, name: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
        wait::events_of(&self.client, &self.namespace, name).await
    }

    /// Events recorded for a resource, as (type, reason) pairs.
    pub async fn events_for(&self, name: &str) -> Vec<(String, String)> {
        self.events(name)
            .await
            .into_iter()
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
            .collect()
    }

    /// How many times an Event with `reason` was recorded for a resource, counting the repeats
    /// the recorder folds into one Event's `series`.
    pub async fn event_count(&self, name: &str, reason: &str) -> i32 {
        self.events(name)
            .await
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| e.series.map_or(1, |s| s.count))
            .sum()
    }

    /// Polls the resource until it is Ready, returning every Ready reason seen on the way;
    /// panics if it is ever Stalled.
    pub async fn reasons_until_ready(&self, name: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut seen: Vec<String> = Vec::new();
        loop {
            if let Some(obj) = self.api.get_opt(name).await.ok().flatten() {
                if let Some(stalled) = condition(&obj, "Stalled") {
                    panic!(
                        "{name} stalled: {} {}\n--- operator log ---\n{}",
                        stalled.reason,
                        stalled.message,
                        tail(&self.operator_log(), 60)
                    );
                }
                if let Some(ready) = condition(&obj, "Ready") {
                    if seen.last() != Some(&ready.reason) {
                        seen.push(ready.reason.clone());
                    }
                    if ready.status == "True" {
                        return seen;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} never became Ready; reasons seen: {seen:?}\n--- operator log ---\n{}",
                tail(&self.operator_log(), 60)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_for_event(&self, name: &str, reason: &str) {
        let timeout = Duration::from_secs(30);
        let context = || self.log_context();
        wait::until_event(
            &self.client,
            &self.namespace,
            name,
            reason,
            timeout,
            &context,
        )
        .await
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.stop_operator();
    }
}

pub fn condition<'a>(
    obj: &'a TeamsAppInstallation,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    obj.status
        .as_ref()
        .and_then(|s| conditions::find(&s.conditions, type_))
}

pub fn installed_version(obj: &TeamsAppInstallation) -> Option<String> {
    obj.status
        .as_ref()
        .and_then(|s| s.installed_version.clone())
}

pub fn is_ready(obj: &TeamsAppInstallation) -> bool {
    conditions::is_ready_for_generation(obj)
}

pub fn name_of(obj: &TeamsAppInstallation) -> String {
    obj.name_any()
}
