//! The finalizer's deletion half: with `deletionPolicy: Uninstall`, remove the app in Graph, then
//! let the resource go.
//!
//! No Graph answer may hold a deletion forever. A transient failure (throttling, an outage) is
//! retried with backoff until `--uninstall-timeout` has passed since the resource was deleted; a
//! failure that retrying cannot fix (400, 403, …) gives up at once. Giving up releases the
//! finalizer with an `UninstallAbandoned` Warning Event that says what was left behind, so an
//! admin can remove it by hand.

use std::time::Duration;

use kube::Api;
use kube::runtime::controller::Action as Requeue;
use tracing::{info, warn};

use crate::api::{
    DeletionPolicy, ManagementPolicy, TeamsAppInstallation, UNINSTALL_FINALIZER, is_valid_user,
};
use crate::graph::{AppRef, ErrorClass, GraphError, UninstallOutcome};
use crate::kit::{Announcement, finalizer};
use crate::tenancy::Refused;

use super::super::core::{GraphStep, wanted_by_another};
use super::connect::connect;
use super::context::{Connected, Context, ReconcileError};
use super::views::{app_ref, claim_of, failure_event};

/// The Warning Event reason for an uninstall the operator gave up on.
pub const UNINSTALL_ABANDONED: &str = "UninstallAbandoned";

/// Idempotent, and fine if apply never ran (nothing installed = nothing to remove).
pub(super) async fn cleanup(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    if !finalizer::holds(obj, UNINSTALL_FINALIZER) {
        return Ok(Requeue::await_change());
    }
    let uninstall = obj.spec.deletion_policy == DeletionPolicy::Uninstall;
    let observing = obj
        .spec
        .management_policy
        .unwrap_or(ctx.settings.default_management_policy)
        == ManagementPolicy::Observe;
    if uninstall && obj.spec.suspend {
        let note = "deleted while suspended: the app is left installed".to_string();
        (ctx.plumbing)
            .publish(obj, &Announcement::warning("Suspended", "Uninstall", note))
            .await;
    } else if uninstall && observing {
        // Plan mode never writes to Graph, not even on the way out.
        let note = format!(
            "managementPolicy is Observe: {} is left installed for {} (Manage would have uninstalled it)",
            obj.spec.app.describe(),
            obj.spec.user
        );
        (ctx.plumbing)
            .publish(
                obj,
                &Announcement::normal("WouldUninstall", "Uninstall", note),
            )
            .await;
    } else if uninstall
        && let Some(other) =
            wanted_by_another(&claim_of(obj), &ctx.rivals.claims(&ctx.installations, obj))
    {
        // The next resource in line takes the installation over without a gap.
        let note = format!(
            "not uninstalled: {} still wants {} for {}",
            other.describe(),
            obj.spec.app.describe(),
            obj.spec.user
        );
        info!("{note}");
        (ctx.plumbing)
            .publish(obj, &Announcement::normal("HandedOver", "Uninstall", note))
            .await;
    } else if uninstall {
        match addressable(obj) {
            Ok(app) => match connect(ctx, obj) {
                Ok(connected) => {
                    if let Err(failure) = uninstall_app(obj, &connected, &app).await {
                        give_up_or_retry(obj, ctx, failure).await?;
                    }
                }
                Err(refused) => unreachable_tenant(obj, ctx, refused).await?,
            },
            Err(problem) => {
                let left = format!(
                    "nothing was uninstalled: {} may still be installed for user {:?}",
                    obj.spec.app.describe(),
                    obj.spec.user
                );
                abandon(ctx, obj, &problem, &left, None).await;
            }
        }
    }
    finalizer::remove(api, obj, UNINSTALL_FINALIZER).await?;
    Ok(Requeue::await_change())
}

/// The resource's connection cannot be used for the uninstall. One that is not Ready yet is
/// waited for like an outage (until `--uninstall-timeout`); one that is missing or refuses this
/// resource lets it go at once, uninstalling nothing: a policy that no longer serves the
/// namespace must not be worked around on the way out.
async fn unreachable_tenant(
    obj: &TeamsAppInstallation,
    ctx: &Context,
    refused: Refused,
) -> Result<(), ReconcileError> {
    let left = format!(
        "{} may still be installed for user {}",
        obj.spec.app.describe(),
        obj.spec.user
    );
    match refused {
        Refused::NotReady(why) => {
            let waited = since_deletion(obj);
            let timeout = ctx.settings.uninstall_timeout;
            if waited < timeout {
                return Err(ReconcileError::ConnectionNotReady(why));
            }
            let why = format!(
                "its connection is still not Ready {} after deletion (--uninstall-timeout {}): {why}",
                seconds(waited),
                seconds(timeout)
            );
            abandon(ctx, obj, &why, &left, None).await;
        }
        Refused::NotFound(why) | Refused::NotAllowed(why) => {
            abandon(
                ctx,
                obj,
                &format!("its connection cannot be used: {why}"),
                &left,
                None,
            )
            .await;
        }
    }
    Ok(())
}

/// The uninstall failed: retry a transient failure until `--uninstall-timeout` after deletion
/// (`Err`: the controller backs off), else let the resource go with a Warning Event saying
/// what was left behind (`Ok`).
async fn give_up_or_retry(
    obj: &TeamsAppInstallation,
    ctx: &Context,
    failure: UninstallFailure,
) -> Result<(), ReconcileError> {
    let waited = since_deletion(obj);
    let timeout = ctx.settings.uninstall_timeout;
    let why = if is_terminal(&failure.error) {
        "Graph refused it and retrying cannot help".to_string()
    } else if waited >= timeout {
        format!(
            "still failing {} after deletion (--uninstall-timeout {})",
            seconds(waited),
            seconds(timeout)
        )
    } else {
        let event = failure_event(GraphStep::Uninstall, &failure.error, "Uninstall");
        ctx.plumbing.publish(obj, &event).await;
        return Err(failure.error.into());
    };
    let left = format!(
        "{} may still be installed for user {} (installation {})",
        obj.spec.app.describe(),
        obj.spec.user,
        failure.installation_id.as_deref().unwrap_or("unknown"),
    );
    abandon(ctx, obj, &why, &left, Some(&failure.error)).await;
    Ok(())
}

/// The app to uninstall, when the spec names a user and an app Graph can be asked about. The API
/// server refuses anything else today; an object stored before its rules existed must not send
/// a request whose path means something else (`..` is a dot segment).
fn addressable(obj: &TeamsAppInstallation) -> Result<AppRef, String> {
    if !is_valid_user(&obj.spec.user) {
        return Err("spec.user is not an Entra object id or user principal name".to_string());
    }
    app_ref(obj).ok_or_else(|| "spec.app does not name exactly one of id or externalId".to_string())
}

/// A failure that retrying cannot fix: Graph refused the request itself (400, 403, …). An
/// authentication failure is the operator's credential, not this resource: it is retried until
/// the timeout like an outage, so fixing the credential still uninstalls.
fn is_terminal(err: &GraphError) -> bool {
    !err.is_retryable() && err.class() != ErrorClass::Unauthorized
}

/// How long ago the resource was deleted (zero if the clocks disagree).
fn since_deletion(obj: &TeamsAppInstallation) -> Duration {
    obj.metadata
        .deletion_timestamp
        .as_ref()
        .and_then(|t| Duration::try_from(jiff::Timestamp::now().duration_since(t.0)).ok())
        .unwrap_or_default()
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// Lets the resource go without having uninstalled, and says so where the user looks.
async fn abandon(
    ctx: &Context,
    obj: &TeamsAppInstallation,
    why: &str,
    left: &str,
    error: Option<&GraphError>,
) {
    let detail = error
        .map(|e| format!("; Graph error: {e}"))
        .unwrap_or_default();
    let note = format!("uninstall abandoned, {why}: {left}{detail}");
    warn!(user = %obj.spec.user, app = %obj.spec.app.describe(), "{note}");
    // The kit cuts the note to what the API server takes: what was left comes first, so that
    // only shortens the Graph error (the log line has all of it).
    (ctx.plumbing)
        .publish(
            obj,
            &Announcement::warning(UNINSTALL_ABANDONED, "Uninstall", note),
        )
        .await;
}

/// A Graph call of the uninstall failed; what is known about the installation it was after.
struct UninstallFailure {
    error: GraphError,
    installation_id: Option<String>,
}

async fn uninstall_app(
    obj: &TeamsAppInstallation,
    ctx: &Connected<'_>,
    app: &AppRef,
) -> Result<(), UninstallFailure> {
    let user = obj.spec.user.as_str();
    let known_id = obj.status.as_ref().and_then(|s| s.installation_id.clone());
    let found = match ctx.graph.find_installation(user, app).await {
        Ok(found) => found,
        // The user is gone: so is anything installed for them.
        Err(e) if e.status() == Some(404) => None,
        Err(error) => {
            return Err(UninstallFailure {
                error,
                installation_id: known_id,
            });
        }
    };
    let Some(installation) = found else {
        return Ok(());
    };
    match ctx.graph.uninstall(user, &installation.id).await {
        Ok(UninstallOutcome::Removed) => {
            info!(user, installation = %installation.id, "uninstalled");
            let note = format!("uninstalled {} for {user}", obj.spec.app.describe());
            (ctx.plumbing)
                .publish(obj, &Announcement::normal("Uninstalled", "Uninstall", note))
                .await;
            Ok(())
        }
        Ok(UninstallOutcome::AlreadyGone) => Ok(()),
        Err(error) => Err(UninstallFailure {
            error,
            installation_id: Some(installation.id),
        }),
    }
}
