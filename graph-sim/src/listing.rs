//! The list plumbing every collection endpoint shares: where a collection lives ([`Links`]),
//! Graph's 400s for a `$select`, `$expand` or `$filter` naming what a type does not have, and
//! server-driven paging.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::errors::{GraphError, GraphResponse};
use super::odata::Query;

/// Graph's answer to a `$select` naming a property `type_name` does not have.
pub(crate) fn check_select(
    select: &[String],
    allowed: &[&str],
    type_name: &str,
) -> Result<(), GraphError> {
    match select.iter().find(|p| !allowed.iter().any(|a| same(a, p))) {
        Some(bad) => Err(GraphError::bad_request(format!(
            "Could not find a property named '{bad}' on type '{type_name}'."
        ))),
        None => Ok(()),
    }
}

/// Where a collection lives, for `@odata.context` and `@odata.nextLink`.
pub(crate) struct Links {
    /// `http://host/v1.0`
    pub service_root: String,
    /// The request URL without its query.
    pub url: String,
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

pub(crate) fn check_expand(q: &Query, allowed: &[&str], type_name: &str) -> Result<(), GraphError> {
    match q
        .expand
        .iter()
        .find(|e| !allowed.iter().any(|a| same(a, e)))
    {
        Some(bad) => Err(GraphError::bad_request(format!(
            "Could not find a property named '{bad}' on type '{type_name}'."
        ))),
        None => Ok(()),
    }
}

pub(crate) fn check_filter(q: &Query, allowed: &[&str]) -> Result<(), GraphError> {
    match q
        .filter
        .iter()
        .find(|c| !allowed.iter().any(|a| same(a, &c.field)))
    {
        Some(bad) => Err(GraphError::bad_request(format!(
            "Invalid filter clause: filtering on '{}' is not supported.",
            bad.field
        ))),
        None => Ok(()),
    }
}

/// Cuts one page out of `items`, adding `@odata.nextLink` when more follow.
pub(crate) fn paged(
    items: Vec<Value>,
    q: &Query,
    page_size: usize,
    links: &Links,
    context: String,
) -> GraphResponse {
    let size = q.top.unwrap_or(page_size).max(1);
    let total = items.len();
    let start = q.skip.min(total);
    let end = start.saturating_add(size).min(total);
    let page: Vec<Value> = items.into_iter().skip(start).take(end - start).collect();
    let mut body = json!({"@odata.context": context, "value": page});
    if end < total {
        body["@odata.nextLink"] = json!(q.next_link(&links.url, end));
    }
    GraphResponse::json(StatusCode::OK, body)
}
