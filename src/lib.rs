//! teams-app-operator: keeps Microsoft Teams apps installed and up to date for users.
//!
//! Layers, from the domain outwards:
//! - [`version`]: lenient Teams app versions and their order.
//! - [`api`]: the custom resources `TeamsAppInstallation` and `TeamsAppRollout`.
//! - [`backoff`]: the one jittered exponential backoff schedule.
//! - [`graph`]: the Microsoft Graph client (auth, clouds, requests, errors, throttling budget).
//! - [`reconcile`]: the pure decision — observed Graph state + spec → action and conditions.
//! - [`controller`]: kube-runtime wiring, status writes, Events, finalizer.
//! - [`rollout`]: `TeamsAppRollout`, which turns groups into installations, wave by wave.
//! - [`telemetry`]: metrics, health probes and logs; [`leader`]: leader election on a Lease.
//! - [`cli`]: the command line (flags → settings); [`process`]: start-up, election, shutdown.

pub mod api;
pub mod backoff;
pub mod cli;
pub mod controller;
pub mod graph;
pub mod leader;
pub mod process;
pub mod reconcile;
pub mod rollout;
pub mod telemetry;
pub mod version;
