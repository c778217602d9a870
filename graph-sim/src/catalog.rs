//! The tenant app catalog as Graph serves it: `GET /appCatalogs/teamsApps` (with `$filter` and
//! `$expand=appDefinitions`), one app, and an app's definitions, as the catalog shows them now
//! (see `catalogLagMs`).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::errors::{GraphError, GraphResponse};
use super::knobs::Knobs;
use super::listing::{Links, check_expand, check_filter, check_select, paged};
use super::odata::Query;
use super::render;
use super::state::{App, Tenant};

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Does a catalog-app property (`id`, `externalId`, …) equal the clause's value?
pub(crate) fn app_property_matches(property: &str, value: &str, app: &App) -> bool {
    let actual = match property.to_ascii_lowercase().as_str() {
        "id" => Some(app.id.as_str()),
        "externalid" => app.external_id.as_deref(),
        "displayname" => Some(app.display_name.as_str()),
        "distributionmethod" => Some(app.distribution_method.as_str()),
        _ => None,
    };
    actual.is_some_and(|a| same(a, value))
}

const DEFINITION_TYPE: &str = "microsoft.graph.teamsAppDefinition";

/// `$expand=appDefinitions`, with its nested `$select` checked.
fn expand_definitions(q: &Query) -> Result<(bool, &[String]), GraphError> {
    check_expand(q, &["appDefinitions"], "microsoft.graph.teamsApp")?;
    let select = q.expand_select("appDefinitions");
    check_select(select, &render::DEFINITION_PROPERTIES, DEFINITION_TYPE)?;
    Ok((q.expands("appDefinitions"), select))
}

pub(crate) fn catalog_list(
    tenant: &Tenant,
    knobs: &Knobs,
    q: &Query,
    links: &Links,
    page_size: usize,
) -> Result<GraphResponse, GraphError> {
    let (expand, select) = expand_definitions(q)?;
    check_filter(
        q,
        &["id", "externalId", "displayName", "distributionMethod"],
    )?;
    let items = tenant
        .catalog_apps(knobs.now, knobs.catalog_lag)
        .filter(|a| {
            q.filter
                .iter()
                .all(|c| app_property_matches(&c.field, &c.value, a))
        })
        .map(|a| render::catalog_app(a, expand, select))
        .collect();
    let context = format!("{}/$metadata#appCatalogs/teamsApps", links.service_root);
    Ok(paged(items, q, page_size, links, context))
}

fn catalog_app<'t>(tenant: &'t Tenant, knobs: &Knobs, id: &str) -> Result<&'t App, GraphError> {
    let app = tenant.catalog_app(id, knobs.now, knobs.catalog_lag);
    app.ok_or_else(|| {
        GraphError::not_found(format!("App '{id}' was not found in the app catalog."))
    })
}

pub(crate) fn catalog_get(
    tenant: &Tenant,
    knobs: &Knobs,
    id: &str,
    q: &Query,
) -> Result<GraphResponse, GraphError> {
    let (expand, select) = expand_definitions(q)?;
    let app = catalog_app(tenant, knobs, id)?;
    Ok(GraphResponse::json(
        StatusCode::OK,
        render::catalog_app(app, expand, select),
    ))
}

pub(crate) fn definitions_list(
    tenant: &Tenant,
    knobs: &Knobs,
    id: &str,
    q: &Query,
    links: &Links,
) -> Result<GraphResponse, GraphError> {
    check_select(&q.select, &render::DEFINITION_PROPERTIES, DEFINITION_TYPE)?;
    let app = catalog_app(tenant, knobs, id)?;
    let value: Vec<Value> = app
        .definitions
        .iter()
        .map(|d| render::definition_selected(app, d, &q.select))
        .collect();
    let context = format!(
        "{}/$metadata#appCatalogs/teamsApps('{}')/appDefinitions",
        links.service_root, app.id
    );
    Ok(GraphResponse::json(
        StatusCode::OK,
        json!({"@odata.context": context, "value": value}),
    ))
}
