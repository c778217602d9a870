//! The subscription manager against the Graph simulator and the real notification receiver,
//! in process: subscriptions are created (through the validation handshake), kept, renewed,
//! recreated after Graph removes them, deleted when no longer wanted, and a refused create is
//! reported and retried. No Kubernetes API server is involved.
//!
//! A simulator or receiver that cannot start fails the test; nothing here is skipped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use graph_sim::{FaultConfig, Seed, SimOptions, SimServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use teams_app_operator::api::ConnectionKind;
use teams_app_operator::backoff::Backoff;
use teams_app_operator::graph::{CredentialSource, GraphClient, GraphSettings, Secret};
use teams_app_operator::notification::{
    DecryptionKeys, LIFECYCLE_PATH, LifecycleEvent, LifecycleKind, NOTIFICATION_PATH, Notification,
    NotificationEvent, ReceiverSettings, Receiving, SubscriptionSecrets, serve,
};
use teams_app_operator::subscription::{Health, SubscriptionManager, SubscriptionSettings, Wanted};
use teams_app_operator::tenancy::ConnectionKey;

const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "s3cret";
/// Where the connection moves in one test.
const OTHER_TENANT: &str = "00000000-0000-0000-0000-000000000002";
const ALICE: &str = "22222222-2222-2222-2222-222222222222";
const BOT: &str = "33333333-3333-3333-3333-333333333333";
const TABS: &str = "33333333-3333-3333-3333-333333333334";

fn seed() -> Seed {
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
struct World {
    sim: SimServer,
    /// The receiver's root URL.
    receiver: String,
    receiving: Receiving,
    secrets: SubscriptionSecrets,
    client: GraphClient,
    manager: SubscriptionManager,
    offset: Arc<AtomicI64>,
    http: reqwest::Client,
}

async fn world() -> World {
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

fn client_in(sim: &SimServer, tenant: &str) -> GraphClient {
    let base = url::Url::parse(&sim.base_url()).expect("simulator base URL");
    let credential = CredentialSource::ClientSecret(Secret::new(SECRET));
    let settings = GraphSettings::new(tenant, CLIENT, credential).with_base_url(base);
    GraphClient::new(settings).expect("client builds")
}

fn key() -> ConnectionKey {
    ConnectionKey {
        kind: ConnectionKind::GraphConnection,
        namespace: Some("team-a".into()),
        name: "graph".into(),
    }
}

impl World {
    fn wanted(&self, apps: &[&str]) -> Vec<Wanted> {
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
    async fn held(&self) -> Vec<(String, String, Timestamp)> {
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
    async fn admin_subscriptions(&self) -> Vec<Value> {
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

    fn id_of(&self, app: &str) -> String {
        let states = self.manager.states();
        let state = states.iter().find(|s| s.teams_app_id == app);
        state.and_then(|s| s.id.clone()).expect("a subscription")
    }

    async fn next(&mut self) -> Option<Notification> {
        let next = tokio::time::timeout(Duration::from_secs(10), self.receiving.events.recv());
        next.await.expect("an event within 10 s")
    }

    async fn next_lifecycle(&mut self) -> LifecycleEvent {
        match self.next().await {
            Some(Notification::Lifecycle(event)) => event,
            other => panic!("not a lifecycle event: {other:?}"),
        }
    }

    async fn next_change(&mut self) -> NotificationEvent {
        match self.next().await {
            Some(Notification::Change(event)) => event,
            other => panic!("not a change: {other:?}"),
        }
    }
}

#[tokio::test]
async fn subscriptions_are_created_kept_renewed_and_deleted() {
    let mut w = world().await;
    w.manager.sync(w.wanted(&[BOT, TABS])).await;
    let held = w.held().await;
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!((held[0].0.as_str(), held[1].0.as_str()), (BOT, TABS));
    // Both URLs of both subscriptions passed the handshake through the real receiver.
    assert_eq!(w.receiving.counts.snapshot().validations, 4);
    assert_eq!(w.secrets.len(), 2);
    assert!(w.manager.all_healthy_for(&key(), BOT) && w.manager.all_healthy_for(&key(), TABS));
    let bot = w.id_of(BOT);
    assert_eq!(w.manager.covering(&bot), Some((key(), BOT.to_string())));

    // The secret Graph holds is the one the receiver checks: an install is accepted.
    w.client.install(ALICE, BOT, None).await.expect("installed");
    let change = w.next_change().await;
    assert_eq!(change.subscription_id, bot);
    w.manager.note_notification(&change.subscription_id);
    let noted = w.manager.states();
    let noted = noted.iter().find(|s| s.teams_app_id == BOT).expect("BOT");
    assert!(noted.last_notification.is_some());

    w.manager.sync(w.wanted(&[BOT, TABS])).await;
    assert_eq!(w.held().await, held, "a second sync changes nothing");
    assert_eq!(w.receiving.counts.snapshot().validations, 4);

    // 41 of 60 minutes gone: less than a third left, so both are renewed (same ids).
    w.offset.store(41, Ordering::SeqCst);
    w.manager.sync(w.wanted(&[BOT, TABS])).await;
    let renewed = w.held().await;
    for (before, after) in held.iter().zip(&renewed) {
        assert_eq!(before.1, after.1);
        assert!(
            after.2 >= before.2 + SignedDuration::from_mins(40),
            "{before:?} → {after:?}"
        );
    }

    w.manager.sync(w.wanted(&[BOT])).await;
    let left = w.held().await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1, bot);
    assert_eq!(w.secrets.len(), 1);
    assert_eq!(w.manager.covering(&renewed[1].1), None);
    assert_eq!(w.manager.states().len(), 1);
}

#[tokio::test]
async fn lifecycle_events_renew_recreate_and_ask_for_a_recheck() {
    let mut w = world().await;
    w.manager.sync(w.wanted(&[BOT])).await;
    let first = w.id_of(BOT);
    let before = w.held().await[0].2;

    w.offset.store(5, Ordering::SeqCst);
    w.sim
        .send_lifecycle(&first, graph_sim::LifecycleEvent::ReauthorizationRequired)
        .expect("sent");
    let event = w.next_lifecycle().await;
    assert_eq!(event.kind, LifecycleKind::ReauthorizationRequired);
    assert_eq!(w.manager.on_lifecycle(&event).await, None);
    assert!(w.held().await[0].2 >= before + SignedDuration::from_mins(4));

    w.sim
        .send_lifecycle(&first, graph_sim::LifecycleEvent::Missed)
        .expect("sent");
    let event = w.next_lifecycle().await;
    let recheck = Some((key(), BOT.to_string()));
    assert_eq!(w.manager.on_lifecycle(&event).await, recheck);
    assert_eq!(w.id_of(BOT), first, "missed changes no subscription");

    let admin = format!("{}/_sim/subscriptions/{first}/lifecycle", w.sim.base_url());
    let sent = w
        .http
        .post(admin)
        .json(&json!({"event": "subscriptionRemoved"}));
    assert_eq!(sent.send().await.expect("admin").status().as_u16(), 202);
    let event = w.next_lifecycle().await;
    assert_eq!(event.kind, LifecycleKind::SubscriptionRemoved);
    assert_eq!(w.manager.on_lifecycle(&event).await, recheck);
    let held = w.held().await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_ne!(held[0].1, first, "a new subscription");
    assert_eq!(w.id_of(BOT), held[0].1);
    assert_eq!(w.secrets.len(), 1, "the removed one's secret is gone");
    assert_eq!(w.manager.covering(&first), None);
    assert!(w.manager.all_healthy_for(&key(), BOT));
}

#[tokio::test]
async fn a_refused_create_is_failing_then_retried() {
    let w = world().await;
    let refusal: FaultConfig = serde_json::from_value(json!({"failures": [{
        "method": "POST", "pathContains": "/subscriptions", "status": 403,
        "code": "Forbidden", "message": "Missing role permissions on the request."
    }]}))
    .expect("a fault script");
    w.sim.set_faults(refusal).expect("faults set");

    w.manager.sync(w.wanted(&[BOT])).await;
    assert_eq!(w.held().await, vec![]);
    let states = w.manager.states();
    match &states[..] {
        [state] => match &state.health {
            Health::Failing { message, .. } => {
                assert!(message.contains("Missing role permissions"), "{message}");
                assert!(message.starts_with("creating the Graph subscription failed"));
            }
            other => panic!("not failing: {other:?}"),
        },
        other => panic!("one state expected: {other:?}"),
    }
    assert!(!w.manager.all_healthy_for(&key(), BOT));
    assert!(w.secrets.is_empty());

    w.manager.sync(w.wanted(&[BOT])).await;
    assert_eq!(w.held().await.len(), 1);
    assert!(w.manager.all_healthy_for(&key(), BOT));
}

#[tokio::test]
async fn a_renewal_graph_answers_404_creates_a_new_subscription() {
    let w = world().await;
    w.manager.sync(w.wanted(&[BOT])).await;
    let first = w.id_of(BOT);
    // Gone behind the manager's back (deleting twice is no error).
    w.client.delete_subscription(&first).await.expect("deleted");
    w.client
        .delete_subscription(&first)
        .await
        .expect("already gone");

    w.offset.store(41, Ordering::SeqCst);
    w.manager.sync(w.wanted(&[BOT])).await;
    let held = w.held().await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_ne!(held[0].1, first);
    assert_eq!(w.id_of(BOT), held[0].1);
    assert_eq!(w.secrets.len(), 1);
    assert!(w.manager.all_healthy_for(&key(), BOT));
}

#[tokio::test]
async fn a_failed_handshake_is_reported_and_nothing_is_held() {
    let w = world().await;
    let settings = SubscriptionSettings::new(
        format!("{}/not-the-receiver", w.receiver),
        format!("{}{LIFECYCLE_PATH}", w.receiver),
    );
    let manager = SubscriptionManager::new(settings, w.secrets.clone());
    manager.sync(w.wanted(&[BOT])).await;
    assert_eq!(w.held().await, vec![]);
    let states = manager.states();
    let health = states.first().map(|s| s.health.clone());
    assert!(
        matches!(&health, Some(Health::Failing { message, .. })
            if message.contains("Subscription validation request failed")),
        "{health:?}"
    );
    assert!(w.secrets.is_empty(), "no secret left behind");
}

#[tokio::test]
async fn a_connection_moved_to_another_tenant_subscribes_there() {
    let w = world().await;
    w.manager.sync(w.wanted(&[BOT])).await;
    let first = w.id_of(BOT);
    let moved = vec![Wanted {
        key: key(),
        tenant_id: OTHER_TENANT.into(),
        teams_app_id: BOT.into(),
        client: client_in(&w.sim, OTHER_TENANT),
    }];
    w.manager.sync(moved).await;
    let all = w.admin_subscriptions().await;
    assert_eq!(all.len(), 1, "the first tenant's is deleted: {all:?}");
    assert_eq!(all[0]["tenantId"], OTHER_TENANT);
    assert_ne!(all[0]["id"], first.as_str());
    assert_eq!(w.id_of(BOT), all[0]["id"].as_str().unwrap_or_default());
    assert_eq!(w.secrets.len(), 1);
    assert!(w.manager.all_healthy_for(&key(), BOT));
}
