//! How a simulator is started: the options that are not part of the seed.

use std::time::Duration;

use super::faults::FaultConfig;

/// The public cloud's Graph resource: what the token scope names and bind URLs use.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Knobs that are not part of the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// `expires_in` of issued tokens; Entra's are 60–90 minutes, tests use seconds.
    pub token_lifetime: Duration,
    /// The Graph resource this simulator stands in for, `scheme://host` (default
    /// [`GRAPH_RESOURCE`]; e.g. `https://graph.microsoft.us` for US Gov). As in Entra, the only
    /// scope the token endpoint grants is `{graph_resource}/.default` (or Graph's app id
    /// `00000003-0000-0000-c000-000000000000/.default`), whatever host the client dialled; and
    /// as in Graph, `teamsApp@odata.bind` must be a URL on this host.
    pub graph_resource: String,
    /// Write `@odata.nextLink` and `@odata.context` on `graph_resource` instead of the host the
    /// client addressed, as real Graph does behind a proxy: a client pointed at an override base
    /// must rewrite them. `PUT /_sim/faults {"canonicalNextLinks": …}` overrides it while set.
    pub canonical_next_links: bool,
    /// The faults in force from the start (e.g. Graph's budgets for a benchmark), key by key over
    /// the seed's `faults`, and what `POST /_sim/reset` and `DELETE /_sim/faults` return to.
    /// Default: none beyond the seed's.
    pub faults: FaultConfig,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(3599),
            graph_resource: GRAPH_RESOURCE.to_string(),
            canonical_next_links: false,
            faults: FaultConfig::default(),
        }
    }
}

/// `https://graph.microsoft.com/` → `https://graph.microsoft.com`; an error unless an http(s)
/// origin without path, query or credentials.
pub(crate) fn graph_resource(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("graph resource {raw:?}: {e}"))?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty();
    if !plain {
        return Err(format!(
            "graph resource {raw:?} must be an origin like https://graph.microsoft.com"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}
