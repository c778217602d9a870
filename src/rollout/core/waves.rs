//! Which wave a user is in: a stable hash of the user's object id places every user on a line
//! `0..=u64::MAX`; each wave covers the line up to its cumulative share. A user's place never
//! depends on who else is in the audience, so `percent` waves never reshuffle anyone; `count`
//! waves move their bound as the audience changes, and a user who already has an installation
//! keeps the wave it was created in (its label).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::Wave;

/// The user's place on the line: FNV-1a of the lowercase object id, then a finaliser so that
/// ids differing in their last characters spread over the whole line.
pub fn position(user_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user_id.bytes().map(|b| b.to_ascii_lowercase()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finaliser.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Each wave's inclusive upper bound on the line, non-decreasing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveBounds(Vec<u64>);

impl WaveBounds {
    /// `sorted_positions`: the eligible users' positions, ascending (for `count` waves).
    pub fn new(waves: &[Wave], sorted_positions: &[u64]) -> Self {
        let mut bounds = Vec::with_capacity(waves.len());
        let mut floor = 0u64;
        for (i, wave) in waves.iter().enumerate() {
            let bound = match (wave.percent, wave.count) {
                (Some(percent), _) => percent_bound(percent),
                (None, Some(count)) => {
                    match usize::try_from(count).ok().and_then(|c| c.checked_sub(1)) {
                        Some(last) if last < sorted_positions.len() => sorted_positions[last],
                        // More than there are users: everyone, now and later.
                        _ => u64::MAX,
                    }
                }
                (None, None) => u64::MAX,
            };
            // Cumulative: a wave never covers less than the one before it.
            let bound = if i == 0 { bound } else { bound.max(floor) };
            floor = bound;
            bounds.push(bound);
        }
        Self(bounds)
    }

    /// The index of the first wave covering `position`; `None` past the last wave (a last
    /// wave below 100% holds the rest back).
    pub fn wave_of(&self, position: u64) -> Option<usize> {
        self.0.iter().position(|&bound| position <= bound)
    }
}

fn percent_bound(percent: u32) -> u64 {
    if percent >= 100 {
        return u64::MAX;
    }
    // percent/100 of the line, minus one: 50% covers exactly the lower half.
    let share = (u128::from(u64::MAX) + 1) * u128::from(percent) / 100;
    u64::try_from(share.saturating_sub(1)).unwrap_or(u64::MAX)
}

/// How many Stalled installations a wave of `users` tolerates.
pub fn failure_budget(max_failures: Option<&IntOrString>, users: u32) -> u32 {
    match max_failures {
        None => 0,
        Some(IntOrString::Int(n)) => u32::try_from(*n).unwrap_or(0),
        Some(IntOrString::String(s)) => {
            let percent: u64 = s.trim_end_matches('%').parse().unwrap_or(0);
            u32::try_from(u64::from(users) * percent.min(100) / 100).unwrap_or(u32::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(name: &str, percent: Option<u32>, count: Option<u32>) -> Wave {
        Wave {
            name: name.into(),
            percent,
            count,
            bake_time: None,
        }
    }

    #[test]
    fn positions_spread_evenly_and_ignore_case() {
        assert_eq!(
            position("AAAAAAAA-0000-0000-0000-000000000001"),
            position("aaaaaaaa-0000-0000-0000-000000000001")
        );
        let bounds = WaveBounds::new(
            &[wave("a", Some(10), None), wave("b", Some(100), None)],
            &[],
        );
        let first = (0..10_000)
            .map(|i| format!("22222222-2222-2222-2222-{i:012}"))
            .filter(|id| bounds.wave_of(position(id)) == Some(0))
            .count();
        assert!(
            (850..1150).contains(&first),
            "10% wave got {first} of 10000"
        );
    }

    #[test]
    fn count_waves_follow_the_sorted_audience_and_shares_are_cumulative() {
        let positions = [10, 20, 30, 40];
        let bounds = WaveBounds::new(
            &[
                wave("a", None, Some(1)),
                wave("b", None, Some(3)),
                wave("c", Some(100), None),
            ],
            &positions,
        );
        let waves: Vec<_> = [5, 10, 11, 30, 31, 40].map(|p| bounds.wave_of(p)).to_vec();
        assert_eq!(
            waves,
            [Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)]
        );
        // A last wave below 100% holds the rest back.
        let partial = WaveBounds::new(&[wave("a", Some(50), None)], &[]);
        assert_eq!(partial.wave_of(u64::MAX), None);
        assert_eq!(partial.wave_of(0), Some(0));
    }

    #[test]
    fn budgets_read_counts_and_percentages() {
        assert_eq!(failure_budget(None, 50), 0);
        assert_eq!(failure_budget(Some(&IntOrString::Int(3)), 50), 3);
        assert_eq!(
            failure_budget(Some(&IntOrString::String("10%".into())), 55),
            5
        );
    }
}
