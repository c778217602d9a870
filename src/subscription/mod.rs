//! Graph change-notification subscriptions (issue 22): one per (connection, managed catalog
//! app), on the app's personal-scope installations
//! (<https://learn.microsoft.com/graph/teams-changenotifications-appinstallation>), renewed well
//! before Graph lets it expire, recreated when Graph removes it, deleted when no longer wanted.
//!
//! Graph grants such a subscription at most 4,320 minutes
//! (<https://learn.microsoft.com/graph/api/subscription-post-subscriptions>) and tells its
//! lifecycle URL when it must be reauthorized, has been removed, or missed notifications
//! (<https://learn.microsoft.com/graph/change-notifications-lifecycle-events>). Notifications
//! only ever speed the operator up: a slot whose subscription is not [`Health::Healthy`] is
//! one whose changes the operator must find by reading, as it did without them.
//!
//! - [`core`]: pure — wanted and held → [`Step`]s, [`Health`], the renewal and backoff rules.
//! - [`manager`]: the shell — [`SubscriptionManager`] makes the Graph calls and keeps the
//!   receiver's `clientState` table ([`crate::notification::SubscriptionSecrets`]) in step.
//! - [`persist`]: the live subscriptions kept in a Secret, for a restarted or new leader to go
//!   on with and for standby replicas to check notifications with.

pub mod core;
pub mod manager;
pub mod persist;

use std::time::Duration;

use jiff::Timestamp;

use crate::backoff::Backoff;
use crate::graph::{GraphClient, ResourceData};
use crate::notification::ClientState;
use crate::tenancy::ConnectionKey;

pub use self::core::{Health, Slot, Step};
pub use manager::{SlotKey, SubscriptionManager};

/// The lifetime asked for by default: 4,230 minutes, 90 under Graph's 4,320 so that clock skew
/// between the operator and Graph never makes Graph refuse the request.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(4230 * 60);

/// How the manager subscribes.
#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    /// The receiver's notification endpoint as Graph reaches it (HTTPS in production).
    pub notification_url: String,
    /// The receiver's lifecycle endpoint: Graph requires one for lifetimes over an hour.
    pub lifecycle_url: String,
    /// The lifetime asked for on every create and renewal (Graph may grant less).
    pub lifetime: Duration,
    /// Ask for rich notifications, encrypted for this certificate, which name the user.
    pub include_resource_data: Option<ResourceData>,
    /// The wait before retrying a failed create, renewal or delete.
    pub retry: Backoff,
}

impl SubscriptionSettings {
    pub fn new(notification_url: impl Into<String>, lifecycle_url: impl Into<String>) -> Self {
        Self {
            notification_url: notification_url.into(),
            lifecycle_url: lifecycle_url.into(),
            lifetime: DEFAULT_LIFETIME,
            include_resource_data: None,
            retry: Backoff {
                base: Duration::from_secs(10),
                max: Duration::from_secs(15 * 60),
            },
        }
    }
}

/// A slot that should have a subscription: a connection, the tenant its client signs in to,
/// the catalog app, and the client to subscribe with.
///
/// The connection is keyed by whatever the caller keys connections by: [`ConnectionKey`] by
/// default. The operator's own connection (its flags) has no `ConnectionKey`; a caller that
/// subscribes through it too can key by `Option<ConnectionKey>`, `None` being the operator's
/// own, as `spec.connectionRef` is optional.
#[derive(Debug, Clone)]
pub struct Wanted<K = ConnectionKey> {
    pub key: K,
    pub tenant_id: String,
    pub teams_app_id: String,
    pub client: GraphClient,
}

/// One slot as it stands, for metrics and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState<K = ConnectionKey> {
    pub key: K,
    pub teams_app_id: String,
    /// Graph's id, while it holds one.
    pub id: Option<String>,
    pub expiration: Option<Timestamp>,
    pub last_notification: Option<Timestamp>,
    pub health: Health,
}

/// A live subscription as a successor needs it: whose it is, Graph's id, its secret, and when
/// it was granted and expires (the renewal is due at a third of that lifetime left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept<K = ConnectionKey> {
    pub key: K,
    pub teams_app_id: String,
    pub tenant_id: String,
    pub id: String,
    pub client_state: ClientState,
    pub granted: Timestamp,
    pub expiration: Timestamp,
}
