//! `graph-sim`: runs the Microsoft Graph simulator (see the `graph_sim` library).

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use graph_sim::{Budgets, FaultConfig, Seed, SimOptions, SimServer};
use tracing_subscriber::EnvFilter;

/// A Microsoft Graph simulator for teams-app-operator: the Entra token endpoint, users' installed
/// Teams apps (with resource-specific consent), the app catalog, the tenant's Teams app settings
/// (GET /teamwork/teamsAppSettings), group members (GET /groups/{id}/transitiveMembers/
/// microsoft.graph.user) and users, and $batch under /v1.0 and /beta, plus an admin API under
/// /_sim (publish versions, change, soft-delete and restore users, change group members, a
/// tenant's knobs and Teams app settings, inject latency/throttling/failures and directory/catalog
/// noise, expire tokens, read the request log with request bodies, reset).
///
/// Without --seed it serves the built-in demo tenant (examples/tenant.yaml): tenant
/// 00000000-0000-0000-0000-000000000001, client 11111111-1111-1111-1111-111111111111 with secret
/// `s3cret`, users alice/bob/carol@contoso.com (carol a guest), group Sales
/// 99999999-9999-9999-9999-999999999991 (alice, and the nested Sales Leads group: bob, carol),
/// apps Contoso Bot and Contoso Tasks. Use --empty to start with no tenants at all.
///
/// Graph's per-class throttling (--graph-budgets, --budget-*), latency (--latency-ms,
/// --latency-jitter-ms) and directory/catalog noise (--directory-lag-ms, --directory-flap,
/// --page-token-ttl-ms, --catalog-lag-ms) can be on from the start, over the seed's `faults`;
/// PUT /_sim/faults changes them at run time.
///
/// The first line on stdout is `listening on http://HOST:PORT`; logs go to stderr (RUST_LOG).
#[derive(Debug, Parser)]
#[command(name = "graph-sim", version, verbatim_doc_comment)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first stdout line).
    #[arg(long, env = "GRAPH_SIM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Seed file (YAML, or JSON with a .json extension): tenants, clients, users, groups, apps,
    /// installations. See examples/tenant.yaml.
    #[arg(long, env = "GRAPH_SIM_SEED", conflicts_with = "empty")]
    seed: Option<PathBuf>,

    /// Start with no tenants instead of the built-in demo tenant.
    #[arg(long)]
    empty: bool,

    /// Lifetime of issued access tokens, in seconds (their `expires_in`).
    #[arg(long, env = "GRAPH_SIM_TOKEN_LIFETIME", default_value_t = 3599)]
    token_lifetime: u64,

    /// Page size of list responses when the client sends no $top (overrides the seed's pageSize).
    #[arg(long, env = "GRAPH_SIM_PAGE_SIZE", value_parser = clap::value_parser!(u16).range(1..=999))]
    page_size: Option<u16>,

    /// The Graph resource this simulator stands in for. The token endpoint grants only
    /// `{this}/.default` (anything else: AADSTS500011), and install bind URLs must use this host,
    /// as with real Graph, whatever address clients dial. E.g. https://graph.microsoft.us.
    #[arg(long, env = "GRAPH_SIM_GRAPH_RESOURCE", default_value = graph_sim::GRAPH_RESOURCE)]
    graph_resource: String,

    /// Write @odata.nextLink (and @odata.context) on the Graph resource host, as real Graph
    /// does, instead of the host the client addressed: clients must rewrite them to their base.
    #[arg(long, env = "GRAPH_SIM_CANONICAL_NEXT_LINKS")]
    canonical_next_links: bool,

    #[command(flatten)]
    faults: FaultArgs,

    #[command(flatten)]
    noise: NoiseArgs,
}

/// Directory and catalog noise for every tenant, as `PUT /_sim/faults` would set it (over each
/// tenant's seed settings).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Directory and catalog noise (every tenant)")]
struct NoiseArgs {
    /// Changes to users and group members (admin API) show in directory reads (GET /users/{id},
    /// transitive members) only after this many milliseconds.
    #[arg(long, env = "GRAPH_SIM_DIRECTORY_LAG_MS", value_name = "MS")]
    directory_lag_ms: Option<u64>,

    /// The share (0-1) of transitive-member reads (all pages of one) that leave out one random
    /// member.
    #[arg(long, env = "GRAPH_SIM_DIRECTORY_FLAP", value_name = "SHARE")]
    directory_flap: Option<f64>,

    /// Transitive-members @odata.nextLink tokens older than this many milliseconds answer 400
    /// Directory_ExpiredPageToken (0 = never).
    #[arg(long, env = "GRAPH_SIM_PAGE_TOKEN_TTL_MS", value_name = "MS")]
    page_token_ttl_ms: Option<u64>,

    /// Apps and versions added through the admin API show in catalog reads (and can be installed
    /// or upgraded to) only after this many milliseconds.
    #[arg(long, env = "GRAPH_SIM_CATALOG_LAG_MS", value_name = "MS")]
    catalog_lag_ms: Option<u64>,
}

impl NoiseArgs {
    /// Adds these knobs to `faults`.
    fn apply(&self, faults: FaultConfig) -> FaultConfig {
        FaultConfig {
            directory_lag_ms: self.directory_lag_ms,
            directory_flap: self.directory_flap,
            page_token_ttl_ms: self.page_token_ttl_ms,
            catalog_lag_ms: self.catalog_lag_ms,
            ..faults
        }
    }
}

/// Faults in force from the start, as `PUT /_sim/faults` would set them (`POST /_sim/reset` and
/// `DELETE /_sim/faults` come back to these).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Throttling and latency")]
struct FaultArgs {
    /// Graph's documented per-app-per-tenant budgets: 30 requests/s each for reading installed
    /// apps, reading the catalog, installing and other calls (upgrade), 15/s for uninstalling.
    /// The --budget-* flags override single classes.
    #[arg(long, env = "GRAPH_SIM_GRAPH_BUDGETS")]
    graph_budgets: bool,

    /// GET …/installedApps… per second per tenant (0 = unlimited).
    #[arg(long, env = "GRAPH_SIM_BUDGET_INSTALLED_APPS_READ", value_name = "N")]
    budget_installed_apps_read: Option<u32>,

    /// GET /appCatalogs… per second per tenant (0 = unlimited).
    #[arg(long, env = "GRAPH_SIM_BUDGET_CATALOG_READ", value_name = "N")]
    budget_catalog_read: Option<u32>,

    /// POST …/installedApps (install) per second per tenant (0 = unlimited).
    #[arg(long, env = "GRAPH_SIM_BUDGET_INSTALL", value_name = "N")]
    budget_install: Option<u32>,

    /// DELETE …/installedApps/{id} (uninstall) per second per tenant (0 = unlimited).
    #[arg(long, env = "GRAPH_SIM_BUDGET_DELETE", value_name = "N")]
    budget_delete: Option<u32>,

    /// Every other Graph call (upgrade, …) per second per tenant (0 = unlimited).
    #[arg(long, env = "GRAPH_SIM_BUDGET_OTHER", value_name = "N")]
    budget_other: Option<u32>,

    /// Directory reads (GET /groups/…, a group's transitive members; GET /users/{id}) per second
    /// per tenant (0 = unlimited). Not set by --graph-budgets: Entra ID meters these in resource
    /// units, not as a request rate.
    #[arg(long, env = "GRAPH_SIM_BUDGET_DIRECTORY_READ", value_name = "N")]
    budget_directory_read: Option<u32>,

    /// Latency added to every Graph and token request (once per $batch), in milliseconds.
    #[arg(long, env = "GRAPH_SIM_LATENCY_MS", value_name = "MS")]
    latency_ms: Option<u64>,

    /// Spreads the latency uniformly over latency ± this, drawn per request (at most --latency-ms).
    #[arg(long, env = "GRAPH_SIM_LATENCY_JITTER_MS", value_name = "MS")]
    latency_jitter_ms: Option<u64>,
}

impl FaultArgs {
    fn config(&self) -> FaultConfig {
        let base = if self.graph_budgets {
            Some(Budgets::GRAPH)
        } else {
            None
        };
        let classes = [
            self.budget_installed_apps_read,
            self.budget_catalog_read,
            self.budget_install,
            self.budget_delete,
            self.budget_other,
            self.budget_directory_read,
        ];
        let budgets = if classes.iter().any(Option::is_some) {
            let base = base.unwrap_or_default();
            Some(Budgets {
                installed_apps_read: self.budget_installed_apps_read.or(base.installed_apps_read),
                catalog_read: self.budget_catalog_read.or(base.catalog_read),
                install: self.budget_install.or(base.install),
                delete: self.budget_delete.or(base.delete),
                other: self.budget_other.or(base.other),
                directory_read: self.budget_directory_read.or(base.directory_read),
            })
        } else {
            base
        };
        FaultConfig {
            budgets,
            latency_ms: self.latency_ms,
            latency_jitter_ms: self.latency_jitter_ms,
            ..FaultConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let mut seed = match (&args.seed, args.empty) {
        (Some(path), _) => {
            Seed::from_file(path).with_context(|| format!("loading seed {}", path.display()))?
        }
        (None, true) => Seed::default(),
        (None, false) => Seed::demo(),
    };
    if let Some(size) = args.page_size {
        seed.page_size = Some(size.into());
    }
    let tenants = seed.tenants.len();
    let options = SimOptions {
        token_lifetime: Duration::from_secs(args.token_lifetime),
        graph_resource: args.graph_resource,
        canonical_next_links: args.canonical_next_links,
        faults: args.noise.apply(args.faults.config()),
    };
    let server = SimServer::start(args.listen, seed, options)
        .await
        .with_context(|| format!("starting graph-sim on {}", args.listen))?;

    // Scripts and tests wait for this exact line to learn the port.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", server.base_url())?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(url = %server.base_url(), tenants, "graph-sim ready");

    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what Kubernetes and most supervisors send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; only Ctrl-C stops graph-sim");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
