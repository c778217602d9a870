//! The receiving end of Graph's change notifications, which every replica runs, leading or not:
//! Graph posts to one public URL and the Service behind it may pick any replica.
//!
//! A standby checks what it receives against the subscriptions the leader keeps in the
//! notification Secret and forwards it to the leader's receiver, whose URL the leader keeps
//! there too ([`crate::notification::handoff`]). The replica that leads queues it for its own
//! controllers ([`super::notifications`]).

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::{Mutex, mpsc};
use tracing::info;

use crate::api::ConnectionSubscription;
use crate::notification::{
    DecryptionKeys, EncryptionCertificate, Handoff, LIFECYCLE_PATH, NOTIFICATION_PATH,
    Notification, ReceiverSettings, SubscriptionSecrets, Tally,
};
use crate::subscription::persist::{Published, SecretStore};
use crate::subscription::{Health, SubscriptionSettings, SubscriptionState};
use crate::telemetry::notifications::{Figures, NotificationSeries};

/// `--notification-*`.
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// Where the receiver listens (plain HTTP, behind a TLS-terminating Ingress).
    pub addr: SocketAddr,
    /// The public base URL Graph posts to.
    pub url: url::Url,
    /// The drift-check period of resources a healthy subscription covers.
    pub resync: Duration,
    /// Where the other replicas reach this one's receiver, if they can.
    pub peer_url: Option<url::Url>,
    /// The Secret the subscriptions are kept in, and its namespace.
    pub secret: String,
    pub secret_namespace: String,
    /// The certificate rich notifications are encrypted for; none: notifications without
    /// resource data.
    pub certificate: Option<EncryptionCertificate>,
}

impl NotificationSettings {
    pub(super) fn subscription_settings(&self) -> SubscriptionSettings {
        let join = |path: &str| format!("{}{path}", self.url.as_str().trim_end_matches('/'));
        SubscriptionSettings {
            include_resource_data: self.certificate.as_ref().map(|c| c.resource_data()),
            ..SubscriptionSettings::new(join(NOTIFICATION_PATH), join(LIFECYCLE_PATH))
        }
    }

    /// `--notification-peer-url`, else `http://<--notification-addr>` when that is one address.
    pub(super) fn peer_url(&self) -> Option<url::Url> {
        self.peer_url.clone().or_else(|| {
            (!self.addr.ip().is_unspecified())
                .then(|| url::Url::parse(&format!("http://{}", self.addr)).ok())
                .flatten()
        })
    }
}

/// The receiver as the process holds it, for whichever term of leadership comes.
#[derive(Clone)]
pub struct Receiver {
    pub(super) settings: NotificationSettings,
    /// Each subscription's `clientState`: the leader's manager fills it; on a standby, the
    /// Secret's watch does.
    pub(super) secrets: SubscriptionSecrets,
    pub(super) handoff: Handoff,
    /// Accepted notifications; each term of leadership takes the lock while it lasts.
    pub(super) events: Arc<Mutex<mpsc::Receiver<Notification>>>,
    pub(super) store: SecretStore,
    pub(super) board: Board,
}

/// The subscriptions as the leader last saw them (empty on a standby), for the metrics and the
/// connections' status.
#[derive(Clone, Default)]
pub struct Board(Arc<RwLock<Vec<SubscriptionState<String>>>>);

impl Board {
    pub(super) fn set(&self, states: Vec<SubscriptionState<String>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = states;
    }

    pub(super) fn all(&self) -> Vec<SubscriptionState<String>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The subscriptions made through `connection` (as resources name it), by app, as a
    /// connection's status shows them.
    pub(super) fn of_connection(&self, connection: &str) -> Vec<ConnectionSubscription> {
        let lock = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let mut shown: Vec<_> = (lock.iter())
            .filter(|s| s.key == connection)
            .map(shown)
            .collect();
        shown.sort_by(|a, b| a.teams_app_id.cmp(&b.teams_app_id));
        shown
    }
}

/// A subscription as a connection's status shows it.
fn shown(state: &SubscriptionState<String>) -> ConnectionSubscription {
    let (health, message) = match &state.health {
        Health::Healthy => ("Healthy", None),
        Health::Failing { message, .. } => ("Failing", Some(message.clone())),
        Health::Missing => ("Missing", None),
    };
    ConnectionSubscription {
        teams_app_id: state.teams_app_id.clone(),
        id: state.id.clone(),
        expires_at: state.expiration.map(Time),
        last_notification_at: state.last_notification.map(Time),
        health: health.to_string(),
        message,
    }
}

/// Starts listening. With leader election the replica stands by (forwarding) until a term of
/// leadership takes the receiver; without, it queues for its own controllers from the start.
pub(super) async fn start(
    settings: NotificationSettings,
    client: &kube::Client,
    elected: bool,
    series: &NotificationSeries,
) -> std::io::Result<Receiver> {
    let secrets = SubscriptionSecrets::default();
    let handoff = if elected {
        Handoff::standby()
    } else {
        Handoff::default()
    };
    let receiving = ReceiverSettings {
        handoff: handoff.clone(),
        ..ReceiverSettings::default()
    };
    let (bound, receiving) = crate::notification::serve(
        settings.addr,
        receiving,
        secrets.clone(),
        (settings.certificate.as_ref())
            .map_or_else(DecryptionKeys::default, |c| c.decryption_keys()),
    )
    .await?;
    info!(%bound, url = %settings.url, peer = ?settings.peer_url(), "receiving Graph change notifications");
    let store = SecretStore::new(client.clone(), &settings.secret_namespace, &settings.secret);
    let board = Board::default();
    series.attach({
        let (counts, board) = (receiving.counts.clone(), board.clone());
        move || figures(&counts.snapshot(), &board.all())
    });
    if elected {
        tokio::spawn(follow_the_leader(
            store.clone(),
            secrets.clone(),
            handoff.clone(),
        ));
    }
    Ok(Receiver {
        settings,
        secrets,
        handoff,
        events: Arc::new(Mutex::new(receiving.events)),
        store,
        board,
    })
}

/// On a standby: the leader's receiver URL and the subscriptions' secrets, from the Secret.
async fn follow_the_leader(store: SecretStore, secrets: SubscriptionSecrets, handoff: Handoff) {
    let changes = store.changes();
    futures::pin_mut!(changes);
    while let Some(Published {
        leader,
        subscriptions,
    }) = changes.next().await
    {
        if handoff.is_leading() {
            // The leader's own manager keeps its table.
            continue;
        }
        tracing::debug!(leader = ?leader, subscriptions = subscriptions.len(), "the leader's subscriptions");
        handoff.set_leader(leader);
        secrets.replace_known(
            (subscriptions.into_iter()).map(|k| (k.id, k.tenant_id, k.client_state)),
        );
    }
}

/// The receiver's tally and the subscriptions' health, as the metrics show them.
fn figures(tally: &Tally, states: &[SubscriptionState<String>]) -> Figures {
    let received = vec![
        ("validation", "accepted", tally.validations),
        ("change", "accepted", tally.changes),
        ("lifecycle", "accepted", tally.lifecycle_events),
        ("notification", "forwarded", tally.forwarded),
        (
            "notification",
            "unknown_subscription",
            tally.unknown_subscription,
        ),
        (
            "notification",
            "wrong_client_state",
            tally.wrong_client_state,
        ),
        ("notification", "wrong_tenant", tally.wrong_tenant),
        ("notification", "malformed", tally.malformed),
        ("notification", "bad_signature", tally.bad_signature),
        ("notification", "undecryptable", tally.undecryptable),
        ("request", "unreadable", tally.unreadable),
        ("request", "too_large", tally.too_large),
        ("request", "busy", tally.busy),
    ];
    let count = |wanted: fn(&Health) -> bool| {
        let n = states.iter().filter(|s| wanted(&s.health)).count();
        i64::try_from(n).unwrap_or(i64::MAX)
    };
    Figures {
        received,
        subscriptions: vec![
            ("healthy", count(|h| matches!(h, Health::Healthy))),
            ("failing", count(|h| matches!(h, Health::Failing { .. }))),
            ("missing", count(|h| matches!(h, Health::Missing))),
        ],
    }
}
