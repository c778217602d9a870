//! What the benchmark watches: the operator process (/proc), the API server (its `/metrics`)
//! and the resources' readiness (a watch).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use teams_app_operator::api::TeamsAppInstallation;

use crate::tenant::LATEST;

/// A memory figure of `/proc/PID/status` (`VmHWM`: peak resident, `VmRSS`: resident now), MiB.
pub fn memory_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds the process has used, user + system: `utime` and `stime` of `/proc/PID/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // Field 3 (state) is fields[0], so field 14 is fields[11].
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// Status writes the API server has served for TeamsAppInstallations since it started: its
/// `apiserver_request_total` for the `status` subresource, verb PATCH or APPLY (server-side
/// apply). Counts every write request, also one that changed nothing. `None` when `/metrics`
/// cannot be read.
pub async fn status_writes(client: &kube::Client) -> Option<u64> {
    let mut request = kube::core::Request::new("/metrics")
        .list(&Default::default())
        .ok()?;
    *request.uri_mut() = "/metrics".parse().ok()?;
    let text = client.request_text(request).await.ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
            .filter(|l| {
                l.contains("resource=\"teamsappinstallations\"")
                    && l.contains("subresource=\"status\"")
                    && (l.contains("verb=\"PATCH\"") || l.contains("verb=\"APPLY\""))
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>() as u64,
    )
}

pub fn is_up_to_date(obj: &TeamsAppInstallation) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.observed_generation == obj.metadata.generation
            && s.installed_version.as_deref() == Some(LATEST)
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

#[derive(Default)]
struct State {
    ready: HashMap<String, bool>,
    count: usize,
    /// (when, how many up to date), at every change.
    samples: Vec<(Instant, usize)>,
}

/// How many resources are up to date, kept current by a watch.
#[derive(Clone)]
pub struct Readiness(Arc<Mutex<State>>);

impl Readiness {
    pub fn watch(api: Api<TeamsAppInstallation>) -> Readiness {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
            while let Some(event) = events.next().await {
                let Ok(event) = event else { continue };
                let mut s = shared.lock().expect("readiness lock");
                match event {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        let name = o.metadata.name.clone().unwrap_or_default();
                        let now = is_up_to_date(&o);
                        let was = s.ready.insert(name, now).unwrap_or(false);
                        if was != now {
                            s.count = if now { s.count + 1 } else { s.count - 1 };
                            let sample = (Instant::now(), s.count);
                            s.samples.push(sample);
                        }
                    }
                    watcher::Event::Delete(o) => {
                        let name = o.metadata.name.clone().unwrap_or_default();
                        if s.ready.remove(&name) == Some(true) {
                            s.count -= 1;
                        }
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
        });
        Readiness(state)
    }

    pub fn ready(&self) -> usize {
        self.0.lock().expect("readiness lock").count
    }

    /// (seconds since `t0`, up to date) from `t0` on.
    pub fn curve(&self, t0: Instant) -> Vec<(f64, usize)> {
        let s = self.0.lock().expect("readiness lock");
        let before = s
            .samples
            .iter()
            .take_while(|(t, _)| *t < t0)
            .last()
            .map_or(0, |(_, n)| *n);
        std::iter::once((0.0, before))
            .chain(
                s.samples
                    .iter()
                    .filter(|(t, _)| *t >= t0)
                    .map(|(t, n)| (t.duration_since(t0).as_secs_f64(), *n)),
            )
            .collect()
    }
}
