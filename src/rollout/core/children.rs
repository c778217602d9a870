//! The installations a rollout owns, as its pure core sees them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildState {
    /// Ready=True for its generation.
    Ready,
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
}
