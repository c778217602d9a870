//! Graph change notifications, wired together: the receiver on `--notification-addr`, one
//! subscription per (connection, managed app) kept by the subscription manager, lifecycle
//! events to the manager, and change notifications to the installation controller, whose
//! resources they concern look again at once.
//!
//! Everything here runs inside the controllers, so with leader election only the leader
//! subscribes and receives.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tracing::{debug, info, warn};

use crate::api::TeamsAppInstallation;
use crate::installation::Coverage;
use crate::notification::Tally;
use crate::notification::{
    DecryptionKeys, LIFECYCLE_PATH, NOTIFICATION_PATH, Notification, NotificationEvent,
    ReceiverSettings, SubscriptionSecrets,
};
use crate::subscription::{
    Health, SubscriptionManager, SubscriptionSettings, SubscriptionState, Wanted,
};
use crate::telemetry::notifications::{Figures, NotificationSeries};

/// Subscriptions are kept per connection as resources name it (`default` for the operator's
/// own, else `GraphConnection ns/name` or `ClusterGraphConnection name`) and catalog app.
type Manager = SubscriptionManager<String>;
use crate::graph::GraphClient;
use crate::tenancy::{Asking, Connections};

/// How often the wanted set and the subscriptions are looked at (memory only): a new app is
/// subscribed to, a renewal or a retry made, within this long of being due.
const LOOK_PERIOD: Duration = Duration::from_secs(5);

/// Change notifications waiting for the installation controller at most; more are dropped
/// (the drift check finds what they would have told).
const QUEUE: usize = 1024;

/// `--notification-addr` and `--notification-url`.
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// Where the receiver listens (plain HTTP, behind a TLS-terminating Ingress).
    pub addr: SocketAddr,
    /// The public base URL Graph posts to.
    pub url: url::Url,
    /// The drift-check period of resources a healthy subscription covers.
    pub resync: Duration,
}

impl NotificationSettings {
    fn subscription_settings(&self) -> SubscriptionSettings {
        let join = |path: &str| format!("{}{path}", self.url.as_str().trim_end_matches('/'));
        SubscriptionSettings::new(join(NOTIFICATION_PATH), join(LIFECYCLE_PATH))
    }
}

/// The receiver's events for the installation controller, and the work that keeps the
/// subscriptions (it ends when `shutdown` resolves).
pub(super) struct Notifications {
    pub events: futures::channel::mpsc::Receiver<NotificationEvent>,
    pub coverage: Coverage,
    pub run: BoxFuture<'static, ()>,
}

/// What the installation controller gets: the change notifications, and which resources a
/// healthy subscription covers.
pub(super) type Notified = (
    futures::channel::mpsc::Receiver<NotificationEvent>,
    Coverage,
);

/// [`start`] when notifications are asked for: the events for the installation controller (if
/// any) and the work to run beside it (nothing when not asked for).
pub(super) async fn start_if_asked(
    settings: Option<&NotificationSettings>,
    installations: &Store<TeamsAppInstallation>,
    connections: &Arc<Connections>,
    wake: &Wakeups,
    series: &NotificationSeries,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(Option<Notified>, BoxFuture<'static, ()>)> {
    let Some(settings) = settings else {
        return Ok((None, futures::future::ready(()).boxed()));
    };
    let started = start(
        settings,
        installations.clone(),
        connections.clone(),
        wake.clone(),
        series,
        shutdown,
    )
    .await?;
    Ok((Some((started.events, started.coverage)), started.run))
}

/// Starts the receiver and returns what the controllers run.
pub(super) async fn start(
    settings: &NotificationSettings,
    installations: Store<TeamsAppInstallation>,
    connections: Arc<Connections>,
    wake: Wakeups,
    series: &NotificationSeries,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<Notifications> {
    let secrets = SubscriptionSecrets::default();
    let (bound, receiving) = crate::notification::serve(
        settings.addr,
        ReceiverSettings::default(),
        secrets.clone(),
        DecryptionKeys::default(),
    )
    .await?;
    info!(%bound, url = %settings.url, "receiving Graph change notifications");
    let manager = Arc::new(Manager::new(settings.subscription_settings(), secrets));
    series.attach({
        let (counts, manager) = (receiving.counts.clone(), manager.clone());
        move || figures(&counts.snapshot(), &manager.states())
    });
    let (to_controller, events) = futures::channel::mpsc::channel(QUEUE);
    let rechecks = (installations, connections, wake);
    let route = route(
        receiving.events,
        manager.clone(),
        to_controller,
        rechecks.clone(),
    );
    let coverage: Coverage = {
        let (manager, resync) = (manager.clone(), settings.resync);
        Arc::new(move |connection: &str, app: &str| {
            (manager.all_healthy_for(&connection.to_string(), app)).then_some(resync)
        })
    };
    let keep = keep_subscriptions(manager, rechecks);
    let run = async move {
        let work = futures::future::join(route, keep);
        futures::pin_mut!(work, shutdown);
        futures::future::select(work, shutdown).await;
    }
    .boxed();
    Ok(Notifications {
        events,
        coverage,
        run,
    })
}

/// The receiver's tally and the subscriptions' health, as the metrics show them.
fn figures(tally: &Tally, states: &[SubscriptionState<String>]) -> Figures {
    let received = vec![
        ("validation", "accepted", tally.validations),
        ("change", "accepted", tally.changes),
        ("lifecycle", "accepted", tally.lifecycle_events),
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

/// Change notifications to the installation controller, lifecycle events to the manager.
async fn route(
    mut received: tokio::sync::mpsc::Receiver<Notification>,
    manager: Arc<Manager>,
    mut to_controller: futures::channel::mpsc::Sender<NotificationEvent>,
    (installations, connections, wake): Rechecks,
) {
    while let Some(notification) = received.recv().await {
        manager.note_notification(notification.subscription_id());
        match notification {
            Notification::Change(event) => {
                if let Err(e) = to_controller.try_send(event) {
                    debug!(error = %e, "a change notification was dropped; the drift check will find the change");
                }
            }
            Notification::Lifecycle(event) => {
                if let Some((connection, app)) = manager.on_lifecycle(&event).await {
                    recheck_all(&installations, &connections, &wake, &connection, &app);
                }
            }
        }
    }
}

/// What a full re-check needs: the resources, their connections, and the controller's queue.
type Rechecks = (Store<TeamsAppInstallation>, Arc<Connections>, Wakeups);
type Wakeups = futures::channel::mpsc::UnboundedSender<ObjectRef<TeamsAppInstallation>>;

/// After `missed` or `subscriptionRemoved`, every resource the subscription covered looks
/// again: Graph may have changed any of them unannounced.
fn recheck_all(
    installations: &Store<TeamsAppInstallation>,
    connections: &Connections,
    wake: &Wakeups,
    connection: &str,
    app: &str,
) {
    let covered = uses(installations, connections)
        .filter(|u| u.connection == connection && u.app.eq_ignore_ascii_case(app));
    let mut woken = 0;
    for user in covered {
        let _ = wake.unbounded_send(ObjectRef::from_obj(&*user.obj));
        woken += 1;
    }
    info!(
        connection,
        app, woken, "a subscription missed notifications: its resources look again"
    );
}

/// Syncs the subscriptions with the wanted set whenever that calls Graph — a slot to create or
/// delete, a renewal or a retry due — once the installations' cache has its first list.
async fn keep_subscriptions(manager: Arc<Manager>, rechecks: Rechecks) {
    let (installations, connections, wake) = &rechecks;
    if installations.wait_until_ready().await.is_err() {
        warn!("the installations' cache never filled: no Graph subscriptions are made");
        return;
    }
    let mut tick = tokio::time::interval(LOOK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let wanted = wanted(installations, connections);
        if !manager.has_work(&wanted) {
            continue;
        }
        let healthy_before = healthy(&manager);
        manager.sync(wanted).await;
        // Resources relaxed to the resync period go back to their interval at once.
        for (connection, app) in healthy_before.difference(&healthy(&manager)) {
            recheck_all(installations, connections, wake, connection, app);
        }
    }
}

/// The (connection, app) slots whose subscription is healthy now.
fn healthy(manager: &Manager) -> BTreeSet<(String, String)> {
    (manager.states().into_iter())
        .filter(|s| matches!(s.health, Health::Healthy))
        .map(|s| (s.key, s.teams_app_id))
        .collect()
}

/// One subscription per (connection, catalog app) some resource uses.
fn wanted(
    installations: &Store<TeamsAppInstallation>,
    connections: &Connections,
) -> Vec<Wanted<String>> {
    let mut wanted = BTreeMap::new();
    for user in uses(installations, connections) {
        let key = (user.connection.clone(), user.app.to_lowercase());
        wanted.entry(key).or_insert_with(|| Wanted {
            key: user.connection,
            tenant_id: user.client.tenant_id().to_string(),
            teams_app_id: user.app,
            client: user.client,
        });
    }
    wanted.into_values().collect()
}

/// A resource's use of a subscription.
struct Use {
    connection: String,
    app: String,
    obj: Arc<TeamsAppInstallation>,
    client: GraphClient,
}

/// The resources that use a subscription: those that found their app in the catalog
/// (`status.catalogAppId`) and, not being deleted, may use their connection now.
fn uses<'a>(
    installations: &Store<TeamsAppInstallation>,
    connections: &'a Connections,
) -> impl Iterator<Item = Use> + 'a {
    installations.state().into_iter().filter_map(|obj| {
        let app = obj.status.as_ref()?.catalog_app_id.clone()?;
        if obj.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let namespace = obj.namespace().unwrap_or_default();
        let asking = Asking {
            namespace: &namespace,
            connection_ref: obj.spec.connection_ref.as_ref(),
            app: &obj.spec.app,
            groups: &[],
        };
        let resolved = connections.resolve(&asking).ok()?;
        Some(Use {
            connection: resolved.connection,
            app,
            client: resolved.client,
            obj,
        })
    })
}
