//! The one way tests and benchmarks run the real `teams-app-operator` binary: a builder for its
//! command line and environment, and the running process (killed when dropped).
//!
//! The operator runs as in production — a separate process configured by flags and environment —
//! with its stderr (the log) in a file, and its `/metrics`, `/livez` and `/readyz` on a free port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `teams-app-operator run`, being configured.
pub struct OperatorCommand {
    command: Command,
    log: PathBuf,
    metrics_port: u16,
}

impl OperatorCommand {
    /// `teams-app-operator run` with its metrics on a free local port and its log in `log`.
    pub fn new(log: impl Into<PathBuf>) -> Self {
        let metrics_port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_teams-app-operator"));
        command
            .arg("run")
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("RUST_LOG", "info,teams_app_operator=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        Self {
            command,
            log: log.into(),
            metrics_port,
        }
    }

    /// Nothing of the test's environment (an admin KUBECONFIG, AZURE_*) leaks in: only what is
    /// set afterwards, plus the metrics address and log level.
    pub fn clean_env(mut self) -> Self {
        self.command
            .env_clear()
            .env("METRICS_ADDR", format!("127.0.0.1:{}", self.metrics_port))
            .env("RUST_LOG", "info,teams_app_operator=debug");
        self
    }

    /// Talks to a Graph simulator at `base_url` (Graph and login) as the app `client_id`.
    pub fn graph_sim(self, base_url: &str, tenant: &str, client_id: &str, secret: &str) -> Self {
        self.env("AZURE_TENANT_ID", tenant)
            .env("AZURE_CLIENT_ID", client_id)
            .env("AZURE_CLIENT_SECRET", secret)
            .env("GRAPH_URL", base_url)
            .env("AZURE_AUTHORITY_HOST", base_url)
    }

    pub fn kubeconfig(self, path: &Path) -> Self {
        self.env("KUBECONFIG", path)
    }

    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    pub fn envs<'a>(mut self, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.command.envs(vars);
        self
    }

    pub fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> Self {
        self.command.args(args);
        self
    }

    pub fn spawn(mut self) -> Operator {
        let file = std::fs::File::create(&self.log).expect("operator log file");
        let child = self
            .command
            .stderr(file)
            .spawn()
            .expect("operator binary starts");
        Operator {
            child,
            log: self.log,
            metrics_port: self.metrics_port,
        }
    }
}

/// A running `teams-app-operator run` process, killed when dropped.
pub struct Operator {
    child: Child,
    log: PathBuf,
    metrics_port: u16,
}

impl Operator {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT` of its `/metrics`, `/livez` and `/readyz`.
    pub fn telemetry_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.metrics_port)
    }

    /// Its `/metrics` page, as Prometheus would scrape it.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.telemetry_url());
        let res = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        res.text()
            .await
            .unwrap_or_else(|e| panic!("reading {url}: {e}"))
    }

    /// SIGKILL: the process gets no chance to clean up (release its Lease, finish reconciles).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as Kubernetes stops a pod; waits for the exit and returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for the operator")
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The value of one series (name and labels exactly as rendered) on a `/metrics` page.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// The last `lines` lines of a log, for failure messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
