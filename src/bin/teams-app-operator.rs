//! `teams-app-operator`: see `teams-app-operator --help`.

use anyhow::Context as _;
use teams_app_operator::cli::{Cli, Command};
use teams_app_operator::{api, process};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse_with_default_run().command {
        Command::Crd => {
            print!("{}", api::all_crds_yaml().context("rendering the CRDs")?);
            Ok(())
        }
        Command::Run(args) => process::run(*args).await,
    }
}
