//! Graph failures → verdicts: which ones need a person (Stalled) and which will pass
//! (Reconciling).
//!
//! The core sees a failure as a neutral [`FailureClass`] and a message; the controller makes one
//! from the Graph client's error (which is where Graph's statuses, codes and the few messages
//! that matter are read). A 404 means something different at each step.

use super::verdict::{Reason, Verdict};

/// What kind of failure a Graph call met, as far as the resource's standing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Graph asked us to slow down.
    Throttled,
    /// 5xx, timeouts, dropped connections, the Teams backend's transient 400s.
    Unavailable,
    /// 404: what it is about depends on the step.
    NotFound,
    /// A missing Graph permission.
    Forbidden,
    /// The user has no Teams licence.
    NotLicensed,
    /// A Teams app permission policy blocks the app for the user.
    BlockedByPolicy,
    /// The token endpoint refused the credentials, or Graph refused the token.
    Unauthorized,
    /// Graph refused the request itself.
    BadRequest,
    /// A conflict where none was expected.
    Conflict,
    /// Anything else, including answers that could not be decoded.
    Other,
}

/// A failed Graph call: its class and the message for people (with Graph's status, code and
/// request-id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
}

/// Which Graph call failed.
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

    /// A read that a routine drift check makes (no write was pending).
    pub fn is_routine_read(self) -> bool {
        matches!(self, GraphStep::Catalog | GraphStep::ListInstallations)
    }
}

/// The verdict for a failed Graph call at `step`.
pub fn verdict_for_failure(step: GraphStep, failure: &Failure) -> Verdict {
    let message = format!("{} failed: {}", step.describe(), failure.message);
    match failure.class {
        FailureClass::Throttled => Verdict::progressing(Reason::Throttled, message),
        FailureClass::Unavailable | FailureClass::Other | FailureClass::Conflict => {
            Verdict::progressing(Reason::GraphUnavailable, message)
        }
        FailureClass::Unauthorized => Verdict::progressing(Reason::AuthenticationFailed, message),
        FailureClass::Forbidden => Verdict::stalled(Reason::PermissionDenied, message),
        FailureClass::NotLicensed => Verdict::stalled(Reason::UserNotLicensed, message),
        FailureClass::BlockedByPolicy => Verdict::stalled(Reason::BlockedByPolicy, message),
        FailureClass::BadRequest => Verdict::stalled(Reason::InvalidRequest, message),
        FailureClass::NotFound => match step {
            GraphStep::Catalog => Verdict::stalled(Reason::AppNotFound, message),
            // The catalog was just read and had the app, so a 404 on install (or on the list
            // before it) is about the user. The controller re-reads the catalog first when an
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::Standing;

    const ALL_STEPS: [GraphStep; 6] = [
        GraphStep::Catalog,
        GraphStep::ListInstallations,
        GraphStep::Install,
        GraphStep::Upgrade,
        GraphStep::Verify,
        GraphStep::Uninstall,
    ];

    fn failure(class: FailureClass) -> Failure {
        Failure {
            class,
            message: "Graph said no [request-id: r-1]".into(),
        }
    }

    /// Every row of the failure → condition table, at every step.
    #[test]
    fn the_failure_table() {
        use FailureClass::*;
        use Reason as R;
        let same_everywhere = [
            (Throttled, Standing::Progressing, R::Throttled),
            (Unavailable, Standing::Progressing, R::GraphUnavailable),
            (Other, Standing::Progressing, R::GraphUnavailable),
            (Conflict, Standing::Progressing, R::GraphUnavailable),
            (Unauthorized, Standing::Progressing, R::AuthenticationFailed),
            (Forbidden, Standing::Stalled, R::PermissionDenied),
            (NotLicensed, Standing::Stalled, R::UserNotLicensed),
            (BlockedByPolicy, Standing::Stalled, R::BlockedByPolicy),
            (BadRequest, Standing::Stalled, R::InvalidRequest),
        ];
        for step in ALL_STEPS {
            for (class, standing, reason) in same_everywhere {
                let v = verdict_for_failure(step, &failure(class));
                assert_eq!(
                    (v.standing, v.reason),
                    (standing, reason),
                    "{class:?} at {step:?}"
                );
                assert!(v.message.contains("request-id: r-1"), "{}", v.message);
            }
        }
        let not_found = [
            (GraphStep::Catalog, Standing::Stalled, R::AppNotFound),
            (
                GraphStep::ListInstallations,
                Standing::Stalled,
                R::UserNotFound,
            ),
            (GraphStep::Install, Standing::Stalled, R::UserNotFound),
            (
                GraphStep::Upgrade,
                Standing::Progressing,
                R::GraphUnavailable,
            ),
            (
                GraphStep::Verify,
                Standing::Progressing,
                R::GraphUnavailable,
            ),
            (
                GraphStep::Uninstall,
                Standing::Progressing,
                R::GraphUnavailable,
            ),
        ];
        for (step, standing, reason) in not_found {
            let v = verdict_for_failure(step, &failure(NotFound));
            assert_eq!(
                (v.standing, v.reason),
                (standing, reason),
                "NotFound at {step:?}"
            );
        }
    }
}
