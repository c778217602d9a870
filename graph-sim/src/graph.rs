//! The Graph request pipeline, shared by plain requests and `$batch` items:
//! bearer token → per-tenant rate limit and per-class budgets → scripted failures → route →
//! request log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use serde_json::Value;

use super::auth::Principal;
use super::budgets::Class;
use super::errors::{GraphError, GraphResponse, RequestIds};
use super::faults::Surface;
use super::handlers::{self, Links};
use super::journal::RequestRecord;
use super::odata::{Query, percent_decode};
use super::{Inner, Shared, batch, path, teamwork};

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
}

impl Call<'_> {
    pub fn logged_path(&self) -> String {
        format!("{}{}", self.api.prefix(), percent_decode(self.path))
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
            query: self.query.map(percent_decode).filter(|q| !q.is_empty()),
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

/// `http://{Host}`, falling back to our own address when the header is missing or odd.
fn request_base(headers: &HeaderMap, fallback: &str) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
        })
        .map_or_else(|| fallback.to_string(), |h| format!("http://{h}"))
}

/// Every request that is not the token endpoint or `/_sim`.
pub(crate) async fn entry(
    State(shared): State<Arc<Shared>>,
    Extension(ids): Extension<RequestIds>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (latency, canonical) = {
        let inner = shared.lock();
        let canonical = inner.faults.config.canonical_next_links;
        (
            inner.faults.latency(),
            canonical.unwrap_or(shared.options.canonical_next_links),
        )
    };
    if let Some(delay) = latency {
        tokio::time::sleep(delay).await;
    }
    let base = if canonical {
        shared.options.graph_resource.clone()
    } else {
        request_base(&headers, &shared.base_url)
    };
    let Some((api, rest)) = split_api(uri.path()) else {
        let first = uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        let err = GraphError::bad_request(format!("Invalid version: '{}'.", percent_decode(first)));
        let response = GraphResponse::error(&err, &ids);
        shared.lock().journal.push(RequestRecord {
            method: method.to_string(),
            path: percent_decode(uri.path()),
            user: None,
            query: uri.query().map(percent_decode),
            status: response.status.as_u16(),
            tenant: None,
            client_id: None,
            batch: false,
            batch_item_id: None,
            time: jiff::Timestamp::now(),
            request_id: ids.request_id.clone(),
            client_request_id: ids.client_request_id.clone(),
        });
        return response.into_http(&ids);
    };
    let call = Call {
        method: &method,
        api,
        path: rest,
        query: uri.query(),
        body: parse_body(&body),
        base: &base,
        graph_resource: &shared.options.graph_resource,
        ids: &ids,
    };
    let mut inner = shared.lock();
    let principal = inner
        .tokens
        .authenticate(headers.get(header::AUTHORIZATION), Instant::now());
    let response = match principal {
        Err(err) => {
            let response = GraphResponse::error(&err, &ids);
            inner
                .journal
                .push(call.record(response.logged_status(), None, None));
            response
        }
        Ok(principal) if percent_decode(rest).eq_ignore_ascii_case("/$batch") => {
            batch::serve_batch(&mut inner, &principal, &call)
        }
        Ok(principal) => serve(&mut inner, &principal, &call, None),
    };
    drop(inner);
    response.into_http(&ids)
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
    let class = Class::of(call.method, call.path);
    inner
        .faults
        .throttle(&principal.tenant, class, Instant::now())?;
    if let Some(failure) =
        inner
            .faults
            .scripted(call.method.as_str(), &call.logged_path(), Surface::Graph)
    {
        if failure.apply_first {
            // The write happens; the client just never learns how it went.
            let _ = route(inner, principal, call);
        }
        return Ok(failure.to_response(call.ids));
    }
    route(inner, principal, call)
}

fn route(
    inner: &mut Inner,
    principal: &Principal,
    call: &Call<'_>,
) -> Result<GraphResponse, GraphError> {
    let segments = path::segments(call.path)?;
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let query = Query::parse(call.query).map_err(GraphError::bad_request)?;
    let service_root = format!("{}{}", call.base, call.api.prefix());
    let links = Links {
        url: format!("{service_root}{}", call.path),
        service_root,
    };
    let method = call.method;
    let page_size = inner.world.page_size;
    let config = &inner.faults.config;
    let (read_lag, upgrade_at_latest) = (
        config
            .read_lag_ms
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis),
        config.upgrade_at_latest.unwrap_or_default(),
    );
    let tenant = inner
        .world
        .tenant_mut(&principal.tenant)
        .ok_or_else(|| GraphError::unauthorized("The tenant of this token no longer exists."))?;
    match s.as_slice() {
        [u, user, tw, apps, rest @ ..]
            if is(u, "users") && is(tw, "teamwork") && is(apps, "installedApps") =>
        {
            let ctx = teamwork::Ctx {
                tenant,
                history: &mut inner.lag,
                read_lag,
                upgrade_at_latest,
                principal,
                graph_resource: call.graph_resource,
                page_size,
            };
            teamwork::serve(ctx, method, user, rest, call.body.clone(), &query, &links)
        }
        [u, user] if is(u, "users") => match *method {
            Method::GET => handlers::get_user(tenant, user),
            _ => Err(teamwork::not_allowed(method)),
        },
        [ac, ta] if is(ac, "appCatalogs") && is(ta, "teamsApps") => match *method {
            Method::GET => handlers::catalog_list(tenant, &query, &links, page_size),
            _ => Err(teamwork::not_allowed(method)),
        },
        [ac, ta, id] if is(ac, "appCatalogs") && is(ta, "teamsApps") => match *method {
            Method::GET => handlers::catalog_get(tenant, id, &query),
            _ => Err(teamwork::not_allowed(method)),
        },
        [ac, ta, id, defs]
            if is(ac, "appCatalogs") && is(ta, "teamsApps") && is(defs, "appDefinitions") =>
        {
            match *method {
                Method::GET => handlers::definitions_list(tenant, id, &links),
                _ => Err(teamwork::not_allowed(method)),
            }
        }
        _ => {
            // Name the segment Graph would stumble on: an unknown root, else the last one.
            let known_root = s
                .first()
                .is_some_and(|r| is(r, "users") || is(r, "appCatalogs"));
            let segment = if known_root { s.last() } else { s.first() };
            Err(GraphError::bad_request(format!(
                "Resource not found for the segment '{}'.",
                segment.copied().unwrap_or_default()
            )))
        }
    }
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
