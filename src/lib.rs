//! teams-app-operator: keeps Microsoft Teams apps installed and up to date for users.
//!
//! Layers, from the domain outwards:
//! - [`version`]: lenient Teams app versions and their order.
//! - [`api`]: the custom resources `TeamsAppInstallation`, `TeamsAppRollout`, `GraphConnection`
//!   and `ClusterGraphConnection`.
//! - [`backoff`]: the one jittered exponential backoff schedule.
//! - [`graph`]: the Microsoft Graph client (auth, clouds, requests, errors, throttling budget).
//! - [`kit`]: the controller kit every kind stands on, generic over the kind: conditions,
//!   status writes, Events, finalizers, watch helpers, backoff, the clock, controller metrics.
//! - [`tenancy`]: which tenant and credential serve a resource (its `connectionRef`), and who
//!   may use which connection — the Graph client every kind asks for.
//! - The kinds, peers on one floor, each a pure `core` and an I/O `shell`:
//!   [`installation`] (`TeamsAppInstallation`: one user, one app), [`rollout`]
//!   (`TeamsAppRollout`: groups → installations, wave by wave) and [`connection`]
//!   (`GraphConnection`, `ClusterGraphConnection`: checked, reported, held while in use).
//! - [`notification`]: the receiving end of Graph's change notifications on app installations
//!   (the validation handshake, `clientState`, rich notifications' decryption), handing typed
//!   events to the operator through a bounded queue; [`subscription`]: the subscriptions
//!   behind them, one per (connection, catalog app), renewed, recreated and deleted.
//! - [`telemetry`]: metrics registry, health probes and logs; [`leader`]: leader election.
//! - [`cli`]: the command line (flags → settings); [`process`]: start-up, election, shutdown,
//!   and the one place the kinds are wired together.

pub mod api;
pub mod backoff;
pub mod cli;
pub mod connection;
pub mod graph;
pub mod installation;
pub mod kit;
pub mod leader;
pub mod notification;
pub mod process;
pub mod rollout;
pub mod subscription;
pub mod telemetry;
pub mod tenancy;
pub mod version;
