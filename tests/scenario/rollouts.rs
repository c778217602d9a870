//! Rollout worlds: a seeded directory of users and nested groups, the operator flags that lift
//! Graph's pacing, and a handle on the namespace's `TeamsAppRollout`s — shared by the rollout
//! suites.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use teams_app_operator::api::{TeamsAppInstallation, TeamsAppRollout};
use teams_app_operator::kit::conditions;

use super::{BOT, CLIENT_ID, SECRET, Scenario, TENANT};

pub const ALL: &str = "44444444-4444-4444-4444-000000000000";
pub const NESTED_A: &str = "44444444-4444-4444-4444-00000000000a";
pub const NESTED_B: &str = "44444444-4444-4444-4444-00000000000b";
pub const EXCLUDED: &str = "44444444-4444-4444-4444-0000000000ee";
pub const WAVE_LABEL: &str = "teamsapps.dev/wave";

pub fn user_id(i: usize) -> String {
    format!("22222222-2222-2222-2222-{i:012}")
}

pub fn upn(i: usize) -> String {
    format!("user{i}@contoso.com")
}

/// How a seeded user differs from a licensed, enabled member.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Member,
    Guest,
    Disabled,
    Unlicensed,
}

/// `users` users (`kind(i)` each), nobody has the bot; group ALL holds NESTED_A (even users) and
/// NESTED_B (odd users), so every membership is transitive. EXCLUDED holds `excluded` users.
pub fn seed(users: usize, kind: impl Fn(usize) -> Kind, excluded: &[usize]) -> String {
    let mut y = format!(
        "tenants:\n  - id: {TENANT}\n    clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]\n    apps:\n      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot, distributionMethod: organization, definitions: [{{version: \"1.0.0\", publishingState: published}}]}}\n    users:\n"
    );
    for i in 0..users {
        let extra = match kind(i) {
            Kind::Member => "",
            Kind::Guest => ", userType: Guest",
            Kind::Disabled => ", accountEnabled: false",
            Kind::Unlicensed => ", teamsEnabled: false",
        };
        let _ = writeln!(
            y,
            "      - {{id: {}, userPrincipalName: {}{extra}}}",
            user_id(i),
            upn(i)
        );
    }
    let list = |pick: &dyn Fn(usize) -> bool| {
        (0..users)
            .filter(|i| pick(*i))
            .map(user_id)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let excluded_ids = excluded.iter().map(|i| user_id(*i)).collect::<Vec<_>>();
    let _ = write!(
        y,
        "    groups:\n      - {{id: {ALL}, members: [{NESTED_A}, {NESTED_B}]}}\n      - {{id: {NESTED_A}, members: [{}]}}\n      - {{id: {NESTED_B}, members: [{}]}}\n      - {{id: {EXCLUDED}, members: [{}]}}\n",
        list(&|i| i % 2 == 0),
        list(&|i| i % 2 == 1),
        excluded_ids.join(", ")
    );
    y
}

/// The operator with Graph's budgets lifted (the simulator answers as fast as it can) and a
/// slow drift interval: these tests are about rollouts, not pacing.
pub const FAST: [&str; 10] = [
    "--graph-read-rps",
    "0",
    "--graph-write-rps",
    "0",
    "--graph-directory-rps",
    "0",
    "--default-interval",
    "10m",
    "--concurrency",
    "32",
];

pub struct Rollouts<'a> {
    pub s: &'a Scenario,
    pub api: Api<TeamsAppRollout>,
}

impl<'a> Rollouts<'a> {
    pub fn new(s: &'a Scenario) -> Self {
        Self {
            s,
            api: Api::namespaced(s.client.clone(), &s.namespace),
        }
    }

    pub async fn create(&self, name: &str, spec: Value) {
        let obj: TeamsAppRollout = serde_json::from_value(json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppRollout",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("rollout parses");
        self.api
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create rollout {name}: {e}"));
    }

    pub async fn get(&self, name: &str) -> TeamsAppRollout {
        self.api.get(name).await.expect("get rollout")
    }

    /// A membership change in the simulator's directory (`method` on a group's members).
    pub async fn members(
        &self,
        method: reqwest::Method,
        group: &str,
        member: Option<&str>,
        body: Value,
    ) {
        let path = match member {
            Some(id) => format!("/_sim/tenants/{TENANT}/groups/{group}/members/{id}"),
            None => format!("/_sim/tenants/{TENANT}/groups/{group}/members"),
        };
        self.s.sim_admin(method, &path, body).await;
    }

    pub async fn merge_spec(&self, name: &str, spec: Value) {
        self.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .expect("patch rollout");
    }

    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&TeamsAppRollout) -> bool,
    ) -> TeamsAppRollout {
        self.s
            .wait_for_object(&self.api, name, what, timeout, check)
            .await
    }

    pub async fn wait_for_reason(
        &self,
        name: &str,
        reason: &str,
        timeout: Duration,
    ) -> TeamsAppRollout {
        self.wait_for(name, reason, timeout, |r| {
            ready(r).is_some_and(|c| c.reason == reason) && current(r)
        })
        .await
    }

    /// The installations, by wave label.
    pub async fn children_by_wave(&self) -> BTreeMap<String, usize> {
        let mut waves = BTreeMap::new();
        for child in self.children().await {
            let wave = child.labels().get(WAVE_LABEL).cloned().unwrap_or_default();
            *waves.entry(wave).or_insert(0) += 1;
        }
        waves
    }

    pub async fn children(&self) -> Vec<TeamsAppInstallation> {
        self.s
            .api
            .list(&ListParams::default())
            .await
            .expect("list installations")
            .items
    }
}

pub fn ready(
    r: &TeamsAppRollout,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    r.status
        .as_ref()
        .and_then(|s| conditions::find(&s.conditions, conditions::READY))
}

pub fn current(r: &TeamsAppRollout) -> bool {
    r.status
        .as_ref()
        .is_some_and(|s| s.observed_generation == r.metadata.generation)
}

/// kstatus's reading of a resource with standard conditions (sigs.k8s.io/cli-utils kstatus).
pub fn kstatus(r: &TeamsAppRollout) -> &'static str {
    let Some(status) = &r.status else {
        return "InProgress";
    };
    if status.observed_generation != r.metadata.generation {
        return "InProgress";
    }
    if conditions::is_true(&status.conditions, conditions::STALLED) {
        "Failed"
    } else if conditions::is_true(&status.conditions, conditions::RECONCILING) {
        "InProgress"
    } else if conditions::is_true(&status.conditions, conditions::READY) {
        "Current"
    } else {
        "InProgress"
    }
}

pub fn wave_status(r: &TeamsAppRollout, wave: &str) -> teams_app_operator::api::WaveStatus {
    r.status
        .as_ref()
        .and_then(|s| s.waves.iter().find(|w| w.name == wave).cloned())
        .unwrap_or_else(|| panic!("no status for wave {wave}"))
}
