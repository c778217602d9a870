//! The one place the kinds meet: the installation controller fills the cache the rollout
//! controller reads, and wakes a rollout when one of its installations changes; the connection
//! controllers check the connections every resource's Graph calls go through, and wake the
//! resources that use one when it changes. The kinds are peers; neither imports the other.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::channel::mpsc;
use futures::future::{BoxFuture, Shared};
use kube::Client;
use kube::api::ListParams;
use kube::runtime::reflector;
use tracing::warn;

use crate::api::{TeamsAppInstallation, TeamsAppRollout};
use crate::installation::{self, ControllerSettings};
use crate::kit::watch;
use crate::rollout;
use crate::telemetry::Telemetry;
use crate::tenancy::Connections;

use super::connection_kinds::ConnectionKinds;
use super::notifications;
use super::wake::Wake;

pub use super::connection_kinds::GraphAccess;

/// Why the controllers could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the TeamsAppInstallation CRD is not installed (install it with `teams-app-operator crd | kubectl apply -f -` or the Helm chart): {0}"
    )]
    CrdMissing(kube::Error),
    #[error("cannot list TeamsAppInstallations: {0}")]
    Kube(kube::Error),
}

/// Checks that the installation CRD is installed and its resources can be listed: one clear
/// error for a missing CRD or missing RBAC at start-up, instead of a watcher retrying forever.
pub async fn preflight(client: &Client, settings: &ControllerSettings) -> Result<(), RunError> {
    let api = watch::scoped::<TeamsAppInstallation>(client, settings.namespace.as_deref());
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Err(RunError::CrdMissing(kube::Error::Api(e))),
        Err(e) => Err(RunError::Kube(e)),
    }
}

/// Runs every controller until `shutdown` resolves; in-flight reconciles finish first.
/// Dropping the returned future stops them at once (what losing the leader Lease does).
pub async fn run(
    client: Client,
    access: GraphAccess,
    settings: ControllerSettings,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) -> Result<(), RunError> {
    preflight(&client, &settings).await?;
    let receiver = access.notifications.clone();
    let rollouts_api = watch::scoped::<TeamsAppRollout>(&client, settings.namespace.as_deref());
    let rollouts_served = watch::served(&rollouts_api).await.map_err(RunError::Kube)?;
    let (installations, installation_cache) = reflector::store();
    let (rollouts, rollout_cache) = reflector::store::<TeamsAppRollout>();
    let (wake_rollout, rollout_wakeups) = mpsc::unbounded();
    let (wake_installation, installation_wakeups) = mpsc::unbounded();
    let wake = Wake {
        installations: installations.clone(),
        rollouts,
        installation: wake_installation,
        rollout: wake_rollout.clone(),
    };
    let connection_kinds = ConnectionKinds::start(
        &client,
        access,
        &settings,
        &telemetry,
        &wake,
        shutdown.clone(),
    )
    .await
    .map_err(RunError::Kube)?;
    telemetry.health.controller_started();
    let connections = connection_kinds.registry.clone();
    let changes = notifications::Changes::default();
    let (notified, notifications_run) = notifications::start_if_asked(
        receiver.as_ref(),
        &installations,
        &connections,
        &wake.installation,
        connection_kinds.look_again.clone(),
        &changes,
        shutdown.clone(),
    )
    .await;
    let mut installation_wiring = installation_wiring(
        &telemetry,
        installation_cache,
        installation_wakeups,
        wake_rollout,
        changes,
    );
    if let Some((events, coverage)) = notified {
        installation_wiring.notifications = Some(events);
        installation_wiring.coverage = Some(coverage);
    }
    let synced = connection_kinds.synced.clone();
    let rollouts_run = rollouts_run(
        rollouts_served.then_some(rollout_cache),
        installations,
        rollout_wakeups,
        &client,
        &connections,
        &settings,
        &telemetry,
        synced.clone(),
        shutdown.clone(),
    );
    // Resources wait for the connections' caches: before, every named connection would look
    // missing.
    let installations_run = async move {
        synced.await;
        installation::run(client, connections, settings, installation_wiring, shutdown).await
    };
    let others = futures::future::join(connection_kinds.run, notifications_run)
        .map(drop)
        .boxed();
    until_stopped(installations_run, rollouts_run, others).await;
    Ok(())
}

/// The rollout controller, once the connections' caches are filled; nothing without the
/// rollout CRD (a chart upgraded from before rollouts: Helm never adds CRDs on upgrade), and
/// installations are reconciled all the same.
#[allow(clippy::too_many_arguments)]
fn rollouts_run(
    cache: Option<reflector::store::Writer<TeamsAppRollout>>,
    installations: reflector::Store<TeamsAppInstallation>,
    wakeups: mpsc::UnboundedReceiver<reflector::ObjectRef<TeamsAppRollout>>,
    client: &Client,
    connections: &Arc<Connections>,
    settings: &ControllerSettings,
    telemetry: &Telemetry,
    synced: Shared<BoxFuture<'static, ()>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> BoxFuture<'static, ()> {
    let Some(cache) = cache else {
        warn!(
            "the TeamsAppRollout CRD is not installed: rollouts are not reconciled (install it with `teams-app-operator crd | kubectl apply -f -`)"
        );
        return futures::future::ready(()).boxed();
    };
    let wiring = rollout::Wiring {
        metrics: telemetry.metrics.controller(rollout::CONTROLLER),
        states: telemetry.metrics.rollout_states.clone(),
        failing: telemetry.metrics.failing.controller(rollout::CONTROLLER),
        installations,
        wakeups,
        min_membership_interval: settings.min_membership_interval,
        default_policy: settings.default_management_policy,
        cache,
    };
    let (namespace, instance) = (settings.namespace.clone(), settings.instance.clone());
    let (connections, client) = (connections.clone(), client.clone());
    async move {
        synced.await;
        rollout::run(client, connections, namespace, instance, wiring, shutdown).await
    }
    .boxed()
}

/// The installation controller's share of the process's caches, queues and metrics.
fn installation_wiring(
    telemetry: &Telemetry,
    cache: reflector::store::Writer<TeamsAppInstallation>,
    wakeups: mpsc::UnboundedReceiver<reflector::ObjectRef<TeamsAppInstallation>>,
    wake_rollout: mpsc::UnboundedSender<reflector::ObjectRef<TeamsAppRollout>>,
    changes: notifications::Changes,
) -> installation::Wiring {
    installation::Wiring {
        metrics: telemetry.metrics.controller(installation::CONTROLLER),
        states: telemetry.metrics.installation_states.clone(),
        failing: telemetry
            .metrics
            .failing
            .controller(installation::CONTROLLER),
        synced: {
            let health = telemetry.health.clone();
            Box::new(move || health.caches_synced())
        },
        cache,
        // Every change of an installation a rollout owns, status included, wakes that rollout.
        // The receiver is gone only when rollouts are not reconciled.
        on_change: Box::new(move |obj| {
            changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(owner) = rollout::owner_of(obj) {
                let _ = wake_rollout.unbounded_send(owner);
            }
        }),
        wakeups,
        notifications: None,
        coverage: None,
        corrections: telemetry.metrics.corrections.clone(),
    }
}

/// The installation controller ends when shutdown is asked for (after its in-flight
/// reconciles). The rollout and connection controllers get a few seconds more to finish their
/// own, and are then dropped: a pass stuck on the API server must not keep the process from
/// exiting.
async fn until_stopped(
    installations_run: impl Future<Output = ()>,
    rollouts_run: BoxFuture<'static, ()>,
    connections_run: BoxFuture<'static, ()>,
) {
    let others = futures::future::join(rollouts_run, connections_run).fuse();
    futures::pin_mut!(installations_run, others);
    futures::select! {
        () = installations_run.as_mut().fuse() => {
            let grace = tokio::time::timeout(SHUTDOWN_GRACE, &mut others).await;
            if grace.is_err() {
                warn!("the rollout or connection controllers did not stop in time after shutdown; stopping them");
            }
        }
        _ = others => installations_run.await,
    }
}

/// How long the other controllers may take to stop once the installation controller has.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use crate::installation::core::Reason as I;
    use crate::kit::failing::PASSING_FAILURES;
    use crate::rollout::core::Reason as R;

    /// The kit's clock counts time spent failing by these reasons, for both kinds it is wired to.
    #[test]
    fn both_kinds_give_the_reasons_the_failing_clock_counts() {
        let installation = [I::Throttled, I::GraphUnavailable, I::AuthenticationFailed];
        let rollout = [R::Throttled, R::GraphUnavailable, R::AuthenticationFailed];
        assert_eq!(installation.map(I::as_str), PASSING_FAILURES);
        assert_eq!(rollout.map(R::as_str), PASSING_FAILURES);
    }
}
