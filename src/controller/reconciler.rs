//! One reconcile of one `TeamsAppInstallation`: observe Graph, decide, act, verify, report.
//!
//! The decision itself is [`crate::reconcile::decide`]; this module does the I/O around it. The
//! only top-level branch is deletion vs. apply, the finalizer's two halves.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use tracing::{Instrument, debug, info, warn};

use crate::api::{DeletionPolicy, TeamsAppInstallation, parse_interval};
use crate::graph::{AppRef, ErrorClass, GraphClient, GraphError, Installation};
use crate::reconcile::{
    Action, CatalogView, GraphStep, Observed, Reason, Verdict, Wanted, announce_install, decide,
    install_in_flight, upgrade_in_flight, verdict_for_failure,
};
use crate::telemetry::Metrics;
use crate::version::AppVersion;

use super::RECONCILE_REQUESTED_ANNOTATION;
use super::backoff::FailureBackoff;
use super::catalog::CatalogCache;
use super::cleanup::cleanup;
use super::events::publish;
use super::facts::{Facts, installed_view};
use super::finalizer::{add_finalizer, has_finalizer, remove_finalizer};
use super::settings::ControllerSettings;
use super::status::apply_status;
use crate::backoff::jittered;

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub client: kube::Client,
    pub graph: GraphClient,
    pub recorder: Recorder,
    pub settings: ControllerSettings,
    pub backoff: FailureBackoff,
    pub catalog: CatalogCache,
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
    // `kubectl annotate … reconcile-requested-at=…` asks for a re-check now: with fresh data.
    let requested = obj
        .annotations()
        .get(RECONCILE_REQUESTED_ANNOTATION)
        .cloned();
    let refresh = requested.is_some() && requested != facts.last_handled_reconcile_at;
    if refresh {
        facts.last_handled_reconcile_at = requested;
    }
    let catalog = match ctx.catalog.lookup(&ctx.graph, &app, refresh).await {
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
    let window = ctx.settings.upgrade_verify_window;
    let observed = Observed {
        catalog: catalog_view,
        installation: installation.as_ref().map(installed_view),
        upgrade_in_flight: in_flight,
        install_in_flight: install_in_flight(age_of(previous.last_install_time.as_ref()), window),
    };
    let decision = decide(&wanted, &observed);
    debug!(action = ?decision.action, reason = %decision.verdict.reason, "decided");

    let verdict = match decision.action {
        Action::Nothing => decision.verdict,
        Action::Install { catalog_app_id } => {
            match ctx.graph.install(user, &catalog_app_id, None).await {
                Ok(outcome) => info!(user, app = %catalog_app_id, ?outcome, "install requested"),
                Err(e) if e.class() == ErrorClass::NotFound => {
                    return install_not_found(obj, api, ctx, facts, &app, e).await;
                }
                Err(e) => return failed(obj, api, ctx, facts, GraphStep::Install, e).await,
            }
            facts.last_install_time = Some(now());
            // 201 carries no body: list again to learn the installation and its version (it
            // may not show yet: Graph's reads lag its writes).
            let installation = match ctx.graph.find_installation(user, &by_id).await {
                Ok(found) => found,
                Err(e) => return failed(obj, api, ctx, facts, GraphStep::Verify, e).await,
            };
            facts.observe(installation.as_ref());
            decide(
                &wanted,
                &Observed {
                    installation: installation.as_ref().map(installed_view),
                    install_in_flight: true,
                    ..observed.clone()
                },
            )
            .verdict
        }
        Action::Upgrade { installation_id } => {
            match ctx.graph.upgrade(user, &installation_id, None).await {
                Ok(()) => info!(user, installation = %installation_id, "upgrade requested"),
                // Undocumented: Graph may answer 400 to an upgrade of an installation that is
                // already at the latest version, which a lagging read makes the operator ask
                // for. The re-read below decides; until it shows the new version, the upgrade
                // counts as requested.
                Err(e) if e.class() == ErrorClass::BadRequest => {
                    info!(user, installation = %installation_id, error = %e,
                        "upgrade refused; re-reading in case it is already at the latest version");
                }
                Err(e) => return failed(obj, api, ctx, facts, GraphStep::Upgrade, e).await,
            }
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

    let visible_before = previous.installation_id.is_some() && observed.installation.is_some();
    let requested_recently = install_in_flight(age_of(facts.last_install_time.as_ref()), window);
    if announce_install(
        visible_before,
        facts.installation_id.is_some(),
        requested_recently,
    ) {
        let version = facts.installed_version.clone().unwrap_or_default();
        publish(
            ctx,
            obj,
            EventType::Normal,
            "Installed",
            "Install",
            format!("installed {} {version} for {user}", facts.app_name()),
        )
        .await;
    }

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
            format!("upgraded {} from {before} to {after}", facts.app_name()),
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

/// Graph answered 404 to an install: the user or the app is gone. The catalog (read afresh)
/// tells which, without reading Graph's message.
async fn install_not_found(
    obj: &TeamsAppInstallation,
    api: &Api<TeamsAppInstallation>,
    ctx: &Context,
    facts: Facts,
    app: &AppRef,
    err: GraphError,
) -> Result<Requeue, ReconcileError> {
    match ctx.catalog.lookup(&ctx.graph, app, true).await {
        Ok(Some(_)) => failed(obj, api, ctx, facts, GraphStep::Install, err).await,
        Ok(None) => {
            let verdict = Verdict::stalled(
                Reason::AppNotFound,
                format!(
                    "app {} is no longer in the tenant's app catalog: {err}",
                    obj.spec.app.describe()
                ),
            );
            report(obj, api, ctx, facts, verdict, None).await
        }
        Err(e) => failed(obj, api, ctx, facts, GraphStep::Catalog, e).await,
    }
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
    let conditions = verdict.conditions(generation, &previous.conditions, &now());
    apply_status(api, obj, facts.into_status(generation, conditions)).await
}

pub(super) fn app_ref(obj: &TeamsAppInstallation) -> Option<AppRef> {
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

fn age_of(time: Option<&Time>) -> Option<Duration> {
    let then = time?.0;
    let elapsed = jiff::Timestamp::now().duration_since(then);
    Duration::try_from(elapsed).ok()
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}
