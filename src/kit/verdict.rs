//! How a resource stands, for any kind: a [`Standing`], a machine-readable reason of the kind's
//! own [`reasons!`] enum, and a message for people; rendered as kstatus conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::conditions::{Standing, keep_messages, render_conditions};

/// A kind's condition reasons: an enum whose variants are the reasons, spelled as shown in
/// `kubectl get` (each kind declares its own with [`reasons!`]).
pub trait ReasonCode: Copy + std::fmt::Debug + PartialEq {
    fn as_str(self) -> &'static str;
}

/// Declares a kind's reason enum: each variant's name is the reason as written in conditions
/// and Events, so the two can never drift apart.
macro_rules! reasons {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $crate::kit::verdict::ReasonCode for $name {
            fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant)),+
                }
            }
        }

        impl $name {
            /// The reason as conditions and Events spell it.
            pub fn as_str(self) -> &'static str {
                $crate::kit::verdict::ReasonCode::as_str(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use reasons;

/// A standing with the reason and a human message (Graph code, status and request-id included
/// for Graph failures).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<R> {
    pub standing: Standing,
    pub reason: R,
    pub message: String,
    /// A failed attempt that will be retried ([`Verdict::retried`]): its message names that
    /// attempt (Graph's request-id), so every retry's would differ.
    pub retried: bool,
}

impl<R: ReasonCode> Verdict<R> {
    /// Ready=True with a reason: up to date, or nothing left to do.
    pub fn settled(reason: R, message: String) -> Self {
        Self::new(Standing::Ready, reason, message)
    }

    /// Work under way, or waiting on something that will come.
    pub fn progressing(reason: R, message: String) -> Self {
        Self::new(Standing::Progressing, reason, message)
    }

    /// Needs a person.
    pub fn stalled(reason: R, message: String) -> Self {
        Self::new(Standing::Stalled, reason, message)
    }

    /// Neither ready nor working (a first status while suspended or paused).
    pub fn idle(reason: R, message: String) -> Self {
        Self::new(Standing::Idle, reason, message)
    }

    pub fn new(standing: Standing, reason: R, message: String) -> Self {
        Self {
            standing,
            reason,
            message,
            retried: false,
        }
    }

    /// Marks the verdict as the report of a failed attempt that will be retried. While the
    /// stored conditions already say the same standing and reason, they keep their message (the
    /// first failure of the streak): one status write per change of reason, not one per retry —
    /// each write is a watch event, and a resource failing for minutes would write every few
    /// seconds only to change a request-id.
    pub fn retried(mut self) -> Self {
        self.retried = true;
        self
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

    /// The conditions for this verdict (see [`render_conditions`]).
    pub fn conditions(
        &self,
        generation: Option<i64>,
        previous: &[Condition],
        now: &Time,
    ) -> Vec<Condition> {
        let rendered = render_conditions(
            self.standing,
            self.reason.as_str(),
            &self.message,
            generation,
            previous,
            now,
        );
        if self.retried {
            keep_messages(rendered, previous)
        } else {
            rendered
        }
    }
}
