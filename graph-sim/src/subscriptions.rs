//! Change-notification subscriptions (`/subscriptions`), for the one resource the operator
//! subscribes to: a catalog app's personal-scope installations,
//! `/appCatalogs/teamsApps/{teams-app-id}/installations?$filter=(scopeInfo/scope eq 'personal')`.
//!
//! The rules follow Microsoft's pages:
//! - the subscription resource type and its fields:
//!   <https://learn.microsoft.com/graph/api/resources/subscription>
//! - create, update (renew), delete, list:
//!   <https://learn.microsoft.com/graph/api/subscription-post-subscriptions>,
//!   <https://learn.microsoft.com/graph/api/subscription-update>,
//!   <https://learn.microsoft.com/graph/api/subscription-delete>,
//!   <https://learn.microsoft.com/graph/api/subscription-list>
//! - the Teams app installation resource, its permissions, its 4,320-minute (3-day) maximum
//!   lifetime and the `lifecycleNotificationUrl` rule past one hour:
//!   <https://learn.microsoft.com/graph/teams-changenotifications-appinstallation>
//! - the validation handshake (`?validationToken=…`, echoed as `text/plain` with 200 within 10
//!   seconds): <https://learn.microsoft.com/graph/change-notifications-delivery-webhooks>
//!
//! Creating one needs the handshake, an HTTP round trip that must not run under the
//! simulator's lock: [`prepare`] checks the request under the lock, the caller validates the
//! URLs without it, and [`commit`] stores the subscription under the lock again.

use axum::http::{Method, StatusCode};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::auth::Principal;
use super::errors::{GraphError, GraphResponse};
use super::faults::FaultConfig;
use super::permissions;
use super::state::World;
pub(crate) use super::subscription_rules::ChangeType;
use super::subscription_rules::{
    app_of_resource, check_certificate, checked_expiration, checked_url, parse_change_types,
    parse_expiration,
};

/// One subscription, as stored.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub id: String,
    /// The tenant id as seeded.
    pub tenant: String,
    /// The catalog app whose installations it covers.
    pub app_id: String,
    /// As the client wrote it.
    pub resource: String,
    pub change_types: Vec<ChangeType>,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub expiration: Timestamp,
    pub client_state: Option<String>,
    pub include_resource_data: bool,
    /// Base64 DER X.509 certificate whose public key encrypts resource data.
    pub encryption_certificate: Option<String>,
    pub encryption_certificate_id: Option<String>,
    /// The client (application) that created it; app-only, so also its creator.
    pub application_id: String,
}

impl Subscription {
    pub fn covers(&self, change: ChangeType) -> bool {
        self.change_types.contains(&change)
    }

    pub fn change_type_text(&self) -> String {
        let names: Vec<&str> = self.change_types.iter().map(|c| c.as_str()).collect();
        names.join(",")
    }

    fn render(&self, service_root: &str) -> Value {
        json!({
            "@odata.context": format!("{service_root}/$metadata#subscriptions/$entity"),
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type_text(),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": null,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": self.expiration.to_string(),
            "creatorId": self.application_id,
            "includeResourceData": self.include_resource_data,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": self.encryption_certificate,
            "encryptionCertificateId": self.encryption_certificate_id,
            "notificationUrlAppId": null,
        })
    }
}

/// Every tenant's subscriptions (a reset empties it: the seed has none).
#[derive(Default)]
pub(crate) struct Subscriptions {
    items: Vec<Subscription>,
}

impl Subscriptions {
    pub fn get(&self, id: &str) -> Option<&Subscription> {
        self.items.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    /// Removes and returns subscription `id`.
    pub fn remove(&mut self, id: &str) -> Option<Subscription> {
        let i = self
            .items
            .iter()
            .position(|s| s.id.eq_ignore_ascii_case(id))?;
        Some(self.items.remove(i))
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    pub fn all(&self) -> &[Subscription] {
        &self.items
    }

    /// The live subscriptions of `tenant` on `app` that ask for `change`.
    pub fn matching(
        &self,
        tenant: &str,
        app: &str,
        change: ChangeType,
        now: Timestamp,
    ) -> Vec<Subscription> {
        self.items
            .iter()
            .filter(|s| {
                s.tenant.eq_ignore_ascii_case(tenant)
                    && s.app_id.eq_ignore_ascii_case(app)
                    && s.covers(change)
                    && s.expiration > now
            })
            .cloned()
            .collect()
    }
}

/// A create that passed every check but the handshake.
pub(crate) struct Draft {
    pub subscription: Subscription,
    pub service_root: String,
}

impl Draft {
    /// The URLs the handshake must validate: the notification URL, then the lifecycle URL.
    pub fn urls(&self) -> Vec<String> {
        let s = &self.subscription;
        std::iter::once(s.notification_url.clone())
            .chain(s.lifecycle_url.clone())
            .collect()
    }
}

/// `POST /subscriptions` up to the handshake.
pub(crate) fn prepare(
    world: &World,
    faults: &FaultConfig,
    principal: &Principal,
    body: Result<Option<Value>, GraphError>,
    service_root: String,
) -> Result<Draft, GraphError> {
    let body = body?.unwrap_or(Value::Null);
    let body = body
        .as_object()
        .ok_or_else(|| GraphError::bad_request("The request body must be a JSON object."))?;
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    let required = |name: &str| {
        text(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| GraphError::bad_request(format!("The property '{name}' is required.")))
    };
    let change_types = parse_change_types(&required("changeType")?)?;
    let notification_url = checked_url("notificationUrl", &required("notificationUrl")?)?;
    let lifecycle_url = match text("lifecycleNotificationUrl").filter(|u| !u.trim().is_empty()) {
        Some(url) => Some(checked_url("lifecycleNotificationUrl", &url)?),
        None => None,
    };
    let resource = required("resource")?;
    let app_id = app_of_resource(&resource)?;
    let requested = parse_expiration(&required("expirationDateTime")?)?;
    let include_resource_data = body
        .get("includeResourceData")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let encryption_certificate = text("encryptionCertificate").filter(|c| !c.trim().is_empty());
    let encryption_certificate_id =
        text("encryptionCertificateId").filter(|c| !c.trim().is_empty());
    if include_resource_data {
        check_certificate(
            encryption_certificate.as_deref(),
            encryption_certificate_id.as_deref(),
        )?;
    }
    if !permissions::may_read_installations(&principal.roles) {
        return Err(permissions::missing_installation_read_role(
            &principal.roles,
        ));
    }
    let tenant = world
        .tenant(&principal.tenant)
        .ok_or_else(|| GraphError::unauthorized("The tenant of this token no longer exists."))?;
    if tenant.app(&app_id).is_none() {
        return Err(GraphError::not_found(format!(
            "The Teams app '{app_id}' was not found in the app catalog."
        )));
    }
    let expiration = checked_expiration(requested, lifecycle_url.is_some(), faults)?;
    Ok(Draft {
        subscription: Subscription {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.id.clone(),
            app_id,
            resource,
            change_types,
            notification_url,
            lifecycle_url,
            expiration,
            client_state: text("clientState"),
            include_resource_data,
            encryption_certificate,
            encryption_certificate_id,
            application_id: principal.client_id.clone(),
        },
        service_root,
    })
}

/// Stores a validated draft: 201 with the subscription.
pub(crate) fn commit(subscriptions: &mut Subscriptions, draft: Draft) -> GraphResponse {
    let body = draft.subscription.render(&draft.service_root);
    subscriptions.items.push(draft.subscription);
    GraphResponse::json(StatusCode::CREATED, body)
}

/// `GET /subscriptions[/{id}]`, `PATCH` and `DELETE /subscriptions/{id}`; the create is
/// [`prepare`] + handshake + [`commit`], which a `$batch` item cannot wait for.
pub(crate) fn serve(
    subscriptions: &mut Subscriptions,
    faults: &FaultConfig,
    principal: &Principal,
    method: &Method,
    id: Option<&str>,
    body: Result<Option<Value>, GraphError>,
    service_root: &str,
) -> Result<GraphResponse, GraphError> {
    let now = Timestamp::now();
    // Expired subscriptions are gone for Graph's API too.
    subscriptions.items.retain(|s| s.expiration > now);
    let own = |s: &Subscription| {
        s.tenant.eq_ignore_ascii_case(&principal.tenant)
            && s.application_id.eq_ignore_ascii_case(&principal.client_id)
    };
    match (method.clone(), id) {
        (Method::GET, None) => {
            let value: Vec<Value> = subscriptions
                .items
                .iter()
                .filter(|s| own(s))
                .map(|s| without_context(s.render(service_root)))
                .collect();
            Ok(GraphResponse::json(
                StatusCode::OK,
                json!({
                    "@odata.context": format!("{service_root}/$metadata#subscriptions"),
                    "value": value,
                }),
            ))
        }
        (Method::POST, None) => Err(GraphError::bad_request(
            "Creating a subscription is not supported inside a JSON batch: the validation \
             handshake cannot be waited for there.",
        )),
        (_, None) => Err(super::teamwork::not_allowed(method)),
        (method, Some(id)) => {
            let index = subscriptions
                .items
                .iter()
                .position(|s| s.id.eq_ignore_ascii_case(id) && own(s))
                .ok_or_else(|| {
                    GraphError::not_found(format!(
                        "The object was not found. Subscription '{id}' does not exist."
                    ))
                })?;
            match method {
                Method::GET => Ok(GraphResponse::json(
                    StatusCode::OK,
                    subscriptions.items[index].render(service_root),
                )),
                Method::PATCH => {
                    let body = body?.unwrap_or(Value::Null);
                    let requested = body
                        .get("expirationDateTime")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            GraphError::bad_request(
                                "The property 'expirationDateTime' is required.",
                            )
                        })
                        .and_then(parse_expiration)?;
                    let subscription = &mut subscriptions.items[index];
                    subscription.expiration = checked_expiration(
                        requested,
                        subscription.lifecycle_url.is_some(),
                        faults,
                    )?;
                    Ok(GraphResponse::json(
                        StatusCode::OK,
                        subscription.render(service_root),
                    ))
                }
                Method::DELETE => {
                    subscriptions.items.remove(index);
                    Ok(GraphResponse::empty(StatusCode::NO_CONTENT))
                }
                other => Err(super::teamwork::not_allowed(&other)),
            }
        }
    }
}

fn without_context(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.remove("@odata.context");
    }
    value
}

/// The handshake's refusal, as Graph words it.
pub(crate) fn validation_failed(detail: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "ValidationError",
        format!("Subscription validation request failed. {detail}"),
    )
}

/// A helper for `GET /_sim/subscriptions`: the fields as a map, for the admin API.
pub(crate) fn admin_view(s: &Subscription) -> Map<String, Value> {
    let mut map = match s.render("") {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.remove("@odata.context");
    map.insert("tenantId".into(), json!(s.tenant));
    map.insert("appId".into(), json!(s.app_id));
    map
}
