//! National clouds and the endpoints derived from them.
//!
//! Each Microsoft cloud has its own Graph and login hosts. Only the global cloud lets an app
//! install, list, upgrade and remove Teams apps for users with app-only permissions, so the client
//! refuses the others at construction time: a clear start-up error beats a 403 on every call.

use url::Url;

use super::error::GraphConfigError;

/// A Microsoft cloud preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Cloud {
    /// Global Azure, including GCC.
    #[default]
    Public,
    /// US Government L4 (GCC High).
    UsGov,
    /// US Government L5 (DoD).
    UsGovDod,
    /// Azure China, operated by 21Vianet.
    China,
}

impl std::str::FromStr for Cloud {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|cloud| cloud.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                format!("unknown cloud {name:?}: use one of {}", names.join(", "))
            })
    }
}

impl Cloud {
    pub const ALL: [Cloud; 4] = [Self::Public, Self::UsGov, Self::UsGovDod, Self::China];

    pub fn name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::UsGov => "usgov",
            Self::UsGovDod => "usgov-dod",
            Self::China => "china",
        }
    }

    pub fn graph_host(self) -> &'static str {
        match self {
            Self::Public => "graph.microsoft.com",
            Self::UsGov => "graph.microsoft.us",
            Self::UsGovDod => "dod-graph.microsoft.us",
            Self::China => "microsoftgraph.chinacloudapi.cn",
        }
    }

    pub fn login_host(self) -> &'static str {
        match self {
            Self::Public => "login.microsoftonline.com",
            Self::UsGov | Self::UsGovDod => "login.microsoftonline.us",
            Self::China => "login.chinacloudapi.cn",
        }
    }

    /// Why this cloud cannot run the operator, or `None` when it can.
    pub fn unsupported_reason(self) -> Option<&'static str> {
        match self {
            Self::Public => None,
            Self::UsGov | Self::UsGovDod => Some(
                "installing, listing, upgrading and removing Teams apps for users is not \
                 supported with app-only (application) permissions in US Government clouds",
            ),
            Self::China => {
                Some("Teams app installation is not supported in Azure China (21Vianet)")
            }
        }
    }

    fn graph_base(self) -> Url {
        https_url(self.graph_host())
    }

    fn login_base(self) -> Url {
        https_url(self.login_host())
    }
}

fn https_url(host: &str) -> Url {
    // The hosts are compile-time constants that are valid URLs; a failure here is a typo in this
    // file, caught by the preset tests below.
    Url::parse(&format!("https://{host}")).unwrap_or_else(|_| unreachable!("bad preset {host}"))
}

/// Where the client sends token and Graph requests.
///
/// An override (the simulator, a proxy) changes where requests go and nothing else: the token
/// scope, the `teamsApp@odata.bind` URL and the host of Graph's `@odata.nextLink`s stay the
/// cloud's canonical Graph host, as Entra and Graph expect them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where Graph requests go: scheme + host (+ port, + a proxy's path prefix), no trailing
    /// slash, e.g. `https://graph.microsoft.com`.
    graph_base: String,
    /// The cloud's own Graph host, e.g. `https://graph.microsoft.com`, whatever the override.
    canonical_graph_base: String,
    login_base: String,
    api_version: String,
}

impl Endpoints {
    /// Resolves the cloud preset and the overrides (the simulator's URLs, or a proxy).
    ///
    /// The preset decides whether the operator can run at all: overriding the URLs of a national
    /// cloud does not make app-only user installs supported there.
    pub fn resolve(
        cloud: Cloud,
        graph_override: Option<&Url>,
        login_override: Option<&Url>,
        api_version: &str,
    ) -> Result<Self, GraphConfigError> {
        if let Some(reason) = cloud.unsupported_reason() {
            return Err(GraphConfigError::UnsupportedCloud {
                cloud: cloud.name(),
                reason,
            });
        }
        let api_version = api_version.trim().trim_matches('/');
        if api_version.is_empty() || api_version.contains(['/', '?', '#']) {
            return Err(GraphConfigError::Invalid(format!(
                "Graph API version {api_version:?} must be a single path segment like v1.0 or beta"
            )));
        }
        let graph = graph_override
            .cloned()
            .unwrap_or_else(|| cloud.graph_base());
        let login = login_override
            .cloned()
            .unwrap_or_else(|| cloud.login_base());
        Ok(Self {
            graph_base: base_of(&graph, "Graph")?,
            canonical_graph_base: base_of(&cloud.graph_base(), "Graph")?,
            login_base: base_of(&login, "login")?,
            api_version: api_version.to_string(),
        })
    }

    /// `https://graph.microsoft.com` (no version, no trailing slash).
    pub fn graph_base(&self) -> &str {
        &self.graph_base
    }

    pub fn login_base(&self) -> &str {
        &self.login_base
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// `https://graph.microsoft.com/v1.0`: Graph paths are relative to this.
    pub fn api_base(&self) -> String {
        format!("{}/{}", self.graph_base, self.api_version)
    }

    /// `{login}/{tenant}/oauth2/v2.0/token`; the tenant is percent-encoded as a path segment.
    pub fn token_url(&self, tenant: &str) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_base,
            super::odata::encode_path_segment(tenant)
        )
    }

    /// `https://graph.microsoft.com/v1.0`, whatever the override: Graph resolves
    /// `teamsApp@odata.bind` against its own host.
    pub fn canonical_api_base(&self) -> String {
        format!("{}/{}", self.canonical_graph_base, self.api_version)
    }

    /// The client-credentials scope: all application permissions granted on Graph. Always the
    /// cloud's Graph resource: Entra refuses a scope naming any other host, such as an override.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.canonical_graph_base)
    }

    /// Where to send an `@odata.nextLink`, or `None` when it leaves Graph (the bearer token goes
    /// wherever a followed link points). Graph writes its links with its own host; with an
    /// override they are rebased onto the override, path and query kept.
    pub fn follow_link(&self, link: &str) -> Option<Url> {
        let base = Url::parse(&self.graph_base).ok()?;
        let next = base.join(link).ok()?;
        if next.origin() == base.origin() {
            return Some(next);
        }
        let canonical = Url::parse(&self.canonical_graph_base).ok()?;
        if next.origin() != canonical.origin() {
            return None;
        }
        let mut rebased = format!("{}{}", self.graph_base, next.path());
        if let Some(query) = next.query() {
            rebased.push('?');
            rebased.push_str(query);
        }
        Url::parse(&rebased).ok()
    }
}

/// Keeps scheme, host, port and any path prefix (a reverse proxy may add one), drops the rest.
fn base_of(url: &Url, what: &str) -> Result<String, GraphConfigError> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(GraphConfigError::Invalid(format!(
            "{what} base URL {url} must be an http(s) URL with a host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(GraphConfigError::Invalid(format!(
            "{what} base URL must not carry a query, fragment or credentials"
        )));
    }
    let mut base = url.as_str().to_string();
    while base.ends_with('/') {
        base.pop();
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_cloud_preset() {
        let e = Endpoints::resolve(Cloud::Public, None, None, "v1.0").unwrap();
        assert_eq!(e.api_base(), "https://graph.microsoft.com/v1.0");
        assert_eq!(e.scope(), "https://graph.microsoft.com/.default");
        assert_eq!(
            e.token_url("contoso.onmicrosoft.com"),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn national_clouds_are_refused_even_with_overrides() {
        let sim = Url::parse("http://127.0.0.1:8080").unwrap();
        for cloud in [Cloud::UsGov, Cloud::UsGovDod, Cloud::China] {
            let err = Endpoints::resolve(cloud, Some(&sim), Some(&sim), "v1.0").unwrap_err();
            let text = err.to_string();
            assert!(text.contains(cloud.name()), "{text}");
            assert!(text.contains("not supported"), "{text}");
            // The presets themselves are well-formed.
            assert!(cloud.graph_base().host_str().is_some());
            assert!(cloud.login_base().host_str().is_some());
        }
        assert_eq!(Cloud::UsGovDod.graph_host(), "dod-graph.microsoft.us");
        assert_eq!(Cloud::China.login_host(), "login.chinacloudapi.cn");
    }

    #[test]
    fn overrides_point_at_the_simulator() {
        let sim = Url::parse("http://127.0.0.1:8080/").unwrap();
        let e = Endpoints::resolve(Cloud::Public, Some(&sim), Some(&sim), "beta").unwrap();
        assert_eq!(e.api_base(), "http://127.0.0.1:8080/beta");
        // Only where requests go changes: Entra and Graph still see the cloud's Graph host.
        assert_eq!(e.scope(), "https://graph.microsoft.com/.default");
        assert_eq!(e.canonical_api_base(), "https://graph.microsoft.com/beta");
        assert_eq!(
            e.token_url("t"),
            "http://127.0.0.1:8080/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn next_links_are_rebased_onto_the_override_and_never_leave_graph() {
        let proxy = Url::parse("http://127.0.0.1:8080/graph").unwrap();
        let e = Endpoints::resolve(Cloud::Public, Some(&proxy), None, "v1.0").unwrap();
        let follow = |link: &str| e.follow_link(link).map(String::from);
        assert_eq!(
            follow("https://graph.microsoft.com/v1.0/users/a/teamwork/installedApps?$skiptoken=x")
                .as_deref(),
            Some("http://127.0.0.1:8080/graph/v1.0/users/a/teamwork/installedApps?$skiptoken=x")
        );
        assert_eq!(
            follow("http://127.0.0.1:8080/graph/v1.0/users?$skiptoken=y").as_deref(),
            Some("http://127.0.0.1:8080/graph/v1.0/users?$skiptoken=y")
        );
        assert_eq!(follow("https://evil.example/v1.0/users"), None);
        assert_eq!(follow("https://graph.microsoft.us/v1.0/users"), None);

        let plain = Endpoints::resolve(Cloud::Public, None, None, "v1.0").unwrap();
        assert_eq!(
            plain
                .follow_link("https://graph.microsoft.com/v1.0/users?$skiptoken=z")
                .map(String::from)
                .as_deref(),
            Some("https://graph.microsoft.com/v1.0/users?$skiptoken=z")
        );
    }

    #[test]
    fn rejects_bad_versions_and_urls() {
        assert!(Endpoints::resolve(Cloud::Public, None, None, "").is_err());
        assert!(Endpoints::resolve(Cloud::Public, None, None, "v1.0/x").is_err());
        let bad = Url::parse("ftp://example.com").unwrap();
        assert!(Endpoints::resolve(Cloud::Public, Some(&bad), None, "v1.0").is_err());
        let query = Url::parse("https://example.com/?a=b").unwrap();
        assert!(Endpoints::resolve(Cloud::Public, None, Some(&query), "v1.0").is_err());
    }
}
