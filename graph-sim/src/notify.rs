//! Delivery of change and lifecycle notifications to subscribers.
//!
//! Every install, upgrade and uninstall of an app in a user's personal scope — through Graph or
//! the admin API — leaves an [`InstallChange`] on its tenant; [`flush`] (run under the lock at
//! the end of every Graph request and admin change) turns each into one job per live
//! subscription that asks for that change, onto a bounded queue. One worker takes the jobs in
//! order, waits out `notificationDelayMs`, checks that the subscription still exists and has not
//! expired, and POSTs Graph's `changeNotificationCollection`
//! (<https://learn.microsoft.com/graph/api/resources/changenotificationcollection>, items as in
//! <https://learn.microsoft.com/graph/api/resources/changenotification>) to its
//! `notificationUrl`. Lifecycle events go to the `lifecycleNotificationUrl` in the shape
//! <https://learn.microsoft.com/graph/change-notifications-lifecycle-events> shows. Nothing here
//! blocks a Graph call: a full queue loses the notification (logged `queueFull`), as a
//! subscriber that cannot keep up loses them with Graph. Every outcome is logged for
//! `GET /_sim/notifications`.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::faults::FaultConfig;
use super::state::{Install, Tenant};
use super::subscriptions::{ChangeType, Subscription};
use super::{Inner, Shared, render};

/// Jobs waiting for delivery at most; more are lost (`queueFull`).
pub(crate) const QUEUE_CAPACITY: usize = 4096;
/// Log entries kept; older ones go first.
const LOG_CAPACITY: usize = 10_000;
/// How long a subscriber may take to answer one notification.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A change to one installation, for the notifications it causes.
#[derive(Clone)]
pub(crate) struct InstallChange {
    pub change: ChangeType,
    /// The installation after the change (before it, for an uninstall).
    pub install: Install,
}

/// The lifecycle events Graph sends
/// (<https://learn.microsoft.com/graph/change-notifications-lifecycle-events>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleEvent {
    ReauthorizationRequired,
    SubscriptionRemoved,
    Missed,
}

impl LifecycleEvent {
    fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::Missed => "missed",
        }
    }
}

enum Payload {
    /// The rendered installation rides along for rich notifications.
    Change {
        change: ChangeType,
        install: Install,
        rendered: Value,
    },
    Lifecycle(LifecycleEvent),
}

pub(crate) struct Job {
    /// As it was when the job was queued; a change job re-reads it at delivery.
    subscription: Subscription,
    payload: Payload,
    due: tokio::time::Instant,
}

/// One delivery attempt (or a notification that was never sent), as `GET /_sim/notifications`
/// lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    pub time: Timestamp,
    pub subscription_id: String,
    pub tenant_id: String,
    /// `change` or `lifecycle`.
    pub kind: String,
    /// `created`, `updated` or `deleted` (change notifications).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_type: Option<String>,
    /// `reauthorizationRequired`, `subscriptionRemoved` or `missed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_event: Option<String>,
    /// The notification's `resource` (change notifications).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Where it was (or would have been) POSTed.
    pub url: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// `delivered` (2xx), `rejected` (another status), `failed` (no answer in time),
    /// `dropped` (`notificationDropRate`), `expired` / `removed` (the subscription was gone at
    /// delivery time), `queueFull`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether it carried `encryptedContent`.
    pub encrypted: bool,
}

/// The queue's sending end, the drop-rate generator and the delivery log.
pub(crate) struct Notifier {
    queue: mpsc::Sender<Job>,
    drops: StdRng,
    log: VecDeque<NotificationRecord>,
}

impl Notifier {
    pub fn new(queue: mpsc::Sender<Job>, faults: &FaultConfig) -> Self {
        Self {
            queue,
            drops: drop_rng(faults),
            log: VecDeque::new(),
        }
    }

    /// A new fault configuration restarts the drop sequence from its seed.
    pub fn set_faults(&mut self, faults: &FaultConfig) {
        self.drops = drop_rng(faults);
    }

    pub fn log(&self) -> Vec<NotificationRecord> {
        self.log.iter().cloned().collect()
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    fn record(&mut self, record: NotificationRecord) {
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(record);
    }

    fn enqueue(&mut self, job: Job) {
        if let Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) =
            self.queue.try_send(job)
        {
            tracing::warn!(subscription = %job.subscription.id, "notification queue full");
            self.record(job.record("queueFull", None, None));
        }
    }
}

fn drop_rng(faults: &FaultConfig) -> StdRng {
    StdRng::seed_from_u64(faults.notification_drop_seed.unwrap_or(0))
}

fn due(faults: &FaultConfig) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(faults.notification_delay_ms.unwrap_or(0))
}

/// `appCatalogs/teamsApps('{app}')/installations('{id}')`, the notification's `resource`.
fn resource_of(install: &Install) -> String {
    format!(
        "appCatalogs/teamsApps('{}')/installations('{}')",
        install.app_id,
        install.id()
    )
}

impl Job {
    fn url(&self) -> String {
        match self.payload {
            Payload::Change { .. } => self.subscription.notification_url.clone(),
            Payload::Lifecycle(_) => self.subscription.lifecycle_url.clone().unwrap_or_default(),
        }
    }

    fn record(
        &self,
        outcome: &str,
        status: Option<u16>,
        error: Option<String>,
    ) -> NotificationRecord {
        let (kind, change_type, lifecycle_event, resource) = match &self.payload {
            Payload::Change {
                change, install, ..
            } => (
                "change",
                Some(change.as_str().to_string()),
                None,
                Some(resource_of(install)),
            ),
            Payload::Lifecycle(event) => {
                ("lifecycle", None, Some(event.as_str().to_string()), None)
            }
        };
        NotificationRecord {
            time: Timestamp::now(),
            subscription_id: self.subscription.id.clone(),
            tenant_id: self.subscription.tenant.clone(),
            kind: kind.to_string(),
            change_type,
            lifecycle_event,
            resource,
            url: self.url(),
            status,
            outcome: outcome.to_string(),
            error,
            encrypted: false,
        }
    }

    /// The `changeNotificationCollection` to POST; the flag says whether it is encrypted.
    fn body(&self) -> (Value, bool) {
        let s = &self.subscription;
        let mut item = json!({
            "subscriptionId": s.id,
            "subscriptionExpirationDateTime": s.expiration.to_string(),
            "clientState": s.client_state,
            "tenantId": s.tenant,
        });
        let mut encrypted = false;
        match &self.payload {
            Payload::Change {
                change,
                install,
                rendered,
            } => {
                let resource = resource_of(install);
                item["changeType"] = json!(change.as_str());
                item["resource"] = json!(resource);
                item["resourceData"] = json!({
                    "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
                    "@odata.id": resource,
                    "id": install.id(),
                });
                if s.include_resource_data
                    && let (Some(cert), Some(cert_id)) =
                        (&s.encryption_certificate, &s.encryption_certificate_id)
                {
                    match super::rich::encrypted_content(cert, cert_id, rendered) {
                        Ok(content) => {
                            item["encryptedContent"] = content;
                            encrypted = true;
                        }
                        Err(err) => tracing::warn!(%err, "cannot encrypt resource data"),
                    }
                }
            }
            Payload::Lifecycle(event) => {
                item["lifecycleEvent"] = json!(event.as_str());
            }
        }
        (json!({"value": [item]}), encrypted)
    }
}

/// The installation as rich notifications carry it: Graph's userScopeTeamsAppInstallation with
/// its app and definition, and `scopeInfo` naming the user
/// (<https://learn.microsoft.com/graph/api/resources/personalteamsappinstallationscopeinfo>).
fn rich_resource(tenant: &Tenant, install: &Install) -> Value {
    let mut value = render::installation(install, tenant.app(&install.app_id), true, true, &[]);
    value["scopeInfo"] = json!({
        "@odata.type": "#microsoft.graph.personalTeamsAppInstallationScopeInfo",
        "scope": "personal",
        "userId": install.user_id,
    });
    value
}

/// Turns every tenant's pending installation changes into queued notifications.
pub(crate) fn flush(inner: &mut Inner) {
    let now = Timestamp::now();
    let rate = inner.faults.config.notification_drop_rate.unwrap_or(0.0);
    let due = due(&inner.faults.config);
    for tenant in &mut inner.world.tenants {
        if tenant.changes.is_empty() {
            continue;
        }
        let changes = std::mem::take(&mut tenant.changes);
        for InstallChange { change, install } in changes {
            let matching = inner
                .subscriptions
                .matching(&tenant.id, &install.app_id, change, now);
            for subscription in matching {
                let rendered = if subscription.include_resource_data {
                    rich_resource(tenant, &install)
                } else {
                    Value::Null
                };
                let job = Job {
                    subscription,
                    payload: Payload::Change {
                        change,
                        install: install.clone(),
                        rendered,
                    },
                    due,
                };
                if rate > 0.0 && inner.notifier.drops.random_bool(rate.min(1.0)) {
                    inner.notifier.record(job.record("dropped", None, None));
                } else {
                    inner.notifier.enqueue(job);
                }
            }
        }
    }
}

/// Queues a lifecycle event for `subscription` (which must have a lifecycle URL).
pub(crate) fn lifecycle(inner: &mut Inner, subscription: Subscription, event: LifecycleEvent) {
    let job = Job {
        subscription,
        payload: Payload::Lifecycle(event),
        due: due(&inner.faults.config),
    };
    inner.notifier.enqueue(job);
}

/// The delivery worker: one job at a time, in order, until the simulator is gone.
pub(crate) async fn deliver(shared: Weak<Shared>, mut queue: mpsc::Receiver<Job>) {
    while let Some(mut job) = queue.recv().await {
        tokio::time::sleep_until(job.due).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Payload::Change { .. } = job.payload {
            // Expired or deleted meanwhile: Graph sends nothing for a subscription it no longer
            // has.
            let current = shared
                .lock()
                .subscriptions
                .get(&job.subscription.id)
                .cloned();
            match current {
                None => {
                    shared
                        .lock()
                        .notifier
                        .record(job.record("removed", None, None));
                    continue;
                }
                Some(s) if s.expiration <= Timestamp::now() => {
                    shared
                        .lock()
                        .notifier
                        .record(job.record("expired", None, None));
                    continue;
                }
                Some(s) => job.subscription = s,
            }
        }
        let (body, encrypted) = job.body();
        let sent = shared
            .http
            .post(job.url())
            .timeout(DELIVERY_TIMEOUT)
            .json(&body)
            .send()
            .await;
        let mut record = match sent {
            Ok(response) if response.status().is_success() => {
                job.record("delivered", Some(response.status().as_u16()), None)
            }
            Ok(response) => job.record("rejected", Some(response.status().as_u16()), None),
            Err(err) => job.record("failed", None, Some(err.to_string())),
        };
        record.encrypted = encrypted;
        tracing::debug!(subscription = %record.subscription_id, outcome = %record.outcome, "notification");
        shared.lock().notifier.record(record);
    }
}
