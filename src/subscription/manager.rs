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

use super::core::{self, Asked, Health, Live, Slot, Tracked, Want};
use super::{Kept, SubscriptionSettings, SubscriptionState, Wanted};
use crate::graph::GraphClient;
use crate::notification::{ClientState, LifecycleEvent, LifecycleKind, SubscriptionSecrets};
use crate::tenancy::ConnectionKey;

mod calls;

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
    /// The `clientState` of each slot's live subscription, for [`SubscriptionManager::kept`].
    client_states: HashMap<Slot<K>, ClientState>,
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
                client_states: HashMap::new(),
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
        let wants = wants(&wanted);
        let steps = core::plan(&wants, &self.book().tracked, now);
        let clients: HashMap<Slot<K>, GraphClient> = wants
            .into_iter()
            .zip(wanted)
            .map(|(want, w)| (want.slot, w.client))
            .collect();
        // A slot adopted from a predecessor has no client yet: it is the wanted one's. (A slot
        // that has one keeps it: a replaced subscription is deleted with the client it was
        // made by.)
        {
            let mut book = self.book();
            for (slot, client) in &clients {
                book.clients
                    .entry(slot.clone())
                    .or_insert_with(|| client.clone());
            }
        }
        for step in steps {
            self.perform(step, &clients).await;
        }
    }

    /// Whether a [`Self::sync`] with `wanted` would call Graph now: a subscription to create,
    /// renew (a third of its granted lifetime left), recreate or delete, or a failed call whose
    /// backoff is over. Graph may grant far less than was asked, so renewals cannot wait for a
    /// fixed sync period.
    pub fn has_work(&self, wanted: &[Wanted<K>]) -> bool {
        let now = self.now();
        !core::plan(&wants(wanted), &self.book().tracked, now).is_empty()
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
                // Kept until a renewal succeeds: a failed one is retried by `sync`, due or not.
                self.update(&slot, |t| t.asked = Some(Asked::Renew));
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

    /// The live subscriptions, with what a successor needs to go on with them: kept where
    /// replicas and restarts read them (see [`super::persist`]).
    pub fn kept(&self) -> Vec<Kept<K>> {
        let book = self.book();
        let mut kept: Vec<Kept<K>> = (book.tracked.iter())
            .filter_map(|(slot, t)| {
                let live = t.live.as_ref()?;
                Some(Kept {
                    key: slot.key.clone(),
                    teams_app_id: slot.teams_app_id.clone(),
                    tenant_id: t.tenant_id.clone(),
                    id: live.id.clone(),
                    client_state: book.client_states.get(slot)?.clone(),
                    granted: live.granted,
                    expiration: live.expiration,
                })
            })
            .collect();
        kept.sort_by(|a, b| a.id.cmp(&b.id));
        kept
    }

    /// Goes on with the subscriptions a predecessor kept (those not expired yet): they are
    /// renewed, recreated or deleted as if this manager had made them, and their
    /// notifications are accepted at once. Slots the manager already tracks are left as they are.
    pub fn adopt(&self, kept: Vec<Kept<K>>) {
        let now = self.now();
        let mut book = self.book();
        for k in kept.into_iter().filter(|k| k.expiration > now) {
            let slot = slot(&k.key, &k.teams_app_id);
            if book.tracked.contains_key(&slot) {
                continue;
            }
            self.secrets
                .insert(&k.id, &k.tenant_id, k.client_state.clone());
            tracing::info!(subscription = %k.id, app = %k.teams_app_id, key = ?k.key,
                expiration = %k.expiration, "adopted a kept subscription");
            let tracked = Tracked {
                tenant_id: k.tenant_id,
                live: Some(Live {
                    id: k.id,
                    granted: k.granted,
                    expiration: k.expiration,
                }),
                ..Tracked::default()
            };
            book.tracked.insert(slot.clone(), tracked);
            book.client_states.insert(slot, k.client_state);
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

fn wants<K: Clone>(wanted: &[Wanted<K>]) -> Vec<Want<K>> {
    (wanted.iter())
        .map(|w| Want {
            slot: slot(&w.key, &w.teams_app_id),
            tenant_id: w.tenant_id.clone(),
        })
        .collect()
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
