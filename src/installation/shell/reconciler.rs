//! One reconcile of one `TeamsAppInstallation`, top to bottom.
//!
//! A watch event (or a requeue) arrives in [`reconcile`]. Deletion goes to the finalizer's
//! cleanup; everything else goes through [`apply`]: read the resource ([`Pass`]) → observe Graph
//! (the catalog, then the user's installation) → [`decide`] → act (the one Graph write and its
//! verification) → [`conclude`] (pure: status, Events, requeue) → [`report`], the one place that
//! writes status and publishes Events. The rules live in the kind's pure core
//! ([`super::super::core`]); this file only does the I/O around them.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action as Requeue;
use kube::{Api, ResourceExt};
use tracing::{debug, info, warn};

use crate::api::{DeletionPolicy, TeamsAppInstallation, UNINSTALL_FINALIZER};
use crate::graph::{AppRef, ErrorClass, GraphError};
use crate::kit::{apply_status, clock, finalizer};

use super::super::core::{
    Action, CatalogView, Findings, GraphStep, Outcome, Pass, conclude, decide, owner_other_than,
};
use super::cleanup::cleanup;
use super::connect::connect;
use super::context::{Connected, Context, ReconcileError};
use super::views::{app_ref, catalog_view, claim_of, failure_of, installed_view};

/// The entry point kube-runtime calls.
pub async fn reconcile(
    obj: Arc<TeamsAppInstallation>,
    ctx: Arc<Context>,
) -> Result<Requeue, ReconcileError> {
    ctx.plumbing
        .reconcile(&*obj, async {
            let ns = obj.namespace().ok_or(ReconcileError::NoNamespace)?;
            let api: Api<TeamsAppInstallation> = Api::namespaced(ctx.plumbing.client.clone(), &ns);
            if obj.metadata.deletion_timestamp.is_some() {
                cleanup(&obj, &api, &ctx).await
            } else {
                apply(&obj, &api, &ctx).await
            }
        })
        .await
}

/// The apply half of the finalizer: read the resource, work on Graph, conclude, report.
async fn apply(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    let updated = sync_finalizer(obj, api).await?;
    let obj = updated.as_ref().unwrap_or(obj);
    let pass = Pass::new(obj, ctx.settings.timing(), clock::now());
    let mut findings = Findings::default();
    let mut error = None;
    if pass.invalid_spec().is_none() && !pass.suspended {
        match connect(ctx, obj) {
            Ok(connected) => {
                findings.tenant = Some(connected.graph.tenant_id().to_string());
                error = work(&connected, obj, &pass, &mut findings).await.err();
            }
            Err(refused) => findings.connection = Some(refused),
        }
    }
    let outcome = conclude(&pass, findings);
    report(obj, api, ctx, outcome, error).await
}

/// `deletionPolicy: Uninstall` needs the finalizer; `Orphan` must not keep one. Returns the
/// updated object when it changed.
async fn sync_finalizer(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
) -> Result<Option<TeamsAppInstallation>, kube::Error> {
    let wants_finalizer = obj.spec.deletion_policy == DeletionPolicy::Uninstall;
    Ok(
        match (wants_finalizer, finalizer::holds(obj, UNINSTALL_FINALIZER)) {
            (true, false) => Some(finalizer::add(api, obj, UNINSTALL_FINALIZER).await?),
            (false, true) => Some(finalizer::remove(api, obj, UNINSTALL_FINALIZER).await?),
            _ => None,
        },
    )
}

/// Observe → decide → act. A failed Graph call ends the work: the failure goes into `findings`
/// for the conclusion and is returned for the controller's backoff.
async fn work(
    ctx: &Connected<'_>,
    obj: &TeamsAppInstallation,
    pass: &Pass,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    let Some(app) = app_ref(obj) else {
        return Ok(());
    };
    let found = ctx.catalog.lookup(&ctx.graph, &app, pass.refresh()).await;
    let Some(catalog) = record_failure(findings, GraphStep::Catalog, found)? else {
        findings.app_missing = Some(format!(
            "app {} is not in the tenant's app catalog",
            obj.spec.app.describe()
        ));
        return Ok(());
    };
    let catalog = catalog_view(&catalog);
    findings.catalog = Some(catalog.clone());
    let read = (ctx.installed)
        .find(&ctx.graph, &pass.user, &catalog.app_id, pass.refresh())
        .await;
    let read = match read {
        Err(e) if e.class() == ErrorClass::NotFound => {
            return user_not_found(ctx, &pass.user, GraphStep::ListInstallations, e, findings)
                .await;
        }
        read => read,
    };
    let before = record_failure(findings, GraphStep::ListInstallations, read)?;
    let before = before.as_ref().map(installed_view);
    findings.before = Some(before.clone());
    // Another resource for this user and app owns the installation: read, never write.
    let claims = ctx.rivals.claims(&ctx.installations, obj);
    let mut me = claim_of(obj);
    me.tenant = Some(ctx.graph.tenant_id().to_lowercase());
    if let Some(owner) = owner_other_than(&me, &claims) {
        findings.owner = Some(owner.describe());
        return Ok(());
    }

    let decision = decide(&pass.wanted, &pass.observed(catalog.clone(), before));
    debug!(action = ?decision.action, reason = %decision.verdict.reason, "decided");
    match decision.action {
        Action::Nothing => Ok(()),
        Action::Install { catalog_app_id } => {
            install(ctx, pass, &app, &catalog_app_id, findings).await
        }
        Action::Upgrade { installation_id } => {
            upgrade(ctx, pass, &catalog, &installation_id, findings).await
        }
    }
}

/// Installs the app, then lists again: Graph's 201 carries no body, and its list may not show
/// the install yet (its reads lag its writes; the conclusion then waits instead of asking again).
async fn install(
    ctx: &Connected<'_>,
    pass: &Pass,
    app: &AppRef,
    catalog_app_id: &str,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    let user = pass.user.as_str();
    let writing = ctx.installed.writing(ctx.graph.tenant_id(), user).await;
    let installed = ctx.graph.install(user, catalog_app_id, None).await;
    drop(writing);
    match installed {
        Ok(outcome) => info!(user, app = %catalog_app_id, ?outcome, "install requested"),
        Err(e) if e.class() == ErrorClass::NotFound => {
            return install_not_found(ctx, user, app, e, findings).await;
        }
        Err(e) => return record_failure(findings, GraphStep::Install, Err(e)),
    }
    findings.wrote = Some(Action::Install {
        catalog_app_id: catalog_app_id.to_string(),
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
async fn user_not_found(
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
async fn upgrade(
    ctx: &Connected<'_>,
    pass: &Pass,
    catalog: &CatalogView,
    installation_id: &str,
    findings: &mut Findings,
) -> Result<(), GraphError> {
    let user = pass.user.as_str();
    let writing = ctx.installed.writing(ctx.graph.tenant_id(), user).await;
    let upgraded = ctx.graph.upgrade(user, installation_id, None).await;
    drop(writing);
    match upgraded {
        Ok(()) => info!(user, installation = %installation_id, "upgrade requested"),
        Err(e) if e.class() == ErrorClass::BadRequest => {
            info!(user, installation = %installation_id, error = %e,
                "upgrade refused; re-reading in case it is already at the latest version");
        }
        Err(e) => return record_failure(findings, GraphStep::Upgrade, Err(e)),
    }
    findings.wrote = Some(Action::Upgrade {
        installation_id: installation_id.to_string(),
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

/// The single exit: writes the status when it changed, publishes the Events, and schedules the
/// next look (or hands a transient Graph failure to the controller's backoff).
async fn report(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
    outcome: Outcome,
    error: Option<GraphError>,
) -> Result<Requeue, ReconcileError> {
    if let Some(status) = &outcome.status {
        apply_status(api, obj, status).await?;
    }
    for event in &outcome.events {
        ctx.plumbing.publish(obj, event).await;
    }
    match error {
        Some(err) if outcome.retry => Err(ReconcileError::Graph(err)),
        _ => Ok(Requeue::requeue(outcome.requeue)),
    }
}

/// Notes a failed Graph call at `step` in `findings` and passes the result on.
fn record_failure<T>(
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
