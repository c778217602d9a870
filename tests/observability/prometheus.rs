//! A real Prometheus server for a test, and the parts of its HTTP API the tests use.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;
use crate::support::operator::{free_port, tail};

/// `prometheus` scraping `targets` every second, with its data and log in a temporary
/// directory. Stopped (SIGTERM to its process group) when dropped; a watchdog in the group
/// stops it too if this test process dies without running destructors.
pub struct Prometheus {
    group: Child,
    pub url: String,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

/// A series of a range query: its labels and its (unix seconds, value) samples.
pub struct RangeSeries {
    pub labels: serde_json::Map<String, Value>,
    pub samples: Vec<(f64, f64)>,
}

impl Prometheus {
    /// Starts the server and waits until it is ready. `rule_files` are loaded and evaluated
    /// every second.
    pub async fn start(targets: &[String], rule_files: &[&Path]) -> Self {
        let binary = prometheus_binary();
        let dir = tempfile::Builder::new()
            .prefix("tao-prometheus.")
            .tempdir()
            .expect("a temporary directory for Prometheus");
        let targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
        let rule_files: Vec<String> = rule_files
            .iter()
            .map(|f| format!("{:?}", f.display().to_string()))
            .collect();
        let config = format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{}]\n\
             scrape_configs:\n  - job_name: teams-app-operator\n    static_configs: [{{targets: [{}]}}]\n",
            rule_files.join(", "),
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("Prometheus log");
        // bash runs Prometheus and watches this process: once it is gone (a killed test binary
        // never runs destructors), Prometheus is stopped and its directory deleted. Both are in
        // a process group of their own, which Drop signals.
        let group = Command::new("bash")
            .arg("-c")
            .arg(
                r#"owner=$1 dir=$2; shift 2
"$@" & server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; exit' TERM INT
while kill -0 "$owner" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done
kill -TERM "$server" 2>/dev/null; wait "$server"
kill -0 "$owner" 2>/dev/null || rm -rf "$dir""#,
            )
            .arg("tao-prometheus")
            .arg(std::process::id().to_string())
            .arg(dir.path())
            .arg(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut prometheus = Self {
            group,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            http: reqwest::Client::new(),
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self.http.get(format!("{}/-/ready", self.url)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if let Ok(Some(status)) = self.group.try_wait() {
                panic!(
                    "prometheus exited during start-up ({status}):\n{}",
                    tail(&self.log(), 40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 60s:\n{}",
                tail(&self.log(), 40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// GET `/api/v1/PATH` with `params`: the `data` of a success, or the error Prometheus gave.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let res = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(params)
            .send()
            .await
            .map_err(|e| format!("GET /api/v1/{path}: {e}"))?;
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .map_err(|e| format!("GET /api/v1/{path} ({status}): not JSON: {e}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!(
                "{status} {}: {}",
                body["errorType"].as_str().unwrap_or_default(),
                body["error"].as_str().unwrap_or_default()
            ))
        }
    }

    /// An instant query's result (series of a vector; a scalar counts as one).
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("query", &[("query", expr)]).await?;
        Ok(match data["resultType"].as_str() {
            Some("vector" | "matrix") => data["result"].as_array().cloned().unwrap_or_default(),
            _ => vec![data["result"].clone()],
        })
    }

    /// The sum of an instant query's values (0 for no series).
    pub async fn value(&self, expr: &str) -> f64 {
        self.query(expr)
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .sum()
    }

    pub async fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<RangeSeries>, String> {
        let (start, end, step) = (start.to_string(), end.to_string(), step.to_string());
        let data = self
            .api(
                "query_range",
                &[
                    ("query", expr),
                    ("start", &start),
                    ("end", &end),
                    ("step", &step),
                ],
            )
            .await?;
        Ok(data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| RangeSeries {
                labels: s["metric"].as_object().cloned().unwrap_or_default(),
                samples: s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p[0].as_f64()?, p[1].as_str()?.parse().ok()?)))
                    .collect(),
            })
            .collect())
    }

    /// How many series match `selector`, over all the data held.
    pub async fn series(&self, selector: &str) -> Result<usize, String> {
        let data = self.api("series", &[("match[]", selector)]).await?;
        Ok(data.as_array().map_or(0, Vec::len))
    }

    /// The values of `label` on the series matching `selector`.
    pub async fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>, String> {
        let data = self
            .api(&format!("label/{label}/values"), &[("match[]", selector)])
            .await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    /// Every series selector in `expr`, as PromQL (`name{label="value",…}`), from Prometheus's
    /// own parser (`/api/v1/parse_query`). Err: the expression does not parse.
    pub async fn selectors(&self, expr: &str) -> Result<Vec<String>, String> {
        let ast = self.api("parse_query", &[("query", expr)]).await?;
        let mut out = Vec::new();
        collect_selectors(&ast, &mut out);
        Ok(out)
    }
}

fn collect_selectors(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            // `x` and the `x[1m]` of `rate(x[1m])`.
            if matches!(
                map.get("type").and_then(Value::as_str),
                Some("vectorSelector" | "matrixSelector")
            ) {
                let matchers: Vec<String> = map["matchers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        format!(
                            "{}{}{:?}",
                            m["name"].as_str().unwrap_or_default(),
                            m["type"].as_str().unwrap_or_default(),
                            m["value"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                out.push(format!("{{{}}}", matchers.join(",")));
            }
            map.values().for_each(|v| collect_selectors(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_selectors(v, out)),
        _ => {}
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let group = format!("-{}", self.group.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.group.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                let _ = self.group.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
