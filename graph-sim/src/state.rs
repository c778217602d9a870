//! The simulated directory and app catalog, built from a [`Seed`], and the operations Graph
//! performs on it. Everything here is synchronous and runs under the simulator's one lock.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::Value;

use super::catalog_lag::CatalogTrail;
use super::credentials::{CertificateCredential, FederatedCredential};
use super::dirlag::DirectoryTrail;
use super::groups::{Closures, Group};
use super::ids;
use super::notify::InstallChange;
use super::seed::{
    AppSeed, ClientPatch, ClientSeed, DefinitionSeed, DistributionMethod, InstallationSeed,
    PublishingState, RscPermission, Seed, SeedError, TeamsAppSettings, TenantSeed, TenantSettings,
};
pub(crate) use super::users::User;
use super::version;

/// Why an admin change (or a seed entry) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) struct World {
    pub tenants: Vec<Tenant>,
    pub page_size: usize,
}

pub(crate) struct Tenant {
    pub id: String,
    pub domains: Vec<String>,
    pub clients: Vec<Client>,
    /// Never shrinks, so an index into it names a user for good (groups hold such indices).
    pub users: Vec<User>,
    /// Lower-cased object id and UPN → index in `users`: a 20,000-user seed must not look users
    /// up by scanning.
    pub(crate) user_index: HashMap<String, usize>,
    pub apps: Vec<App>,
    pub installs: Vec<Install>,
    /// Never shrinks either (see `groups`).
    pub groups: Vec<Group>,
    pub closures: Closures,
    /// The tenant's knobs (seed, `PATCH /_sim/tenants/{t}`).
    pub settings: TenantSettings,
    /// What directory reads still see under `directoryLagMs`.
    pub trail: DirectoryTrail,
    /// What catalog reads still see under `catalogLagMs`.
    pub catalog_trail: CatalogTrail,
    /// `GET /teamwork/teamsAppSettings` (seed, `PATCH /_sim/tenants/{t}/teamsAppSettings`).
    pub teams_app_settings: TeamsAppSettings,
    /// Installs, upgrades and uninstalls not yet turned into notifications (see `notify`).
    pub changes: Vec<InstallChange>,
}

pub(crate) struct Client {
    pub id: String,
    pub secret: Option<String>,
    pub certificate: Option<CertificateCredential>,
    pub federated: Vec<FederatedCredential>,
    pub roles: Vec<String>,
}

#[derive(Clone)]
pub(crate) struct App {
    pub id: String,
    pub external_id: Option<String>,
    pub display_name: String,
    pub distribution_method: DistributionMethod,
    pub definitions: Vec<Definition>,
}

#[derive(Clone)]
pub(crate) struct Definition {
    pub version: String,
    pub state: PublishingState,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub short_description: Option<String>,
    pub last_modified: Timestamp,
    /// `authorization.requiredPermissionSet.resourceSpecificPermissions`.
    pub required: Vec<RscPermission>,
}

#[derive(Clone)]
pub(crate) struct Install {
    pub user_id: String,
    pub app_id: String,
    pub version: String,
    pub consent: Option<Value>,
    pub installed_at: Timestamp,
    pub upgrade_count: u32,
    pub last_upgrade: Option<Timestamp>,
    /// Installed by the tenant admin's setup policy: it cannot be uninstalled.
    pub preinstalled: bool,
}

impl World {
    pub fn from_seed(seed: &Seed) -> Result<World, SeedError> {
        let mut world = World {
            tenants: Vec::new(),
            page_size: seed.page_size.unwrap_or(super::seed::DEFAULT_PAGE_SIZE),
        };
        if !(1..=999).contains(&world.page_size) {
            return Err(SeedError::Invalid("pageSize must be 1..999".into()));
        }
        for tenant in &seed.tenants {
            world
                .add_tenant(tenant)
                .map_err(|e| SeedError::Invalid(e.to_string()))?;
        }
        Ok(world)
    }

    pub fn add_tenant(&mut self, seed: &TenantSeed) -> Result<(), AdminError> {
        let names = std::iter::once(&seed.id).chain(&seed.domains);
        if let Some(name) = names.clone().find(|n| self.tenant(n).is_some()) {
            return Err(AdminError::Conflict(format!(
                "tenant {name} already exists"
            )));
        }
        if seed.id.trim().is_empty() {
            return Err(AdminError::Invalid("tenant id is empty".into()));
        }
        let settings = seed.settings();
        settings
            .validate()
            .map_err(|e| AdminError::Invalid(format!("tenant {}: {e}", seed.id)))?;
        let mut tenant = Tenant {
            id: seed.id.clone(),
            domains: seed.domains.clone(),
            clients: Vec::new(),
            users: Vec::new(),
            user_index: HashMap::new(),
            apps: Vec::new(),
            installs: Vec::new(),
            groups: Vec::new(),
            closures: Closures::default(),
            settings,
            trail: DirectoryTrail::default(),
            catalog_trail: CatalogTrail::default(),
            teams_app_settings: seed.teams_app_settings.clone(),
            changes: Vec::new(),
        };
        let context = |e: AdminError| match e {
            AdminError::NotFound(m) => AdminError::NotFound(format!("tenant {}: {m}", seed.id)),
            AdminError::Conflict(m) => AdminError::Conflict(format!("tenant {}: {m}", seed.id)),
            AdminError::Invalid(m) => AdminError::Invalid(format!("tenant {}: {m}", seed.id)),
        };
        for client in &seed.clients {
            tenant.add_client(client).map_err(context)?;
        }
        for user in &seed.users {
            tenant.add_user(user).map_err(context)?;
        }
        tenant.add_groups(&seed.groups).map_err(context)?;
        for app in &seed.apps {
            tenant.add_app(app).map_err(context)?;
        }
        for install in &seed.installations {
            tenant.add_installation(install).map_err(context)?;
        }
        self.tenants.push(tenant);
        Ok(())
    }

    /// By tenant id or one of its domains, case-insensitively.
    pub fn tenant(&self, key: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.answers_to(key))
    }

    pub fn tenant_mut(&mut self, key: &str) -> Option<&mut Tenant> {
        self.tenants.iter_mut().find(|t| t.answers_to(key))
    }
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Tenant {
    pub fn answers_to(&self, key: &str) -> bool {
        same(&self.id, key) || self.domains.iter().any(|d| same(d, key))
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| same(&c.id, id))
    }

    /// By object id or UPN, case-insensitively.
    pub fn user(&self, key: &str) -> Option<&User> {
        self.user_position(key).map(|i| &self.users[i])
    }

    /// The index in `users` of a user, by object id or UPN, case-insensitively.
    pub fn user_position(&self, key: &str) -> Option<usize> {
        self.user_index.get(&key.to_ascii_lowercase()).copied()
    }

    /// `isUserPersonalScopeResourceSpecificConsentEnabled` (default true).
    pub fn personal_scope_rsc_enabled(&self) -> bool {
        self.teams_app_settings
            .is_user_personal_scope_resource_specific_consent_enabled
            .unwrap_or(true)
    }

    pub fn app(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| same(&a.id, id))
    }

    /// Forgets every directory and catalog change still within its lag: reads show the true
    /// state (a new fault configuration or tenant setting starts so).
    pub fn forget_pending_changes(&mut self) {
        self.trail.clear();
        self.catalog_trail.clear();
    }

    /// By catalog id, else by manifest id (for seeds and the admin API).
    fn app_by_any(&self, key: &str) -> Option<&App> {
        self.app(key)
            .or_else(|| self.apps.iter().find(|a| a.answers_to(key)))
    }

    pub fn add_client(&mut self, seed: &ClientSeed) -> Result<(), AdminError> {
        if self.client(&seed.id).is_some() {
            return Err(AdminError::Conflict(format!("client {} exists", seed.id)));
        }
        let certificate = match &seed.certificate {
            Some(pem) => Some(
                CertificateCredential::from_pem(pem)
                    .map_err(|e| AdminError::Invalid(format!("client {}: {e}", seed.id)))?,
            ),
            None => None,
        };
        let federated = seed
            .federated_credentials
            .iter()
            .map(FederatedCredential::from_seed)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AdminError::Invalid(format!("client {}: {e}", seed.id)))?;
        self.clients.push(Client {
            id: seed.id.clone(),
            secret: seed.secret.clone(),
            certificate,
            federated,
            roles: seed.roles.clone().unwrap_or_else(|| {
                super::permissions::DEFAULT_ROLES
                    .iter()
                    .map(|r| r.to_string())
                    .collect()
            }),
        });
        Ok(())
    }

    pub fn patch_client(&mut self, id: &str, patch: &ClientPatch) -> Result<(), AdminError> {
        let client = self
            .clients
            .iter_mut()
            .find(|c| same(&c.id, id))
            .ok_or_else(|| AdminError::NotFound(format!("client {id} not found")))?;
        if let Some(secret) = &patch.secret {
            client.secret = Some(secret.clone());
        }
        if let Some(roles) = &patch.roles {
            client.roles = roles.clone();
        }
        Ok(())
    }

    pub fn add_app(&mut self, seed: &AppSeed) -> Result<(), AdminError> {
        if self.app(&seed.id).is_some() {
            return Err(AdminError::Conflict(format!("app {} exists", seed.id)));
        }
        self.apps.push(App {
            id: seed.id.clone(),
            external_id: seed.external_id.clone(),
            display_name: seed.display_name.clone(),
            distribution_method: seed.distribution_method,
            definitions: Vec::new(),
        });
        for def in &seed.definitions {
            self.add_definition(&seed.id, def)?;
        }
        Ok(())
    }

    /// Adds a definition, or changes the state of an existing version (a submitted version being
    /// approved). Returns true when the version is new.
    pub fn add_definition(&mut self, app: &str, seed: &DefinitionSeed) -> Result<bool, AdminError> {
        if seed.version.trim().is_empty() {
            return Err(AdminError::Invalid("definition version is empty".into()));
        }
        if seed
            .required_permissions
            .iter()
            .any(|p| p.permission_value.trim().is_empty())
        {
            return Err(AdminError::Invalid(
                "requiredPermissions names an empty permissionValue".into(),
            ));
        }
        let app = self
            .apps
            .iter_mut()
            .find(|a| same(&a.id, app))
            .ok_or_else(|| AdminError::NotFound(format!("app {app} not found")))?;
        let def = Definition {
            version: seed.version.clone(),
            state: seed.publishing_state,
            display_name: seed.display_name.clone(),
            description: seed.description.clone(),
            short_description: seed.short_description.clone(),
            last_modified: Timestamp::now(),
            required: seed.required_permissions.clone(),
        };
        match app
            .definitions
            .iter_mut()
            .find(|d| d.version == seed.version)
        {
            Some(existing) => {
                *existing = def;
                Ok(false)
            }
            None => {
                app.definitions.push(def);
                Ok(true)
            }
        }
    }

    /// Seeds an installation directly (no policy checks). Returns the installation id.
    pub fn add_installation(&mut self, seed: &InstallationSeed) -> Result<String, AdminError> {
        let user = self
            .user(&seed.user)
            .ok_or_else(|| AdminError::NotFound(format!("user {} not found", seed.user)))?;
        let app = self
            .app_by_any(&seed.app)
            .ok_or_else(|| AdminError::NotFound(format!("app {} not found", seed.app)))?;
        let version = match &seed.version {
            Some(v) => app
                .definitions
                .iter()
                .find(|d| d.version == *v)
                .map(|d| d.version.clone())
                .ok_or_else(|| {
                    AdminError::NotFound(format!("app {} has no version {v}", seed.app))
                })?,
            None => app
                .highest_published()
                .map(|d| d.version.clone())
                .ok_or_else(|| {
                    AdminError::Invalid(format!("app {} has no published version", seed.app))
                })?,
        };
        let (user_id, app_id) = (user.id.clone(), app.id.clone());
        if self.install_of(&user_id, &app_id).is_some() {
            return Err(AdminError::Conflict(format!(
                "{} already has {} installed",
                seed.user, seed.app
            )));
        }
        let mut install = Install::new(&user_id, &app_id, version, None);
        install.preinstalled = seed.preinstalled_by_policy;
        self.installs.push(install);
        Ok(ids::installation_id(&user_id, &app_id))
    }

    pub fn install_of(&self, user_id: &str, app_id: &str) -> Option<usize> {
        self.installs
            .iter()
            .position(|i| same(&i.user_id, user_id) && same(&i.app_id, app_id))
    }
}

impl App {
    /// True when `key` is this app's catalog id or manifest id (case-insensitively).
    pub fn answers_to(&self, key: &str) -> bool {
        same(&self.id, key) || self.external_id.as_deref().is_some_and(|e| same(e, key))
    }

    /// The catalog's version of this app: its highest *published* definition.
    pub fn highest_published(&self) -> Option<&Definition> {
        self.definitions
            .iter()
            .filter(|d| d.state == PublishingState::Published)
            .max_by(|a, b| version::compare(&a.version, &b.version))
    }

    pub fn definition(&self, version: &str) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.version == version)
    }
}

impl Install {
    pub fn new(user_id: &str, app_id: &str, version: String, consent: Option<Value>) -> Self {
        Self {
            user_id: user_id.to_string(),
            app_id: app_id.to_string(),
            version,
            consent,
            installed_at: Timestamp::now(),
            upgrade_count: 0,
            last_upgrade: None,
            preinstalled: false,
        }
    }

    pub fn id(&self) -> String {
        ids::installation_id(&self.user_id, &self.app_id)
    }
}
