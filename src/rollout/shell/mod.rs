//! The I/O shell of `TeamsAppRollout`: [`membership`] reads the audience from Graph and keeps
//! it per rollout, [`children`] reads and writes the installations a rollout owns, and
//! [`controller`] wires it to kube-runtime.

pub mod catalog;
pub mod children;
pub mod controller;
pub mod membership;
