//! The dashboard drawn from the end-to-end run's Prometheus: every panel where the dashboard
//! puts it, with the run's data (`target/dashboard.svg`; a copy is `docs/dashboard.svg`).

use std::path::PathBuf;

use plotters::prelude::*;

use super::prometheus::Prometheus;
use super::*;

/// Pixels per grid column (Grafana's grid is 24 wide) and per grid row.
const COLUMN: i32 = 50;
const ROW: i32 = 30;
const HEADER: i32 = 44;

/// The rate window of the picture: short, so the run's few minutes show their shape.
const RATE_INTERVAL: &str = "10s";

pub async fn draw(prometheus: &Prometheus, dashboard: &Value, start: f64, end: f64) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("dashboard.svg"))
        .expect("the target directory");
    let span = (end - start).max(1.0);
    let range = format!("{}s", span.ceil());
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let mut queries = Vec::new();
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = substitute(
                t["expr"].as_str().unwrap_or_default(),
                &[
                    ("job", ".*"),
                    ("controller", ".*"),
                    ("__rate_interval", RATE_INTERVAL),
                    ("__range", &range),
                    ("__interval", "1s"),
                ],
            );
            let legend = t["legendFormat"].as_str().unwrap_or_default().to_string();
            let series = prometheus
                .query_range(&expr, start, end, 1.0)
                .await
                .unwrap_or_else(|e| panic!("query_range {expr}: {e}"));
            for s in series {
                queries.push((legend_of(&legend, &s.labels), s.samples));
            }
        }
        panels.push((panel.clone(), queries));
    }
    render(&path, dashboard, &panels, start, span)
        .unwrap_or_else(|e| panic!("drawing {}: {e}", path.display()));
    println!("dashboard drawn: {}", path.display());
}

/// Grafana's legend format: `{{label}}` replaced by the series' label.
fn legend_of(format: &str, labels: &serde_json::Map<String, Value>) -> String {
    let mut out = format.to_string();
    for (name, value) in labels {
        out = out.replace(
            &format!("{{{{{name}}}}}"),
            value.as_str().unwrap_or_default(),
        );
    }
    out
}

type Drawn = Vec<(String, Vec<(f64, f64)>)>;

fn render(
    path: &std::path::Path,
    dashboard: &Value,
    panels: &[(Value, Drawn)],
    start: f64,
    span: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let bottom = panels
        .iter()
        .map(|(p, _)| grid(p, "y") + grid(p, "h"))
        .max()
        .unwrap_or(1);
    let size = ((24 * COLUMN) as u32, (HEADER + bottom * ROW + 8) as u32);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&RGBColor(244, 245, 245))?;
    root.draw_text(
        &format!(
            "{} — drawn from a test run of {:.0} s (tests/observability/)",
            dashboard["title"].as_str().unwrap_or_default(),
            span
        ),
        &("sans-serif", 20).into_font().color(&BLACK),
        (10, 12),
    )?;
    for (panel, series) in panels {
        let (x, y) = (grid(panel, "x") * COLUMN, HEADER + grid(panel, "y") * ROW);
        let (w, h) = (grid(panel, "w") * COLUMN, grid(panel, "h") * ROW);
        // As Grafana shows it with every variable at "All".
        let title = panel["title"]
            .as_str()
            .unwrap_or_default()
            .replace("$controller", "All")
            .replace("$job", "All");
        let title = title.as_str();
        if panel["type"] == "row" {
            root.draw_text(
                title,
                &("sans-serif", 16)
                    .into_font()
                    .style(FontStyle::Bold)
                    .color(&BLACK),
                (x + 6, y + 8),
            )?;
            continue;
        }
        let area = root
            .clone()
            .shrink((x + 3, y + 3), ((w - 6) as u32, (h - 6) as u32));
        area.fill(&WHITE)?;
        if panel["type"] == "stat" {
            stat(&area, panel, series)?;
        } else {
            timeseries(&area, title, panel, series, start, span)?;
        }
    }
    root.present()?;
    Ok(())
}

fn grid(panel: &Value, key: &str) -> i32 {
    panel["gridPos"][key]
        .as_i64()
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// A stat panel: its title and the last value of each series, coloured by its thresholds.
fn stat(area: &Area<'_>, panel: &Value, series: &Drawn) -> Result<(), Box<dyn std::error::Error>> {
    let title = panel["title"].as_str().unwrap_or_default();
    let last = series
        .iter()
        .filter_map(|(_, samples)| samples.iter().rev().map(|s| s.1).find(|v| v.is_finite()))
        .next();
    let steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let color = last.map_or("gray".to_string(), |v| {
        steps
            .iter()
            .filter(|s| s["value"].as_f64().is_none_or(|t| v >= t))
            .filter_map(|s| s["color"].as_str())
            .next_back()
            .unwrap_or("green")
            .to_string()
    });
    let fill = match color.as_str() {
        "red" => RGBColor(242, 73, 92),
        "green" => RGBColor(86, 166, 75),
        _ => RGBColor(140, 140, 140),
    };
    let (w, h) = area.dim_in_pixel();
    area.draw(&Rectangle::new(
        [(0, 0), (w as i32, h as i32)],
        fill.filled(),
    ))?;
    let white = |size| ("sans-serif", size).into_font().color(&WHITE);
    area.draw_text(title, &white(13), (8, 6))?;
    let text = last.map_or("No data".to_string(), |v| format!("{v:.0}"));
    area.draw_text(&text, &white(34), (8, 34))?;
    Ok(())
}

/// A time series panel: one line per series, the first few in the legend.
fn timeseries(
    area: &Area<'_>,
    title: &str,
    panel: &Value,
    series: &Drawn,
    start: f64,
    span: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let top = series
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let unit = panel["fieldConfig"]["defaults"]["unit"]
        .as_str()
        .unwrap_or("short");
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 14))
        .margin(6)
        .x_label_area_size(18)
        .y_label_area_size(46)
        .build_cartesian_2d(0.0..span, 0.0..top)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(4)
        .x_label_formatter(&|s| format!("{s:.0}s"))
        .y_label_formatter(&|v| format_value(*v, unit))
        .label_style(("sans-serif", 10))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    for (i, (label, samples)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = samples
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| (t - start, *v))
            .collect();
        let line = chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
        if i < 8 {
            line.label(label.clone()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
            });
        }
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 10))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()?;
    }
    Ok(())
}

fn format_value(v: f64, unit: &str) -> String {
    // Enough decimals to tell an axis's labels apart.
    let number = |v: f64| match v.abs() {
        a if a == 0.0 || a >= 10.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.1}"),
        a if a >= 0.1 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    };
    match unit {
        "percentunit" => format!("{}%", number(v * 100.0)),
        "s" if v < 1.0 && v > 0.0 => format!("{}ms", number(v * 1000.0)),
        "s" => format!("{}s", number(v)),
        "ops" | "reqps" => format!("{}/s", number(v)),
        _ => number(v),
    }
}
