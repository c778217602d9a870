//! `teams-app-operator`: see `teams-app-operator --help`.

use anyhow::Context as _;
use teams_app_operator::cli::{Cli, Command, LogFormat, RunArgs};
use teams_app_operator::{api, controller};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse_with_default_run().command {
        Command::Crd => {
            print!("{}", api::crd_yaml().context("rendering the CRD")?);
            Ok(())
        }
        Command::Run(args) => run(*args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let graph = args
        .graph
        .build_client()
        .context("configuring the Microsoft Graph client")?;
    // Bad credentials are one clear start-up error, not a flood of failed reconciles.
    graph
        .check_credentials()
        .await
        .context("signing in to Microsoft Graph")?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    controller::run(client, graph, args.controller_settings(), shutdown_signal())
        .await
        .context("running the controller")?;
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
