//! The Graph client against the in-process simulator: every operation, every error class, and
//! the retry and throttling behaviour the contract asks for. The simulator's request log is the
//! witness of which calls went out, in which order and when.
//!
//! A simulator that cannot start fails the test; nothing here is skipped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graph_sim::{DefinitionSeed, FaultConfig, RequestRecord, Seed, SimOptions, SimServer};
use serde_json::{Value, json};
use teams_app_operator::graph::{
    AppRef, Backoff, BatchRequest, CallClass, Cloud, CredentialSource, ErrorClass, GraphClient,
    GraphConfigError, GraphError, GraphMetrics, GraphSettings, InstallOutcome, Operation,
    PublishingState, Secret, UninstallOutcome,
};
use teams_app_operator::version::AppVersion;

const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const CERT_CLIENT: &str = "55555555-5555-5555-5555-555555555555";
const WI_CLIENT: &str = "66666666-6666-6666-6666-666666666666";
const SECRET: &str = "s3cret";
const ALICE: &str = "alice@contoso.com";
const BOB: &str = "bob@contoso.com";
const BOT: &str = "33333333-3333-3333-3333-333333333333";
const BOT_MANIFEST: &str = "com.contoso.bot";
const TOOL: &str = "44444444-4444-4444-4444-444444444444";
const WIKI: &str = "77777777-7777-7777-7777-777777777777";
const SA_ISSUER: &str = "https://kubernetes.default.svc";
const SA_SUBJECT: &str = "system:serviceaccount:teams:operator";

fn seed(certificate_pem: Option<&str>, page_size: Option<usize>) -> Seed {
    let mut clients = vec![json!({"id": CLIENT, "secret": SECRET})];
    if let Some(pem) = certificate_pem {
        clients.push(json!({"id": CERT_CLIENT, "certificate": pem}));
    }
    clients.push(json!({"id": WI_CLIENT, "federatedCredentials": [
        {"issuer": SA_ISSUER, "subject": SA_SUBJECT}
    ]}));
    let mut doc = json!({"tenants": [{
        "id": TENANT,
        "clients": clients,
        "users": [
            {"id": "22222222-2222-2222-2222-222222222222", "userPrincipalName": ALICE},
            {"id": "22222222-2222-2222-2222-222222222223", "userPrincipalName": BOB,
             "blockedApps": [TOOL]}
        ],
        "apps": [
            {"id": BOT, "externalId": BOT_MANIFEST, "displayName": "Contoso Bot",
             "distributionMethod": "organization",
             "definitions": [{"version": "1.0.0", "publishingState": "published"}]},
            {"id": TOOL, "externalId": "com.contoso.tool", "displayName": "Contoso Tool",
             "definitions": [{"version": "0.9", "publishingState": "published"}]},
            {"id": WIKI, "displayName": "Wiki", "distributionMethod": "store",
             "definitions": [{"version": "2.0.0", "publishingState": "published"}]}
        ],
        "installations": [
            {"user": ALICE, "app": BOT, "version": "1.0.0"},
            {"user": ALICE, "app": WIKI}
        ]
    }]});
    if let Some(size) = page_size {
        doc["pageSize"] = json!(size);
    }
    // JSON is YAML: the seed goes through the same parser as a seed file.
    Seed::from_yaml_str(&doc.to_string()).expect("the test seed is valid")
}

async fn start_sim(seed: Seed, options: SimOptions) -> SimServer {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
    SimServer::start(listen, seed, options)
        .await
        .expect("the Graph simulator must start for these tests")
}

fn settings_for(sim: &SimServer, client_id: &str, credential: CredentialSource) -> GraphSettings {
    let base = url::Url::parse(&sim.base_url()).expect("simulator base URL");
    let mut settings = GraphSettings::new(TENANT, client_id, credential).with_base_url(base);
    // Short backoff keeps the retry tests quick; Retry-After still decides throttling waits.
    settings.backoff = Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    settings
}

fn secret_settings(sim: &SimServer) -> GraphSettings {
    settings_for(
        sim,
        CLIENT,
        CredentialSource::ClientSecret(Secret::new(SECRET)),
    )
}

async fn setup() -> (SimServer, GraphClient) {
    let sim = start_sim(seed(None, None), SimOptions::default()).await;
    let client = GraphClient::new(secret_settings(&sim)).expect("client builds");
    (sim, client)
}

fn graph_calls(sim: &SimServer, path_part: &str) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.contains(path_part))
        .collect()
}

fn statuses(records: &[RequestRecord]) -> Vec<u16> {
    records.iter().map(|r| r.status).collect()
}

fn token_requests(sim: &SimServer) -> Vec<RequestRecord> {
    graph_calls(sim, "/oauth2/v2.0/token")
}

/// Waits (up to 10 s) until the simulator has answered `n` token requests: a refresh runs in the
/// background, after the call that started it has returned.
async fn wait_for_token_requests(sim: &SimServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while token_requests(sim).len() < n {
        assert!(
            Instant::now() < deadline,
            "expected {n} token requests: {:#?}",
            token_requests(sim)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn faults(failures: Value) -> FaultConfig {
    serde_json::from_value(json!({ "failures": failures })).expect("fault config")
}

fn bot() -> AppRef {
    AppRef::Id(BOT.into())
}

/// Records what the client reports through its metrics hook.
#[derive(Default)]
struct Recorded {
    requests: Mutex<Vec<(Operation, Option<u16>)>>,
    throttled: AtomicUsize,
    token_refreshes: AtomicUsize,
    budget_waits: AtomicUsize,
}

impl GraphMetrics for Recorded {
    fn request(&self, operation: Operation, status: Option<u16>, _latency: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push((operation, status));
        }
    }
    fn throttled(&self, _operation: Operation, _retry_after: Option<Duration>) {
        self.throttled.fetch_add(1, Ordering::SeqCst);
    }
    fn budget_wait(&self, _class: teams_app_operator::graph::CallClass, _waited: Duration) {
        self.budget_waits.fetch_add(1, Ordering::SeqCst);
    }
    fn token_refresh(&self, _success: bool, _latency: Duration) {
        self.token_refreshes.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn reads_installations_and_the_catalog() {
    let (sim, graph) = setup().await;

    let installed = graph
        .find_installation(ALICE, &bot())
        .await
        .unwrap()
        .expect("alice has the bot");
    assert_eq!(installed.catalog_app_id, BOT);
    assert_eq!(installed.external_id.as_deref(), Some(BOT_MANIFEST));
    assert_eq!(installed.app_display_name.as_deref(), Some("Contoso Bot"));
    assert_eq!(installed.version, Some(AppVersion::parse("1.0.0")));
    assert!(installed.definition_id.is_some());

    let by_manifest = graph
        .find_installation(ALICE, &AppRef::ExternalId(BOT_MANIFEST.into()))
        .await
        .unwrap();
    assert_eq!(by_manifest.as_ref(), Some(&installed));

    let again = graph.get_installation(ALICE, &installed.id).await.unwrap();
    assert_eq!(again, installed);

    assert_eq!(
        graph
            .find_installation(ALICE, &AppRef::Id(TOOL.into()))
            .await
            .unwrap(),
        None
    );

    let catalog = graph
        .catalog_app(&bot())
        .await
        .unwrap()
        .expect("in catalog");
    assert_eq!(catalog.external_id.as_deref(), Some(BOT_MANIFEST));
    assert_eq!(
        catalog.latest_published().map(|d| d.version.to_string()),
        Some("1.0.0".into())
    );
    assert_eq!(
        graph
            .catalog_app(&AppRef::Id("not-in-catalog".into()))
            .await
            .unwrap(),
        None
    );

    // The list request is the contract's: filter and expansions, sent as one GET.
    let lists = graph_calls(&sim, "/teamwork/installedApps");
    let first = &lists[0];
    assert_eq!(first.method, "GET");
    let query = first.query.as_deref().unwrap_or_default();
    assert!(
        query.contains("$expand=teamsApp,teamsAppDefinition"),
        "{query}"
    );
    assert!(
        query.contains(&format!("teamsApp/id eq '{BOT}'")),
        "{query}"
    );
}

#[tokio::test]
async fn installs_upgrades_and_uninstalls() {
    let (sim, graph) = setup().await;

    // Install a new app; a second install is a 409 that means "already there".
    assert_eq!(
        graph.install(ALICE, TOOL, None).await.unwrap(),
        InstallOutcome::Installed
    );
    assert_eq!(
        graph.install(ALICE, TOOL, None).await.unwrap(),
        InstallOutcome::AlreadyInstalled
    );
    assert_eq!(
        statuses(&graph_calls(&sim, "/teamwork/installedApps")),
        [201, 409]
    );
    let tool = graph
        .find_installation(ALICE, &AppRef::Id(TOOL.into()))
        .await
        .unwrap()
        .expect("installed");
    assert_eq!(tool.version, Some(AppVersion::parse("0.9")));

    // A newer published version and a still-higher submitted one: upgrade goes to the former.
    for (version, state) in [("1.1.0", "published"), ("2.0.0", "submitted")] {
        let definition: DefinitionSeed =
            serde_json::from_value(json!({"version": version, "publishingState": state})).unwrap();
        sim.add_definition(TENANT, BOT, definition).unwrap();
    }
    let catalog = graph.catalog_app(&bot()).await.unwrap().unwrap();
    assert_eq!(catalog.definitions.len(), 3);
    let latest = catalog.latest_published().unwrap();
    assert_eq!(latest.version, AppVersion::parse("1.1.0"));
    assert_eq!(latest.publishing_state, PublishingState::Published);

    let installed = graph
        .find_installation(ALICE, &bot())
        .await
        .unwrap()
        .unwrap();
    graph.upgrade(ALICE, &installed.id, None).await.unwrap();
    let upgraded = graph.get_installation(ALICE, &installed.id).await.unwrap();
    assert_eq!(upgraded.id, installed.id, "ids survive upgrades");
    assert_eq!(upgraded.version, Some(AppVersion::parse("1.1.0")));

    // Uninstall; a second uninstall finds nothing and says so without failing.
    assert_eq!(
        graph.uninstall(ALICE, &installed.id).await.unwrap(),
        UninstallOutcome::Removed
    );
    assert_eq!(
        graph.uninstall(ALICE, &installed.id).await.unwrap(),
        UninstallOutcome::AlreadyGone
    );
    assert_eq!(graph.find_installation(ALICE, &bot()).await.unwrap(), None);
    let err = graph
        .get_installation(ALICE, &installed.id)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
}

#[tokio::test]
async fn unknown_user_is_not_found_with_a_request_id() {
    let (_sim, graph) = setup().await;
    let err = graph
        .find_installation("nobody@contoso.com", &bot())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    let request_id = err.request_id().expect("Graph errors carry a request-id");
    assert!(!request_id.is_empty());
    let text = err.to_string();
    assert!(text.contains("404") && text.contains(request_id), "{text}");
    assert!(err.code().is_some(), "{text}");
}

#[tokio::test]
async fn policy_blocked_install_is_blocked_by_policy() {
    let (_sim, graph) = setup().await;
    let err = graph.install(BOB, TOOL, None).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.class(), ErrorClass::BlockedByPolicy);
    assert!(
        err.to_string().to_lowercase().contains("permission policy"),
        "{err}"
    );
}

#[tokio::test]
async fn expired_token_is_refreshed_once_and_the_call_succeeds() {
    let (sim, graph) = setup().await;
    graph.find_installation(ALICE, &bot()).await.unwrap();
    sim.expire_tokens();
    graph.find_installation(ALICE, &bot()).await.unwrap();

    assert_eq!(statuses(&token_requests(&sim)), [200, 200]);
    assert_eq!(
        statuses(&graph_calls(&sim, "/teamwork/installedApps")),
        [200, 401, 200]
    );
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_before_they_expire() {
    let options = SimOptions {
        token_lifetime: Duration::from_secs(2),
        ..SimOptions::default()
    };
    let sim = start_sim(seed(None, None), options).await;
    let graph = GraphClient::new(secret_settings(&sim)).unwrap();
    graph.find_installation(ALICE, &bot()).await.unwrap();
    // Past the refresh point (90% of the lifetime) but before expiry: the call goes on with the
    // current token while a new one is fetched in the background…
    tokio::time::sleep(Duration::from_millis(1850)).await;
    graph.find_installation(ALICE, &bot()).await.unwrap();
    wait_for_token_requests(&sim, 2).await;
    // …and once the first token has expired, calls carry the new one: Graph never sees an
    // expired token.
    tokio::time::sleep(Duration::from_millis(300)).await;
    graph.find_installation(ALICE, &bot()).await.unwrap();
    assert_eq!(statuses(&token_requests(&sim)), [200, 200]);
    assert!(
        !statuses(&sim.requests()).contains(&401),
        "the client refreshed ahead of expiry"
    );
}

#[tokio::test]
async fn wrong_secret_is_unauthorized() {
    let sim = start_sim(seed(None, None), SimOptions::default()).await;
    let settings = settings_for(
        &sim,
        CLIENT,
        CredentialSource::ClientSecret(Secret::new("wrong")),
    );
    let graph = GraphClient::new(settings).unwrap();
    let err = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    assert!(matches!(err, GraphError::Auth(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unauthorized);
    assert_eq!(err.code(), Some("invalid_client"));
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrong"), "the secret never appears: {text}");
    assert_eq!(token_requests(&sim).len(), 1, "a bad secret is not retried");
}

/// The `Retry-After` the simulator sends for a scripted failure, from its log's times.
fn ends(record: &RequestRecord, seconds: f64) -> jiff::Timestamp {
    let wait = jiff::SignedDuration::try_from_secs_f64(seconds).expect("a wait");
    record.time.checked_add(wait).expect("a time")
}

/// With a token in hand and an empty request log, the next installedApps read answers 429 with
/// `retry_after` seconds.
async fn throttle_one_read(sim: &SimServer, graph: &GraphClient, retry_after: f64) {
    graph.catalog_app(&bot()).await.unwrap();
    sim.set_faults(faults(
        json!([{"method": "GET", "pathContains": "/installedApps",
        "status": 429, "count": 1, "retryAfter": retry_after}]),
    ))
    .unwrap();
    sim.clear_requests();
}

#[tokio::test]
async fn a_quick_retry_after_is_waited_out_within_the_call_for_its_whole_class() {
    let sim = start_sim(seed(None, None), SimOptions::default()).await;
    let recorded = Arc::new(Recorded::default());
    let mut settings = secret_settings(&sim);
    settings.metrics = recorded.clone();
    let graph = GraphClient::new(settings).unwrap();
    // Fractional, and under a second: worth waiting for inside the call.
    throttle_one_read(&sim, &graph, 0.6).await;
    let throttled = {
        let graph = graph.clone();
        tokio::spawn(async move { graph.find_installation(ALICE, &bot()).await })
    };
    // Another caller of the same class arrives while the throttle is in force.
    let deadline = Instant::now() + Duration::from_secs(10);
    while graph
        .budget()
        .blocked_for(Some(CallClass::InstalledAppsRead))
        .is_none()
    {
        assert!(Instant::now() < deadline, "the 429 never blocked the class");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Graph throttles each class on its own: a catalog read is not held up.
    assert!(graph.catalog_app(&bot()).await.unwrap().is_some());
    let bystander = graph.find_installation(ALICE, &bot()).await;
    let found = throttled.await.unwrap().unwrap();
    assert!(found.is_some());
    assert!(bystander.unwrap().is_some());

    // Nothing of that class was sent to the tenant until Retry-After had passed.
    let log = sim.requests();
    let throttle = log.iter().find(|r| r.status == 429).expect("the 429");
    let resume = ends(throttle, 0.6);
    let catalog = log
        .iter()
        .find(|r| r.path.contains("/appCatalogs"))
        .unwrap();
    assert!(
        catalog.time < resume,
        "the catalog read went during the block"
    );
    let after: Vec<_> = log
        .iter()
        .filter(|r| r.time > throttle.time && r.path.contains("/installedApps"))
        .collect();
    assert_eq!(after.len(), 2, "one retry and the bystander: {log:#?}");
    assert!(after.iter().all(|r| r.time >= resume && r.status == 200));

    assert_eq!(recorded.throttled.load(Ordering::SeqCst), 1);
    assert!(recorded.budget_waits.load(Ordering::SeqCst) >= 2);
    assert_eq!(recorded.token_refreshes.load(Ordering::SeqCst), 1);
    let requests = recorded.requests.lock().unwrap().clone();
    assert!(requests.contains(&(Operation::ListInstallations, Some(429))));
    assert!(requests.contains(&(Operation::ListInstallations, Some(200))));
}

#[tokio::test]
async fn a_long_retry_after_ends_the_call_and_holds_its_class_without_sending() {
    let (sim, graph) = setup().await;
    throttle_one_read(&sim, &graph, 2.5).await;

    // The call ends with Graph's 429 and its whole Retry-After, for the caller's backoff.
    let err = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    assert!(matches!(err, GraphError::Api(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_millis(2500)));
    assert!(err.request_id().is_some(), "{err}");

    // A call of that class while the block has more than a second to run is not sent: it
    // fails at once with what is left of the block.
    let held = graph.find_installation(BOB, &bot()).await.unwrap_err();
    assert!(matches!(held, GraphError::Throttled { .. }), "{held:?}");
    assert_eq!(held.class(), ErrorClass::Throttled);
    assert!(held.is_retryable());
    let left = held.retry_after().expect("what is left of the block");
    assert!(left > Duration::from_secs(1) && left <= Duration::from_millis(2500));
    assert!(held.to_string().contains("not sent"), "{held}");
    assert_eq!(statuses(&graph_calls(&sim, "/installedApps")), [429]);
    // Another class goes on.
    assert!(graph.catalog_app(&bot()).await.unwrap().is_some());

    // Once the block is over, the class is sent again — never before its Retry-After.
    while let Some(left) = graph
        .budget()
        .blocked_for(Some(CallClass::InstalledAppsRead))
    {
        tokio::time::sleep(left).await;
    }
    let found = graph.find_installation(ALICE, &bot()).await;
    assert!(found.unwrap().is_some());
    let reads = graph_calls(&sim, "/installedApps");
    assert_eq!(statuses(&reads), [429, 200]);
    assert!(reads[1].time >= ends(&reads[0], 2.5));
}

#[tokio::test]
async fn an_outage_ends_the_call_at_once_unless_it_asks_for_a_quick_retry() {
    let (sim, graph) = setup().await;
    let installed = graph
        .find_installation(ALICE, &bot())
        .await
        .unwrap()
        .unwrap();
    // A 503 without Retry-After: the caller's backoff retries, not the call.
    sim.set_faults(faults(
        json!([{"method": "POST", "pathContains": "/upgrade",
        "status": 503, "count": 2}]),
    ))
    .unwrap();
    let err = graph.upgrade(ALICE, &installed.id, None).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert_eq!(err.status(), Some(503));
    assert!(err.request_id().is_some(), "{err}");
    assert_eq!(statuses(&graph_calls(&sim, "/upgrade")), [503]);

    // A 503 asking for a retry within a second gets it.
    sim.set_faults(faults(
        json!([{"method": "POST", "pathContains": "/upgrade",
        "status": 503, "count": 1, "retryAfter": 0.2}]),
    ))
    .unwrap();
    sim.clear_requests();
    graph.upgrade(ALICE, &installed.id, None).await.unwrap();
    assert_eq!(statuses(&graph_calls(&sim, "/upgrade")), [503, 204]);

    // One that asks for longer ends the call, Retry-After kept for the caller's backoff.
    sim.set_faults(faults(
        json!([{"method": "POST", "pathContains": "/upgrade",
        "status": 503, "count": 1, "retryAfter": 5}]),
    ))
    .unwrap();
    sim.clear_requests();
    let err = graph.upgrade(ALICE, &installed.id, None).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(statuses(&graph_calls(&sim, "/upgrade")), [503]);
}

#[tokio::test]
async fn quick_retries_stop_at_the_configured_attempts() {
    let sim = start_sim(seed(None, None), SimOptions::default()).await;
    let mut settings = secret_settings(&sim);
    settings.max_attempts = 3;
    let graph = GraphClient::new(settings).unwrap();
    sim.set_faults(faults(
        json!([{"pathContains": "/installedApps", "status": 504,
        "count": 100, "retryAfter": 0.05}]),
    ))
    .unwrap();
    let err = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert!(err.is_retryable());
    assert_eq!(
        statuses(&graph_calls(&sim, "/installedApps")),
        [504, 504, 504]
    );

    // Permanent errors are not retried at all.
    sim.set_faults(faults(
        json!([{"pathContains": "/installedApps", "status": 400,
        "count": 100, "message": "Invalid bind"}]),
    ))
    .unwrap();
    sim.clear_requests();
    let err = graph.install(ALICE, TOOL, None).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadRequest);
    assert_eq!(graph_calls(&sim, "/installedApps").len(), 1);
}

#[tokio::test]
async fn a_dropped_connection_is_tried_once_more_at_once() {
    let (sim, graph) = setup().await;
    graph.catalog_app(&bot()).await.unwrap(); // token in hand
    let dropped = |count: u32| {
        faults(
            json!([{"pathContains": "/installedApps", "dropConnection": true,
            "count": count}]),
        )
    };
    sim.set_faults(dropped(1)).unwrap();
    sim.clear_requests();
    let found = graph.find_installation(ALICE, &bot()).await;
    assert!(found.unwrap().is_some());
    assert_eq!(statuses(&graph_calls(&sim, "/installedApps")), [0, 200]);

    // Twice in a row: the reconcile reports it.
    sim.set_faults(dropped(2)).unwrap();
    sim.clear_requests();
    let err = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    assert!(matches!(err, GraphError::Transport { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert_eq!(statuses(&graph_calls(&sim, "/installedApps")), [0, 0]);
}

#[tokio::test]
async fn a_transient_install_400_ends_the_call_as_unavailable() {
    let (sim, graph) = setup().await;
    sim.set_faults(faults(
        json!([{"method": "POST", "pathContains": "/installedApps",
        "status": 400, "count": 1,
        "message": "Failed to execute backend request: Internal Exception"}]),
    ))
    .unwrap();
    // Like a 5xx: reported, and retried on the resource's backoff.
    let err = graph.install(ALICE, TOOL, None).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert!(err.is_retryable());
    assert_eq!(statuses(&graph_calls(&sim, "/installedApps")), [400]);
    assert_eq!(
        graph.install(ALICE, TOOL, None).await.unwrap(),
        InstallOutcome::Installed
    );
    assert_eq!(statuses(&graph_calls(&sim, "/installedApps")), [400, 201]);
}

#[tokio::test]
async fn slow_answers_time_out_as_unavailable() {
    let sim = start_sim(seed(None, None), SimOptions::default()).await;
    let mut settings = secret_settings(&sim);
    settings.timeout = Duration::from_millis(150);
    settings.max_attempts = 2;
    let recorded = Arc::new(Recorded::default());
    settings.metrics = recorded.clone();
    let graph = GraphClient::new(settings).unwrap();
    graph.catalog_app(&bot()).await.unwrap();
    sim.set_faults(serde_json::from_value(json!({"latencyMs": 600})).unwrap())
        .unwrap();
    let err = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    assert!(matches!(err, GraphError::Timeout { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert!(err.client_request_id().is_some());
    // A timeout already took its time: not tried again within the call.
    let requests = recorded.requests.lock().unwrap().clone();
    let unanswered = requests
        .iter()
        .filter(|r| **r == (Operation::ListInstallations, None))
        .count();
    assert_eq!(unanswered, 1, "{requests:?}");
}

#[tokio::test]
async fn batch_retries_only_the_throttled_item() {
    let (sim, graph) = setup().await;
    let installed = graph
        .find_installation(ALICE, &bot())
        .await
        .unwrap()
        .unwrap();
    // 25 requests: two $batches (20 + 5). One item is throttled once.
    let mut requests = vec![
        BatchRequest::catalog_app("catalog", &AppRef::Id(TOOL.into())),
        BatchRequest::get_installation("get", ALICE, &installed.id),
    ];
    requests.extend(
        (0..23).map(|i| BatchRequest::find_installation(format!("find-{i}"), ALICE, &bot())),
    );
    sim.set_faults(faults(
        json!([{"method": "GET", "pathContains": "/appCatalogs",
        "status": 429, "count": 1, "retryAfter": 0.4}]),
    ))
    .unwrap();
    sim.clear_requests();

    let responses = graph.batch(requests.clone()).await.unwrap();
    let ids: Vec<_> = responses.iter().map(|r| r.id.as_str()).collect();
    let wanted: Vec<_> = requests.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, wanted, "one response per request, in request order");
    assert!(responses.iter().all(|r| r.is_success()), "{responses:#?}");
    let catalog = responses[0].catalog_app(&AppRef::Id(TOOL.into())).unwrap();
    assert_eq!(catalog.unwrap().id, TOOL);
    let found = responses[5].installation(&bot()).unwrap().unwrap();
    assert_eq!(found.id, installed.id);

    let log = sim.requests();
    let envelopes = log.iter().filter(|r| r.path.ends_with("/$batch")).count();
    assert_eq!(
        envelopes, 3,
        "two batches, then one retry of the throttled item"
    );
    let catalog_item: Vec<u16> = log
        .iter()
        .filter(|r| r.batch && r.batch_item_id.as_deref() == Some("catalog"))
        .map(|r| r.status)
        .collect();
    assert_eq!(catalog_item, [429, 200]);
    let other_items = log
        .iter()
        .filter(|r| r.batch && r.batch_item_id.as_deref() != Some("catalog"))
        .count();
    assert_eq!(other_items, 24, "successful items are sent once");
}

#[tokio::test]
async fn batch_items_that_ask_for_a_long_wait_come_back_for_the_callers_backoff() {
    let (sim, graph) = setup().await;
    graph.catalog_app(&bot()).await.unwrap(); // token in hand
    sim.set_faults(faults(json!([
        {"method": "GET", "pathContains": "/appCatalogs", "status": 429, "count": 1,
         "retryAfter": 3},
        {"method": "GET", "pathContains": "/installedApps", "status": 503, "count": 1}
    ])))
    .unwrap();
    sim.clear_requests();
    let tool = AppRef::Id(TOOL.into());
    let responses = graph
        .batch(vec![
            BatchRequest::catalog_app("catalog", &tool),
            BatchRequest::find_installation("find", ALICE, &bot()),
        ])
        .await
        .unwrap();
    // Neither is tried again within the call: a 3 s Retry-After, a 503 without one.
    assert_eq!(statuses_of(&responses), [429, 503]);
    assert_eq!(responses[0].retry_after(), Some(Duration::from_secs(3)));
    let envelopes = |sim: &SimServer| graph_calls(sim, "/$batch").len();
    assert_eq!(envelopes(&sim), 1);

    // The catalog class is held for the tenant: a batch with a catalog item is not sent, and
    // its items say so, with what is left of the block.
    let held = graph
        .batch(vec![BatchRequest::catalog_app("again", &tool)])
        .await
        .unwrap();
    assert_eq!(statuses_of(&held), [429]);
    let left = held[0].retry_after().expect("what is left");
    assert!(left > Duration::from_secs(1) && left <= Duration::from_secs(3));
    let err = held[0].error().expect("a failure");
    assert_eq!(err.class(), ErrorClass::Throttled);
    assert!(err.to_string().contains("not sent"), "{err}");
    assert_eq!(envelopes(&sim), 1, "nothing sent into the throttle");
}

fn statuses_of(responses: &[teams_app_operator::graph::BatchResponse]) -> Vec<u16> {
    responses.iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn batch_rejects_duplicate_ids_before_sending() {
    let (sim, graph) = setup().await;
    let err = graph
        .batch(vec![
            BatchRequest::find_installation("same", ALICE, &bot()),
            BatchRequest::find_installation("same", ALICE, &bot()),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadRequest);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn lists_follow_next_links() {
    let sim = start_sim(seed(None, Some(1)), SimOptions::default()).await;
    let graph = GraphClient::new(secret_settings(&sim)).unwrap();
    graph.install(ALICE, TOOL, None).await.unwrap();
    let all = graph.list_installations(ALICE).await.unwrap();
    let mut apps: Vec<_> = all.iter().map(|i| i.catalog_app_id.as_str()).collect();
    apps.sort_unstable();
    assert_eq!(apps, [BOT, TOOL, WIKI]);
    let pages = graph_calls(&sim, "/teamwork/installedApps")
        .into_iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(pages, 3, "one page per installation at pageSize 1");
}

#[tokio::test]
async fn an_override_changes_nothing_but_where_requests_go() {
    // Graph writes its next links on its own host; the simulator can too. The client follows
    // them against its override, asks Entra for Graph's own scope (the simulator refuses any
    // other, as Entra does) and binds installs to Graph's own host (likewise).
    let options = SimOptions {
        canonical_next_links: true,
        ..SimOptions::default()
    };
    let sim = start_sim(seed(None, Some(1)), options).await;
    let graph = GraphClient::new(secret_settings(&sim)).unwrap();
    assert_eq!(
        graph.install(ALICE, TOOL, None).await.unwrap(),
        InstallOutcome::Installed
    );
    let all = graph.list_installations(ALICE).await.unwrap();
    assert_eq!(all.len(), 3, "every page, through canonical next links");
    let log = sim.requests();
    assert!(log.iter().all(|r| r.status < 400), "{log:#?}");
}

#[tokio::test]
async fn batch_ids_that_differ_only_in_case_are_duplicates() {
    let (sim, graph) = setup().await;
    let err = graph
        .batch(vec![
            BatchRequest::find_installation("item-a", ALICE, &bot()),
            BatchRequest::find_installation("Item-A", ALICE, &bot()),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadRequest);
    assert!(sim.requests().is_empty(), "refused before sending");
}

#[tokio::test]
async fn a_424_batch_envelope_still_yields_the_items_that_succeeded() {
    let (sim, graph) = setup().await;
    // Older Graph: the envelope answered 424 while the items inside carried their own answers.
    sim.set_faults(faults(json!([
        {"method": "POST", "pathContains": "$batch", "status": 424, "applyFirst": true,
         "count": 1}
    ])))
    .unwrap();
    let responses = graph
        .batch(vec![
            BatchRequest::catalog_app("catalog", &AppRef::Id(TOOL.into())),
            BatchRequest::find_installation("find", ALICE, &bot()),
        ])
        .await
        .unwrap();
    assert!(responses.iter().all(|r| r.is_success()), "{responses:#?}");
    assert_eq!(
        responses[0]
            .catalog_app(&AppRef::Id(TOOL.into()))
            .unwrap()
            .map(|a| a.id),
        Some(TOOL.to_string())
    );
    let envelopes: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/$batch"))
        .map(|r| r.status)
        .collect();
    assert_eq!(envelopes, [424], "the succeeded items are not sent again");
}

#[tokio::test]
async fn certificate_credential_signs_in() {
    let (bundle, cert_pem) = self_signed_certificate();
    let sim = start_sim(seed(Some(&cert_pem), None), SimOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, bundle).unwrap();
    let settings = settings_for(&sim, CERT_CLIENT, CredentialSource::CertificateFile(path));
    let graph = GraphClient::new(settings).unwrap();
    assert!(
        graph
            .find_installation(ALICE, &bot())
            .await
            .unwrap()
            .is_some()
    );
    let tokens = token_requests(&sim);
    assert_eq!(statuses(&tokens), [200]);
    assert_eq!(tokens[0].client_id.as_deref(), Some(CERT_CLIENT));
}

#[tokio::test]
async fn workload_identity_rereads_the_token_file() {
    let sim = start_sim(seed(None, None), SimOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(
        &path,
        service_account_token("system:serviceaccount:other:sa"),
    )
    .unwrap();
    let mut settings = settings_for(
        &sim,
        WI_CLIENT,
        CredentialSource::FederatedTokenFile(path.clone()),
    );
    settings.token.failure_hold = Duration::from_millis(50);
    let graph = GraphClient::new(settings).unwrap();
    let err = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    assert!(matches!(err, GraphError::Auth(_)), "{err:?}");
    assert!(
        err.is_retryable(),
        "AADSTS70021 (federation not yet propagated) is worth retrying"
    );
    assert_eq!(
        token_requests(&sim).len(),
        1,
        "the caller retries, not the client"
    );

    // The kubelet rotates the projected token; the next token request, once the failure no
    // longer stands (at most twice the hold), reads the new one.
    std::fs::write(&path, service_account_token(SA_SUBJECT)).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        graph
            .find_installation(ALICE, &bot())
            .await
            .unwrap()
            .is_some()
    );
    let tokens = token_requests(&sim);
    assert_eq!(tokens.len(), 2, "{tokens:#?}");
    assert_eq!(tokens.last().map(|r| r.status), Some(200));
}

#[tokio::test]
async fn national_clouds_are_refused_at_construction() {
    let sim = start_sim(seed(None, None), SimOptions::default()).await;
    for cloud in [Cloud::UsGov, Cloud::UsGovDod, Cloud::China] {
        let mut settings = secret_settings(&sim);
        settings.cloud = cloud;
        let err = GraphClient::new(settings).unwrap_err();
        assert!(
            matches!(err, GraphConfigError::UnsupportedCloud { .. }),
            "{err}"
        );
    }
}

/// A projected service-account token as the kubelet writes it (the simulator checks issuer,
/// subject, audience and expiry; it cannot fetch the cluster's signing keys).
fn service_account_token(subject: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": SA_ISSUER, "sub": subject, "aud": ["api://AzureADTokenExchange"],
        "iat": now, "nbf": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"cluster-signing-key"),
    )
    .unwrap()
}

/// A self-signed RSA certificate: `(PEM bundle of certificate and PKCS#8 key, certificate PEM)`.
fn self_signed_certificate() -> (String, String) {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let key_pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let pair =
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["teams-app-operator".to_string()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let cert_pem = cert.pem();
    (format!("{cert_pem}{}", key_pem.as_str()), cert_pem)
}

#[tokio::test]
async fn the_budget_paces_each_call_class() {
    let sim = start_sim(seed(None, None), SimOptions::default()).await;
    let mut settings = secret_settings(&sim);
    settings.budget = teams_app_operator::graph::BudgetConfig {
        read_per_second: 10.0,
        ..Default::default()
    };
    let graph = GraphClient::new(settings).expect("client");
    let app = bot();
    let reads = (0..11).map(|_| graph.catalog_app(&app));
    for found in futures::future::join_all(reads).await {
        assert!(found.expect("catalog read").is_some());
    }
    // Strict pacing (burst 1): the 11th read waits at least a second for its token.
    assert!(
        graph.budget().total_wait() >= Duration::from_millis(900),
        "{:?}",
        graph.budget().total_wait()
    );
}
