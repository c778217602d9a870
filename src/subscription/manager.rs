//! The subscription manager's shell: performs the core's steps against Graph and keeps the
//! receiver's `clientState` table in step with the subscriptions Graph holds.
//!
//! One `sync` or `on_lifecycle` runs at a time (a create waits for Graph's handshake, up to
//! 10 s): two passes deciding on the same slots at once would create it twice. The readers
//! (`covering`, `states`, …) never wait for Graph.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;

use super::core::{self, Health, Slot, Step, Tracked, Want};
use super::{SubscriptionSettings, SubscriptionState, Wanted};
use crate::graph::{GraphClient, GraphError, SubscriptionRequest};
use crate::notification::{
    LifecycleEvent, LifecycleKind, SubscriptionSecrets, generate_client_state,
};
use crate::tenancy::ConnectionKey;

/// What a connection key must be to key the manager's table.
pub trait SlotKey: Clone + Eq + Hash + Debug + Send + Sync + 'static {}
impl<T: Clone + Eq + Hash + Debug + Send + Sync + 'static> SlotKey for T {}

type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Keeps one subscription per (connection, catalog app). Callers run [`Self::sync`]
/// periodically with what they manage and hand it every lifecycle event.
pub struct SubscriptionManager<K = ConnectionKey> {
    settings: SubscriptionSettings,
    secrets: SubscriptionSecrets,
    book: Mutex<Book<K>>,
    turn: tokio::sync::Mutex<()>,
    clock: Clock,
}

struct Book<K> {
    tracked: HashMap<Slot<K>, Tracked>,
    /// The client each slot was last served by: a slot no longer wanted is deleted with it.
    clients: HashMap<Slot<K>, GraphClient>,
}

impl<K: SlotKey> SubscriptionManager<K> {
    /// `secrets` is the receiver's table: the manager fills and empties it.
    pub fn new(settings: SubscriptionSettings, secrets: SubscriptionSecrets) -> Self {
        Self {
            settings,
            secrets,
            book: Mutex::new(Book {
                tracked: HashMap::new(),
                clients: HashMap::new(),
            }),
            turn: tokio::sync::Mutex::new(()),
            clock: Arc::new(Timestamp::now),
        }
    }

    /// Reads time from `clock` instead of the system's (tests move it towards an expiry).
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Brings the subscriptions to `wanted`: creates what is missing, renews what is due,
    /// recreates what Graph dropped, deletes what is no longer wanted. Failures are recorded
    /// in the slot's health and retried by a later `sync` once their backoff has passed.
    pub async fn sync(&self, wanted: Vec<Wanted<K>>) {
        let _turn = self.turn.lock().await;
        let now = self.now();
        let wants: Vec<Want<K>> = wanted
            .iter()
            .map(|w| Want {
                slot: slot(&w.key, &w.teams_app_id),
                tenant_id: w.tenant_id.clone(),
            })
            .collect();
        let steps = core::plan(&wants, &self.book().tracked, now);
        let clients: HashMap<Slot<K>, GraphClient> = wants
            .into_iter()
            .zip(wanted)
            .map(|(want, w)| (want.slot, w.client))
            .collect();
        for step in steps {
            self.perform(step, &clients).await;
        }
    }

    /// Acts on a lifecycle event at once: `reauthorizationRequired` renews,
    /// `subscriptionRemoved` creates a new subscription. Returns the slot whose installations
    /// the caller should re-read in full — after `subscriptionRemoved` or `missed`, when
    /// notifications may have been lost — or `None` (nothing to re-read, or not ours).
    pub async fn on_lifecycle(&self, event: &LifecycleEvent) -> Option<(K, String)> {
        let _turn = self.turn.lock().await;
        let Some(slot) = self.slot_of(&event.subscription_id) else {
            tracing::info!(subscription = %event.subscription_id, kind = ?event.kind,
                "lifecycle event for a subscription the manager does not hold");
            return None;
        };
        tracing::info!(subscription = %event.subscription_id, kind = ?event.kind,
            app = %slot.teams_app_id, "lifecycle event");
        let client = self.book().clients.get(&slot).cloned()?;
        match event.kind {
            LifecycleKind::ReauthorizationRequired => {
                self.renew(&slot, &event.subscription_id, &client).await;
                None
            }
            LifecycleKind::SubscriptionRemoved => {
                self.secrets.remove(&event.subscription_id);
                let tenant = self.update(&slot, |t| {
                    t.removed();
                    t.tenant_id.clone()
                });
                self.create(&slot, &tenant, &client).await;
                Some((slot.key, slot.teams_app_id))
            }
            LifecycleKind::Missed => Some((slot.key, slot.teams_app_id)),
        }
    }

    /// The (connection, app) a subscription covers, while the manager holds it.
    pub fn covering(&self, subscription_id: &str) -> Option<(K, String)> {
        self.slot_of(subscription_id)
            .map(|s| (s.key, s.teams_app_id))
    }

    /// Records that a notification of `subscription_id` arrived now (a subscription that never
    /// hears anything is worth a look on a dashboard, not an action).
    pub fn note_notification(&self, subscription_id: &str) {
        let now = self.now();
        let mut book = self.book();
        if let Some(t) = book
            .tracked
            .values_mut()
            .find(|t| t.id().is_some_and(|id| same_id(id, subscription_id)))
        {
            t.last_notification = Some(now);
        }
    }

    /// Every slot the manager holds, as it stands.
    pub fn states(&self) -> Vec<SubscriptionState<K>> {
        let now = self.now();
        self.book()
            .tracked
            .iter()
            .map(|(slot, t)| SubscriptionState {
                key: slot.key.clone(),
                teams_app_id: slot.teams_app_id.clone(),
                id: t.id().map(str::to_string),
                expiration: t.live.as_ref().map(|l| l.expiration),
                last_notification: t.last_notification,
                health: t.health(now),
            })
            .collect()
    }

    /// Whether notifications for `teams_app_id` through `key` can be relied on: its
    /// subscription is held and healthy.
    pub fn all_healthy_for(&self, key: &K, teams_app_id: &str) -> bool {
        let now = self.now();
        self.book()
            .tracked
            .get(&slot(key, teams_app_id))
            .is_some_and(|t| t.health(now) == Health::Healthy)
    }

    async fn perform(&self, step: Step<K>, clients: &HashMap<Slot<K>, GraphClient>) {
        match step {
            Step::Create { slot, tenant_id } => {
                if let Some(client) = clients.get(&slot) {
                    self.create(&slot, &tenant_id, client).await;
                }
            }
            Step::Renew { slot, id } => {
                if let Some(client) = clients.get(&slot) {
                    self.renew(&slot, &id, client).await;
                }
            }
            Step::Recreate {
                slot,
                tenant_id,
                old,
            } => {
                if let Some(old) = old {
                    self.retire(&slot, &old).await;
                }
                if let Some(client) = clients.get(&slot) {
                    self.create(&slot, &tenant_id, client).await;
                }
            }
            Step::Delete { slot, id } => self.delete(&slot, id).await,
        }
    }

    /// Creates the slot's subscription with a fresh `clientState`, registered (as pending)
    /// before the request: Graph may deliver the first notification before it answers.
    async fn create(&self, slot: &Slot<K>, tenant_id: &str, client: &GraphClient) {
        let state = generate_client_state();
        self.secrets.insert_pending(tenant_id, state.clone());
        let now = self.now();
        let request = SubscriptionRequest {
            teams_app_id: slot.teams_app_id.clone(),
            notification_url: self.settings.notification_url.clone(),
            lifecycle_url: Some(self.settings.lifecycle_url.clone()),
            expiration: core::expiry(now, self.settings.lifetime),
            client_state: state.expose().to_string(),
            resource_data: self.settings.include_resource_data.clone(),
        };
        let result = client.create_subscription(&request).await;
        if let Ok(sub) = &result {
            self.secrets.insert(&sub.id, tenant_id, state.clone());
        }
        self.secrets.remove_pending(&state);
        self.book().clients.insert(slot.clone(), client.clone());
        self.update(slot, |t| {
            t.tenant_id = tenant_id.to_string();
            match result {
                Ok(sub) => {
                    tracing::info!(subscription = %sub.id, app = %slot.teams_app_id,
                        key = ?slot.key, expiration = %sub.expiration, "subscribed");
                    t.granted(&sub.id, sub.expiration, now);
                }
                Err(err) => self.failed(t, "creating", &err, now),
            }
        });
    }

    /// Renews; a 404 means Graph no longer has it, so a new one is created at once.
    async fn renew(&self, slot: &Slot<K>, id: &str, client: &GraphClient) {
        let now = self.now();
        let expiration = core::expiry(now, self.settings.lifetime);
        match client.renew_subscription(id, expiration).await {
            Ok(sub) => self.update(slot, |t| {
                tracing::debug!(subscription = %id, expiration = %sub.expiration, "renewed");
                t.granted(&sub.id, sub.expiration, now);
            }),
            Err(err) if err.status() == Some(404) => {
                tracing::info!(subscription = %id, "renewal: Graph no longer has it");
                self.secrets.remove(id);
                let tenant = self.update(slot, |t| {
                    t.removed();
                    t.tenant_id.clone()
                });
                self.create(slot, &tenant, client).await;
            }
            Err(err) => self.update(slot, |t| self.failed(t, "renewing", &err, now)),
        }
    }

    /// Deletes a subscription being replaced, with the client it was made by. A failure is only
    /// logged: the subscription expires on its own, and its secret is gone, so its
    /// notifications are refused meanwhile.
    async fn retire(&self, slot: &Slot<K>, id: &str) {
        self.secrets.remove(id);
        let client = self.book().clients.get(slot).cloned();
        if let Some(client) = client
            && let Err(err) = client.delete_subscription(id).await
        {
            tracing::warn!(subscription = %id, error = %err, "deleting a replaced subscription failed");
        }
    }

    /// Deletes a slot's subscription (when Graph may still have it) and forgets the slot.
    async fn delete(&self, slot: &Slot<K>, id: Option<String>) {
        let client = self.book().clients.get(slot).cloned();
        if let (Some(id), Some(client)) = (&id, client) {
            let now = self.now();
            if let Err(err) = client.delete_subscription(id).await {
                self.update(slot, |t| self.failed(t, "deleting", &err, now));
                return;
            }
            tracing::info!(subscription = %id, app = %slot.teams_app_id, "unsubscribed");
        }
        if let Some(id) = &id {
            self.secrets.remove(id);
        }
        let mut book = self.book();
        book.tracked.remove(slot);
        book.clients.remove(slot);
    }

    fn failed(&self, t: &mut Tracked, doing: &str, err: &GraphError, now: Timestamp) {
        let message = format!("{doing} the Graph subscription failed: {err}");
        tracing::warn!(error = %err, doing, "graph subscription call failed");
        t.failed(message, now, &self.settings.retry);
    }

    /// Runs `change` on the slot's record, creating it (tenant unknown) when absent.
    fn update<R>(&self, slot: &Slot<K>, change: impl FnOnce(&mut Tracked) -> R) -> R {
        let mut book = self.book();
        change(book.tracked.entry(slot.clone()).or_default())
    }

    fn slot_of(&self, subscription_id: &str) -> Option<Slot<K>> {
        self.book()
            .tracked
            .iter()
            .find(|(_, t)| t.id().is_some_and(|id| same_id(id, subscription_id)))
            .map(|(slot, _)| slot.clone())
    }

    fn book(&self) -> MutexGuard<'_, Book<K>> {
        // Plain data, each change made whole under the lock: a panic cannot leave it torn.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }
}

fn slot<K: Clone>(key: &K, teams_app_id: &str) -> Slot<K> {
    Slot {
        key: key.clone(),
        teams_app_id: teams_app_id.to_string(),
    }
}

/// Subscription ids are GUIDs; Graph may write them in either case.
fn same_id(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}
