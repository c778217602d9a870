//! The test world of `subscription_manager.rs`: the simulator with two tenants, the real
//! receiver, a Graph client and a manager with a clock that can be moved ahead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use graph_sim::{Seed, SimOptions, SimServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use teams_app_operator::api::ConnectionKind;
use teams_app_operator::backoff::Backoff;
use teams_app_operator::graph::{CredentialSource, GraphClient, GraphSettings, Secret};
use teams_app_operator::notification::{
    DecryptionKeys, LIFECYCLE_PATH, LifecycleEvent, NOTIFICATION_PATH, Notification,
    NotificationEvent, ReceiverSettings, Receiving, SubscriptionSecrets, serve,
};
use teams_app_operator::subscription::{SubscriptionManager, SubscriptionSettings, Wanted};
use teams_app_operator::tenancy::ConnectionKey;

pub const TENANT: &str = "00000000-0000-0000-0000-000000000001";
pub const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
pub const SECRET: &str = "s3cret";
/// Where the connection moves in one test.
pub const OTHER_TENANT: &str = "00000000-0000-0000-0000-000000000002";
pub const ALICE: &str = "22222222-2222-2222-2222-222222222222";
pub const BOT: &str = "33333333-3333-3333-3333-333333333333";
pub const TABS: &str = "33333333-3333-3333-3333-333333333334";

pub fn seed() -> Seed {
    let app = |id: &str, external: &str| {
        json!({"id": id, "externalId": external, "displayName": external,
               "definitions": [{"version": "1.0.0", "publishingState": "published"}]})
    };
    let doc = json!({"tenants": [{
        "id": TENANT,
        "clients": [{"id": CLIENT, "secret": SECRET}],
        "users": [{"id": ALICE, "userPrincipalName": "alice@contoso.com"}],
        "apps": [app(BOT, "com.contoso.bot"), app(TABS, "com.contoso.tabs")]
    }, {
        "id": OTHER_TENANT,
        "clients": [{"id": CLIENT, "secret": SECRET}],
        "apps": [app(BOT, "com.contoso.bot")]
    }]});
    Seed::from_yaml_str(&doc.to_string()).expect("the test seed is valid")
}

/// The simulator, the receiver, a Graph client and a manager whose clock runs `offset`
/// minutes ahead of the system's.
pub struct World {
    pub sim: SimServer,
    /// The receiver's root URL.
    pub receiver: String,
    pub receiving: Receiving,
    pub secrets: SubscriptionSecrets,
    pub client: GraphClient,
    pub manager: SubscriptionManager,
    pub offset: Arc<AtomicI64>,
    pub http: reqwest::Client,
}

pub async fn world() -> World {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
    let sim = SimServer::start(loopback, seed(), SimOptions::default())
        .await
        .expect("the Graph simulator must start for these tests");
    let secrets = SubscriptionSecrets::new();
    let (addr, receiving) = serve(
        loopback,
        ReceiverSettings::default(),
        secrets.clone(),
        DecryptionKeys::new(),
    )
    .await
    .expect("the receiver must start for these tests");
    let client = client_in(&sim, TENANT);
    let mut settings = SubscriptionSettings::new(
        format!("http://{addr}{NOTIFICATION_PATH}"),
        format!("http://{addr}{LIFECYCLE_PATH}"),
    );
    settings.lifetime = Duration::from_secs(60 * 60);
    // Retried on the very next sync: the tests need no waiting.
    settings.retry = Backoff {
        base: Duration::ZERO,
        max: Duration::ZERO,
    };
    let offset = Arc::new(AtomicI64::new(0));
    let ahead = offset.clone();
    let manager = SubscriptionManager::new(settings, secrets.clone()).with_clock(move || {
        Timestamp::now() + SignedDuration::from_mins(ahead.load(Ordering::SeqCst))
    });
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    World {
        sim,
        receiver: format!("http://{addr}"),
        receiving,
        secrets,
        client,
        manager,
        offset,
        http,
    }
}

pub fn client_in(sim: &SimServer, tenant: &str) -> GraphClient {
    let base = url::Url::parse(&sim.base_url()).expect("simulator base URL");
    let credential = CredentialSource::ClientSecret(Secret::new(SECRET));
    let settings = GraphSettings::new(tenant, CLIENT, credential).with_base_url(base);
    GraphClient::new(settings).expect("client builds")
}

pub fn key() -> ConnectionKey {
    ConnectionKey {
        kind: ConnectionKind::GraphConnection,
        namespace: Some("team-a".into()),
        name: "graph".into(),
    }
}

impl World {
    pub fn wanted(&self, apps: &[&str]) -> Vec<Wanted> {
        apps.iter()
            .map(|app| Wanted {
                key: key(),
                tenant_id: TENANT.into(),
                teams_app_id: app.to_string(),
                client: self.client.clone(),
            })
            .collect()
    }

    /// What the simulator holds, every tenant's: (app id, subscription id, expiry).
    pub async fn held(&self) -> Vec<(String, String, Timestamp)> {
        let all = self.admin_subscriptions().await;
        let mut held: Vec<_> = all
            .iter()
            .map(|s| {
                let text = |f: &str| s[f].as_str().unwrap_or_default().to_string();
                let expiry = text("expirationDateTime").parse().expect("a time");
                (text("appId"), text("id"), expiry)
            })
            .collect();
        held.sort();
        held
    }

    /// `GET /_sim/subscriptions`.
    pub async fn admin_subscriptions(&self) -> Vec<Value> {
        let all: Value = self
            .http
            .get(format!("{}/_sim/subscriptions", self.sim.base_url()))
            .send()
            .await
            .expect("the simulator answers")
            .json()
            .await
            .expect("JSON");
        all.as_array().cloned().expect("a list")
    }

    pub fn id_of(&self, app: &str) -> String {
        let states = self.manager.states();
        let state = states.iter().find(|s| s.teams_app_id == app);
        state.and_then(|s| s.id.clone()).expect("a subscription")
    }

    pub async fn next(&mut self) -> Option<Notification> {
        let next = tokio::time::timeout(Duration::from_secs(10), self.receiving.events.recv());
        next.await.expect("an event within 10 s")
    }

    pub async fn next_lifecycle(&mut self) -> LifecycleEvent {
        match self.next().await {
            Some(Notification::Lifecycle(event)) => event,
            other => panic!("not a lifecycle event: {other:?}"),
        }
    }

    pub async fn next_change(&mut self) -> NotificationEvent {
        match self.next().await {
            Some(Notification::Change(event)) => event,
            other => panic!("not a change: {other:?}"),
        }
    }
}
