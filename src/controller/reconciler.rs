//! One reconcile of one `TeamsAppInstallation`: observe Graph, decide, act, verify, report.
//!
//! The decision itself is [`crate::reconcile::decide`]; this module does the I/O around it. The
//! only top-level branch is deletion vs. apply, the finalizer's two halves.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use tracing::{Instrument, debug, info, warn};

use crate::api::{
    DeletionPolicy, TeamsAppInstallation, TeamsAppInstallationStatus, parse_interval,
};
use crate::graph::{AppRef, GraphClient, GraphError, Installation, UninstallOutcome};
use crate::reconcile::{
    Action, CatalogView, GraphStep, InstalledView, Observed, Reason, Verdict, Wanted, decide,
    upgrade_in_flight, verdict_for_failure,
};
use crate::version::AppVersion;

use crate::telemetry::Metrics;

use super::backoff::{Backoff, jittered};
use super::finalizer::{add_finalizer, has_finalizer, remove_finalizer};
use super::settings::ControllerSettings;
use super::status::apply_status;

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub client: kube::Client,
    pub graph: GraphClient,
    pub recorder: Recorder,
    pub settings: ControllerSettings,
    pub backoff: Backoff,
    pub metrics: Arc<Metrics>,
}

/// Why a reconcile failed; the controller retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A transient Graph failure; the resource's status already says so.
    #[error("{0}")]
    Graph(#[from] GraphError),
    #[error("the resource has no namespace")]
    NoNamespace,
}

impl ReconcileError {
    /// Graph's `Retry-After`, which overrides the controller's own backoff.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReconcileError::Graph(e) => e.retry_after(),
            _ => None,
        }
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "kube",
            ReconcileError::Graph(_) => "graph",
            ReconcileError::NoNamespace => "invalid",
        }
    }
}

/// The entry point kube-runtime calls.
pub async fn reconcile(
    obj: Arc<TeamsAppInstallation>,
    ctx: Arc<Context>,
) -> Result<Requeue, ReconcileError> {
    let timer = ctx.metrics.reconcile_started();
    let Some(ns) = obj.namespace() else {
        timer.finish(false);
        return Err(ReconcileError::NoNamespace);
    };
    let api: Api<TeamsAppInstallation> = Api::namespaced(ctx.client.clone(), &ns);
    // Every log line of this reconcile carries the resource's namespace and name (`resource`:
    // JSON logs already use `name` for the span's own name).
    let span = tracing::info_span!("reconcile", namespace = %ns, resource = %obj.name_any());
    let result = async {
        if obj.metadata.deletion_timestamp.is_some() {
            cleanup(&obj, &api, &ctx).await
        } else {
            apply(&obj, &api, &ctx).await
        }
    }
    .instrument(span)
    .await;
    if result.is_ok() {
        ctx.backoff.reset(&ObjectRef::from_obj(&*obj));
    }
    timer.finish(result.is_ok());
    result
}

/// kube-runtime's error hook: per-object exponential backoff, or Graph's Retry-After.
pub fn error_policy(
    obj: Arc<TeamsAppInstallation>,
    err: &ReconcileError,
    ctx: Arc<Context>,
) -> Requeue {
    let delay = ctx
        .backoff
        .next_delay(ObjectRef::from_obj(&*obj), err.retry_after());
    debug!(namespace = ?obj.namespace(), name = %obj.name_any(), ?delay, "retrying after failure");
    Requeue::requeue(delay)
}

async fn apply(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    let wants_finalizer = obj.spec.deletion_policy == DeletionPolicy::Uninstall;
    let updated;
    let obj = match (wants_finalizer, has_finalizer(obj)) {
        (true, false) => {
            updated = add_finalizer(api, obj).await?;
            &updated
        }
        (false, true) => {
            updated = remove_finalizer(api, obj).await?;
            &updated
        }
        _ => obj,
    };
    let interval = match effective_interval(obj, &ctx.settings) {
        Ok(interval) => interval,
        Err(message) => {
            let verdict = Verdict::stalled(Reason::InvalidSpec, message);
            return report(obj, api, ctx, Facts::from_previous(obj), verdict, None).await;
        }
    };
    if obj.spec.suspend {
        return suspended(obj, api, ctx, interval).await;
    }
    let Some(app) = app_ref(obj) else {
        let verdict = Verdict::stalled(
            Reason::InvalidSpec,
            "set exactly one of spec.app.id or spec.app.externalId".to_string(),
        );
        return report(obj, api, ctx, Facts::from_previous(obj), verdict, None).await;
    };

    let mut facts = Facts::from_previous(obj);
    let catalog = match ctx.graph.catalog_app(&app).await {
        Ok(Some(catalog)) => catalog,
        Ok(None) => {
            let verdict = Verdict::stalled(
                Reason::AppNotFound,
                format!(
                    "app {} is not in the tenant's app catalog",
                    obj.spec.app.describe()
                ),
            );
            return report(obj, api, ctx, facts, verdict, None).await;
        }
        Err(e) => return failed(obj, api, ctx, facts, GraphStep::Catalog, e).await,
    };
    let latest = catalog.latest_published().map(|d| d.version.clone());
    facts.catalog_app_id = Some(catalog.id.clone());
    facts.app_display_name = catalog.display_name.clone().or(facts.app_display_name);
    facts.latest_version = latest.as_ref().map(ToString::to_string);
    let catalog_view = CatalogView {
        app_id: catalog.id.clone(),
        display_name: catalog.display_name.clone(),
        latest_published: latest.clone(),
    };
    let by_id = AppRef::Id(catalog.id.clone());
    let user = obj.spec.user.as_str();
    let installation = match ctx.graph.find_installation(user, &by_id).await {
        Ok(found) => found,
        Err(e) => return failed(obj, api, ctx, facts, GraphStep::ListInstallations, e).await,
    };
    facts.observe(installation.as_ref());

    let wanted = Wanted {
        target_version: obj.spec.target_version.as_deref().map(AppVersion::parse),
        install_policy: obj.spec.install_policy,
    };
    let previous = obj.status.clone().unwrap_or_default();
    let in_flight = upgrade_in_flight(
        age_of(previous.last_upgrade_time.as_ref()),
        previous
            .latest_version
            .as_deref()
            .map(AppVersion::parse)
            .as_ref(),
        latest.as_ref(),
        ctx.settings.upgrade_verify_window,
    ) && previous.last_upgrade_time.is_some();
    let observed = Observed {
        catalog: catalog_view,
        installation: installation.as_ref().map(installed_view),
        upgrade_in_flight: in_flight,
    };
    let decision = decide(&wanted, &observed);
    debug!(action = ?decision.action, reason = %decision.verdict.reason, "decided");

    let verdict = match decision.action {
        Action::Nothing => decision.verdict,
        Action::Install { catalog_app_id } => {
            if let Err(e) = ctx.graph.install(user, &catalog_app_id, None).await {
                return failed(obj, api, ctx, facts, GraphStep::Install, e).await;
            }
            info!(user, app = %catalog_app_id, "installed");
            // 201 carries no body: list again to learn the installation and its version.
            let installation = match ctx.graph.find_installation(user, &by_id).await {
                Ok(found) => found,
                Err(e) => return failed(obj, api, ctx, facts, GraphStep::Verify, e).await,
            };
            facts.observe(installation.as_ref());
            let version = facts.installed_version.clone().unwrap_or_default();
            publish(
                ctx,
                obj,
                EventType::Normal,
                "Installed",
                "Install",
                format!("installed {} {version} for {user}", display(&facts)),
            )
            .await;
            decide(
                &wanted,
                &Observed {
                    installation: installation.as_ref().map(installed_view),
                    ..observed
                },
            )
            .verdict
        }
        Action::Upgrade { installation_id } => {
            if let Err(e) = ctx.graph.upgrade(user, &installation_id, None).await {
                return failed(obj, api, ctx, facts, GraphStep::Upgrade, e).await;
            }
            info!(user, installation = %installation_id, "upgrade requested");
            facts.last_upgrade_time = Some(Time(jiff::Timestamp::now()));
            let seen = verify_upgrade(ctx, user, &installation_id, &wanted, &observed).await;
            if let Some(installation) = seen {
                facts.observe(Some(&installation));
            }
            decide(
                &wanted,
                &Observed {
                    installation: facts.installation_view(),
                    upgrade_in_flight: true,
                    ..observed
                },
            )
            .verdict
        }
    };

    // Announce an upgrade when the installed version moved forward, whether this reconcile saw
    // it right after its call (then `before` is what Graph showed before the call) or a later
    // one verified it (then `before` is what the last status recorded).
    let seen_before = observed
        .installation
        .as_ref()
        .and_then(|i| i.version.as_ref().map(ToString::to_string));
    let before = [previous.installed_version.clone(), seen_before]
        .into_iter()
        .flatten()
        .min_by_key(|v| AppVersion::parse(v));
    if let (Some(before), Some(after)) = (&before, &facts.installed_version)
        && AppVersion::parse(after) > AppVersion::parse(before)
    {
        publish(
            ctx,
            obj,
            EventType::Normal,
            "Upgraded",
            "Upgrade",
            format!("upgraded {} from {before} to {after}", display(&facts)),
        )
        .await;
    }

    let requeue = match verdict.reason {
        Reason::Installing | Reason::Upgrading => ctx.settings.verify_requeue,
        _ => interval,
    };
    report(obj, api, ctx, facts, verdict, Some(requeue)).await
}

/// Re-reads the installation a few times after an upgrade call: Graph has no async pattern for
/// upgrades and its reads can lag. Returns the last installation seen, if any read succeeded.
async fn verify_upgrade(
    ctx: &Context,
    user: &str,
    installation_id: &str,
    wanted: &Wanted,
    observed: &Observed,
) -> Option<Installation> {
    let mut last = None;
    for wait_ms in [0u64, 500, 1000, 2000] {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        match ctx.graph.get_installation(user, installation_id).await {
            Ok(installation) => {
                let view = Observed {
                    installation: Some(installed_view(&installation)),
                    upgrade_in_flight: true,
                    ..observed.clone()
                };
                let done = decide(wanted, &view).verdict.reason != Reason::Upgrading;
                last = Some(installation);
                if done {
                    break;
                }
            }
            Err(e) => {
                debug!(error = %e, "re-read after upgrade failed; the next reconcile verifies");
                break;
            }
        }
    }
    last
}

/// `suspend: true`: no Graph calls. The status records that the spec was seen; conditions stay
/// as they were (a first status still gets its `Ready` condition).
async fn suspended(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
    interval: Duration,
) -> Result<Requeue, ReconcileError> {
    let mut status = obj.status.clone().unwrap_or_default();
    status.observed_generation = obj.metadata.generation;
    if status.conditions.is_empty() {
        let verdict = Verdict::idle(
            Reason::Suspended,
            "suspended: no Graph calls are made".to_string(),
        );
        status.conditions = verdict.conditions(obj.metadata.generation, &[], &now());
    }
    if apply_status(api, obj, status).await? {
        publish(
            ctx,
            obj,
            EventType::Normal,
            "Suspended",
            "Reconcile",
            "suspended: no Graph calls are made until spec.suspend is false".to_string(),
        )
        .await;
    }
    Ok(Requeue::requeue(jittered(interval)))
}

/// A Graph call failed at `step`. Terminal failures stall the resource; transient ones mark it
/// reconciling and go back to the controller for a backoff retry — except during a routine
/// check of a resource that is already up to date, where nothing is known to be wrong with the
/// install: that only raises a Warning Event.
async fn failed(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
    facts: Facts,
    step: GraphStep,
    err: GraphError,
) -> Result<Requeue, ReconcileError> {
    let verdict = verdict_for_failure(step, &err);
    warn!(step = ?step, error = %err, "Graph call failed");
    if verdict.is_stalled() {
        return report(obj, api, ctx, facts, verdict, None).await;
    }
    let routine_check = matches!(step, GraphStep::Catalog | GraphStep::ListInstallations)
        && is_ready_for_generation(obj);
    publish(
        ctx,
        obj,
        EventType::Warning,
        verdict.reason.as_str(),
        "Reconcile",
        verdict.message.clone(),
    )
    .await;
    if !routine_check {
        write_status(obj, api, facts, &verdict).await?;
    }
    Err(ReconcileError::Graph(err))
}

/// Writes the status for `verdict`, raises a Warning Event when a resource newly stalls, and
/// schedules the next check (`None` = the resource's interval).
async fn report(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
    facts: Facts,
    verdict: Verdict,
    requeue: Option<Duration>,
) -> Result<Requeue, ReconcileError> {
    let wrote = write_status(obj, api, facts, &verdict).await?;
    if wrote && verdict.is_stalled() {
        publish(
            ctx,
            obj,
            EventType::Warning,
            verdict.reason.as_str(),
            "Reconcile",
            verdict.message.clone(),
        )
        .await;
    }
    let period = requeue
        .or_else(|| effective_interval(obj, &ctx.settings).ok())
        .unwrap_or(ctx.settings.default_interval);
    Ok(Requeue::requeue(jittered(period)))
}

async fn write_status(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    facts: Facts,
    verdict: &Verdict,
) -> Result<bool, kube::Error> {
    let previous = obj.status.clone().unwrap_or_default();
    let generation = obj.metadata.generation;
    let status = TeamsAppInstallationStatus {
        observed_generation: generation,
        catalog_app_id: facts.catalog_app_id,
        app_display_name: facts.app_display_name,
        installation_id: facts.installation_id,
        installed_version: facts.installed_version,
        latest_version: facts.latest_version,
        last_upgrade_time: facts.last_upgrade_time,
        conditions: verdict.conditions(generation, &previous.conditions, &now()),
    };
    apply_status(api, obj, status).await
}

/// Deletion: with `deletionPolicy: Uninstall`, remove the app in Graph, then release the
/// finalizer. Idempotent, and fine if apply never ran (nothing installed = nothing to remove).
async fn cleanup(
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
            let verdict = verdict_for_failure(GraphStep::Uninstall, &e);
            publish(
                ctx,
                obj,
                EventType::Warning,
                verdict.reason.as_str(),
                "Uninstall",
                verdict.message,
            )
            .await;
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
            let verdict = verdict_for_failure(GraphStep::Uninstall, &e);
            publish(
                ctx,
                obj,
                EventType::Warning,
                verdict.reason.as_str(),
                "Uninstall",
                verdict.message,
            )
            .await;
            Err(e.into())
        }
    }
}

/// The status fields that describe Graph, carried over from the last status and updated with
/// whatever this reconcile learned.
#[derive(Debug, Clone, Default)]
struct Facts {
    catalog_app_id: Option<String>,
    app_display_name: Option<String>,
    installation_id: Option<String>,
    installed_version: Option<String>,
    latest_version: Option<String>,
    last_upgrade_time: Option<Time>,
}

impl Facts {
    fn from_previous(obj: &TeamsAppInstallation) -> Self {
        let s = obj.status.clone().unwrap_or_default();
        Self {
            catalog_app_id: s.catalog_app_id,
            app_display_name: s.app_display_name,
            installation_id: s.installation_id,
            installed_version: s.installed_version,
            latest_version: s.latest_version,
            last_upgrade_time: s.last_upgrade_time,
        }
    }

    fn observe(&mut self, installation: Option<&Installation>) {
        self.installation_id = installation.map(|i| i.id.clone());
        self.installed_version =
            installation.and_then(|i| i.version.as_ref().map(ToString::to_string));
        if let Some(name) = installation.and_then(|i| i.app_display_name.clone()) {
            self.app_display_name = Some(name);
        }
    }

    fn installation_view(&self) -> Option<InstalledView> {
        self.installation_id.as_ref().map(|id| InstalledView {
            id: id.clone(),
            version: self.installed_version.as_deref().map(AppVersion::parse),
        })
    }
}

fn installed_view(installation: &Installation) -> InstalledView {
    InstalledView {
        id: installation.id.clone(),
        version: installation.version.clone(),
    }
}

fn app_ref(obj: &TeamsAppInstallation) -> Option<AppRef> {
    match (&obj.spec.app.id, &obj.spec.app.external_id) {
        (Some(id), None) => Some(AppRef::Id(id.clone())),
        (None, Some(ext)) => Some(AppRef::ExternalId(ext.clone())),
        _ => None,
    }
}

fn effective_interval(
    obj: &TeamsAppInstallation,
    settings: &ControllerSettings,
) -> Result<Duration, String> {
    let asked = match obj.spec.interval.as_deref() {
        Some(text) => parse_interval(text).map_err(|e| e.to_string())?,
        None => settings.default_interval,
    };
    Ok(asked.max(settings.min_interval))
}

/// Ready=True for the current generation: the resource was up to date at the last check.
fn is_ready_for_generation(obj: &TeamsAppInstallation) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.observed_generation == obj.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn display(facts: &Facts) -> String {
    facts
        .app_display_name
        .clone()
        .or_else(|| facts.catalog_app_id.clone())
        .unwrap_or_else(|| "the app".to_string())
}

fn age_of(time: Option<&Time>) -> Option<Duration> {
    let then = time?.0;
    let elapsed = jiff::Timestamp::now().duration_since(then);
    Duration::try_from(elapsed).ok()
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// Events are best effort: a failure to record one must not fail the reconcile.
async fn publish(
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
