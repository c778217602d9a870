//! What every reconcile shares, and how one can fail.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::Store;

use crate::api::TeamsAppInstallation;
use crate::graph::{GraphClient, GraphError};
use crate::kit::{HasPlumbing, Plumbing, ReconcileFailure};

use super::catalog::CatalogCache;
use super::installed::InstalledApps;
use super::rivals::RivalIndex;
use super::settings::ControllerSettings;
use crate::tenancy::Connections;

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub plumbing: Plumbing<TeamsAppInstallation>,
    /// The controller's own cache: every resource, for the one-owner rule.
    pub installations: Store<TeamsAppInstallation>,
    /// Which resources may want the same Graph installation (kept by the watch).
    pub rivals: Arc<RivalIndex>,
    /// Which Graph client serves each resource (its connection's), or why none does.
    pub connections: Arc<Connections>,
    pub settings: ControllerSettings,
    pub catalog: CatalogCache,
    pub installed: InstalledApps,
    /// With change notifications: the drift-check period of a resource whose connection and
    /// app are covered by a healthy subscription (`None`: not covered, the usual interval).
    pub coverage: Option<Coverage>,
    /// With change notifications: which resources a notification woke, and when.
    pub notices: Option<super::notice_clock::NoticeClock>,
}

/// Whether a healthy Graph subscription covers a connection's app (by the registry's name of the
/// connection and the catalog app id), and then the drift-check period: `--notification-resync`.
pub type Coverage = Arc<dyn Fn(&str, &str) -> Option<std::time::Duration> + Send + Sync>;

/// One reconcile's context with the Graph client of the resource's connection: everything of
/// [`Context`], and `graph`.
pub struct Connected<'a> {
    pub ctx: &'a Context,
    pub graph: GraphClient,
    /// The connection as the registry names it (`default`, `GraphConnection ns/name`, …).
    pub connection: String,
}

impl std::ops::Deref for Connected<'_> {
    type Target = Context;

    fn deref(&self) -> &Context {
        self.ctx
    }
}

impl HasPlumbing<TeamsAppInstallation> for Context {
    fn plumbing(&self) -> &Plumbing<TeamsAppInstallation> {
        &self.plumbing
    }
}

/// Why a reconcile failed; the controller retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A transient Graph failure; the resource's status already says so.
    #[error("{0}")]
    Graph(#[from] GraphError),
    #[error("the resource has no namespace")]
    NoNamespace,
    /// Deleting waits for the resource's connection to be Ready again.
    #[error("the connection is not Ready: {0}")]
    ConnectionNotReady(String),
}

impl ReconcileFailure for ReconcileError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ReconcileError::Graph(e) => e.retry_after(),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "kube",
            ReconcileError::Graph(_) => "graph",
            ReconcileError::NoNamespace => "invalid",
            ReconcileError::ConnectionNotReady(_) => "connection",
        }
    }
}
