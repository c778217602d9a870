//! The pure core of the connection kinds: no Kubernetes and no network.

pub mod policy;

pub use policy::{Reach, Refusal, Request, Rule, admit};
