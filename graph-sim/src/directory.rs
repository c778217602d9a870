//! The directory reads the operator uses to expand a rollout: a group's transitive user members
//! (`GET /groups/{id}/transitiveMembers/microsoft.graph.user`) and one user (`GET /users/{id}`),
//! with `$select`, and Graph's rough edges: the OData cast is an *advanced query* that needs
//! `ConsistencyLevel: eventual` and `$count=true` on every page, the token's roles decide whether
//! the call is allowed at all (403) and which user properties are visible (the rest `null`: all
//! but `id` without a user read role, all outside the basic profile with `User.ReadBasic.All`),
//! and an unknown id is a 404 `Request_ResourceNotFound`.
//!
//! Checks run in this order: query options (400), the advanced query parameters (400), the
//! page token's age (400), roles (403), the object (404).

use std::time::Duration;

use axum::http::StatusCode;
use rand::Rng;
use serde_json::{Value, json};

use super::auth::Principal;
use super::errors::{GraphError, GraphResponse};
use super::groups::{DirectoryState, by_id};
use super::knobs::Knobs;
use super::listing::Links;
use super::odata::{Cursor, Query, Resume};
use super::permissions::{self, UserAccess};
use super::render::{self, USER_DEFAULT_PROPERTIES, USER_SELECT_ONLY_PROPERTIES};
use super::state::Tenant;

/// Graph's page size for directory collections when the client sends no `$top`.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 100;

/// The error code Entra ID's directory answers a query it will not run with.
const UNSUPPORTED_QUERY: &str = "Request_UnsupportedQuery";

/// Graph documents that an OData cast on `transitiveMembers` is an advanced query: it needs the
/// `ConsistencyLevel: eventual` header *and* `$count=true` (group-list-transitivemembers.md,
/// "Optional query parameters"), and that a request missing either answers 400
/// `Request_UnsupportedQuery` (aad-advanced-queries.md, "Error handling for advanced queries").
/// The message documented there is for an advanced-only `$filter` operator ("Operator
/// 'endsWith' is not supported because …"); no text is documented for the cast, so this is that
/// documented wording with the cast as its subject.
const CAST_NEEDS_ADVANCED_QUERY: &str = "OData cast 'microsoft.graph.user' is not supported \
    because the required parameters might be missing. Try adding $count=true query parameter and \
    ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more \
    information";

/// A query-option error on a directory route: Entra ID's code, not the Teams backend's.
pub(crate) fn bad_query(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, UNSUPPORTED_QUERY, message)
}

fn not_found(key: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{key}' does not exist or one of its queried reference-property objects \
             are not present."
        ),
    )
}

/// The canonical names of `$select` (Graph matches them case-insensitively), or the default set.
fn selected(q: &Query) -> Result<Vec<&'static str>, GraphError> {
    if q.select.is_empty() {
        return Ok(USER_DEFAULT_PROPERTIES.to_vec());
    }
    let known = || {
        USER_DEFAULT_PROPERTIES
            .iter()
            .chain(&USER_SELECT_ONLY_PROPERTIES)
    };
    let mut names: Vec<&'static str> = Vec::with_capacity(q.select.len());
    for asked in &q.select {
        let name = known()
            .find(|k| k.eq_ignore_ascii_case(asked))
            .ok_or_else(|| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    format!(
                        "Could not find a property named '{asked}' on type 'microsoft.graph.user'."
                    ),
                )
            })?;
        if !names.contains(name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// `users` or `users(id,userPrincipalName)`, for `@odata.context`.
fn context(links: &Links, q: &Query, properties: &[&str]) -> String {
    let shape = if q.select.is_empty() {
        String::new()
    } else {
        format!("({})", properties.join(","))
    };
    format!("{}/$metadata#users{shape}", links.service_root)
}

/// What a directory read needs besides the tenant: who asks, how, and the knobs in force.
pub(crate) struct Read<'a> {
    pub principal: &'a Principal,
    pub query: &'a Query,
    pub links: &'a Links,
    pub knobs: &'a Knobs,
}

/// `GET /groups/{group}/transitiveMembers/microsoft.graph.user`: one page of the group's users
/// through any depth of nesting, each once, ordered by id, as the directory shows them now (see
/// `directoryLagMs`, `directoryFlap`); the `$skiptoken` resumes after the last id of the page
/// before, so a member added or removed between pages moves nothing already paged past, and
/// expires after `pageTokenTtlMs`. `eventual` = the request carried `ConsistencyLevel: eventual`
/// (which, with `$count=true`, every page needs: `@odata.nextLink` replays the `$count`).
pub(crate) fn transitive_user_members(
    tenant: &mut Tenant,
    read: &Read<'_>,
    group: &str,
    eventual: bool,
) -> Result<GraphResponse, GraphError> {
    let (q, links, knobs) = (read.query, read.links, read.knobs);
    let properties = selected(q)?;
    if !(eventual && q.count) {
        return Err(bad_query(CAST_NEEDS_ADVANCED_QUERY));
    }
    let issued_ms = jiff::Timestamp::now().as_millisecond();
    check_token_age(q.after.as_ref(), knobs.page_token_ttl, issued_ms)?;
    if !permissions::may_read_memberships(&read.principal.roles) {
        return Err(permissions::insufficient_privileges());
    }
    let g = tenant
        .group_position(group)
        .ok_or_else(|| not_found(group))?;
    let members = tenant.transitive_users_at(g, knobs.now, knobs.directory_lag);
    let directory = tenant.directory_at(knobs.now, knobs.directory_lag);
    let omit = match &q.after {
        Some(cursor) => cursor.omit.clone(),
        None => flap(&members, &directory, knobs.directory_flap),
    };
    let page = Page::cut(&members, &directory, q, omit.as_deref());
    let access = permissions::user_access(&read.principal.roles);
    let value: Vec<Value> = page
        .users
        .iter()
        .map(|u| render::directory_user(directory.user(*u), &properties, access))
        .collect();
    let mut body = json!({"@odata.context": context(links, q, &properties), "value": value});
    if q.after.is_none() {
        body["@odata.count"] = json!(page.total);
    }
    if let Some(last) = page.users.last().filter(|_| page.more) {
        let resume = Resume::After(Cursor {
            after: directory.user(*last).id.clone(),
            issued_ms,
            omit,
        });
        body["@odata.nextLink"] = json!(q.next_link_at(&links.url, &resume));
    }
    Ok(GraphResponse::json(StatusCode::OK, body))
}

/// Entra ID's answer to a page token past its lifetime: 400 `Directory_ExpiredPageToken` (the code
/// Microsoft Graph answers, per Microsoft Q&A "How to handle Directory_ExpiredPageToken error in
/// /v1.0/users"). Microsoft Graph's docs give no message; this is the wording of the Azure AD
/// Graph error table (learn.microsoft.com/previous-versions/azure/ad/graph/howto/
/// azure-ad-graph-api-error-codes-and-error-handling) as clients of Microsoft Graph quote it — the
/// closest sourced text, not one read off a Microsoft Graph response.
fn check_token_age(
    cursor: Option<&Cursor>,
    ttl: Option<Duration>,
    now_ms: i64,
) -> Result<(), GraphError> {
    let (Some(cursor), Some(ttl)) = (cursor, ttl) else {
        return Ok(());
    };
    let age_ms = now_ms.saturating_sub(cursor.issued_ms);
    if u128::try_from(age_ms).unwrap_or(0) <= ttl.as_millis() {
        return Ok(());
    }
    Err(GraphError::new(
        StatusCode::BAD_REQUEST,
        "Directory_ExpiredPageToken",
        "The specified page token value has expired and can no longer be included in your \
         request.",
    ))
}

/// `directoryFlap`: with that chance, the id of one member (any) this read leaves out.
fn flap(members: &[usize], directory: &impl DirectoryState, chance: f64) -> Option<String> {
    let mut rng = rand::rng();
    if members.is_empty() || chance <= 0.0 || !rng.random_bool(chance.min(1.0)) {
        return None;
    }
    let u = members[rng.random_range(0..members.len())];
    Some(directory.user(u).id.clone())
}

/// One page of a transitive-members read.
struct Page {
    users: Vec<usize>,
    /// More members follow.
    more: bool,
    /// Members in the whole read (`@odata.count`).
    total: usize,
}

impl Page {
    /// The page `q` asks for out of `members` (sorted by id), without `omit`.
    fn cut(
        members: &[usize],
        directory: &impl DirectoryState,
        q: &Query,
        omit: Option<&str>,
    ) -> Page {
        let id = |u: usize| directory.user(u).id.as_str();
        let kept = |u: &&usize| omit.is_none_or(|o| !id(**u).eq_ignore_ascii_case(o));
        let start = match &q.after {
            Some(cursor) => members.partition_point(|u| by_id(id(*u), &cursor.after).is_le()),
            None => 0,
        };
        let mut rest = members[start..].iter().filter(kept).peekable();
        let users: Vec<usize> = rest
            .by_ref()
            .take(q.top.unwrap_or(DEFAULT_PAGE_SIZE))
            .copied()
            .collect();
        Page {
            more: rest.peek().is_some(),
            total: members.iter().filter(kept).count(),
            users,
        }
    }
}

/// `GET /users/{id or UPN}`: one user with `$select` (or Graph's default set), as the directory
/// shows it now (see `directoryLagMs`).
pub(crate) fn get_user(
    tenant: &Tenant,
    read: &Read<'_>,
    key: &str,
) -> Result<GraphResponse, GraphError> {
    let properties = selected(read.query)?;
    let access = permissions::user_access(&read.principal.roles);
    if access == UserAccess::IdOnly {
        return Err(permissions::insufficient_privileges());
    }
    let directory = tenant.directory_at(read.knobs.now, read.knobs.directory_lag);
    let user = tenant
        .user_position(key)
        .map(|u| directory.user(u))
        .filter(|u| !u.deleted)
        .ok_or_else(|| not_found(key))?;
    let mut body = render::directory_user(user, &properties, access);
    let context = context(read.links, read.query, &properties);
    body["@odata.context"] = json!(format!("{context}/$entity"));
    Ok(GraphResponse::json(StatusCode::OK, body))
}
