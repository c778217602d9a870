//! The benchmark's results: printed, written as JSON, and the convergence curve as an SVG.

use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::calls::{Floor, Tally};
use crate::knobs::Budgets;
use crate::latency::ChangeLatency;
use crate::sim_faults::Applied;
use crate::steady::{Mode, SteadyState};
use crate::tenant::Plan;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub smoke: bool,
    pub plan: Plan,
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Graph's budgets the run stands for; `None` when unthrottled.
    pub budgets: Option<Budgets>,
    /// What the simulator was given (`None`: nothing, unthrottled).
    pub simulator_faults: Option<Applied>,
    pub operator_args: Vec<String>,
    pub convergence: Convergence,
    pub hold: Hold,
    /// `None` with `TAO_BENCH_STEADY=false`.
    pub steady_state: Option<SteadyState>,
    pub change_latency: ChangeLatency,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Convergence {
    /// From the operator's start (all resources already created) until all are up to date.
    pub seconds_to_ready: f64,
    pub ready: usize,
    pub floor: Option<Floor>,
    pub ratio_to_floor: Option<f64>,
    /// Under the fallback's one tenant-wide limit: all minimal calls ÷ that limit.
    pub fallback_floor_seconds: Option<f64>,
    pub graph_calls: Tally,
    /// TeamsAppInstallation status PATCH/APPLY requests the API server served (its metrics).
    pub status_writes: Option<u64>,
    pub operator_cpu_seconds: Option<f64>,
    pub operator_peak_rss_mib: Option<f64>,
    pub operator_rss_mib: Option<f64>,
    /// (seconds since the operator started, resources up to date), the last value each second.
    pub curve: Vec<(f64, usize)>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub seconds: f64,
    pub graph_calls: Tally,
    pub graph_calls_per_minute: f64,
    pub status_writes: Option<u64>,
    pub operator_cpu_seconds: Option<f64>,
    pub operator_rss_mib: Option<f64>,
}

/// The last value of each second (and the very last sample), enough for a curve.
pub fn per_second(samples: &[(f64, usize)]) -> Vec<(f64, usize)> {
    let mut out: Vec<(f64, usize)> = Vec::new();
    for &(t, n) in samples {
        match out.last_mut() {
            Some(last) if last.0.floor() == t.floor() => *last = (t, n),
            _ => out.push((t, n)),
        }
    }
    out
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("unknown".into(), |v| format!("{v:.1} {unit}"))
}

impl Report {
    pub fn print(&self) {
        let c = &self.convergence;
        let p = &self.plan;
        let fallback = self
            .simulator_faults
            .as_ref()
            .is_some_and(|a| !a.per_class_budgets);
        println!(
            "scale benchmark: {} users × {} apps = {} resources ({} missing, {} lagging); latency {} ± {} ms{}",
            p.users,
            p.apps,
            p.resources,
            p.missing,
            p.lagging,
            self.latency_ms,
            self.jitter_ms,
            if fallback {
                " (fallback: one tenant-wide limit, no jitter)"
            } else {
                ""
            }
        );
        println!("  operator: {}", self.operator_args.join(" "));
        println!(
            "  all up to date after     {:>8.1} s ({} ready)",
            c.seconds_to_ready, c.ready
        );
        if let (Some(f), Some(r)) = (&c.floor, c.ratio_to_floor) {
            println!(
                "  floor (Graph's budgets)  {:>8.1} s (set by {}); ratio {r:.2}",
                f.seconds, f.class
            );
        }
        if let Some(s) = c.fallback_floor_seconds {
            println!(
                "  floor (fallback limit)   {s:>8.1} s (all minimal calls at one tenant-wide limit)"
            );
        }
        println!(
            "  graph calls              {:>8} by class {:?}, by status {:?}, 429s {}",
            c.graph_calls.total,
            c.graph_calls.by_class,
            c.graph_calls.by_status,
            c.graph_calls.throttled
        );
        println!(
            "  status writes            {:>8}",
            c.status_writes.map_or("unknown".into(), |n| n.to_string())
        );
        println!(
            "  operator CPU             {}",
            opt(c.operator_cpu_seconds, "s")
        );
        println!(
            "  operator peak RSS        {}",
            opt(c.operator_peak_rss_mib, "MiB")
        );
        println!(
            "  operator RSS at the end  {}",
            opt(c.operator_rss_mib, "MiB")
        );
        let h = &self.hold;
        println!(
            "  hold {:.0} s: {:.1} Graph calls/min ({:?}), {} status writes, CPU {}, RSS {}",
            h.seconds,
            h.graph_calls_per_minute,
            h.graph_calls.by_class,
            h.status_writes.map_or("unknown".into(), |n| n.to_string()),
            opt(h.operator_cpu_seconds, "s"),
            opt(h.operator_rss_mib, "MiB"),
        );
        let l = &self.change_latency;
        println!(
            "  change → first Graph call (unthrottled, {} probes, {} missed): p50 {}, p99 {}",
            l.probes,
            l.missed,
            opt(l.p50_ms, "ms"),
            opt(l.p99_ms, "ms")
        );
        if let Some(s) = &self.steady_state {
            s.print();
        }
    }

    pub fn write(&self, json: &Path) {
        if let Some(dir) = json.parent() {
            std::fs::create_dir_all(dir).expect("benchmark output directory");
        }
        let text = serde_json::to_string_pretty(self).expect("report serializes");
        std::fs::write(json, text).expect("write the benchmark JSON");
        let svg = json.with_extension("svg");
        if let Err(e) = self.draw(&svg) {
            println!("  (no curve drawn: {e})");
        }
        println!("  written: {} and {}", json.display(), svg.display());
    }

    fn draw(&self, svg: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let c = &self.convergence;
        let floor = c.floor.as_ref().map(|f| f.seconds);
        let end = c
            .seconds_to_ready
            .max(floor.unwrap_or(0.0))
            .max(c.fallback_floor_seconds.unwrap_or(0.0))
            .max(1.0)
            * 1.05;
        let top = self.plan.resources.max(1);
        let root = SVGBackend::new(svg, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} resources up to date over time", self.plan.resources),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0..top)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the operator started")
            .y_desc("resources up to date")
            .draw()?;
        // A step curve: each count holds until the next sample.
        let mut steps = Vec::new();
        for w in c.curve.windows(2) {
            steps.push(w[0]);
            steps.push((w[1].0, w[0].1));
        }
        steps.extend(c.curve.last().copied());
        chart
            .draw_series(LineSeries::new(steps, BLUE.stroke_width(2)))?
            .label("up to date")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        for (seconds, color, label) in [
            (floor, RED, "floor: Graph's budgets"),
            (
                c.fallback_floor_seconds,
                MAGENTA,
                "floor: the fallback's one limit",
            ),
        ] {
            if let Some(s) = seconds {
                chart
                    .draw_series(LineSeries::new([(s, 0), (s, top)], color.stroke_width(1)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

impl SteadyState {
    /// After the other phases' lines, which stay as they were.
    fn print(&self) {
        for mode in [&self.off, &self.on] {
            mode.print_reads();
        }
        if let Some(x) = self.fewer_reads {
            println!("  steady reads/hour, notifications on vs off: {x:.1}× fewer (target ≥ 10×)");
        }
        for mode in [&self.on, &self.off] {
            mode.print_change();
        }
    }
}

impl Mode {
    fn print_reads(&self) {
        let (label, flag, real) = if self.notifications {
            ("on ", "--notification-resync", "12h")
        } else {
            ("off", "--default-interval", "30m")
        };
        println!(
            "  steady, notifications {label}: {flag} {:.0} s ({real} ÷ {:.0}){}; {} reads in a {:.0} s window {:?} → {:.0} reads/hour at the real {real}",
            self.period_seconds,
            self.time_scale,
            self.healthy_subscriptions
                .map_or(String::new(), |n| format!(", {n} healthy subscriptions")),
            self.window_reads,
            self.window_seconds,
            self.window_calls.by_class,
            self.reads_per_hour,
        );
    }

    fn print_change(&self) {
        let l = &self.change_to_install;
        let mut line = format!(
            "  out-of-band uninstall → reinstall, notifications {} ({} probes, {} missed): p50 {}, p99 {}",
            if self.notifications { "on " } else { "off" },
            l.probes,
            l.missed,
            opt(l.p50_ms, "ms"),
            opt(l.p99_ms, "ms"),
        );
        if !self.notifications {
            let real = |ms: Option<f64>| opt(ms.map(|v| v * self.time_scale / 60_000.0), "min");
            line += &format!(
                " at the {:.0} s interval = p50 {}, p99 {} at the real 30m",
                self.period_seconds,
                real(l.p50_ms),
                real(l.p99_ms)
            );
        }
        println!("{line}");
    }
}

/// Writes `records` to `path`, one JSON object a line.
pub fn write_lines<T: serde::Serialize>(path: &Path, records: &[T]) {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).expect("a record serializes"));
        text.push('\n');
    }
    std::fs::write(path, text).expect("write the request log");
    println!("  request log: {}", path.display());
}
