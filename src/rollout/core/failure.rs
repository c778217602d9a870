//! Graph failures while reading a rollout's audience → verdicts: which need a person (Stalled)
//! and which will pass (Reconciling). The installation's table is its peer
//! (`crate::installation::core::verdict_for_failure`).

use crate::graph::ErrorClass;

use super::verdict::{Reason, Verdict};

/// The verdict for a Graph failure of `class` while reading `what` (e.g. "group 4444…"), with
/// Graph's error (status, code, request-id) in `error`.
pub fn audience_failure(what: &str, class: ErrorClass, error: &str) -> Verdict {
    match class {
        ErrorClass::NotFound => Verdict::stalled(
            Reason::AudienceNotFound,
            format!("reading {what}: it does not exist in the directory: {error}"),
        ),
        ErrorClass::Forbidden | ErrorClass::Unauthorized => Verdict::stalled(
            Reason::PermissionDenied,
            format!(
                "reading {what}: Graph refused; the app registration needs the GroupMember.Read.All and User.Read.All application permissions (admin-consented): {error}"
            ),
        ),
        ErrorClass::BadRequest => Verdict::stalled(
            Reason::AudienceUnreadable,
            format!("reading {what}: {error}"),
        ),
        ErrorClass::Throttled
        | ErrorClass::Unavailable
        | ErrorClass::NotLicensed
        | ErrorClass::BlockedByPolicy
        | ErrorClass::Conflict
        | ErrorClass::Other => Verdict::progressing(
            Reason::GraphUnavailable,
            format!("reading {what}, will retry: {error}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::Standing;

    /// Every row of the table.
    #[test]
    fn the_audience_failure_table() {
        use ErrorClass::*;
        let rows = [
            (NotFound, Standing::Stalled, Reason::AudienceNotFound),
            (Forbidden, Standing::Stalled, Reason::PermissionDenied),
            (Unauthorized, Standing::Stalled, Reason::PermissionDenied),
            (BadRequest, Standing::Stalled, Reason::AudienceUnreadable),
            (Throttled, Standing::Progressing, Reason::GraphUnavailable),
            (Unavailable, Standing::Progressing, Reason::GraphUnavailable),
            (NotLicensed, Standing::Progressing, Reason::GraphUnavailable),
            (
                BlockedByPolicy,
                Standing::Progressing,
                Reason::GraphUnavailable,
            ),
            (Conflict, Standing::Progressing, Reason::GraphUnavailable),
            (Other, Standing::Progressing, Reason::GraphUnavailable),
        ];
        for (class, standing, reason) in rows {
            let v = audience_failure("group g-1", class, "Graph said no [request-id: r-1]");
            assert_eq!((v.standing, v.reason), (standing, reason), "{class:?}");
            assert!(v.message.contains("group g-1"), "{}", v.message);
            assert!(v.message.contains("request-id: r-1"), "{}", v.message);
        }
        let denied = audience_failure("group g-1", Forbidden, "403");
        assert!(
            denied.message.contains("User.Read.All"),
            "{}",
            denied.message
        );
    }
}
