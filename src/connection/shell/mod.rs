//! The I/O of the connection kinds: credentials from Kubernetes, the registry of Graph clients
//! per connection, and the connection controller.

pub mod controller;
pub mod credentials;
pub mod registry;
