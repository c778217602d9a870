//! Change-notification subscriptions on a catalog app's personal-scope installations: the
//! creation rules and the validation handshake, notifications for Graph writes and for
//! out-of-band changes, the drop rate, lifecycle events, early expiry, renewal, deletion, and
//! rich (encrypted) notifications decrypting with the certificate's private key.

mod support;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use serde_json::{Value, json};
use support::receiver::{Handshake, Receiver, receiver};
use support::*;

const BOB: &str = "22222222-2222-2222-2222-222222222223";

fn resource(app: &str) -> String {
    format!("/appCatalogs/teamsApps/{app}/installations?$filter=(scopeInfo/scope eq 'personal')")
}

fn in_minutes(minutes: i64) -> String {
    (Timestamp::now() + SignedDuration::from_mins(minutes)).to_string()
}

/// A create body for TASKS: 30 minutes, every change type.
fn body(url: &str) -> Value {
    json!({
        "changeType": "created,updated,deleted",
        "notificationUrl": url,
        "resource": resource(TASKS),
        "expirationDateTime": in_minutes(30),
        "clientState": "secret-state",
    })
}

async fn subscribe(sim: &Sim, token: &str, body: Value) -> Reply {
    sim.post("/v1.0/subscriptions", token, Some(body)).await
}

/// Subscribes to TASKS at `hook`'s URL; the subscription id.
async fn subscribed(sim: &Sim, token: &str, hook: &Receiver) -> String {
    let reply = subscribe(sim, token, body(&hook.url)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

async fn notifications_log(sim: &Sim) -> Vec<Value> {
    let reply = sim.admin(Method::GET, "/notifications", None).await;
    assert_eq!(reply.status, 200);
    reply.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn creation_rules() {
    let sim = start().await;
    let token = sim.token().await;
    let hook = receiver(Handshake::Echo).await;

    let mut long = body(&hook.url);
    long["expirationDateTime"] = json!(in_minutes(120));
    let reply = subscribe(&sim, &token, long.clone()).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("lifecycleNotificationUrl is a required property"),
        "{}",
        reply.body
    );
    long["expirationDateTime"] = json!(in_minutes(4400));
    long["lifecycleNotificationUrl"] = json!(hook.url);
    assert_eq!(subscribe(&sim, &token, long).await.status, 400);

    let mut other = body(&hook.url);
    other["resource"] = json!("/users/x/teamwork/installedApps");
    let reply = subscribe(&sim, &token, other).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.code(), "InvalidRequest");

    let mut moved = body(&hook.url);
    moved["changeType"] = json!("created,moved");
    assert_eq!(subscribe(&sim, &token, moved).await.status, 400);

    let mut unknown = body(&hook.url);
    unknown["resource"] = json!(resource("99999999-0000-0000-0000-000000000000"));
    assert_eq!(subscribe(&sim, &token, unknown).await.status, 404);

    let catalog_only = token_with_roles(
        &sim,
        "c0c0c0c0-0000-0000-0000-000000000001",
        json!(["AppCatalog.Read.All"]),
    )
    .await;
    let reply = subscribe(&sim, &catalog_only, body(&hook.url)).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let reader = token_with_roles(
        &sim,
        "c0c0c0c0-0000-0000-0000-000000000002",
        json!(["TeamsAppInstallation.ReadForUser.All"]),
    )
    .await;
    assert_eq!(subscribe(&sim, &reader, body(&hook.url)).await.status, 201);

    // Nothing so far but the reader's subscription reached the handshake.
    assert_eq!(hook.validations(), 1);
    let reply = subscribe(&sim, &token, body(&hook.url)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(hook.validations(), 2);
    let s = &reply.body;
    assert_eq!(s["clientState"], "secret-state");
    assert_eq!(s["applicationId"], CLIENT);
    assert_eq!(s["creatorId"], CLIENT);
    assert_eq!(s["changeType"], "created,updated,deleted");
    assert!(uuid::Uuid::parse_str(s["id"].as_str().unwrap()).is_ok());
    assert!(
        s["expirationDateTime"]
            .as_str()
            .unwrap()
            .parse::<Timestamp>()
            .is_ok()
    );

    // URL-encoded as a client's query string would carry it, on beta, with a lifecycle URL:
    // both URLs are validated.
    let mut encoded = body(&hook.url);
    encoded["resource"] = json!(format!(
        "/appCatalogs/teamsApps/{TASKS}/installations?$filter=(scopeInfo%2Fscope%20eq%20%27personal%27)"
    ));
    encoded["lifecycleNotificationUrl"] = json!(hook.url);
    encoded["expirationDateTime"] = json!(in_minutes(4000));
    let reply = sim.post("/beta/subscriptions", &token, Some(encoded)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(hook.validations(), 4);
}

#[tokio::test]
async fn a_failed_handshake_refuses_the_subscription() {
    let sim = start().await;
    let token = sim.token().await;
    for mode in [Handshake::Fail, Handshake::Wrong] {
        let hook = receiver(mode).await;
        let reply = subscribe(&sim, &token, body(&hook.url)).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.code(), "ValidationError");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Subscription validation request failed.")
        );
    }
    // A scripted failure answers before the handshake, as for any Graph call.
    let failures = json!({"failures": [
        {"method": "POST", "pathContains": "/subscriptions", "status": 503, "count": 1}
    ]});
    sim.admin(Method::PUT, "/faults", Some(failures)).await;
    let hook = receiver(Handshake::Echo).await;
    assert_eq!(subscribe(&sim, &token, body(&hook.url)).await.status, 503);
    assert_eq!(hook.validations(), 0);
    let logged = sim.requests().await;
    assert_eq!(logged.last().unwrap()["status"], 503);
    sim.admin(Method::DELETE, "/faults", None).await;

    // Nobody listening at all.
    let reply = subscribe(&sim, &token, body("http://127.0.0.1:9/hook")).await;
    assert_eq!(reply.status, 400);
    let list = sim.get("/v1.0/subscriptions", &token).await;
    assert_eq!(list.body["value"], json!([]));
}

#[tokio::test]
async fn graph_writes_notify_created_updated_deleted() {
    let sim = start().await;
    let token = sim.token().await;
    let hook = receiver(Handshake::Echo).await;
    let id = subscribed(&sim, &token, &hook).await;

    assert_eq!(sim.install(&token, ALICE, TASKS).await.status, 201);
    let items = hook.wait_for(1).await;
    let installation = graph_sim::ids::installation_id(ALICE, TASKS);
    let n = &items[0];
    assert_eq!(n["subscriptionId"], id);
    assert_eq!(n["changeType"], "created");
    assert_eq!(n["clientState"], "secret-state");
    assert_eq!(n["tenantId"], TENANT);
    let expected = format!("appCatalogs/teamsApps('{TASKS}')/installations('{installation}')");
    assert_eq!(n["resource"], expected);
    assert_eq!(
        n["resourceData"],
        json!({
            "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
            "@odata.id": expected,
            "id": installation,
        })
    );
    assert!(n["subscriptionExpirationDateTime"].is_string());
    assert!(n.get("encryptedContent").is_none());

    assert_eq!(sim.publish(TASKS, "2.2.0", "published").await.status, 200);
    let path = format!("/v1.0/users/{ALICE}/teamwork/installedApps/{installation}");
    let upgraded = sim.post(&format!("{path}/upgrade"), &token, None).await;
    assert_eq!(upgraded.status, 204, "{}", upgraded.body);
    let removed = sim.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(removed.status, 204);
    let items = hook.wait_for(3).await;
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| i["changeType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "updated", "deleted"]);

    // Another app's changes are not this subscription's business.
    assert_eq!(sim.install(&token, BOB, BOT).await.status, 201);
    let log = notifications_log(&sim).await;
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(
        log.iter()
            .all(|r| r["outcome"] == "delivered" && r["status"] == 202)
    );
}

#[tokio::test]
async fn out_of_band_changes_notify_and_change_types_filter() {
    let sim = start().await;
    let token = sim.token().await;
    let only_deleted = receiver(Handshake::Echo).await;
    let mut deleted = body(&only_deleted.url);
    deleted["changeType"] = json!("deleted");
    assert_eq!(subscribe(&sim, &token, deleted).await.status, 201);
    let every = receiver(Handshake::Echo).await;
    subscribed(&sim, &token, &every).await;

    let tenant = format!("/tenants/{TENANT}");
    let added = sim
        .admin(
            Method::POST,
            &format!("{tenant}/installations"),
            Some(json!({"user": BOB, "app": TASKS, "version": "2.1.0"})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    sim.publish(TASKS, "2.2.0", "published").await;
    // "Teams updates it" (by UPN and manifest id), then "the user uninstalls"; each twice.
    let upgrade = format!("{tenant}/users/bob@contoso.com/installations/com.contoso.tasks/upgrade");
    let uninstall = format!("{tenant}/users/{BOB}/installations/{TASKS}");
    let steps = [
        (Method::POST, &upgrade, 200),
        (Method::POST, &upgrade, 409),
        (Method::DELETE, &uninstall, 204),
        (Method::DELETE, &uninstall, 404),
    ];
    for (method, path, status) in steps {
        let reply = sim.admin(method, path, None).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        if status == 200 {
            assert_eq!(reply.body["version"], "2.2.0");
        }
    }

    let items = every.wait_for(3).await;
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| i["changeType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "updated", "deleted"]);
    // The deleted-only subscription was served first each time, so it is done too.
    let items = only_deleted.items();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["changeType"], "deleted");
    assert!(sim.installed(&token, BOB, TASKS).await.is_empty());
}

/// Installs `app` for `user` when it is not installed, else uninstalls it.
async fn toggle(sim: &Sim, token: &str, user: &str, app: &str) {
    let reply = if sim.installed(token, user, app).await.is_empty() {
        sim.install(token, user, app).await
    } else {
        let id = graph_sim::ids::installation_id(user, app);
        let path = format!("/v1.0/users/{user}/teamwork/installedApps/{id}");
        sim.call(Method::DELETE, &path, Some(token), None).await
    };
    assert!(reply.status.is_success(), "{}", reply.body);
}

/// Waits (up to 10 s) until the notification log has `n` entries.
async fn log_of(sim: &Sim, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let log = notifications_log(sim).await;
        if log.len() >= n {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} log entries, got {:?}",
        notifications_log(sim).await
    );
}

#[tokio::test]
async fn the_drop_rate_loses_notifications_deterministically() {
    let sim = start().await;
    let faults = json!({"notificationDropRate": 0.5, "notificationDropSeed": 7});
    let mut runs = Vec::new();
    for _ in 0..2 {
        // The same start each time: the seed's installations, one subscription.
        sim.admin(Method::POST, "/reset", None).await;
        let token = sim.token().await;
        let hook = receiver(Handshake::Echo).await;
        subscribed(&sim, &token, &hook).await;
        let put = sim
            .admin(Method::PUT, "/faults", Some(faults.clone()))
            .await;
        assert_eq!(put.status, 204, "{}", put.body);
        for user in [ALICE, BOB, ALICE, BOB, ALICE, BOB, ALICE, BOB] {
            toggle(&sim, &token, user, TASKS).await;
        }
        // A last change with nothing dropped: once it is logged, every earlier one is too.
        sim.admin(Method::PUT, "/faults", Some(json!({}))).await;
        toggle(&sim, &token, ALICE, TASKS).await;
        let log = log_of(&sim, 9).await;
        // Drops are logged when the change happens, deliveries when they are done: compare
        // which changes were dropped, not the log's order.
        let field = |r: &Value, name: &str| r[name].as_str().unwrap_or_default().to_string();
        let mut outcomes: Vec<String> = log
            .iter()
            .map(|r| {
                let (resource, change) = (field(r, "resource"), field(r, "changeType"));
                format!("{resource} {change} {}", field(r, "outcome"))
            })
            .collect();
        outcomes.sort();
        let dropped = outcomes.iter().filter(|o| o.ends_with("dropped")).count();
        assert!((1..8).contains(&dropped), "{outcomes:?}");
        let delivered = hook.wait_for(9 - dropped).await;
        assert_eq!(delivered.len(), 9 - dropped);
        runs.push(outcomes);
    }
    assert_eq!(
        runs[0], runs[1],
        "the same seed drops the same notifications"
    );
}

async fn lifecycle_event(sim: &Sim, id: &str, event: &str) -> Reply {
    let path = format!("/subscriptions/{id}/lifecycle");
    sim.admin(Method::POST, &path, Some(json!({ "event": event })))
        .await
}

#[tokio::test]
async fn lifecycle_events_reach_the_lifecycle_url() {
    let sim = start().await;
    let token = sim.token().await;
    let hook = receiver(Handshake::Echo).await;
    let lifecycle = receiver(Handshake::Echo).await;
    let mut with_lifecycle = body(&hook.url);
    with_lifecycle["lifecycleNotificationUrl"] = json!(lifecycle.url);
    with_lifecycle["expirationDateTime"] = json!(in_minutes(4300));
    let reply = subscribe(&sim, &token, with_lifecycle).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_string();

    for event in ["reauthorizationRequired", "missed"] {
        let sent = lifecycle_event(&sim, &id, event).await;
        assert_eq!(sent.status, 202, "{}", sent.body);
    }
    let items = lifecycle.wait_for(2).await;
    assert_eq!(items[0]["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(items[1]["lifecycleEvent"], "missed");
    assert_eq!(items[0]["subscriptionId"], id);
    assert_eq!(items[0]["clientState"], "secret-state");
    assert_eq!(items[0]["tenantId"], TENANT);
    assert!(
        hook.items().is_empty(),
        "lifecycle events go to the lifecycle URL only"
    );
    let get = sim.get(&format!("/v1.0/subscriptions/{id}"), &token).await;
    assert_eq!(get.status, 200);

    let removed = lifecycle_event(&sim, &id, "subscriptionRemoved").await;
    assert_eq!(removed.status, 202);
    let items = lifecycle.wait_for(3).await;
    assert_eq!(items[2]["lifecycleEvent"], "subscriptionRemoved");
    let get = sim.get(&format!("/v1.0/subscriptions/{id}"), &token).await;
    assert_eq!(get.status, 404);

    // No lifecycle URL, no lifecycle events; bad events are refused.
    let plain = subscribed(&sim, &token, &hook).await;
    let refused = lifecycle_event(&sim, &plain, "missed").await;
    assert_eq!(refused.status, 400);
    let bad = lifecycle_event(&sim, &plain, "exploded").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn expired_subscriptions_stop_notifying() {
    let sim = start().await;
    let token = sim.token().await;
    let hook = receiver(Handshake::Echo).await;
    let lifecycle = receiver(Handshake::Echo).await;
    let mut with_lifecycle = body(&hook.url);
    with_lifecycle["lifecycleNotificationUrl"] = json!(lifecycle.url);
    let id = subscribe(&sim, &token, with_lifecycle).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sentinel = receiver(Handshake::Echo).await;
    subscribed(&sim, &token, &sentinel).await;

    // Queued while alive, delivered after the subscription ended: not sent.
    sim.admin(
        Method::PUT,
        "/faults",
        Some(json!({"notificationDelayMs": 300})),
    )
    .await;
    assert_eq!(sim.install(&token, ALICE, TASKS).await.status, 201);
    let expired = sim
        .admin(Method::POST, &format!("/subscriptions/{id}/expire"), None)
        .await;
    assert_eq!(expired.status, 204);
    sentinel.wait_for(1).await;
    let removed = lifecycle.wait_for(1).await;
    assert_eq!(removed[0]["lifecycleEvent"], "subscriptionRemoved");
    assert!(hook.items().is_empty());
    let log = notifications_log(&sim).await;
    assert!(
        log.iter()
            .any(|r| r["subscriptionId"] == id && r["outcome"] == "removed"),
        "{log:?}"
    );
    let get = sim.get(&format!("/v1.0/subscriptions/{id}"), &token).await;
    assert_eq!(get.status, 404);
    let again = sim
        .admin(Method::POST, &format!("/subscriptions/{id}/expire"), None)
        .await;
    assert_eq!(again.status, 404);

    // A capped lifetime shortens what the client asked for.
    sim.admin(
        Method::PUT,
        "/faults",
        Some(json!({"subscriptionLifetimeCapMinutes": 2})),
    )
    .await;
    let reply = subscribe(&sim, &token, body(&hook.url)).await;
    let expiry: Timestamp = reply.body["expirationDateTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expiry <= Timestamp::now() + SignedDuration::from_mins(2));
}

#[tokio::test]
async fn patch_renews_delete_removes_and_lists_are_per_client() {
    let sim = start().await;
    let token = sim.token().await;
    let hook = receiver(Handshake::Echo).await;
    let id = subscribed(&sim, &token, &hook).await;
    let path = format!("/v1.0/subscriptions/{id}");

    let later = in_minutes(50);
    // Within the rules, past an hour without a lifecycle URL, past 4320 minutes.
    for (expiry, status) in [
        (later.clone(), 200),
        (in_minutes(90), 400),
        (in_minutes(5000), 400),
    ] {
        let change = json!({"expirationDateTime": expiry});
        let reply = sim
            .call(Method::PATCH, &path, Some(&token), Some(change))
            .await;
        assert_eq!(reply.status, status, "{}", reply.body);
    }
    let got = sim.get(&path, &token).await.body["expirationDateTime"].clone();
    let got: Timestamp = got.as_str().unwrap().parse().unwrap();
    assert_eq!(got, later.parse::<Timestamp>().unwrap());
    assert_eq!(hook.validations(), 1, "renewal does not validate again");

    let list = sim.get("/v1.0/subscriptions", &token).await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);
    let other = token_with_roles(
        &sim,
        "c0c0c0c0-0000-0000-0000-000000000003",
        json!(["TeamsAppInstallation.ReadWriteForUser.All"]),
    )
    .await;
    let theirs = sim.get("/v1.0/subscriptions", &other).await;
    assert_eq!(theirs.body["value"], json!([]));
    assert_eq!(sim.get(&path, &other).await.status, 404);

    let deleted = sim.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(sim.get(&path, &token).await.status, 404);
    let sentinel = receiver(Handshake::Echo).await;
    subscribed(&sim, &token, &sentinel).await;
    sim.install(&token, ALICE, TASKS).await;
    sentinel.wait_for(1).await;
    assert!(hook.items().is_empty());

    // Reset: the seed has no subscriptions.
    sim.admin(Method::POST, "/reset", None).await;
    let token = sim.token().await;
    assert_eq!(
        sim.get("/v1.0/subscriptions", &token).await.body["value"],
        json!([])
    );
}

fn certificate_base64() -> String {
    CERT.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[tokio::test]
async fn rich_notifications_decrypt_with_the_private_key() {
    let sim = start().await;
    let token = sim.token().await;
    let hook = receiver(Handshake::Echo).await;
    let mut rich = body(&hook.url);
    rich["includeResourceData"] = json!(true);
    assert_eq!(
        subscribe(&sim, &token, rich.clone()).await.status,
        400,
        "a certificate is required"
    );
    rich["encryptionCertificate"] = json!(certificate_base64());
    rich["encryptionCertificateId"] = json!("operator-cert-1");
    let reply = subscribe(&sim, &token, rich).await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    sim.install(&token, ALICE, TASKS).await;
    let items = hook.wait_for(1).await;
    let content = &items[0]["encryptedContent"];
    assert_eq!(content["encryptionCertificateId"], "operator-cert-1");
    let field = |n: &str| STANDARD.decode(content[n].as_str().unwrap()).unwrap();
    let private = RsaPrivateKey::from_pkcs1_pem(KEY).unwrap();
    let key = private
        .decrypt(Oaep::new::<sha1::Sha1>(), &field("dataKey"))
        .unwrap();
    let data = field("data");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(&data);
    mac.verify_slice(&field("dataSignature"))
        .expect("the signature checks out");
    let plain = cbc::Decryptor::<Aes256>::new_from_slices(&key, &key[..16])
        .unwrap()
        .decrypt_padded_vec_mut::<Pkcs7>(&data)
        .unwrap();
    let installation: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(
        installation["id"],
        graph_sim::ids::installation_id(ALICE, TASKS)
    );
    assert_eq!(installation["scopeInfo"]["scope"], "personal");
    assert_eq!(installation["scopeInfo"]["userId"], ALICE);
    assert_eq!(installation["teamsAppDefinition"]["version"], "2.1.0");
    let log = notifications_log(&sim).await;
    assert_eq!(log[0]["encrypted"], true);
}
