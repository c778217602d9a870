//! Events on `TeamsAppInstallation`s: `Installed`, `Upgraded`, `Uninstalled`, `Suspended`, and
//! Warnings named after the failure's reason.

use kube::Resource;
use kube::runtime::events::{Event, EventType};
use tracing::warn;

use crate::api::TeamsAppInstallation;
use crate::graph::GraphError;
use crate::reconcile::{Announcement, GraphStep, verdict_for_failure};

use super::context::Context;
use super::views::failure_of;

/// Records an Event on `obj`. Events are best effort: a failure to record one is logged and
/// must not fail the reconcile.
pub(super) async fn publish(
    ctx: &Context,
    obj: &TeamsAppInstallation,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, reason, "could not record Event");
    }
}

/// A Warning Event for a Graph call that failed at `step`, with the reason and message its
/// condition would carry.
pub(super) async fn publish_failure(
    ctx: &Context,
    obj: &TeamsAppInstallation,
    step: GraphStep,
    err: &GraphError,
    action: &str,
) {
    let verdict = verdict_for_failure(step, &failure_of(err));
    publish(
        ctx,
        obj,
        EventType::Warning,
        verdict.reason.as_str(),
        action,
        verdict.message,
    )
    .await;
}

/// Publishes an Event the reconcile's conclusion asked for.
pub(super) async fn announce(ctx: &Context, obj: &TeamsAppInstallation, event: &Announcement) {
    let type_ = if event.warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    publish(
        ctx,
        obj,
        type_,
        &event.reason,
        event.action,
        event.note.clone(),
    )
    .await;
}
