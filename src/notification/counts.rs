//! What the receiver did, counted, and why it refused what it refused: the numbers behind
//! `teams_app_operator_notifications_received_total`, and the only trace of a refused
//! notification apart from a debug log line.

use std::sync::{Mutex, PoisonError};

/// Totals since the receiver started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Validation handshakes answered.
    pub validations: u64,
    /// Change notifications handed on.
    pub changes: u64,
    /// Lifecycle events handed on.
    pub lifecycle_events: u64,
    /// Of `changes`: rich notifications handed on without their resource data, for want of the
    /// key of their `encryptionCertificateId`.
    pub without_key: u64,
    pub unknown_subscription: u64,
    pub wrong_client_state: u64,
    pub wrong_tenant: u64,
    pub malformed: u64,
    pub bad_signature: u64,
    pub undecryptable: u64,
    /// Requests refused whole: a body that is not a notification collection (400).
    pub unreadable: u64,
    /// Requests refused whole: a body over the limit (413).
    pub too_large: u64,
    /// Requests refused whole because the operator's queue was full or gone, or (on a standby)
    /// the leader could not be reached (503): Graph sends them again.
    pub busy: u64,
    /// Notifications a standby sent on to the leader (which counts them again as it takes them).
    pub forwarded: u64,
}

impl Tally {
    /// The refusals for `reason`.
    pub fn refused(&self, reason: Refusal) -> u64 {
        match reason {
            Refusal::UnknownSubscription => self.unknown_subscription,
            Refusal::WrongClientState => self.wrong_client_state,
            Refusal::WrongTenant => self.wrong_tenant,
            Refusal::Malformed => self.malformed,
            Refusal::BadSignature => self.bad_signature,
            Refusal::Undecryptable => self.undecryptable,
        }
    }

    fn refused_mut(&mut self, reason: Refusal) -> &mut u64 {
        match reason {
            Refusal::UnknownSubscription => &mut self.unknown_subscription,
            Refusal::WrongClientState => &mut self.wrong_client_state,
            Refusal::WrongTenant => &mut self.wrong_tenant,
            Refusal::Malformed => &mut self.malformed,
            Refusal::BadSignature => &mut self.bad_signature,
            Refusal::Undecryptable => &mut self.undecryptable,
        }
    }
}

/// The receiver's running [`Tally`], shared with whoever reads it.
#[derive(Debug, Default)]
pub struct Counts {
    tally: Mutex<Tally>,
}

impl Counts {
    pub fn snapshot(&self) -> Tally {
        *self.lock()
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut Tally)) {
        change(&mut self.lock());
    }

    pub(crate) fn refuse(&self, reason: Refusal) {
        self.update(|t| *t.refused_mut(reason) += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why an item was not handed on. Every refusal is counted (see [`super::Tally`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of the subscriptions in [`super::SubscriptionSecrets`].
    UnknownSubscription,
    /// The `clientState` is missing or wrong.
    WrongClientState,
    /// The right secret, but another tenant than the subscription's.
    WrongTenant,
    /// Authenticated, but not a notification the receiver can read: no subscription id or
    /// tenant, an unknown change type or lifecycle event, a resource that names no installation.
    Malformed,
    /// The rich notification's `dataSignature` does not match its data.
    BadSignature,
    /// The rich notification does not decrypt, or decrypts to another installation than its
    /// `resource` names.
    Undecryptable,
}

impl Refusal {
    /// Whether the sender could not be shown to be Graph.
    pub fn is_authentication(self) -> bool {
        matches!(
            self,
            Refusal::UnknownSubscription | Refusal::WrongClientState | Refusal::WrongTenant
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownSubscription => "unknownSubscription",
            Refusal::WrongClientState => "wrongClientState",
            Refusal::WrongTenant => "wrongTenant",
            Refusal::Malformed => "malformed",
            Refusal::BadSignature => "badSignature",
            Refusal::Undecryptable => "undecryptable",
        }
    }
}
