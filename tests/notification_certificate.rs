//! Rich change notifications (issue 22), end to end: real kube-apiserver and etcd, graph-sim,
//! and the operator binary given `--notification-certificate` — a directory with `tls.crt` and
//! `tls.key`, as a mounted `kubernetes.io/tls` Secret looks, made at test time. Graph (the
//! simulator) then encrypts each notification's resource data for the certificate, and the
//! resource data names the user. The drift check is an hour away, so only a notification can
//! explain a quick correction; every assertion on Graph is on the simulator's logs. And a key
//! that is not the certificate's stops the start with one error.

mod scenario;
mod support;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use graph_sim::InstallationSeed;
use scenario::{
    ALICE, BOB, BOT, CLIENT_ID, OperatorCommand, SECRET, Scenario, TENANT, default_seed,
    installed_version, is_ready,
};
use sha2::{Digest, Sha256};
use support::operator::free_port;
use support::wait::until_found;

const WAIT: Duration = Duration::from_secs(60);

/// A self-signed RSA certificate and its key written as a `kubernetes.io/tls` Secret is
/// mounted (`tls.crt`, `tls.key`); returns the certificate's DER.
fn write_tls_secret(dir: &Path) -> Vec<u8> {
    let key_pem = rsa_key_pem();
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .expect("an rcgen key pair");
    let cert = rcgen::CertificateParams::new(vec!["teams-app-operator-notifications".into()])
        .expect("certificate parameters")
        .self_signed(&pair)
        .expect("a self-signed certificate");
    std::fs::write(dir.join("tls.crt"), cert.pem()).expect("write tls.crt");
    std::fs::write(dir.join("tls.key"), key_pem.as_bytes()).expect("write tls.key");
    cert.der().to_vec()
}

/// A new 2048-bit RSA key, PKCS#8 PEM.
fn rsa_key_pem() -> String {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key");
    let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF);
    pem.expect("PKCS#8 PEM").to_string()
}

/// Graph calls on `user`'s installed apps since the `since`-th request: (method, status).
fn installed_apps_calls(s: &Scenario, user: &str, since: usize) -> Vec<(String, u16)> {
    (s.sim.requests().into_iter().skip(since))
        .filter(|r| r.user.as_deref() == Some(user) && r.path.contains("/teamwork/installedApps"))
        .map(|r| (r.method, r.status))
        .collect()
}

/// Waits for the first change notification of `change_type` logged after the `since`-th, and
/// checks that it carried encrypted resource data and that the receiver accepted it.
async fn delivered_encrypted(s: &Scenario, change_type: &str, since: usize) {
    let what = format!("a {change_type} notification delivered");
    let delivered = s
        .until(&what, async || {
            (s.sim.notifications().into_iter().skip(since))
                .find(|n| n.change_type.as_deref() == Some(change_type) && n.status.is_some())
        })
        .await;
    assert!(
        delivered.encrypted,
        "resource data encrypted: {delivered:?}"
    );
    assert_eq!(delivered.status, Some(202), "the receiver accepted it");
}

#[tokio::test]
async fn rich_notifications_name_the_user_so_one_change_re_reads_that_user_only() {
    let secret = tempfile::tempdir().expect("a directory for the TLS Secret");
    let der = write_tls_secret(secret.path());
    let certificate_id: String = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let port = free_port();
    let (addr, url) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    );
    let certificate = secret.path().to_str().expect("a UTF-8 path");
    let args = [
        "--default-interval",
        "1h",
        "--notification-addr",
        &addr,
        "--notification-url",
        &url,
        "--notification-certificate",
        certificate,
    ];
    let s = Scenario::start_with("richcert", &default_seed(), &args).await;
    // Two users of the app, named by object id (what a rich notification names): alice keeps it,
    // bob must not have it.
    s.create(
        "bot-alice",
        serde_json::json!({"user": ALICE, "app": {"id": BOT}}),
    )
    .await;
    s.create(
        "bot-bob",
        serde_json::json!({"user": BOB, "app": {"id": BOT}, "ensure": "Absent"}),
    )
    .await;
    s.wait_for("bot-alice", "Ready", WAIT, is_ready).await;
    s.wait_for("bot-bob", "Ready", WAIT, is_ready).await;

    // (a) The subscription asks for resource data, encrypted for the certificate, by its
    // thumbprint.
    let subscription = s
        .until("a subscription", async || {
            s.subscriptions().await.into_iter().next()
        })
        .await;
    assert_eq!(subscription["includeResourceData"], true, "{subscription}");
    assert_eq!(
        subscription["encryptionCertificateId"], certificate_id,
        "{subscription}"
    );
    let sent = base64::engine::general_purpose::STANDARD
        .decode(subscription["encryptionCertificate"].as_str().unwrap_or(""))
        .expect("the certificate as base64");
    assert_eq!(sent, der, "the certificate itself, DER");

    // (b, c) Alice removes the app herself; the drift check is an hour away.
    let (requests, notifications) = (s.sim.requests().len(), s.sim.notifications().len());
    s.sim
        .uninstall_for_user(TENANT, ALICE, BOT)
        .expect("uninstall for alice");
    delivered_encrypted(&s, "deleted", notifications).await;
    s.until("alice's app installed again", async || {
        let calls = installed_apps_calls(&s, ALICE, requests);
        calls
            .iter()
            .any(|(m, status)| m == "POST" && *status == 201)
            .then_some(())
    })
    .await;
    let alice = s
        .wait_for("bot-alice", "Ready again", WAIT, |o| {
            is_ready(o) && installed_version(o).is_some()
        })
        .await;
    assert_eq!(installed_version(&alice).as_deref(), Some("1.0.0"));
    // The reinstall's own notification (an echo of the operator's write) arrives too; after it,
    // bob's apps were never read: the notification named alice.
    delivered_encrypted(&s, "created", notifications).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        installed_apps_calls(&s, BOB, requests),
        [],
        "alice's change read bob's apps\n{}",
        s.log_context()
    );

    // Bob installs the app himself: an installation the operator never read, which only the
    // user in the resource data ties to his resource. It is removed again, and alice's apps are
    // not read for it.
    let (requests, notifications) = (s.sim.requests().len(), s.sim.notifications().len());
    s.sim
        .add_installation(
            TENANT,
            InstallationSeed {
                user: BOB.into(),
                app: BOT.into(),
                version: None,
                preinstalled_by_policy: false,
            },
        )
        .expect("bob installs the app");
    delivered_encrypted(&s, "created", notifications).await;
    s.until("bob's installation removed", async || {
        let calls = installed_apps_calls(&s, BOB, requests);
        calls
            .iter()
            .any(|(m, status)| m == "DELETE" && *status == 204)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        installed_apps_calls(&s, ALICE, requests),
        [],
        "bob's change read alice's apps\n{}",
        s.log_context()
    );
    // What the receiver did, on /metrics: the three changes accepted, none undecryptable.
    let metrics = s.operator().metrics().await;
    let count = |labels: &str| {
        let series = format!("teams_app_operator_notifications_received_total{{{labels}}} ");
        (metrics.lines())
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert!(
        count(r#"kind="change",result="accepted""#) >= 3.0,
        "{metrics}"
    );
    assert_eq!(
        count(r#"kind="notification",result="undecryptable""#),
        0.0,
        "{metrics}"
    );
}

/// A key that is not the certificate's (a Secret half updated, say) is one clear start-up
/// error naming the file, before anything reaches out — never a panic, never the key.
#[tokio::test]
async fn a_key_that_is_not_the_certificates_stops_the_start() {
    let secret = tempfile::tempdir().expect("a directory for the TLS Secret");
    write_tls_secret(secret.path());
    let other_key = rsa_key_pem();
    std::fs::write(secret.path().join("tls.key"), &other_key).expect("replace tls.key");
    let certificate = secret.path().to_str().expect("a UTF-8 path");
    let log = secret.path().join("operator.log");
    // Nothing is called: the certificate is checked before Graph or Kubernetes.
    let mut operator = OperatorCommand::new(&log)
        .clean_env()
        .graph_sim("http://127.0.0.1:9", TENANT, CLIENT_ID, SECRET)
        .args([
            "--notification-addr",
            "127.0.0.1:0",
            "--notification-url",
            "https://teams-operator.example.com",
            "--notification-certificate",
            certificate,
        ])
        .spawn();
    let log_file = log.clone();
    let context = move || std::fs::read_to_string(&log_file).unwrap_or_default();
    let status = until_found(
        "the operator to exit",
        WAIT,
        async || operator.exited(),
        &context,
    )
    .await;
    let stderr = operator.log();
    assert!(!status.success(), "{stderr}");
    for expected in [
        "loading --notification-certificate",
        certificate,
        "the private key does not belong to the certificate",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    let key_body = other_key.lines().nth(1).expect("a line of the key");
    assert!(
        !stderr.contains(key_body),
        "the key is in the error:\n{stderr}"
    );
}
