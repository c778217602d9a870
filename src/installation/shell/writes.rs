//! The Graph writes of one reconcile and what follows each: install, upgrade and uninstall,
//! each verified by a re-read, and the one extra read a refusal needs to be told apart (the
//! directory after a 404 for the user, the tenant's Teams app settings after a refused consent).
//! [`super::reconciler`] decides which write to make; this module makes it.

use std::time::Duration;

use tracing::{debug, info, warn};

use crate::graph::{AppRef, ConsentedPermissionSet, ErrorClass, GraphError, UninstallOutcome};

use super::super::core::{Action, CatalogView, Findings, GraphStep, Pass};
use super::context::Connected;
use super::views::{failure_of, installed_view};

/// Installs the app, then lists again: Graph's 201 carries no body, and its list may not show
/// the install yet (its reads lag its writes; the conclusion then waits instead of asking again).
pub(super) async fn install(
    ctx: &Connected<'_>,
    pass: &Pass,
    app: &AppRef,
    catalog_app_id: &str,
    consent: Option<&ConsentedPermissionSet>,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    let user = pass.user.as_str();
    let writing = ctx.installed.writing(ctx.graph.tenant_id(), user).await;
    let installed = ctx.graph.install(user, catalog_app_id, consent).await;
    drop(writing);
    match installed {
        Ok(outcome) => info!(user, app = %catalog_app_id, ?outcome, "install requested"),
        Err(e) if e.class() == ErrorClass::NotFound => {
            return install_not_found(ctx, user, app, e, findings).await;
        }
        Err(e) => return refused_write(ctx, GraphStep::Install, consent, e, findings).await,
    }
    findings.wrote = Some(Action::Install {
        catalog_app_id: catalog_app_id.to_string(),
        consent: consent.cloned(),
    });
    // After the user's other writes under way too: one read verifies them all.
    let read = ctx
        .installed
        .find(&ctx.graph, user, catalog_app_id, false)
        .await;
    let after = record_failure(findings, GraphStep::Verify, read)?;
    findings.after = Some(after.as_ref().map(installed_view));
    Ok(())
}

/// Graph answered 404 to an install: the user or the app is gone. The catalog, read afresh,
/// tells which, without reading Graph's message.
async fn install_not_found(
    ctx: &Connected<'_>,
    user: &str,
    app: &AppRef,
    err: GraphError,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    let found = ctx.catalog.lookup(&ctx.graph, app, true).await;
    if record_failure(findings, GraphStep::Catalog, found)?.is_some() {
        return user_not_found(ctx, user, GraphStep::Install, err, findings).await;
    }
    findings.app_missing = Some(format!(
        "the app is no longer in the tenant's app catalog: {err}"
    ));
    Ok(())
}

/// Teams answered 404 for the user at `step`: a user nobody knows, or one the directory knows
/// and Teams has not provisioned yet (new accounts take a while). One directory read — only
/// here, never on a routine pass — tells them apart for the conclusion. A directory that cannot
/// say (no `User.Read.All` or `User.ReadBasic.All`: 403) leaves the 404 as it is, `UserNotFound`;
/// one that is throttled or down is retried like any transient failure.
pub(super) async fn user_not_found(
    ctx: &Connected<'_>,
    user: &str,
    step: GraphStep,
    err: GraphError,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    match ctx.graph.directory_user(user).await {
        Ok(found) => findings.user_in_directory = Some(found.is_some()),
        Err(e) if e.is_retryable() => {
            return record_failure(findings, GraphStep::ReadUser, Err(e));
        }
        Err(e) => debug!(error = %e, "the directory could not say whether it knows the user"),
    }
    record_failure(findings, step, Err(err))
}

/// Asks Graph to upgrade, then re-reads a few times: the upgrade has no async pattern and
/// Graph's reads lag. Graph may answer 400 to an upgrade of an app already at its latest
/// version (undocumented; a lagging read makes the operator ask): that is re-read too, and until
/// the read shows the new version the upgrade counts as requested.
pub(super) async fn upgrade(
    ctx: &Connected<'_>,
    pass: &Pass,
    catalog: &CatalogView,
    installation_id: &str,
    consent: Option<&ConsentedPermissionSet>,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    let user = pass.user.as_str();
    let writing = ctx.installed.writing(ctx.graph.tenant_id(), user).await;
    let upgraded = ctx.graph.upgrade(user, installation_id, consent).await;
    drop(writing);
    match upgraded {
        Ok(()) => info!(user, installation = %installation_id, "upgrade requested"),
        Err(e) if e.class() == ErrorClass::BadRequest => {
            info!(user, installation = %installation_id, error = %e,
                "upgrade refused; re-reading in case it is already at the latest version");
        }
        Err(e) => return refused_write(ctx, GraphStep::Upgrade, consent, e, findings).await,
    }
    findings.wrote = Some(Action::Upgrade {
        installation_id: installation_id.to_string(),
        consent: consent.cloned(),
    });
    for wait_ms in [0u64, 500, 1000, 2000] {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        // The first re-read is the one after the user's writes (shared with the user's other
        // resources that wrote side by side); a later one, after a wait, is fresh.
        let read = (ctx.installed)
            .find(&ctx.graph, user, &catalog.app_id, wait_ms > 0)
            .await;
        match read {
            Ok(Some(seen)) => {
                let seen = installed_view(&seen);
                let done = pass.upgrade_visible(catalog, &seen);
                findings.after = Some(Some(seen));
                if done {
                    break;
                }
            }
            Ok(None) => {
                debug!("the installation is gone after the upgrade; the next reconcile looks");
                break;
            }
            Err(e) => {
                debug!(error = %e, "re-read after upgrade failed; the next reconcile verifies");
                break;
            }
        }
    }
    Ok(())
}

/// Notes a failed Graph call at `step` in `findings` and passes the result on.
pub(super) fn record_failure<T>(
    findings: &mut Findings,
    step: GraphStep,
    result: Result<T, GraphError>,
) -> Result<T, GraphError> {
    result.map_err(|err| {
        warn!(step = ?step, error = %err, "Graph call failed");
        findings.failure = Some((step, failure_of(&err)));
        err
    })
}

/// Uninstalls (`ensure: Absent`), then re-reads: a 404 is already gone; Graph's refusal for an
/// app a setup policy installed ends here (the conclusion stalls the resource, not retried).
pub(super) async fn uninstall(
    ctx: &Connected<'_>,
    pass: &Pass,
    catalog: &CatalogView,
    installation_id: &str,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    let user = pass.user.as_str();
    let writing = ctx.installed.writing(ctx.graph.tenant_id(), user).await;
    let removed = ctx.graph.uninstall(user, installation_id).await;
    drop(writing);
    match removed {
        Ok(UninstallOutcome::Removed) => {
            info!(user, installation = %installation_id, "uninstalled")
        }
        Ok(UninstallOutcome::AlreadyGone) => debug!(user, "already uninstalled"),
        Err(e) => return record_failure(findings, GraphStep::Uninstall, Err(e)),
    }
    findings.wrote = Some(Action::Uninstall {
        installation_id: installation_id.to_string(),
    });
    let read = (ctx.installed)
        .find(&ctx.graph, user, &catalog.app_id, false)
        .await;
    let after = record_failure(findings, GraphStep::Verify, read)?;
    findings.after = Some(after.as_ref().map(installed_view));
    Ok(())
}

/// Graph refused an install or upgrade. When the write consented RSC permissions and Graph
/// answered 403, the tenant's Teams app settings say whether RSC in personal scope is turned
/// off (one read, only here); a settings read that fails leaves the 403 as it is.
async fn refused_write(
    ctx: &Connected<'_>,
    step: GraphStep,
    consent: Option<&ConsentedPermissionSet>,
    err: GraphError,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    findings.consented = consent.is_some();
    if consent.is_some() && err.class() == ErrorClass::Forbidden {
        match ctx.graph.personal_scope_consent_enabled().await {
            Ok(enabled) => findings.consent_disabled = Some(!enabled),
            Err(e) => debug!(error = %e, "the tenant's Teams app settings could not be read"),
        }
    }
    record_failure(findings, step, Err(err))
}
