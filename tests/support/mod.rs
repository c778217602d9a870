//! The integration-test harness: one real control plane (etcd + kube-apiserver v1.36.3, started by
//! `scripts/control-plane`) per test binary, shared by all its tests, with `crds/` installed.
//!
//! Each test binary includes this file with `mod support;`. The control plane starts on first use
//! (`client()`, `kubeconfig_path()`), is built from the Go wrapper modules on the first run ever
//! (minutes; cached afterwards under `~/.cache/teams-app-operator/k8s-v1.36.3/`), and takes a few
//! seconds to come up. A control plane that cannot start fails every test that needs it, with the
//! reason: a test that cannot reach its API server never passes or skips silently.
//!
//! Only the kubeconfig is shared, never a `kube::Client`: each `#[tokio::test]` runs on its own
//! runtime, and a client's connection pool is bound to the runtime that created it.
//!
//! Cleanup: Rust test binaries never run destructors of statics, and a test process can also die
//! from a signal, so the harness does not try to stop the control plane itself. It passes its pid
//! to `up --watch-pid`; a detached watchdog stops etcd and kube-apiserver and deletes the state
//! directory as soon as this process is gone, however it ended. Set `TAO_KEEP_CONTROL_PLANE=1` to
//! keep the directory (logs, certificates, kubeconfig) for a post-mortem; its path is in the
//! panic message when start-up fails.

#![allow(dead_code)]

pub mod operator;
pub mod wait;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

const BINARIES: [&str; 3] = ["etcd", "kube-apiserver", "helm"];

struct ControlPlane {
    dir: PathBuf,
    kubeconfig_path: PathBuf,
    kubeconfig_yaml: String,
}

/// The outcome of the one start attempt, failures included: when the control plane cannot start,
/// every test fails at once with the same reason instead of retrying a 60-second start-up.
static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// A second control plane without the CRDs, for the tests of what happens when they are missing.
static BARE_CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The repository root (where `Cargo.toml`, `crds/` and `scripts/` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the admin kubeconfig of this test binary's control plane (starting it if needed). Hand
/// it to processes under test via `KUBECONFIG`.
pub fn kubeconfig_path() -> PathBuf {
    control_plane().kubeconfig_path.clone()
}

/// The control plane's state directory: `kube-apiserver.log`, `etcd.log`, certificates,
/// `kubeconfig`. Deleted when the test process exits unless `TAO_KEEP_CONTROL_PLANE=1`.
pub fn control_plane_dir() -> PathBuf {
    control_plane().dir.clone()
}

/// A client (cluster admin, `system:masters`) for this test binary's control plane, starting the
/// control plane if needed. Create one per test: clients must not outlive their tokio runtime.
pub async fn client() -> kube::Client {
    // Starting may take seconds (minutes on a first build): keep it off the test's runtime thread,
    // which may be driving other tasks the test already spawned.
    let started = tokio::task::spawn_blocking(try_control_plane)
        .await
        .unwrap_or_else(|e| panic!("starting the control plane panicked: {e}"));
    let cp = unwrap_started(started);
    let kubeconfig = Kubeconfig::from_yaml(&cp.kubeconfig_yaml)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", cp.kubeconfig_path.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading {}: {e}", cp.kubeconfig_path.display()));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("building a kube client: {e}"))
}

/// Creates a namespace named `<prefix>-<random suffix>` and returns its name. Every test gets its
/// own: the control plane is shared, and deleted namespaces never go away (no namespace
/// controller runs), so names are never reused.
pub async fn fresh_namespace(client: &kube::Client, prefix: &str) -> String {
    let prefix = dns_label_prefix(prefix);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{prefix}-{}", &suffix[..8]);
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    name
}

/// `prefix` made usable as the start of a namespace name (a DNS label of at most 63 characters,
/// 9 of which the suffix takes).
fn dns_label_prefix(prefix: &str) -> String {
    let mut label: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label.truncate(54);
    let label = label.trim_matches('-');
    if label.is_empty() {
        "test".to_string()
    } else {
        label.to_string()
    }
}

/// The admin kubeconfig of a control plane of this test binary's own that has **no** CRDs
/// installed (started on first use, like the main one).
pub fn kubeconfig_without_crds() -> PathBuf {
    unwrap_started(BARE_CONTROL_PLANE.get_or_init(|| start(&["--no-crds".as_ref()])))
        .kubeconfig_path
        .clone()
}

fn control_plane() -> &'static ControlPlane {
    unwrap_started(try_control_plane())
}

fn unwrap_started(started: &'static Result<ControlPlane, String>) -> &'static ControlPlane {
    match started {
        Ok(cp) => cp,
        Err(reason) => panic!("the test control plane is not available:\n{reason}"),
    }
}

fn try_control_plane() -> &'static Result<ControlPlane, String> {
    CONTROL_PLANE.get_or_init(|| start(&[]))
}

fn start(extra_args: &[&OsStr]) -> Result<ControlPlane, String> {
    build()?;
    let dir = tempfile::Builder::new()
        .prefix("tao-control-plane.")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory for the control plane: {e}"))?
        // The watchdog started by `up --remove-dir` deletes it once this process is gone.
        .keep();
    let pid = std::process::id().to_string();
    let mut up = vec![
        OsStr::new("up"),
        dir.as_os_str(),
        "--watch-pid".as_ref(),
        pid.as_ref(),
        "--remove-dir".as_ref(),
    ];
    up.extend_from_slice(extra_args);
    let kubeconfig_path = match control_plane_script(&up, false) {
        Ok(stdout) => PathBuf::from(stdout.trim()),
        Err(e) => {
            // Past its preflight checks, `up` has handed the directory to its watchdog.
            if !dir.join("watchdog.pid").exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
    };
    let kubeconfig_yaml = std::fs::read_to_string(&kubeconfig_path)
        .map_err(|e| format!("reading {}: {e}", kubeconfig_path.display()))?;
    Ok(ControlPlane {
        dir,
        kubeconfig_path,
        kubeconfig_yaml,
    })
}

/// Runs `scripts/control-plane build`. When a binary is missing, the build takes minutes: its
/// progress is then shown as it happens (stderr, past the test harness's output capture).
fn build() -> Result<(), String> {
    let bin_dir = PathBuf::from(control_plane_script(&["bin-dir".as_ref()], false)?.trim());
    let missing = BINARIES.iter().any(|b| !bin_dir.join(b).is_file());
    control_plane_script(&["build".as_ref()], missing).map(drop)
}

/// Runs `scripts/control-plane ARGS`, returning the last line of its stdout; on failure, its
/// stderr (where the script explains what went wrong) is the error.
fn control_plane_script(args: &[&OsStr], echo_stderr: bool) -> Result<String, String> {
    let script = repo_root().join("scripts/control-plane");
    let shown = format!(
        "{} {}",
        script.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = Command::new(&script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running `{shown}`: {e}"))?;
    let mut stderr = String::new();
    if let Some(pipe) = child.stderr.take() {
        for line in BufReader::new(pipe).lines() {
            let line = line.map_err(|e| format!("reading the stderr of `{shown}`: {e}"))?;
            if echo_stderr {
                // Not `eprintln!`: that one is captured until the test ends.
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            stderr.push_str(&line);
            stderr.push('\n');
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("running `{shown}`: {e}"))?;
    if !output.status.success() {
        return Err(format!("`{shown}` failed ({}):\n{stderr}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout.lines().last().unwrap_or_default().to_string())
}
