//! The start of a reconcile, decided without I/O: [`Pass::new`] reads the resource — its last
//! status, what the spec asks for, whether someone asked for a fresh look. The shell then reads
//! Graph, decides and acts, and [`super::conclude`] ends the pass.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    ManagementPolicy, TeamsAppInstallation, TeamsAppInstallationStatus, parse_interval,
};
use crate::kit::conditions::{self, READY};
use crate::kit::watch::requested_at;
use crate::version::AppVersion;

use super::decision::{
    CatalogView, InstalledView, Observed, Wanted, decide, install_in_flight, upgrade_in_flight,
};
use super::schedule::{drift_delay, next_slot};
use super::verdict::Reason;

/// The operator's settings a pass reads: its timings, and the default management policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `managementPolicy` for resources whose spec sets none (`--default-management-policy`).
    pub default_policy: ManagementPolicy,
    /// Drift re-check period for resources without `spec.interval`.
    pub default_interval: Duration,
    /// Floor for any `spec.interval`.
    pub min_interval: Duration,
    /// Re-check period while an install or upgrade is being verified.
    pub verify_interval: Duration,
    /// How long after an install or upgrade call the operator only re-reads (Graph's reads lag
    /// its writes) before it asks again.
    pub write_window: Duration,
    /// How long a user the directory knows but Teams does not is waited for before the resource
    /// is Stalled (see [`super::provisioning`]).
    pub provisioning_timeout: Duration,
}

/// One reconcile of one resource, as the resource describes it.
#[derive(Debug, Clone)]
pub struct Pass {
    /// `spec.user`, for messages.
    pub user: String,
    pub previous: TeamsAppInstallationStatus,
    pub generation: Option<i64>,
    pub now: Time,
    pub timing: Timing,
    /// `spec.interval` (or the default), at least the floor; `Err`: the spec's is unreadable.
    pub interval: Result<Duration, String>,
    pub wanted: Wanted,
    /// `managementPolicy: Observe` (or the operator's default): read, never write.
    pub observe: bool,
    pub suspended: bool,
    /// Why the spec cannot be acted on (a value the CRD now refuses but an older object holds,
    /// or an app reference that names both or neither of id and externalId).
    pub spec_problem: Option<String>,
    /// A new `reconcile-requested-at` value: read everything afresh, and record it.
    pub requested_at: Option<String>,
}

impl Pass {
    pub fn new(obj: &TeamsAppInstallation, timing: Timing, now: Time) -> Self {
        let previous = obj.status.clone().unwrap_or_default();
        let requested_at = requested_at(obj)
            .filter(|value| previous.last_handled_reconcile_at.as_deref() != Some(*value))
            .map(str::to_string);
        let interval = match obj.spec.interval.as_deref() {
            Some(text) => parse_interval(text).map_err(|e| e.to_string()),
            None => Ok(timing.default_interval),
        }
        .map(|asked| asked.max(timing.min_interval));
        let app = &obj.spec.app;
        let spec_problem = match obj.spec.validate() {
            Err(invalid) => Some(invalid.message),
            Ok(()) => (app.id.is_some() == app.external_id.is_some())
                .then(|| "set exactly one of spec.app.id or spec.app.externalId".to_string()),
        };
        Self {
            user: obj.spec.user.clone(),
            previous,
            generation: obj.metadata.generation,
            now,
            timing,
            interval,
            wanted: Wanted {
                target_version: obj.spec.target_version.as_deref().map(AppVersion::parse),
                install_policy: obj.spec.install_policy,
                ensure: obj.spec.ensure,
                consent: obj.spec.consent.clone(),
            },
            observe: obj.spec.management_policy.unwrap_or(timing.default_policy)
                == ManagementPolicy::Observe,
            suspended: obj.spec.suspend,
            spec_problem,
            requested_at,
        }
    }

    /// Whether the spec cannot be acted on, and why.
    pub fn invalid_spec(&self) -> Option<String> {
        match (&self.interval, &self.spec_problem) {
            (Err(message), _) | (Ok(_), Some(message)) => Some(message.clone()),
            (Ok(_), None) => None,
        }
    }

    /// Someone asked for a re-check now: caches must not answer.
    pub fn refresh(&self) -> bool {
        self.requested_at.is_some()
    }

    /// What the decision sees, given what Graph showed and the writes the last status records.
    pub fn observed(&self, catalog: CatalogView, installation: Option<InstalledView>) -> Observed {
        observed_with(
            &self.previous,
            self.previous.latest_version.as_deref(),
            catalog,
            installation,
            self,
        )
    }

    /// Whether an installation read right after an upgrade call already shows the upgrade done.
    pub fn upgrade_visible(&self, catalog: &CatalogView, installation: &InstalledView) -> bool {
        let observed = Observed {
            catalog: catalog.clone(),
            installation: Some(installation.clone()),
            upgrade_in_flight: true,
            install_in_flight: false,
            uninstall_refused: None,
        };
        decide(&self.wanted, &observed).verdict.reason != Reason::Upgrading
    }

    pub(super) fn age_of(&self, time: Option<&Time>) -> Option<Duration> {
        let then = time?.0;
        Duration::try_from(self.now.0.duration_since(then)).ok()
    }

    /// `spec.interval` (or the default), at least the floor.
    /// Change notifications cover the resource: the drift check backs them up only every
    /// `resync`, when that is longer than its interval (an unreadable interval stays as it is).
    pub fn relax_interval(&mut self, resync: Duration) {
        if let Ok(interval) = &mut self.interval {
            *interval = (*interval).max(resync);
        }
    }

    pub(super) fn interval(&self) -> Duration {
        self.interval
            .clone()
            .unwrap_or(self.timing.default_interval)
    }

    /// The next drift check: on the user's next slot of the interval.
    pub(super) fn requeue_interval(&self) -> Duration {
        drift_delay(&self.user, self.interval(), &self.now)
    }

    /// The next look at a resource that is not Ready and waits on someone else (the catalog, a
    /// Teams admin, a person): the user's next slot, at most one interval away, so that it
    /// recovers within one interval of the cause going away.
    pub(super) fn requeue_waiting(&self) -> Duration {
        next_slot(&self.user, self.interval(), &self.now)
    }

    /// Graph refused to uninstall because a setup policy installed the app, at the last check
    /// of this generation (its message): not asked again until the spec changes or someone
    /// asks for a fresh look.
    pub(super) fn uninstall_refused(&self) -> Option<String> {
        if self.refresh() || self.previous.observed_generation != self.generation {
            return None;
        }
        conditions::find(&self.previous.conditions, READY)
            .filter(|c| c.reason == Reason::ManagedByPolicy.as_str())
            .map(|c| c.message.clone())
    }

    /// Ready=True for the current generation at the last check.
    pub(super) fn was_ready(&self) -> bool {
        self.previous.observed_generation == self.generation
            && conditions::is_true(&self.previous.conditions, READY)
    }
}

pub(super) fn observed_with(
    status: &TeamsAppInstallationStatus,
    upgrade_aimed_at: Option<&str>,
    catalog: CatalogView,
    installation: Option<InstalledView>,
    pass: &Pass,
) -> Observed {
    let window = pass.timing.write_window;
    let aimed_at = upgrade_aimed_at.map(AppVersion::parse);
    Observed {
        upgrade_in_flight: upgrade_in_flight(
            pass.age_of(status.last_upgrade_time.as_ref()),
            aimed_at.as_ref(),
            catalog.latest_published.as_ref(),
            window,
        ),
        // Once a status has recorded the installation Graph showed, its absence is a change
        // made elsewhere (the user removed it), not Graph's list lagging the install.
        install_in_flight: status.installation_id.is_none()
            && install_in_flight(pass.age_of(status.last_install_time.as_ref()), window),
        uninstall_refused: pass.uninstall_refused(),
        catalog,
        installation,
    }
}
