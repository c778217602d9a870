//! Graph in trouble, as users meet it: a 429 storm, a 503 outage and a token endpoint outage, each
//! over 20 new resources, against the real kube-apiserver, graph-sim and the operator binary.
//!
//! What a user must see: every resource shows why it is not Ready (`Reconciling`, with reason
//! `Throttled`, `GraphUnavailable` or `AuthenticationFailed`) within seconds of the trouble, not
//! after it; all converge once it is over. What Graph must see: `Retry-After` honoured, a bounded
//! number of calls per backoff step, one token request at a time. What the API server must see:
//! one status write per change of reason, not one per retry.
//!
//! The witnesses are the simulator's request log and a watch on the resources (every status
//! change, with when this test saw it). Latencies and counts are printed (`--nocapture`), never
//! asserted against a clock: the waits are generous bounds.

mod scenario;
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use graph_sim::RequestRecord;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use scenario::{CLIENT_ID, Scenario, TENANT};
use serde_json::json;
use teams_app_operator::api::{TeamsAppInstallation, TeamsAppInstallationStatus};
use teams_app_operator::kit::conditions::{self, READY};

const USERS: usize = 5;
const APPS: usize = 4;
const SECRET: &str = "s3cret";
/// The target for showing trouble; the waits allow far more, and print what they measured.
const TARGET: Duration = Duration::from_secs(5);
const SHOW_WITHIN: Duration = Duration::from_secs(60);
const CONVERGE_WITHIN: Duration = Duration::from_secs(120);

/// The tests share two cores with the control plane: one at a time, so that one's load does not
/// show in another's latencies.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn user(i: usize) -> String {
    format!("user{i}@contoso.com")
}

fn app(j: usize) -> String {
    format!("33333333-3333-3333-3333-00000000000{j}")
}

/// Five users with a Teams licence and nothing installed; four apps at 1.0.0.
fn seed() -> String {
    let users: Vec<String> = (0..USERS)
        .map(|i| {
            format!(
                "      - {{id: 22222222-2222-2222-2222-00000000000{i}, userPrincipalName: {}}}",
                user(i)
            )
        })
        .collect();
    let apps: Vec<String> = (0..APPS)
        .map(|j| {
            format!(
                "      - {{id: {}, displayName: App {j}, distributionMethod: organization, definitions: [{{version: \"1.0.0\", publishingState: published}}]}}",
                app(j)
            )
        })
        .collect();
    format!(
        "tenants:\n  - id: {TENANT}\n    clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]\n    users:\n{}\n    apps:\n{}\n",
        users.join("\n"),
        apps.join("\n")
    )
}

/// A resource's status changes, with when the watch saw each.
type History = Vec<(Instant, TeamsAppInstallationStatus)>;

/// Every status change of the namespace's resources.
#[derive(Clone, Default)]
struct Statuses {
    seen: Arc<Mutex<HashMap<String, History>>>,
    /// The watch has listed and is watching: what it reports from now on is news.
    listed: Arc<AtomicBool>,
}

impl Statuses {
    /// Watches `api` from now on, in the background (the task ends with the test's runtime).
    fn watch(api: Api<TeamsAppInstallation>) -> Self {
        let statuses = Self::default();
        let seen = statuses.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                        seen.saw(&obj);
                    }
                    Ok(watcher::Event::InitDone) => seen.listed.store(true, Ordering::SeqCst),
                    _ => {}
                }
            }
        });
        statuses
    }

    fn saw(&self, obj: &TeamsAppInstallation) {
        let Some(status) = obj.status.clone() else {
            return;
        };
        let mut all = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let history = all.entry(obj.name_any()).or_default();
        if history.last().map(|(_, s)| s) != Some(&status) {
            history.push((Instant::now(), status));
        }
    }

    /// Waits until the watch is under way, so that what it sees next is timed as it happens.
    async fn listed(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.listed.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the test's watch never listed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn history(&self, name: &str) -> History {
        let all = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(name).cloned().unwrap_or_default()
    }

    /// When `name` first showed Ready=False, Reconciling=True with `reason`.
    fn first_shown(&self, name: &str, reason: &str) -> Option<Instant> {
        self.history(name)
            .into_iter()
            .find(|(_, s)| shows(s, reason))
            .map(|(at, _)| at)
    }

    /// The Ready reasons `name` went through, one per change.
    fn reasons(&self, name: &str) -> Vec<String> {
        let mut reasons: Vec<String> = Vec::new();
        for (_, status) in self.history(name) {
            let reason = ready_reason(&status).unwrap_or_default();
            if reasons.last() != Some(&reason) {
                reasons.push(reason);
            }
        }
        reasons
    }

    /// Status writes of `name` that changed nothing but a condition's message or time: what a
    /// write per retry would look like.
    fn redundant_writes(&self, name: &str) -> usize {
        let history = self.history(name);
        history
            .windows(2)
            .filter(|pair| without_messages(&pair[0].1) == without_messages(&pair[1].1))
            .count()
    }
}

fn ready_reason(status: &TeamsAppInstallationStatus) -> Option<String> {
    conditions::find(&status.conditions, READY).map(|c| c.reason.clone())
}

fn shows(status: &TeamsAppInstallationStatus, reason: &str) -> bool {
    let ready = conditions::find(&status.conditions, READY);
    ready.is_some_and(|c| c.status == "False" && c.reason == reason)
        && conditions::is_true(&status.conditions, conditions::RECONCILING)
}

fn without_messages(status: &TeamsAppInstallationStatus) -> TeamsAppInstallationStatus {
    let mut status = status.clone();
    for condition in &mut status.conditions {
        condition.message.clear();
        condition.last_transition_time = Time(jiff::Timestamp::UNIX_EPOCH);
    }
    status
}

/// Creates a resource for every user and app; returns their names and when each was created.
async fn create_all(s: &Scenario) -> Vec<(String, Instant)> {
    let mut created = Vec::new();
    for i in 0..USERS {
        for j in 0..APPS {
            let name = format!("u{i}-a{j}");
            let at = Instant::now();
            s.create(&name, json!({"user": user(i), "app": {"id": app(j)}}))
                .await;
            created.push((name, at));
        }
    }
    created
}

/// Waits until every resource shows `reason`; returns the latencies from their creation, least
/// first.
async fn wait_all_show(
    s: &Scenario,
    statuses: &Statuses,
    created: &[(String, Instant)],
    reason: &str,
) -> Vec<Duration> {
    let deadline = Instant::now() + SHOW_WITHIN;
    loop {
        let shown: Vec<_> = created
            .iter()
            .map(|(name, at)| {
                statuses
                    .first_shown(name, reason)
                    .map(|seen| seen.saturating_duration_since(*at))
            })
            .collect();
        if shown.iter().all(Option::is_some) {
            let mut shown: Vec<Duration> = shown.into_iter().flatten().collect();
            shown.sort();
            return shown;
        }
        let missing: Vec<_> = created
            .iter()
            .zip(&shown)
            .filter(|(_, s)| s.is_none())
            .map(|((name, _), _)| (name.clone(), statuses.reasons(name)))
            .collect();
        assert!(
            Instant::now() < deadline,
            "not every resource showed {reason}: {missing:?}\n{}",
            s.log_context()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every resource is Ready for its generation.
async fn wait_all_ready(s: &Scenario, created: &[(String, Instant)]) {
    for (name, _) in created {
        s.wait_for(name, "Ready", CONVERGE_WITHIN, scenario::is_ready)
            .await;
    }
}

/// Status writes per resource, for the report, and how many of them changed nothing but a
/// message (a write per retry).
fn writes(statuses: &Statuses, created: &[(String, Instant)]) -> (String, usize) {
    let counts: Vec<usize> = created
        .iter()
        .map(|(name, _)| statuses.history(name).len())
        .collect();
    let redundant = created
        .iter()
        .map(|(name, _)| statuses.redundant_writes(name))
        .sum();
    let most = counts.iter().copied().max().unwrap_or_default();
    let mean = counts.iter().sum::<usize>() as f64 / counts.len().max(1) as f64;
    let figure = format!("most {most}, mean {mean:.1}, redundant {redundant}");
    (figure, redundant)
}

impl Trouble {
    /// Prints what every run measures, then `more` (under `--nocapture`); returns the redundant
    /// status writes.
    fn report(&self, title: &str, reason: &str, more: &[(&str, String)]) -> usize {
        let (writes, redundant) = writes(&self.statuses, &self.created);
        println!("--- {title} ---");
        let worst = self.shown.last().copied().unwrap_or_default();
        let median = self.shown[self.shown.len() / 2];
        println!(
            "latency to Reconciling/{reason}: worst {worst:.2?}, median {median:.2?} (target {TARGET:?})"
        );
        println!("status writes per resource: {writes}");
        for (what, value) in more {
            println!("{what}: {value}");
        }
        redundant
    }
}

/// For a run that needs nothing more than its faults.
fn nothing_more(_: &Scenario) {}

/// One run of trouble: the world, the watch on it, the resources, and what was measured.
struct Trouble {
    s: Scenario,
    statuses: Statuses,
    created: Vec<(String, Instant)>,
    /// The times from the resources' creation to their showing the reason, least first.
    shown: Vec<Duration>,
    /// The simulator's log from the start of the trouble to its end.
    log: Vec<RequestRecord>,
}

/// Starts a world and lets the operator sign in and watch; puts `faults` in force (then does `also`),
/// creates the 20 resources, waits until all show `reason`, keeps the trouble up for `lasting`
/// in all, lifts it and waits until all are Ready.
async fn through(
    prefix: &str,
    faults: serde_json::Value,
    also: impl FnOnce(&Scenario),
    reason: &str,
    lasting: Duration,
) -> Trouble {
    let s = Scenario::start(prefix, &seed()).await;
    let statuses = Statuses::watch(s.api.clone());
    statuses.listed().await;
    wait_signed_in(&s).await;
    // The operator has just started: a suspended resource (no Graph calls) that gets its status
    // shows its watch is live, so the latencies below are the trouble's, not the start-up's.
    // (Another user's: the oldest resource for a user and app owns the installation.)
    let warm_up = json!({"user": "warm-up@contoso.com", "app": {"id": app(0)}, "suspend": true});
    s.create("warm-up", warm_up).await;
    let has_status = |obj: &TeamsAppInstallation| obj.status.is_some();
    s.wait_for("warm-up", "given a status", SHOW_WITHIN, has_status)
        .await;
    s.set_faults(faults).await;
    s.sim.clear_requests();
    also(&s);
    let started = Instant::now();
    let created = create_all(&s).await;
    let shown = wait_all_show(&s, &statuses, &created, reason).await;
    tokio::time::sleep(lasting.saturating_sub(started.elapsed())).await;
    s.set_faults(json!({})).await;
    let log = s.sim.requests();
    wait_all_ready(&s, &created).await;
    Trouble {
        s,
        statuses,
        created,
        shown,
        log,
    }
}

fn graph_calls(log: &[RequestRecord]) -> Vec<&RequestRecord> {
    log.iter()
        .filter(|r| !r.path.contains("/oauth2/") && !r.path.ends_with("/$batch"))
        .collect()
}

fn token_requests(log: &[RequestRecord]) -> Vec<&RequestRecord> {
    log.iter().filter(|r| r.path.contains("/oauth2/")).collect()
}

/// Waits until the operator has signed in (its start-up token request).
async fn wait_signed_in(s: &Scenario) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !token_requests(&s.sim.requests())
        .iter()
        .any(|r| r.status == 200)
    {
        assert!(
            Instant::now() < deadline,
            "the operator never signed in\n{}",
            s.log_context()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scrape(s: &Scenario) -> String {
    reqwest::get(format!("{}/metrics", s.operator().telemetry_url()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics")
}

/// The value of `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

fn failing(metric: &str, reason: &str) -> String {
    format!(
        "teams_app_operator_{metric}{{controller=\"teamsappinstallation\",reason=\"{reason}\"}}"
    )
}

#[tokio::test]
async fn a_429_storm_shows_at_once_and_retry_after_is_never_undercut() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Every Graph call answers 429 with Retry-After 2 for 15 s.
    const RETRY_AFTER: f64 = 2.0;
    let storm = json!({"failures": [
        {"status": 429, "retryAfter": RETRY_AFTER, "count": 1_000_000}
    ]});
    let t = through(
        "faults-429",
        storm,
        nothing_more,
        "Throttled",
        Duration::from_secs(15),
    )
    .await;

    // No call of a class went to the tenant within Retry-After of a 429 of that class (Graph
    // throttles each class on its own). A request already on its way when the 429 came back is
    // not a retry: those land within a few milliseconds of it.
    let in_flight = jiff::SignedDuration::from_millis(200);
    let wait = jiff::SignedDuration::try_from_secs_f64(RETRY_AFTER).expect("a wait");
    let log = graph_calls(&t.s.sim.requests())
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let mut undercut = Vec::new();
    for throttle in log.iter().filter(|r| r.status == 429) {
        let (from, until) = (throttle.time + in_flight, throttle.time + wait);
        undercut.extend(
            log.iter()
                .filter(|r| r.class == throttle.class && r.time > from && r.time < until)
                .map(|r| (throttle.time, r.time, r.method.clone(), r.path.clone())),
        );
    }
    let storm_calls = graph_calls(&t.log);
    let throttled = storm_calls.iter().filter(|r| r.status == 429).count();
    let redundant = t.report(
        "429 storm: 15 s, Retry-After 2 s, 20 new resources",
        "Throttled",
        &[
            (
                "Graph calls during the storm",
                format!("{} ({throttled} answered 429)", storm_calls.len()),
            ),
            (
                "calls within Retry-After of a 429",
                undercut.len().to_string(),
            ),
            (
                "reasons of u0-a0",
                format!("{:?}", t.statuses.reasons("u0-a0")),
            ),
        ],
    );
    assert!(undercut.is_empty(), "Retry-After undercut: {undercut:#?}");
    assert_eq!(redundant, 0, "a status write per retry");
    for (name, _) in &t.created {
        let reasons = t.statuses.reasons(name);
        let (first, last) = (reasons.first(), reasons.last());
        assert_eq!(
            first.map(String::as_str),
            Some("Throttled"),
            "{name}: {reasons:?}"
        );
        assert_eq!(
            last.map(String::as_str),
            Some("UpToDate"),
            "{name}: {reasons:?}"
        );
    }
}

#[tokio::test]
async fn a_503_outage_shows_at_once_and_costs_one_call_per_resource_per_backoff_step() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Every Graph call answers 503 (no Retry-After) for 20 s.
    let outage = json!({"failures": [{"status": 503, "count": 1_000_000}]});
    let reason = "GraphUnavailable";
    let t = through(
        "faults-503",
        outage,
        nothing_more,
        reason,
        Duration::from_secs(20),
    )
    .await;

    // The bound: a reconcile ends at its first failed call, so each resource costs one call per
    // step of its backoff (2 s, 4 s, 8 s, … ceilings, each jittered into its upper half: at most
    // 5 tries in 20 s) — 4 resources a user, at most 4 calls per user per step, 20 per user.
    const STEPS: usize = 5;
    let during = graph_calls(&t.log);
    let per_user = during.len() as f64 / USERS as f64;
    let metrics = scrape(&t.s).await;
    let failing_seconds = sample(&metrics, &failing("failing_seconds_total", reason));
    let failing_now = sample(&metrics, &failing("failing_resources", reason));
    let bound = APPS * STEPS;
    let redundant = t.report(
        "503 outage: 20 s, 20 new resources of 5 users",
        reason,
        &[
            (
                "Graph calls during the outage",
                format!(
                    "{} in all, {per_user:.1} per user (bound {bound})",
                    during.len()
                ),
            ),
            (
                "teams_app_operator_failing_seconds_total{GraphUnavailable}",
                format!("{failing_seconds:?} resource-seconds; failing now {failing_now:?}"),
            ),
        ],
    );
    assert!(
        during.len() <= USERS * bound,
        "{} calls during the outage",
        during.len()
    );
    assert_eq!(redundant, 0, "a status write per retry");
    assert!(
        failing_seconds.is_some_and(|seconds| seconds > 0.0),
        "the failing time is counted: {failing_seconds:?}"
    );
    assert_eq!(failing_now, Some(0.0), "nothing fails once all are Ready");
}

#[tokio::test]
async fn a_token_outage_is_one_request_at_a_time_and_shows_as_authentication_failed() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Entra answers 503 for 20 s, each answer after 200 ms; the operator's token stops working
    // (Graph answers 401 to it), so every resource needs a new one.
    const LATENCY: Duration = Duration::from_millis(200);
    let outage = json!({"latencyMs": LATENCY.as_millis() as u64, "failures": [
        {"pathContains": "/oauth2/", "status": 503, "count": 1_000_000}
    ]});
    let expire = |s: &Scenario| s.sim.expire_tokens();
    let reason = "AuthenticationFailed";
    let t = through(
        "faults-token",
        outage,
        expire,
        reason,
        Duration::from_secs(20),
    )
    .await;

    // The log records a token request when it is answered, LATENCY after it arrived: two in
    // flight at once would be answered less than LATENCY apart.
    let during = token_requests(&t.log);
    let slack = jiff::SignedDuration::from_millis(10);
    let least_gap = jiff::SignedDuration::try_from(LATENCY).expect("a gap") - slack;
    let overlapping: Vec<_> = during
        .windows(2)
        .filter(|pair| pair[1].time.duration_since(pair[0].time) < least_gap)
        .map(|pair| (pair[0].time, pair[1].time))
        .collect();
    let redundant = t.report(
        "token outage: 20 s of 503, 20 resources waiting",
        reason,
        &[(
            "token requests during the outage",
            format!("{} ({} overlapping)", during.len(), overlapping.len()),
        )],
    );
    assert!(
        overlapping.is_empty(),
        "token requests overlapped: {overlapping:?}"
    );
    assert!(!during.is_empty());
    assert_eq!(redundant, 0, "a status write per retry");
    let message = t
        .statuses
        .history("u0-a0")
        .into_iter()
        .find(|(_, s)| shows(s, reason))
        .and_then(|(_, s)| conditions::find(&s.conditions, READY).map(|c| c.message.clone()))
        .unwrap_or_default();
    assert!(
        message.contains("503"),
        "the message says what Entra answered: {message}"
    );
    assert!(!message.contains(SECRET), "{message}");
}
