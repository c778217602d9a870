//! Read-after-write lag (`readLagMs`): Graph serves reads from replicas that trail the writes, so
//! a list right after an install may not show it yet. Modelled as: reads of a user's
//! installations see the state as of `now - lag`, i.e. the snapshot taken just before the oldest
//! write to that user that is younger than the lag. Writes always act on the true state.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::state::Install;

/// A write's time and the user's installations just before it.
type Write = (Instant, Vec<Install>);

/// Per (tenant, user object id), oldest first.
#[derive(Default)]
pub(crate) struct History {
    writes: HashMap<(String, String), VecDeque<Write>>,
}

fn key(tenant: &str, user_id: &str) -> (String, String) {
    (tenant.to_ascii_lowercase(), user_id.to_ascii_lowercase())
}

impl History {
    /// Remembers a write made at `now`; `before` is the user's installations just before it.
    pub fn record(
        &mut self,
        tenant: &str,
        user_id: &str,
        before: Vec<Install>,
        now: Instant,
        lag: Duration,
    ) {
        // Entries past the lag can never be visible again; drop them (and empty users) as we go.
        self.writes.retain(|_, w| {
            while w
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) >= lag)
            {
                w.pop_front();
            }
            !w.is_empty()
        });
        self.writes
            .entry(key(tenant, user_id))
            .or_default()
            .push_back((now, before));
    }

    /// The user's installations as a read at `now` sees them, when a write is still within the
    /// lag; `None` = the true state.
    pub fn visible(
        &self,
        tenant: &str,
        user_id: &str,
        now: Instant,
        lag: Duration,
    ) -> Option<&[Install]> {
        self.writes
            .get(&key(tenant, user_id))?
            .iter()
            .find(|(t, _)| now.duration_since(*t) < lag)
            .map(|(_, before)| before.as_slice())
    }

    pub fn clear(&mut self) {
        self.writes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(app: &str) -> Install {
        Install::new("u", app, "1.0.0".into(), None)
    }

    #[test]
    fn reads_see_the_state_before_the_oldest_write_within_the_lag() {
        let lag = Duration::from_millis(100);
        let t0 = Instant::now();
        let mut history = History::default();
        history.record("T", "U", vec![], t0, lag);
        history.record(
            "t",
            "u",
            vec![install("a")],
            t0 + Duration::from_millis(60),
            lag,
        );
        let at = |ms| {
            history
                .visible("t", "u", t0 + Duration::from_millis(ms), lag)
                .map(<[_]>::len)
        };
        assert_eq!(at(50), Some(0), "before both writes");
        assert_eq!(
            at(120),
            Some(1),
            "the first write has surfaced, the second not yet"
        );
        assert_eq!(at(160), None, "both surfaced: the true state");
        assert_eq!(history.visible("t", "other", t0, lag).map(<[_]>::len), None);
    }
}
