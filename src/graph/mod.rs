//! The Microsoft Graph client: clouds, credentials and tokens, the per-tenant request budget,
//! typed operations on users' Teams app installations and the tenant app catalog, and `$batch`.
//!
//! Everything here follows `graph-contract.md`: what Graph answers, which answers mean success
//! (409 on install, 404 on uninstall), which are worth retrying and how long to wait.
//!
//! - [`cloud`]: cloud presets and the endpoints derived from them.
//! - [`credentials`] and [`token`]: the client-credentials grant, cached tokens (one token
//!   request at a time, its failure shared by every caller).
//! - [`budget`]: token buckets per call class and the tenant-wide 429 block.
//! - [`client`]: the one request path (budget → token → send → classify → a quick retry or the
//!   error: the retry rule is on `GraphClient::send`).
//! - [`operations`] and [`batch`]: the calls the controller makes; [`subscriptions`]: the
//!   change-notification subscriptions on a catalog app's installations.
//! - [`error`]: [`GraphError`] and its [`ErrorClass`], and [`GraphConfigError`] (start-up
//!   configuration problems); [`headers`]: request ids, `Retry-After`.
//! - [`metrics`]: the [`GraphMetrics`] observer.
//! - [`settings`]: [`GraphSettings`], the plain configuration the client is built from (the
//!   command-line flags that fill it live in [`crate::cli`]).

pub mod batch;
pub mod budget;
pub mod client;
pub mod cloud;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod headers;
pub mod licence;
pub mod metrics;
pub mod models;
pub mod odata;
pub mod operations;
pub mod settings;
pub mod subscriptions;
pub mod token;

pub use crate::backoff::Backoff;
pub use batch::{BatchMethod, BatchRequest, BatchResponse, MAX_BATCH_SIZE};
pub use budget::{BudgetConfig, CallClass, TenantBudget};
pub use client::GraphClient;
pub use cloud::{Cloud, Endpoints};
pub use credentials::{ClientCertificate, Credential, CredentialLoader, CredentialSource, Secret};
pub use directory::DirectoryUser;
pub use error::{ApiError, AuthError, ErrorClass, GraphConfigError, GraphError};
pub use headers::parse_retry_after;
pub use licence::{Licence, TEAMS_SERVICE_PLAN_IDS, teams_licence};
pub use metrics::{GraphMetrics, NoopMetrics, Operation};
pub use models::{
    AppDefinition, AppRef, CatalogApp, ConsentedPermissionSet, InstallOutcome, Installation,
    PermissionType, PublishingState, ResourceSpecificPermission, UninstallOutcome,
};
pub use settings::GraphSettings;
pub use subscriptions::{
    GraphSubscription, ResourceData, SubscriptionRequest, installations_resource,
};
pub use token::{TokenFacts, TokenSettings};
