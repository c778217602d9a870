//! The one place the kinds meet: the installation controller fills the cache the rollout
//! controller reads, and wakes a rollout when one of its installations changes. The kinds are
//! peers; neither imports the other.

use std::future::Future;

use futures::FutureExt;
use futures::channel::mpsc;
use kube::Client;
use kube::api::ListParams;
use kube::runtime::reflector;
use tracing::warn;

use crate::api::{TeamsAppInstallation, TeamsAppRollout};
use crate::graph::GraphClient;
use crate::installation::{self, ControllerSettings};
use crate::kit::watch;
use crate::rollout;
use crate::telemetry::Telemetry;

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
    graph: GraphClient,
    settings: ControllerSettings,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) -> Result<(), RunError> {
    preflight(&client, &settings).await?;
    let rollouts_api = watch::scoped::<TeamsAppRollout>(&client, settings.namespace.as_deref());
    let rollouts_served = watch::served(&rollouts_api).await.map_err(RunError::Kube)?;
    let (installations, cache) = reflector::store();
    let (wake_rollout, wakeups) = mpsc::unbounded();
    let metrics = &telemetry.metrics;
    telemetry.health.controller_started();
    let installation_wiring = installation::Wiring {
        metrics: metrics.controller(installation::CONTROLLER),
        states: metrics.installation_states.clone(),
        failing: metrics.failing.controller(installation::CONTROLLER),
        synced: {
            let health = telemetry.health.clone();
            Box::new(move || health.caches_synced())
        },
        cache,
        // Every change of an installation a rollout owns, status included, wakes that rollout.
        // The receiver is gone only when rollouts are not reconciled.
        on_change: Box::new(move |obj| {
            if let Some(owner) = rollout::owner_of(obj) {
                let _ = wake_rollout.unbounded_send(owner);
            }
        }),
    };
    // Without the rollout CRD (a chart upgraded from before rollouts: Helm never adds CRDs on
    // upgrade) installations are reconciled all the same.
    let rollouts = if rollouts_served {
        let wiring = rollout::Wiring {
            metrics: metrics.controller(rollout::CONTROLLER),
            states: metrics.rollout_states.clone(),
            failing: metrics.failing.controller(rollout::CONTROLLER),
            installations,
            wakeups,
            min_membership_interval: settings.min_membership_interval,
        };
        let namespace = settings.namespace.clone();
        let instance = settings.instance.clone();
        rollout::run(
            client.clone(),
            graph.clone(),
            namespace,
            instance,
            wiring,
            shutdown.clone(),
        )
        .boxed()
    } else {
        warn!(
            "the TeamsAppRollout CRD is not installed: rollouts are not reconciled (install it with `teams-app-operator crd | kubectl apply -f -`)"
        );
        futures::future::ready(()).boxed()
    };
    let installations = installation::run(client, graph, settings, installation_wiring, shutdown);
    // The installation controller ends when shutdown is asked for (after its in-flight
    // reconciles). The rollout controller gets a few seconds more to finish its own, and is then
    // dropped: a rollout pass stuck on the API server must not keep the process from exiting.
    let mut rollouts = rollouts.fuse();
    futures::pin_mut!(installations);
    futures::select! {
        () = installations.as_mut().fuse() => {
            let grace = tokio::time::timeout(ROLLOUT_SHUTDOWN_GRACE, &mut rollouts).await;
            if grace.is_err() {
                warn!("the rollout controller did not stop in time after shutdown; stopping it");
            }
        }
        () = rollouts => installations.await,
    }
    Ok(())
}

/// How long the rollout controller may take to stop once the installation controller has.
const ROLLOUT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

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
