//! Graph's budgets and latency, on the simulator: one faults document, and a fallback for a
//! simulator that predates per-class budgets.

use graph_sim::{FaultConfig, SimServer};
use serde_json::{Value, json};

use crate::knobs::Budgets;

/// The `PUT /_sim/faults` document for Graph's per-class budgets and a latency of
/// `latency_ms` ± `jitter_ms`.
pub fn graph_budgets(latency_ms: u64, jitter_ms: u64, budgets: &Budgets) -> Value {
    json!({
        "budgets": budgets,
        "latencyMs": latency_ms,
        "latencyJitterMs": jitter_ms,
    })
}

/// What the simulator was actually given.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// False when this simulator refused per-class budgets and got one tenant-wide limit.
    pub per_class_budgets: bool,
    pub faults: Value,
}

/// Applies [`graph_budgets`]; if this simulator version refuses `budgets`, falls back to one
/// rate limit for all classes together (the installedAppsRead budget) and a fixed latency.
pub fn apply(sim: &SimServer, latency_ms: u64, jitter_ms: u64, budgets: &Budgets) -> Applied {
    let wanted = graph_budgets(latency_ms, jitter_ms, budgets);
    match serde_json::from_value::<FaultConfig>(wanted.clone()) {
        Ok(config) => {
            sim.set_faults(config)
                .expect("the simulator takes Graph's budgets");
            Applied {
                per_class_budgets: true,
                faults: wanted,
            }
        }
        Err(refused) => {
            let fallback = json!({
                "rateLimitPerSecond": budgets.installed_apps_read,
                "latencyMs": latency_ms,
            });
            println!(
                "graph-sim refuses per-class budgets ({refused}); falling back to {fallback}: \
                 one limit for all classes together, no jitter"
            );
            let config = serde_json::from_value(fallback.clone()).expect("fallback faults");
            sim.set_faults(config)
                .expect("the simulator takes the fallback");
            Applied {
                per_class_budgets: false,
                faults: fallback,
            }
        }
    }
}
