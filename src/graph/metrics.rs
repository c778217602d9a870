//! Observation hooks for Graph traffic.
//!
//! The client reports what it does through [`GraphMetrics`]; the telemetry layer implements it
//! with Prometheus counters and histograms. Every label value offered here is low-cardinality:
//! an operation name, a call class, an HTTP status — never a user, an app id or an error text.

use std::time::Duration;

use super::budget::class::CallClass;

/// Which Graph operation a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    ListInstallations,
    GetInstallation,
    Install,
    Upgrade,
    Uninstall,
    CatalogApp,
    /// A page of a group's transitive user members.
    GroupMembers,
    /// One user from the directory.
    DirectoryUser,
    /// The tenant's Teams app settings (read after a refused consent).
    AppSettings,
    /// A change-notification subscription created (`POST /subscriptions`).
    CreateSubscription,
    /// A subscription's expiry moved on (`PATCH /subscriptions/{id}`).
    RenewSubscription,
    /// A subscription deleted (`DELETE /subscriptions/{id}`).
    DeleteSubscription,
    /// The `$batch` envelope.
    Batch,
    /// One item inside a `$batch`.
    BatchItem,
}

impl Operation {
    pub const ALL: [Operation; 14] = [
        Self::ListInstallations,
        Self::GetInstallation,
        Self::Install,
        Self::Upgrade,
        Self::Uninstall,
        Self::CatalogApp,
        Self::GroupMembers,
        Self::DirectoryUser,
        Self::AppSettings,
        Self::CreateSubscription,
        Self::RenewSubscription,
        Self::DeleteSubscription,
        Self::Batch,
        Self::BatchItem,
    ];

    /// A stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ListInstallations => "list_installations",
            Self::GetInstallation => "get_installation",
            Self::Install => "install",
            Self::Upgrade => "upgrade",
            Self::Uninstall => "uninstall",
            Self::CatalogApp => "catalog_app",
            Self::GroupMembers => "group_members",
            Self::AppSettings => "app_settings",
            Self::DirectoryUser => "directory_user",
            Self::CreateSubscription => "create_subscription",
            Self::RenewSubscription => "renew_subscription",
            Self::DeleteSubscription => "delete_subscription",
            Self::Batch => "batch",
            Self::BatchItem => "batch_item",
        }
    }
}

/// Receives one call per event; implementations must be cheap and never block.
///
/// Every method has a no-op default, so an implementation picks what it records.
pub trait GraphMetrics: Send + Sync + 'static {
    /// A request was answered (`status`) or failed without an answer (`None`: timeout,
    /// transport). Retries report each attempt. `$batch` items report their own status with the
    /// envelope's latency.
    fn request(&self, operation: Operation, status: Option<u16>, latency: Duration) {
        let _ = (operation, status, latency);
    }

    /// Graph answered 429; `retry_after` is what it asked for.
    fn throttled(&self, operation: Operation, retry_after: Option<Duration>) {
        let _ = (operation, retry_after);
    }

    /// A request waited this long in the tenant budget (token bucket and 429 block) before being
    /// sent. Reported only when it waited at all.
    fn budget_wait(&self, class: CallClass, waited: Duration) {
        let _ = (class, waited);
    }

    /// A token request finished.
    fn token_refresh(&self, success: bool, latency: Duration) {
        let _ = (success, latency);
    }
}

/// Records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetrics;

impl GraphMetrics for NoopMetrics {}
