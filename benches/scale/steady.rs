//! Phase 3: the steady state with Graph's change notifications off and on (issue 22): Graph
//! reads per hour once everything is up to date, and how long an out-of-band uninstall of a
//! managed app stays uncorrected.
//!
//! Hours cannot be waited for, so each mode runs on a compressed clock: every period that sets
//! the steady state's reads — the drift check (`--default-interval`, default 30m), the safety
//! re-check under a healthy subscription (`--notification-resync`, 12h), the two read caches
//! (`--catalog-cache-ttl`, `--user-snapshot-ttl`, 30s) — is divided by the same factor, and
//! the reads counted are multiplied back to reads per real hour. The two modes use different
//! factors: after a restart a resource re-checks no sooner than half its period later (see
//! `installation::core::schedule`), so a window must open half a period after the start-up
//! pass, and half of 12h is out of reach while half of 30m is not.
//!
//! Each mode restarts the operator unthrottled (the budgets are real-time and the compressed
//! clock multiplies the rate), counts the reads of a window of half its period opening half a
//! period after its start-up pass, then removes a managed app out of band for one user after
//! another and times the change to the correcting install (`POST …/installedApps`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use graph_sim::{FaultConfig, RequestRecord};
use serde::Serialize;

use crate::calls::{self, Tally};
use crate::latency::ChangeLatency;
use crate::support::operator::{Operator, free_port};
use crate::tenant::{self, Plan, Start, TENANT};
use crate::{Bench, since};

/// The operator's defaults the compressed clocks stand for.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30 * 60);
const DEFAULT_RESYNC: Duration = Duration::from_secs(12 * 3600);
/// `--catalog-cache-ttl` and `--user-snapshot-ttl`.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// How long a probe's correction is waited for at least.
const PROBE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SteadyState {
    pub off: Mode,
    pub on: Mode,
    /// Reads per hour with notifications off ÷ with them on.
    pub fewer_reads: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mode {
    pub notifications: bool,
    pub operator_args: Vec<String>,
    /// The real default ÷ the period this run used: 30m ÷ `--default-interval` (off), 12h ÷
    /// `--notification-resync` (on).
    pub time_scale: f64,
    /// The period that sets the reads, as run (compressed).
    pub period_seconds: f64,
    /// Healthy subscriptions at the window's opening, by the operator's metrics (on only).
    pub healthy_subscriptions: Option<u64>,
    pub window_seconds: f64,
    pub window_calls: Tally,
    /// installedApps and catalog reads in the window.
    pub window_reads: usize,
    /// `window_reads` per real hour: per compressed hour ÷ `time_scale`.
    pub reads_per_hour: f64,
    /// Out-of-band uninstall → the correcting install, as run (compressed for `off`).
    pub change_to_install: ChangeLatency,
}

/// Phase 3, notifications off and then on (a later run's subscriptions would notify a
/// receiver that is gone).
pub async fn run(bench: &Bench, plan: &Plan) -> SteadyState {
    let k = &bench.knobs;
    let off = measure(bench, plan, Clock::off(k.steady_interval)).await;
    let on = measure(bench, plan, Clock::on(k.steady_resync)).await;
    let fewer_reads = (on.reads_per_hour > 0.0).then(|| off.reads_per_hour / on.reads_per_hour);
    SteadyState {
        off,
        on,
        fewer_reads,
    }
}

/// One mode's compressed clock.
struct Clock {
    notifications: bool,
    /// The period that sets the steady state's reads: the interval (off), the resync (on).
    period: Duration,
    /// `--default-interval` (and `--min-interval`, so that the floor does not undo it).
    interval: Duration,
    scale: f64,
}

impl Clock {
    fn off(interval: Duration) -> Clock {
        Clock {
            notifications: false,
            period: interval,
            interval,
            scale: DEFAULT_INTERVAL.as_secs_f64() / interval.as_secs_f64(),
        }
    }

    /// The interval keeps the defaults' ratio to the resync (30m : 12h).
    fn on(resync: Duration) -> Clock {
        let scale = DEFAULT_RESYNC.as_secs_f64() / resync.as_secs_f64();
        Clock {
            notifications: true,
            period: resync,
            interval: DEFAULT_INTERVAL.div_f64(scale),
            scale,
        }
    }

    /// A default divided by the scale, in whole milliseconds (at least one).
    fn scaled(&self, real: Duration) -> String {
        let ms = real.div_f64(self.scale).as_millis().max(1);
        format!("{ms}ms")
    }

    /// After the start-up pass, when the window may open: every resource's next check is at
    /// least half a period after its last (on its user's slot, `schedule::drift_delay`). With
    /// notifications, a resource checked before its app's subscription was healthy is still
    /// on its interval: one and a half intervals more see its next check relax it.
    fn settling(&self) -> Duration {
        let stragglers = if self.notifications {
            self.interval.mul_f64(1.5)
        } else {
            Duration::ZERO
        };
        self.period / 2 + stragglers
    }

    fn label(&self) -> &'static str {
        if self.notifications { "on" } else { "off" }
    }
}

async fn measure(bench: &Bench, plan: &Plan, clock: Clock) -> Mode {
    // Graph's latency would stretch the compressed caches' lifetimes; the probes get it back.
    bench
        .sim
        .set_faults(FaultConfig::default())
        .expect("lift the faults");
    bench.sim.clear_requests();
    bench.sim.clear_notifications();
    let args = operator_args(bench, &clock);
    let started = jiff::Timestamp::now();
    let mut operator = bench.spawn_operator(&args, &format!("steady-{}", clock.label()));
    start_up_pass(bench, plan, &mut operator, started).await;
    tokio::time::sleep(clock.settling()).await;

    let healthy_subscriptions = if clock.notifications {
        healthy_subscriptions(&operator).await
    } else {
        None
    };
    let window = clock.period / 2;
    let opened = jiff::Timestamp::now();
    tokio::time::sleep(window).await;
    let closed = jiff::Timestamp::now();
    let records = bench.sim.requests();
    let window_calls = Tally::of(since(&records, opened).filter(|r| r.time < closed));
    let window_reads = window_calls.class("installedAppsRead") + window_calls.class("catalogRead");
    let per_compressed_hour = window_reads as f64 * 3600.0 / window.as_secs_f64();

    bench
        .sim
        .set_faults(latency(bench))
        .expect("the simulator's latency");
    let change_to_install = if clock.notifications {
        one_at_a_time(bench, plan, &mut operator).await
    } else {
        all_at_once(
            bench,
            plan,
            &mut operator,
            (clock.period * 2).max(PROBE_WAIT),
        )
        .await
    };
    operator.kill();
    Mode {
        notifications: clock.notifications,
        operator_args: args,
        time_scale: clock.scale,
        period_seconds: clock.period.as_secs_f64(),
        healthy_subscriptions,
        window_seconds: window.as_secs_f64(),
        window_calls,
        window_reads,
        reads_per_hour: per_compressed_hour / clock.scale,
        change_to_install,
    }
}

fn operator_args(bench: &Bench, clock: &Clock) -> Vec<String> {
    let interval = format!("{}ms", clock.interval.as_millis());
    let ttl = clock.scaled(DEFAULT_CACHE_TTL);
    let mut args: Vec<String> = crate::rps_args(true);
    args.extend(
        [
            "--default-interval",
            &interval,
            "--min-interval",
            &interval,
            "--catalog-cache-ttl",
            &ttl,
            "--user-snapshot-ttl",
            &ttl,
        ]
        .map(String::from),
    );
    if clock.notifications {
        let port = free_port();
        args.extend([
            "--notification-resync".to_string(),
            format!("{}ms", clock.period.as_millis()),
            "--notification-addr".to_string(),
            format!("127.0.0.1:{port}"),
            "--notification-url".to_string(),
            format!("http://127.0.0.1:{port}"),
        ]);
    }
    args.extend(bench.concurrency_args());
    args
}

/// The simulator's latency without its budgets.
fn latency(bench: &Bench) -> FaultConfig {
    let k = &bench.knobs;
    serde_json::from_value(serde_json::json!({
        "latencyMs": k.latency_ms,
        "latencyJitterMs": k.jitter_ms,
    }))
    .expect("latency faults")
}

/// Waits until the restarted operator has read every user's installed apps once.
async fn start_up_pass(
    bench: &Bench,
    plan: &Plan,
    operator: &mut Operator,
    since: jiff::Timestamp,
) {
    let limit = Duration::from_secs(120 + plan.resources as u64 / 50);
    let waiting = Instant::now();
    loop {
        let read: HashSet<String> = bench
            .sim
            .requests()
            .iter()
            .filter(|r| r.time >= since && calls::is(r, "installedAppsRead"))
            .filter_map(|r| r.user.as_deref().map(str::to_lowercase))
            .collect();
        if read.len() >= plan.users {
            return;
        }
        assert!(
            waiting.elapsed() < limit,
            "the start-up pass read {} of {} users in {limit:?}",
            read.len(),
            plan.users
        );
        assert_running(operator);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn assert_running(operator: &mut Operator) {
    assert!(
        operator.exited().is_none(),
        "the operator exited; see its log:\n{}",
        crate::support::operator::tail(&operator.log(), 20)
    );
}

/// `teams_app_operator_subscriptions{state="healthy"}` on the operator's `/metrics`.
async fn healthy_subscriptions(operator: &Operator) -> Option<u64> {
    let url = format!("{}/metrics", operator.telemetry_url());
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(r#"teams_app_operator_subscriptions{state="healthy"}"#))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// The probes' (user, app): resources that were up to date from the start, spread over the
/// tenant and its apps. Not ones the operator wrote in phase 1: within `--write-verify-window`
/// (10m) of its own install, a missing app reads as Graph's lag and is only re-read. `second`
/// takes the ones halfway between the first set's, so each mode removes apps of its own.
fn probes(bench: &Bench, plan: &Plan, second: bool) -> Vec<(String, String)> {
    let untouched: Vec<usize> = (0..plan.resources)
        .filter(|r| tenant::start(*r) == Start::Current)
        .collect();
    let probes = bench.knobs.probes.min(untouched.len() / 2);
    let step = untouched.len() / probes.max(1);
    let offset = if second { step / 2 } else { 0 };
    // One more each time: the next untouched resource is the user's next app, or the next
    // user's, so the apps take turns (with a step alone they may all be one app).
    (0..probes)
        .map(|p| untouched[(p * step + offset + p) % untouched.len()])
        .map(|r| (tenant::upn(r / plan.apps), tenant::app_id(r % plan.apps)))
        .collect()
}

fn uninstall(bench: &Bench, upn: &str, app: &str) -> jiff::Timestamp {
    let at = jiff::Timestamp::now();
    bench
        .sim
        .uninstall_for_user(TENANT, upn, app)
        .unwrap_or_else(|e| panic!("uninstall {app} for {upn}: {e:?}"));
    at
}

/// The first install for `upn` at or after `removed` (each probe user misses only that app).
fn reinstalled(records: &[RequestRecord], upn: &str, removed: jiff::Timestamp) -> Option<f64> {
    since(records, removed)
        .find(|r| calls::for_user(r, upn) && calls::is(r, "install"))
        .map(|r| r.time.duration_since(removed).as_secs_f64() * 1000.0)
}

/// With notifications: one uninstall at a time, the next once the last is corrected (or
/// [`PROBE_WAIT`] has passed).
async fn one_at_a_time(bench: &Bench, plan: &Plan, operator: &mut Operator) -> ChangeLatency {
    let probes = probes(bench, plan, true);
    let mut samples = Vec::new();
    for (upn, app) in &probes {
        let removed = uninstall(bench, upn, app);
        let waiting = Instant::now();
        loop {
            if let Some(ms) = reinstalled(&bench.sim.requests(), upn, removed) {
                samples.push(ms);
                break;
            }
            if waiting.elapsed() > PROBE_WAIT {
                break;
            }
            assert_running(operator);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Its verify read, before the next.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ChangeLatency::of(probes.len(), samples)
}

/// Without notifications the correction waits for each user's drift check, anywhere within an
/// interval: all uninstalls at once, then up to `deadline` for the checks.
async fn all_at_once(
    bench: &Bench,
    plan: &Plan,
    operator: &mut Operator,
    deadline: Duration,
) -> ChangeLatency {
    let probes = probes(bench, plan, false);
    let removed: Vec<_> = probes
        .iter()
        .map(|(upn, app)| uninstall(bench, upn, app))
        .collect();
    let waiting = Instant::now();
    loop {
        let records = bench.sim.requests();
        let samples: Vec<f64> = probes
            .iter()
            .zip(&removed)
            .filter_map(|((upn, _), at)| reinstalled(&records, upn, *at))
            .collect();
        if samples.len() == probes.len() || waiting.elapsed() > deadline {
            return ChangeLatency::of(probes.len(), samples);
        }
        assert_running(operator);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
