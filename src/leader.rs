//! Leader election on a `coordination.k8s.io` Lease, so several replicas can run while exactly
//! one reconciles: two writers would both call Graph (duplicate upgrades) and fight over status.
//!
//! kube has no leader election of its own; `kube-lease-manager` holds and renews the Lease. This
//! module runs the controller only while this process holds it, and stops the controller at once
//! — in-flight reconciles are dropped, not finished — when the Lease is lost, then stands by
//! again. On shutdown the Lease is released so a standby takes over without waiting for expiry.
//!
//! The Lease manager only learns it lost the Lease when it can read the Lease again, so a
//! leader cut off from the API server would go on reconciling from its cache — calling Graph —
//! while a standby takes over. A watchdog therefore reads the Lease itself and steps down when
//! it cannot confirm, shortly before the Lease would expire, that this replica still holds it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

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

/// The shortest Lease the election works with: the holder renews a third of the duration (at
/// least 2 s) before expiry.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(3);

/// Refuses a Lease duration shorter than [`MIN_LEASE_DURATION`] (the one check, used by the
/// command line and by [`run_while_leader`]).
pub fn check_lease_duration(duration: Duration) -> Result<(), LeaderError> {
    if duration < MIN_LEASE_DURATION {
        return Err(LeaderError::Duration(duration));
    }
    Ok(())
}

impl LeaseSettings {
    /// The holder renews this long before the Lease would expire (a third of its duration, at
    /// least 2s): room for a slow API server and clock skew between nodes.
    fn grace(&self) -> Duration {
        (self.duration / 3).max(Duration::from_secs(2))
    }

    /// How far before the Lease's expiry a leader that cannot confirm its hold steps down:
    /// half the grace period, room for clock skew and late timers, so it has stopped before any
    /// standby may take over.
    fn step_down_margin(&self) -> Duration {
        self.grace() / 2
    }

    /// How often the watchdog re-reads the Lease: a renewal (one grace period before expiry)
    /// is then seen twice before the step-down deadline.
    fn watchdog_period(&self) -> Duration {
        self.grace() / 4
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease duration must be at least 3s, got {0:?}")]
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
    check_lease_duration(lease.duration)?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &lease.namespace);
    let (mut is_leader, election) = join_election(client, &lease).await?;
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
        // The manager's view may be stale: reconcile only once a read of our own confirms it.
        let held_until = tokio::select! {
            _ = shutdown.clone() => break Ok(Ok(())),
            lost = wait_for(&mut is_leader, false) => if lost.is_err() {
                break Err(LeaderError::ElectionStopped);
            } else {
                continue;
            },
            until = confirm_held(&leases, &lease) => until,
        };
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
            () = watch_held(&leases, &lease, held_until) => {
                metrics.set_leader(&lease.name, false);
                health.standby();
                warn!(lease = %lease.name, identity = %lease.identity,
                    "cannot confirm holding the leader Lease before it expires: stopped reconciling, standing by");
            }
        }
    };

    leave_election(is_leader, election, &lease, &metrics).await;
    outcome
}

/// The Lease manager's task: it holds and renews the Lease while the receiver of
/// [`join_election`] lives, and hands the manager back once it has released the Lease.
type Election = JoinHandle<kube_lease_manager::Result<LeaseManager>>;

/// Builds the Lease manager and starts its task; the receiver tells whether this replica holds
/// the Lease (as far as the manager knows).
async fn join_election(
    client: Client,
    lease: &LeaseSettings,
) -> Result<(watch::Receiver<bool>, Election), LeaderError> {
    let lease_error = |source| LeaderError::Lease {
        name: lease.name.clone(),
        namespace: lease.namespace.clone(),
        source,
    };
    let manager = LeaseManagerBuilder::new(client, &lease.name)
        .with_namespace(&lease.namespace)
        .with_identity(&lease.identity)
        .with_duration(lease.duration.as_secs())
        .with_grace(lease.grace().as_secs())
        .with_field_manager(format!("teams-app-operator-{}", lease.identity))
        .build()
        .await
        .map_err(lease_error)?;
    Ok(manager.watch().await)
}

/// Leaves the election, releasing the Lease if held, so a standby takes over without waiting
/// for it to expire; gives up waiting after a few seconds (the Lease then expires by itself).
async fn leave_election(
    is_leader: watch::Receiver<bool>,
    election: Election,
    lease: &LeaseSettings,
    metrics: &Metrics,
) {
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
}

/// What a read of the Lease says about this replica's hold on it.
enum Hold {
    /// Surely ours until then (local clock, the step-down margin already taken off).
    Until(Instant),
    /// Another replica holds it, or our hold has (nearly) expired.
    NotOurs,
    /// The read failed: no news either way.
    Unknown,
}

async fn read_hold(leases: &Api<Lease>, lease: &LeaseSettings) -> Hold {
    let read = tokio::time::timeout(lease.watchdog_period(), leases.get(&lease.name));
    let spec = match read.await {
        Ok(Ok(found)) => found.spec.unwrap_or_default(),
        Ok(Err(e)) => {
            // Debug only: during an API outage this repeats until the hold runs out, which
            // is logged as a warning.
            debug!(error = %e, lease = %lease.name, "reading the leader Lease failed");
            return Hold::Unknown;
        }
        Err(_) => {
            debug!(lease = %lease.name, "reading the leader Lease timed out");
            return Hold::Unknown;
        }
    };
    if spec.holder_identity.as_deref() != Some(lease.identity.as_str()) {
        return Hold::NotOurs;
    }
    let left = (|| {
        let renewed = spec.renew_time?.0;
        let valid = Duration::from_secs(u64::try_from(spec.lease_duration_seconds?).ok()?);
        let age = jiff::Timestamp::now().duration_since(renewed);
        let age = Duration::try_from(age).unwrap_or_default();
        valid
            .checked_sub(age)?
            .checked_sub(lease.step_down_margin())
    })();
    match left {
        Some(left) => Hold::Until(Instant::now() + left),
        None => Hold::NotOurs,
    }
}

/// Waits until a read confirms this replica holds the Lease; returns until when.
async fn confirm_held(leases: &Api<Lease>, lease: &LeaseSettings) -> Instant {
    loop {
        if let Hold::Until(until) = read_hold(leases, lease).await {
            return until;
        }
        tokio::time::sleep(lease.watchdog_period()).await;
    }
}

/// Re-reads the Lease a few times per duration and resolves once the hold can no longer be
/// confirmed: at once when a read shows it is not ours, at the deadline when reads fail.
async fn watch_held(leases: &Api<Lease>, lease: &LeaseSettings, mut deadline: Instant) {
    loop {
        let reread = async {
            tokio::time::sleep(lease.watchdog_period()).await;
            read_hold(leases, lease).await
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            hold = reread => match hold {
                Hold::Until(until) => deadline = until,
                Hold::NotOurs => return,
                Hold::Unknown => {}
            },
        }
    }
}

async fn wait_for(
    state: &mut watch::Receiver<bool>,
    wanted: bool,
) -> Result<(), watch::error::RecvError> {
    state.wait_for(|&leader| leader == wanted).await.map(drop)
}
