//! The receiver over real HTTP on a loopback port: the handshake, the secrets, the limits and
//! the queue, as Graph (or a forger) meets them.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const SUB: &str = "7ac50e0f-4526-44bc-8e75-834c16143e5d";
const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const APP: &str = "33333333-3333-3333-3333-333333333333";
const STATE: &str = "the-right-state";

async fn start(settings: ReceiverSettings) -> (String, Receiving) {
    let secrets = SubscriptionSecrets::new();
    secrets.insert(SUB, TENANT, ClientState::new(STATE));
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
    let (addr, receiving) = serve(loopback, settings, secrets, DecryptionKeys::new())
        .await
        .expect("the receiver must start for these tests");
    (format!("http://{addr}"), receiving)
}

fn item(client_state: &str, subscription: &str) -> Value {
    json!({
        "subscriptionId": subscription,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "changeType": "created",
        "clientState": client_state,
        "tenantId": TENANT,
        "resource": format!("appCatalogs/teamsApps('{APP}')/installations('aW5zdA==')"),
        "resourceData": {"id": "aW5zdA=="},
    })
}

async fn post(url: &str, body: &Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("the receiver answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn notifications(base: &str) -> String {
    format!("{base}{NOTIFICATION_PATH}")
}

#[tokio::test]
async fn the_handshake_echoes_the_decoded_token() {
    let (base, receiving) = start(ReceiverSettings::default()).await;
    for path in [NOTIFICATION_PATH, LIFECYCLE_PATH] {
        let url = format!("{base}{path}?tenant=x&validationToken=Validation%3A+a%20token+%26+more");
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "text/plain; charset=utf-8")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert_eq!(response.text().await.unwrap(), "Validation: a token & more");
    }
    assert_eq!(receiving.counts.snapshot().validations, 2);
}

#[tokio::test]
async fn the_right_client_state_is_handed_on() {
    let (base, mut receiving) = start(ReceiverSettings::default()).await;
    let (status, _) = post(&notifications(&base), &json!({"value": [item(STATE, SUB)]})).await;
    assert_eq!(status, 202);
    let Some(Notification::Change(event)) = receiving.events.recv().await else {
        panic!("a change event");
    };
    assert_eq!(event.change, ChangeType::Created);
    assert_eq!(event.teams_app_id, APP);
    assert_eq!(event.installation_id, "aW5zdA==");
    assert_eq!(receiving.counts.snapshot().changes, 1);
}

#[tokio::test]
async fn wrong_or_unknown_senders_are_refused_and_counted() {
    let (base, mut receiving) = start(ReceiverSettings::default()).await;
    let url = notifications(&base);
    let wrong = json!({"value": [item("guess", SUB)]});
    assert_eq!(post(&url, &wrong).await.0, 403);
    let unknown = json!({"value": [item(STATE, "11111111-0000-0000-0000-000000000000")]});
    assert_eq!(post(&url, &unknown).await.0, 403);
    // One good, one forged: the good one is taken (Graph must not send it again).
    let mixed = json!({"value": [item("guess", SUB), item(STATE, SUB)]});
    assert_eq!(post(&url, &mixed).await.0, 202);
    let tally = receiving.counts.snapshot();
    assert_eq!(tally.wrong_client_state, 2);
    assert_eq!(tally.unknown_subscription, 1);
    assert_eq!(tally.changes, 1);
    assert!(receiving.events.recv().await.is_some());
    assert!(receiving.events.try_recv().is_err(), "only the good one");
}

#[tokio::test]
async fn unreadable_bodies_are_400_and_wrong_routes_404_405() {
    let (base, receiving) = start(ReceiverSettings::default()).await;
    let client = reqwest::Client::new();
    for body in ["{not json", "[]", r#"{"value": 5}"#, ""] {
        let response = client
            .post(notifications(&base))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    // Authentic but unusable: dropped with 202, since sending it again would not help.
    let mut odd = item(STATE, SUB);
    odd["changeType"] = json!("moved");
    assert_eq!(
        post(&notifications(&base), &json!({"value": [odd]}))
            .await
            .0,
        202
    );
    assert_eq!(receiving.counts.snapshot().malformed, 1);
    let get = client.get(notifications(&base)).send().await.unwrap();
    assert_eq!(get.status(), 405);
    let elsewhere = client.post(format!("{base}/other")).send().await.unwrap();
    assert_eq!(elsewhere.status(), 404);
    assert_eq!(receiving.counts.snapshot().unreadable, 4);
}

/// Sends `head` (and `body`) on a raw connection and reads the answer's status line, without
/// ever sending the rest of the body the head announced.
async fn raw(base: &str, head: &str, body: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The receiver may refuse (and close) before all of this is written.
    let _ = stream.write_all(body).await;
    let mut answer = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer without the rest of the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn too_large_bodies_are_413_without_being_read() {
    let settings = ReceiverSettings {
        body_limit: 1024,
        ..ReceiverSettings::default()
    };
    let (base, receiving) = start(settings).await;
    // 100 MiB announced, 10 bytes sent: the answer comes anyway.
    let head = format!(
        "POST {NOTIFICATION_PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        100 << 20
    );
    let status = raw(&base, &head, b"{\"value\":[").await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // Chunked, no length: refused once past the limit, with the end never sent.
    let head = format!(
        "POST {NOTIFICATION_PATH} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let chunk = [
        format!("{:x}\r\n", 2048).into_bytes(),
        vec![b' '; 2048],
        b"\r\n".to_vec(),
    ]
    .concat();
    let status = raw(&base, &head, &chunk).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(receiving.counts.snapshot().too_large, 2);
}

#[tokio::test]
async fn a_full_queue_is_503_and_nothing_is_half_queued() {
    let settings = ReceiverSettings {
        queue_capacity: 2,
        ..ReceiverSettings::default()
    };
    let (base, mut receiving) = start(settings).await;
    let url = notifications(&base);
    let one = json!({"value": [item(STATE, SUB)]});
    let two = json!({"value": [item(STATE, SUB), item(STATE, SUB)]});
    assert_eq!(post(&url, &one).await.0, 202);
    // One slot left, two items: neither is queued.
    assert_eq!(post(&url, &two).await.0, 503);
    assert_eq!(receiving.counts.snapshot().busy, 1);
    assert!(receiving.events.recv().await.is_some());
    assert!(receiving.events.try_recv().is_err());
    assert_eq!(post(&url, &two).await.0, 202);
    // More than the queue could ever hold.
    let three = json!({"value": [item(STATE, SUB), item(STATE, SUB), item(STATE, SUB)]});
    assert_eq!(post(&url, &three).await.0, 413);
}

#[tokio::test]
async fn lifecycle_events_are_handed_on() {
    let (base, mut receiving) = start(ReceiverSettings::default()).await;
    let event = json!({"value": [{
        "subscriptionId": SUB, "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "tenantId": TENANT, "clientState": STATE, "lifecycleEvent": "missed",
    }]});
    let (status, _) = post(&format!("{base}{LIFECYCLE_PATH}"), &event).await;
    assert_eq!(status, 202);
    assert_eq!(
        receiving.events.recv().await,
        Some(Notification::Lifecycle(LifecycleEvent {
            subscription_id: SUB.into(),
            tenant_id: TENANT.into(),
            kind: LifecycleKind::Missed,
        }))
    );
}
