//! The admin API under `/_sim` (no auth): change the catalog and directory (users' properties and
//! licences, soft deletion and restore, group members) and users' installations out of band
//! while a test runs, send lifecycle events to and expire subscriptions, read the notification
//! log,
//! inject faults, expire tokens, read the request log, reset to the seed. Changes live in memory
//! only; `POST /_sim/reset` returns to the seed the simulator started with.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Shared;
use super::admin_ops::MemberChange;
use super::faults::FaultConfig;
use super::journal::RequestRecord;
use super::notify::{LifecycleEvent, NotificationRecord};
use super::seed::{
    AppSeed, ClientPatch, ClientSeed, DefinitionSeed, InstallationSeed, TeamsAppSettings,
    TenantSeed, TenantSettings, UserPatch, UserSeed,
};
use super::state::AdminError;

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            AdminError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": self.to_string()}})),
        )
            .into_response()
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(bytes).map_err(|e| AdminError::Invalid(format!("invalid body: {e}")))
}

/// A single object or an array of them.
fn one_or_many<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, AdminError> {
    match parse::<Value>(bytes)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| {
                serde_json::from_value(v)
                    .map_err(|e| AdminError::Invalid(format!("invalid body: {e}")))
            })
            .collect(),
        one => {
            Ok(vec![serde_json::from_value(one).map_err(|e| {
                AdminError::Invalid(format!("invalid body: {e}"))
            })?])
        }
    }
}

type Answer = Result<(StatusCode, Json<Value>), AdminError>;

async fn add_tenant(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    let seed: TenantSeed = parse(&body)?;
    shared.add_tenant(&seed)?;
    Ok((StatusCode::CREATED, Json(json!({"id": seed.id}))))
}

async fn add_client(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Answer {
    let seed: ClientSeed = parse(&body)?;
    shared.add_client(&tenant, &seed)?;
    Ok((StatusCode::CREATED, Json(json!({"id": seed.id}))))
}

async fn patch_client(
    State(shared): State<Arc<Shared>>,
    Path((tenant, client)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let patch: ClientPatch = parse(&body)?;
    shared.patch_client(&tenant, &client, &patch)?;
    Ok((StatusCode::OK, Json(json!({"id": client}))))
}

async fn add_app(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Answer {
    let seed: AppSeed = parse(&body)?;
    Ok((StatusCode::CREATED, Json(shared.add_app(&tenant, &seed)?)))
}

async fn add_definition(
    State(shared): State<Arc<Shared>>,
    Path((tenant, app)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let seed: DefinitionSeed = parse(&body)?;
    let (created, definition) = shared.add_definition(&tenant, &app, &seed)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(definition)))
}

/// Applied in order; stops at the first error (earlier items stay added).
async fn add_users(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Answer {
    let seeds: Vec<UserSeed> = one_or_many(&body)?;
    let added = seeds
        .iter()
        .map(|s| shared.add_user(&tenant, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((StatusCode::CREATED, Json(Value::Array(added))))
}

/// Applied in order; stops at the first error (earlier items stay added).
async fn add_installations(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Answer {
    let seeds: Vec<InstallationSeed> = one_or_many(&body)?;
    let added = seeds
        .iter()
        .map(|s| shared.add_installation(&tenant, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((StatusCode::CREATED, Json(Value::Array(added))))
}

async fn patch_user(
    State(shared): State<Arc<Shared>>,
    Path((tenant, user)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let patch: UserPatch = parse(&body)?;
    Ok((
        StatusCode::OK,
        Json(shared.patch_user(&tenant, &user, &patch)?),
    ))
}

async fn patch_tenant(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Answer {
    let change: TenantSettings = parse(&body)?;
    let settings = shared.patch_tenant(&tenant, &change)?;
    Ok((StatusCode::OK, Json(json!(settings))))
}

async fn patch_teams_app_settings(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Answer {
    let change: TeamsAppSettings = parse(&body)?;
    let settings = shared.patch_teams_app_settings(&tenant, &change)?;
    Ok((StatusCode::OK, Json(json!(settings))))
}

async fn delete_user(
    State(shared): State<Arc<Shared>>,
    Path((tenant, user)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    shared.delete_user(&tenant, &user)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restore_user(
    State(shared): State<Arc<Shared>>,
    Path((tenant, user)): Path<(String, String)>,
) -> Answer {
    Ok((StatusCode::OK, Json(shared.restore_user(&tenant, &user)?)))
}

/// The body of `POST …/groups/{group}/members`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberRef {
    /// A user id, UPN or group id.
    id: String,
}

async fn add_group_member(
    State(shared): State<Arc<Shared>>,
    Path((tenant, group)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, AdminError> {
    let member: MemberRef = parse(&body)?;
    shared.change_group_member(&tenant, &group, &member.id, MemberChange::Add)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_group_member(
    State(shared): State<Arc<Shared>>,
    Path((tenant, group, member)): Path<(String, String, String)>,
) -> Result<StatusCode, AdminError> {
    shared.change_group_member(&tenant, &group, &member, MemberChange::Remove)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn requests(State(shared): State<Arc<Shared>>) -> Json<Vec<RequestRecord>> {
    Json(shared.requests())
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear_requests();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<FaultConfig> {
    Json(shared.faults())
}

async fn put_faults(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<StatusCode, AdminError> {
    shared.set_faults(parse(&body)?)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    let _ = shared.set_faults(shared.options.faults.clone());
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.state())
}

async fn uninstall_for_user(
    State(shared): State<Arc<Shared>>,
    Path((tenant, user, app)): Path<(String, String, String)>,
) -> Result<StatusCode, AdminError> {
    shared.uninstall_for_user(&tenant, &user, &app)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn upgrade_for_user(
    State(shared): State<Arc<Shared>>,
    Path((tenant, user, app)): Path<(String, String, String)>,
) -> Answer {
    Ok((
        StatusCode::OK,
        Json(shared.upgrade_for_user(&tenant, &user, &app)?),
    ))
}

async fn subscriptions(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.subscriptions())
}

/// The body of `POST /_sim/subscriptions/{id}/lifecycle`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleRequest {
    event: LifecycleEvent,
}

async fn send_lifecycle(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AdminError> {
    let request: LifecycleRequest = parse(&body)?;
    shared.send_lifecycle(&id, request.event)?;
    Ok(StatusCode::ACCEPTED)
}

async fn expire_subscription(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    shared.expire_subscription(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn notifications(State(shared): State<Arc<Shared>>) -> Json<Vec<NotificationRecord>> {
    Json(shared.notifications())
}

async fn clear_notifications(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear_notifications();
    StatusCode::NO_CONTENT
}

async fn not_found() -> AdminError {
    AdminError::NotFound("no such /_sim endpoint".into())
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/tenants", post(add_tenant))
        .route("/tenants/{tenant}", patch(patch_tenant))
        .route(
            "/tenants/{tenant}/teamsAppSettings",
            patch(patch_teams_app_settings),
        )
        .route("/tenants/{tenant}/clients", post(add_client))
        .route("/tenants/{tenant}/clients/{client}", patch(patch_client))
        .route("/tenants/{tenant}/apps", post(add_app))
        .route(
            "/tenants/{tenant}/apps/{app}/definitions",
            post(add_definition),
        )
        .route("/tenants/{tenant}/users", post(add_users))
        .route(
            "/tenants/{tenant}/users/{user}",
            patch(patch_user).delete(delete_user),
        )
        .route("/tenants/{tenant}/users/{user}/restore", post(restore_user))
        .route(
            "/tenants/{tenant}/groups/{group}/members",
            post(add_group_member),
        )
        .route(
            "/tenants/{tenant}/groups/{group}/members/{member}",
            delete(remove_group_member),
        )
        .route("/tenants/{tenant}/installations", post(add_installations))
        .route(
            "/tenants/{tenant}/users/{user}/installations/{app}",
            delete(uninstall_for_user),
        )
        .route(
            "/tenants/{tenant}/users/{user}/installations/{app}/upgrade",
            post(upgrade_for_user),
        )
        .route("/subscriptions", get(subscriptions))
        .route("/subscriptions/{id}/lifecycle", post(send_lifecycle))
        .route("/subscriptions/{id}/expire", post(expire_subscription))
        .route(
            "/notifications",
            get(notifications).delete(clear_notifications),
        )
        .route("/requests", get(requests).delete(clear_requests))
        .route(
            "/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/tokens/expire", post(expire_tokens))
        .route("/reset", post(reset))
        .route("/state", get(state))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
}
