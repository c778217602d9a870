//! Kubernetes Events on any kind, from one Event type.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::warn;

/// The API server refuses an Event whose note is over 1 kB.
const MAX_NOTE_BYTES: usize = 1024;

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
}

/// Records `event` on `obj`. Events are best effort: a failure to record one is logged and
/// never fails the reconcile.
pub async fn publish<K>(recorder: &Recorder, obj: &K, event: &Announcement)
where
    K: Resource<DynamicType = ()>,
{
    let type_ = if event.warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    let record = Event {
        type_,
        reason: event.reason.clone(),
        note: Some(bounded(&event.note, MAX_NOTE_BYTES)),
        action: event.action.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&record, &obj.object_ref(&())).await {
        warn!(error = %e, reason = %event.reason, "could not record Event");
    }
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
    use super::bounded;

    #[test]
    fn event_notes_stay_within_the_api_servers_limit() {
        assert_eq!(bounded("short", 1024), "short");
        let long = bounded(&"é".repeat(600), 1024);
        assert!(long.len() <= 1024 && long.ends_with('…'), "{}", long.len());
    }
}
