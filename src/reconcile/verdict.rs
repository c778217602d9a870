//! How a resource stands: a standing, a machine-readable reason and a message for people.
//! [`super::conditions`] renders it as kstatus conditions.

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
}
