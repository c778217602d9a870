//! `GraphConnection` and `ClusterGraphConnection`: which tenant and credential a resource's
//! Graph calls use, and the policy of who may use them for what.

pub mod core;
pub mod shell;
