//! A token outage is one outage: however many callers need a token while the token endpoint
//! fails, one token request is on the wire at a time, its failure is every waiting caller's
//! answer, and callers that come while that failure stands get it without a request. A token
//! that is still valid keeps working while its refresh fails. Against the in-process simulator
//! (its request log is the witness) and, for overlap, a token endpoint that counts requests in
//! flight. Counts and order are asserted, never durations.
//!
//! A server that cannot start fails the test; nothing here is skipped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use graph_sim::{FaultConfig, RequestRecord, Seed, SimOptions, SimServer};
use serde_json::{Value, json};
use teams_app_operator::graph::{
    AppRef, Backoff, CredentialSource, ErrorClass, GraphClient, GraphError, GraphMetrics,
    GraphSettings, Secret,
};

const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "s3cret";
const ALICE: &str = "alice@contoso.com";
const BOT: &str = "33333333-3333-3333-3333-333333333333";
const TOKEN_PATH: &str = "/oauth2/v2.0/token";
const CALLERS: usize = 20;

fn seed() -> Seed {
    let doc = json!({"tenants": [{
        "id": TENANT,
        "clients": [{"id": CLIENT, "secret": SECRET}],
        "users": [{"id": "22222222-2222-2222-2222-222222222222", "userPrincipalName": ALICE}],
        "apps": [{"id": BOT, "externalId": "com.contoso.bot", "displayName": "Contoso Bot",
                  "definitions": [{"version": "1.0.0", "publishingState": "published"}]}],
        "installations": [{"user": ALICE, "app": BOT, "version": "1.0.0"}]
    }]});
    Seed::from_yaml_str(&doc.to_string()).expect("the test seed is valid")
}

async fn start_sim() -> SimServer {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
    SimServer::start(listen, seed(), SimOptions::default())
        .await
        .expect("the Graph simulator must start for these tests")
}

/// Settings against `base` (Graph and login), with `hold` as the failure hold.
fn settings(base: &str, hold: Duration, metrics: Arc<Counted>) -> GraphSettings {
    let base = url::Url::parse(base).expect("base URL");
    let mut settings = GraphSettings::new(
        TENANT,
        CLIENT,
        CredentialSource::ClientSecret(Secret::new(SECRET)),
    )
    .with_base_url(base);
    settings.backoff = Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    // The request budget paces reads before they ask for a token; unlimited here, so that the
    // callers meet the token cache together.
    settings.budget.read_per_second = 0.0;
    settings.token.failure_hold = hold;
    settings.metrics = metrics;
    settings
}

fn token_requests(sim: &SimServer) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.contains(TOKEN_PATH))
        .collect()
}

fn graph_calls(sim: &SimServer) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| !r.path.contains(TOKEN_PATH))
        .collect()
}

fn statuses(records: &[RequestRecord]) -> Vec<u16> {
    records.iter().map(|r| r.status).collect()
}

/// The token endpoint answers 503 `temporarily_unavailable` (after `latency_ms`, which Graph
/// calls get too) until the faults change.
fn token_endpoint_down(sim: &SimServer, latency_ms: u64) {
    let faults: FaultConfig = serde_json::from_value(json!({
        "latencyMs": latency_ms,
        "failures": [{"pathContains": "/oauth2/", "status": 503, "count": 10_000}],
    }))
    .expect("fault config");
    sim.set_faults(faults).expect("faults accepted");
}

/// Waits (up to 10 s) until the simulator has answered `n` token requests: a refresh runs in the
/// background, after the call that started it has returned.
async fn wait_for_token_requests(sim: &SimServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while token_requests(sim).len() < n {
        assert!(Instant::now() < deadline, "expected {n} token requests");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `CALLERS` reads of alice's installation at once; their results in spawn order.
async fn concurrent_reads(graph: &GraphClient) -> Vec<Result<bool, GraphError>> {
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let graph = graph.clone();
            tokio::spawn(async move {
                let found = graph.find_installation(ALICE, &bot()).await;
                found.map(|installation| installation.is_some())
            })
        })
        .collect();
    let mut results = Vec::new();
    for caller in callers {
        results.push(caller.await.expect("the caller did not panic"));
    }
    results
}

fn bot() -> AppRef {
    AppRef::Id(BOT.into())
}

/// Token requests as the client reports them.
#[derive(Default)]
struct Counted {
    succeeded: AtomicUsize,
    failed: AtomicUsize,
}

impl GraphMetrics for Counted {
    fn token_refresh(&self, success: bool, _latency: Duration) {
        let counter = if success {
            &self.succeeded
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn twenty_callers_meet_a_failing_token_endpoint_with_one_request() {
    let sim = start_sim().await;
    // Slow enough that the callers arrive while the one request is on the wire; the long hold
    // means any caller that comes after it lands gets its failure too.
    token_endpoint_down(&sim, 200);
    let counted = Arc::new(Counted::default());
    let hold = Duration::from_secs(30);
    let graph = GraphClient::new(settings(&sim.base_url(), hold, counted.clone())).unwrap();

    let results = concurrent_reads(&graph).await;

    let tokens = token_requests(&sim);
    assert_eq!(
        statuses(&tokens),
        [503],
        "one token request for {CALLERS} callers"
    );
    for result in &results {
        let err = result.as_ref().expect_err("no token, no read");
        assert!(matches!(err, GraphError::Auth(_)), "{err:?}");
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.class(), ErrorClass::Unavailable);
        // Every caller got that one request's answer, not one of its own.
        assert_eq!(err.request_id(), Some(tokens[0].request_id.as_str()));
    }
    assert!(graph_calls(&sim).is_empty(), "nothing went to Graph");
    assert_eq!(counted.failed.load(Ordering::SeqCst), 1);
    assert_eq!(counted.succeeded.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn twenty_callers_without_a_token_share_one_sign_in() {
    let sim = start_sim().await;
    let counted = Arc::new(Counted::default());
    let graph = GraphClient::new(settings(
        &sim.base_url(),
        Duration::from_secs(1),
        counted.clone(),
    ))
    .unwrap();

    let results = concurrent_reads(&graph).await;

    assert!(results.iter().all(|r| matches!(r, Ok(true))), "{results:?}");
    assert_eq!(statuses(&token_requests(&sim)), [200]);
    assert_eq!(statuses(&graph_calls(&sim)), [200; CALLERS]);
    assert_eq!(counted.succeeded.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn callers_while_a_failure_stands_get_it_without_a_request() {
    let sim = start_sim().await;
    token_endpoint_down(&sim, 0);
    let counted = Arc::new(Counted::default());
    let hold = Duration::from_secs(30);
    let graph = GraphClient::new(settings(&sim.base_url(), hold, counted.clone())).unwrap();

    let first = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    // The endpoint is back, but the failure stands: callers in turn, and a crowd, get it at once.
    sim.set_faults(FaultConfig::default()).unwrap();
    for _ in 0..5 {
        let again = graph.find_installation(ALICE, &bot()).await.unwrap_err();
        assert_eq!(again.request_id(), first.request_id());
        assert_eq!(again.status(), Some(503));
    }
    for result in concurrent_reads(&graph).await {
        let err = result.expect_err("the failure stands");
        assert_eq!(err.request_id(), first.request_id());
    }

    assert_eq!(statuses(&token_requests(&sim)), [503]);
    assert!(graph_calls(&sim).is_empty());
    assert_eq!(counted.failed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_retry_after_from_the_token_endpoint_reaches_the_caller() {
    let sim = start_sim().await;
    let faults: FaultConfig = serde_json::from_value(json!({"failures": [
        {"pathContains": "/oauth2/", "status": 503, "count": 1, "retryAfter": 7}
    ]}))
    .unwrap();
    sim.set_faults(faults).unwrap();
    let counted = Arc::new(Counted::default());
    let graph = GraphClient::new(settings(
        &sim.base_url(),
        Duration::from_millis(10),
        counted,
    ))
    .unwrap();

    let err = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    // The controller's backoff for the resource honours it…
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    // …and so does the client: the failure stands for 7 s, not the 10 ms hold, so a caller a
    // moment later (well past 2 × 10 ms) still gets it without a request.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    assert_eq!(again.request_id(), err.request_id());
    assert_eq!(statuses(&token_requests(&sim)), [503]);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_valid_token_in_use() {
    let sim = start_sim().await;
    let counted = Arc::new(Counted::default());
    let mut settings = settings(&sim.base_url(), Duration::from_secs(30), counted.clone());
    // Every token is due for refresh as soon as it arrives, and valid for the simulator's hour.
    settings.token.max_refresh_margin = Duration::MAX;
    settings.token.refresh_fraction = 1.0;
    let graph = GraphClient::new(settings).unwrap();
    assert!(
        graph
            .find_installation(ALICE, &bot())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(statuses(&token_requests(&sim)), [200]);

    // The endpoint goes down. The next call starts a refresh and goes on with the token it has.
    token_endpoint_down(&sim, 0);
    assert!(
        graph
            .find_installation(ALICE, &bot())
            .await
            .unwrap()
            .is_some()
    );
    wait_for_token_requests(&sim, 2).await;
    // While the refresh's failure stands, calls (one by one, and a crowd) keep using the valid
    // token, and nobody asks the endpoint again.
    for _ in 0..5 {
        assert!(
            graph
                .find_installation(ALICE, &bot())
                .await
                .unwrap()
                .is_some()
        );
    }
    let results = concurrent_reads(&graph).await;
    assert!(results.iter().all(|r| matches!(r, Ok(true))), "{results:?}");

    assert_eq!(statuses(&token_requests(&sim)), [200, 503]);
    let calls = graph_calls(&sim);
    assert_eq!(calls.len(), 2 + 5 + CALLERS);
    assert!(calls.iter().all(|r| r.status == 200), "{calls:#?}");
    assert_eq!(counted.succeeded.load(Ordering::SeqCst), 1);
    assert_eq!(
        counted.failed.load(Ordering::SeqCst),
        1,
        "the failed refresh is counted"
    );
}

#[tokio::test]
async fn once_the_failure_no_longer_stands_the_next_caller_signs_in_afresh() {
    let sim = start_sim().await;
    token_endpoint_down(&sim, 0);
    let counted = Arc::new(Counted::default());
    let hold = Duration::from_millis(50);
    let graph = GraphClient::new(settings(&sim.base_url(), hold, counted.clone())).unwrap();
    graph.find_installation(ALICE, &bot()).await.unwrap_err();

    // The endpoint is back; past the longest hold (twice 50 ms) a caller asks again and is served.
    sim.set_faults(FaultConfig::default()).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        graph
            .find_installation(ALICE, &bot())
            .await
            .unwrap()
            .is_some()
    );
    // The new token serves everyone after it.
    let results = concurrent_reads(&graph).await;
    assert!(results.iter().all(|r| matches!(r, Ok(true))), "{results:?}");

    assert_eq!(statuses(&token_requests(&sim)), [503, 200]);
    assert_eq!(statuses(&graph_calls(&sim)), [200; 1 + CALLERS]);
    assert_eq!(counted.failed.load(Ordering::SeqCst), 1);
    assert_eq!(counted.succeeded.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unanswered_token_request_is_asked_once_more_and_no_more() {
    let drop_connections = |count: u32| -> FaultConfig {
        serde_json::from_value(json!({"failures": [
            {"pathContains": "/oauth2/", "dropConnection": true, "count": count}
        ]}))
        .unwrap()
    };
    // One dropped connection: the quick retry signs in.
    let sim = start_sim().await;
    sim.set_faults(drop_connections(1)).unwrap();
    let counted = Arc::new(Counted::default());
    let graph = GraphClient::new(settings(
        &sim.base_url(),
        Duration::from_secs(30),
        counted.clone(),
    ))
    .unwrap();
    assert!(
        graph
            .find_installation(ALICE, &bot())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(statuses(&token_requests(&sim)), [0, 200]);
    assert_eq!(counted.failed.load(Ordering::SeqCst), 1);
    assert_eq!(counted.succeeded.load(Ordering::SeqCst), 1);

    // Two in a row: the caller gets the failure after the one retry; the schedule is its own.
    let sim = start_sim().await;
    sim.set_faults(drop_connections(2)).unwrap();
    let graph = GraphClient::new(settings(
        &sim.base_url(),
        Duration::from_secs(30),
        Arc::default(),
    ))
    .unwrap();
    let err = graph.find_installation(ALICE, &bot()).await.unwrap_err();
    assert!(matches!(err, GraphError::Transport { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert_eq!(statuses(&token_requests(&sim)), [0, 0]);
}

#[tokio::test]
async fn the_start_up_sign_in_rides_out_a_blip_but_not_a_refusal() {
    // A 503 at start-up: the sign-in asks again after the failure stops standing.
    let sim = start_sim().await;
    let faults: FaultConfig = serde_json::from_value(json!({"failures": [
        {"pathContains": "/oauth2/", "status": 503, "count": 1}
    ]}))
    .unwrap();
    sim.set_faults(faults).unwrap();
    let hold = Duration::from_millis(50);
    let graph = GraphClient::new(settings(&sim.base_url(), hold, Arc::default())).unwrap();
    graph.check_credentials().await.unwrap();
    assert_eq!(statuses(&token_requests(&sim)), [503, 200]);

    // A refused secret: one request, and the start stops with Entra's error.
    let sim = start_sim().await;
    let mut settings = settings(&sim.base_url(), hold, Arc::default());
    settings.credential = CredentialSource::ClientSecret(Secret::new("wrong"));
    let graph = GraphClient::new(settings).unwrap();
    let err = graph.check_credentials().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unauthorized);
    assert_eq!(err.code(), Some("invalid_client"));
    assert_eq!(statuses(&token_requests(&sim)), [401]);
}

/// A token endpoint that is down: every request answers 503 after `LATENCY`, and the endpoint
/// counts how many it holds at once.
#[derive(Default)]
struct CountingEndpoint {
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    requests: AtomicUsize,
}

const LATENCY: Duration = Duration::from_millis(30);

async fn answer_503(State(endpoint): State<Arc<CountingEndpoint>>) -> (StatusCode, Json<Value>) {
    let now = endpoint.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    endpoint.most_in_flight.fetch_max(now, Ordering::SeqCst);
    endpoint.requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(LATENCY).await;
    endpoint.in_flight.fetch_sub(1, Ordering::SeqCst);
    let body = json!({
        "error": "temporarily_unavailable",
        "error_description": "AADSTS90033: A transient error has occurred. Please try again.",
        "error_codes": [90033],
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

#[tokio::test]
async fn token_requests_never_overlap_through_a_long_outage() {
    let endpoint = Arc::new(CountingEndpoint::default());
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(answer_503))
        .with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the counting token endpoint must start");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A short hold, so the failure stops standing many times while the callers keep calling.
    let counted = Arc::new(Counted::default());
    let hold = Duration::from_millis(20);
    let graph = GraphClient::new(settings(
        &format!("http://{address}"),
        hold,
        counted.clone(),
    ))
    .unwrap();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let graph = graph.clone();
            tokio::spawn(async move {
                let mut failures = 0;
                for _ in 0..10 {
                    if graph.find_installation(ALICE, &bot()).await.is_err() {
                        failures += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                failures
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 10, "every call failed");
    }

    let requests = endpoint.requests.load(Ordering::SeqCst);
    assert_eq!(endpoint.most_in_flight.load(Ordering::SeqCst), 1);
    // Each caller's ten calls outlast one request and its hold (at most 30 + 40 ms), so the
    // endpoint was asked again, in turn.
    assert!(requests >= 2, "{requests} token requests");
    assert_eq!(counted.failed.load(Ordering::SeqCst), requests);
}
