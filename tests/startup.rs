//! Start-up failures a user makes on day one: each is one clear error and a non-zero exit, not a
//! crash loop of retries or a log flood. The operator binary against graph-sim and a real API
//! server (one with the CRD, one without).

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use graph_sim::{Seed, SimOptions, SimServer};

const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";

async fn sim() -> SimServer {
    let seed = Seed::from_yaml_str(graph_sim::DEMO_SEED_YAML).expect("demo seed");
    SimServer::start(
        "127.0.0.1:0".parse().expect("address"),
        seed,
        SimOptions::default(),
    )
    .await
    .expect("graph-sim starts")
}

/// Runs the operator to its exit (it must exit by itself within a minute).
async fn run_to_exit(sim: &SimServer, kubeconfig: &Path, secret: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_teams-app-operator"));
    command
        .arg("run")
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(args)
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", secret)
        .env("GRAPH_URL", sim.base_url())
        .env("AZURE_AUTHORITY_HOST", sim.base_url())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the operator exits by itself instead of retrying forever")
        .expect("the operator binary runs")
}

/// Exit status non-zero, the error's context and cause in stderr, and few lines in all.
fn assert_one_clear_error(output: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it must fail:\n{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "{text:?} missing from:\n{stderr}");
    }
    let lines = stderr.lines().count();
    assert!(
        lines <= 12,
        "a short error, not a flood ({lines} lines):\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn credentials_graph_rejects_stop_the_start_with_entras_error() {
    let sim = sim().await;
    let output = run_to_exit(&sim, &support::kubeconfig_path(), "wrong-secret", &[]).await;
    assert_one_clear_error(
        &output,
        &["signing in to Microsoft Graph", "invalid_client"],
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("wrong-secret"));
}

#[tokio::test]
async fn a_missing_crd_is_one_error_naming_the_fix() {
    let sim = sim().await;
    let kubeconfig = tokio::task::spawn_blocking(support::kubeconfig_without_crds)
        .await
        .expect("starting the CRD-less control plane");
    let output = run_to_exit(&sim, &kubeconfig, "s3cret", &[]).await;
    assert_one_clear_error(
        &output,
        &[
            "the TeamsAppInstallation CRD is not installed",
            "teams-app-operator crd | kubectl apply -f -",
        ],
    );
}

#[tokio::test]
async fn clouds_without_app_only_installs_are_refused_at_start() {
    let sim = sim().await;
    for cloud in ["usgov", "usgov-dod", "china"] {
        let output = run_to_exit(
            &sim,
            &support::kubeconfig_path(),
            "s3cret",
            &["--cloud", cloud],
        )
        .await;
        assert_one_clear_error(&output, &["configuring the Microsoft Graph client", cloud]);
    }
}

#[test]
fn a_taken_metrics_port_is_a_start_up_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("address").to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_teams-app-operator"))
        .args(["run", "--metrics-addr", &addr])
        .args(["--tenant-id", TENANT, "--client-id", CLIENT_ID])
        .env_clear()
        .env("AZURE_CLIENT_SECRET", "s3cret")
        .stdin(Stdio::null())
        .output()
        .expect("the operator binary runs");
    assert_one_clear_error(&output, &["serving metrics and health probes on", &addr]);
}
