//! Scale benchmark: the gap between the operator and Graph's budgets. Users × apps
//! `TeamsAppInstallation`s on a real kube-apiserver, reconciled by the operator binary against
//! graph-sim, in four phases:
//!
//! 1. Convergence: all resources exist before the operator starts; seconds until all are up to
//!    date, Graph calls by class and status (429s), the floor — max over classes of the fewest
//!    calls of the class ÷ its budget — and the ratio to it, status writes (the API server's
//!    `apiserver_request_total` for the status subresource), operator CPU (utime + stime) and
//!    RSS (VmHWM, VmRSS).
//! 2. Hold: the converged state for a while; Graph calls per minute, status writes (target 0).
//! 3. Steady state with change notifications off and on (`steady`): Graph reads per hour on a
//!    compressed clock, scaled back to the defaults (30m interval, 12h resync), and the time
//!    from an out-of-band uninstall to the correcting install in each mode.
//! 4. Change latency: the budgets lifted and the operator restarted unthrottled, resources
//!    created one by one for users who miss an app; time from the create to the simulator's
//!    first Graph call for that user (p50, p99).
//!
//! Results are printed and written to `target/bench/scale.json`, with the convergence curve
//! next to it (`scale.svg`).
//!
//!   cargo bench --bench scale
//!
//! Knobs (environment):
//!   TAO_BENCH_USERS (2500), TAO_BENCH_APPS_PER_USER (4): of the resources, 5% miss their app,
//!     20% lag one version, the rest are current.
//!   TAO_BENCH_LATENCY_MS (80), TAO_BENCH_JITTER_MS (20): the simulator's latency.
//!   TAO_BENCH_BUDGET_{INSTALLED_APPS_READ,CATALOG_READ,INSTALL,DELETE,OTHER} (30, 30, 30, 15, 30):
//!     the simulator's per-class budgets, requests/s. A simulator without per-class budgets
//!     gets one tenant-wide `rateLimitPerSecond` (the installedAppsRead budget) instead, and
//!     the run says so. The operator runs with its defaults (Graph's budgets).
//!   TAO_BENCH_UNLIMITED=true: no budgets anywhere (simulator and operator).
//!   TAO_BENCH_HOLD_SECS (180), TAO_BENCH_PROBES (50: phases 3 and 4 each),
//!   TAO_BENCH_STEADY (true; false skips phase 3), TAO_BENCH_STEADY_INTERVAL_SECS (60),
//!   TAO_BENCH_STEADY_RESYNC_SECS (120): phase 3's compressed interval (notifications off) and
//!   resync (on), TAO_BENCH_CONCURRENCY (operator's default),
//!   TAO_BENCH_OUT (target/bench/scale.json), TAO_BENCH_REQUEST_LOG (unset): a file for the
//!     convergence phase's simulator request log, one JSON record a line.
//!
//! `cargo test --all-targets` runs it as a smoke test (no `--bench`): 50 users × 4 apps, no
//! budgets, no latency, caches and interval at 1h, a 3 s hold, 5 probes, the steady state on a 2 s
//! interval and a 4 s resync; it asserts the calls that are exact (see `smoke::check`) and writes
//! `target/bench/scale-smoke.json`.

#[path = "../../tests/support/mod.rs"]
mod support;

mod calls;
mod knobs;
mod latency;
mod observe;
mod report;
mod sim_faults;
mod smoke;
mod steady;
mod tenant;

use std::time::{Duration, Instant};

use futures::StreamExt;
use graph_sim::{FaultConfig, RequestRecord, Seed, SimOptions, SimServer};
use kube::Api;
use kube::api::PostParams;
use support::operator::{Operator, OperatorCommand};
use teams_app_operator::api::TeamsAppInstallation;

use calls::Tally;
use knobs::Knobs;
use latency::ChangeLatency;
use observe::{Readiness, cpu_seconds, memory_mib, status_writes};
use report::{Convergence, Hold, Report};
use tenant::{CLIENT_ID, Plan, SECRET, TENANT};

fn resource(name: &str, user: &str, app: &str) -> TeamsAppInstallation {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "teamsapps.dev/v1alpha1",
        "kind": "TeamsAppInstallation",
        "metadata": {"name": name},
        "spec": {"user": user, "app": {"id": app}},
    }))
    .expect("valid resource")
}

struct Bench {
    knobs: Knobs,
    client: kube::Client,
    api: Api<TeamsAppInstallation>,
    namespace: String,
    sim: SimServer,
}

impl Bench {
    /// A fresh namespace on the control plane, and a simulator seeded with the plan's tenant.
    async fn start(knobs: Knobs, plan: &Plan) -> Self {
        let client = support::client().await;
        let namespace = support::fresh_namespace(&client, "bench").await;
        let sim = SimServer::start(
            "127.0.0.1:0".parse().expect("address"),
            Seed::from_json_str(&tenant::seed_json(plan.users, plan.apps)).expect("bench seed"),
            SimOptions::default(),
        )
        .await
        .expect("graph-sim starts");
        let api: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), &namespace);
        Self {
            knobs,
            client,
            api,
            namespace,
            sim,
        }
    }

    fn spawn_operator(&self, args: &[String], phase: &str) -> Operator {
        let log =
            std::env::temp_dir().join(format!("bench-operator-{}-{phase}.log", self.namespace));
        OperatorCommand::new(&log)
            .kubeconfig(&support::kubeconfig_path())
            .graph_sim(&self.sim.base_url(), TENANT, CLIENT_ID, SECRET)
            .args(["--namespace", &self.namespace])
            .args(args.iter().map(String::as_str))
            // TAO_BENCH_RUST_LOG: the operator's log filter, to trace a run (default warn).
            .env(
                "RUST_LOG",
                std::env::var("TAO_BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
    }

    fn operator_args(&self, unthrottled: bool) -> Vec<String> {
        let mut args = rps_args(unthrottled);
        if self.knobs.smoke {
            // Nothing expires during the run, so the calls are the first pass's and no more.
            args.extend(
                [
                    "--catalog-cache-ttl",
                    "1h",
                    "--user-snapshot-ttl",
                    "1h",
                    "--default-interval",
                    "1h",
                ]
                .map(String::from),
            );
        }
        args.extend(self.concurrency_args());
        args
    }

    fn concurrency_args(&self) -> Vec<String> {
        let concurrency = self.knobs.concurrency.iter();
        concurrency
            .flat_map(|c| ["--concurrency".to_string(), c.clone()])
            .collect()
    }

    async fn create_all(&self, plan: &Plan) {
        let apps = plan.apps;
        let creates = futures::stream::iter((0..plan.resources).map(|r| {
            let api = self.api.clone();
            async move {
                let (u, a) = (r / apps, r % apps);
                let obj = resource(
                    &tenant::resource_name(u, a),
                    &tenant::upn(u),
                    &tenant::app_id(a),
                );
                api.create(&PostParams::default(), &obj)
                    .await
                    .unwrap_or_else(|e| panic!("create resource {r}: {e}"));
            }
        }));
        creates.buffer_unordered(16).collect::<Vec<()>>().await;
    }
}

/// The operator's Graph budgets: Graph's (its defaults, spelled out), or none.
fn rps_args(unthrottled: bool) -> Vec<String> {
    let (read, write, delete) = if unthrottled {
        ("0", "0", "0")
    } else {
        ("30", "30", "15")
    };
    [
        "--graph-read-rps",
        read,
        "--graph-write-rps",
        write,
        "--graph-delete-rps",
        delete,
    ]
    .map(String::from)
    .to_vec()
}

/// Waits until the simulator has served nothing new for `quiet` (at most `limit`).
async fn settle(sim: &SimServer, quiet: Duration, limit: Duration) {
    let started = Instant::now();
    let mut seen = sim.requests().len();
    let mut still_since = Instant::now();
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = sim.requests().len();
        if now != seen {
            seen = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= quiet {
            return;
        }
    }
}

fn since(records: &[RequestRecord], t: jiff::Timestamp) -> impl Iterator<Item = &RequestRecord> {
    records.iter().filter(move |r| r.time >= t)
}

#[tokio::main]
async fn main() {
    let knobs = Knobs::from_env();
    let plan = Plan::new(knobs.users, knobs.apps_per_user);
    let bench = Bench::start(knobs, &plan).await;
    let k = &bench.knobs;

    let readiness = Readiness::watch(bench.api.clone());
    let creating = Instant::now();
    bench.create_all(&plan).await;
    println!(
        "created {} resources in {:.1} s",
        plan.resources,
        creating.elapsed().as_secs_f64()
    );

    let mut converged = converge(&bench, &plan, &readiness).await;
    let hold = hold(&bench, &converged).await;
    converged.operator.kill();
    let steady_state = if k.steady {
        Some(steady::run(&bench, &plan).await)
    } else {
        None
    };
    let change_latency = change_latency(&bench, &plan).await;

    let report = Report {
        smoke: k.smoke,
        plan,
        latency_ms: k.latency_ms,
        jitter_ms: k.jitter_ms,
        budgets: k.budgets,
        simulator_faults: converged.applied,
        operator_args: converged.operator_args,
        convergence: converged.convergence,
        hold,
        steady_state,
        change_latency,
    };
    report.print();
    report.write(&k.out);
    if k.smoke {
        smoke::check(&report);
    } else {
        assert_eq!(
            report.convergence.ready, plan.resources,
            "not all resources converged"
        );
    }
}

/// What phase 1 hands on: its results, and the operator it leaves running for the hold with
/// the marks the hold is measured from.
struct Converged {
    convergence: Convergence,
    applied: Option<sim_faults::Applied>,
    operator_args: Vec<String>,
    operator: Operator,
    pid: u32,
    at: jiff::Timestamp,
    cpu_seconds: Option<f64>,
    status_writes: Option<u64>,
}

/// Phase 1: convergence under Graph's budgets. The operator starts with all resources already
/// there; runs until all are up to date (or the deadline passes).
async fn converge(bench: &Bench, plan: &Plan, readiness: &Readiness) -> Converged {
    let k = &bench.knobs;
    let applied = k
        .budgets
        .as_ref()
        .map(|b| sim_faults::apply(&bench.sim, k.latency_ms, k.jitter_ms, b));
    if k.budgets.is_none() && (k.latency_ms > 0 || k.jitter_ms > 0) {
        let latency = serde_json::json!({"latencyMs": k.latency_ms});
        bench
            .sim
            .set_faults(serde_json::from_value(latency).expect("latency"))
            .expect("latency");
    }
    let args = bench.operator_args(k.budgets.is_none());
    let writes_before = status_writes(&bench.client).await;
    let started = Instant::now();
    let mut operator = bench.spawn_operator(&args, "converge");
    let deadline = Duration::from_secs(120 + plan.resources as u64 / 5);
    while readiness.ready() < plan.resources && started.elapsed() < deadline {
        assert!(
            operator.exited().is_none(),
            "the operator exited; see its log:\n{}",
            support::operator::tail(&operator.log(), 20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds_to_ready = started.elapsed().as_secs_f64();
    let converged_at = jiff::Timestamp::now();
    let pid = operator.pid();
    let cpu_converged = cpu_seconds(pid);
    let writes_converged = status_writes(&bench.client).await;
    let records = bench.sim.requests();
    if let Some(path) = &k.request_log {
        report::write_lines(path, &records);
    }
    let graph_calls = Tally::of(&records);
    let floor = k.budgets.as_ref().map(|b| calls::floor(plan, b));
    let fallback_floor_seconds = applied.as_ref().filter(|a| !a.per_class_budgets).map(|_| {
        let all: usize = plan.minimal_calls().iter().map(|(_, n)| n).sum();
        all as f64 / f64::from(k.budgets.map_or(1, |b| b.installed_apps_read.max(1)))
    });
    let convergence = Convergence {
        seconds_to_ready,
        ready: readiness.ready(),
        ratio_to_floor: floor.as_ref().map(|f| seconds_to_ready / f.seconds),
        floor,
        fallback_floor_seconds,
        graph_calls,
        status_writes: writes_converged.zip(writes_before).map(|(a, b)| a - b),
        operator_cpu_seconds: cpu_converged,
        operator_peak_rss_mib: memory_mib(pid, "VmHWM"),
        operator_rss_mib: memory_mib(pid, "VmRSS"),
        curve: report::per_second(&readiness.curve(started)),
    };
    Converged {
        convergence,
        applied,
        operator_args: args,
        operator,
        pid,
        at: converged_at,
        cpu_seconds: cpu_converged,
        status_writes: writes_converged,
    }
}

/// Phase 2: hold the converged state; what the operator still calls and writes meanwhile.
async fn hold(bench: &Bench, converged: &Converged) -> Hold {
    let k = &bench.knobs;
    let pid = converged.pid;
    tokio::time::sleep(k.hold).await;
    let hold_records = bench.sim.requests();
    let hold_calls = Tally::of(since(&hold_records, converged.at));
    let hold_writes = status_writes(&bench.client).await;
    Hold {
        seconds: k.hold.as_secs_f64(),
        graph_calls_per_minute: hold_calls.total as f64 * 60.0 / k.hold.as_secs_f64().max(1.0),
        graph_calls: hold_calls,
        status_writes: hold_writes.zip(converged.status_writes).map(|(a, b)| a - b),
        operator_cpu_seconds: cpu_seconds(pid)
            .zip(converged.cpu_seconds)
            .map(|(a, b)| a - b),
        operator_rss_mib: memory_mib(pid, "VmRSS"),
    }
}

/// Phase 4: change → first Graph call, unthrottled: the faults lifted and a fresh operator.
async fn change_latency(bench: &Bench, plan: &Plan) -> ChangeLatency {
    bench
        .sim
        .set_faults(FaultConfig::default())
        .expect("lift the faults");
    let mut operator = bench.spawn_operator(&bench.operator_args(true), "latency");
    // Its start-up pass over the existing resources first.
    settle(&bench.sim, Duration::from_secs(3), Duration::from_secs(120)).await;
    let change_latency = probe_latency(bench, plan, &mut operator).await;
    operator.kill();
    change_latency
}

/// Creates a resource for the probe app (which nobody has) for one user after another and
/// times the simulator's first Graph call for that user.
async fn probe_latency(bench: &Bench, plan: &Plan, operator: &mut Operator) -> ChangeLatency {
    let probes = bench.knobs.probes.min(plan.users);
    let step = (plan.users / probes.max(1)).max(1);
    let mut samples = Vec::new();
    for p in 0..probes {
        bench.sim.clear_requests();
        let upn = tenant::upn(p * step);
        let obj = resource(&format!("probe-{p}"), &upn, &tenant::probe_app());
        let created = jiff::Timestamp::now();
        bench
            .api
            .create(&PostParams::default(), &obj)
            .await
            .expect("create a probe");
        let waiting = Instant::now();
        let first = loop {
            let hit = bench
                .sim
                .requests()
                .into_iter()
                .find(|r| calls::for_user(r, &upn));
            if hit.is_some() || waiting.elapsed() > Duration::from_secs(30) {
                break hit;
            }
            assert!(operator.exited().is_none(), "the operator exited");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if let Some(r) = first {
            samples.push(r.time.duration_since(created).as_secs_f64() * 1000.0);
        }
        // Its install and verify, before the next probe.
        settle(
            &bench.sim,
            Duration::from_millis(300),
            Duration::from_secs(10),
        )
        .await;
    }
    ChangeLatency::of(probes, samples)
}
