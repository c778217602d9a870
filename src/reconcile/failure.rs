//! Graph failures → verdicts: which ones need a human (Stalled) and which will pass (Reconciling).
//!
//! Branches on the error class only; the Graph client decides the class (and reads a message
//! only where Graph gives no distinct code: its transient 400s and its three kinds of 403).

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
        ErrorClass::Forbidden => Verdict::stalled(Reason::PermissionDenied, message),
        ErrorClass::NotLicensed => Verdict::stalled(Reason::UserNotLicensed, message),
        ErrorClass::BlockedByPolicy => Verdict::stalled(Reason::BlockedByPolicy, message),
        ErrorClass::BadRequest => Verdict::stalled(Reason::InvalidRequest, message),
        ErrorClass::NotFound => match step {
            GraphStep::Catalog => Verdict::stalled(Reason::AppNotFound, message),
            // The catalog was just read and had the app, so a 404 on install (or on the list
            // before it) is about the user. The reconciler re-reads the catalog first when an
            // install 404s, in case the app left the catalog in between.
            GraphStep::ListInstallations | GraphStep::Install => {
                Verdict::stalled(Reason::UserNotFound, message)
            }
            // The installation vanished between reads (someone uninstalled it): look again.
            GraphStep::Upgrade | GraphStep::Verify | GraphStep::Uninstall => {
                Verdict::progressing(Reason::GraphUnavailable, message)
            }
        },
    }
}
