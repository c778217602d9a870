//! Command-line and environment configuration of the Graph client: the flags, turned into the
//! plain [`GraphSettings`] the client is built from.
//!
//! Environment names follow the Azure SDK conventions (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST`), which the workload identity webhook
//! injects, so a pod with workload identity needs no Graph flags at all.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use clap::builder::TypedValueParser as _;

use crate::api::parse_interval;
use crate::graph::{
    BudgetConfig, Cloud, CredentialSource, GraphClient, GraphConfigError, GraphSettings, Secret,
};

/// The environment variable holding a client secret. Deliberately not a flag: flag values show
/// up in process listings and shell history.
pub const CLIENT_SECRET_ENV: &str = "AZURE_CLIENT_SECRET";

/// Whether resources without `spec.connectionRef` have a connection: the one of the flags.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultConnection {
    Flags,
    None,
}

/// Microsoft Graph connection settings.
#[derive(clap::Args, Debug, Clone)]
pub struct GraphArgs {
    /// Microsoft cloud. Only `public` supports installing apps for users with app-only
    /// permissions; the others are refused at start-up.
    #[arg(long, env = "GRAPH_CLOUD", default_value = "public", value_parser = clap::builder::PossibleValuesParser::new(Cloud::ALL.map(Cloud::name)).try_map(|name| name.parse::<Cloud>()))]
    pub cloud: Cloud,

    /// Graph base URL overriding the cloud's (e.g. the simulator: http://127.0.0.1:8080).
    #[arg(long, env = "GRAPH_URL")]
    pub graph_url: Option<Url>,

    /// Login (Entra ID) base URL overriding the cloud's.
    #[arg(long, env = "AZURE_AUTHORITY_HOST")]
    pub login_url: Option<Url>,

    /// Graph API version.
    #[arg(long, env = "GRAPH_API_VERSION", default_value = "v1.0")]
    pub graph_api_version: String,

    /// Entra tenant id (GUID or domain) of the operator's own connection: the one resources
    /// without `spec.connectionRef` use. Required unless --default-connection=none.
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant_id: Option<String>,

    /// Application (client) id of the operator's app registration. Required unless
    /// --default-connection=none.
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub client_id: Option<String>,

    /// `flags`: resources without `spec.connectionRef` use the connection these flags
    /// describe. `none`: there is no such connection — every resource must name a
    /// GraphConnection or ClusterGraphConnection (others are Stalled `ConnectionNotFound`), and
    /// no tenant, client or credential flag is needed.
    #[arg(long, env = "DEFAULT_CONNECTION", value_enum, default_value_t = DefaultConnection::Flags)]
    pub default_connection: DefaultConnection,

    /// The namespaces whose resources may use the operator's own connection, comma-separated;
    /// empty (the default) allows every namespace, as before connections existed. Set it when
    /// teams create resources in their own namespaces: otherwise anyone who may create a
    /// TeamsAppInstallation anywhere wields the operator's tenant-wide permission.
    #[arg(long, env = "DEFAULT_CONNECTION_NAMESPACES", value_delimiter = ',')]
    pub default_connection_namespaces: Vec<String>,

    /// File holding the client secret (re-read on every token request). A secret can also be
    /// given in the AZURE_CLIENT_SECRET environment variable, never as a flag.
    #[arg(long, env = "AZURE_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,

    /// The client secret, from AZURE_CLIENT_SECRET only.
    #[arg(skip = secret_from_env())]
    pub client_secret: Option<Secret>,

    /// PEM file with the client certificate and its RSA private key.
    #[arg(long, env = "AZURE_CLIENT_CERTIFICATE_PATH")]
    pub client_certificate_path: Option<PathBuf>,

    /// Workload identity: projected service-account token to present as the client assertion.
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE")]
    pub federated_token_file: Option<PathBuf>,

    /// Reads per second (GET installedApps, GET appCatalogs) for the tenant; 0 = unlimited.
    #[arg(long, env = "GRAPH_READ_RPS", default_value_t = 30.0)]
    pub graph_read_rps: f64,

    /// Installs and upgrades per second for the tenant; 0 = unlimited.
    #[arg(long, env = "GRAPH_WRITE_RPS", default_value_t = 30.0)]
    pub graph_write_rps: f64,

    /// Uninstalls per second for the tenant; 0 = unlimited.
    #[arg(long, env = "GRAPH_DELETE_RPS", default_value_t = 15.0)]
    pub graph_delete_rps: f64,

    /// Directory reads per second (a rollout's group members and users) for the tenant; 0 =
    /// unlimited.
    #[arg(long, env = "GRAPH_DIRECTORY_RPS", default_value_t = 20.0)]
    pub graph_directory_rps: f64,

    /// Timeout of one Graph request attempt, e.g. `30s`, `1500ms`, `2m`, `1m30s`.
    #[arg(long, env = "GRAPH_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub graph_timeout: Duration,

    /// Attempts per Graph call within one reconcile (first included) for failures that pass
    /// within a second: a dropped connection (retried at once), a 429 or 5xx whose Retry-After
    /// is at most 1s. Any other failure is reported in the resource's status at once and
    /// retried on the resource's own backoff, which honours Retry-After.
    #[arg(long, env = "GRAPH_MAX_ATTEMPTS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub graph_max_attempts: u32,
}

fn secret_from_env() -> Option<Secret> {
    std::env::var(CLIENT_SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(Secret::new)
}

impl GraphArgs {
    /// Exactly one credential source must be configured.
    pub fn credential(&self) -> Result<CredentialSource, GraphConfigError> {
        let mut found: Vec<(&'static str, CredentialSource)> = Vec::new();
        if let Some(secret) = &self.client_secret {
            found.push((
                CLIENT_SECRET_ENV,
                CredentialSource::ClientSecret(secret.clone()),
            ));
        }
        if let Some(path) = &self.client_secret_file {
            found.push((
                "--client-secret-file",
                CredentialSource::ClientSecretFile(path.clone()),
            ));
        }
        if let Some(path) = &self.client_certificate_path {
            found.push((
                "--client-certificate-path",
                CredentialSource::CertificateFile(path.clone()),
            ));
        }
        if let Some(path) = &self.federated_token_file {
            found.push((
                "--federated-token-file",
                CredentialSource::FederatedTokenFile(path.clone()),
            ));
        }
        match found.len() {
            0 => Err(GraphConfigError::NoCredential),
            1 => Ok(found.remove(0).1),
            _ => Err(GraphConfigError::ConflictingCredentials(
                found.into_iter().map(|(name, _)| name).collect(),
            )),
        }
    }

    /// The operator's own connection, from these flags.
    pub fn settings(&self) -> Result<GraphSettings, GraphConfigError> {
        let required = |value: &Option<String>, flag: &str| {
            value.clone().ok_or_else(|| {
                GraphConfigError::Invalid(format!(
                    "{flag} is required for the operator's own connection (or turn it off with --default-connection=none)"
                ))
            })
        };
        let mut settings = self.template()?;
        settings.tenant_id = required(&self.tenant_id, "--tenant-id")?;
        settings.client_id = required(&self.client_id, "--client-id")?;
        settings.credential = self.credential()?;
        settings.cloud = self.cloud;
        settings.graph_url = self.graph_url.clone();
        settings.login_url = self.login_url.clone();
        Ok(settings)
    }

    /// What every connection's client starts from: the rates, timeouts and retries of these
    /// flags, without the identity (each connection brings its own tenant, client, credential,
    /// cloud and URLs).
    pub fn template(&self) -> Result<GraphSettings, GraphConfigError> {
        for (name, rps) in [
            ("--graph-read-rps", self.graph_read_rps),
            ("--graph-write-rps", self.graph_write_rps),
            ("--graph-delete-rps", self.graph_delete_rps),
            ("--graph-directory-rps", self.graph_directory_rps),
        ] {
            if !rps.is_finite() || rps < 0.0 {
                return Err(GraphConfigError::Invalid(format!(
                    "{name} must be a non-negative number"
                )));
            }
        }
        // No identity: a connection's own replaces it before a client is built.
        let mut settings = GraphSettings::new(
            "",
            "",
            CredentialSource::ClientSecret(Secret::new(String::new())),
        );
        settings.api_version = self.graph_api_version.clone();
        settings.budget = BudgetConfig {
            read_per_second: self.graph_read_rps,
            write_per_second: self.graph_write_rps,
            delete_per_second: self.graph_delete_rps,
            directory_per_second: self.graph_directory_rps,
            ..BudgetConfig::default()
        };
        settings.timeout = self.graph_timeout;
        settings.max_attempts = self.graph_max_attempts;
        Ok(settings)
    }

    /// Builds the client; every configuration problem surfaces here, at start-up.
    pub fn build_client(&self) -> Result<GraphClient, GraphConfigError> {
        GraphClient::new(self.settings()?)
    }
}

/// A duration in the one grammar of every flag and `spec.interval` (`30s`, `1500ms`, `1h30m`),
/// greater than zero.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_interval(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("the duration must be greater than zero".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        graph: GraphArgs,
    }

    fn parse(args: &[&str]) -> Result<GraphArgs, clap::Error> {
        let mut argv = vec!["test", "--tenant-id", "t", "--client-id", "c"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| cli.graph)
    }

    #[test]
    fn parses_durations_like_every_other_flag() {
        assert_eq!(positive_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(positive_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(positive_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(positive_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("ten").is_err());
        assert!(positive_duration("5d").is_err());
        let args = parse(&["--graph-timeout", "1h30m"]).unwrap();
        assert_eq!(args.graph_timeout, Duration::from_secs(5400));
    }

    #[test]
    fn defaults_and_value_names() {
        let args = parse(&["--cloud", "usgov-dod", "--federated-token-file", "/tok"]).unwrap();
        assert_eq!(args.cloud, Cloud::UsGovDod);
        assert_eq!(args.graph_api_version, "v1.0");
        assert_eq!(args.graph_timeout, Duration::from_secs(30));
        assert_eq!(args.graph_delete_rps, 15.0);
        assert!(parse(&["--cloud", "mars"]).is_err());
    }

    #[test]
    fn exactly_one_credential() {
        let mut args = parse(&[]).unwrap();
        args.client_secret = None;
        assert!(matches!(
            args.credential(),
            Err(GraphConfigError::NoCredential)
        ));
        args.client_secret = Some(Secret::new("s"));
        args.federated_token_file = Some("/tok".into());
        let err = args.credential().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("AZURE_CLIENT_SECRET") && text.contains("--federated-token-file"));
        args.client_secret = None;
        assert!(matches!(
            args.credential(),
            Ok(CredentialSource::FederatedTokenFile(_))
        ));
    }

    #[test]
    fn national_clouds_fail_at_build_time() {
        let mut args =
            parse(&["--cloud", "china", "--client-secret-file", "/nonexistent"]).unwrap();
        args.client_secret = None;
        let err = args.build_client().unwrap_err();
        assert!(
            matches!(err, GraphConfigError::UnsupportedCloud { .. }),
            "{err}"
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let mut args = parse(&[]).unwrap();
        args.client_secret = Some(Secret::new("super-secret-value"));
        assert!(!format!("{args:?}").contains("super-secret-value"));
    }

    #[test]
    fn the_own_connection_can_be_turned_off_and_then_needs_no_identity() {
        let args = Cli::try_parse_from(["test", "--default-connection", "none"])
            .expect("no tenant or client needed")
            .graph;
        assert_eq!(args.default_connection, DefaultConnection::None);
        assert!(args.template().is_ok());
        let err = args.settings().unwrap_err().to_string();
        assert!(err.contains("--tenant-id is required"), "{err}");
    }

    #[test]
    fn the_own_connection_namespaces_are_a_comma_separated_list() {
        let args = parse(&["--default-connection-namespaces", "platform,ops"]).unwrap();
        assert_eq!(args.default_connection, DefaultConnection::Flags);
        assert_eq!(args.default_connection_namespaces, ["platform", "ops"]);
        assert!(parse(&[]).unwrap().default_connection_namespaces.is_empty());
    }
}
