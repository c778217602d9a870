//! A run of change-latency probes: how many, how many never came, and the percentiles. Phases
//! 3 and 4 measure it; the report prints it.

use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeLatency {
    pub probes: usize,
    /// Probes whose first Graph call for the user never came (within 30 s).
    pub missed: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub samples_ms: Vec<f64>,
}

impl ChangeLatency {
    /// Of `probes` probes, the `samples` that came (ms).
    pub fn of(probes: usize, samples: Vec<f64>) -> ChangeLatency {
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        ChangeLatency {
            probes,
            missed: probes - samples.len(),
            p50_ms: percentile(&sorted, 50.0),
            p99_ms: percentile(&sorted, 99.0),
            samples_ms: samples,
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}
