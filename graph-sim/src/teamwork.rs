//! The `/users/{user}/teamwork/installedApps…` routes, where Graph's rough edges meet: the user
//! must exist (404), have a Teams licence (403) and be known to Teams (404), the token's roles
//! decide which installations the caller reaches, reads may trail writes (`readLagMs`), writes act
//! on the true state, and upgrades may do nothing (`upgradeNoopCount`).

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::auth::Principal;
use super::errors::{GraphError, GraphResponse};
use super::handlers;
use super::ids;
use super::knobs::Knobs;
use super::lag::History;
use super::listing::Links;
use super::odata::Query;
use super::permissions::{self, Reach};
use super::state::{Install, Tenant};

/// A user's installations as reads under `readLagMs` see them, per (tenant, user object id).
pub(crate) type InstallHistory = History<(String, String), Vec<Install>>;

fn install_key(tenant: &str, user_id: &str) -> (String, String) {
    (tenant.to_ascii_lowercase(), user_id.to_ascii_lowercase())
}

/// Everything an installedApps call may touch.
pub(crate) struct Ctx<'a> {
    pub tenant: &'a mut Tenant,
    pub history: &'a mut InstallHistory,
    pub knobs: &'a Knobs,
    /// `upgradeNoopCount`, used up by upgrades.
    pub upgrade_noops: &'a mut Option<u32>,
    pub principal: &'a Principal,
    pub graph_resource: &'a str,
    pub page_size: usize,
}

/// One request below `installedApps`: `rest` is what follows it (`[]`, `[id]`, `[id, action]`).
pub(crate) fn serve(
    ctx: Ctx<'_>,
    method: &Method,
    user_key: &str,
    rest: &[&str],
    body: Result<Option<Value>, GraphError>,
    query: &Query,
    links: &Links,
) -> Result<GraphResponse, GraphError> {
    let user_id = ctx.tenant.teams_user(user_key)?.id.clone();
    let reach = permissions::reach(&ctx.principal.roles);
    if reach == Reach::Nothing {
        return Err(permissions::missing_roles(&ctx.principal.roles));
    }
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let (knobs, resource) = (ctx.knobs, ctx.graph_resource);
    let principal = ctx.principal;
    let roles = &principal.roles;
    match (method.clone(), rest) {
        (Method::GET, []) | (Method::GET, [_]) => {
            let view = visible(&ctx, &user_id, reach);
            match rest {
                [] => handlers::list_installed(
                    ctx.tenant,
                    &user_id,
                    &view,
                    query,
                    links,
                    ctx.page_size,
                ),
                [id, ..] => handlers::get_installed(ctx.tenant, user_key, &view, id, query, links),
            }
        }
        (Method::GET, [id, nav]) if is(nav, "teamsApp") || is(nav, "teamsAppDefinition") => {
            let view = visible(&ctx, &user_id, reach);
            handlers::get_installed_navigation(ctx.tenant, user_key, &view, id, nav)
        }
        (Method::POST, []) => {
            let body = body?;
            if reach == Reach::OwnAppOnly {
                let app = body
                    .as_ref()
                    .and_then(|b| b.get("teamsApp@odata.bind")?.as_str())
                    .and_then(|b| handlers::parse_bind(b, ctx.graph_resource));
                return Err(not_own(&ctx, app));
            }
            write(ctx, &user_id, |t, _| {
                handlers::install(t, user_key, body, roles, resource, knobs)
            })
        }
        (Method::POST, [id, action]) if is(action, "upgrade") => {
            own_app_only(&ctx, reach, id)?;
            let body = body?;
            write(ctx, &user_id, |t, noops| {
                handlers::upgrade(t, user_key, id, body, roles, knobs, noops)
            })
        }
        (Method::DELETE, [id]) => {
            own_app_only(&ctx, reach, id)?;
            write(ctx, &user_id, |t, _| handlers::uninstall(t, user_key, id))
        }
        (_, [] | [_]) => Err(not_allowed(method)),
        (_, [_, action])
            if is(action, "upgrade")
                || is(action, "teamsApp")
                || is(action, "teamsAppDefinition") =>
        {
            Err(not_allowed(method))
        }
        (_, segments) => Err(GraphError::bad_request(format!(
            "Resource not found for the segment '{}'.",
            segments.last().copied().unwrap_or_default()
        ))),
    }
}

pub(crate) fn not_allowed(method: &Method) -> GraphError {
    GraphError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "BadRequest",
        format!("The HTTP method '{method}' is not allowed for this resource."),
    )
}

/// The user's installations as this caller sees them now.
fn visible(ctx: &Ctx<'_>, user_id: &str, reach: Reach) -> Vec<Install> {
    if reach == Reach::OwnAppOnly {
        // The calling app itself is never installed in the simulator.
        return Vec::new();
    }
    let key = install_key(&ctx.tenant.id, user_id);
    let lagging = ctx.history.visible(&key, ctx.knobs.now, ctx.knobs.read_lag);
    match lagging {
        Some(before) => before.to_vec(),
        None => ctx.tenant.installs_of(user_id),
    }
}

fn not_own(ctx: &Ctx<'_>, app: Option<String>) -> GraphError {
    permissions::not_own_app(
        &ctx.principal.client_id,
        app.as_deref().unwrap_or("(unknown)"),
    )
}

/// Upgrade and uninstall name an installation; a `…Self…` client may not touch another app's.
fn own_app_only(ctx: &Ctx<'_>, reach: Reach, installation_id: &str) -> Result<(), GraphError> {
    if reach != Reach::OwnAppOnly {
        return Ok(());
    }
    let app = ids::parse_installation_id(installation_id).map(|(_, app)| app);
    Err(not_own(ctx, app))
}

/// Runs a write on the true state and, with a read lag, remembers what reads keep seeing.
fn write(
    ctx: Ctx<'_>,
    user_id: &str,
    op: impl FnOnce(&mut Tenant, &mut Option<u32>) -> Result<GraphResponse, GraphError>,
) -> Result<GraphResponse, GraphError> {
    let lag = ctx.knobs.read_lag;
    let before = (!lag.is_zero()).then(|| ctx.tenant.installs_of(user_id));
    let response = op(ctx.tenant, ctx.upgrade_noops)?;
    if let Some(before) = before {
        let key = install_key(&ctx.tenant.id, user_id);
        ctx.history.record(key, before, ctx.knobs.now, lag);
    }
    Ok(response)
}
