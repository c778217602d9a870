//! Everything a [`GraphClient`](super::GraphClient) is built from.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::budget::BudgetConfig;
use super::cloud::Cloud;
use super::credentials::CredentialSource;
use super::metrics::{GraphMetrics, NoopMetrics};
use super::token::TokenSettings;
use crate::backoff::Backoff;

pub const DEFAULT_API_VERSION: &str = "v1.0";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;

/// Client configuration. Start from [`GraphSettings::new`] and adjust the public fields.
#[derive(Clone)]
pub struct GraphSettings {
    pub cloud: Cloud,
    /// Overrides the cloud's Graph host (scheme + host + port), e.g. the simulator's URL.
    pub graph_url: Option<Url>,
    /// Overrides the cloud's login host.
    pub login_url: Option<Url>,
    /// `v1.0` or `beta`.
    pub api_version: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: CredentialSource,
    pub budget: BudgetConfig,
    /// Per attempt, from sending the request to the end of the response body.
    pub timeout: Duration,
    /// Attempts per call, the first included, for failures that pass within a second (a dropped
    /// connection, a 429 or 5xx whose `Retry-After` is at most 1 s); any other failure ends the
    /// call at once and the caller's backoff retries it (see `GraphClient::send`). A token
    /// refresh after a 401 does not count.
    pub max_attempts: u32,
    /// The start-up sign-in's pace between attempts.
    pub backoff: Backoff,
    /// When tokens are refreshed, and how long a failed token request stands for every caller.
    pub token: TokenSettings,
    pub metrics: Arc<dyn GraphMetrics>,
}

impl GraphSettings {
    /// Public cloud, `v1.0`, the documented Graph limits, 30 s timeout, 2 quick attempts.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: CredentialSource,
    ) -> Self {
        Self {
            cloud: Cloud::Public,
            graph_url: None,
            login_url: None,
            api_version: DEFAULT_API_VERSION.to_string(),
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            budget: BudgetConfig::default(),
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::default(),
            token: TokenSettings::default(),
            metrics: Arc::new(NoopMetrics),
        }
    }

    /// Points both Graph and login at one base URL (the simulator serves both).
    pub fn with_base_url(mut self, base: Url) -> Self {
        self.login_url = Some(base.clone());
        self.graph_url = Some(base);
        self
    }
}

impl std::fmt::Debug for GraphSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSettings")
            .field("cloud", &self.cloud)
            .field("graph_url", &self.graph_url.as_ref().map(Url::as_str))
            .field("login_url", &self.login_url.as_ref().map(Url::as_str))
            .field("api_version", &self.api_version)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("budget", &self.budget)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}
