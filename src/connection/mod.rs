//! `GraphConnection` and `ClusterGraphConnection`: which tenant and credential a resource's
//! Graph calls use, and the policy of who may use them for what.
//!
//! [`core`] decides without I/O (the permissions needed, one check's verdict); [`shell`] runs
//! the controller that checks connections and holds their deletion while they are in use. The
//! policy, credentials and clients live below every kind, in [`crate::tenancy`].

pub mod core;
pub mod shell;

use crate::api::{ClusterGraphConnection, GraphConnection, GraphConnectionStatus};
use crate::kit::conditions::conditioned;

pub use shell::controller::{
    CLUSTER_CONTROLLER, CONTROLLER, ConnectionObject, Usage, UsageOf, Wiring, run,
};

conditioned!(GraphConnection, GraphConnectionStatus);
conditioned!(ClusterGraphConnection, shares GraphConnectionStatus);
