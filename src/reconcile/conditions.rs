//! The kstatus conditions, in one place: their types, how a [`Verdict`] renders as conditions,
//! and how anyone (the controller, metrics, tests) reads them back.
//!
//! `Ready` is always written; `Reconciling` and `Stalled` only while true. Flux, Argo CD (with
//! our health check) and `kubectl wait --for=condition=Ready` all read these.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{TeamsAppInstallation, TeamsAppInstallationStatus};

use super::verdict::{Standing, Verdict};

/// True when the resource is up to date (or has nothing left to do) for its generation.
pub const READY: &str = "Ready";
/// Present (True) while the operator is working towards Ready.
pub const RECONCILING: &str = "Reconciling";
/// Present (True) when the operator cannot make progress without a person.
pub const STALLED: &str = "Stalled";

/// Condition messages are capped by the API (32 KiB); keep them short enough to read.
const MAX_MESSAGE_BYTES: usize = 1024;

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Ready=True for the current generation: the resource was up to date at the last check.
pub fn is_ready_for_generation(obj: &TeamsAppInstallation) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.observed_generation == obj.metadata.generation && is_true(&s.conditions, READY)
    })
}

/// The one state a resource is counted under in metrics, in kstatus order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceState {
    Stalled,
    Reconciling,
    Ready,
    NotReady,
    /// No `Ready` condition yet.
    Unknown,
}

impl ResourceState {
    pub const ALL: [ResourceState; 5] = [
        Self::Stalled,
        Self::Reconciling,
        Self::Ready,
        Self::NotReady,
        Self::Unknown,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stalled => "stalled",
            Self::Reconciling => "reconciling",
            Self::Ready => "ready",
            Self::NotReady => "not_ready",
            Self::Unknown => "unknown",
        }
    }

    pub fn of(obj: &TeamsAppInstallation) -> Self {
        Self::from_conditions(
            obj.status
                .as_ref()
                .map_or(&[][..], |s| s.conditions.as_slice()),
        )
    }

    /// The state kstatus conditions describe, for any of the operator's kinds.
    pub fn from_conditions(conditions: &[Condition]) -> Self {
        if is_true(conditions, STALLED) {
            Self::Stalled
        } else if is_true(conditions, RECONCILING) {
            Self::Reconciling
        } else if is_true(conditions, READY) {
            Self::Ready
        } else if find(conditions, READY).is_some() {
            Self::NotReady
        } else {
            Self::Unknown
        }
    }
}

/// The conditions for `verdict`. A condition whose status did not change keeps its previous
/// `lastTransitionTime`, so re-deciding the same thing writes nothing new.
pub fn render(
    verdict: &Verdict,
    generation: Option<i64>,
    previous: &[Condition],
    now: &Time,
) -> Vec<Condition> {
    render_conditions(
        verdict.standing,
        verdict.reason.as_str(),
        &verdict.message,
        generation,
        previous,
        now,
    )
}

/// The conditions for a standing with its reason and message, for any of the operator's kinds
/// (installations through [`render`], rollouts directly): the same kstatus rules for all.
pub fn render_conditions(
    standing: Standing,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    previous: &[Condition],
    now: &Time,
) -> Vec<Condition> {
    let ready = if standing == Standing::Ready {
        "True"
    } else {
        "False"
    };
    let mut wanted = vec![(READY, ready)];
    match standing {
        Standing::Progressing => wanted.push((RECONCILING, "True")),
        Standing::Stalled => wanted.push((STALLED, "True")),
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
                reason: reason.to_string(),
                message: truncate(message, MAX_MESSAGE_BYTES),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// Whether two statuses say the same, ignoring the order of conditions (the API server keeps
/// list-map order as applied, but another writer may have reordered them). The operator writes
/// a status only when it is not the same: every write is a watch event that wakes it again.
pub fn same_status(a: &TeamsAppInstallationStatus, b: &TeamsAppInstallationStatus) -> bool {
    let sorted = |cs: &[Condition]| {
        let mut cs = cs.to_vec();
        cs.sort_by(|x, y| x.type_.cmp(&y.type_));
        cs
    };
    let strip = |s: &TeamsAppInstallationStatus| TeamsAppInstallationStatus {
        conditions: Vec::new(),
        ..s.clone()
    };
    strip(a) == strip(b) && sorted(&a.conditions) == sorted(&b.conditions)
}

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
    use crate::reconcile::Reason;

    fn t(s: &str) -> Time {
        Time(s.parse().expect("valid timestamp in test"))
    }

    fn cond(t: &str) -> Condition {
        Condition {
            type_: t.into(),
            status: "True".into(),
            reason: "R".into(),
            message: "m".into(),
            observed_generation: Some(1),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn ready_has_only_the_ready_condition() {
        let cs = render(
            &Verdict::up_to_date(None),
            Some(3),
            &[],
            &t("2026-01-01T00:00:00Z"),
        );
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].status, "True");
        assert_eq!(cs[0].reason, "UpToDate");
        assert_eq!(cs[0].observed_generation, Some(3));
    }

    #[test]
    fn progressing_adds_reconciling_and_stalled_adds_stalled() {
        let now = t("2026-01-01T00:00:00Z");
        let p = render(
            &Verdict::progressing(Reason::Upgrading, "x".into()),
            None,
            &[],
            &now,
        );
        assert_eq!(find(&p, READY).map(|c| c.status.as_str()), Some("False"));
        assert!(is_true(&p, RECONCILING));
        assert!(find(&p, STALLED).is_none());
        let s = render(
            &Verdict::stalled(Reason::UserNotFound, "x".into()),
            None,
            &[],
            &now,
        );
        assert!(is_true(&s, STALLED));
        assert!(find(&s, RECONCILING).is_none());
        let i = render(
            &Verdict::idle(Reason::Suspended, "x".into()),
            None,
            &[],
            &now,
        );
        assert_eq!(i.len(), 1);
        let settled = render(
            &Verdict::settled(Reason::NotInstalled, "x".into()),
            None,
            &[],
            &now,
        );
        assert!(is_true(&settled, READY));
    }

    #[test]
    fn transition_time_moves_only_when_status_moves() {
        let first = render(
            &Verdict::progressing(Reason::Installing, "a".into()),
            Some(1),
            &[],
            &t("2026-01-01T00:00:00Z"),
        );
        // Same status, different reason: time kept.
        let second = render(
            &Verdict::progressing(Reason::Throttled, "b".into()),
            Some(1),
            &first,
            &t("2026-01-01T00:05:00Z"),
        );
        assert_eq!(
            find(&second, READY).map(|c| c.last_transition_time.clone()),
            Some(t("2026-01-01T00:00:00Z"))
        );
        // Status flips: time moves.
        let third = render(
            &Verdict::up_to_date(None),
            Some(1),
            &second,
            &t("2026-01-01T00:09:00Z"),
        );
        assert_eq!(
            find(&third, READY).map(|c| c.last_transition_time.clone()),
            Some(t("2026-01-01T00:09:00Z"))
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let cs = render(
            &Verdict::stalled(Reason::InvalidRequest, long),
            None,
            &[],
            &t("2026-01-01T00:00:00Z"),
        );
        assert!(cs[0].message.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
    }

    #[test]
    fn condition_order_does_not_matter() {
        let a = TeamsAppInstallationStatus {
            conditions: vec![cond(READY), cond(RECONCILING)],
            ..Default::default()
        };
        let b = TeamsAppInstallationStatus {
            conditions: vec![cond(RECONCILING), cond(READY)],
            ..Default::default()
        };
        assert!(same_status(&a, &b));
        let c = TeamsAppInstallationStatus {
            installed_version: Some("1.0".into()),
            ..a.clone()
        };
        assert!(!same_status(&a, &c));
    }

    #[test]
    fn resource_states_follow_kstatus_precedence() {
        let with = |conditions: Vec<Condition>| TeamsAppInstallation {
            status: Some(TeamsAppInstallationStatus {
                conditions,
                ..Default::default()
            }),
            ..TeamsAppInstallation::new(
                "x",
                serde_json::from_value(serde_json::json!({"user": "u", "app": {"id": "a"}}))
                    .expect("spec"),
            )
        };
        let mut not_ready = cond(READY);
        not_ready.status = "False".into();
        assert_eq!(
            ResourceState::of(&with(vec![not_ready.clone(), cond(STALLED)])),
            ResourceState::Stalled
        );
        assert_eq!(
            ResourceState::of(&with(vec![not_ready.clone(), cond(RECONCILING)])),
            ResourceState::Reconciling
        );
        assert_eq!(
            ResourceState::of(&with(vec![cond(READY)])),
            ResourceState::Ready
        );
        assert_eq!(
            ResourceState::of(&with(vec![not_ready])),
            ResourceState::NotReady
        );
        assert_eq!(ResourceState::of(&with(vec![])), ResourceState::Unknown);
    }
}
