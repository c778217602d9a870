//! Which tenant and credential serve a resource, and who may use which: below the kinds, which
//! all ask it for their Graph client.
//!
//! - [`policy`] (pure): whether a connection serves a namespace, an app, a set of groups.
//! - [`credentials`]: a connection's credential, loaded from Kubernetes at every token request.
//! - [`registry`]: a resource's `connectionRef` (or none) → a Graph client, or why not; one
//!   client per connection and one request budget per (tenant, app registration).

pub mod credentials;
pub mod policy;
pub mod registry;

pub use registry::{
    Asking, Caches, ConnectionKey, Connections, DefaultConnection, MetricsFor, Refused, Resolved,
};
