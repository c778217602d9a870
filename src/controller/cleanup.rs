//! The finalizer's deletion half: with `deletionPolicy: Uninstall`, remove the app in Graph, then
//! let the resource go.

use kube::Api;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use tracing::info;

use crate::api::{DeletionPolicy, TeamsAppInstallation};
use crate::graph::{AppRef, UninstallOutcome};
use crate::reconcile::GraphStep;

use super::events::{publish, publish_failure};
use super::finalizer::{has_finalizer, remove_finalizer};
use super::reconciler::{Context, ReconcileError, app_ref};

/// Idempotent, and fine if apply never ran (nothing installed = nothing to remove). A Graph
/// failure keeps the finalizer (the controller retries): an uninstall is never forgotten.
pub(super) async fn cleanup(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    if !has_finalizer(obj) {
        return Ok(Requeue::await_change());
    }
    let uninstall = obj.spec.deletion_policy == DeletionPolicy::Uninstall;
    if uninstall && obj.spec.suspend {
        publish(
            ctx,
            obj,
            EventType::Warning,
            "Suspended",
            "Uninstall",
            "deleted while suspended: the app is left installed".to_string(),
        )
        .await;
    } else if uninstall && let Some(app) = app_ref(obj) {
        uninstall_app(obj, ctx, &app).await?;
    }
    remove_finalizer(api, obj).await?;
    Ok(Requeue::await_change())
}

async fn uninstall_app(
    obj: &TeamsAppInstallation,
    ctx: &Context,
    app: &AppRef,
) -> Result<(), ReconcileError> {
    let user = obj.spec.user.as_str();
    let found = match ctx.graph.find_installation(user, app).await {
        Ok(found) => found,
        // The user is gone: so is anything installed for them.
        Err(e) if e.status() == Some(404) => None,
        Err(e) => {
            publish_failure(ctx, obj, GraphStep::Uninstall, &e, "Uninstall").await;
            return Err(e.into());
        }
    };
    let Some(installation) = found else {
        return Ok(());
    };
    match ctx.graph.uninstall(user, &installation.id).await {
        Ok(UninstallOutcome::Removed) => {
            info!(user, installation = %installation.id, "uninstalled");
            publish(
                ctx,
                obj,
                EventType::Normal,
                "Uninstalled",
                "Uninstall",
                format!("uninstalled {} for {user}", obj.spec.app.describe()),
            )
            .await;
            Ok(())
        }
        Ok(UninstallOutcome::AlreadyGone) => Ok(()),
        Err(e) => {
            publish_failure(ctx, obj, GraphStep::Uninstall, &e, "Uninstall").await;
            Err(e.into())
        }
    }
}
