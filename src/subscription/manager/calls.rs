//! The Graph side of the manager: each step's calls, and what their answers do to the slot's
//! record and to the receiver's `clientState` table.

use std::collections::HashMap;

use jiff::Timestamp;

use super::super::core::{self, Slot, Step, Tracked};
use super::{SlotKey, SubscriptionManager};
use crate::graph::{GraphClient, GraphError, SubscriptionRequest};
use crate::notification::generate_client_state;

impl<K: SlotKey> SubscriptionManager<K> {
    pub(super) async fn perform(&self, step: Step<K>, clients: &HashMap<Slot<K>, GraphClient>) {
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
                    // Whatever the create below does, the old one is no longer the slot's.
                    self.update(&slot, Tracked::removed);
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
    pub(super) async fn create(&self, slot: &Slot<K>, tenant_id: &str, client: &GraphClient) {
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
        {
            let mut book = self.book();
            book.clients.insert(slot.clone(), client.clone());
            if result.is_ok() {
                book.client_states.insert(slot.clone(), state);
            }
        }
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
    pub(super) async fn renew(&self, slot: &Slot<K>, id: &str, client: &GraphClient) {
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
        book.client_states.remove(slot);
    }

    fn failed(&self, t: &mut Tracked, doing: &str, err: &GraphError, now: Timestamp) {
        let message = format!("{doing} the Graph subscription failed: {err}");
        tracing::warn!(error = %err, doing, "graph subscription call failed");
        t.failed(message, now, &self.settings.retry);
    }
}
