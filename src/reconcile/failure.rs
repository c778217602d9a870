//! Graph failures → verdicts: which ones need a human (Stalled) and which will pass (Reconciling).
//!
//! Branches on HTTP status and Graph's error class, never on message text — with one exception:
//! Graph answers 403 both for a missing permission and for "App is blocked by app permission
//! policy"; both are terminal, and the message only picks the more helpful reason.

use crate::graph::{ErrorClass, GraphError};

use super::verdict::{Reason, Verdict};

/// Which Graph call failed; a 404 means something different at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphStep {
    Catalog,
    ListInstallations,
    Install,
    Upgrade,
    Verify,
    Uninstall,
}

impl GraphStep {
    fn describe(self) -> &'static str {
        match self {
            GraphStep::Catalog => "looking up the app in the catalog",
            GraphStep::ListInstallations => "reading the user's installed apps",
            GraphStep::Install => "installing the app",
            GraphStep::Upgrade => "upgrading the app",
            GraphStep::Verify => "re-reading the installation",
            GraphStep::Uninstall => "uninstalling the app",
        }
    }
}

/// The verdict for a failed Graph call at `step`.
pub fn verdict_for_failure(step: GraphStep, err: &GraphError) -> Verdict {
    let message = format!("{} failed: {err}", step.describe());
    match err.class() {
        ErrorClass::Throttled => Verdict::progressing(Reason::Throttled, message),
        ErrorClass::Unavailable | ErrorClass::Other | ErrorClass::Conflict => {
            Verdict::progressing(Reason::GraphUnavailable, message)
        }
        ErrorClass::Unauthorized => Verdict::progressing(Reason::AuthenticationFailed, message),
        ErrorClass::Forbidden => {
            if message.to_ascii_lowercase().contains("permission policy") {
                Verdict::stalled(Reason::BlockedByPolicy, message)
            } else {
                Verdict::stalled(Reason::PermissionDenied, message)
            }
        }
        ErrorClass::BadRequest => Verdict::stalled(Reason::InvalidRequest, message),
        ErrorClass::NotFound => match step {
            GraphStep::Catalog | GraphStep::Install => {
                Verdict::stalled(Reason::AppNotFound, message)
            }
            GraphStep::ListInstallations => Verdict::stalled(Reason::UserNotFound, message),
            // The installation vanished between reads (someone uninstalled it): look again.
            GraphStep::Upgrade | GraphStep::Verify | GraphStep::Uninstall => {
                Verdict::progressing(Reason::GraphUnavailable, message)
            }
        },
    }
}
