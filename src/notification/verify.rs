//! One item of a notification collection → an event for the operator, or the reason it was
//! refused. Pure but for the RSA decryption of rich notifications (no I/O, no clock).
//!
//! The order matters: the sender is established first (the subscription is ours and the
//! `clientState` matches), so that nothing an unauthenticated item says is acted on, decrypted
//! or logged beyond its claimed subscription id.

use super::counts::Refusal;
use super::decrypt::{DecryptError, DecryptionKeys};
use super::payload::{DecryptedInstallation, Item};
use super::resource::parse_resource;
use super::secrets::SubscriptionSecrets;
use super::{ChangeType, LifecycleEvent, LifecycleKind, Notification, NotificationEvent};

/// An accepted item, and whether it carried resource data this process has no key for (it is
/// handed on without the user, which the operator must then find another way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub notification: Notification,
    pub without_key: bool,
}

/// Checks one item.
pub(crate) fn check(
    item: Item,
    secrets: &SubscriptionSecrets,
    keys: &DecryptionKeys,
) -> Result<Accepted, Refusal> {
    let subscription_id = item.subscription_id.clone().ok_or(Refusal::Malformed)?;
    let tenant_id = item.tenant_id.clone().ok_or(Refusal::Malformed)?;
    secrets.verify(&subscription_id, &tenant_id, item.client_state.as_deref())?;
    if let Some(event) = &item.lifecycle_event {
        let kind = LifecycleKind::parse(event).ok_or(Refusal::Malformed)?;
        return Ok(Accepted {
            notification: Notification::Lifecycle(LifecycleEvent {
                subscription_id,
                tenant_id,
                kind,
            }),
            without_key: false,
        });
    }
    let change = item
        .change_type
        .as_deref()
        .and_then(ChangeType::parse)
        .ok_or(Refusal::Malformed)?;
    let resource = item.resource.clone().ok_or(Refusal::Malformed)?;
    let target = parse_resource(&resource).ok_or(Refusal::Malformed)?;
    let (user_id, without_key) = match &item.encrypted_content {
        None => (None, false),
        Some(content) => match keys.decrypt(content) {
            Ok(plain) => (user_of(&plain, &target)?, false),
            Err(DecryptError::UnknownCertificate(_)) => (None, true),
            Err(DecryptError::Signature) => return Err(Refusal::BadSignature),
            Err(_) => return Err(Refusal::Undecryptable),
        },
    };
    Ok(Accepted {
        notification: Notification::Change(NotificationEvent {
            subscription_id,
            tenant_id,
            change,
            resource,
            installation_id: target.installation_id,
            teams_app_id: target.teams_app_id,
            user_id,
        }),
        without_key,
    })
}

/// The user of a decrypted installation (personal scope only), once it is shown to be the
/// installation the notification names: a signed blob for another installation, replayed under
/// this resource, must not redirect the operator to another user.
fn user_of(plain: &[u8], target: &super::InstallationRef) -> Result<Option<String>, Refusal> {
    let installation: DecryptedInstallation =
        serde_json::from_slice(plain).map_err(|_| Refusal::Undecryptable)?;
    let same_installation = installation
        .id
        .as_deref()
        .is_none_or(|id| id == target.installation_id);
    let same_app = installation
        .teams_app
        .as_ref()
        .and_then(|app| app.id.as_deref())
        .is_none_or(|id| id.eq_ignore_ascii_case(&target.teams_app_id));
    if !(same_installation && same_app) {
        return Err(Refusal::Undecryptable);
    }
    let user = installation.scope_info.and_then(|scope| {
        let personal = scope
            .scope
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("personal"));
        scope.user_id.filter(|u| personal && !u.trim().is_empty())
    });
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::decrypt::graph_side::{encrypt, test_key};
    use crate::notification::secrets::ClientState;
    use serde_json::{Value, json};

    const SUB: &str = "7ac50e0f-4526-44bc-8e75-834c16143e5d";
    const TENANT: &str = "00000000-0000-0000-0000-000000000001";
    const APP: &str = "33333333-3333-3333-3333-333333333333";
    const INSTALLATION: &str = "MjIyMjIyMjIt/+==";
    const USER: &str = "22222222-2222-2222-2222-222222222222";

    fn world() -> (SubscriptionSecrets, DecryptionKeys) {
        let secrets = SubscriptionSecrets::new();
        secrets.insert(SUB, TENANT, ClientState::new("right"));
        let keys = DecryptionKeys::new();
        keys.insert("cert-1", test_key().clone());
        (secrets, keys)
    }

    fn item(extra: Value) -> Item {
        let mut value = json!({
            "subscriptionId": SUB,
            "clientState": "right",
            "tenantId": TENANT,
            "changeType": "created",
            "resource": format!("appCatalogs/teamsApps('{APP}')/installations('{INSTALLATION}')"),
        });
        if let (Some(map), Value::Object(extra)) = (value.as_object_mut(), extra) {
            map.extend(extra);
        }
        Item::read(value).unwrap()
    }

    fn checked(extra: Value) -> Result<Accepted, Refusal> {
        let (secrets, keys) = world();
        check(item(extra), &secrets, &keys)
    }

    fn change(extra: Value) -> NotificationEvent {
        match checked(extra).map(|a| a.notification) {
            Ok(Notification::Change(event)) => event,
            other => panic!("not a change: {other:?}"),
        }
    }

    fn rich(installation: Value) -> Value {
        let plain = serde_json::to_vec(&installation).unwrap();
        let content = encrypt(&test_key().to_public_key(), "cert-1", &plain);
        json!({"encryptedContent": {
            "data": content.data, "dataKey": content.data_key,
            "dataSignature": content.data_signature,
            "encryptionCertificateId": content.encryption_certificate_id,
        }})
    }

    #[test]
    fn a_plain_change() {
        let event = change(json!({"changeType": "deleted"}));
        assert_eq!(event.change, ChangeType::Deleted);
        assert_eq!(event.teams_app_id, APP);
        assert_eq!(event.installation_id, INSTALLATION);
        assert_eq!(event.user_id, None);
        assert_eq!(event.tenant_id, TENANT);
    }

    #[test]
    fn authentication_comes_first() {
        let wrong = json!({"clientState": "wrong", "changeType": "moved"});
        assert_eq!(checked(wrong).unwrap_err(), Refusal::WrongClientState);
        let unknown = json!({"subscriptionId": "other"});
        assert_eq!(checked(unknown).unwrap_err(), Refusal::UnknownSubscription);
        let no_state = item(json!({}));
        let no_state = Item {
            client_state: None,
            ..no_state
        };
        let (secrets, keys) = world();
        assert_eq!(
            check(no_state, &secrets, &keys).unwrap_err(),
            Refusal::WrongClientState
        );
    }

    #[test]
    fn malformed_but_authentic() {
        for extra in [
            json!({"changeType": "moved"}),
            json!({"resource": "users/x/teamwork/installedApps('y')"}),
            json!({"lifecycleEvent": "somethingNew"}),
        ] {
            assert_eq!(
                checked(extra.clone()).unwrap_err(),
                Refusal::Malformed,
                "{extra}"
            );
        }
    }

    #[test]
    fn lifecycle_events() {
        let accepted = checked(json!({"lifecycleEvent": "reauthorizationRequired"})).unwrap();
        assert_eq!(
            accepted.notification,
            Notification::Lifecycle(LifecycleEvent {
                subscription_id: SUB.into(),
                tenant_id: TENANT.into(),
                kind: LifecycleKind::ReauthorizationRequired,
            })
        );
    }

    #[test]
    fn rich_notifications_name_the_user() {
        let installation = json!({
            "id": INSTALLATION, "teamsApp": {"id": APP},
            "scopeInfo": {"scope": "personal", "userId": USER},
        });
        assert_eq!(change(rich(installation)).user_id.as_deref(), Some(USER));
        let team = json!({"id": INSTALLATION, "scopeInfo": {"scope": "team", "teamId": "t"}});
        assert_eq!(change(rich(team)).user_id, None);
    }

    #[test]
    fn rich_data_for_another_installation_or_without_a_key() {
        let other = json!({"id": "another", "scopeInfo": {"userId": USER}});
        assert_eq!(checked(rich(other)).unwrap_err(), Refusal::Undecryptable);
        let mut tampered = rich(json!({"id": INSTALLATION}));
        tampered["encryptedContent"]["dataSignature"] = json!("AAAA");
        assert_eq!(checked(tampered).unwrap_err(), Refusal::BadSignature);
        let mut unknown_cert = rich(json!({"id": INSTALLATION}));
        unknown_cert["encryptedContent"]["encryptionCertificateId"] = json!("cert-old");
        let accepted = checked(unknown_cert).unwrap();
        assert!(accepted.without_key);
    }
}
