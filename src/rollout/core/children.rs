//! The installations a rollout owns, as its pure core sees them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{ManagementPolicy, PlannedAction};

/// Reasons of a Stalled installation that a tenant policy, not the rollout, decided: the user
/// is skipped, not a failure, so a wave completes with them and `maxFailures` is not spent.
pub const BLOCKED_REASONS: [&str; 3] = ["BlockedByPolicy", "ManagedByPolicy", "ConsentDisabled"];

/// An installation the rollout owns, as the pass sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub name: String,
    /// `spec.user`, lowercase (the rollout always writes the object id).
    pub user_id: String,
    /// The wave label it was created in.
    pub wave: Option<String>,
    /// The rollout revision it was last written for.
    pub revision: Option<String>,
    pub state: ChildState,
    pub deleting: bool,
    /// When its user was first found absent from the audience (see [`super::removals`]).
    pub absent_since: Option<Time>,
    /// Its `spec.managementPolicy` (written before the field existed: `Manage`, as it was).
    pub policy: ManagementPolicy,
    /// Its `status.plan` for its current generation: the action and, when `Blocked`, why.
    pub plan: Option<(PlannedAction, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildState {
    /// Ready=True for its generation.
    Ready,
    /// Ready=True only because it is in `Observe` (reason `Observed`): nothing was written, so
    /// it never counts as done in `Manage`.
    Observed,
    /// Stalled=True: the reason and message of its Ready condition.
    Stalled { reason: String, message: String },
    /// Anything else: not yet reconciled, installing, upgrading, retrying.
    Pending,
}

/// An installation to create or bring to the current revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildToApply {
    pub user_id: String,
    pub wave: String,
    /// `Observe` while the rollout observes or the wave has not started, else `Manage`.
    pub policy: ManagementPolicy,
}
