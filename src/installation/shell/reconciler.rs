//! One reconcile of one `TeamsAppInstallation`, top to bottom.
//!
//! A watch event (or a requeue) arrives in [`reconcile`]. Deletion goes to the finalizer's
//! cleanup; everything else goes through [`apply`]: read the resource ([`Pass`]) → observe Graph
//! (the catalog, then the user's installation) → [`decide`] → act (the one Graph write and its
//! verification) → [`conclude`] (pure: status, Events, requeue) → [`report`], the one place that
//! writes status and publishes Events. The rules live in the kind's pure core
//! ([`super::super::core`]); this file only does the I/O around them.

use std::sync::Arc;

use kube::runtime::controller::Action as Requeue;
use kube::{Api, ResourceExt};
use tracing::debug;

use crate::api::{DeletionPolicy, TeamsAppInstallation, UNINSTALL_FINALIZER};
use crate::graph::{ErrorClass, GraphError};
use crate::kit::{apply_status, clock, finalizer};

use super::super::core::{
    Action, Findings, GraphStep, Outcome, Pass, conclude, decide, owner_other_than,
};
use super::cleanup::cleanup;
use super::connect::connect;
use kube::runtime::reflector::ObjectRef;

use super::context::{Connected, Context, ReconcileError};
use super::views::{app_ref, catalog_view, claim_of, installed_view};
use super::writes::{install, record_failure, uninstall, upgrade, user_not_found};

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
    let mut pass = Pass::new(obj, ctx.settings.timing(), clock::now());
    let mut findings = Findings::default();
    let mut error = None;
    if pass.invalid_spec().is_none() && !pass.suspended {
        match connect(ctx, obj) {
            Ok(connected) => {
                findings.tenant = Some(connected.graph.tenant_id().to_string());
                error = work(&connected, obj, &pass, &mut findings).await.err();
                if let Some(resync) = covered(&connected, &findings) {
                    pass.relax_interval(resync);
                }
            }
            Err(refused) => findings.connection = Some(refused),
        }
    }
    if let Some(clock) = &ctx.notices {
        clock.settle(&ObjectRef::from_obj(obj), findings.wrote.is_some());
    }
    let outcome = conclude(&pass, findings);
    report(obj, api, ctx, outcome, error).await
}

/// A healthy subscription covers the resource's app: Graph tells of changes, so the drift
/// check only backs that up, every `--notification-resync`.
fn covered(ctx: &Connected<'_>, findings: &Findings) -> Option<std::time::Duration> {
    let coverage = ctx.coverage.as_ref()?;
    let app = &findings.catalog.as_ref()?.app_id;
    coverage(&ctx.connection, app)
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
    if pass.observe {
        // Plan mode: the conclusion turns the same decision into `status.plan`.
        return Ok(());
    }
    match decision.action {
        Action::Nothing => Ok(()),
        Action::Install {
            catalog_app_id,
            consent,
        } => install(ctx, pass, &app, &catalog_app_id, consent.as_ref(), findings).await,
        Action::Upgrade {
            installation_id,
            consent,
        } => {
            upgrade(
                ctx,
                pass,
                &catalog,
                &installation_id,
                consent.as_ref(),
                findings,
            )
            .await
        }
        Action::Uninstall { installation_id } => {
            uninstall(ctx, pass, &catalog, &installation_id, findings).await
        }
    }
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
