//! The `teams-app-operator` command line: `run` (the controller, the default) and `crd`.
//!
//! Every flag has an environment variable of the same name, so the Helm chart and a shell use
//! the same knobs. Graph credentials follow the Azure SDK conventions (`AZURE_*`).

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::parse_interval;
use crate::controller::ControllerSettings;
use crate::graph::GraphArgs;

/// Keeps Microsoft Teams apps installed and up to date for users, from `TeamsAppInstallation`
/// resources.
#[derive(Debug, Parser)]
#[command(name = "teams-app-operator", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (the default when no subcommand is given).
    Run(Box<RunArgs>),
    /// Print the TeamsAppInstallation CRD as YAML (`teams-app-operator crd | kubectl apply -f -`).
    Crd,
}

impl Cli {
    /// Parses the arguments, treating a missing subcommand as `run`.
    pub fn parse_with_default_run() -> Self {
        let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let first = args.get(1).and_then(|a| a.to_str()).map(str::to_owned);
        let is_subcommand_or_help = matches!(
            first.as_deref(),
            Some("run" | "crd" | "help" | "-h" | "--help" | "-V" | "--version")
        );
        if !is_subcommand_or_help {
            args.insert(1, "run".into());
        }
        Self::parse_from(args)
    }
}

/// Flags of `teams-app-operator run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub graph: GraphArgs,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// Drift re-check period for resources without spec.interval.
    #[arg(long, env = "DEFAULT_INTERVAL", default_value = "30m", value_parser = interval)]
    pub default_interval: Duration,

    /// Lowest re-check period any resource may ask for; smaller spec.interval values are raised.
    #[arg(long, env = "MIN_INTERVAL", default_value = "1m", value_parser = interval)]
    pub min_interval: Duration,

    /// Re-check period while an install or upgrade waits to show up in Graph.
    #[arg(long, env = "VERIFY_INTERVAL", default_value = "10s", value_parser = interval)]
    pub verify_interval: Duration,

    /// How many resources are reconciled at the same time.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Log format: human-readable text or one JSON object per line. Level from RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// This replica's name in Events (the chart sets the pod name).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl RunArgs {
    pub fn controller_settings(&self) -> ControllerSettings {
        ControllerSettings {
            namespace: self.namespace.clone(),
            default_interval: self.default_interval,
            min_interval: self.min_interval,
            concurrency: self.concurrency,
            verify_requeue: self.verify_interval,
            instance: self.instance.clone(),
            ..ControllerSettings::default()
        }
    }
}

fn interval(text: &str) -> Result<Duration, String> {
    parse_interval(text).map_err(|e| e.to_string())
}
