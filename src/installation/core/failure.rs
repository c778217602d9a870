//! Graph failures → verdicts: which ones need a person (Stalled) and which will pass
//! (Reconciling).
//!
//! The core sees a failure as the Graph client's [`ErrorClass`] (the client is where Graph's
//! statuses, codes and the few messages that matter are read) and a message. A 404 means
//! something different at each step.

pub use crate::graph::ErrorClass;

use super::verdict::{Reason, Verdict};

/// A failed Graph call: its class and the message for people (with Graph's status, code and
/// request-id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: ErrorClass,
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
    /// `GET /users/{id}`: made only after Teams answered 404 for the user, to tell a user the
    /// directory does not know from one Teams has not provisioned yet.
    ReadUser,
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
            GraphStep::ReadUser => "reading the user from the directory",
        }
    }

    /// A read that a routine drift check makes (no write was pending).
    pub fn is_routine_read(self) -> bool {
        matches!(self, GraphStep::Catalog | GraphStep::ListInstallations)
    }

    /// A call whose 404 is about the user (the catalog was read just before and had the app).
    pub fn is_about_the_user(self) -> bool {
        matches!(self, GraphStep::ListInstallations | GraphStep::Install)
    }
}

/// The verdict for a failed Graph call at `step`.
pub fn verdict_for_failure(step: GraphStep, failure: &Failure) -> Verdict {
    let message = format!("{} failed: {}", step.describe(), failure.message);
    match failure.class {
        ErrorClass::Throttled => Verdict::progressing(Reason::Throttled, message),
        ErrorClass::Unavailable | ErrorClass::Other | ErrorClass::Conflict => {
            Verdict::progressing(Reason::GraphUnavailable, message)
        }
        ErrorClass::Unauthorized => Verdict::progressing(Reason::AuthenticationFailed, message),
        ErrorClass::Forbidden => Verdict::stalled(Reason::PermissionDenied, message),
        ErrorClass::NotLicensed => Verdict::stalled(Reason::UserNotLicensed, message),
        ErrorClass::BlockedByPolicy => Verdict::stalled(Reason::BlockedByPolicy, message),
        ErrorClass::ManagedByPolicy => Verdict::stalled(
            Reason::ManagedByPolicy,
            format!(
                "{message}; a Teams app setup policy installed this app for the user, so only a Teams admin changing that policy removes it (not retried)"
            ),
        ),
        ErrorClass::BadRequest => Verdict::stalled(Reason::InvalidRequest, message),
        ErrorClass::NotFound => match step {
            GraphStep::Catalog => Verdict::stalled(Reason::AppNotFound, message),
            // The catalog was just read and had the app, so a 404 on install (or on the list
            // before it) is about the user. The controller re-reads the catalog first when an
            // install 404s, in case the app left the catalog in between.
            GraphStep::ListInstallations | GraphStep::Install | GraphStep::ReadUser => {
                Verdict::stalled(Reason::UserNotFound, message)
            }
            // The installation vanished between reads (someone uninstalled it): look again.
            GraphStep::Upgrade | GraphStep::Verify | GraphStep::Uninstall => {
                Verdict::progressing(Reason::GraphUnavailable, message)
            }
        },
    }
}

/// Graph refused (403) an install or upgrade that consented RSC permissions: the tenant turned
/// RSC in personal scope off (`disabled`, read from its Teams app settings), or the operator's
/// app lacks the permission that lets it consent.
pub fn verdict_for_refused_consent(
    step: GraphStep,
    failure: &Failure,
    disabled: Option<bool>,
) -> Verdict {
    let message = format!("{} failed: {}", step.describe(), failure.message);
    if disabled == Some(true) {
        return Verdict::stalled(
            Reason::ConsentDisabled,
            format!(
                "the tenant does not allow resource-specific consent in personal scope (teamsAppSettings isUserPersonalScopeResourceSpecificConsentEnabled is false), and this app version needs it; a Teams admin must turn it on: {message}"
            ),
        );
    }
    Verdict::stalled(
        Reason::PermissionDenied,
        format!(
            "{message}; consenting resource-specific application permissions needs the TeamsAppInstallation.ReadWriteAndConsentForUser.All application permission (admin-consented)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::Standing;

    const ALL_STEPS: [GraphStep; 7] = [
        GraphStep::Catalog,
        GraphStep::ListInstallations,
        GraphStep::Install,
        GraphStep::Upgrade,
        GraphStep::Verify,
        GraphStep::Uninstall,
        GraphStep::ReadUser,
    ];

    fn failure(class: ErrorClass) -> Failure {
        Failure {
            class,
            message: "Graph said no [request-id: r-1]".into(),
        }
    }

    /// Every row of the failure → condition table, at every step.
    #[test]
    fn the_failure_table() {
        use ErrorClass::*;
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
            (ManagedByPolicy, Standing::Stalled, R::ManagedByPolicy),
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
            (GraphStep::ReadUser, Standing::Stalled, R::UserNotFound),
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
