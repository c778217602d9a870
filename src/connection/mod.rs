//! `GraphConnection` and `ClusterGraphConnection`: which tenant and credential a resource's
//! Graph calls use, and the policy of who may use them for what.
//!
//! [`core`] decides without I/O (the policy, the permissions needed, one check's verdict);
//! [`shell`] loads credentials from Kubernetes, keeps a Graph client per connection, and runs
//! the controller that checks connections and holds their deletion while they are in use.

pub mod core;
pub mod shell;

use crate::api::{ClusterGraphConnection, GraphConnection, GraphConnectionStatus};
use crate::kit::conditions::conditioned;

conditioned!(GraphConnection, GraphConnectionStatus);
conditioned!(ClusterGraphConnection, shares GraphConnectionStatus);
