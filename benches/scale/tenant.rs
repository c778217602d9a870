//! The benchmark's tenant: users × apps, each resource missing, lagging one version or current,
//! and the fewest Graph calls of each class that bring them all up to date.

use serde_json::{Value, json};

pub const TENANT: &str = "00000000-0000-0000-0000-000000000001";
pub const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const SECRET: &str = "s3cret";
pub const OLD: &str = "1.0.0";
pub const LATEST: &str = "1.1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Not installed: one install.
    Missing,
    /// At [`OLD`]: one upgrade.
    Lagging,
    /// At [`LATEST`]: nothing to do.
    Current,
}

/// Of every 20 resources (user-major order), 1 is missing and 4 lag: 5% and 20%. With 4 apps a
/// user, 2 users in 5 need a write.
pub fn start(resource: usize) -> Start {
    match resource % 20 {
        0 => Start::Missing,
        1..=4 => Start::Lagging,
        _ => Start::Current,
    }
}

pub fn upn(user: usize) -> String {
    format!("user{user}@contoso.com")
}

/// Catalog app `app`; [`probe_app`] is one more that no user has (the latency probes).
pub fn app_id(app: usize) -> String {
    format!("33333333-3333-3333-3333-{app:012}")
}

pub fn probe_app() -> String {
    app_id(999_999)
}

pub fn resource_name(user: usize, app: usize) -> String {
    format!("u{user}-a{app}")
}

/// The simulator's seed, as JSON: at 50,000 resources it is past the node budget of the
/// simulator's YAML parser.
pub fn seed_json(users: usize, apps: usize) -> String {
    let definitions = json!([
        {"version": OLD, "publishingState": "published"},
        {"version": LATEST, "publishingState": "published"},
    ]);
    let catalog: Vec<Value> = (0..apps)
        .map(app_id)
        .chain([probe_app()])
        .map(|id| {
            json!({"id": id, "externalId": format!("com.contoso.{id}"),
                "displayName": format!("App {id}"), "distributionMethod": "organization",
                "definitions": definitions})
        })
        .collect();
    let people: Vec<Value> = (0..users)
        .map(|u| json!({"id": format!("22222222-2222-2222-2222-{u:012}"), "userPrincipalName": upn(u)}))
        .collect();
    let installations: Vec<Value> = (0..users)
        .flat_map(|u| (0..apps).map(move |a| (u, a)))
        .filter_map(|(u, a)| {
            let version = match start(u * apps + a) {
                Start::Missing => return None,
                Start::Lagging => OLD,
                Start::Current => LATEST,
            };
            Some(json!({"user": upn(u), "app": app_id(a), "version": version}))
        })
        .collect();
    json!({"tenants": [{
        "id": TENANT,
        "clients": [{"id": CLIENT_ID, "secret": SECRET}],
        "apps": catalog,
        "users": people,
        "installations": installations,
    }]})
    .to_string()
}

/// The work to do, and the fewest calls of each class that do it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub resources: usize,
    pub users: usize,
    pub apps: usize,
    pub missing: usize,
    pub lagging: usize,
    pub users_with_writes: usize,
}

impl Plan {
    pub fn new(users: usize, apps: usize) -> Plan {
        let starts = |u: usize| (0..apps).map(move |a| start(u * apps + a));
        let count = |s: Start| (0..users).flat_map(starts).filter(|x| *x == s).count();
        Plan {
            resources: users * apps,
            users,
            apps,
            missing: count(Start::Missing),
            lagging: count(Start::Lagging),
            users_with_writes: (0..users)
                .filter(|u| starts(*u).any(|s| s != Start::Current))
                .count(),
        }
    }

    /// Per class: one list per user plus one verify read per user written for; one catalog read
    /// per app; one install per missing resource; one upgrade (class "other") per lagging one.
    pub fn minimal_calls(&self) -> [(&'static str, usize); 5] {
        [
            ("installedAppsRead", self.users + self.users_with_writes),
            ("catalogRead", self.apps),
            ("install", self.missing),
            ("delete", 0),
            ("other", self.lagging),
        ]
    }
}
