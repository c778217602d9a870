//! Graph change notifications → the resources they concern look again at once, with a fresh
//! read of their user's apps, instead of at their next drift check.
//!
//! A notification names one Graph installation (and, with resource data, its user). The
//! resources on that installation — or the notified user's resources for that app — are found
//! in the watch's index ([`RivalIndex::about`]), not by scanning the cache; their user's cached
//! list is marked stale; and they are handed to the controller's queue, so the re-check goes
//! through the same admission, budget and shared read as any other. A notification that echoes
//! the operator's own write (the user was written for a moment ago) marks nothing and wakes
//! nobody: that write's verify read already covers it. The app removed from under a resource
//! that wants it is never such an echo.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::runtime::reflector::ObjectRef;

use crate::api::{Ensure, TeamsAppInstallation};
use crate::notification::{ChangeType, NotificationEvent};

use super::context::Context;

/// How long after the operator's own write for a user a notification about that user counts as
/// the write's echo. Graph delivers most notifications within seconds to a minute
/// (<https://learn.microsoft.com/graph/change-notifications-overview>); a real change made
/// elsewhere inside this window is still found, by the next drift check.
pub const ECHO_WINDOW: Duration = Duration::from_secs(60);

/// What the process tells the controller of Graph's notifications.
#[derive(Debug, Clone)]
pub enum Notice {
    /// Graph told of a change to one installation.
    Change(NotificationEvent),
    /// Graph may have lost changes to these resources' apps (`missed`, a subscription removed
    /// or unhealthy): each re-reads its user's apps afresh, whatever its cached list's age.
    Recheck(Vec<ObjectRef<TeamsAppInstallation>>),
}

/// The resources to re-check, one notice after another (none without notifications).
pub(super) fn rechecks(
    notices: Option<impl Stream<Item = Notice> + Send + 'static>,
    ctx: Arc<Context>,
) -> BoxStream<'static, ObjectRef<TeamsAppInstallation>> {
    match notices {
        Some(notices) => notices
            .flat_map(move |notice| {
                let woken = match notice {
                    Notice::Change(event) => concerned(&ctx, &event),
                    Notice::Recheck(resources) => stale(&ctx, resources),
                };
                futures::stream::iter(woken)
            })
            .boxed(),
        None => futures::stream::empty().boxed(),
    }
}

/// Marks the users of `resources` as changed elsewhere (their next look reads afresh).
fn stale(
    ctx: &Context,
    resources: Vec<ObjectRef<TeamsAppInstallation>>,
) -> Vec<ObjectRef<TeamsAppInstallation>> {
    for resource in &resources {
        let Some(obj) = ctx.installations.get(resource) else {
            continue;
        };
        let tenant = obj.status.as_ref().and_then(|s| s.tenant_id.as_deref());
        if let Some(tenant) = tenant {
            ctx.installed.noticed(tenant, &obj.spec.user);
        }
    }
    resources
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
        let window = if may_echo_a_write(obj, event) {
            ECHO_WINDOW
        } else {
            Duration::ZERO
        };
        if echoes.contains(&user) || !ctx.installed.changed_elsewhere(tenant, &user, window) {
            echoes.insert(user);
            continue;
        }
        let woken = ObjectRef::from_obj(&**obj);
        if let Some(clock) = &ctx.notices {
            clock.woke(woken.clone());
        }
        wake.push(woken);
    }
    tracing::debug!(installation = %event.installation_id, change = ?event.change,
        candidates = candidates.len(), woken = wake.len(), echoes = echoes.len(),
        "change notification");
    wake
}

/// Whether `event` may be the echo of the operator's own write for `obj`. The operator only
/// moves Graph towards what its resources want, so the app removed from under a resource that
/// wants it (and is not being deleted) is someone else's doing, however recently the operator
/// installed it: waiting for the drift check would leave it missing until the resync.
fn may_echo_a_write(obj: &TeamsAppInstallation, event: &NotificationEvent) -> bool {
    let wants_it = obj.spec.ensure == Ensure::Present && obj.metadata.deletion_timestamp.is_none();
    !(event.change == ChangeType::Deleted && wants_it)
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

    #[test]
    fn an_app_removed_from_a_resource_that_wants_it_is_never_the_operators_echo() {
        let app = "33333333-3333-3333-3333-333333333333";
        let wanted = tai("alice@contoso.com", Some("inst-1"), app);
        let deleted = event("inst-1", app, None);
        assert!(!may_echo_a_write(&wanted, &deleted));
        let created = NotificationEvent {
            change: ChangeType::Created,
            ..deleted.clone()
        };
        assert!(may_echo_a_write(&wanted, &created));
        // The operator uninstalls for a resource being deleted or asking for `Absent`.
        let mut absent = wanted.clone();
        absent.spec.ensure = Ensure::Absent;
        assert!(may_echo_a_write(&absent, &deleted));
        let mut going = wanted;
        going.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert!(may_echo_a_write(&going, &deleted));
    }
}
