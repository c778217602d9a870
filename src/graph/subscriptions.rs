//! Change-notification subscriptions on a catalog app's personal-scope installations: create,
//! renew and delete, as Graph documents them
//! (<https://learn.microsoft.com/graph/api/subscription-post-subscriptions>,
//! <https://learn.microsoft.com/graph/teams-changenotifications-appinstallation>).
//!
//! Graph keeps such a subscription at most 4,320 minutes (3 days); one that should live longer
//! than an hour needs a `lifecycleNotificationUrl`, where Graph says when it must be renewed or
//! has removed it (<https://learn.microsoft.com/graph/change-notifications-lifecycle-events>).
//! A create is answered only after Graph has run the validation handshake against both URLs,
//! so it takes as long as the receiver takes to answer it.

use std::fmt;

use jiff::Timestamp;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::budget::CallClass;
use super::client::{Call, GraphClient, Target, decode};
use super::error::GraphError;
use super::metrics::Operation;
use super::odata::{Route, encode_path_segment};

/// Every change to an installation: install (`created`), upgrade (`updated`), uninstall
/// (`deleted`).
pub const CHANGE_TYPES: &str = "created,updated,deleted";

/// The resource of a subscription on `teams_app_id`'s personal-scope installations, as Graph's
/// page writes it.
pub fn installations_resource(teams_app_id: &str) -> String {
    format!(
        "/appCatalogs/teamsApps/{}/installations?$filter=(scopeInfo/scope eq 'personal')",
        encode_path_segment(teams_app_id)
    )
}

/// What a new subscription asks for.
#[derive(Clone)]
pub struct SubscriptionRequest {
    pub teams_app_id: String,
    pub notification_url: String,
    /// Required by Graph when `expiration` is more than an hour ahead.
    pub lifecycle_url: Option<String>,
    pub expiration: Timestamp,
    /// The secret Graph echoes in every notification (see
    /// [`crate::notification::secrets`]); never logged.
    pub client_state: String,
    /// Ask for rich notifications, encrypted for this certificate.
    pub resource_data: Option<ResourceData>,
}

impl fmt::Debug for SubscriptionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionRequest")
            .field("teams_app_id", &self.teams_app_id)
            .field("notification_url", &self.notification_url)
            .field("lifecycle_url", &self.lifecycle_url)
            .field("expiration", &self.expiration)
            .field("client_state", &"<redacted>")
            .field("resource_data", &self.resource_data)
            .finish()
    }
}

/// The certificate rich notifications are encrypted for: base64 DER and the id the
/// notifications name it by (<https://learn.microsoft.com/graph/change-notifications-with-resource-data>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceData {
    pub certificate_base64: String,
    pub certificate_id: String,
}

/// A subscription as Graph answered it. `expiration` may be sooner than asked: Graph shortens a
/// lifetime it will not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSubscription {
    pub id: String,
    pub resource: String,
    pub expiration: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody<'a> {
    change_type: &'static str,
    notification_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifecycle_notification_url: Option<&'a str>,
    resource: String,
    expiration_date_time: String,
    client_state: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    include_resource_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_certificate: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_certificate_id: Option<&'a str>,
}

impl<'a> CreateBody<'a> {
    fn of(request: &'a SubscriptionRequest) -> Self {
        let rich = request.resource_data.as_ref();
        Self {
            change_type: CHANGE_TYPES,
            notification_url: &request.notification_url,
            lifecycle_notification_url: request.lifecycle_url.as_deref(),
            resource: installations_resource(&request.teams_app_id),
            expiration_date_time: wire_time(request.expiration),
            client_state: &request.client_state,
            include_resource_data: rich.is_some(),
            encryption_certificate: rich.map(|r| r.certificate_base64.as_str()),
            encryption_certificate_id: rich.map(|r| r.certificate_id.as_str()),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenewBody {
    expiration_date_time: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSubscription {
    id: String,
    #[serde(default)]
    resource: String,
    expiration_date_time: Timestamp,
}

impl From<WireSubscription> for GraphSubscription {
    fn from(w: WireSubscription) -> Self {
        Self {
            id: w.id,
            resource: w.resource,
            expiration: w.expiration_date_time,
        }
    }
}

/// Whole seconds, UTC (`2026-12-06T08:00:00Z`): what Graph's examples send.
fn wire_time(at: Timestamp) -> String {
    Timestamp::from_second(at.as_second())
        .unwrap_or(at)
        .to_string()
}

pub(crate) fn subscriptions_route() -> Route {
    Route::new().lit("subscriptions")
}

pub(crate) fn subscription_route(id: &str) -> Route {
    subscriptions_route().seg(id)
}

impl GraphClient {
    /// Creates a subscription. Graph runs the validation handshake against both URLs before it
    /// answers, so the receiver must be up (and its `clientState` table ready) first.
    pub async fn create_subscription(
        &self,
        request: &SubscriptionRequest,
    ) -> Result<GraphSubscription, GraphError> {
        let body = to_json(&CreateBody::of(request))?;
        self.subscription_call(
            Operation::CreateSubscription,
            Method::POST,
            subscriptions_route(),
            Some(body),
        )
        .await
    }

    /// Moves a subscription's expiry to `expiration` (no new handshake). A 404 means Graph no
    /// longer has it: it must be created again.
    pub async fn renew_subscription(
        &self,
        id: &str,
        expiration: Timestamp,
    ) -> Result<GraphSubscription, GraphError> {
        let body = to_json(&RenewBody {
            expiration_date_time: wire_time(expiration),
        })?;
        self.subscription_call(
            Operation::RenewSubscription,
            Method::PATCH,
            subscription_route(id),
            Some(body),
        )
        .await
    }

    /// Deletes a subscription; one Graph no longer has (404) counts as deleted.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), GraphError> {
        let result = self
            .send(Call {
                op: Operation::DeleteSubscription,
                method: Method::DELETE,
                target: Target::Route(subscription_route(id)),
                body: None,
                class: Some(CallClass::Other),
                eventual_consistency: false,
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn subscription_call(
        &self,
        op: Operation,
        method: Method,
        route: Route,
        body: Option<serde_json::Value>,
    ) -> Result<GraphSubscription, GraphError> {
        let verb = method.as_str().to_string();
        let reply = self
            .send(Call {
                op,
                method,
                target: Target::Route(route),
                body,
                class: Some(CallClass::Other),
                eventual_consistency: false,
            })
            .await?;
        decode::<WireSubscription>(&reply, &verb).map(GraphSubscription::from)
    }
}

fn to_json(body: &impl Serialize) -> Result<serde_json::Value, GraphError> {
    serde_json::to_value(body).map_err(|e| GraphError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> SubscriptionRequest {
        SubscriptionRequest {
            teams_app_id: "3f7a".into(),
            notification_url: "https://op.example/graph/notifications".into(),
            lifecycle_url: Some("https://op.example/graph/lifecycle".into()),
            expiration: "2026-12-09T07:30:00.123456Z".parse().unwrap(),
            client_state: "s3cret".into(),
            resource_data: None,
        }
    }

    #[test]
    fn routes_match_the_contract() {
        assert_eq!(subscriptions_route().relative(), "/subscriptions");
        assert_eq!(
            subscription_route("7ac5/..").relative(),
            "/subscriptions/7ac5%2F.."
        );
        assert_eq!(
            installations_resource("3f7a"),
            "/appCatalogs/teamsApps/3f7a/installations?$filter=(scopeInfo/scope eq 'personal')"
        );
    }

    #[test]
    fn a_create_asks_for_every_change_of_the_app() {
        let request = request();
        assert_eq!(
            serde_json::to_value(CreateBody::of(&request)).unwrap(),
            json!({
                "changeType": "created,updated,deleted",
                "notificationUrl": "https://op.example/graph/notifications",
                "lifecycleNotificationUrl": "https://op.example/graph/lifecycle",
                "resource": "/appCatalogs/teamsApps/3f7a/installations?$filter=(scopeInfo/scope eq 'personal')",
                "expirationDateTime": "2026-12-09T07:30:00Z",
                "clientState": "s3cret",
            })
        );
    }

    #[test]
    fn a_rich_create_names_its_certificate() {
        let mut request = request();
        request.lifecycle_url = None;
        request.resource_data = Some(ResourceData {
            certificate_base64: "MIIB".into(),
            certificate_id: "cert-1".into(),
        });
        let body = serde_json::to_value(CreateBody::of(&request)).unwrap();
        assert_eq!(body["includeResourceData"], true);
        assert_eq!(body["encryptionCertificate"], "MIIB");
        assert_eq!(body["encryptionCertificateId"], "cert-1");
        assert!(body.get("lifecycleNotificationUrl").is_none());
    }

    #[test]
    fn a_renewal_sends_only_the_expiry_and_secrets_stay_out_of_debug() {
        let at: Timestamp = "2026-12-09T07:30:00Z".parse().unwrap();
        assert_eq!(
            serde_json::to_value(RenewBody {
                expiration_date_time: wire_time(at)
            })
            .unwrap(),
            json!({"expirationDateTime": "2026-12-09T07:30:00Z"})
        );
        assert!(!format!("{:?}", request()).contains("s3cret"));
    }

    #[test]
    fn graphs_answer_decodes() {
        let wire: WireSubscription = serde_json::from_value(json!({
            "id": "7ac50e0f-4526-44bc-8e75-834c16143e5d",
            "resource": "/appCatalogs/teamsApps/3f7a/installations",
            "expirationDateTime": "2026-12-09T07:30:00.9356913Z",
            "clientState": "s3cret",
        }))
        .unwrap();
        let sub = GraphSubscription::from(wire);
        assert_eq!(sub.id, "7ac50e0f-4526-44bc-8e75-834c16143e5d");
        assert_eq!(sub.expiration.as_second(), 1_796_801_400);
    }
}
