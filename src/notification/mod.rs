//! Receiving Microsoft Graph change notifications for a catalog app's personal-scope
//! installations (issue 22): the operator hears within seconds that a user installed, upgraded
//! or removed an app, instead of at the next drift check.
//!
//! The operator subscribes to
//! `/appCatalogs/teamsApps/{teams-app-id}/installations?$filter=(scopeInfo/scope eq 'personal')`
//! (<https://learn.microsoft.com/graph/teams-changenotifications-appinstallation>); Graph then
//! POSTs to the subscription's `notificationUrl` and `lifecycleNotificationUrl`. This module is
//! the receiving end, and nothing else: creating, renewing and deleting subscriptions, and what
//! the operator does with an event, are its callers' business.
//!
//! - `payload`: the wire types; [`resource`]: the `resource` path → app and installation.
//! - [`secrets`]: each subscription's `clientState`, the proof that Graph sent a notification.
//! - [`decrypt`]: rich notifications' resource data, which names the user; [`certificate`]: the
//!   certificate Graph encrypts it for (`--notification-certificate`).
//! - `verify`: one item → a [`Notification`] or a [`Refusal`]; [`counts`]: what was done.
//! - [`receiver`]: the HTTP endpoint (handshake, limits, 202 / 503), and [`serve`] here.
//! - [`handoff`]: a standby replica forwards what it accepted to the leader's receiver.
//!
//! Graph requires an HTTPS `notificationUrl`; this serves plain HTTP, for a TLS-terminating
//! ingress (or a test) in front of it.

pub mod certificate;
pub mod counts;
pub mod decrypt;
pub mod handoff;
mod payload;
pub mod receiver;
pub mod resource;
pub mod secrets;
mod verify;

#[cfg(test)]
mod http_tests;

use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use certificate::{CertificateError, EncryptionCertificate};
pub use counts::Refusal;
pub use counts::{Counts, Tally};
pub use decrypt::{DecryptError, DecryptionKeys};
pub use handoff::{FORWARDED_HEADER, Handoff, Leading};
pub use receiver::{LIFECYCLE_PATH, NOTIFICATION_PATH, ReceiverSettings, Receiving, router};
pub use resource::{InstallationRef, parse_resource};
pub use secrets::{ClientState, SubscriptionSecrets, generate_client_state};

/// What happened to the installation (`changeType`): an install, an upgrade, an uninstall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Created,
    Updated,
    Deleted,
}

impl ChangeType {
    fn parse(text: &str) -> Option<Self> {
        [Self::Created, Self::Updated, Self::Deleted]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }
}

/// One accepted change notification: an installation of `teams_app_id` changed. Graph says
/// which installation but, without resource data, not whose: installation ids are opaque, so
/// only `user_id` (from a rich notification's decrypted `scopeInfo`) lets the operator re-read
/// one user rather than every user of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationEvent {
    pub subscription_id: String,
    pub tenant_id: String,
    pub change: ChangeType,
    /// As Graph wrote it: `appCatalogs/teamsApps('{app}')/installations('{id}')`.
    pub resource: String,
    pub installation_id: String,
    /// The catalog app id, from `resource`.
    pub teams_app_id: String,
    /// The user whose installation it is, when the notification carried resource data this
    /// process could decrypt.
    pub user_id: Option<String>,
}

/// What a lifecycle event asks of the subscriber
/// (<https://learn.microsoft.com/graph/change-notifications-lifecycle-events>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleKind {
    /// Renew (reauthorize) the subscription, or it ends.
    ReauthorizationRequired,
    /// Graph removed the subscription: create a new one, and re-read what it would have said.
    SubscriptionRemoved,
    /// Some notifications were not delivered: re-read everything the subscription covers.
    Missed,
}

impl LifecycleKind {
    fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "reauthorizationRequired" => Some(Self::ReauthorizationRequired),
            "subscriptionRemoved" => Some(Self::SubscriptionRemoved),
            "missed" => Some(Self::Missed),
            _ => None,
        }
    }
}

/// One accepted lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    pub subscription_id: String,
    pub tenant_id: String,
    pub kind: LifecycleKind,
}

/// What the receiver hands the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    Change(NotificationEvent),
    Lifecycle(LifecycleEvent),
}

impl Notification {
    pub fn subscription_id(&self) -> &str {
        match self {
            Notification::Change(e) => &e.subscription_id,
            Notification::Lifecycle(e) => &e.subscription_id,
        }
    }
}

/// Binds `addr` now (a taken port is a start-up error) and serves the receiver in a background
/// task for the life of the process. Returns the bound address and the receiving end.
pub async fn serve(
    addr: SocketAddr,
    settings: ReceiverSettings,
    secrets: SubscriptionSecrets,
    keys: DecryptionKeys,
) -> std::io::Result<(SocketAddr, Receiving)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let (app, receiving) = router(settings, secrets, keys);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "the notification receiver stopped");
        }
    });
    Ok((bound, receiving))
}
