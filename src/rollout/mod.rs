//! `TeamsAppRollout`: an app for everyone in some groups, in waves that halt on failure.
//!
//! The rules need no Kubernetes and no network: [`audience`] (who is eligible), [`waves`]
//! (which wave a user is in) and [`progress`] (one pass: what to create, remove and report).
//! The I/O around them: [`membership`] reads the audience from Graph and keeps it per rollout,
//! [`children`] reads and writes the `TeamsAppInstallation`s a rollout owns, and [`controller`]
//! wires it to kube-runtime.

pub mod audience;
pub mod children;
pub mod controller;
pub mod membership;
pub mod progress;
pub mod waves;

pub use controller::{
    ChildEventSender, ChildEvents, ROLLOUT_FINALIZER, Shared, available, child_events, owner_of,
    run,
};
