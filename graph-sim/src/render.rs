//! Graph's JSON shapes for the simulated objects, and the `/_sim/state` dump.

use serde_json::{Value, json};

use super::faults::FaultConfig;
use super::ids;
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
            "requiredPermissionSet": {"resourceSpecificPermissions": []},
        },
    })
}

/// A catalog entry, with `appDefinitions` when expanded.
pub(crate) fn catalog_app(app: &App, expand_definitions: bool) -> Value {
    let mut value = teams_app(app);
    if expand_definitions {
        value["appDefinitions"] = app.definitions.iter().map(|d| definition(app, d)).collect();
    }
    value
}

/// A `userScopeTeamsAppInstallation`; navigations only when expanded, as Graph does.
pub(crate) fn installation(
    install: &Install,
    app: Option<&App>,
    expand_app: bool,
    expand_definition: bool,
) -> Value {
    let mut value = json!({
        "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
        "id": install.id(),
        "consentedPermissionSet": install.consent,
    });
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

pub(crate) fn user(user: &User) -> Value {
    json!({
        "id": user.id,
        "userPrincipalName": user.upn,
        "displayName": user.display_name,
    })
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
                        "installedDateTime": i.installed_at.to_string(),
                        "upgradeCount": i.upgrade_count,
                        "lastUpgradeDateTime": i.last_upgrade.map(|t| t.to_string()),
                    })
                })
                .collect();
            json!({
                "id": t.id,
                "domains": t.domains,
                "clients": t.clients.iter().map(|c| json!({
                    "id": c.id,
                    "secret": c.secret.is_some(),
                    "certificateThumbprint": c.certificate.as_ref().map(|k| k.thumbprint_s256.clone()),
                    "federatedCredentials": c.federated.iter().map(|f| json!({
                        "issuer": f.issuer, "subject": f.subject, "audiences": f.audiences,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "users": t.users.iter().map(|u| {
                    let mut v = user(u);
                    v["teamsEnabled"] = json!(u.teams_enabled);
                    v["blockedApps"] = json!(u.blocked_apps);
                    v
                }).collect::<Vec<_>>(),
                "apps": t.apps.iter().map(|a| catalog_app(a, true)).collect::<Vec<_>>(),
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
