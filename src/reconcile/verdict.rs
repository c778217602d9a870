//! How a resource stands, and the kstatus conditions that say so.
//!
//! `Ready` is always written; `Reconciling` and `Stalled` only while true. Flux, Argo CD (with
//! our health check) and `kubectl wait --for=condition=Ready` all read these.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::version::AppVersion;

/// Machine-readable reasons, shown in `kubectl get tai` and used by alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    UpToDate,
    Installing,
    Upgrading,
    WaitingForCatalogVersion,
    Throttled,
    GraphUnavailable,
    AuthenticationFailed,
    UserNotFound,
    UserNotLicensed,
    AppNotFound,
    PermissionDenied,
    BlockedByPolicy,
    InvalidRequest,
    InvalidSpec,
    NotInstalled,
    Suspended,
    Uninstalling,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UpToDate => "UpToDate",
            Reason::Installing => "Installing",
            Reason::Upgrading => "Upgrading",
            Reason::WaitingForCatalogVersion => "WaitingForCatalogVersion",
            Reason::Throttled => "Throttled",
            Reason::GraphUnavailable => "GraphUnavailable",
            Reason::AuthenticationFailed => "AuthenticationFailed",
            Reason::UserNotFound => "UserNotFound",
            Reason::UserNotLicensed => "UserNotLicensed",
            Reason::AppNotFound => "AppNotFound",
            Reason::PermissionDenied => "PermissionDenied",
            Reason::BlockedByPolicy => "BlockedByPolicy",
            Reason::InvalidRequest => "InvalidRequest",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::NotInstalled => "NotInstalled",
            Reason::Suspended => "Suspended",
            Reason::Uninstalling => "Uninstalling",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three shapes a resource's conditions can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Ready=True.
    Ready,
    /// Ready=False, Reconciling=True: work is under way or waiting on something that will come.
    Progressing,
    /// Ready=False, Stalled=True: needs a human (bad spec, missing permission, unknown user).
    Stalled,
    /// Ready=False and nothing else: a first status while suspended (nothing was checked).
    Idle,
}

/// A standing with the reason and a human message (Graph code, status and request-id included
/// for Graph failures).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub standing: Standing,
    pub reason: Reason,
    pub message: String,
}

impl Verdict {
    pub fn up_to_date(installed: Option<&AppVersion>) -> Self {
        let message = match installed {
            Some(v) => format!("version {v} is installed"),
            None => "the app is installed".to_string(),
        };
        Self {
            standing: Standing::Ready,
            reason: Reason::UpToDate,
            message,
        }
    }

    /// Ready with a reason other than `UpToDate`: nothing is left to do, though the app may not
    /// be there (`installPolicy: Never` and not installed).
    pub fn settled(reason: Reason, message: String) -> Self {
        Self {
            standing: Standing::Ready,
            reason,
            message,
        }
    }

    pub fn progressing(reason: Reason, message: String) -> Self {
        Self {
            standing: Standing::Progressing,
            reason,
            message,
        }
    }

    pub fn stalled(reason: Reason, message: String) -> Self {
        Self {
            standing: Standing::Stalled,
            reason,
            message,
        }
    }

    pub fn idle(reason: Reason, message: String) -> Self {
        Self {
            standing: Standing::Idle,
            reason,
            message,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.standing == Standing::Ready
    }

    pub fn is_reconciling(&self) -> bool {
        self.standing == Standing::Progressing
    }

    pub fn is_stalled(&self) -> bool {
        self.standing == Standing::Stalled
    }

    /// The conditions for this verdict. A condition whose status did not change keeps its
    /// previous `lastTransitionTime`, so re-deciding the same thing writes nothing new.
    pub fn conditions(
        &self,
        generation: Option<i64>,
        previous: &[Condition],
        now: &Time,
    ) -> Vec<Condition> {
        let ready = if self.is_ready() { "True" } else { "False" };
        let mut wanted = vec![("Ready", ready)];
        match self.standing {
            Standing::Progressing => wanted.push(("Reconciling", "True")),
            Standing::Stalled => wanted.push(("Stalled", "True")),
            Standing::Ready | Standing::Idle => {}
        }
        wanted
            .into_iter()
            .map(|(type_, status)| {
                let since = previous
                    .iter()
                    .find(|c| c.type_ == type_ && c.status == status)
                    .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
                Condition {
                    type_: type_.to_string(),
                    status: status.to_string(),
                    reason: self.reason.to_string(),
                    message: truncate(&self.message, 1024),
                    observed_generation: generation,
                    last_transition_time: since,
                }
            })
            .collect()
    }
}

/// Condition messages are capped by the API (32 KiB); keep them short enough to read.
fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_string();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().expect("valid timestamp in test"))
    }

    fn find<'a>(cs: &'a [Condition], type_: &str) -> Option<&'a Condition> {
        cs.iter().find(|c| c.type_ == type_)
    }

    #[test]
    fn ready_has_only_the_ready_condition() {
        let cs = Verdict::up_to_date(None).conditions(Some(3), &[], &t("2026-01-01T00:00:00Z"));
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].status, "True");
        assert_eq!(cs[0].reason, "UpToDate");
        assert_eq!(cs[0].observed_generation, Some(3));
    }

    #[test]
    fn progressing_adds_reconciling_and_stalled_adds_stalled() {
        let now = t("2026-01-01T00:00:00Z");
        let p = Verdict::progressing(Reason::Upgrading, "x".into()).conditions(None, &[], &now);
        assert_eq!(find(&p, "Ready").map(|c| c.status.as_str()), Some("False"));
        assert_eq!(
            find(&p, "Reconciling").map(|c| c.status.as_str()),
            Some("True")
        );
        assert!(find(&p, "Stalled").is_none());
        let s = Verdict::stalled(Reason::UserNotFound, "x".into()).conditions(None, &[], &now);
        assert_eq!(find(&s, "Stalled").map(|c| c.status.as_str()), Some("True"));
        assert!(find(&s, "Reconciling").is_none());
        let i = Verdict::idle(Reason::NotInstalled, "x".into()).conditions(None, &[], &now);
        assert_eq!(i.len(), 1);
    }

    #[test]
    fn transition_time_moves_only_when_status_moves() {
        let first = Verdict::progressing(Reason::Installing, "a".into()).conditions(
            Some(1),
            &[],
            &t("2026-01-01T00:00:00Z"),
        );
        // Same status, different reason: time kept.
        let second = Verdict::progressing(Reason::Throttled, "b".into()).conditions(
            Some(1),
            &first,
            &t("2026-01-01T00:05:00Z"),
        );
        assert_eq!(
            find(&second, "Ready").map(|c| c.last_transition_time.clone()),
            Some(t("2026-01-01T00:00:00Z"))
        );
        // Status flips: time moves.
        let third =
            Verdict::up_to_date(None).conditions(Some(1), &second, &t("2026-01-01T00:09:00Z"));
        assert_eq!(
            find(&third, "Ready").map(|c| c.last_transition_time.clone()),
            Some(t("2026-01-01T00:09:00Z"))
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let cs = Verdict::stalled(Reason::InvalidRequest, long).conditions(
            None,
            &[],
            &t("2026-01-01T00:00:00Z"),
        );
        assert!(cs[0].message.len() <= 1024 + '…'.len_utf8());
    }
}
