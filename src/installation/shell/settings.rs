//! How the controller behaves, built once from the command line and passed down.

use std::time::Duration;

/// Controller tuning; see `teams-app-operator run --help` for each flag.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// Watch only this namespace; `None` watches all.
    pub namespace: Option<String>,
    /// Drift re-check period for resources without `spec.interval`.
    pub default_interval: Duration,
    /// Floor for any `spec.interval`, so a typo like `1s` cannot burn the Graph budget.
    pub min_interval: Duration,
    /// Floor for a rollout's `spec.membershipInterval`: each audience read is a page of Graph
    /// calls per 999 members, and a status write.
    pub min_membership_interval: Duration,
    /// Resources reconciled at the same time.
    pub concurrency: u16,
    /// How long after an install or upgrade call the operator only re-reads (Graph's reads lag
    /// its writes) before it asks again.
    pub write_verify_window: Duration,
    /// Re-check period while an install or upgrade is being verified.
    pub verify_requeue: Duration,
    /// How long a user the directory knows but Teams does not is waited for (Reconciling,
    /// `UserNotProvisioned`) before the resource is Stalled.
    pub teams_provisioning_timeout: Duration,
    /// How long a catalog lookup is reused by other reconciles of the same app; zero = never.
    pub catalog_cache_ttl: Duration,
    /// How long one list of a user's installed apps serves the user's other resources; zero =
    /// each resource reads its own app.
    pub user_snapshot_ttl: Duration,
    /// How long after a resource's deletion a failing uninstall is retried before the finalizer
    /// is released anyway (with an `UninstallAbandoned` Warning Event naming what was left).
    pub uninstall_timeout: Duration,
    /// `managementPolicy` for resources whose spec sets none.
    pub default_management_policy: crate::api::ManagementPolicy,
    /// Name of this replica in Events (`reportingInstance`), usually the pod name.
    pub instance: Option<String>,
}

impl ControllerSettings {
    /// The timings the reconcile's pure core works with.
    pub fn timing(&self) -> crate::installation::core::Timing {
        crate::installation::core::Timing {
            default_policy: self.default_management_policy,
            default_interval: self.default_interval,
            min_interval: self.min_interval,
            verify_interval: self.verify_requeue,
            write_window: self.write_verify_window,
            provisioning_timeout: self.teams_provisioning_timeout,
        }
    }
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            namespace: None,
            default_interval: Duration::from_secs(30 * 60),
            min_interval: Duration::from_secs(60),
            min_membership_interval: Duration::from_secs(60),
            concurrency: 16,
            write_verify_window: Duration::from_secs(10 * 60),
            verify_requeue: Duration::from_secs(10),
            teams_provisioning_timeout: Duration::from_secs(24 * 3600),
            catalog_cache_ttl: Duration::from_secs(30),
            user_snapshot_ttl: Duration::from_secs(30),
            uninstall_timeout: Duration::from_secs(10 * 60),
            default_management_policy: crate::api::ManagementPolicy::Manage,
            instance: None,
        }
    }
}
