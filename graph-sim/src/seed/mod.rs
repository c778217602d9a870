//! The seed: the tenants, clients, users, catalog apps and installations the simulator starts
//! from (and returns to on `POST /_sim/reset`). Written by hand in YAML or JSON; field names follow
//! Graph's camelCase so a seed reads like the Graph objects it produces.

use serde::{Deserialize, Serialize};

mod catalog;
mod directory;
mod settings;

pub use catalog::{
    AppSeed, DefinitionSeed, DistributionMethod, InstallationSeed, PublishingState, RscPermission,
    RscPermissionType,
};
pub use directory::{GroupSeed, PlanSeed, UserPatch, UserSeed, UserType};
pub use settings::{MAX_LAG_MS, TeamsAppSettings, TenantSettings};

use crate::faults::FaultConfig;

/// Everything the simulator knows at start-up. See `examples/tenant.yaml` for a commented example.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub tenants: Vec<TenantSeed>,
    /// Page size of `installedApps` and catalog lists when the client sends no `$top`
    /// (default [`DEFAULT_PAGE_SIZE`]). A small value exercises a client's `@odata.nextLink` loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<usize>,
    /// The faults in force from the start, as `PUT /_sim/faults` would set them; flags and
    /// `SimOptions::faults` override them key by key. `POST /_sim/reset` and
    /// `DELETE /_sim/faults` return to them.
    #[serde(default, skip_serializing_if = "FaultConfig::is_empty")]
    pub faults: FaultConfig,
}

/// Page size used when neither the client (`$top`) nor the seed (`pageSize`) chooses one.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// One Entra tenant (directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSeed {
    /// The tenant id (a GUID) as used in the token URL `/{tenant}/oauth2/v2.0/token`.
    pub id: String,
    /// Extra names the token URL accepts for this tenant, e.g. `contoso.onmicrosoft.com`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default)]
    pub clients: Vec<ClientSeed>,
    #[serde(default)]
    pub users: Vec<UserSeed>,
    #[serde(default)]
    pub apps: Vec<AppSeed>,
    #[serde(default)]
    pub installations: Vec<InstallationSeed>,
    /// Security groups, whose transitive user members
    /// `GET /groups/{id}/transitiveMembers/microsoft.graph.user` lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSeed>,
    /// See [`TenantSettings::directory_lag_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_lag_ms: Option<u64>,
    /// See [`TenantSettings::directory_flap`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_flap: Option<f64>,
    /// See [`TenantSettings::page_token_ttl_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token_ttl_ms: Option<u64>,
    /// See [`TenantSettings::catalog_lag_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_lag_ms: Option<u64>,
    /// See [`TenantSettings::blocked_apps`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_apps: Vec<String>,
    /// The tenant's Teams app settings (`GET /teamwork/teamsAppSettings`); see
    /// [`TeamsAppSettings`].
    #[serde(default, skip_serializing_if = "TeamsAppSettings::is_empty")]
    pub teams_app_settings: TeamsAppSettings,
}

impl TenantSeed {
    /// The tenant's knobs, as `PATCH /_sim/tenants/{tenant}` would set them.
    pub fn settings(&self) -> TenantSettings {
        TenantSettings {
            directory_lag_ms: self.directory_lag_ms,
            directory_flap: self.directory_flap,
            page_token_ttl_ms: self.page_token_ttl_ms,
            catalog_lag_ms: self.catalog_lag_ms,
            blocked_apps: (!self.blocked_apps.is_empty()).then(|| self.blocked_apps.clone()),
        }
    }
}

/// A change to an app registration (`PATCH /_sim/tenants/{t}/clients/{id}`); absent fields stay
/// as they are. A new `secret` replaces the old one, which Entra then refuses (a rotation);
/// tokens already issued stay valid until they expire (`POST /_sim/tokens/expire` ends them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Replaces the granted application permissions (for tokens issued from now on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// An app registration that may call Graph app-only. It authenticates with any credential it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSeed {
    /// The application (client) id.
    pub id: String,
    /// Accepted as `client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// PEM of an RSA X.509 certificate. JWT client assertions signed by its key are accepted when
    /// the header's `x5t#S256` is this certificate's thumbprint, `aud` is this tenant's token URL,
    /// `iss` = `sub` = the client id and `exp` has not passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Federated identity credentials (workload identity): a JWT from another issuer, e.g. a
    /// Kubernetes projected service-account token, is accepted as the client assertion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_credentials: Vec<FederatedCredentialSeed>,
    /// Application permissions granted (admin-consented) to this client: the `roles` of its
    /// tokens, fixed when a token is issued. Default: `TeamsAppInstallation.ReadWriteForUser.All`,
    /// `AppCatalog.Read.All`, `GroupMember.Read.All`, `User.Read.All`. Modelled:
    /// - installedApps: with only `TeamsAppInstallation.ReadWriteSelfForUser.All` a client sees
    ///   no installations (list = `[]`, get = 404) and install/upgrade/uninstall are 403; with
    ///   neither that nor `…ReadWriteForUser.All`, every installedApps call is 403.
    /// - a group's transitive members need `GroupMember.Read.All`, `Group.Read.All` or
    ///   `Directory.Read.All` (or a `…ReadWrite…` variant): else 403 `Authorization_RequestDenied`.
    ///   Without `User.Read.All` or `Directory.Read.All` (or their `…ReadWrite…` variants) the
    ///   members still come back, but with `id` only: every other property is `null`, as Graph
    ///   answers a client that may read memberships but not users. A client must report that as a
    ///   missing permission, not as disabled or unlicensed users.
    /// - `User.ReadBasic.All` (without those) reads the basic profile only: `id`, `displayName`,
    ///   `givenName`, `surname`, `mail`, `userPrincipalName`; `accountEnabled`, `userType`,
    ///   `assignedPlans` and the rest come back `null`, of members and of `GET /users/{id}`.
    /// - `GET /users/{id}` needs `User.Read.All`, `Directory.Read.All` or `User.ReadBasic.All`
    ///   (else 403).
    /// - an install or upgrade consenting to an `application` RSC permission needs
    ///   `TeamsAppInstallation.ReadWriteAndConsentForUser.All` (else 403); it is not a default.
    /// - `GET /teamwork/teamsAppSettings` needs `TeamworkAppSettings.Read.All` or
    ///   `TeamworkAppSettings.ReadWrite.All` (else 403).
    ///
    /// Other roles are not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// Matches Entra's federated identity credential: `issuer`, `subject` and one of `audiences`
/// must equal the assertion's `iss`, `sub` and `aud` (case-sensitive, as Entra now matches), and
/// its `exp` must not have passed. The simulator cannot fetch the issuer's signing keys, so the
/// signature is only checked when `issuerKey` (a PEM RSA public key or certificate) is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredentialSeed {
    pub issuer: String,
    pub subject: String,
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_key: Option<String>,
}

fn default_audiences() -> Vec<String> {
    vec!["api://AzureADTokenExchange".to_string()]
}

/// Why a seed could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("seed is not valid YAML/JSON: {0}")]
    Parse(String),
    #[error("invalid seed: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_seed_loads() {
        let seed = Seed::from_yaml_str(crate::DEMO_SEED_YAML).unwrap();
        assert_eq!(seed.tenants.len(), 1);
        assert_eq!(seed.tenants[0].users.len(), 3);
        assert_eq!(seed.tenants[0].groups.len(), 2);
        assert_eq!(Seed::demo(), seed);
    }

    #[test]
    fn the_documented_minimal_seed_loads_as_yaml_and_json() {
        let yaml = r#"
tenants:
  - id: 00000000-0000-0000-0000-000000000001
    clients: [{id: 11111111-1111-1111-1111-111111111111, secret: s3cret}]
    users: [{id: 22222222-2222-2222-2222-222222222222, userPrincipalName: alice@contoso.com}]
    apps:
      - {id: 33333333-3333-3333-3333-333333333333, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{version: "1.0.0", publishingState: published}]}
    installations: [{user: alice@contoso.com, app: 33333333-3333-3333-3333-333333333333, version: "1.0.0"}]
"#;
        let seed = Seed::from_yaml_str(yaml).unwrap();
        let json = serde_json::to_string(&seed).unwrap();
        assert_eq!(Seed::from_json_str(&json).unwrap(), seed);
    }

    #[test]
    fn broken_references_and_typos_are_refused() {
        let base = "tenants:\n  - id: t\n    users: [{id: u, userPrincipalName: u@x}]\n    \
                    apps: [{id: a, displayName: A, definitions: [{version: '1.0'}]}]\n";
        for (extra, why) in [
            (
                "    installations: [{user: nobody, app: a}]\n",
                "unknown user",
            ),
            ("    installations: [{user: u, app: b}]\n", "unknown app"),
            (
                "    installations: [{user: u, app: a, version: '2.0'}]\n",
                "unknown version",
            ),
            (
                "    clients: [{id: c, certificate: nope}]\n",
                "bad certificate",
            ),
            ("    colour: blue\n", "unknown field"),
            (
                "    groups: [{id: g, members: [u, nobody]}]\n",
                "unknown group member",
            ),
            ("    groups: [{id: u}]\n", "a group with a user's id"),
        ] {
            assert!(
                Seed::from_yaml_str(&format!("{base}{extra}")).is_err(),
                "{why}"
            );
        }
        assert!(Seed::from_yaml_str(base).is_ok());
    }
}
