//! The notification receiver against the Graph simulator, in process: a subscription created
//! through the simulator's Graph API passes the validation handshake, and installs, upgrades,
//! uninstalls and lifecycle events reach the operator as typed events — with the user, decrypted,
//! when the subscription asks for resource data. No Kubernetes API server is involved.
//!
//! A simulator or receiver that cannot start fails the test; nothing here is skipped.

use std::net::SocketAddr;
use std::time::Duration;

use graph_sim::{DefinitionSeed, NotificationRecord, Seed, SimOptions, SimServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use teams_app_operator::notification::{
    ChangeType, ClientState, DecryptionKeys, LIFECYCLE_PATH, LifecycleEvent, LifecycleKind,
    NOTIFICATION_PATH, Notification, NotificationEvent, ReceiverSettings, Receiving,
    SubscriptionSecrets, generate_client_state, serve,
};

const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "s3cret";
const ALICE: &str = "22222222-2222-2222-2222-222222222222";
const BOB: &str = "22222222-2222-2222-2222-222222222223";
const BOT: &str = "33333333-3333-3333-3333-333333333333";
/// The simulator's test certificate and its key: Graph is handed the certificate, the
/// receiver the key.
const CERT_PEM: &str = include_str!("../graph-sim/src/testdata/client-cert.pem");
const KEY_PEM: &str = include_str!("../graph-sim/src/testdata/client-key.pem");

fn seed() -> Seed {
    let doc = json!({"tenants": [{
        "id": TENANT,
        "clients": [{"id": CLIENT, "secret": SECRET}],
        "users": [
            {"id": ALICE, "userPrincipalName": "alice@contoso.com"},
            {"id": BOB, "userPrincipalName": "bob@contoso.com"}
        ],
        "apps": [
            {"id": BOT, "externalId": "com.contoso.bot", "displayName": "Contoso Bot",
             "definitions": [{"version": "1.0.0", "publishingState": "published"}]}
        ]
    }]});
    Seed::from_yaml_str(&doc.to_string()).expect("the test seed is valid")
}

/// The simulator, the receiver (with `secrets` and `keys`) and a Graph token.
struct World {
    sim: SimServer,
    receiver: String,
    receiving: Receiving,
    secrets: SubscriptionSecrets,
    token: String,
    http: reqwest::Client,
}

async fn world(keys: DecryptionKeys) -> World {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
    let sim = SimServer::start(loopback, seed(), SimOptions::default())
        .await
        .expect("the Graph simulator must start for these tests");
    let secrets = SubscriptionSecrets::new();
    let (addr, receiving) = serve(loopback, ReceiverSettings::default(), secrets.clone(), keys)
        .await
        .expect("the receiver must start for these tests");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let token: Value = http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    let token = token["access_token"].as_str().expect("a token").to_string();
    World {
        sim,
        receiver: format!("http://{addr}"),
        receiving,
        secrets,
        token,
        http,
    }
}

impl World {
    async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/v1.0{path}", self.sim.base_url()))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the simulator answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A subscription on BOT's personal-scope installations, with `extra` fields; its id, once
    /// Graph said 201 (after the handshake).
    async fn subscribe(&self, client_state: &ClientState, extra: Value) -> String {
        let mut body = json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": format!("{}{NOTIFICATION_PATH}", self.receiver),
            "lifecycleNotificationUrl": format!("{}{LIFECYCLE_PATH}", self.receiver),
            "resource": format!(
                "/appCatalogs/teamsApps/{BOT}/installations?$filter=(scopeInfo/scope eq 'personal')"
            ),
            "expirationDateTime": (Timestamp::now() + SignedDuration::from_mins(120)).to_string(),
            "clientState": client_state.expose(),
        });
        if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), extra) {
            map.extend(extra);
        }
        let (status, reply) = self
            .graph(reqwest::Method::POST, "/subscriptions", Some(body))
            .await;
        assert_eq!(status, 201, "{reply}");
        reply["id"].as_str().expect("a subscription id").to_string()
    }

    async fn install(&self, user: &str) {
        let bind = json!({"teamsApp@odata.bind":
            format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}")});
        let path = format!("/users/{user}/teamwork/installedApps");
        let (status, reply) = self.graph(reqwest::Method::POST, &path, Some(bind)).await;
        assert_eq!(status, 201, "{reply}");
    }

    async fn next(&mut self) -> Notification {
        tokio::time::timeout(Duration::from_secs(10), self.receiving.events.recv())
            .await
            .expect("an event within 10 s")
            .expect("the receiver is running")
    }

    async fn next_change(&mut self) -> NotificationEvent {
        match self.next().await {
            Notification::Change(event) => event,
            other => panic!("not a change: {other:?}"),
        }
    }

    /// Waits (up to 10 s) for `n` entries in the simulator's delivery log.
    async fn delivered(&self, n: usize) -> Vec<NotificationRecord> {
        for _ in 0..200 {
            let log = self.sim.notifications();
            if log.len() >= n {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} deliveries: {:?}", self.sim.notifications());
    }
}

#[tokio::test]
async fn installs_upgrades_uninstalls_and_lifecycle_events_arrive_typed() {
    let mut w = world(DecryptionKeys::new()).await;
    let state = generate_client_state();
    let id = w.subscribe(&state, json!({})).await;
    w.secrets.insert(&id, TENANT, state);

    w.install(ALICE).await;
    let event = w.next_change().await;
    let installation = graph_sim::ids::installation_id(ALICE, BOT);
    assert_eq!(
        event,
        NotificationEvent {
            subscription_id: id.clone(),
            tenant_id: TENANT.into(),
            change: ChangeType::Created,
            resource: format!("appCatalogs/teamsApps('{BOT}')/installations('{installation}')"),
            installation_id: installation.clone(),
            teams_app_id: BOT.into(),
            user_id: None,
        }
    );

    let newer: DefinitionSeed =
        serde_json::from_value(json!({"version": "1.1.0", "publishingState": "published"}))
            .expect("a definition");
    w.sim.add_definition(TENANT, BOT, newer).expect("published");
    w.sim
        .upgrade_for_user(TENANT, ALICE, BOT)
        .expect("upgraded");
    let upgraded = w.next_change().await;
    assert_eq!(
        (upgraded.change, upgraded.installation_id),
        (ChangeType::Updated, installation.clone())
    );
    w.sim
        .uninstall_for_user(TENANT, ALICE, BOT)
        .expect("uninstalled");
    let removed = w.next_change().await;
    assert_eq!(
        (removed.change, removed.installation_id),
        (ChangeType::Deleted, installation)
    );

    w.sim
        .send_lifecycle(&id, graph_sim::LifecycleEvent::ReauthorizationRequired)
        .expect("sent");
    assert_eq!(
        w.next().await,
        Notification::Lifecycle(LifecycleEvent {
            subscription_id: id.clone(),
            tenant_id: TENANT.into(),
            kind: LifecycleKind::ReauthorizationRequired,
        })
    );
    let log = w.delivered(4).await;
    assert!(
        log.iter()
            .all(|r| r.outcome == "delivered" && r.status == Some(202)),
        "{log:?}"
    );
    // The handshakes of both URLs, once.
    assert_eq!(w.receiving.counts.snapshot().validations, 2);
}

#[tokio::test]
async fn a_handshake_to_the_wrong_place_fails_the_subscription() {
    let w = world(DecryptionKeys::new()).await;
    let body = json!({
        "changeType": "created",
        "notificationUrl": format!("{}/somewhere-else", w.receiver),
        "resource": format!("/appCatalogs/teamsApps/{BOT}/installations?$filter=(scopeInfo/scope eq 'personal')"),
        "expirationDateTime": (Timestamp::now() + SignedDuration::from_mins(30)).to_string(),
        "clientState": generate_client_state().expose(),
    });
    let (status, reply) = w
        .graph(reqwest::Method::POST, "/subscriptions", Some(body))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "ValidationError");
}

#[tokio::test]
async fn a_secret_the_operator_does_not_hold_is_refused() {
    let mut w = world(DecryptionKeys::new()).await;
    let graphs = generate_client_state();
    let id = w.subscribe(&graphs, json!({})).await;
    // What the operator holds for the subscription is not what Graph was given.
    w.secrets.insert(&id, TENANT, generate_client_state());

    w.install(BOB).await;
    let log = w.delivered(1).await;
    assert_eq!(
        (log[0].outcome.as_str(), log[0].status),
        ("rejected", Some(403))
    );
    assert_eq!(w.receiving.counts.snapshot().wrong_client_state, 1);
    assert!(w.receiving.events.try_recv().is_err(), "nothing handed on");
}

#[tokio::test]
async fn rich_notifications_name_the_user() {
    let keys = DecryptionKeys::new();
    keys.insert_pem("cert-1", KEY_PEM).expect("the test key");
    let mut w = world(keys).await;
    let certificate: String = CERT_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let state = generate_client_state();
    let rich = json!({
        "includeResourceData": true,
        "encryptionCertificate": certificate,
        "encryptionCertificateId": "cert-1",
    });
    let id = w.subscribe(&state, rich).await;
    w.secrets.insert(&id, TENANT, state);

    w.install(BOB).await;
    let event = w.next_change().await;
    assert_eq!(event.change, ChangeType::Created);
    assert_eq!(
        event.installation_id,
        graph_sim::ids::installation_id(BOB, BOT)
    );
    assert_eq!(event.user_id.as_deref(), Some(BOB));
    let log = w.delivered(1).await;
    assert!(log[0].encrypted, "{log:?}");
    let tally = w.receiving.counts.snapshot();
    assert_eq!((tally.changes, tally.without_key), (1, 0));
}
