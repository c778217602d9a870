//! The I/O shell of `TeamsAppInstallation`: the watch, the caches of Graph reads, the Graph
//! calls around the pure core, and kube-runtime's controller. [`reconciler`] is one reconcile top
//! to bottom.

mod admission;
mod catalog;
mod cleanup;
mod connect;
mod context;
mod installed;
mod notice_clock;
mod notified;
mod reconciler;
mod rivals;
mod settings;
mod shared_read;
mod views;
mod writes;

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use kube::Client;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use tracing::info;

use crate::api::TeamsAppInstallation;
use crate::kit::metrics::ControllerSeries;
use crate::kit::{FailureClock, Plumbing, StateGauge, error_policy, log_outcome, plumbing, watch};
use crate::tenancy::Connections;

pub use context::{Context, Coverage, ReconcileError};
pub use notified::Notice;
pub use reconciler::reconcile;
pub use settings::ControllerSettings;

/// The `controller` label of this kind's `controller_runtime_*` series.
pub const CONTROLLER: &str = "teamsappinstallation";

/// What the process hands the installation controller: where it reports, the cache it fills
/// (which other controllers read), and who else wants to hear of every change.
pub struct Wiring {
    pub metrics: ControllerSeries,
    pub states: Arc<StateGauge<TeamsAppInstallation>>,
    /// Times how long resources spend failing, from the watch.
    pub failing: FailureClock,
    /// Called once the cache has synced (readiness: before that the operator would act on a
    /// partial view).
    pub synced: Box<dyn FnOnce() + Send>,
    /// The cache the watch fills; its reader is shared with the other kinds.
    pub cache: Writer<TeamsAppInstallation>,
    /// Called for every change of an installation, status included.
    pub on_change: Box<dyn Fn(&TeamsAppInstallation) + Send + Sync>,
    /// Installations to look at now: their connection changed (or its namespace's labels).
    pub wakeups: futures::channel::mpsc::UnboundedReceiver<ObjectRef<TeamsAppInstallation>>,
    /// Graph's change notifications for the apps of the resources (when the operator receives
    /// them): the resources they concern look again at once.
    pub notifications: Option<futures::channel::mpsc::Receiver<Notice>>,
    /// Which resources a healthy subscription covers (with notifications).
    pub coverage: Option<Coverage>,
    /// Times a notification's correction (with notifications).
    pub corrections: prometheus_client::metrics::histogram::Histogram,
}

/// Runs the controller until `shutdown` resolves; in-flight reconciles finish first. Dropping
/// the returned future stops it at once (what losing the leader Lease does).
pub async fn run(
    client: Client,
    connections: Arc<Connections>,
    settings: ControllerSettings,
    wiring: Wiring,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Wiring {
        metrics,
        states,
        failing,
        synced,
        cache,
        on_change,
        wakeups,
        notifications,
        coverage,
        corrections,
    } = wiring;
    let namespace = settings.namespace.clone();
    let concurrency = settings.concurrency;
    let rivals = Arc::new(rivals::RivalIndex::default());
    let ctx = Arc::new(Context {
        plumbing: Plumbing::new(client, settings.instance.clone(), metrics.clone()),
        installations: cache.as_reader(),
        rivals: rivals.clone(),
        connections,
        catalog: catalog::CatalogCache::new(settings.catalog_cache_ttl),
        installed: installed::InstalledApps::new(settings.user_snapshot_ttl),
        coverage,
        notices: (notifications.is_some()).then(|| notice_clock::NoticeClock::new(corrections)),
        settings,
    });
    let objects = watch::objects(
        &ctx.plumbing.client,
        namespace.as_deref(),
        cache.as_reader(),
        ctx.plumbing.recorder.clone(),
        metrics.clone(),
    );
    let reader = cache.as_reader();
    let reader_for_rivals = cache.as_reader();
    metrics.started(concurrency);
    let _counting = states.count(reader.clone());
    let synced = when_synced(reader.clone(), synced);
    // When a resource goes, the others that want the same Graph installation look at once:
    // the next in line takes it over without waiting for its interval.
    let (successors, next_in_line) = futures::channel::mpsc::unbounded();
    let watch = triggers(
        objects,
        cache,
        failing,
        move |obj: &TeamsAppInstallation, event: Change| {
            rivals.update(obj, event == Change::Deleted);
            if event != Change::Updated {
                for successor in rivals.successors(&reader_for_rivals, obj) {
                    let _ = successors.unbounded_send(successor);
                }
            }
            on_change(obj);
        },
    );
    let (triggers, finished) = admission::by_user(Box::pin(watch), concurrency.into());
    info!(concurrency, "controller started");
    let controller = Controller::for_stream(triggers, reader)
        .reconcile_on(next_in_line)
        .reconcile_on(wakeups)
        .reconcile_on(notified::rechecks(notifications, ctx.clone()))
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| {
            // Every reconcile the admission let through ends in one result that names it.
            if let Some((namespace, name)) = reconciled(&outcome) {
                finished.finished(namespace, name);
            }
            log_outcome(&metrics, &outcome);
            futures::future::ready(())
        });
    futures::future::join(synced, controller).await;
    info!("controller stopped");
}

/// Calls `synced` once the cache has its first list.
async fn when_synced(reader: Store<TeamsAppInstallation>, synced: Box<dyn FnOnce() + Send>) {
    if reader.wait_until_ready().await.is_ok() {
        info!("resource cache synced");
        synced();
    }
}

/// The namespace and name of the resource a reconcile's outcome is about (none for the
/// controller's own errors).
fn reconciled<E: std::error::Error + 'static>(
    outcome: &plumbing::Outcome<TeamsAppInstallation, E>,
) -> Option<(Option<&str>, &str)> {
    match outcome {
        Ok((obj, _)) => Some((obj.namespace.as_deref(), obj.name.as_str())),
        Err(controller::Error::ReconcilerFailed(_, obj)) => {
            Some((obj.namespace.as_deref(), obj.name.as_str()))
        }
        Err(controller::Error::ObjectNotFound(obj)) => {
            Some((obj.namespace.as_deref(), obj.name.as_str()))
        }
        Err(_) => None,
    }
}

/// What a watch event did to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Updated,
    /// Marked for deletion (finalizers still to run).
    Deleting,
    Deleted,
}

/// The watch that feeds the controller, reflected into the cache the reconciles (and the other
/// kinds) read. Only changes that matter trigger a reconcile ([`watch::trigger`]); every change,
/// status included, goes to `on_change`.
fn triggers(
    objects: impl futures::Stream<Item = Result<watcher::Event<TeamsAppInstallation>, watcher::Error>>,
    cache: Writer<TeamsAppInstallation>,
    failing: FailureClock,
    on_change: impl Fn(&TeamsAppInstallation, Change) + Send + 'static,
) -> impl futures::Stream<Item = Result<TeamsAppInstallation, watcher::Error>> {
    objects
        .modify(watch::slim)
        .reflect(cache)
        .inspect(move |event| {
            if let Ok(event) = event {
                failing.watch(event);
            }
        })
        .inspect(move |event| match event {
            Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                let deleting = obj.metadata.deletion_timestamp.is_some();
                on_change(
                    obj,
                    if deleting {
                        Change::Deleting
                    } else {
                        Change::Updated
                    },
                )
            }
            Ok(watcher::Event::Delete(obj)) => on_change(obj, Change::Deleted),
            _ => {}
        })
        .applied_objects()
        .predicate_filter(watch::trigger, Default::default())
}
