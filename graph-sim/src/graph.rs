//! The Graph request pipeline, shared by plain requests and `$batch` items:
//! bearer token → per-tenant rate limit and per-class budgets → scripted failures → route →
//! request log.

use std::time::Instant;

use axum::http::Method;
use serde_json::Value;

use super::auth::Principal;
use super::budgets::Class;
use super::errors::{GraphError, GraphResponse, RequestIds};
use super::faults::{ScriptedFailure, Surface};
use super::journal::{self, RequestRecord};
use super::knobs::Knobs;
use super::listing::Links;
use super::odata::{Query, percent_decode};
use super::{Inner, catalog, directory, path, rsc, subscriptions, teamwork};

/// The API version prefix; both behave the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    V1,
    Beta,
}

impl Api {
    pub fn prefix(self) -> &'static str {
        match self {
            Api::V1 => "/v1.0",
            Api::Beta => "/beta",
        }
    }
}

/// `/v1.0/users/x` → `(V1, "/users/x")`.
pub(crate) fn split_api(path: &str) -> Option<(Api, &str)> {
    [Api::V1, Api::Beta].into_iter().find_map(|api| {
        let rest = path.strip_prefix(api.prefix())?;
        (rest.is_empty() || rest.starts_with('/')).then_some((api, rest))
    })
}

/// One Graph call, from the wire or from a `$batch`.
pub(crate) struct Call<'a> {
    pub method: &'a Method,
    pub api: Api,
    /// The raw path after the version prefix, e.g. `/users/x/teamwork/installedApps`.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: Result<Option<Value>, GraphError>,
    /// `http://host` as the client addressed us, or the Graph resource with canonical links
    /// on: the base of `@odata.nextLink` and `@odata.context`.
    pub base: &'a str,
    /// The Graph resource (`https://graph.microsoft.com`): bind URLs must be on it.
    pub graph_resource: &'a str,
    pub ids: &'a RequestIds,
    /// The `ConsistencyLevel` request header (a `$batch` item's own `headers`).
    pub consistency_level: Option<&'a str>,
}

impl Call<'_> {
    pub fn logged_path(&self) -> String {
        format!("{}{}", self.api.prefix(), percent_decode(self.path))
    }

    /// `ConsistencyLevel: eventual`, which Graph's advanced directory queries require.
    fn eventual(&self) -> bool {
        self.consistency_level
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
    }

    /// `status` 0 = the connection was dropped without an answer.
    pub fn record(
        &self,
        status: u16,
        principal: Option<&Principal>,
        batch_item: Option<&str>,
    ) -> RequestRecord {
        RequestRecord {
            method: self.method.to_string(),
            path: self.logged_path(),
            user: path::addressed_user(self.path),
            class: Some(Class::of(self.method, self.path).as_str().to_string()),
            query: self.query.map(percent_decode).filter(|q| !q.is_empty()),
            body: journal::logged_body(
                self.method.as_str(),
                self.body.as_ref().ok().and_then(Option::as_ref),
            ),
            status,
            tenant: principal.map(|p| p.tenant.clone()),
            client_id: principal.map(|p| p.client_id.clone()),
            batch: batch_item.is_some(),
            batch_item_id: batch_item.map(str::to_string),
            time: jiff::Timestamp::now(),
            request_id: self.ids.request_id.clone(),
            client_request_id: self.ids.client_request_id.clone(),
        }
    }
}

/// A JSON request body; empty = none.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Option<Value>, GraphError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|_| {
        GraphError::bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and \
             payload is of valid JSON format.",
        )
    })
}

/// Answers one authenticated call and logs it.
pub(crate) fn serve(
    inner: &mut Inner,
    principal: &Principal,
    call: &Call<'_>,
    batch_item: Option<&str>,
) -> GraphResponse {
    let response = match answer(inner, principal, call) {
        Ok(response) => response,
        Err(err) => GraphResponse::error(&err, call.ids),
    };
    inner
        .journal
        .push(call.record(response.logged_status(), Some(principal), batch_item));
    response
}

fn answer(
    inner: &mut Inner,
    principal: &Principal,
    call: &Call<'_>,
) -> Result<GraphResponse, GraphError> {
    if let Some(failure) = injected(inner, principal, call)? {
        if failure.apply_first {
            // The write happens; the client just never learns how it went.
            let _ = route(inner, principal, call);
        }
        return Ok(failure.to_response(call.ids));
    }
    route(inner, principal, call)
}

/// The rate limit and budgets (`Err`: a 429), then the scripted failure that answers this call
/// instead of the route, if any.
pub(crate) fn injected(
    inner: &mut Inner,
    principal: &Principal,
    call: &Call<'_>,
) -> Result<Option<ScriptedFailure>, GraphError> {
    let class = Class::of(call.method, call.path);
    inner
        .faults
        .throttle(&principal.tenant, class, Instant::now())?;
    Ok(inner.faults.scripted(
        call.method.as_str(),
        &call.logged_path(),
        Some(&principal.tenant),
        Surface::Graph,
    ))
}

fn route(
    inner: &mut Inner,
    principal: &Principal,
    call: &Call<'_>,
) -> Result<GraphResponse, GraphError> {
    let segments = path::segments(call.path)?;
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let query = parse_query(call, &s)?;
    let service_root = format!("{}{}", call.base, call.api.prefix());
    let links = Links {
        url: format!("{service_root}{}", call.path),
        service_root,
    };
    let method = call.method;
    let page_size = inner.world.page_size;
    let config = &inner.faults.config;
    let tenant = inner
        .world
        .tenant_mut(&principal.tenant)
        .ok_or_else(|| GraphError::unauthorized("The tenant of this token no longer exists."))?;
    let knobs = Knobs::for_tenant(&tenant.settings, config, Instant::now());
    let read = directory::Read {
        principal,
        query: &query,
        links: &links,
        knobs: &knobs,
    };
    let get = |answer: &dyn Fn() -> Result<GraphResponse, GraphError>| match *method {
        Method::GET => answer(),
        _ => Err(teamwork::not_allowed(method)),
    };
    match s.as_slice() {
        [u, user, tw, apps, rest @ ..]
            if is(u, "users") && is(tw, "teamwork") && is(apps, "installedApps") =>
        {
            let ctx = teamwork::Ctx {
                tenant,
                history: &mut inner.lag,
                knobs: &knobs,
                upgrade_noops: &mut inner.faults.config.upgrade_noop_count,
                principal,
                graph_resource: call.graph_resource,
                page_size,
            };
            teamwork::serve(ctx, method, user, rest, call.body.clone(), &query, &links)
        }
        [u, user] if is(u, "users") => get(&|| directory::get_user(tenant, &read, user)),
        [g, group, tm, cast]
            if is(g, "groups")
                && is(tm, "transitiveMembers")
                && is(cast, "microsoft.graph.user") =>
        {
            match *method {
                Method::GET => {
                    directory::transitive_user_members(tenant, &read, group, call.eventual())
                }
                _ => Err(teamwork::not_allowed(method)),
            }
        }
        [ac, ta] if is(ac, "appCatalogs") && is(ta, "teamsApps") => {
            get(&|| catalog::catalog_list(tenant, &knobs, &query, &links, page_size))
        }
        [ac, ta, id] if is(ac, "appCatalogs") && is(ta, "teamsApps") => {
            get(&|| catalog::catalog_get(tenant, &knobs, id, &query))
        }
        [ac, ta, id, defs]
            if is(ac, "appCatalogs") && is(ta, "teamsApps") && is(defs, "appDefinitions") =>
        {
            get(&|| catalog::definitions_list(tenant, &knobs, id, &query, &links))
        }
        [subs, rest @ ..] if is(subs, "subscriptions") && rest.len() <= 1 => subscriptions::serve(
            &mut inner.subscriptions,
            config,
            principal,
            method,
            rest.first().copied(),
            call.body.clone(),
            &links.service_root,
        ),
        [tw, settings] if is(tw, "teamwork") && is(settings, "teamsAppSettings") => {
            get(&|| rsc::teams_app_settings(tenant, &principal.roles, &links))
        }
        _ => Err(unknown_segment(&s)),
    }
}

/// The query options; on a directory route a bad one is Entra ID's error, not the Teams one.
fn parse_query(call: &Call<'_>, s: &[&str]) -> Result<Query, GraphError> {
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let directory_route = match s {
        [root, ..] if is(root, "groups") => true,
        [root, _] => is(root, "users"),
        _ => false,
    };
    Query::parse(call.query).map_err(|message| {
        if directory_route {
            directory::bad_query(message)
        } else {
            GraphError::bad_request(message)
        }
    })
}

/// Names the segment Graph would stumble on: an unknown root, else the last one.
fn unknown_segment(s: &[&str]) -> GraphError {
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let known_root = s.first().is_some_and(|r| {
        is(r, "users")
            || is(r, "appCatalogs")
            || is(r, "groups")
            || is(r, "teamwork")
            || is(r, "subscriptions")
    });
    let segment = if known_root { s.last() } else { s.first() };
    GraphError::bad_request(format!(
        "Resource not found for the segment '{}'.",
        segment.copied().unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_prefixes() {
        assert_eq!(split_api("/v1.0/users"), Some((Api::V1, "/users")));
        assert_eq!(split_api("/beta/$batch"), Some((Api::Beta, "/$batch")));
        assert_eq!(split_api("/v1.0"), Some((Api::V1, "")));
        assert_eq!(split_api("/v1.01/users"), None);
        assert_eq!(split_api("/v2.0/users"), None);
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_body(b"").unwrap(), None);
        assert_eq!(parse_body(b" \n").unwrap(), None);
        assert!(parse_body(b"{").is_err());
        assert_eq!(parse_body(b"{}").unwrap(), Some(serde_json::json!({})));
    }
}
