//! The operator process: start-up in the order that gives the clearest errors, leader election,
//! a graceful shutdown, and the wiring of the kinds' controllers ([`controllers`]). The binary
//! only parses the command line and calls [`run`]; tests can call it too.

mod connection_kinds;
pub mod controllers;
mod notifications;
mod receiver;
mod wake;

use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt;

use crate::cli::DefaultConnectionMode;
use crate::cli::RunArgs;
use crate::graph::GraphClient;
use crate::leader;
use crate::notification::EncryptionCertificate;
use crate::telemetry::metrics::DEFAULT_CONNECTION;
use crate::telemetry::{self, Health, Metrics, Telemetry};
use crate::tenancy::DefaultConnection;

pub use receiver::NotificationSettings;

/// Runs the controller until SIGTERM or Ctrl-C. Configuration, credential and API problems
/// come back as one readable error each.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::logging::init(args.log_format);
    let telemetry = Telemetry {
        metrics: Arc::new(Metrics::new()),
        health: Arc::new(Health::default()),
    };
    // Configuration mistakes first: they need no network to find.
    let mut template = args
        .graph
        .template()
        .context("configuring the Microsoft Graph client")?;
    template.metrics = telemetry.metrics.graph_observer(DEFAULT_CONNECTION);
    let own = own_connection(&args, &template)?;
    let certificate = notification_certificate(&args)?;
    // Before anything reaches out, so probes answer (live, not ready) while the rest starts.
    let addr = telemetry::http::serve(
        args.metrics_addr,
        telemetry.metrics.clone(),
        telemetry.health.clone(),
    )
    .await
    .with_context(|| format!("serving metrics and health probes on {}", args.metrics_addr))?;
    tracing::info!(%addr, "serving /metrics, /livez and /readyz");

    // Bad credentials are one clear start-up error, not a flood of failed reconciles. (A
    // connection's are its own status's business: one broken tenant must not stop the rest.)
    if let Some(own) = &own {
        own.check_credentials()
            .await
            .context("signing in to Microsoft Graph")?;
    }
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
    let receiver = match notification_settings(&args, certificate, client.default_namespace()) {
        Some(settings) => {
            let addr = settings.addr;
            let started = receiver::start(
                settings,
                &client,
                args.leader_election,
                &telemetry.metrics.notifications,
            )
            .await
            .with_context(|| format!("receiving Graph change notifications on {addr}"))?;
            Some(started)
        }
        None => None,
    };
    let access = graph_access(&args, template, own, receiver, &client, &telemetry);
    let instance = args.instance_name();
    let settings = args.controller_settings(&instance);
    controllers::preflight(&client, &settings)
        .await
        .context("starting the controller")?;
    let shutdown = shutdown_signal(telemetry.health.clone()).shared();
    let run_controller = |shutdown| {
        controllers::run(
            client.clone(),
            access.clone(),
            settings.clone(),
            telemetry.clone(),
            shutdown,
        )
    };
    let outcome = match args.lease_settings(&instance, client.default_namespace()) {
        None => run_controller(shutdown).await,
        Some(lease) => leader::run_while_leader(
            client.clone(),
            lease,
            telemetry.metrics.clone(),
            telemetry.health.clone(),
            shutdown,
            run_controller,
        )
        .await
        .context("leader election")?,
    };
    outcome.context("running the controller")
}

/// How the controllers reach Graph: the flags' template, the operator's own connection, and
/// where change notifications are received.
fn graph_access(
    args: &RunArgs,
    template: crate::graph::GraphSettings,
    own: Option<GraphClient>,
    notifications: Option<receiver::Receiver>,
    client: &kube::Client,
    telemetry: &Telemetry,
) -> controllers::GraphAccess {
    controllers::GraphAccess {
        template,
        metrics_for: {
            let metrics = telemetry.metrics.clone();
            Arc::new(move |connection: &str| metrics.graph_observer(connection))
        },
        default: own.map(|client| DefaultConnection {
            client,
            namespaces: args.graph.default_connection_namespaces.clone(),
        }),
        operator_namespace: args.operator_namespace(client.default_namespace()),
        notifications,
    }
}

/// `--notification-*`, when notifications are asked for.
fn notification_settings(
    args: &RunArgs,
    certificate: Option<EncryptionCertificate>,
    default_namespace: &str,
) -> Option<NotificationSettings> {
    let (addr, url) = args.notification_addr.zip(args.notification_url.clone())?;
    Some(NotificationSettings {
        addr,
        url,
        resync: args.notification_resync,
        peer_url: args.notification_peer_url.clone(),
        secret: args.notification_secret.clone(),
        secret_namespace: args.state_namespace(default_namespace),
        certificate,
    })
}

/// The certificate rich notifications are encrypted for, if one is given: read before anything
/// reaches out, so that a bad file is a start-up error.
fn notification_certificate(args: &RunArgs) -> anyhow::Result<Option<EncryptionCertificate>> {
    let Some(path) = args.notification_certificate.as_deref() else {
        return Ok(None);
    };
    let certificate = EncryptionCertificate::load(path, jiff::Timestamp::now())
        .with_context(|| format!("loading --notification-certificate {}", path.display()))?;
    tracing::info!(
        certificate_id = certificate.id(),
        not_after = %certificate.not_after(),
        "rich notifications: Graph encrypts their resource data for this certificate"
    );
    Ok(Some(certificate))
}

/// The operator's own connection (its flags), unless turned off.
fn own_connection(
    args: &RunArgs,
    template: &crate::graph::GraphSettings,
) -> anyhow::Result<Option<GraphClient>> {
    match args.graph.default_connection {
        DefaultConnectionMode::Flags => {
            let mut settings = args
                .graph
                .settings()
                .context("configuring the Microsoft Graph client")?;
            settings.metrics = template.metrics.clone();
            let client =
                GraphClient::new(settings).context("configuring the Microsoft Graph client")?;
            Ok(Some(client))
        }
        DefaultConnectionMode::None => Ok(None),
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C; from then on `/readyz` fails.
async fn shutdown_signal(health: Arc<Health>) {
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
    health.stopping();
    tracing::info!("shutting down");
}
