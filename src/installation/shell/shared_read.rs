//! One Graph read shared by every reconcile that needs the same answer: a short-lived,
//! single-flight cache.
//!
//! Graph's per-tenant budget is what bounds the operator at scale, so a read many reconciles
//! need (an app's catalog entry, a user's installed apps) is made once per key per `ttl`.
//! Concurrent misses for one key wait for a single read instead of each sending their own.
//! Failures are not cached: the next caller asks Graph again. A caller that must see a write
//! asks for a read started after it ([`SharedRead::get_since`]); that read then serves whoever
//! comes next.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

type Slot<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

/// A shorter time to serve the values a predicate picks.
type Shorter<V> = (Duration, fn(&V) -> bool);

pub struct SharedRead<K, V> {
    ttl: Duration,
    /// Values this predicate picks are served for at most the shorter time (see
    /// [`SharedRead::shorter_for`]).
    shorter: Option<Shorter<V>>,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> SharedRead<K, V> {
    /// `ttl` zero: no sharing, every lookup reads.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            shorter: None,
            slots: Mutex::default(),
        }
    }

    /// Values `pick` chooses (an answer that is expected to change soon) are served for at most
    /// `ttl` instead.
    pub fn shorter_for(mut self, ttl: Duration, pick: fn(&V) -> bool) -> Self {
        self.shorter = Some((ttl, pick));
        self
    }

    /// How long `value` may be served.
    fn ttl_of(&self, value: &V) -> Duration {
        match self.shorter {
            Some((short, pick)) if pick(value) => short.min(self.ttl),
            _ => self.ttl,
        }
    }

    /// The value for `key`, at most `ttl` old — or read afresh when `refresh` (someone asked
    /// for a re-check now).
    pub async fn get<E, F, Fut>(&self, key: &K, refresh: bool, read: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.get_since(key, refresh.then(Instant::now), read).await
    }

    /// The value for `key` from a read that started at `since` or later (a read that must see
    /// a write finished then), and at most `ttl` old.
    pub async fn get_since<E, F, Fut>(
        &self,
        key: &K,
        since: Option<Instant>,
        read: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.ttl.is_zero() {
            return read().await;
        }
        let slot = self.slot(key);
        // Held across the read: other reconciles of this key wait for its answer.
        let mut entry = slot.lock().await;
        if let Some((fetched, value)) = entry.as_ref()
            && since.is_none_or(|since| *fetched >= since)
            && fetched.elapsed() < self.ttl_of(value)
        {
            return Ok(value.clone());
        }
        // A value is as old as the moment its read started: what Graph answers reflects every
        // write finished before then, and its age counts from then.
        let started = Instant::now();
        let value = read().await?;
        *entry = Some((started, value.clone()));
        Ok(value)
    }

    fn slot(&self, key: &K) -> Slot<V> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // Keys come and go (users leave, apps are retired): drop stale entries as the map
        // grows, so memory follows what is in use, not everything ever seen.
        if slots.len() >= 1024 && slots.len().is_power_of_two() {
            let ttl = self.ttl;
            slots.retain(|_, slot| match slot.try_lock() {
                Ok(entry) => entry.as_ref().is_some_and(|(at, _)| at.elapsed() < ttl),
                Err(_) => true, // a read is under way
            });
        }
        slots.entry(key.clone()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_lookups_share_one_read_until_one_after_a_write_is_asked_for() {
        let reads = AtomicUsize::new(0);
        let cache: SharedRead<&str, usize> = SharedRead::new(Duration::from_secs(60));
        let read = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, ()>(reads.fetch_add(1, Ordering::SeqCst) + 1)
        };
        let lookups = (0..8).map(|_| cache.get(&"alice", false, read));
        for value in futures::future::join_all(lookups).await {
            assert_eq!(value, Ok(1));
        }
        assert_eq!(cache.get(&"alice", false, read).await, Ok(1));
        assert_eq!(
            cache.get(&"alice", true, read).await,
            Ok(2),
            "refresh reads"
        );
        let written = Instant::now();
        assert_eq!(
            cache.get_since(&"alice", Some(written), read).await,
            Ok(3),
            "a read after the write"
        );
        assert_eq!(
            cache.get_since(&"alice", Some(written), read).await,
            Ok(3),
            "which serves the next one that must see the write"
        );
        assert_eq!(cache.get(&"bob", false, read).await, Ok(4), "per key");
    }

    #[tokio::test]
    async fn failures_are_not_kept_and_zero_ttl_always_reads() {
        let cache: SharedRead<&str, u8> = SharedRead::new(Duration::from_secs(60));
        assert_eq!(
            cache.get(&"k", false, || async { Err("down") }).await,
            Err("down")
        );
        assert_eq!(
            cache.get(&"k", false, || async { Ok::<_, &str>(7) }).await,
            Ok(7)
        );

        let uncached: SharedRead<&str, u8> = SharedRead::new(Duration::ZERO);
        assert_eq!(
            uncached.get(&"k", false, || async { Ok::<_, ()>(1) }).await,
            Ok(1)
        );
        assert_eq!(
            uncached.get(&"k", false, || async { Ok::<_, ()>(2) }).await,
            Ok(2)
        );
    }

    #[tokio::test]
    async fn entries_older_than_the_ttl_are_read_again() {
        let cache: SharedRead<&str, u8> = SharedRead::new(Duration::from_millis(300));
        assert_eq!(
            cache.get(&"k", false, || async { Ok::<_, ()>(1) }).await,
            Ok(1)
        );
        assert_eq!(
            cache.get(&"k", false, || async { Ok::<_, ()>(2) }).await,
            Ok(1)
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            cache.get(&"k", false, || async { Ok::<_, ()>(3) }).await,
            Ok(3)
        );
    }

    #[tokio::test]
    async fn answers_picked_as_short_lived_are_read_again_sooner() {
        // "Not found" (0 here) is kept 200 ms; anything else the whole minute.
        let cache: SharedRead<&str, u8> = SharedRead::new(Duration::from_secs(60))
            .shorter_for(Duration::from_millis(200), |v| *v == 0);
        let answer = |v: u8| move || async move { Ok::<_, ()>(v) };
        assert_eq!(cache.get(&"missing", false, answer(0)).await, Ok(0));
        assert_eq!(cache.get(&"found", false, answer(1)).await, Ok(1));
        assert_eq!(cache.get(&"missing", false, answer(9)).await, Ok(0));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(cache.get(&"missing", false, answer(2)).await, Ok(2));
        assert_eq!(cache.get(&"found", false, answer(9)).await, Ok(1));
    }
}
