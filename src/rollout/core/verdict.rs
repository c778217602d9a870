//! A rollout's reasons.

use crate::kit::verdict::reasons;

reasons! {
    /// Machine-readable reasons of a rollout's conditions, shown in `kubectl get tar`.
    pub enum Reason {
        /// The spec holds something the CRD refuses today: the object was stored before the
        /// rule existed (see `validate_spec`). The message names the field.
        InvalidSpec,
        /// A group or user of the audience does not exist.
        AudienceNotFound,
        /// Graph refused a directory read, or returned users without their properties.
        PermissionDenied,
        /// Graph refused the directory request itself (Stalled), or its page token kept
        /// expiring (Reconciling: retried).
        AudienceUnreadable,
        /// A transient Graph failure while reading the audience.
        GraphUnavailable,
        /// Graph throttled the audience read (429); retried after its `Retry-After`.
        Throttled,
        /// The operator could not sign in (the token endpoint failed or refused its
        /// credential), or Graph refused its token.
        AuthenticationFailed,
        /// More installations of a wave are Stalled than `maxFailures` allows.
        FailureBudgetExceeded,
        /// More users would leave at once than `removalLimit` allows: removals are held.
        RemovalLimitExceeded,
        Paused,
        RolloutComplete,
        WaveInProgress,
        /// The current wave is complete and waits out its `bakeTime`.
        Baking,
        /// The connection `spec.connectionRef` names does not exist (or the operator's own is
        /// turned off).
        ConnectionNotFound,
        /// The connection does not serve this namespace, app or one of the audience's groups.
        ConnectionNotAllowed,
        /// The connection is not Ready yet.
        ConnectionNotReady,
        /// `managementPolicy: Observe`: nothing is written to Graph; `status.plan` says what
        /// `Manage` would do (Ready=True, so GitOps syncs do not hang).
        Observed,
        /// `spec.approvedPlanRevision` is not the current plan's revision (the catalog, the
        /// audience or the spec moved since the review): nothing is written.
        PlanChanged,
        /// The latest version needs application RSC permissions `spec.consent` does not
        /// cover: no new wave starts until they are consented.
        ConsentRequired,
    }
}

/// A rollout's verdict.
pub type Verdict = crate::kit::Verdict<Reason>;
