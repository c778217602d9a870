//! Resource-specific consent (RSC): the permissions a definition's manifest asks for
//! (`authorization.requiredPermissionSet`), what an install or upgrade must consent to
//! (`consentedPermissionSet`), who may consent, and the tenant's switch for the personal scope
//! (`GET /teamwork/teamsAppSettings`).
//!
//! Graph documents the rule, not its errors: "the permissions consented to during the
//! installation must match the resource-specific permissions specified in the
//! teamsAppDefinition of the app"; with delegated permissions only, the consent may be left out
//! (learn.microsoft.com, userteamwork-post-installedapps and team-post-installedapps). The
//! refusals below are written to that rule.

use std::collections::HashSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::errors::{GraphError, GraphResponse};
use super::faults::ConsentRefusal;
use super::listing::Links;
use super::permissions;
use super::seed::{RscPermission, RscPermissionType};
use super::state::Tenant;

/// The refusal of a missing or mismatched consent. NOT Graph's observed text (none was found in
/// Microsoft's docs or public issues): it restates the documented rule quoted above.
const CONSENT_MISMATCH: &str = "The consented permissions must match the resource-specific \
     permissions specified in the teamsAppDefinition of the app.";

/// The refusal when the tenant switched personal-scope RSC off. NOT Graph's observed text (none
/// was found): it restates the documented meaning of
/// `isUserPersonalScopeResourceSpecificConsentEnabled` = false ("blocks the installation of any
/// Teams app that requires resource-specific permissions in the personal scope").
const PERSONAL_SCOPE_RSC_DISABLED: &str = "Resource-specific consent for the personal scope is \
     disabled for this tenant: a Teams app that requires resource-specific permissions cannot be \
     installed in the personal scope.";

/// A `consentedPermissionSet` as a request body sent it: kept as sent (installations store and
/// render it so) and read as a set of permissions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Consent {
    pub raw: Value,
    pub permissions: Vec<RscPermission>,
}

impl Consent {
    /// Reads a `teamsAppPermissionSet`; a body of the wrong shape is a 400.
    pub fn parse(raw: Value) -> Result<Consent, GraphError> {
        let bad =
            |why: &str| GraphError::bad_request(format!("Invalid consentedPermissionSet: {why}"));
        let object = raw
            .as_object()
            .ok_or_else(|| bad("it must be an object."))?;
        if let Some(key) = object
            .keys()
            .find(|k| !k.starts_with("@odata.") && *k != "resourceSpecificPermissions")
        {
            return Err(bad(&format!(
                "property '{key}' does not exist on type 'microsoft.graph.teamsAppPermissionSet'."
            )));
        }
        let permissions = match object.get("resourceSpecificPermissions") {
            None | Some(Value::Null) => Vec::new(),
            Some(list) => serde_json::from_value::<Vec<RscPermission>>(list.clone()).map_err(
                |_| {
                    bad("resourceSpecificPermissions must list {permissionType: application|delegated, permissionValue}.")
                },
            )?,
        };
        Ok(Consent { raw, permissions })
    }

    fn has_application(&self) -> bool {
        has_application(&self.permissions)
    }
}

fn has_application(permissions: &[RscPermission]) -> bool {
    permissions
        .iter()
        .any(|p| p.permission_type == RscPermissionType::Application)
}

/// A permission set compared as Graph's rule reads: types exact, values case-insensitively,
/// order and repeats irrelevant.
fn as_set(permissions: &[RscPermission]) -> HashSet<(RscPermissionType, String)> {
    permissions
        .iter()
        .map(|p| (p.permission_type, p.permission_value.to_lowercase()))
        .collect()
}

/// What an install or upgrade call brings to the consent checks.
pub(crate) struct ConsentRequest {
    /// The body's `consentedPermissionSet`, if any.
    pub consent: Option<Consent>,
    /// The caller holds `TeamsAppInstallation.ReadWriteAndConsentForUser.All`.
    pub may_consent: bool,
    /// The caller's roles, for the 403's message.
    pub roles: Vec<String>,
}

/// Teams' consent checks for a call that moves an installation to a definition requiring
/// `required`, in order: the tenant's personal-scope switch (403), the caller's right to consent
/// to application permissions (403), then the consent itself (400 unless `refusal` says
/// otherwise).
pub(crate) fn check(
    required: &[RscPermission],
    request: &ConsentRequest,
    personal_scope_enabled: bool,
    refusal: Option<&ConsentRefusal>,
) -> Result<(), GraphError> {
    let needs_application = has_application(required);
    if needs_application && !personal_scope_enabled {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            PERSONAL_SCOPE_RSC_DISABLED,
        ));
    }
    if let Some(consent) = &request.consent
        && consent.has_application()
        && !request.may_consent
    {
        return Err(permissions::missing_consent_role(&request.roles));
    }
    let matches = match &request.consent {
        None => !needs_application,
        Some(consent) => as_set(&consent.permissions) == as_set(required),
    };
    if matches {
        Ok(())
    } else {
        Err(refused(refusal))
    }
}

fn refused(refusal: Option<&ConsentRefusal>) -> GraphError {
    let default = GraphError::bad_request(CONSENT_MISMATCH);
    let Some(refusal) = refusal else {
        return default;
    };
    let status = refusal
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(default.status);
    let code = refusal.code.as_deref().unwrap_or(match refusal.status {
        Some(_) => super::errors::default_code(status),
        None => "BadRequest",
    });
    GraphError::new(
        status,
        code,
        refusal.message.as_deref().unwrap_or(CONSENT_MISMATCH),
    )
}

/// `GET /teamwork/teamsAppSettings`, in the shape of Graph's teamsAppSettings resource.
pub(crate) fn teams_app_settings(
    tenant: &Tenant,
    roles: &[String],
    links: &Links,
) -> Result<GraphResponse, GraphError> {
    if !permissions::may_read_teams_app_settings(roles) {
        return Err(permissions::missing_settings_role(roles));
    }
    Ok(GraphResponse::json(
        StatusCode::OK,
        json!({
            "@odata.context": format!("{}/$metadata#teamwork/teamsAppSettings/$entity", links.service_root),
            "id": tenant.id,
            "isUserPersonalScopeResourceSpecificConsentEnabled": tenant.personal_scope_rsc_enabled(),
            "isChatResourceSpecificConsentEnabled": true,
            "allowUserRequestsForAppAccess": false,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(kind: RscPermissionType, value: &str) -> RscPermission {
        RscPermission {
            permission_type: kind,
            permission_value: value.into(),
        }
    }

    fn app(value: &str) -> RscPermission {
        perm(RscPermissionType::Application, value)
    }

    fn delegated(value: &str) -> RscPermission {
        perm(RscPermissionType::Delegated, value)
    }

    fn request(consent: Option<Vec<RscPermission>>, may_consent: bool) -> ConsentRequest {
        ConsentRequest {
            consent: consent.map(|permissions| Consent {
                raw: json!({}),
                permissions,
            }),
            may_consent,
            roles: vec!["TeamsAppInstallation.ReadWriteForUser.All".into()],
        }
    }

    fn status(result: Result<(), GraphError>) -> (u16, String) {
        result.map_or_else(|e| (e.status.as_u16(), e.code), |()| (200, String::new()))
    }

    #[test]
    fn a_consent_matches_as_a_set_with_values_compared_case_insensitively() {
        let required = [app("TeamsActivity.Send.User"), delegated("Chat.Read.User")];
        let same = vec![
            delegated("chat.read.user"),
            app("TEAMSACTIVITY.SEND.USER"),
            app("TeamsActivity.Send.User"),
        ];
        assert_eq!(
            status(check(&required, &request(Some(same), true), true, None)),
            (200, String::new())
        );
        for (consent, why) in [
            (None, "missing"),
            (Some(vec![app("TeamsActivity.Send.User")]), "one left out"),
            (
                Some(vec![app("TeamsActivity.Send.User"), app("Chat.Read.User")]),
                "wrong type",
            ),
            (
                Some(vec![
                    app("TeamsActivity.Send.User"),
                    delegated("Chat.Read.User"),
                    app("Extra.Read.User"),
                ]),
                "one too many",
            ),
        ] {
            assert_eq!(
                status(check(&required, &request(consent, true), true, None)),
                (400, "BadRequest".to_string()),
                "{why}"
            );
        }
    }

    #[test]
    fn delegated_only_may_be_omitted_but_not_contradicted() {
        let required = [delegated("Chat.Read.User")];
        assert!(check(&required, &request(None, false), true, None).is_ok());
        assert!(
            check(
                &required,
                &request(Some(vec![delegated("CHAT.read.user")]), false),
                true,
                None
            )
            .is_ok()
        );
        assert_eq!(
            status(check(&required, &request(Some(vec![]), false), true, None)).0,
            400
        );
        assert!(check(&[], &request(None, false), true, None).is_ok());
        assert!(check(&[], &request(Some(vec![]), false), true, None).is_ok());
        // The switch only concerns application permissions.
        assert!(check(&required, &request(None, false), false, None).is_ok());
    }

    #[test]
    fn switch_then_role_then_match() {
        let required = [app("TeamsActivity.Send.User")];
        let consent = || Some(vec![app("TeamsActivity.Send.User")]);
        assert_eq!(
            status(check(&required, &request(consent(), true), false, None)),
            (403, "Forbidden".to_string()),
            "switch off"
        );
        let no_role = check(&required, &request(consent(), false), true, None).unwrap_err();
        assert_eq!(
            (no_role.status.as_u16(), no_role.code.as_str()),
            (403, "Forbidden")
        );
        assert!(
            no_role
                .message
                .contains("TeamsAppInstallation.ReadWriteAndConsentForUser.All"),
            "{}",
            no_role.message
        );
        // Consenting to an application permission nobody asked for still needs the role.
        assert_eq!(
            status(check(&[], &request(consent(), false), true, None)).0,
            403
        );
    }

    #[test]
    fn the_refusal_knob_changes_status_code_and_message_independently() {
        let required = [app("TeamsActivity.Send.User")];
        let knob = |status, code: Option<&str>, message: Option<&str>| ConsentRefusal {
            status,
            code: code.map(str::to_string),
            message: message.map(str::to_string),
        };
        let err =
            |k: ConsentRefusal| check(&required, &request(None, true), true, Some(&k)).unwrap_err();
        let e = err(knob(Some(403), None, None));
        assert_eq!((e.status.as_u16(), e.code.as_str()), (403, "Forbidden"));
        assert_eq!(e.message, CONSENT_MISMATCH);
        let e = err(knob(None, Some("InvalidRequest"), Some("nope")));
        assert_eq!(
            (e.status.as_u16(), e.code.as_str(), e.message.as_str()),
            (400, "InvalidRequest", "nope")
        );
    }

    #[test]
    fn consent_bodies_are_read_strictly() {
        let ok = Consent::parse(json!({"resourceSpecificPermissions": [
            {"permissionType": "application", "permissionValue": "TeamsActivity.Send.User"}]}))
        .unwrap();
        assert_eq!(ok.permissions, [app("TeamsActivity.Send.User")]);
        assert!(Consent::parse(json!({})).unwrap().permissions.is_empty());
        for bad in [
            json!([]),
            json!({"permissions": []}),
            json!({"resourceSpecificPermissions": [{"permissionType": "both", "permissionValue": "x"}]}),
            json!({"resourceSpecificPermissions": [{"permissionValue": "x"}]}),
        ] {
            assert_eq!(
                Consent::parse(bad.clone()).unwrap_err().status.as_u16(),
                400,
                "{bad}"
            );
        }
    }
}
