//! Graph change notifications → the resources they concern look again at once, with a fresh
//! read of their user's apps, instead of at their next drift check.
//!
//! A notification names one Graph installation (and, with resource data, its user). The
//! resources on that installation — or the notified user's resources for that app — are found
//! in the watch's index ([`RivalIndex::about`]), not by scanning the cache; their user's cached
//! list is marked stale; and they are handed to the controller's queue, so the re-check goes
//! through the same admission, budget and shared read as any other. A notification that echoes
//! the operator's own write (the user was written for a moment ago) marks nothing and wakes
//! nobody: that write's verify read already covers it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::runtime::reflector::ObjectRef;

use crate::api::TeamsAppInstallation;
use crate::notification::NotificationEvent;

use super::context::Context;

/// How long after the operator's own write for a user a notification about that user counts as
/// the write's echo. Graph delivers most notifications within seconds to a minute
/// (<https://learn.microsoft.com/graph/change-notifications-overview>); a real change made
/// elsewhere inside this window is still found, by the next drift check.
pub const ECHO_WINDOW: Duration = Duration::from_secs(60);

/// The resources to re-check, one notification after another (none without notifications).
pub(super) fn rechecks(
    events: Option<impl Stream<Item = NotificationEvent> + Send + 'static>,
    ctx: Arc<Context>,
) -> BoxStream<'static, ObjectRef<TeamsAppInstallation>> {
    match events {
        Some(events) => events
            .flat_map(move |event| futures::stream::iter(concerned(&ctx, &event)))
            .boxed(),
        None => futures::stream::empty().boxed(),
    }
}

/// The resources `event` concerns whose user's apps changed elsewhere.
fn concerned(ctx: &Context, event: &NotificationEvent) -> Vec<ObjectRef<TeamsAppInstallation>> {
    let candidates = (ctx.rivals).about(
        &ctx.installations,
        &event.installation_id,
        event.user_id.as_deref(),
    );
    let mut echoes = HashSet::new();
    let mut wake = Vec::new();
    for obj in candidates.iter().filter(|obj| is_about(obj, event)) {
        let user = obj.spec.user.to_lowercase();
        let status = obj.status.as_ref();
        // The tenant the resource's reads are cached under (its connection's, as recorded).
        let tenant = status.and_then(|s| s.tenant_id.as_deref());
        let tenant = tenant.unwrap_or(&event.tenant_id);
        if echoes.contains(&user) || !ctx.installed.changed_elsewhere(tenant, &user, ECHO_WINDOW) {
            echoes.insert(user);
            continue;
        }
        let woken = ObjectRef::from_obj(&**obj);
        if let Some(clock) = &ctx.notices {
            clock.woke(woken.clone());
        }
        wake.push(woken);
    }
    wake
}

/// Whether `obj` is on the notified installation, or is the notified user's resource for the
/// notified app.
fn is_about(obj: &TeamsAppInstallation, event: &NotificationEvent) -> bool {
    let Some(status) = obj.status.as_ref() else {
        return false;
    };
    let on_installation = status.installation_id.as_deref() == Some(&event.installation_id);
    let of_app = (status.catalog_app_id.as_deref())
        .is_some_and(|app| app.eq_ignore_ascii_case(&event.teams_app_id));
    let of_user =
        (event.user_id.as_deref()).is_some_and(|user| user.eq_ignore_ascii_case(&obj.spec.user));
    on_installation || (of_app && of_user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TeamsAppInstallationStatus;
    use crate::notification::ChangeType;

    fn tai(user: &str, installation: Option<&str>, app: &str) -> TeamsAppInstallation {
        let spec = serde_json::json!({"user": user, "app": {"id": app}});
        let mut obj = TeamsAppInstallation::new("t", serde_json::from_value(spec).expect("spec"));
        obj.status = Some(TeamsAppInstallationStatus {
            installation_id: installation.map(String::from),
            catalog_app_id: Some(app.to_string()),
            ..Default::default()
        });
        obj
    }

    fn event(installation: &str, app: &str, user: Option<&str>) -> NotificationEvent {
        NotificationEvent {
            subscription_id: "s".into(),
            tenant_id: "t".into(),
            change: ChangeType::Deleted,
            resource: String::new(),
            installation_id: installation.into(),
            teams_app_id: app.into(),
            user_id: user.map(String::from),
        }
    }

    #[test]
    fn a_notification_is_about_its_installation_or_its_users_resource_for_its_app() {
        let app = "33333333-3333-3333-3333-333333333333";
        let other_app = "44444444-4444-4444-4444-444444444444";
        let user = "0f0f0f0f-0000-0000-0000-000000000001";
        let on_it = tai("alice@contoso.com", Some("inst-1"), app);
        assert!(is_about(&on_it, &event("inst-1", app, None)));
        assert!(!is_about(&on_it, &event("inst-2", app, None)));
        // Not installed yet (no installation id): found by its user, for the same app only.
        let by_id = tai(user, None, app);
        assert!(is_about(&by_id, &event("inst-9", app, Some(user))));
        assert!(!is_about(&by_id, &event("inst-9", other_app, Some(user))));
        assert!(!is_about(&by_id, &event("inst-9", app, None)));
        // Never looked at yet: nothing to compare.
        let mut fresh = tai(user, None, app);
        fresh.status = None;
        assert!(!is_about(&fresh, &event("inst-9", app, Some(user))));
    }
}
