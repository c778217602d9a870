//! Graph failures while reading a rollout's audience → verdicts: which need a person (Stalled)
//! and which will pass (Reconciling). The installation's table is its peer
//! (`crate::installation::core::verdict_for_failure`).

use crate::graph::ErrorClass;

use super::verdict::{Reason, Verdict};

/// Graph's answer to a next link whose page token expired: the read already started over a few
/// times; it will pass (a read that is slower than the token's lifetime, or a busy directory).
pub const EXPIRED_PAGE_TOKEN: &str = "Directory_ExpiredPageToken";

/// The verdict for a Graph failure of `class` (Graph's error `code`, if any) while reading
/// `what` (e.g. "group 4444…"), with Graph's error (status, code, request-id) in `error`.
pub fn audience_failure(what: &str, class: ErrorClass, code: Option<&str>, error: &str) -> Verdict {
    if code == Some(EXPIRED_PAGE_TOKEN) {
        return Verdict::progressing(
            Reason::AudienceUnreadable,
            format!(
                "reading {what}: its page token kept expiring before the read was done; will retry: {error}"
            ),
        );
    }
    match class {
        ErrorClass::NotFound => Verdict::stalled(
            Reason::AudienceNotFound,
            format!("reading {what}: it does not exist in the directory: {error}"),
        ),
        ErrorClass::Forbidden => Verdict::stalled(
            Reason::PermissionDenied,
            format!(
                "reading {what}: Graph refused; the app registration needs the GroupMember.Read.All and User.Read.All application permissions (admin-consented): {error}"
            ),
        ),
        ErrorClass::BadRequest => Verdict::stalled(
            Reason::AudienceUnreadable,
            format!("reading {what}: {error}"),
        ),
        // As for an installation: the operator's sign-in failing (or Graph refusing its token)
        // is its own credential's problem, and passes once that is fixed or Entra is back.
        ErrorClass::Unauthorized => Verdict::progressing(
            Reason::AuthenticationFailed,
            format!("reading {what}, will retry: {error}"),
        ),
        ErrorClass::Throttled => Verdict::progressing(
            Reason::Throttled,
            format!("reading {what}, will retry: {error}"),
        ),
        ErrorClass::Unavailable
        | ErrorClass::NotLicensed
        | ErrorClass::BlockedByPolicy
        | ErrorClass::ManagedByPolicy
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
            (
                Unauthorized,
                Standing::Progressing,
                Reason::AuthenticationFailed,
            ),
            (BadRequest, Standing::Stalled, Reason::AudienceUnreadable),
            (Throttled, Standing::Progressing, Reason::Throttled),
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
            let v = audience_failure("group g-1", class, None, "Graph said no [request-id: r-1]");
            assert_eq!((v.standing, v.reason), (standing, reason), "{class:?}");
            assert!(v.message.contains("group g-1"), "{}", v.message);
            assert!(v.message.contains("request-id: r-1"), "{}", v.message);
        }
        let denied = audience_failure("group g-1", Forbidden, None, "403");
        assert!(
            denied.message.contains("User.Read.All"),
            "{}",
            denied.message
        );
        // An expired page token that outlasted the restarts passes: retried, not Stalled.
        let expired = audience_failure("group g-1", BadRequest, Some(EXPIRED_PAGE_TOKEN), "400");
        assert_eq!(
            (expired.standing, expired.reason),
            (Standing::Progressing, Reason::AudienceUnreadable)
        );
    }
}
