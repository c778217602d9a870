//! Graph change notifications, wired together for one term of leadership: one subscription
//! per (connection, managed app) kept by the subscription manager and published in the
//! notification Secret, lifecycle events to the manager, and change notifications to the
//! installation controller, whose resources they concern look again at once.
//!
//! The receiver itself runs on every replica ([`super::receiver`]); while this term lasts it
//! queues for this replica's controllers instead of forwarding to another's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tracing::{debug, info, warn};

use super::connection_kinds::LookAgain;
use super::receiver::{Board, Receiver};
use crate::api::TeamsAppInstallation;
use crate::installation::Coverage;
use crate::installation::Notice;
use crate::notification::Notification;
use crate::subscription::persist::{Published, SecretStore};
use crate::subscription::{Health, SubscriptionManager, SubscriptionState, Wanted};

/// Subscriptions are kept per connection as resources name it (`default` for the operator's
/// own, else `GraphConnection ns/name` or `ClusterGraphConnection name`) and catalog app.
type Manager = SubscriptionManager<String>;
use crate::graph::GraphClient;
use crate::tenancy::{Asking, Connections};

/// How often the wanted set and the subscriptions are looked at (memory only): a new app is
/// subscribed to, a renewal or a retry made, within this long of being due.
const LOOK_PERIOD: Duration = Duration::from_secs(5);
/// How long the wanted set is kept while no resource changes: a connection's change (another
/// tenant, another client) shows within this.
const SYNC_PERIOD: Duration = Duration::from_secs(60);

/// Change notifications waiting for the installation controller at most; more are dropped
/// (the drift check finds what they would have told).
const QUEUE: usize = 1024;

/// What the installation controller gets: the change notifications, and which resources a
/// healthy subscription covers.
pub(super) type Notified = (futures::channel::mpsc::Receiver<Notice>, Coverage);

/// [`start`] when notifications are asked for: the events for the installation controller (if
/// any) and the work to run beside it (nothing when not asked for).
pub(super) async fn start_if_asked(
    receiver: Option<&Receiver>,
    installations: &Store<TeamsAppInstallation>,
    connections: &Arc<Connections>,
    wake: &Wakeups,
    look_again: LookAgain,
    changes: &Changes,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (Option<Notified>, BoxFuture<'static, ()>) {
    let Some(receiver) = receiver else {
        return (None, futures::future::ready(()).boxed());
    };
    let (notices, events) = futures::channel::mpsc::channel(QUEUE);
    let rechecks = Rechecks {
        installations: installations.clone(),
        connections: connections.clone(),
        wake: wake.clone(),
        notices,
    };
    let (notified, run) = start(
        receiver.clone(),
        rechecks,
        look_again,
        changes.clone(),
        shutdown,
    )
    .await;
    (Some((events, notified)), run)
}

/// Takes the receiver for this term: goes on with the subscriptions the last leader kept,
/// publishes this replica as the one to forward to, and returns what the controllers run.
async fn start(
    receiver: Receiver,
    rechecks: Rechecks,
    look_again: LookAgain,
    changes: Changes,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (Coverage, BoxFuture<'static, ()>) {
    let leading = receiver.handoff.lead();
    let manager = Arc::new(Manager::new(
        receiver.settings.subscription_settings(),
        receiver.secrets.clone(),
    ));
    // Whatever a standby learnt is the last leader's; the manager's table starts from the Secret.
    receiver.secrets.replace_known([]);
    match receiver.store.load().await {
        Ok(kept) => manager.adopt(kept.subscriptions),
        Err(err) => {
            warn!(error = %err, "the kept subscriptions could not be read: new ones are made")
        }
    }
    let publisher = Arc::new(Publisher {
        store: receiver.store.clone(),
        leader: receiver.settings.peer_url(),
        board: receiver.board.clone(),
        look_again,
        last: tokio::sync::Mutex::new(None),
        shown: std::sync::Mutex::new(BTreeMap::new()),
    });
    publisher.update(&manager).await;
    let route = route(
        receiver.events.clone(),
        manager.clone(),
        publisher.clone(),
        rechecks.clone(),
    );
    let coverage: Coverage = {
        let (manager, resync) = (manager.clone(), receiver.settings.resync);
        Arc::new(move |connection: &str, app: &str| {
            (manager.all_healthy_for(&connection.to_string(), app)).then_some(resync)
        })
    };
    let keep = keep_subscriptions(manager, publisher, rechecks, changes);
    let run = async move {
        let work = futures::future::join(route, keep);
        futures::pin_mut!(work, shutdown);
        futures::future::select(work, shutdown).await;
        drop(leading);
    }
    .boxed();
    (coverage, run)
}

/// Keeps the notification Secret and the board in step with the manager.
struct Publisher {
    store: SecretStore,
    /// This replica's receiver, for standbys to forward to.
    leader: Option<url::Url>,
    board: Board,
    /// Connections whose subscriptions changed look again, to show them in their status.
    look_again: LookAgain,
    /// What the Secret holds, as last written (`None`: to be written).
    last: tokio::sync::Mutex<Option<Published>>,
    /// Each connection's subscriptions as its status last had cause to show them.
    shown: std::sync::Mutex<BTreeMap<String, Vec<Shown>>>,
}

/// What of a subscription is worth a connection's new status: not its last notification's
/// time, which changes all the time and is shown at the connection's next regular look.
type Shown = (
    String,
    Option<String>,
    Option<jiff::Timestamp>,
    &'static str,
);

impl Publisher {
    /// Writes the Secret when the live subscriptions changed (a failed write is tried again at
    /// the next update), and shows the subscriptions' states.
    async fn update(&self, manager: &Manager) {
        let states = manager.states();
        self.show(&states);
        self.board.set(states);
        let now = Published {
            leader: self.leader.clone(),
            subscriptions: manager.kept(),
        };
        let mut last = self.last.lock().await;
        if last.as_ref() == Some(&now) {
            return;
        }
        match self.store.save(&now).await {
            Ok(()) => *last = Some(now),
            Err(err) => {
                warn!(error = %err, "keeping the subscriptions in their Secret failed; retried");
                *last = None;
            }
        }
    }

    /// Wakes the connections whose subscriptions changed.
    fn show(&self, states: &[SubscriptionState<String>]) {
        let mut now: BTreeMap<String, Vec<Shown>> = BTreeMap::new();
        for s in states {
            let health = match s.health {
                Health::Healthy => "Healthy",
                Health::Failing { .. } => "Failing",
                Health::Missing => "Missing",
            };
            let entry = (s.teams_app_id.clone(), s.id.clone(), s.expiration, health);
            now.entry(s.key.clone()).or_default().push(entry);
        }
        now.values_mut().for_each(|v| v.sort());
        let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        let keys: BTreeSet<&String> = shown.keys().chain(now.keys()).collect();
        for connection in keys {
            if shown.get(connection) != now.get(connection) {
                (self.look_again)(connection);
            }
        }
        *shown = now;
    }
}

/// Change notifications to the installation controller, lifecycle events to the manager.
async fn route(
    received: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Notification>>>,
    manager: Arc<Manager>,
    publisher: Arc<Publisher>,
    rechecks: Rechecks,
) {
    let mut to_controller = rechecks.notices.clone();
    // Held for the term: the next term takes it when this one's work is dropped.
    let mut received = received.lock().await;
    while let Some(notification) = received.recv().await {
        manager.note_notification(notification.subscription_id());
        match notification {
            Notification::Change(event) => {
                if let Err(e) = to_controller.try_send(Notice::Change(event)) {
                    debug!(error = %e, "a change notification was dropped; the drift check will find the change");
                }
            }
            Notification::Lifecycle(event) => {
                let recheck = manager.on_lifecycle(&event).await;
                publisher.update(&manager).await;
                if let Some((connection, app)) = recheck {
                    rechecks.all(&connection, &app);
                }
            }
        }
    }
}

/// What a full re-check needs: the resources, their connections, and the controller's queues.
#[derive(Clone)]
struct Rechecks {
    installations: Store<TeamsAppInstallation>,
    connections: Arc<Connections>,
    /// The controller's queue of resources to look at.
    wake: Wakeups,
    /// The controller's queue of notices (which marks the users' lists stale too).
    notices: futures::channel::mpsc::Sender<Notice>,
}

type Wakeups = futures::channel::mpsc::UnboundedSender<ObjectRef<TeamsAppInstallation>>;
/// How many changes of installations (status included) the watch has seen.
pub(super) type Changes = Arc<AtomicU64>;

impl Rechecks {
    /// After `missed` or `subscriptionRemoved`, or when a subscription turns unhealthy, every
    /// resource the subscription covered re-reads its user's apps: Graph may have changed any of
    /// them unannounced, and a list read a moment ago may predate the change.
    fn all(&self, connection: &str, app: &str) {
        let covered: Vec<_> = uses(&self.installations, &self.connections)
            .filter(|u| u.connection == connection && u.app.eq_ignore_ascii_case(app))
            .map(|u| ObjectRef::from_obj(&*u.obj))
            .collect();
        let woken = covered.len();
        if let Err(full) = self.notices.clone().try_send(Notice::Recheck(covered)) {
            // No room: they look again all the same, perhaps from a list read a moment ago.
            if let Notice::Recheck(covered) = full.into_inner() {
                for resource in covered {
                    let _ = self.wake.unbounded_send(resource);
                }
            }
        }
        info!(
            connection,
            app, woken, "a subscription may have missed notifications: its resources look again"
        );
    }
}

/// Syncs the subscriptions with the wanted set whenever that calls Graph — a slot to create or
/// delete, a renewal or a retry due — once the installations' cache has its first list.
async fn keep_subscriptions(
    manager: Arc<Manager>,
    publisher: Arc<Publisher>,
    rechecks: Rechecks,
    changes: Changes,
) {
    let (installations, connections) = (&rechecks.installations, &rechecks.connections);
    if installations.wait_until_ready().await.is_err() {
        warn!("the installations' cache never filled: no Graph subscriptions are made");
        return;
    }
    let mut tick = tokio::time::interval(LOOK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The wanted set, the resource changes it was made after, and when.
    let mut known: Option<(Vec<Wanted<String>>, u64, tokio::time::Instant)> = None;
    loop {
        tick.tick().await;
        // 10,000 resources are walked only when one changed (or a connection may have: once a
        // minute), not every 5 s for nothing.
        let count = changes.load(Ordering::Relaxed);
        let fresh = (known.as_ref())
            .is_some_and(|(_, seen, at)| *seen == count && at.elapsed() < SYNC_PERIOD);
        if !fresh {
            known = Some((
                wanted(installations, connections),
                count,
                tokio::time::Instant::now(),
            ));
        }
        let Some((wanted, _, _)) = &known else {
            continue;
        };
        if !manager.has_work(wanted) {
            // The last notifications' times, for the status.
            publisher.board.set(manager.states());
            continue;
        }
        let healthy_before = healthy(&manager);
        manager.sync(wanted.clone()).await;
        publisher.update(&manager).await;
        // Resources relaxed to the resync period go back to their interval at once.
        for (connection, app) in healthy_before.difference(&healthy(&manager)) {
            rechecks.all(connection, app);
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
