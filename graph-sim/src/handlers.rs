//! A user's installed Teams apps (list, get, install, upgrade, uninstall) as Graph serves them.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::catalog::app_property_matches;
use super::errors::{GraphError, GraphResponse};
use super::faults;
use super::knobs::Knobs;
use super::listing::{Links, check_expand, check_filter, check_select, paged, same};
use super::odata::{Clause, Query, percent_decode};
use super::permissions;
use super::render;
use super::rsc::{Consent, ConsentRequest};
use super::state::{App, Install, Tenant};

const INSTALLATION_TYPE: &str = "microsoft.graph.userScopeTeamsAppInstallation";

/// What `$select` may name on an installation (navigations are allowed and rendered only when
/// expanded).
const INSTALLATION_PROPERTIES: [&str; 4] = [
    "id",
    "consentedPermissionSet",
    "teamsApp",
    "teamsAppDefinition",
];

fn installation_matches(clause: &Clause, install: &Install, app: Option<&App>) -> bool {
    match clause.field.split_once('/') {
        Some((_, property)) => {
            app.is_some_and(|a| app_property_matches(property, &clause.value, a))
        }
        None => install.id() == clause.value,
    }
}

/// `view`: the user's installations as the caller sees them (see `teamwork`).
pub(crate) fn list_installed(
    tenant: &Tenant,
    user_id: &str,
    view: &[Install],
    q: &Query,
    links: &Links,
    page_size: usize,
) -> Result<GraphResponse, GraphError> {
    check_expand(q, &["teamsApp", "teamsAppDefinition"], INSTALLATION_TYPE)?;
    check_select(&q.select, &INSTALLATION_PROPERTIES, INSTALLATION_TYPE)?;
    check_filter(
        q,
        &[
            "id",
            "teamsApp/id",
            "teamsApp/externalId",
            "teamsApp/displayName",
            "teamsApp/distributionMethod",
        ],
    )?;
    let items = view
        .iter()
        .map(|i| (i, tenant.app(&i.app_id)))
        .filter(|(i, app)| q.filter.iter().all(|c| installation_matches(c, i, *app)))
        .map(|(i, app)| {
            render::installation(
                i,
                app,
                q.expands("teamsApp"),
                q.expands("teamsAppDefinition"),
                &q.select,
            )
        })
        .collect();
    let context = format!(
        "{}/$metadata#users('{}')/teamwork/installedApps",
        links.service_root, user_id
    );
    Ok(paged(items, q, page_size, links, context))
}

/// One installation of `view`, by id.
fn find<'v>(view: &'v [Install], user_key: &str, id: &str) -> Result<&'v Install, GraphError> {
    view.iter().find(|i| i.id() == id).ok_or_else(|| {
        GraphError::not_found(format!(
            "Installation '{id}' was not found for user '{user_key}'."
        ))
    })
}

pub(crate) fn get_installed(
    tenant: &Tenant,
    user_key: &str,
    view: &[Install],
    id: &str,
    q: &Query,
    links: &Links,
) -> Result<GraphResponse, GraphError> {
    check_expand(q, &["teamsApp", "teamsAppDefinition"], INSTALLATION_TYPE)?;
    check_select(&q.select, &INSTALLATION_PROPERTIES, INSTALLATION_TYPE)?;
    let install = find(view, user_key, id)?;
    let mut body = render::installation(
        install,
        tenant.app(&install.app_id),
        q.expands("teamsApp"),
        q.expands("teamsAppDefinition"),
        &q.select,
    );
    body["@odata.context"] = json!(format!(
        "{}/$metadata#users('{}')/teamwork/installedApps/$entity",
        links.service_root, install.user_id
    ));
    Ok(GraphResponse::json(StatusCode::OK, body))
}

/// A navigation of one installation: `…/installedApps/{id}/teamsApp` or `…/teamsAppDefinition`.
pub(crate) fn get_installed_navigation(
    tenant: &Tenant,
    user_key: &str,
    view: &[Install],
    id: &str,
    navigation: &str,
) -> Result<GraphResponse, GraphError> {
    let install = find(view, user_key, id)?;
    let app = tenant
        .app(&install.app_id)
        .ok_or_else(|| GraphError::not_found("The app of this installation no longer exists."))?;
    let body = if same(navigation, "teamsApp") {
        render::teams_app(app)
    } else {
        app.definition(&install.version)
            .map(|d| render::definition(app, d))
            .ok_or_else(|| GraphError::not_found("The installed definition no longer exists."))?
    };
    Ok(GraphResponse::json(StatusCode::OK, body))
}

/// A JSON object body with only `allowed` properties (and OData annotations).
fn object_body(body: Option<Value>, allowed: &[&str]) -> Result<Map<String, Value>, GraphError> {
    let map = match body {
        None => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(GraphError::bad_request(
                "The request body must be a JSON object.",
            ));
        }
    };
    if let Some(key) = map
        .keys()
        .find(|k| !k.starts_with("@odata.") && !allowed.iter().any(|a| a == k))
    {
        return Err(GraphError::bad_request(format!(
            "Property '{key}' does not exist on type '{INSTALLATION_TYPE}'."
        )));
    }
    Ok(map)
}

/// The body's `consentedPermissionSet` and what the caller's roles let it consent to.
fn consent_request(
    map: &mut Map<String, Value>,
    roles: &[String],
) -> Result<ConsentRequest, GraphError> {
    let consent = match map.remove("consentedPermissionSet") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Consent::parse(v)?),
    };
    Ok(ConsentRequest {
        consent,
        may_consent: permissions::may_consent(roles),
        roles: roles.to_vec(),
    })
}

/// The catalog app id of a `teamsApp@odata.bind` URL. Graph only binds to its own entities, so
/// the URL must be on the Graph resource host (`graph_resource`, e.g.
/// `https://graph.microsoft.com`), whatever host the request itself was sent to:
/// `{graph_resource}/{v1.0|beta}/appCatalogs/teamsApps/{id}` or `…/teamsApps('{id}')`.
pub(crate) fn parse_bind(bind: &str, graph_resource: &str) -> Option<String> {
    const MARKER: &str = "/appcatalogs/teamsapps";
    let bind = bind.trim();
    let host_end = graph_resource.len();
    if !bind.get(..host_end)?.eq_ignore_ascii_case(graph_resource) {
        return None;
    }
    let rest = bind[host_end..].strip_prefix('/')?;
    let (version, rest) = rest.split_once('/')?;
    if version != "v1.0" && !version.eq_ignore_ascii_case("beta") {
        return None;
    }
    let rest = format!("/{rest}");
    if !rest.get(..MARKER.len())?.eq_ignore_ascii_case(MARKER) {
        return None;
    }
    let rest = &rest[MARKER.len()..];
    let id = if let Some(r) = rest.strip_prefix('/') {
        r.trim_end_matches('/')
    } else {
        rest.strip_prefix("('")?.strip_suffix("')")?
    };
    let id = percent_decode(id.trim());
    (!id.is_empty() && !id.contains(['/', '?', '\''])).then_some(id)
}

pub(crate) fn install(
    tenant: &mut Tenant,
    user_key: &str,
    body: Option<Value>,
    roles: &[String],
    graph_resource: &str,
    knobs: &Knobs,
) -> Result<GraphResponse, GraphError> {
    let mut map = object_body(body, &["teamsApp@odata.bind", "consentedPermissionSet"])?;
    let bind = map
        .get("teamsApp@odata.bind")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GraphError::bad_request("The request body must contain 'teamsApp@odata.bind'.")
        })?;
    let app_id = parse_bind(bind, graph_resource).ok_or_else(|| {
        GraphError::bad_request(format!(
            "Invalid 'teamsApp@odata.bind' value '{bind}': expected \
             {graph_resource}/v1.0/appCatalogs/teamsApps/{{id}}."
        ))
    })?;
    let request = consent_request(&mut map, roles)?;
    let id = tenant.install(user_key, &app_id, request, knobs)?;
    tracing::info!(tenant = %tenant.id, user = user_key, app = %app_id, installation = %id, "installed");
    Ok(GraphResponse::empty(StatusCode::CREATED))
}

/// An upgrade; while `noops` (`upgradeNoopCount`) lasts, one that passes every check answers 204
/// and changes nothing.
pub(crate) fn upgrade(
    tenant: &mut Tenant,
    user_key: &str,
    id: &str,
    body: Option<Value>,
    roles: &[String],
    knobs: &Knobs,
    noops: &mut Option<u32>,
) -> Result<GraphResponse, GraphError> {
    let had_body = body.is_some();
    let mut map = object_body(body, &["consentedPermissionSet"])?;
    let request = consent_request(&mut map, roles)?;
    let (index, version) = tenant.upgrade_target(user_key, id, &request, knobs)?;
    if faults::take_one(noops) {
        tracing::info!(tenant = %tenant.id, user = user_key, installation = id, "upgrade answered, not applied (upgradeNoopCount)");
        return Ok(GraphResponse::empty(StatusCode::NO_CONTENT));
    }
    let consent = had_body.then(|| request.consent.map(|c| c.raw));
    tenant.apply_upgrade(index, version, consent);
    tracing::info!(tenant = %tenant.id, user = user_key, installation = id, "upgraded");
    Ok(GraphResponse::empty(StatusCode::NO_CONTENT))
}

pub(crate) fn uninstall(
    tenant: &mut Tenant,
    user_key: &str,
    id: &str,
) -> Result<GraphResponse, GraphError> {
    tenant.uninstall(user_key, id)?;
    tracing::info!(tenant = %tenant.id, user = user_key, installation = id, "uninstalled");
    Ok(GraphResponse::empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::parse_bind;

    #[test]
    fn bind_urls_name_a_catalog_app_on_the_graph_host() {
        let graph = "https://graph.microsoft.com";
        let id = "33333333-3333-3333-3333-333333333333";
        for bind in [
            format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{id}"),
            format!("HTTPS://Graph.Microsoft.com/beta/appcatalogs/teamsapps/{id}/"),
            format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps('{id}')"),
        ] {
            assert_eq!(parse_bind(&bind, graph).as_deref(), Some(id), "{bind}");
        }
        for bad in [
            String::new(),
            format!("http://127.0.0.1:9/v1.0/appCatalogs/teamsApps/{id}"),
            format!("https://graph.microsoft.us/v1.0/appCatalogs/teamsApps/{id}"),
            format!("https://graph.microsoft.com.evil/v1.0/appCatalogs/teamsApps/{id}"),
            format!("/appCatalogs/teamsApps/{id}"),
            format!("https://graph.microsoft.com/v2.0/appCatalogs/teamsApps/{id}"),
            "https://graph.microsoft.com/v1.0/users/abc".into(),
            "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps".into(),
            "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/".into(),
            "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/a/b".into(),
        ] {
            assert_eq!(parse_bind(&bad, graph), None, "{bad}");
        }
        assert_eq!(
            parse_bind(
                &format!("https://graph.microsoft.us/v1.0/appCatalogs/teamsApps/{id}"),
                "https://graph.microsoft.us"
            )
            .as_deref(),
            Some(id)
        );
    }
}
