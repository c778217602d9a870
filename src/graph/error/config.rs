/// Configuration problems found while building a client: reported once, at start-up.
#[derive(Debug, thiserror::Error)]
pub enum GraphConfigError {
    #[error(
        "the {cloud} cloud cannot be used: {reason}. The operator installs apps for users with \
         app-only permissions, which Microsoft supports only in the global (public) cloud"
    )]
    UnsupportedCloud {
        cloud: &'static str,
        reason: &'static str,
    },
    #[error(
        "no Graph credential configured: set exactly one of AZURE_CLIENT_SECRET, \
         --client-secret-file, --client-certificate-path or --federated-token-file"
    )]
    NoCredential,
    #[error("more than one Graph credential configured ({}): set exactly one", .0.join(", "))]
    ConflictingCredentials(Vec<&'static str>),
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("client certificate {path}: {message}")]
    Certificate {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("invalid Graph setting: {0}")]
    Invalid(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}
