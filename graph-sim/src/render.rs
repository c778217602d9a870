//! Graph's JSON shapes for the simulated objects, and the `/_sim/state` dump.

use serde_json::{Value, json};

use super::faults::FaultConfig;
use super::ids;
use super::permissions::UserAccess;
use super::state::{App, Definition, Install, User, World};

pub(crate) fn teams_app(app: &App) -> Value {
    json!({
        "id": app.id,
        "externalId": app.external_id,
        "displayName": app.display_name,
        "distributionMethod": app.distribution_method.as_str(),
    })
}

pub(crate) fn definition(app: &App, def: &Definition) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.teamsAppDefinition",
        "id": ids::definition_id(&app.id, &def.version, def.state.as_str()),
        "teamsAppId": app.id,
        "azureADAppId": null,
        "displayName": def.display_name.as_deref().unwrap_or(&app.display_name),
        "version": def.version,
        "publishingState": def.state.as_str(),
        "shortDescription": def.short_description,
        "description": def.description,
        "lastModifiedDateTime": def.last_modified.to_string(),
        "createdBy": null,
        "authorization": {
            "clientAppId": null,
            "requiredPermissionSet": {"resourceSpecificPermissions": def
                .required
                .iter()
                .map(|p| json!({
                    "permissionType": p.permission_type.as_str(),
                    "permissionValue": p.permission_value,
                }))
                .collect::<Vec<_>>()},
        },
    })
}

/// What `$select` may name on a `teamsAppDefinition`.
pub(crate) const DEFINITION_PROPERTIES: [&str; 14] = [
    "id",
    "teamsAppId",
    "azureADAppId",
    "displayName",
    "version",
    "publishingState",
    "shortDescription",
    "description",
    "lastModifiedDateTime",
    "createdBy",
    "authorization",
    "bot",
    "colorIcon",
    "outlineIcon",
];

/// `value` with only the `select`ed properties (case-insensitively) and those in `keep`;
/// `select` empty = all of them.
fn selected(value: Value, select: &[String], keep: &[&str]) -> Value {
    if select.is_empty() {
        return value;
    }
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| {
                    keep.contains(&k.as_str()) || select.iter().any(|s| s.eq_ignore_ascii_case(k))
                })
                .collect(),
        ),
        other => other,
    }
}

/// A definition with only the properties of a (nested) `$select`; empty = all.
pub(crate) fn definition_selected(app: &App, def: &Definition, select: &[String]) -> Value {
    selected(definition(app, def), select, &[])
}

/// A catalog entry, with `appDefinitions` when expanded (`definition_select`: its nested
/// `$select`, empty = every property).
pub(crate) fn catalog_app(
    app: &App,
    expand_definitions: bool,
    definition_select: &[String],
) -> Value {
    let mut value = teams_app(app);
    if expand_definitions {
        value["appDefinitions"] = app
            .definitions
            .iter()
            .map(|d| definition_selected(app, d, definition_select))
            .collect();
    }
    value
}

/// A `userScopeTeamsAppInstallation`; navigations only when expanded, as Graph does.
/// `consentedPermissionSet` only when `select` names it (Graph returns it only with `$select`);
/// with `select`, only the selected properties, `id` and the expanded navigations.
pub(crate) fn installation(
    install: &Install,
    app: Option<&App>,
    expand_app: bool,
    expand_definition: bool,
    select: &[String],
) -> Value {
    let mut value = json!({
        "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
        "id": install.id(),
    });
    if select
        .iter()
        .any(|s| s.eq_ignore_ascii_case("consentedPermissionSet"))
    {
        value["consentedPermissionSet"] = install.consent.clone().unwrap_or(Value::Null);
    }
    if expand_app {
        value["teamsApp"] = app.map_or(Value::Null, teams_app);
    }
    if expand_definition {
        value["teamsAppDefinition"] = app
            .and_then(|a| a.definition(&install.version).map(|d| definition(a, d)))
            .unwrap_or(Value::Null);
    }
    value
}

/// A user as the admin API shows it: identity, directory properties and the simulator's knobs.
pub(crate) fn user(user: &User) -> Value {
    json!({
        "id": user.id,
        "userPrincipalName": user.upn,
        "displayName": user.display_name,
        "accountEnabled": user.account_enabled,
        "userType": user.user_type.as_str(),
        "teamsEnabled": user.teams_licensed(),
        "plans": plans(user),
        "teamsProvisioned": user.teams_provisioned,
        "blockedApps": user.blocked_apps,
        "deleted": user.deleted,
    })
}

/// What a user read without `$select` returns (Graph's default set for `user`).
pub(crate) const USER_DEFAULT_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Only with `$select`, as in Graph.
pub(crate) const USER_SELECT_ONLY_PROPERTIES: [&str; 3] =
    ["accountEnabled", "userType", "assignedPlans"];

fn plans(user: &User) -> Value {
    user.plans.iter().map(|p| p.render()).collect()
}

fn user_property(user: &User, name: &str) -> Value {
    match name {
        "id" => json!(user.id),
        "userPrincipalName" => json!(user.upn),
        "displayName" => json!(user.display_name),
        "accountEnabled" => json!(user.account_enabled),
        "userType" => json!(user.user_type.as_str()),
        "assignedPlans" => plans(user),
        "businessPhones" => json!([]),
        // Properties the simulator does not model (mail, jobTitle, …) are unset.
        _ => Value::Null,
    }
}

/// A `microsoft.graph.user` from a directory read with `properties` (canonical names). A property
/// the caller may not read (see [`UserAccess`]) is still there, as `null`, as Graph answers: a
/// client must tell that from a user who has no value.
pub(crate) fn directory_user(user: &User, properties: &[&str], access: UserAccess) -> Value {
    let mut object = serde_json::Map::with_capacity(properties.len() + 1);
    object.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    for name in properties {
        let value = if access.sees(name) {
            user_property(user, name)
        } else {
            Value::Null
        };
        object.insert((*name).to_string(), value);
    }
    Value::Object(object)
}

/// Everything but secrets, for `GET /_sim/state`.
pub(crate) fn state(world: &World, tokens_issued: usize, faults: &FaultConfig) -> Value {
    let tenants: Vec<Value> = world
        .tenants
        .iter()
        .map(|t| {
            let installations: Vec<Value> = t
                .installs
                .iter()
                .map(|i| {
                    let app = t.app(&i.app_id);
                    json!({
                        "id": i.id(),
                        "user": i.user_id,
                        "userPrincipalName": t.user(&i.user_id).map(|u| u.upn.clone()),
                        "app": i.app_id,
                        "externalId": app.and_then(|a| a.external_id.clone()),
                        "version": i.version,
                        "publishingState": app
                            .and_then(|a| a.definition(&i.version))
                            .map(|d| d.state.as_str()),
                        "consentedPermissionSet": i.consent,
                        "preinstalledByPolicy": i.preinstalled,
                        "installedDateTime": i.installed_at.to_string(),
                        "upgradeCount": i.upgrade_count,
                        "lastUpgradeDateTime": i.last_upgrade.map(|t| t.to_string()),
                    })
                })
                .collect();
            json!({
                "id": t.id,
                "domains": t.domains,
                "settings": t.settings,
                "teamsAppSettings": t.teams_app_settings,
                "clients": t.clients.iter().map(|c| json!({
                    "id": c.id,
                    "secret": c.secret.is_some(),
                    "certificateThumbprint": c.certificate.as_ref().map(|k| k.thumbprint_s256.clone()),
                    "federatedCredentials": c.federated.iter().map(|f| json!({
                        "issuer": f.issuer, "subject": f.subject, "audiences": f.audiences,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "users": t.users.iter().map(user).collect::<Vec<_>>(),
                "groups": t.groups.iter().map(|g| json!({
                    "id": g.id,
                    "displayName": g.display_name,
                    "members": g.members.iter().map(|m| t.member_id(*m)).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "apps": t.apps.iter().map(|a| catalog_app(a, true, &[])).collect::<Vec<_>>(),
                "installations": installations,
            })
        })
        .collect();
    json!({
        "tenants": tenants,
        "pageSize": world.page_size,
        "tokensIssued": tokens_issued,
        "faults": faults,
    })
}
