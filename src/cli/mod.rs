//! The `teams-app-operator` command line: `run` (the controller, the default) and `crd`.
//!
//! Every flag has an environment variable of the same name, so the Helm chart and a shell use
//! the same knobs. Graph credentials follow the Azure SDK conventions (`AZURE_*`).

mod graph;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::api::{ManagementPolicy, parse_interval};
use crate::installation::ControllerSettings;
use crate::leader::{LeaseSettings, check_lease_duration};
pub use crate::telemetry::LogFormat;
pub use graph::{
    CLIENT_SECRET_ENV, DefaultConnection as DefaultConnectionMode, GraphArgs, positive_duration,
};

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
    /// Print the CRDs (TeamsAppInstallation, TeamsAppRollout) as YAML (`teams-app-operator crd | kubectl apply -f -`).
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

    /// Lowest audience re-read period a TeamsAppRollout may ask for; smaller
    /// spec.membershipInterval values are raised (each read is Graph calls and a status write).
    #[arg(long, env = "MIN_MEMBERSHIP_INTERVAL", default_value = "1m", value_parser = interval)]
    pub min_membership_interval: Duration,

    /// Re-check period while an install or upgrade waits to show up in Graph.
    #[arg(long, env = "VERIFY_INTERVAL", default_value = "10s", value_parser = interval)]
    pub verify_interval: Duration,

    /// How long after an install or upgrade Graph accepted the operator only re-reads, waiting
    /// for Graph to show it (its reads lag its writes), before it asks once more. An upgrade
    /// Graph accepted but did not apply is thus asked for again at most once per window (with an
    /// UpgradeNotApplied Warning Event).
    #[arg(long, env = "WRITE_VERIFY_WINDOW", default_value = "10m", value_parser = interval)]
    pub write_verify_window: Duration,

    /// How long a user the directory knows but Teams does not yet (Teams answers 404 for them)
    /// is waited for — Reconciling with reason UserNotProvisioned, retried every 1 to 5 minutes
    /// — counted from when the resource stopped being Ready; then it is Stalled.
    #[arg(long, env = "TEAMS_PROVISIONING_TIMEOUT", default_value = "24h", value_parser = positive_duration)]
    pub teams_provisioning_timeout: Duration,

    /// How long one catalog lookup serves every resource of the same app (0s: always ask
    /// Graph). A newly published version is noticed up to this much later.
    #[arg(long, env = "CATALOG_CACHE_TTL", default_value = "30s", value_parser = interval)]
    pub catalog_cache_ttl: Duration,

    /// How long one list of a user's installed apps serves every resource that names the user
    /// (Graph's read budget is per call); `0s` = each resource reads its own app, filtered. A
    /// write for the user, and the reconcile-requested-at annotation, always read afresh.
    #[arg(long, env = "USER_SNAPSHOT_TTL", default_value = "30s", value_parser = interval)]
    pub user_snapshot_ttl: Duration,

    /// How long after a resource with deletionPolicy Uninstall is deleted a failing uninstall is
    /// retried; then the resource is let go anyway, with an UninstallAbandoned Warning Event
    /// naming what was left installed. Errors retrying cannot fix (400, 403) give up at once.
    #[arg(long, env = "UNINSTALL_TIMEOUT", default_value = "10m", value_parser = interval)]
    pub uninstall_timeout: Duration,

    /// How many resources are reconciled at the same time. Beyond that (at start-up, say),
    /// waiting resources go a user at a time, all of a user's together, so that they share one
    /// read of the user's installed apps.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Log format: human-readable text or one JSON object per line. Level from RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// This replica's name in Events and its leader-election identity (the chart sets the pod
    /// name). Default: a random name.
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,

    /// Where to serve /metrics (Prometheus, OpenMetrics text), /livez and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Run leader election on a coordination.k8s.io Lease: only the replica holding it
    /// reconciles, the others stand by. Needed whenever more than one replica runs.
    #[arg(long = "leader-elect", env = "LEADER_ELECTION")]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "teams-app-operator")]
    pub lease_name: String,

    /// Namespace of the leader-election Lease. Default: the pod's namespace (POD_NAMESPACE),
    /// else the kubeconfig's namespace.
    #[arg(long, env = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long the Lease stays valid after its holder's last renewal: a standby takes over this
    /// long after a leader dies without releasing it. At least 3s.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = lease_duration)]
    pub lease_duration: Duration,

    /// What resources without `spec.managementPolicy` do: `Manage` writes to Graph; `Observe`
    /// only reads and reports in `status.plan` what `Manage` would do.
    #[arg(long, env = "DEFAULT_MANAGEMENT_POLICY", default_value = "Manage", value_parser = management_policy)]
    pub default_management_policy: ManagementPolicy,

    /// Where to receive Microsoft Graph change notifications for the managed apps (plain HTTP:
    /// Graph posts only to HTTPS, so a TLS-terminating Ingress goes in front). With it, drift is
    /// seen within seconds instead of at the next interval. Off unless set together with
    /// --notification-url.
    #[arg(long, env = "NOTIFICATION_ADDR", requires = "notification_url")]
    pub notification_addr: Option<SocketAddr>,

    /// The public base URL under which Graph reaches --notification-addr, e.g.
    /// https://teams-operator.example.com: subscriptions name
    /// `<url>/graph/notifications` and `<url>/graph/lifecycle`.
    #[arg(long, env = "NOTIFICATION_URL", requires = "notification_addr")]
    pub notification_url: Option<url::Url>,

    /// With notifications: ask Graph for rich notifications, encrypted for this certificate.
    /// They name the user whose installation changed, so a change to an installation the
    /// operator never read (a user installed an app their resource keeps absent) still re-reads
    /// that one user. PATH is a directory holding `tls.crt` and `tls.key` (a mounted
    /// kubernetes.io/tls Secret) or one PEM file holding both: an X.509 certificate (self-signed
    /// will do) with an unencrypted RSA key of 2048 to 4096 bits (PKCS#8 or PKCS#1). Read at
    /// start-up (a renewed certificate needs a restart); a key that does not match, or a
    /// certificate not valid now, stops the start. Graph knows the certificate by its SHA-256
    /// thumbprint.
    #[arg(
        long,
        env = "NOTIFICATION_CERTIFICATE",
        value_name = "PATH",
        requires = "notification_url"
    )]
    pub notification_certificate: Option<PathBuf>,

    /// With notifications: the drift check of a resource whose app a healthy subscription
    /// covers runs this often instead of its interval (when longer), as a safety net for a
    /// notification Graph lost; it falls back to the interval as soon as the subscription is
    /// unhealthy, missing, or Graph reports missed notifications.
    #[arg(long, env = "NOTIFICATION_RESYNC", default_value = "12h", value_parser = interval)]
    pub notification_resync: Duration,

    /// With notifications and several replicas: the URL at which the other replicas reach this
    /// one's receiver, e.g. http://10.1.2.3:8443 (the chart sets it from the pod's IP). Graph
    /// may post to any replica behind the Service; a standby forwards what it receives to the
    /// leader's URL. Default: http://<--notification-addr> when that names one address.
    #[arg(long, env = "NOTIFICATION_PEER_URL", requires = "notification_addr")]
    pub notification_peer_url: Option<url::Url>,

    /// With notifications: the Secret where the live subscriptions, their clientState secrets
    /// and the leader's receiver URL are kept, so that restarts and replicas agree. It lives in
    /// the pod's namespace (else the --namespace watched, else the kubeconfig's); only the
    /// leader writes it.
    #[arg(
        long,
        env = "NOTIFICATION_SECRET",
        default_value = "teams-app-operator-subscriptions"
    )]
    pub notification_secret: String,

    /// The pod's namespace (downward API), the default for --lease-namespace.
    #[arg(long, env = "POD_NAMESPACE", hide = true)]
    pub pod_namespace: Option<String>,
}

impl RunArgs {
    /// `instance` is [`RunArgs::instance_name`], resolved once per process.
    pub fn controller_settings(&self, instance: &str) -> ControllerSettings {
        ControllerSettings {
            namespace: self.namespace.clone(),
            default_interval: self.default_interval,
            min_interval: self.min_interval,
            min_membership_interval: self.min_membership_interval,
            concurrency: self.concurrency,
            verify_requeue: self.verify_interval,
            write_verify_window: self.write_verify_window,
            teams_provisioning_timeout: self.teams_provisioning_timeout,
            catalog_cache_ttl: self.catalog_cache_ttl,
            user_snapshot_ttl: self.user_snapshot_ttl,
            uninstall_timeout: self.uninstall_timeout,
            default_management_policy: self.default_management_policy,
            instance: Some(instance.to_string()),
        }
    }
}

impl RunArgs {
    /// The operator's own namespace (where `ClusterGraphConnection`s keep their credentials):
    /// the pod's, else the kubeconfig's default.
    pub fn operator_namespace(&self, default_namespace: &str) -> String {
        self.pod_namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_string())
    }

    /// Where the notification Secret lives: the pod's namespace, else the one namespace
    /// watched, else the kubeconfig's.
    pub fn state_namespace(&self, default_namespace: &str) -> String {
        (self.pod_namespace.clone())
            .or_else(|| self.namespace.clone())
            .unwrap_or_else(|| default_namespace.to_string())
    }

    /// The Lease to hold when leader election is on. `default_namespace` is the kubeconfig's.
    pub fn lease_settings(&self, instance: &str, default_namespace: &str) -> Option<LeaseSettings> {
        self.leader_election.then(|| LeaseSettings {
            name: self.lease_name.clone(),
            namespace: self
                .lease_namespace
                .clone()
                .or_else(|| self.pod_namespace.clone())
                .unwrap_or_else(|| default_namespace.to_string()),
            identity: instance.to_string(),
            duration: self.lease_duration,
        })
    }

    /// `--instance`, or a random name unique to this process (call it once).
    pub fn instance_name(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            format!("teams-app-operator-{}", &id[..12])
        })
    }
}

fn lease_duration(text: &str) -> Result<Duration, String> {
    let d = interval(text)?;
    check_lease_duration(d).map_err(|e| e.to_string())?;
    Ok(d)
}

fn management_policy(text: &str) -> Result<ManagementPolicy, String> {
    match text.to_ascii_lowercase().as_str() {
        "manage" => Ok(ManagementPolicy::Manage),
        "observe" => Ok(ManagementPolicy::Observe),
        _ => Err(format!("`{text}` is not Manage or Observe")),
    }
}

fn interval(text: &str) -> Result<Duration, String> {
    parse_interval(text).map_err(|e| e.to_string())
}
