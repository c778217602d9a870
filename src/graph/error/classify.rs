//! What the operator should do about an error: HTTP status (and, where Graph gives no distinct
//! code, the message) → [`ErrorClass`].

/// What the operator should do about an error, independent of which call produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// 429: Graph asked us to slow down; retry after `Retry-After`.
    Throttled,
    /// 5xx, timeouts, transport failures, the Teams backend's transient 400s: retry with backoff.
    Unavailable,
    /// 404: user, app or installation does not exist (or the user is not Teams-enabled).
    NotFound,
    /// 403: a missing Graph permission (or only the `…Self…` variant of one).
    Forbidden,
    /// 403 "Failed to get license information for the user": the user has no Teams licence.
    NotLicensed,
    /// 403 "App is blocked by app permission policy": a Teams admin policy blocks the app for
    /// this user; or "… explicitly blocked by the tenant admin.": the app is blocked org-wide.
    BlockedByPolicy,
    /// An uninstall Graph refuses because a Teams app setup policy installed the app
    /// (`AppIsTenantAdminPreinstalled`): only a Teams admin changing the policy removes it.
    ManagedByPolicy,
    /// 401 after a token refresh, or the token endpoint refused the credentials.
    Unauthorized,
    /// 400 that is not one of the known transient ones: the request itself is wrong.
    BadRequest,
    /// 409: the thing already exists (for install this is success and never surfaces).
    Conflict,
    /// Anything else, including bodies we could not decode.
    Other,
}

impl ErrorClass {
    /// A stable, low-cardinality name (for metrics labels and condition reasons).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::NotLicensed => "not_licensed",
            Self::BlockedByPolicy => "blocked_by_policy",
            Self::ManagedByPolicy => "managed_by_policy",
            Self::Unauthorized => "unauthorized",
            Self::BadRequest => "bad_request",
            Self::Conflict => "conflict",
            Self::Other => "other",
        }
    }
}

/// The Teams backend's exception for removing an app a setup policy preinstalled, as Graph
/// names it in `innerError.code` (and as users have reported it in the message:
/// microsoftgraph/microsoft-graph-docs#13146, "Exception type: AppIsTenantAdminPreinstalled …
/// Trying to RemoveUserAppEntitlement for an App that is explicitly preinstalled by the tenant
/// admin.").
const PREINSTALLED: &str = "AppIsTenantAdminPreinstalled";

/// Status (and the inner code) → class. The only place a message is read: Graph gives the
/// Teams backend's transient 400s, its kinds of 403 and a policy-preinstalled app no distinct
/// `error.code`.
pub(super) fn classify_status(status: u16, inner_code: Option<&str>, message: &str) -> ErrorClass {
    if (400..500).contains(&status) && is_preinstalled(inner_code, message) {
        return ErrorClass::ManagedByPolicy;
    }
    match status {
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::Unavailable,
        400 if is_transient_bad_request(message) => ErrorClass::Unavailable,
        400 => ErrorClass::BadRequest,
        401 => ErrorClass::Unauthorized,
        403 => classify_forbidden(message),
        404 => ErrorClass::NotFound,
        409 => ErrorClass::Conflict,
        408 => ErrorClass::Unavailable,
        _ => ErrorClass::Other,
    }
}

/// The Teams backend answers some installs with a 400 whose message is about its own internals
/// (an internal exception, its "settings store", a Skype backend request such as
/// `CreateThreadRequest`, as users have reported); those pass after a retry. Graph gives them no
/// distinct code, so this is the one place where the message decides.
pub(crate) fn is_transient_bad_request(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "internal exception",
        "settings store",
        "internal server error",
        "skype backend request",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

fn is_preinstalled(inner_code: Option<&str>, message: &str) -> bool {
    inner_code.is_some_and(|c| c.eq_ignore_ascii_case(PREINSTALLED))
        || message.contains(PREINSTALLED)
        || message
            .to_ascii_lowercase()
            .contains("explicitly preinstalled by the tenant admin")
}

/// Graph answers 403 `Forbidden` for a missing permission, for a user without a Teams licence,
/// for an app permission policy and for an app the tenant admin blocked org-wide; only the
/// message tells them apart, and each needs a different person to fix it (the Graph app's
/// owner, a licence admin, a Teams admin). Both blocks are Teams admin settings, so they share
/// one class.
fn classify_forbidden(message: &str) -> ErrorClass {
    let lower = message.to_ascii_lowercase();
    if lower.contains("license information") || lower.contains("valid office365 license") {
        ErrorClass::NotLicensed
    } else if lower.contains("permission policy") || lower.contains("blocked by the tenant admin") {
        ErrorClass::BlockedByPolicy
    } else {
        ErrorClass::Forbidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_blocked_tenant_wide_is_blocked_by_policy_not_a_missing_permission() {
        // Graph's wording for a team-scope install (microsoft/powerapps-tools#107); no other is
        // documented, for user installs neither.
        let tenant_block = "Trying to CreateTeamAppEntitlement for an App that is explicitly \
                            blocked by the tenant admin.";
        assert_eq!(
            classify_status(403, None, tenant_block),
            ErrorClass::BlockedByPolicy
        );
        assert_eq!(
            classify_status(403, None, "App is blocked by app permission policy"),
            ErrorClass::BlockedByPolicy
        );
        // A block is read only from a 403: the same words elsewhere are not a policy.
        assert_eq!(
            classify_status(400, None, tenant_block),
            ErrorClass::BadRequest
        );
        assert_eq!(
            classify_status(
                403,
                None,
                "Insufficient privileges to complete the operation."
            ),
            ErrorClass::Forbidden
        );
    }

    #[test]
    fn an_app_a_setup_policy_preinstalled_is_managed_by_policy() {
        let message = "Trying to RemoveUserAppEntitlement for an App that is explicitly \
                       preinstalled by the tenant admin.";
        assert_eq!(
            classify_status(403, Some("AppIsTenantAdminPreinstalled"), "Forbidden"),
            ErrorClass::ManagedByPolicy
        );
        assert_eq!(
            classify_status(400, None, message),
            ErrorClass::ManagedByPolicy
        );
        assert_eq!(
            classify_status(503, Some("AppIsTenantAdminPreinstalled"), "x"),
            ErrorClass::Unavailable
        );
    }
}
