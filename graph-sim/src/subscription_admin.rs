//! The admin side of change notifications: out-of-band installation changes (a user
//! uninstalling, Teams updating an app), lifecycle events and early expiry of subscriptions,
//! and the notification log. [`super::admin`] routes them under `/_sim`.

use serde_json::{Value, json};

use super::Shared;
use super::notify::{self, LifecycleEvent, NotificationRecord};
use super::state::AdminError;
use super::subscriptions;

impl Shared {
    pub(crate) fn uninstall_for_user(
        &self,
        tenant: &str,
        user: &str,
        app: &str,
    ) -> Result<(), AdminError> {
        self.with_tenant(tenant, |t| {
            t.uninstall_out_of_band(user, app)?;
            tracing::info!(tenant = %t.id, user, app, "uninstalled out of band");
            Ok(())
        })
    }

    /// The version the installation moved to.
    pub(crate) fn upgrade_for_user(
        &self,
        tenant: &str,
        user: &str,
        app: &str,
    ) -> Result<Value, AdminError> {
        self.with_tenant(tenant, |t| {
            let version = t.upgrade_out_of_band(user, app)?;
            tracing::info!(tenant = %t.id, user, app, %version, "upgraded out of band");
            Ok(json!({"version": version}))
        })
    }

    /// Sends `event` to the subscription's lifecycle URL; `subscriptionRemoved` deletes the
    /// subscription first (Graph has removed it when it says so).
    pub(crate) fn send_lifecycle(&self, id: &str, event: LifecycleEvent) -> Result<(), AdminError> {
        let mut inner = self.lock();
        let subscription = inner
            .subscriptions
            .get(id)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("subscription {id} not found")))?;
        if subscription.lifecycle_url.is_none() {
            return Err(AdminError::Invalid(format!(
                "subscription {id} has no lifecycleNotificationUrl"
            )));
        }
        if event == LifecycleEvent::SubscriptionRemoved {
            inner.subscriptions.remove(id);
        }
        tracing::info!(id, ?event, "lifecycle event");
        notify::lifecycle(&mut inner, subscription, event);
        Ok(())
    }

    /// Ends a subscription now: it is deleted, and `subscriptionRemoved` goes to its lifecycle
    /// URL when it has one.
    pub(crate) fn expire_subscription(&self, id: &str) -> Result<(), AdminError> {
        let mut inner = self.lock();
        let subscription = inner
            .subscriptions
            .remove(id)
            .ok_or_else(|| AdminError::NotFound(format!("subscription {id} not found")))?;
        tracing::info!(id, "subscription expired early");
        if subscription.lifecycle_url.is_some() {
            notify::lifecycle(
                &mut inner,
                subscription,
                LifecycleEvent::SubscriptionRemoved,
            );
        }
        Ok(())
    }

    /// Every tenant's subscriptions, with `tenantId` and `appId`.
    pub(crate) fn subscriptions(&self) -> Value {
        let inner = self.lock();
        Value::Array(
            inner
                .subscriptions
                .all()
                .iter()
                .map(|s| Value::Object(subscriptions::admin_view(s)))
                .collect(),
        )
    }

    pub(crate) fn notifications(&self) -> Vec<NotificationRecord> {
        self.lock().notifier.log()
    }

    pub(crate) fn clear_notifications(&self) {
        self.lock().notifier.clear_log();
    }
}
