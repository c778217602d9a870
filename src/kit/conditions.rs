//! The kstatus conditions, in one place for every kind: their types, how a [`Standing`] renders
//! as conditions, whether two statuses say the same, and how anyone (the controllers, metrics,
//! tests) reads them back.
//!
//! `Ready` is always written; `Reconciling` and `Stalled` only while true. Flux, Argo CD (with
//! our health check) and `kubectl wait --for=condition=Ready` all read these. Like Flux's
//! `conditions.Getter`, everything here works on any kind that is [`Conditioned`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Resource;

/// True when the resource is up to date (or has nothing left to do) for its generation.
pub const READY: &str = "Ready";
/// Present (True) while the operator is working towards Ready.
pub const RECONCILING: &str = "Reconciling";
/// Present (True) when the operator cannot make progress without a person.
pub const STALLED: &str = "Stalled";

/// Condition messages are capped by the API (32 KiB); keep them short enough to read.
const MAX_MESSAGE_BYTES: usize = 1024;

/// A kind's status: it carries kstatus conditions and the generation they describe.
pub trait KindStatus: Clone + PartialEq + serde::Serialize + Send + Sync {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    fn observed_generation(&self) -> Option<i64>;
}

/// A kind whose status carries kstatus conditions (Flux's `conditions.Getter`): the conditions
/// helpers, the kstatus state, the status writer and the state gauge work on any of them.
pub trait Conditioned: Resource<DynamicType = ()> {
    type Status: KindStatus;

    fn status(&self) -> Option<&Self::Status>;

    /// The conditions of the last status (none before the first).
    fn conditions(&self) -> &[Condition] {
        self.status().map_or(&[][..], KindStatus::conditions)
    }

    /// Whether the last status describes the current generation.
    fn status_is_current(&self) -> bool {
        self.status()
            .is_some_and(|s| s.observed_generation() == self.meta().generation)
    }
}

/// Makes `$kind` (with status type `$status`, whose `conditions` and `observed_generation`
/// fields follow kstatus) [`Conditioned`].
macro_rules! conditioned {
    // A second kind with a status type another kind already declared.
    ($kind:ty, shares $status:ty) => {
        impl $crate::kit::Conditioned for $kind {
            type Status = $status;

            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
        }
    };
    ($kind:ty, $status:ty) => {
        impl $crate::kit::KindStatus for $status {
            fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
                &self.conditions
            }

            fn conditions_mut(
                &mut self,
            ) -> &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
                &mut self.conditions
            }

            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
        }

        impl $crate::kit::Conditioned for $kind {
            type Status = $status;

            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
        }
    };
}
pub(crate) use conditioned;

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Ready=True for the current generation: the resource was up to date at the last check.
pub fn is_ready_for_generation<K: Conditioned>(obj: &K) -> bool {
    obj.status_is_current() && is_true(obj.conditions(), READY)
}

/// Stalled=True for the current generation: the resource needs a person.
pub fn is_stalled_for_generation<K: Conditioned>(obj: &K) -> bool {
    obj.status_is_current() && is_true(obj.conditions(), STALLED)
}

/// The three shapes a resource's conditions can take (and a fourth for a first status that
/// checked nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Ready=True.
    Ready,
    /// Ready=False, Reconciling=True: work is under way or waiting on something that will come.
    Progressing,
    /// Ready=False, Stalled=True: needs a human (bad spec, missing permission, unknown user).
    Stalled,
    /// Ready=False and nothing else: a first status while suspended or paused.
    Idle,
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

    /// The state of any conditioned object.
    pub fn of<K: Conditioned>(obj: &K) -> Self {
        Self::from_conditions(obj.conditions())
    }

    /// The state kstatus conditions describe.
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

/// The conditions for a standing with its reason and message: the same kstatus rules for every
/// kind. A condition whose status did not change keeps its previous `lastTransitionTime`, so
/// re-deciding the same thing writes nothing new.
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

/// `rendered` with the messages of `previous` wherever a condition of the same type already has
/// the same status and reason (its `lastTransitionTime` is kept already): for a verdict that
/// reports a retried failure (see [`super::verdict::Verdict::retried`]).
pub fn keep_messages(mut rendered: Vec<Condition>, previous: &[Condition]) -> Vec<Condition> {
    for condition in &mut rendered {
        if let Some(old) = previous.iter().find(|old| {
            old.type_ == condition.type_
                && old.status == condition.status
                && old.reason == condition.reason
        }) {
            condition.message.clone_from(&old.message);
        }
    }
    rendered
}

/// Whether two statuses say the same, ignoring the order of conditions (the API server keeps
/// list-map order as applied, but another writer may have reordered them). The operator writes
/// a status only when it is not the same: every write is a watch event that wakes it again.
pub fn same_status<S: KindStatus>(a: &S, b: &S) -> bool {
    let sorted = |s: &S| {
        let mut s = s.clone();
        s.conditions_mut().sort_by(|x, y| x.type_.cmp(&y.type_));
        s
    };
    sorted(a) == sorted(b)
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
    use crate::api::{TeamsAppInstallation, TeamsAppInstallationStatus};

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

    fn render(
        standing: Standing,
        reason: &str,
        previous: &[Condition],
        now: &str,
    ) -> Vec<Condition> {
        render_conditions(standing, reason, "x", Some(3), previous, &t(now))
    }

    #[test]
    fn ready_has_only_the_ready_condition() {
        let cs = render(Standing::Ready, "UpToDate", &[], "2026-01-01T00:00:00Z");
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].status, "True");
        assert_eq!(cs[0].reason, "UpToDate");
        assert_eq!(cs[0].observed_generation, Some(3));
    }

    #[test]
    fn progressing_adds_reconciling_and_stalled_adds_stalled() {
        let now = "2026-01-01T00:00:00Z";
        let p = render(Standing::Progressing, "Upgrading", &[], now);
        assert_eq!(find(&p, READY).map(|c| c.status.as_str()), Some("False"));
        assert!(is_true(&p, RECONCILING));
        assert!(find(&p, STALLED).is_none());
        let s = render(Standing::Stalled, "UserNotFound", &[], now);
        assert!(is_true(&s, STALLED));
        assert!(find(&s, RECONCILING).is_none());
        let i = render(Standing::Idle, "Suspended", &[], now);
        assert_eq!(i.len(), 1);
        assert!(!is_true(&i, READY));
    }

    #[test]
    fn transition_time_moves_only_when_status_moves() {
        let first = render(
            Standing::Progressing,
            "Installing",
            &[],
            "2026-01-01T00:00:00Z",
        );
        // Same status, different reason: time kept.
        let second = render(
            Standing::Progressing,
            "Throttled",
            &first,
            "2026-01-01T00:05:00Z",
        );
        assert_eq!(
            find(&second, READY).map(|c| c.last_transition_time.clone()),
            Some(t("2026-01-01T00:00:00Z"))
        );
        // Status flips: time moves.
        let third = render(Standing::Ready, "UpToDate", &second, "2026-01-01T00:09:00Z");
        assert_eq!(
            find(&third, READY).map(|c| c.last_transition_time.clone()),
            Some(t("2026-01-01T00:09:00Z"))
        );
    }

    #[test]
    fn kept_messages_are_those_of_conditions_that_say_the_same() {
        let first = render_conditions(
            Standing::Progressing,
            "Throttled",
            "request-id 1",
            Some(3),
            &[],
            &t("2026-01-01T00:00:00Z"),
        );
        let retry = |reason: &str| {
            let rendered = render_conditions(
                Standing::Progressing,
                reason,
                "request-id 2",
                Some(3),
                &first,
                &t("2026-01-01T00:01:00Z"),
            );
            keep_messages(rendered, &first)
        };
        assert_eq!(retry("Throttled"), first, "nothing changed but the attempt");
        let moved = retry("GraphUnavailable");
        assert!(moved.iter().all(|c| c.message == "request-id 2"));
        assert_eq!(
            find(&moved, READY).map(|c| c.last_transition_time.clone()),
            Some(t("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let cs = render_conditions(
            Standing::Stalled,
            "R",
            &long,
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
