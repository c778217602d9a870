//! An installation's reasons, and the verdict for an app that is up to date.

use crate::kit::Standing;
use crate::kit::verdict::reasons;
use crate::version::AppVersion;

reasons! {
    /// Machine-readable reasons, shown in `kubectl get tai` and used by alerting.
    pub enum Reason {
        UpToDate,
        Installing,
        Upgrading,
        WaitingForCatalogVersion,
        Throttled,
        GraphUnavailable,
        AuthenticationFailed,
        UserNotFound,
        /// The directory knows the user but Teams does not yet (new accounts take a while to
        /// be provisioned in Teams): retried with backoff, then Stalled after a bound.
        UserNotProvisioned,
        UserNotLicensed,
        AppNotFound,
        PermissionDenied,
        BlockedByPolicy,
        InvalidRequest,
        InvalidSpec,
        NotInstalled,
        Suspended,
        Uninstalling,
        /// Another resource owns this user's installation of the app: this one only reads.
        DuplicateInstallation,
        /// The connection `spec.connectionRef` names does not exist (or the operator's own is
        /// turned off).
        ConnectionNotFound,
        /// The connection does not serve this namespace or app (the message names the rule),
        /// or it reaches another tenant than the one the app was installed in.
        ConnectionNotAllowed,
        /// The connection is not Ready yet.
        ConnectionNotReady,
        /// `managementPolicy: Observe`: nothing is written; `status.plan` says what would be.
        Observed,
        /// `ensure: Absent` and the app is not installed for the user.
        Absent,
        /// The version to install or upgrade to requires RSC application permissions that
        /// `spec.consent` does not cover (the message names them): nothing is written.
        ConsentRequired,
        /// The tenant turned resource-specific consent in personal scope off
        /// (`isUserPersonalScopeResourceSpecificConsentEnabled`), and the app needs it.
        ConsentDisabled,
        /// A Teams app setup policy installed the app: Graph refuses to uninstall it.
        ManagedByPolicy,
    }
}

/// An installation's verdict.
pub type Verdict = crate::kit::Verdict<Reason>;

impl Verdict {
    pub fn up_to_date(installed: Option<&AppVersion>) -> Self {
        let message = match installed {
            Some(v) => format!("version {v} is installed"),
            None => "the app is installed".to_string(),
        };
        Self::new(Standing::Ready, Reason::UpToDate, message)
    }
}
