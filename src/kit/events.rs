//! Kubernetes Events on any kind, from one Event type, through one long-lived [`Recorder`].
//!
//! The recorder does what kube-runtime's `events::Recorder` does — an Event per object, reason,
//! action and type, its repeats within 6 minutes counted in the Event's `series` (one patch, no
//! new object) — with one difference: it names Events so that they fit. kube's recorder names an
//! Event `{object name}.{timestamp}`, which for an object name of more than 236 characters is
//! longer than the 253 the API server takes, so every Event of such an object was refused. Here
//! a long object name is shortened with a digest, the way installation names are; `regarding`
//! still names the object in full (that is what `kubectl describe` and field selectors read).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as KubeEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use tracing::warn;

use super::names::{MAX_NAME, shorten};

/// The API server refuses an Event whose note is over 1 kB.
const MAX_NOTE_BYTES: usize = 1024;

/// How long a repeat of an Event is counted in the first one's `series` (kube-runtime's and
/// client-go's window).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// An Event to publish on a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub warning: bool,
    pub reason: String,
    /// What the operator was doing (`action` of events.k8s.io).
    pub action: &'static str,
    pub note: String,
}

impl Announcement {
    /// A Normal Event.
    pub fn normal(reason: impl Into<String>, action: &'static str, note: String) -> Self {
        Self {
            warning: false,
            reason: reason.into(),
            action,
            note,
        }
    }

    /// A Warning Event.
    pub fn warning(reason: impl Into<String>, action: &'static str, note: String) -> Self {
        Self {
            warning: true,
            reason: reason.into(),
            action,
            note,
        }
    }

    fn type_(&self) -> &'static str {
        if self.warning { "Warning" } else { "Normal" }
    }
}

/// What makes two Events the same Event (its repeats go into its `series`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    type_: &'static str,
    reason: String,
    action: &'static str,
    /// apiVersion, kind, namespace, name, uid of the object.
    regarding: [Option<String>; 5],
}

/// Publishes Events as `controller` (`reportingController`) from `instance`
/// (`reportingInstance`). Cheap to clone: clones share the series they count.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    series: Arc<Mutex<HashMap<SeriesKey, KubeEvent>>>,
}

impl Recorder {
    /// `instance` defaults to the controller's name (as kube-runtime's recorder does).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            series: Arc::default(),
        }
    }

    /// Records `event` on `obj`. Events are best effort: a failure to record one is logged and
    /// never fails the reconcile.
    pub async fn publish<K>(&self, obj: &K, event: &Announcement)
    where
        K: Resource<DynamicType = ()>,
    {
        if let Err(e) = self.record(obj.object_ref(&()), event).await {
            warn!(error = %e, reason = %event.reason, "could not record Event");
        }
    }

    async fn record(
        &self,
        regarding: ObjectReference,
        event: &Announcement,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = SeriesKey {
            type_: event.type_(),
            reason: event.reason.clone(),
            action: event.action,
            regarding: [
                regarding.api_version.clone(),
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ],
        };
        let earlier = {
            let mut series = self.lock();
            series.retain(|_, e| last_seen(e).is_none_or(|t| t + SERIES_WINDOW > now));
            series.get(&key).cloned()
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
        let recorded = match earlier {
            Some(mut earlier) => {
                let count = earlier.series.as_ref().map_or(2, |s| s.count + 1);
                earlier.series = Some(EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                });
                let patch = serde_json::json!({ "series": earlier.series });
                let name = earlier.metadata.name.clone().unwrap_or_default();
                match events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => earlier,
                    // The Event expired (the API server keeps Events for an hour): a new one.
                    Err(kube::Error::Api(e)) if e.code == 404 => {
                        self.create(&events, regarding, event, now).await?
                    }
                    Err(e) => return Err(e),
                }
            }
            None => self.create(&events, regarding, event, now).await?,
        };
        self.lock().insert(key, recorded);
        Ok(())
    }

    async fn create(
        &self,
        events: &Api<KubeEvent>,
        regarding: ObjectReference,
        event: &Announcement,
        now: Timestamp,
    ) -> Result<KubeEvent, kube::Error> {
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        let new = KubeEvent {
            metadata: ObjectMeta {
                name: Some(event_name(object, now)),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(event.type_().to_string()),
            reason: Some(event.reason.clone()),
            action: Some(event.action.to_string()),
            note: Some(bounded(&event.note, MAX_NOTE_BYTES)),
            regarding: Some(regarding),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..KubeEvent::default()
        };
        events.create(&PostParams::default(), &new).await?;
        Ok(new)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SeriesKey, KubeEvent>> {
        self.series.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn last_seen(event: &KubeEvent) -> Option<Timestamp> {
    (event.series.as_ref().map(|s| s.last_observed_time.0))
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
}

/// `{object}.{nanoseconds, hex}` as kube-runtime names Events, with the object's name shortened
/// so that the whole fits in an object name.
fn event_name(object: &str, now: Timestamp) -> String {
    let suffix = format!(".{:x}", now.as_nanosecond());
    format!("{}{suffix}", shorten(object, MAX_NAME - suffix.len()))
}

/// `text` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_fit_whatever_the_object_is_called() {
        let now = Timestamp::now();
        assert!(event_name("helpdesk", now).starts_with("helpdesk."));
        for len in [236, 237, 253] {
            let long = "r".repeat(len);
            let name = event_name(&long, now);
            assert!(name.len() <= MAX_NAME, "{len}: {}", name.len());
            assert_ne!(name, event_name(&"r".repeat(len - 1), now));
        }
    }

    #[test]
    fn event_notes_stay_within_the_api_servers_limit() {
        assert_eq!(bounded("short", 1024), "short");
        let long = bounded(&"é".repeat(600), 1024);
        assert!(long.len() <= 1024 && long.ends_with('…'), "{}", long.len());
    }
}
