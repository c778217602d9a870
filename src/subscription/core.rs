//! The subscription manager's decisions, pure: what is wanted and what is held → the Graph
//! calls to make, and each subscription's health. No I/O and no clock: `now` comes in.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::backoff::Backoff;

/// One subscription's place: a connection and a catalog app. The manager keeps at most one
/// subscription per slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot<K> {
    pub key: K,
    pub teams_app_id: String,
}

/// A slot that should have a subscription, in the tenant its connection signs in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want<K> {
    pub slot: Slot<K>,
    pub tenant_id: String,
}

/// A subscription Graph granted: its id, when it was granted (created or renewed) and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub id: String,
    pub granted: Timestamp,
    pub expiration: Timestamp,
}

/// What a lifecycle event (or a renewal's 404) asked for, done by the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// `reauthorizationRequired`: renew now, whatever the expiry.
    Renew,
    /// `subscriptionRemoved`, or a renewal answered 404: Graph no longer has it.
    Recreate,
}

/// The last attempt failed: since when (the first of the run), why, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub since: Timestamp,
    pub message: String,
    pub attempts: u32,
    pub retry_at: Timestamp,
}

/// What the manager holds of one slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tracked {
    /// The tenant the subscription lives in (a connection moved to another tenant needs a new
    /// one there).
    pub tenant_id: String,
    pub live: Option<Live>,
    pub asked: Option<Asked>,
    pub failure: Option<Failure>,
    pub last_notification: Option<Timestamp>,
}

/// How a subscription stands, for status and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Graph holds it and nothing is overdue: notifications can be relied on.
    Healthy,
    /// The last create, renewal or delete failed; retried with backoff.
    Failing { since: Timestamp, message: String },
    /// None is held (not created yet, expired, or removed by Graph and not yet recreated).
    Missing,
}

/// One Graph call (or two) to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<K> {
    /// The slot has never had a subscription, or its create failed.
    Create { slot: Slot<K>, tenant_id: String },
    /// Less than a third of the granted lifetime is left, or Graph asked for reauthorization.
    Renew { slot: Slot<K>, id: String },
    /// Graph no longer has the subscription (removed, expired, renewal 404), or it is in
    /// another tenant than the connection now signs in to: delete `old` (when Graph may still
    /// have it) and create a new one.
    Recreate {
        slot: Slot<K>,
        tenant_id: String,
        old: Option<String>,
    },
    /// The slot is no longer wanted: delete its subscription (`id`, when one is held) and
    /// forget it.
    Delete { slot: Slot<K>, id: Option<String> },
}

impl Tracked {
    pub fn new(tenant_id: &str) -> Self {
        Self {
            tenant_id: tenant_id.to_string(),
            ..Self::default()
        }
    }

    pub fn health(&self, now: Timestamp) -> Health {
        if let Some(f) = &self.failure {
            return Health::Failing {
                since: f.since,
                message: f.message.clone(),
            };
        }
        match &self.live {
            Some(live) if live.expiration > now && self.asked != Some(Asked::Recreate) => {
                Health::Healthy
            }
            _ => Health::Missing,
        }
    }

    /// The id Graph knows this slot's subscription by, while it has it.
    pub fn id(&self) -> Option<&str> {
        self.live.as_ref().map(|l| l.id.as_str())
    }

    /// A create or renewal succeeded.
    pub fn granted(&mut self, id: &str, expiration: Timestamp, now: Timestamp) {
        self.live = Some(Live {
            id: id.to_string(),
            granted: now,
            expiration,
        });
        self.asked = None;
        self.failure = None;
    }

    /// Graph no longer has the subscription: the next step creates one.
    pub fn removed(&mut self) {
        self.live = None;
        self.asked = Some(Asked::Recreate);
    }

    /// An attempt failed: keep the first failure's time, count, and wait
    /// `backoff.ceiling(attempts)` before the next one.
    pub fn failed(&mut self, message: String, now: Timestamp, backoff: &Backoff) {
        let (since, attempts) = match &self.failure {
            Some(f) => (f.since, f.attempts.saturating_add(1)),
            None => (now, 1),
        };
        self.failure = Some(Failure {
            since,
            message,
            attempts,
            retry_at: later(now, backoff.ceiling(attempts)),
        });
    }

    /// Whether a failed attempt's backoff still holds the next one back.
    fn backing_off(&self, now: Timestamp) -> bool {
        self.failure.as_ref().is_some_and(|f| f.retry_at > now)
    }
}

/// Whether less than a third of the lifetime Graph granted is left. A third of Graph's 3 days
/// is a day of margin for renewals that fail; measured on what was granted, not asked, since
/// Graph may grant less.
pub fn renewal_due(live: &Live, now: Timestamp) -> bool {
    let lifetime = live.expiration.duration_since(live.granted);
    let left = live.expiration.duration_since(now);
    left.checked_mul(3)
        .is_none_or(|three_left| three_left < lifetime)
}

/// The expiry to ask for, `lifetime` from `now`.
pub fn expiry(now: Timestamp, lifetime: Duration) -> Timestamp {
    later(now, lifetime)
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    SignedDuration::try_from(by)
        .ok()
        .and_then(|by| now.checked_add(by).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The steps that bring `tracked` to `wanted`, in slot order of `wanted` then the unwanted.
/// A slot whose last attempt failed waits out its backoff.
pub fn plan<K: Clone + Eq + Hash>(
    wanted: &[Want<K>],
    tracked: &HashMap<Slot<K>, Tracked>,
    now: Timestamp,
) -> Vec<Step<K>> {
    // A slot named twice is one subscription: the first naming counts.
    let mut seen = HashSet::new();
    let mut steps: Vec<Step<K>> = wanted
        .iter()
        .filter(|want| seen.insert(&want.slot))
        .filter_map(|want| step_for(want, tracked.get(&want.slot), now))
        .collect();
    for (slot, held) in tracked {
        if wanted.iter().any(|w| w.slot == *slot) {
            continue;
        }
        // An expired subscription is gone from Graph: forgetting it needs no call, and no
        // failed delete holds that back.
        let id = held
            .live
            .as_ref()
            .filter(|live| live.expiration > now)
            .map(|live| live.id.clone());
        if id.is_none() || !held.backing_off(now) {
            steps.push(Step::Delete {
                slot: slot.clone(),
                id,
            });
        }
    }
    steps
}

fn step_for<K: Clone>(want: &Want<K>, held: Option<&Tracked>, now: Timestamp) -> Option<Step<K>> {
    let slot = want.slot.clone();
    let tenant_id = want.tenant_id.clone();
    let Some(held) = held else {
        return Some(Step::Create { slot, tenant_id });
    };
    if held.backing_off(now) {
        return None;
    }
    let Some(live) = &held.live else {
        return Some(match held.asked {
            Some(Asked::Recreate) => Step::Recreate {
                slot,
                tenant_id,
                old: None,
            },
            _ => Step::Create { slot, tenant_id },
        });
    };
    if !held.tenant_id.eq_ignore_ascii_case(&want.tenant_id) {
        let old = Some(live.id.clone());
        return Some(Step::Recreate {
            slot,
            tenant_id,
            old,
        });
    }
    if live.expiration <= now {
        // Graph has dropped it; there is nothing left to renew or delete.
        return Some(Step::Recreate {
            slot,
            tenant_id,
            old: None,
        });
    }
    let asked_renewal = held.asked == Some(Asked::Renew);
    (asked_renewal || renewal_due(live, now)).then(|| Step::Renew {
        slot,
        id: live.id.clone(),
    })
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
