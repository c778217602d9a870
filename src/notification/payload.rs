//! What Graph POSTs, as it arrives: a `changeNotificationCollection`
//! (<https://learn.microsoft.com/graph/api/resources/changenotificationcollection>) of
//! `changeNotification` items
//! (<https://learn.microsoft.com/graph/api/resources/changenotification>), lifecycle events in
//! the same envelope (<https://learn.microsoft.com/graph/change-notifications-lifecycle-events>),
//! and the `encryptedContent` of rich notifications
//! (<https://learn.microsoft.com/graph/api/resources/changenotificationencryptedcontent>).
//!
//! The envelope is read first and each item on its own, so that one item Graph (or anybody)
//! got wrong costs that item, not its neighbours. Unknown fields are ignored: Graph adds some
//! (`validationTokens`, `organizationId`, `@odata.type`) that the receiver has no use for.

use serde::Deserialize;
use serde_json::Value;

/// The envelope: `{"value": [ … ]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Collection {
    pub value: Vec<Value>,
}

/// One change notification or lifecycle event. Every field is optional here; what an item must
/// carry is [`super::verify`]'s business.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Item {
    pub subscription_id: Option<String>,
    pub client_state: Option<String>,
    pub tenant_id: Option<String>,
    /// `created`, `updated` or `deleted`; absent in a lifecycle event.
    pub change_type: Option<String>,
    /// `appCatalogs/teamsApps('{app}')/installations('{id}')`.
    pub resource: Option<String>,
    /// Present only when the subscription asked for resource data.
    pub encrypted_content: Option<EncryptedContent>,
    /// `reauthorizationRequired`, `subscriptionRemoved` or `missed`; only in lifecycle events.
    pub lifecycle_event: Option<String>,
}

impl Item {
    /// `None` when the item is not even shaped like a notification (a string, a number, a field
    /// of the wrong type).
    pub fn read(value: Value) -> Option<Item> {
        serde_json::from_value(value).ok()
    }
}

/// A rich notification's encrypted resource. All four fields are needed to decrypt it; the
/// thumbprint is informative only (the id names the key).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EncryptedContent {
    /// Base64 of the AES-CBC ciphertext of the resource's JSON.
    pub data: String,
    /// Base64 of the symmetric key, RSA-OAEP encrypted for our certificate.
    pub data_key: String,
    /// Base64 of HMAC-SHA256 over the ciphertext, keyed with the symmetric key.
    pub data_signature: String,
    /// The id we gave the certificate when subscribing.
    pub encryption_certificate_id: String,
}

/// The part of the decrypted installation the operator uses: Graph's teamsAppInstallation with
/// `scopeInfo` (<https://learn.microsoft.com/graph/api/resources/personalteamsappinstallationscopeinfo>),
/// whose `userId` names the one user whose installations changed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DecryptedInstallation {
    pub id: Option<String>,
    pub teams_app: Option<IdOnly>,
    pub scope_info: Option<ScopeInfo>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct IdOnly {
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScopeInfo {
    /// `personal`, `team` or `groupChat`.
    pub scope: Option<String>,
    /// Set in personal scope.
    pub user_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graphs_example_reads() {
        // The shape of Microsoft's example for app installations (ids shortened).
        let body = json!({
            "value": [{
                "subscriptionId": "7ac50e0f",
                "changeType": "created",
                "clientState": "state",
                "subscriptionExpirationDateTime": "2023-11-16T11:00:00.0000000Z",
                "resource": "appCatalogs/teamsApps('19d5')/installations('N2Vl')",
                "resourceData": {"id": "N2Vl", "@odata.type": "#Microsoft.Graph.teamsAppInstallation"},
                "encryptedContent": {
                    "data": "ZA==", "dataKey": "aw==", "dataSignature": "cw==",
                    "encryptionCertificateId": "cert", "encryptionCertificateThumbprint": "AB"
                },
                "tenantId": "tenant"
            }],
            "validationTokens": ["eyJ0"]
        });
        let collection: Collection = serde_json::from_value(body).unwrap();
        let item = Item::read(collection.value[0].clone()).unwrap();
        assert_eq!(item.subscription_id.as_deref(), Some("7ac50e0f"));
        assert_eq!(item.change_type.as_deref(), Some("created"));
        assert_eq!(item.tenant_id.as_deref(), Some("tenant"));
        let content = item.encrypted_content.unwrap();
        assert_eq!(content.encryption_certificate_id, "cert");
        assert!(item.lifecycle_event.is_none());
    }

    #[test]
    fn items_of_the_wrong_shape_are_none() {
        assert!(Item::read(json!("text")).is_none());
        assert!(Item::read(json!({"subscriptionId": 7})).is_none());
        assert!(Item::read(json!({"encryptedContent": {"data": "x"}})).is_none());
        assert!(Item::read(json!({})).is_some());
    }
}
