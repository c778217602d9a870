//! When to re-check a resource that is settled: on its user's slot in the interval.
//!
//! Each user gets a fixed phase in the interval (a stable hash of the user), and every resource
//! of that user re-checks on the same slots — so one shared read of the user's installed apps
//! serves them all — while users spread evenly over the interval: 10,000 resources on a 30m
//! interval cost a steady trickle of reads, never a burst at the top of the interval.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// How long from `now` until the user's next slot, at least half an interval away (so a
/// resource never re-checks twice in quick succession) and at most one and a half.
pub fn drift_delay(user: &str, interval: Duration, now: &Time) -> Duration {
    let period = period_ms(interval);
    let mut delay = until_slot(user, period, now);
    if delay < period / 2 {
        delay += period;
    }
    Duration::from_millis(delay)
}

/// How long from `now` until the user's next slot, however soon: at most one interval. For a
/// resource waiting on something outside the operator (a version the catalog does not show yet,
/// an admin's block), which must notice within one interval that it has gone.
pub fn next_slot(user: &str, interval: Duration, now: &Time) -> Duration {
    Duration::from_millis(until_slot(user, period_ms(interval), now))
}

fn period_ms(interval: Duration) -> u64 {
    u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Milliseconds from `now` to the user's next slot, in `1..=period`.
fn until_slot(user: &str, period: u64, now: &Time) -> u64 {
    let phase = stable_hash(&user.to_lowercase()) % period;
    let now_ms = u64::try_from(now.0.as_millisecond()).unwrap_or(0);
    let since_slot = (now_ms % period + period - phase) % period;
    period - since_slot
}

/// FNV-1a: stable across processes, versions and restarts (std's hasher promises none of that),
/// so a user keeps its slot when the operator restarts.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Time {
        Time(jiff::Timestamp::from_millisecond(1_800_000_000_000 + ms).expect("valid time"))
    }

    const INTERVAL: Duration = Duration::from_secs(1800);

    #[test]
    fn a_users_resources_share_slots_whenever_they_were_checked() {
        let slot = |now: i64| {
            at(now + drift_delay("alice@contoso.com", INTERVAL, &at(now)).as_millis() as i64)
        };
        // Checked at different moments, they meet on the same slot (or the one after).
        let slots: Vec<i64> = [0, 1_000, 7_000, 400_000]
            .into_iter()
            .map(|t| slot(t).0.as_millisecond() % INTERVAL.as_millis() as i64)
            .collect();
        assert!(slots.windows(2).all(|w| w[0] == w[1]), "{slots:?}");
        // Case does not matter in a UPN.
        assert_eq!(
            drift_delay("Alice@Contoso.com", INTERVAL, &at(5)),
            drift_delay("alice@contoso.com", INTERVAL, &at(5))
        );
    }

    #[test]
    fn the_delay_stays_between_half_and_one_and_a_half_intervals() {
        for t in (0..3_600_000).step_by(61_000) {
            let d = drift_delay("bob@contoso.com", INTERVAL, &at(t));
            assert!(d >= INTERVAL / 2 && d <= INTERVAL * 3 / 2, "{d:?} at {t}");
        }
    }

    #[test]
    fn a_waiting_resource_looks_again_within_one_interval_on_the_users_slot() {
        for t in (0..3_600_000).step_by(61_000) {
            let d = next_slot("bob@contoso.com", INTERVAL, &at(t));
            assert!(d > Duration::ZERO && d <= INTERVAL, "{d:?} at {t}");
            // The same slots as the drift checks of the user's other resources.
            let drift = drift_delay("bob@contoso.com", INTERVAL, &at(t));
            assert!(drift == d || drift == d + INTERVAL, "{drift:?} vs {d:?}");
        }
    }

    #[test]
    fn users_spread_evenly_over_the_interval() {
        let buckets = 10;
        let mut counts = vec![0usize; buckets];
        for i in 0..2_500 {
            let phase = stable_hash(&format!("user{i}@contoso.com")) % INTERVAL.as_millis() as u64;
            counts[(phase * buckets as u64 / INTERVAL.as_millis() as u64) as usize] += 1;
        }
        // 250 a bucket on average; no burst anywhere.
        assert!(counts.iter().all(|c| (200..=300).contains(c)), "{counts:?}");
    }
}
