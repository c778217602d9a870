//! `graph-sim`: a Microsoft Graph simulator, the oracle for the operator's tests, benchmarks and
//! demo (real Graph cannot be reached from a test run, and a real tenant is what a user trying the
//! operator does not have yet).
//!
//! It follows `graph-contract.md`: the Entra token endpoint (client secret, certificate and
//! federated assertions), a user's installed Teams apps (list with `$filter`/`$expand`/paging,
//! get, install, upgrade, uninstall; resource-specific consent), the app catalog, the tenant's
//! Teams app settings, the directory reads that expand a group
//! rollout (a group's transitive user members with `ConsistencyLevel: eventual`, `$select`,
//! `$count` and paging; one user), change-notification subscriptions on an app's installations
//! (with the notifications they deliver) and `$batch`, under both `/v1.0` and `/beta`, with Graph's
//! ids, error bodies and `request-id` headers. `/_sim` is an unauthenticated admin API for
//! tests: publish a version, change users (soft deletion too), group members and a tenant's
//! knobs, inject latency, throttling (Graph's per-class budgets among it), failures and the lags
//! and refusals of the directory, the catalog and Teams, expire tokens, read the request log,
//! reset.
//!
//! Layout: [`seed`] (the start state, tenant settings among it), `state` (directory + catalog,
//! built from the seed and grown by the admin API), `users` + `plans` (users, their service plans
//! and Teams licence, soft deletion), `groups` (memberships and their transitive closure),
//! `installs` (install / upgrade / uninstall and Teams' checks), `rsc` (resource-specific
//! consent: what an install must consent to, the tenant's switch), [`ids`], `version` (how
//! definitions are ordered), `path` (how a resource path is read), `odata` + `skiptoken` (query
//! options and paging), `auth` + `credentials` + `keys` (token endpoint, client assertions),
//! `permissions` (token roles), `graph` (the request pipeline and routes), `teamwork` (the
//! installedApps routes: licence, roles, read lag), `directory` (the group-member and user
//! routes), `catalog` (the catalog routes), `handlers` + `render` (the resources and their
//! JSON), `batch`, `fault_config` + `faults` + `budgets` (injected trouble, Graph's throttling),
//! `subscriptions` + `subscription_rules` + `handshake` (change-notification subscriptions,
//! what a request must say, the validation handshake), `notify` + `rich` (delivering change and lifecycle notifications, encrypted
//! resource data), `subscription_admin` (their admin side),
//! `knobs` (what is in force for a tenant now), `lag` + `dirlag` + `catalog_lag`
//! (read-after-write lag of installations, the directory and the catalog), `journal` (request
//! log), `errors`, `options`, `admin` + `admin_ops`; `main.rs` is the binary.

mod admin;
mod admin_ops;
mod auth;
mod batch;
mod budgets;
mod catalog;
mod catalog_lag;
mod credentials;
mod directory;
mod dirlag;
mod entry;
mod errors;
mod fault_config;
mod faults;
mod graph;
mod groups;
mod handlers;
mod handshake;
pub mod ids;
mod installs;
mod journal;
mod keys;
mod knobs;
mod lag;
mod listing;
mod loading;
mod notify;
mod odata;
mod options;
mod path;
mod permissions;
mod plans;
mod render;
mod rich;
mod rsc;
pub mod seed;
mod skiptoken;
mod state;
mod subscription_admin;
mod subscription_rules;
mod subscriptions;
mod teamwork;
mod users;
mod version;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use tokio::sync::oneshot;

use admin_ops::MemberChange;
use tokio::task::JoinHandle;

pub use budgets::Budgets;
pub use faults::{ConsentRefusal, FaultConfig, ScriptedFailure, UpgradeAtLatest};
pub use journal::RequestRecord;
pub use notify::{LifecycleEvent, NotificationRecord};
pub use options::{GRAPH_RESOURCE, SimOptions};
pub use seed::{
    AppSeed, ClientPatch, ClientSeed, DefinitionSeed, DistributionMethod, FederatedCredentialSeed,
    GroupSeed, InstallationSeed, PlanSeed, PublishingState, RscPermission, RscPermissionType, Seed,
    SeedError, TeamsAppSettings, TenantSeed, TenantSettings, UserPatch, UserSeed, UserType,
};
pub use state::AdminError;

/// `examples/tenant.yaml`, compiled in: the demo tenant `graph-sim` serves without `--seed`.
pub const DEMO_SEED_YAML: &str = include_str!("../../examples/tenant.yaml");

/// Mutable simulator state, behind one lock that is never held across an `.await`.
pub(crate) struct Inner {
    seed: Seed,
    world: state::World,
    tokens: auth::TokenStore,
    faults: faults::Faults,
    lag: teamwork::InstallHistory,
    journal: journal::Journal,
    subscriptions: subscriptions::Subscriptions,
    notifier: notify::Notifier,
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    options: SimOptions,
    /// `http://127.0.0.1:PORT`, used when a request carries no `Host`.
    base_url: String,
    /// Calls subscribers: validation handshakes and notifications.
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the whole simulator down with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running simulator: an HTTP server on a local port plus in-process access to its admin
/// operations. Dropping it stops the server.
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    notifications: JoinHandle<()>,
}

impl SimServer {
    /// Validates the seed and options, binds `listen` (port 0 picks a free port) and starts serving.
    pub async fn start(
        listen: SocketAddr,
        seed: Seed,
        mut options: SimOptions,
    ) -> std::io::Result<SimServer> {
        options.graph_resource = options::graph_resource(&options.graph_resource)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let world = state::World::from_seed(&seed)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // The seed's faults, the options' (the command line's) over them.
        options.faults = seed
            .faults
            .overlaid(&options.faults)
            .and_then(|faults| faults.validate().map(|()| faults))
            .map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("faults: {e}"))
            })?;
        let mut faults = faults::Faults::default();
        faults.set(options.faults.clone());
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (queue, deliveries) = tokio::sync::mpsc::channel(notify::QUEUE_CAPACITY);
        let notifier = notify::Notifier::new(queue, &options.faults);
        // Subscribers are reached directly: a proxy from the environment is not theirs.
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                seed,
                world,
                tokens: auth::TokenStore::default(),
                faults,
                lag: teamwork::InstallHistory::default(),
                journal: journal::Journal::default(),
                subscriptions: subscriptions::Subscriptions::default(),
                notifier,
            }),
            options,
            base_url: base_url(addr),
            http,
        });
        let notifications = tokio::spawn(notify::deliver(Arc::downgrade(&shared), deliveries));
        let app = router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::error!(%err, "graph-sim server failed");
            }
        });
        tracing::debug!(%addr, "graph-sim listening");
        Ok(SimServer {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
            notifications,
        })
    }

    /// `http://127.0.0.1:PORT` (a wildcard listen address is reported as loopback).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (for up to 5 s), then stops.
    pub async fn shutdown(mut self) {
        self.notifications.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    /// The request log, as `GET /_sim/requests` returns it.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Replaces the fault configuration, as `PUT /_sim/faults`.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), AdminError> {
        self.shared.set_faults(faults)
    }

    /// Publishes (or changes the state of) a version of a catalog app, as
    /// `POST /_sim/tenants/{tenant}/apps/{app}/definitions`.
    pub fn add_definition(
        &self,
        tenant: &str,
        app: &str,
        definition: DefinitionSeed,
    ) -> Result<(), AdminError> {
        self.shared
            .add_definition(tenant, app, &definition)
            .map(|_| ())
    }

    /// Adds a user, as `POST /_sim/tenants/{tenant}/users`.
    pub fn add_user(&self, tenant: &str, user: UserSeed) -> Result<(), AdminError> {
        self.shared.add_user(tenant, &user).map(|_| ())
    }

    /// Adds a catalog app, as `POST /_sim/tenants/{tenant}/apps`.
    pub fn add_app(&self, tenant: &str, app: AppSeed) -> Result<(), AdminError> {
        self.shared.add_app(tenant, &app).map(|_| ())
    }

    /// Seeds an installation, as `POST /_sim/tenants/{tenant}/installations`.
    pub fn add_installation(
        &self,
        tenant: &str,
        installation: InstallationSeed,
    ) -> Result<(), AdminError> {
        self.shared
            .add_installation(tenant, &installation)
            .map(|_| ())
    }

    /// Changes a user's (object id or UPN) `accountEnabled`, `teamsEnabled`, `plans`, or
    /// `userType`, as `PATCH /_sim/tenants/{tenant}/users/{user}`. Lasts until
    /// [`SimServer::reset`].
    pub fn patch_user(&self, tenant: &str, user: &str, patch: UserPatch) -> Result<(), AdminError> {
        self.shared.patch_user(tenant, user, &patch).map(|_| ())
    }

    /// Changes a tenant's knobs (absent ones stay as they are), as
    /// `PATCH /_sim/tenants/{tenant}`. Lasts until [`SimServer::reset`].
    pub fn patch_tenant(&self, tenant: &str, change: TenantSettings) -> Result<(), AdminError> {
        self.shared.patch_tenant(tenant, &change).map(|_| ())
    }

    /// Changes a tenant's Teams app settings (absent fields stay as they are), as
    /// `PATCH /_sim/tenants/{tenant}/teamsAppSettings`. Lasts until [`SimServer::reset`].
    pub fn patch_teams_app_settings(
        &self,
        tenant: &str,
        change: TeamsAppSettings,
    ) -> Result<(), AdminError> {
        self.shared
            .patch_teams_app_settings(tenant, &change)
            .map(|_| ())
    }

    /// Soft-deletes a user (object id or UPN), as `DELETE /_sim/tenants/{tenant}/users/{user}`.
    pub fn delete_user(&self, tenant: &str, user: &str) -> Result<(), AdminError> {
        self.shared.delete_user(tenant, user)
    }

    /// Restores a soft-deleted user with its memberships, as
    /// `POST /_sim/tenants/{tenant}/users/{user}/restore`.
    pub fn restore_user(&self, tenant: &str, user: &str) -> Result<(), AdminError> {
        self.shared.restore_user(tenant, user).map(|_| ())
    }

    /// Makes `member` (a user id, UPN or group id) a direct member of `group`, as
    /// `POST /_sim/tenants/{tenant}/groups/{group}/members`. Already a member: `Conflict`.
    pub fn add_group_member(
        &self,
        tenant: &str,
        group: &str,
        member: &str,
    ) -> Result<(), AdminError> {
        (self.shared).change_group_member(tenant, group, member, MemberChange::Add)
    }

    /// Removes a direct member of `group`, as
    /// `DELETE /_sim/tenants/{tenant}/groups/{group}/members/{member}`. Not a member: `NotFound`.
    pub fn remove_group_member(
        &self,
        tenant: &str,
        group: &str,
        member: &str,
    ) -> Result<(), AdminError> {
        (self.shared).change_group_member(tenant, group, member, MemberChange::Remove)
    }

    /// Makes every issued token expired, as `POST /_sim/tokens/expire`.
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    /// The notification delivery log, as `GET /_sim/notifications` returns it.
    pub fn notifications(&self) -> Vec<NotificationRecord> {
        self.shared.notifications()
    }

    /// Empties the notification log, as `DELETE /_sim/notifications`.
    pub fn clear_notifications(&self) {
        self.shared.clear_notifications();
    }

    /// Uninstalls `app` (catalog or manifest id) for `user` out of band ("a user uninstalls"),
    /// as `DELETE /_sim/tenants/{tenant}/users/{user}/installations/{app}`.
    pub fn uninstall_for_user(
        &self,
        tenant: &str,
        user: &str,
        app: &str,
    ) -> Result<(), AdminError> {
        self.shared.uninstall_for_user(tenant, user, app)
    }

    /// Moves `user`'s installation of `app` to the highest published version out of band
    /// ("Teams updates it"), as `POST /_sim/tenants/{tenant}/users/{user}/installations/{app}/upgrade`.
    pub fn upgrade_for_user(&self, tenant: &str, user: &str, app: &str) -> Result<(), AdminError> {
        self.shared.upgrade_for_user(tenant, user, app).map(|_| ())
    }

    /// Sends a lifecycle event to subscription `id`'s lifecycle URL, as
    /// `POST /_sim/subscriptions/{id}/lifecycle`; `subscriptionRemoved` deletes it too.
    pub fn send_lifecycle(&self, id: &str, event: LifecycleEvent) -> Result<(), AdminError> {
        self.shared.send_lifecycle(id, event)
    }

    /// Back to the seed, as `POST /_sim/reset`.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// The `GET /_sim/state` dump.
    pub fn state(&self) -> serde_json::Value {
        self.shared.state()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.notifications.abort();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token_endpoint))
        .nest("/_sim", admin::router())
        .fallback(entry::entry)
        .layer(middleware::from_fn(correlate))
        .with_state(shared)
}

/// Gives every request its `request-id` / `client-request-id` pair and every response both
/// headers, whatever answered it.
async fn correlate(mut request: Request, next: Next) -> Response {
    let ids = errors::RequestIds::from_headers(request.headers());
    request.extensions_mut().insert(ids.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("request-id", &ids.request_id),
        ("client-request-id", &ids.client_request_id),
    ] {
        if !headers.contains_key(name)
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    }
    response
}
