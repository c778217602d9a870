//! What every reconcile shares, and how one can fail.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::Recorder;

use crate::graph::{GraphClient, GraphError};
use crate::telemetry::Metrics;

use super::backoff::FailureBackoff;
use super::catalog::CatalogCache;
use super::installed::InstalledApps;
use super::settings::ControllerSettings;

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub client: kube::Client,
    pub graph: GraphClient,
    pub recorder: Recorder,
    pub settings: ControllerSettings,
    pub backoff: FailureBackoff,
    pub catalog: CatalogCache,
    pub installed: InstalledApps,
    pub metrics: Arc<Metrics>,
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
}

impl ReconcileError {
    /// Graph's `Retry-After`, which overrides the controller's own backoff.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReconcileError::Graph(e) => e.retry_after(),
            _ => None,
        }
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "kube",
            ReconcileError::Graph(_) => "graph",
            ReconcileError::NoNamespace => "invalid",
        }
    }
}
