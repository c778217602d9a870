//! Read-after-write lag: Graph serves reads from replicas that trail the writes, so a read right
//! after a change may not show it yet. Modelled once for everything that lags (a user's
//! installations under `readLagMs`, users and group memberships under `directoryLagMs`, catalog
//! apps under `catalogLagMs`): a read at `now` sees an object as of `now - lag`, i.e. the snapshot
//! taken just before the oldest change to that object that is younger than the lag. Writes always
//! act on the true state.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Per object key, the changes still within a lag, oldest first: when each was made and the
/// object just before it.
pub(crate) struct History<K, V> {
    changes: HashMap<K, VecDeque<(Instant, V)>>,
}

impl<K, V> Default for History<K, V> {
    fn default() -> Self {
        Self {
            changes: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash, V> History<K, V> {
    /// Remembers a change made at `now`; `before` is the object just before it.
    pub fn record(&mut self, key: K, before: V, now: Instant, lag: Duration) {
        // Entries past the lag can never be visible again; drop them (and empty keys) as we go.
        self.changes.retain(|_, c| {
            while c
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) >= lag)
            {
                c.pop_front();
            }
            !c.is_empty()
        });
        self.changes
            .entry(key)
            .or_default()
            .push_back((now, before));
    }

    /// The object as a read at `now` sees it, when a change is still within the lag; `None` =
    /// the true state.
    pub fn visible(&self, key: &K, now: Instant, lag: Duration) -> Option<&V> {
        self.changes
            .get(key)?
            .iter()
            .find(|(t, _)| now.duration_since(*t) < lag)
            .map(|(_, before)| before)
    }

    /// True when some change has not surfaced yet.
    pub fn pending(&self, now: Instant, lag: Duration) -> bool {
        self.changes
            .values()
            .flatten()
            .any(|(t, _)| now.duration_since(*t) < lag)
    }

    pub fn clear(&mut self) {
        self.changes.clear();
    }
}

/// Runs `change` on `state` and, while `lag` is on, remembers in the history `trail` picks out
/// what `snapshot` took of object `key` just before: the one way the admin API's changes lag.
pub(crate) fn tracked<S, K: Eq + Hash, V, T, E>(
    state: &mut S,
    key: K,
    (lag, now): (Duration, Instant),
    snapshot: impl FnOnce(&S) -> V,
    trail: impl FnOnce(&mut S) -> &mut History<K, V>,
    change: impl FnOnce(&mut S) -> Result<T, E>,
) -> Result<T, E> {
    let before = (!lag.is_zero()).then(|| snapshot(state));
    let changed = change(state)?;
    if let Some(before) = before {
        trail(state).record(key, before, now, lag);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_the_state_before_the_oldest_change_within_the_lag() {
        let lag = Duration::from_millis(100);
        let t0 = Instant::now();
        let mut history: History<&str, usize> = History::default();
        history.record("u", 0, t0, lag);
        history.record("u", 1, t0 + Duration::from_millis(60), lag);
        let at = |ms| {
            history
                .visible(&"u", t0 + Duration::from_millis(ms), lag)
                .copied()
        };
        assert_eq!(at(50), Some(0), "before both changes");
        assert_eq!(
            at(120),
            Some(1),
            "the first change has surfaced, the second not yet"
        );
        assert_eq!(at(160), None, "both surfaced: the true state");
        assert_eq!(history.visible(&"other", t0, lag), None);
        assert!(history.pending(t0 + Duration::from_millis(120), lag));
        assert!(!history.pending(t0 + Duration::from_millis(160), lag));
    }
}
