//! A user the directory knows but Teams does not yet.
//!
//! A new account exists in Entra ID at once, but Teams provisions it on its own schedule
//! (minutes, sometimes hours); until then every `installedApps` call for the user answers 404
//! "User Id '…' not found.", the same status as for a user who does not exist. The shell asks the
//! directory (one `GET /users/{id}`, only after such a 404) to tell the two apart. A user Teams
//! has not provisioned is waited for — `Reconciling`, retried on a backoff that grows from one
//! to five minutes — for [`super::Timing::provisioning_timeout`] (24 h by default) counted from
//! when the resource stopped being Ready (or was first seen), then reported `Stalled`: by then
//! something other than Teams' pace is wrong (a licence without the Teams service, a user
//! excluded from Teams), and a person has to look. A Stalled resource is still re-checked at
//! its interval, so it recovers by itself if Teams catches up later.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::kit::conditions::{self, READY};

use super::verdict::{Reason, Verdict};

/// The first retry waits this long (or the resource's interval, when shorter)…
const FIRST_RETRY: Duration = Duration::from_secs(60);
/// …and the waits grow up to this (or the interval, when shorter).
const LONGEST_RETRY: Duration = Duration::from_secs(300);

/// Since when the resource has been waiting: the Ready condition's last transition while it is
/// False (the resource stopped being Ready, or its first status), else now.
pub fn waiting_since(previous: &[Condition], now: &Time) -> Time {
    conditions::find(previous, READY)
        .filter(|ready| ready.status == "False")
        .map_or_else(|| now.clone(), |ready| ready.last_transition_time.clone())
}

/// The verdict for a user Teams answered 404 for while the directory knows them, `waited` after
/// `since`.
pub fn verdict(user: &str, since: &Time, waited: Duration, timeout: Duration) -> Verdict {
    if waited < timeout {
        Verdict::progressing(
            Reason::UserNotProvisioned,
            format!(
                "the directory knows user {user} but Teams does not yet (new accounts take a while to be provisioned in Teams); retrying with backoff until {} after {}, then Stalled",
                humantime(timeout),
                since.0
            ),
        )
    } else {
        Verdict::stalled(
            Reason::UserNotProvisioned,
            format!(
                "the directory knows user {user} but Teams still does not, {} after {} (check the user's Teams licence and Teams settings); re-checked at the resource's interval",
                humantime(timeout),
                since.0
            ),
        )
    }
}

/// How long to wait before asking Teams again: a quarter of the time waited so far, between one
/// and five minutes — and never longer than the resource's interval (a short interval asks for
/// quicker checks).
pub fn retry_delay(waited: Duration, interval: Duration) -> Duration {
    let floor = FIRST_RETRY.min(interval);
    let ceiling = LONGEST_RETRY.min(interval);
    (waited / 4).clamp(floor, ceiling)
}

/// `90s` → `1m30s`; whole units only, for messages.
fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            text.push_str(&format!("{value}{unit}"));
        }
    }
    if text.is_empty() {
        text = format!("{}ms", d.as_millis());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::Standing;

    const MINUTE: Duration = Duration::from_secs(60);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + seconds).expect("valid time"))
    }

    fn ready(status: &str, since: i64) -> Vec<Condition> {
        vec![Condition {
            type_: READY.to_string(),
            status: status.to_string(),
            reason: "Installing".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: at(since),
        }]
    }

    #[test]
    fn the_wait_counts_from_when_the_resource_stopped_being_ready() {
        assert_eq!(waiting_since(&[], &at(50)), at(50), "first seen now");
        assert_eq!(waiting_since(&ready("False", 10), &at(50)), at(10));
        assert_eq!(
            waiting_since(&ready("True", 10), &at(50)),
            at(50),
            "it was Ready until now"
        );
    }

    #[test]
    fn reconciling_within_the_bound_then_stalled_saying_how_long() {
        let v = verdict("bob@contoso.com", &at(0), 23 * 60 * MINUTE, DAY);
        assert_eq!(
            (v.standing, v.reason),
            (Standing::Progressing, Reason::UserNotProvisioned)
        );
        assert!(v.message.contains("24h"), "{}", v.message);
        let v = verdict("bob@contoso.com", &at(0), DAY, DAY);
        assert_eq!(
            (v.standing, v.reason),
            (Standing::Stalled, Reason::UserNotProvisioned)
        );
        assert!(
            v.message.contains("24h after") && v.message.contains("bob@contoso.com"),
            "{}",
            v.message
        );
    }

    #[test]
    fn the_message_does_not_change_between_retries() {
        // A message that changed on each retry would be a status write on each retry.
        let a = verdict("bob", &at(0), MINUTE, DAY);
        let b = verdict("bob", &at(0), 90 * MINUTE, DAY);
        assert_eq!(a, b);
    }

    #[test]
    fn retries_back_off_from_one_to_five_minutes_within_the_interval() {
        let half_hour = 30 * MINUTE;
        assert_eq!(retry_delay(Duration::ZERO, half_hour), MINUTE);
        assert_eq!(retry_delay(8 * MINUTE, half_hour), 2 * MINUTE);
        assert_eq!(retry_delay(DAY, half_hour), 5 * MINUTE);
        // A short interval asks for more frequent checks: it is honoured, never exceeded.
        let short = Duration::from_secs(3);
        assert_eq!(retry_delay(Duration::ZERO, short), short);
        assert_eq!(retry_delay(DAY, short), short);
        assert_eq!(retry_delay(DAY, 2 * MINUTE), 2 * MINUTE);
    }
}
