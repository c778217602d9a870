//! The `clientState` secret of every subscription the operator holds, the only thing that tells
//! a notification Graph sent from one anybody could POST.
//!
//! Graph echoes a subscription's `clientState` in every notification and lifecycle event of it;
//! the receiver must compare it with the value it chose and treat a mismatch as not from Graph
//! (<https://learn.microsoft.com/graph/change-notifications-delivery-webhooks>, "Processing the
//! change notification"). The subscription manager ([`crate::subscription`]) fills this table
//! when it creates a subscription and empties it when one ends; the receiver only reads it.
//!
//! A subscription's id is Graph's to choose, so it is unknown until the create answers — and
//! Graph may deliver the first notification before that answer arrives. The manager therefore
//! registers the secret as *pending* for its tenant before it asks ([`SubscriptionSecrets::insert_pending`]):
//! a notification of an id the table does not know yet is accepted when it carries a pending
//! secret of its tenant. A fresh 256-bit secret only Graph was told proves the sender as well
//! as an id would.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::counts::Refusal;

/// A subscription's `clientState`. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientState(String);

impl ClientState {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the subscription request that hands it to Graph.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in constant time: a receiver that answers faster for a longer right prefix
    /// would let a patient forger guess the secret byte by byte. Both sides are hashed first so
    /// that the time does not depend on the lengths either.
    pub fn matches(&self, offered: &str) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(offered.as_bytes());
        let diff = ours
            .iter()
            .zip(theirs.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientState(<redacted>)")
    }
}

/// A fresh secret for a new subscription: 32 random bytes, base64url (43 characters; Graph
/// takes up to 128).
pub fn generate_client_state() -> ClientState {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    ClientState(URL_SAFE_NO_PAD.encode(bytes))
}

/// Subscription id → the tenant it lives in and its `clientState`. Cheap to clone: every clone
/// is the same table.
#[derive(Clone, Default)]
pub struct SubscriptionSecrets {
    table: Arc<RwLock<HashMap<String, Entry>>>,
    /// Secrets of subscriptions being created, whose id is not known yet.
    pending: Arc<RwLock<Vec<Entry>>>,
}

struct Entry {
    tenant_id: String,
    client_state: ClientState,
}

impl SubscriptionSecrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (or replaces) the secret of `subscription_id` in `tenant_id`.
    pub fn insert(&self, subscription_id: &str, tenant_id: &str, client_state: ClientState) {
        let entry = Entry {
            tenant_id: tenant_id.to_string(),
            client_state,
        };
        self.write().insert(normal(subscription_id), entry);
    }

    /// Replaces every subscription known by id (pending ones stay): a standby replica keeps
    /// the leader's table this way, and a new leader clears it before adopting.
    pub fn replace_known(&self, entries: impl IntoIterator<Item = (String, String, ClientState)>) {
        let table = entries
            .into_iter()
            .map(|(id, tenant_id, client_state)| {
                let entry = Entry {
                    tenant_id,
                    client_state,
                };
                (normal(&id), entry)
            })
            .collect();
        *self.write() = table;
    }

    /// Forgets `subscription_id`; whether it was known.
    pub fn remove(&self, subscription_id: &str) -> bool {
        self.write().remove(&normal(subscription_id)).is_some()
    }

    /// Accepts `client_state` from `tenant_id` for a subscription whose id is not known yet,
    /// until [`Self::remove_pending`]: call it before asking Graph for the subscription.
    pub fn insert_pending(&self, tenant_id: &str, client_state: ClientState) {
        let entry = Entry {
            tenant_id: tenant_id.to_string(),
            client_state,
        };
        self.pending
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry);
    }

    /// Stops accepting a pending secret (its create answered: it is now under its id, or
    /// failed); whether it was pending.
    pub fn remove_pending(&self, client_state: &ClientState) -> bool {
        let mut pending = self.pending.write().unwrap_or_else(PoisonError::into_inner);
        let before = pending.len();
        pending.retain(|e| e.client_state != *client_state);
        pending.len() != before
    }

    /// Subscriptions known by id (pending ones not counted).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a notification claiming `subscription_id` in `tenant_id` with `offered` as its
    /// `clientState` is from Graph: the subscription must be one of ours, in that tenant, and
    /// the secret must match.
    pub(crate) fn verify(
        &self,
        subscription_id: &str,
        tenant_id: &str,
        offered: Option<&str>,
    ) -> Result<(), Refusal> {
        let table = self.read();
        let Some(entry) = table.get(&normal(subscription_id)) else {
            return self.verify_pending(tenant_id, offered);
        };
        // Checked whatever the tenant says, so that the time taken tells nothing about which
        // part was wrong.
        let secret_ok =
            entry.client_state.matches(offered.unwrap_or_default()) && offered.is_some();
        if !secret_ok {
            return Err(Refusal::WrongClientState);
        }
        if !entry.tenant_id.eq_ignore_ascii_case(tenant_id.trim()) {
            return Err(Refusal::WrongTenant);
        }
        Ok(())
    }

    /// An id not known yet: accepted only with a pending secret of its tenant.
    fn verify_pending(&self, tenant_id: &str, offered: Option<&str>) -> Result<(), Refusal> {
        let Some(offered) = offered else {
            return Err(Refusal::UnknownSubscription);
        };
        let pending = self.pending.read().unwrap_or_else(PoisonError::into_inner);
        let known = pending.iter().any(|e| {
            e.client_state.matches(offered) && e.tenant_id.eq_ignore_ascii_case(tenant_id.trim())
        });
        if known {
            Ok(())
        } else {
            Err(Refusal::UnknownSubscription)
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        // The table holds plain data: a panic elsewhere cannot leave it half-written.
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SubscriptionSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionSecrets")
            .field("subscriptions", &self.len())
            .finish()
    }
}

/// Subscription ids are GUIDs; Graph may write them in either case.
fn normal(subscription_id: &str) -> String {
    subscription_id.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "7AC50E0F-4526-44BC-8E75-834C16143E5D";
    const TENANT: &str = "00000000-0000-0000-0000-000000000001";

    #[test]
    fn the_right_secret_for_a_known_subscription_passes() {
        let secrets = SubscriptionSecrets::new();
        let state = generate_client_state();
        secrets.insert(SUB, TENANT, state.clone());
        let lower = SUB.to_ascii_lowercase();
        assert_eq!(secrets.verify(&lower, TENANT, Some(state.expose())), Ok(()));
        assert_eq!(
            secrets.verify(SUB, &TENANT.to_uppercase(), Some(state.expose())),
            Ok(())
        );
    }

    #[test]
    fn wrong_missing_or_unknown_is_refused() {
        let secrets = SubscriptionSecrets::new();
        let state = generate_client_state();
        secrets.insert(SUB, TENANT, state.clone());
        let other = generate_client_state();
        assert_eq!(
            secrets.verify(SUB, TENANT, Some(other.expose())),
            Err(Refusal::WrongClientState)
        );
        assert_eq!(
            secrets.verify(SUB, TENANT, None),
            Err(Refusal::WrongClientState)
        );
        assert_eq!(
            secrets.verify(SUB, TENANT, Some(&state.expose()[..10])),
            Err(Refusal::WrongClientState)
        );
        assert_eq!(
            secrets.verify(SUB, "another-tenant", Some(state.expose())),
            Err(Refusal::WrongTenant)
        );
        assert_eq!(
            secrets.verify("unknown", TENANT, Some(state.expose())),
            Err(Refusal::UnknownSubscription)
        );
        assert!(secrets.remove(SUB));
        assert_eq!(
            secrets.verify(SUB, TENANT, Some(state.expose())),
            Err(Refusal::UnknownSubscription)
        );
    }

    #[test]
    fn a_pending_secret_vouches_for_an_id_not_known_yet() {
        let secrets = SubscriptionSecrets::new();
        let state = generate_client_state();
        secrets.insert_pending(TENANT, state.clone());
        assert_eq!(secrets.verify(SUB, TENANT, Some(state.expose())), Ok(()));
        assert_eq!(
            secrets.verify(SUB, "another-tenant", Some(state.expose())),
            Err(Refusal::UnknownSubscription)
        );
        let other = generate_client_state();
        assert_eq!(
            secrets.verify(SUB, TENANT, Some(other.expose())),
            Err(Refusal::UnknownSubscription)
        );
        assert!(secrets.is_empty());
        assert!(secrets.remove_pending(&state));
        assert!(!secrets.remove_pending(&state));
        assert_eq!(
            secrets.verify(SUB, TENANT, Some(state.expose())),
            Err(Refusal::UnknownSubscription)
        );
    }

    #[test]
    fn a_replaced_table_knows_only_the_new_entries() {
        let secrets = SubscriptionSecrets::new();
        let (old, new) = (generate_client_state(), generate_client_state());
        secrets.insert("old", TENANT, old.clone());
        secrets.replace_known([(SUB.to_string(), TENANT.to_string(), new.clone())]);
        assert_eq!(
            secrets.verify("old", TENANT, Some(old.expose())),
            Err(Refusal::UnknownSubscription)
        );
        assert_eq!(secrets.verify(SUB, TENANT, Some(new.expose())), Ok(()));
    }

    #[test]
    fn secrets_are_fresh_and_never_printed() {
        let a = generate_client_state();
        let b = generate_client_state();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert!(!format!("{a:?}").contains(a.expose()));
        let secrets = SubscriptionSecrets::new();
        secrets.insert(SUB, TENANT, a.clone());
        assert!(!format!("{secrets:?}").contains(a.expose()));
    }
}
