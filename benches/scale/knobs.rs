//! The benchmark's knobs: environment variables, read once (smoke defaults without `--bench`).

use std::path::PathBuf;
use std::time::Duration;

/// Graph's per-class budgets, requests per second (graph-contract.md).
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budgets {
    pub installed_apps_read: u32,
    pub catalog_read: u32,
    pub install: u32,
    pub delete: u32,
    pub other: u32,
}

impl Budgets {
    pub const GRAPH: Budgets = Budgets {
        installed_apps_read: 30,
        catalog_read: 30,
        install: 30,
        delete: 15,
        other: 30,
    };
}

#[derive(Debug, Clone)]
pub struct Knobs {
    /// Without `--bench` (`cargo test --all-targets`): small, unthrottled, asserted.
    pub smoke: bool,
    pub users: usize,
    pub apps_per_user: usize,
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// `None`: Graph unthrottled (the simulator's budget lifted, and the operator's).
    pub budgets: Option<Budgets>,
    pub hold: Duration,
    pub probes: usize,
    /// Whether the steady-state phase runs (with notifications off and on), and its
    /// compressed periods: the drift-check interval without notifications, the resync with.
    pub steady: bool,
    pub steady_interval: Duration,
    pub steady_resync: Duration,
    pub concurrency: Option<String>,
    pub out: PathBuf,
    /// Where the convergence phase's Graph calls go, one JSON record a line (to trace where calls
    /// beyond the minimum go); `None`: not written.
    pub request_log: Option<PathBuf>,
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

impl Knobs {
    pub fn from_env() -> Knobs {
        let smoke = !std::env::args().any(|a| a == "--bench");
        let (users, apps, latency, jitter, hold, probes) = if smoke {
            (50, 4, 0, 0, 3, 5)
        } else {
            (2_500, 4, 80, 20, 180, 50)
        };
        let (steady_interval, steady_resync) = if smoke { (2, 4) } else { (60, 120) };
        let budgets = if var("TAO_BENCH_UNLIMITED", smoke) {
            None
        } else {
            let b = Budgets::GRAPH;
            Some(Budgets {
                installed_apps_read: var(
                    "TAO_BENCH_BUDGET_INSTALLED_APPS_READ",
                    b.installed_apps_read,
                ),
                catalog_read: var("TAO_BENCH_BUDGET_CATALOG_READ", b.catalog_read),
                install: var("TAO_BENCH_BUDGET_INSTALL", b.install),
                delete: var("TAO_BENCH_BUDGET_DELETE", b.delete),
                other: var("TAO_BENCH_BUDGET_OTHER", b.other),
            })
        };
        let default_out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(if smoke {
            "target/bench/scale-smoke.json"
        } else {
            "target/bench/scale.json"
        });
        Knobs {
            smoke,
            users: var("TAO_BENCH_USERS", users),
            apps_per_user: var("TAO_BENCH_APPS_PER_USER", apps),
            latency_ms: var("TAO_BENCH_LATENCY_MS", latency),
            jitter_ms: var("TAO_BENCH_JITTER_MS", jitter),
            budgets,
            hold: Duration::from_secs(var("TAO_BENCH_HOLD_SECS", hold)),
            probes: var("TAO_BENCH_PROBES", probes),
            steady: var("TAO_BENCH_STEADY", true),
            steady_interval: Duration::from_secs(var(
                "TAO_BENCH_STEADY_INTERVAL_SECS",
                steady_interval,
            )),
            steady_resync: Duration::from_secs(var("TAO_BENCH_STEADY_RESYNC_SECS", steady_resync)),
            concurrency: std::env::var("TAO_BENCH_CONCURRENCY").ok(),
            out: std::env::var_os("TAO_BENCH_OUT").map_or(default_out, PathBuf::from),
            request_log: std::env::var_os("TAO_BENCH_REQUEST_LOG").map(PathBuf::from),
        }
    }
}
