//! Leader election on a `coordination.k8s.io` Lease, so several replicas can run while exactly
//! one reconciles: two writers would both call Graph (duplicate upgrades) and fight over status.
//!
//! kube has no leader election of its own; `kube-lease-manager` holds and renews the Lease. This
//! module runs the controller only while this process holds it, and stops the controller at once
//! — in-flight reconciles are dropped, not finished — when the Lease is lost, then stands by
//! again. On shutdown the Lease is released so a standby takes over without waiting for expiry.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::telemetry::{Health, Metrics};

/// Where and how to hold the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's holder identity (the pod name, in a cluster): unique among replicas.
    pub identity: String,
    /// How long the Lease stays valid after its last renewal; a standby takes over this long
    /// after a leader died without releasing it.
    pub duration: Duration,
}

impl LeaseSettings {
    /// The holder renews this long before the Lease would expire (a third of its duration, at
    /// least a second): room for a slow API server and clock skew between nodes.
    fn grace_seconds(&self) -> u64 {
        (self.duration.as_secs() / 3).max(1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease duration must be at least 2s, got {0:?}")]
    Duration(Duration),
    #[error("cannot use Lease {namespace}/{name}: {source}")]
    Lease {
        name: String,
        namespace: String,
        source: LeaseManagerError,
    },
    #[error("the leader election task stopped unexpectedly")]
    ElectionStopped,
}

/// Runs `run_controller` whenever this process holds the Lease, until `shutdown` resolves or
/// the controller returns (its error, if any, is handed back).
///
/// `run_controller` gets the shutdown future to pass on to the controller, and is called again
/// each time leadership is won back after a loss.
pub async fn run_while_leader<S, R, F, E>(
    client: Client,
    lease: LeaseSettings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: S,
    mut run_controller: R,
) -> Result<Result<(), E>, LeaderError>
where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
    R: FnMut(S) -> F,
    F: Future<Output = Result<(), E>>,
{
    if lease.duration < Duration::from_secs(2) {
        return Err(LeaderError::Duration(lease.duration));
    }
    let lease_error = |source| LeaderError::Lease {
        name: lease.name.clone(),
        namespace: lease.namespace.clone(),
        source,
    };
    let manager = LeaseManagerBuilder::new(client, &lease.name)
        .with_namespace(&lease.namespace)
        .with_identity(&lease.identity)
        .with_duration(lease.duration.as_secs())
        .with_grace(lease.grace_seconds())
        .with_field_manager(format!("teams-app-operator-{}", lease.identity))
        .build()
        .await
        .map_err(lease_error)?;
    let (mut is_leader, election) = manager.watch().await;
    info!(lease = %lease.name, namespace = %lease.namespace, identity = %lease.identity,
        "joined leader election; standing by until this replica holds the Lease");
    health.standby();
    metrics.set_leader(&lease.name, false);

    let outcome = loop {
        tokio::select! {
            _ = shutdown.clone() => break Ok(Ok(())),
            won = wait_for(&mut is_leader, true) => if won.is_err() {
                break Err(LeaderError::ElectionStopped);
            },
        }
        info!(lease = %lease.name, identity = %lease.identity, "became the leader: reconciling");
        metrics.set_leader(&lease.name, true);
        tokio::select! {
            result = run_controller(shutdown.clone()) => break Ok(result),
            lost = wait_for(&mut is_leader, false) => {
                metrics.set_leader(&lease.name, false);
                health.standby();
                if lost.is_err() {
                    break Err(LeaderError::ElectionStopped);
                }
                warn!(lease = %lease.name, identity = %lease.identity,
                    "lost the leader Lease: stopped reconciling, standing by");
            }
        }
    };

    // Closing the channel makes the election task release the Lease (if held) and end.
    drop(is_leader);
    metrics.set_leader(&lease.name, false);
    match tokio::time::timeout(Duration::from_secs(5), election).await {
        Ok(Ok(Ok(_))) => info!(lease = %lease.name, "released the leader Lease"),
        Ok(Ok(Err(e))) => {
            warn!(error = %e, "releasing the leader Lease failed; it expires by itself")
        }
        Ok(Err(e)) => warn!(error = %e, "the leader election task failed"),
        Err(_) => warn!("releasing the leader Lease timed out; it expires by itself"),
    }
    outcome
}

async fn wait_for(
    state: &mut watch::Receiver<bool>,
    wanted: bool,
) -> Result<(), watch::error::RecvError> {
    state.wait_for(|&leader| leader == wanted).await.map(drop)
}
