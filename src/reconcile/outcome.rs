//! The two ends of a reconcile, decided without I/O.
//!
//! [`Pass::new`] reads the resource: its last status, what the spec asks for, whether someone
//! asked for a fresh look. The controller then reads Graph, decides and acts, and records what it
//! found and did in [`Findings`]. [`conclude`] turns that into the [`Outcome`]: the status to write
//! (only when it changed), the Events to publish, and when to look again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{TeamsAppInstallation, TeamsAppInstallationStatus, parse_interval};
use crate::version::AppVersion;

use super::conditions::{self, READY};
use super::decision::{
    Action, CatalogView, InstalledView, Observed, Wanted, announce_install, decide,
    install_in_flight, upgrade_in_flight,
};
use super::failure::{Failure, GraphStep, verdict_for_failure};
use super::schedule::drift_delay;
use super::verdict::{Reason, Verdict};

/// The annotation `kubectl annotate … teamsapps.dev/reconcile-requested-at=…` sets to ask for a
/// re-check now, with fresh data.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "teamsapps.dev/reconcile-requested-at";

/// The operator's timing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Drift re-check period for resources without `spec.interval`.
    pub default_interval: Duration,
    /// Floor for any `spec.interval`.
    pub min_interval: Duration,
    /// Re-check period while an install or upgrade is being verified.
    pub verify_interval: Duration,
    /// How long after an install or upgrade call the operator only re-reads (Graph's reads lag
    /// its writes) before it asks again.
    pub write_window: Duration,
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
        let requested_at = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RECONCILE_REQUESTED_ANNOTATION))
            .filter(|value| previous.last_handled_reconcile_at.as_ref() != Some(*value))
            .cloned();
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
            },
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
        };
        decide(&self.wanted, &observed).verdict.reason != Reason::Upgrading
    }

    fn age_of(&self, time: Option<&Time>) -> Option<Duration> {
        let then = time?.0;
        Duration::try_from(self.now.0.duration_since(then)).ok()
    }

    /// The next drift check: on the user's next slot of the interval.
    fn requeue_interval(&self) -> Duration {
        let interval = self
            .interval
            .clone()
            .unwrap_or(self.timing.default_interval);
        drift_delay(&self.user, interval, &self.now)
    }

    /// Ready=True for the current generation at the last check.
    fn was_ready(&self) -> bool {
        self.previous.observed_generation == self.generation
            && conditions::is_true(&self.previous.conditions, READY)
    }
}

fn observed_with(
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
        install_in_flight: install_in_flight(
            pass.age_of(status.last_install_time.as_ref()),
            window,
        ),
        catalog,
        installation,
    }
}

/// What one reconcile found in Graph and did there.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub catalog: Option<CatalogView>,
    /// The catalog has no such app: the message says which.
    pub app_missing: Option<String>,
    /// The first read of the user's installation (`Some(None)`: not installed).
    pub before: Option<Option<InstalledView>>,
    /// The write Graph accepted (for an upgrade: or refused as one already done).
    pub wrote: Option<Action>,
    /// The last read after the write.
    pub after: Option<Option<InstalledView>>,
    /// The Graph call that failed, which ended the reconcile.
    pub failure: Option<(GraphStep, Failure)>,
}

/// An Event to publish on the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub warning: bool,
    pub reason: String,
    /// What the operator was doing (`action` of events.k8s.io).
    pub action: &'static str,
    pub note: String,
}

impl Announcement {
    fn normal(reason: &str, action: &'static str, note: String) -> Self {
        Self {
            warning: false,
            reason: reason.to_string(),
            action,
            note,
        }
    }

    fn warning(verdict: &Verdict) -> Self {
        Self {
            warning: true,
            reason: verdict.reason.to_string(),
            action: "Reconcile",
            note: verdict.message.clone(),
        }
    }
}

/// How a reconcile ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The status to write; `None` when it did not change (or must not be written).
    pub status: Option<TeamsAppInstallationStatus>,
    pub events: Vec<Announcement>,
    /// When to look again: soon while a write is being verified, else on the user's next slot
    /// in the interval (see [`super::schedule`]).
    pub requeue: Duration,
    /// A transient failure: the controller retries with backoff (or Graph's Retry-After)
    /// instead of `requeue`.
    pub retry: bool,
}

/// Concludes a reconcile. See the module docs and design.md's condition table.
pub fn conclude(pass: &Pass, findings: Findings) -> Outcome {
    if let Some(message) = pass.invalid_spec() {
        let verdict = Verdict::stalled(Reason::InvalidSpec, message);
        return settle(pass, pass.previous.clone(), verdict, Vec::new());
    }
    if pass.suspended {
        return suspended(pass);
    }
    let status = record(pass, &findings);
    if let Some((step, failure)) = &findings.failure {
        return failed(pass, status, *step, failure);
    }
    if let Some(message) = findings.app_missing.clone() {
        return settle(
            pass,
            status,
            Verdict::stalled(Reason::AppNotFound, message),
            Vec::new(),
        );
    }
    let Some(catalog) = findings.catalog.clone() else {
        // Nothing was read: only possible if the controller skipped Graph; stay as we were.
        return unchanged(pass);
    };
    let aimed_at = match findings.wrote {
        Some(Action::Upgrade { .. }) => status.latest_version.clone(),
        _ => pass.previous.latest_version.clone(),
    };
    let latest = findings.after.clone().or(findings.before.clone()).flatten();
    let observed = observed_with(&status, aimed_at.as_deref(), catalog, latest, pass);
    let verdict = decide(&pass.wanted, &observed).verdict;
    let events = announcements(pass, &findings, &status);
    settle(pass, status, verdict, events)
}

/// The previous status, updated with what this reconcile learned and did.
fn record(pass: &Pass, findings: &Findings) -> TeamsAppInstallationStatus {
    let mut status = pass.previous.clone();
    if let Some(requested) = &pass.requested_at {
        status.last_handled_reconcile_at = Some(requested.clone());
    }
    if let Some(catalog) = &findings.catalog {
        status.catalog_app_id = Some(catalog.app_id.clone());
        if catalog.display_name.is_some() {
            status.app_display_name = catalog.display_name.clone();
        }
        status.latest_version = catalog.latest_published.as_ref().map(ToString::to_string);
    }
    if let Some(seen) = findings.after.as_ref().or(findings.before.as_ref()) {
        status.installation_id = seen.as_ref().map(|i| i.id.clone());
        status.installed_version = seen
            .as_ref()
            .and_then(|i| i.version.as_ref().map(ToString::to_string));
        if let Some(name) = seen.as_ref().and_then(|i| i.app_display_name.clone()) {
            status.app_display_name = Some(name);
        }
    }
    match findings.wrote {
        Some(Action::Install { .. }) => status.last_install_time = Some(pass.now.clone()),
        Some(Action::Upgrade { .. }) => status.last_upgrade_time = Some(pass.now.clone()),
        Some(Action::Nothing) | None => {}
    }
    status
}

/// A Graph call failed. Stalled failures settle; transient ones retry with backoff and say so in
/// the status — except during a routine check of a resource that was up to date, where nothing
/// is known to be wrong with the install: that only raises a Warning Event.
fn failed(
    pass: &Pass,
    status: TeamsAppInstallationStatus,
    step: GraphStep,
    failure: &Failure,
) -> Outcome {
    let verdict = verdict_for_failure(step, failure);
    if verdict.is_stalled() {
        return settle(pass, status, verdict, Vec::new());
    }
    let events = vec![Announcement::warning(&verdict)];
    let mut outcome = if step.is_routine_read() && pass.was_ready() {
        Outcome {
            events,
            ..unchanged(pass)
        }
    } else {
        settle(pass, status, verdict, events)
    };
    outcome.retry = true;
    outcome
}

/// `suspend: true`: no Graph calls. The status records that the spec was seen; conditions stay
/// as they were (a first status still gets its `Ready` condition).
fn suspended(pass: &Pass) -> Outcome {
    let mut status = pass.previous.clone();
    status.observed_generation = pass.generation;
    if status.conditions.is_empty() {
        let verdict = Verdict::idle(
            Reason::Suspended,
            "suspended: no Graph calls are made".to_string(),
        );
        status.conditions = conditions::render(&verdict, pass.generation, &[], &pass.now);
    }
    let changed = !conditions::same_status(&pass.previous, &status);
    let events = changed
        .then(|| {
            Announcement::normal(
                "Suspended",
                "Reconcile",
                "suspended: no Graph calls are made until spec.suspend is false".to_string(),
            )
        })
        .into_iter()
        .collect();
    Outcome {
        status: changed.then_some(status),
        events,
        requeue: pass.requeue_interval(),
        retry: false,
    }
}

/// Renders `verdict` into `status`; a newly stalled resource also gets a Warning Event.
fn settle(
    pass: &Pass,
    mut status: TeamsAppInstallationStatus,
    verdict: Verdict,
    mut events: Vec<Announcement>,
) -> Outcome {
    status.observed_generation = pass.generation;
    status.conditions = conditions::render(
        &verdict,
        pass.generation,
        &pass.previous.conditions,
        &pass.now,
    );
    let changed = !conditions::same_status(&pass.previous, &status);
    if changed && verdict.is_stalled() {
        events.push(Announcement::warning(&verdict));
    }
    let requeue = match verdict.reason {
        Reason::Installing | Reason::Upgrading => pass.timing.verify_interval,
        _ => pass.requeue_interval(),
    };
    Outcome {
        status: changed.then_some(status),
        events,
        requeue,
        retry: false,
    }
}

fn unchanged(pass: &Pass) -> Outcome {
    Outcome {
        status: None,
        events: Vec::new(),
        requeue: pass.requeue_interval(),
        retry: false,
    }
}

/// `Installed` once Graph shows an install the operator asked for; `Upgraded` when the installed
/// version moved forward, whether this reconcile saw it right after its call (then "before" is
/// what Graph showed before the call) or a later one verified it (then it is what the last status
/// recorded).
fn announcements(
    pass: &Pass,
    findings: &Findings,
    status: &TeamsAppInstallationStatus,
) -> Vec<Announcement> {
    let mut events = Vec::new();
    let app = status
        .app_display_name
        .clone()
        .or_else(|| status.catalog_app_id.clone())
        .unwrap_or_else(|| "the app".to_string());
    let seen_before = findings.before.clone().flatten();
    let visible_before = pass.previous.installation_id.is_some() && seen_before.is_some();
    let requested_recently = install_in_flight(
        pass.age_of(status.last_install_time.as_ref()),
        pass.timing.write_window,
    );
    if announce_install(
        visible_before,
        status.installation_id.is_some(),
        requested_recently,
    ) {
        let version = status.installed_version.clone().unwrap_or_default();
        events.push(Announcement::normal(
            "Installed",
            "Install",
            format!("installed {app} {version} for {}", pass.user),
        ));
    }
    let before = [
        pass.previous.installed_version.clone(),
        seen_before.and_then(|i| i.version.map(|v| v.to_string())),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|v| AppVersion::parse(v));
    if let (Some(before), Some(after)) = (&before, &status.installed_version)
        && AppVersion::parse(after) > AppVersion::parse(before)
    {
        events.push(Announcement::normal(
            "Upgraded",
            "Upgrade",
            format!("upgraded {app} from {before} to {after}"),
        ));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{FailureClass, conditions::STALLED};

    const MINUTE: Duration = Duration::from_secs(60);

    fn timing() -> Timing {
        Timing {
            default_interval: 30 * MINUTE,
            min_interval: MINUTE,
            verify_interval: Duration::from_secs(10),
            write_window: 10 * MINUTE,
        }
    }

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + seconds).expect("valid time"))
    }

    fn resource(spec: serde_json::Value) -> TeamsAppInstallation {
        let mut obj =
            TeamsAppInstallation::new("bot-bob", serde_json::from_value(spec).expect("valid spec"));
        obj.metadata.generation = Some(1);
        obj
    }

    fn bob() -> TeamsAppInstallation {
        resource(serde_json::json!({"user": "bob@contoso.com", "app": {"id": "app-1"}}))
    }

    fn catalog() -> CatalogView {
        CatalogView {
            app_id: "app-1".into(),
            display_name: Some("Contoso Bot".into()),
            latest_published: Some(AppVersion::parse("1.0.0")),
        }
    }

    fn installed(version: &str) -> InstalledView {
        InstalledView {
            id: "inst-1".into(),
            version: Some(AppVersion::parse(version)),
            app_display_name: None,
        }
    }

    fn reasons(outcome: &Outcome) -> Vec<&str> {
        outcome.events.iter().map(|e| e.reason.as_str()).collect()
    }

    fn ready_reason(status: &TeamsAppInstallationStatus) -> &str {
        conditions::find(&status.conditions, READY).map_or("", |c| c.reason.as_str())
    }

    /// Applies an outcome's status the way the API server would.
    fn after(mut obj: TeamsAppInstallation, outcome: &Outcome) -> TeamsAppInstallation {
        if let Some(status) = &outcome.status {
            obj.status = Some(status.clone());
        }
        obj
    }

    #[test]
    fn an_install_graph_does_not_show_yet_is_announced_once_when_it_shows() {
        // The install call succeeded; the re-read does not show it yet (Graph's reads lag).
        let pass = Pass::new(&bob(), timing(), at(0));
        let outcome = conclude(
            &pass,
            Findings {
                catalog: Some(catalog()),
                before: Some(None),
                wrote: Some(Action::Install {
                    catalog_app_id: "app-1".into(),
                }),
                after: Some(None),
                ..Default::default()
            },
        );
        let status = outcome.status.clone().expect("first status");
        assert_eq!(ready_reason(&status), "Installing");
        assert_eq!(status.last_install_time, Some(at(0)));
        assert!(outcome.events.is_empty(), "nothing to announce yet");
        assert_eq!(outcome.requeue, timing().verify_interval);

        // Next reconcile, still lagging: the decision must not install again.
        let obj = after(bob(), &outcome);
        let pass = Pass::new(&obj, timing(), at(5));
        let observed = pass.observed(catalog(), None);
        assert!(observed.install_in_flight);
        assert_eq!(decide(&pass.wanted, &observed).action, Action::Nothing);
        let waiting = conclude(
            &pass,
            Findings {
                catalog: Some(catalog()),
                before: Some(None),
                ..Default::default()
            },
        );
        assert_eq!(waiting.status, None, "nothing changed: nothing written");
        assert!(waiting.events.is_empty());

        // Graph shows it: Ready, announced once.
        let shown = conclude(
            &pass,
            Findings {
                catalog: Some(catalog()),
                before: Some(Some(installed("1.0.0"))),
                ..Default::default()
            },
        );
        assert_eq!(reasons(&shown), vec!["Installed"]);
        let obj = after(obj, &shown);
        assert_eq!(
            ready_reason(obj.status.as_ref().expect("status")),
            "UpToDate"
        );
        let again = conclude(
            &Pass::new(&obj, timing(), at(60)),
            Findings {
                catalog: Some(catalog()),
                before: Some(Some(installed("1.0.0"))),
                ..Default::default()
            },
        );
        assert!(again.events.is_empty() && again.status.is_none());
    }

    #[test]
    fn a_routine_check_that_fails_keeps_ready_and_writes_nothing() {
        let first = conclude(
            &Pass::new(&bob(), timing(), at(0)),
            Findings {
                catalog: Some(catalog()),
                before: Some(Some(installed("1.0.0"))),
                ..Default::default()
            },
        );
        let obj = after(bob(), &first);
        let outage = Failure {
            class: FailureClass::Unavailable,
            message: "HTTP 503".into(),
        };
        let outcome = conclude(
            &Pass::new(&obj, timing(), at(60)),
            Findings {
                failure: Some((GraphStep::ListInstallations, outage.clone())),
                catalog: Some(catalog()),
                ..Default::default()
            },
        );
        assert_eq!(outcome.status, None);
        assert!(outcome.retry);
        assert_eq!(reasons(&outcome), vec!["GraphUnavailable"]);

        // The same outage while an install is pending is written down.
        let outcome = conclude(
            &Pass::new(&bob(), timing(), at(0)),
            Findings {
                failure: Some((GraphStep::Install, outage)),
                catalog: Some(catalog()),
                before: Some(None),
                ..Default::default()
            },
        );
        assert_eq!(
            ready_reason(outcome.status.as_ref().expect("status")),
            "GraphUnavailable"
        );
        assert!(outcome.retry);
    }

    #[test]
    fn a_stall_warns_once() {
        let licence = Failure {
            class: FailureClass::NotLicensed,
            message: "no licence".into(),
        };
        let findings = Findings {
            failure: Some((GraphStep::ListInstallations, licence)),
            catalog: Some(catalog()),
            ..Default::default()
        };
        let first = conclude(&Pass::new(&bob(), timing(), at(0)), findings.clone());
        assert_eq!(reasons(&first), vec!["UserNotLicensed"]);
        assert!(!first.retry, "a person has to act: no backoff loop");
        let status = first.status.clone().expect("status");
        assert!(conditions::is_true(&status.conditions, STALLED));
        let second = conclude(
            &Pass::new(&after(bob(), &first), timing(), at(60)),
            findings,
        );
        assert!(second.events.is_empty() && second.status.is_none());
    }

    #[test]
    fn invalid_specs_and_suspension_make_no_graph_decisions() {
        let bad = resource(serde_json::json!({
            "user": "bob@contoso.com", "app": {"id": "a", "externalId": "b"}}));
        let pass = Pass::new(&bad, timing(), at(0));
        assert!(pass.invalid_spec().is_some());
        let outcome = conclude(&pass, Findings::default());
        assert_eq!(
            ready_reason(outcome.status.as_ref().expect("status")),
            "InvalidSpec"
        );
        assert_eq!(reasons(&outcome), vec!["InvalidSpec"]);

        // An object stored before the CRD refused such values is stalled, never sent to Graph.
        let old = resource(serde_json::json!({
            "user": "bob@contoso.com", "app": {"id": "a"}, "targetVersion": "latest"}));
        let outcome = conclude(&Pass::new(&old, timing(), at(0)), Findings::default());
        let status = outcome.status.expect("status");
        assert_eq!(ready_reason(&status), "InvalidSpec");
        assert!(
            conditions::find(&status.conditions, READY)
                .is_some_and(|c| c.message.contains("targetVersion")),
            "{status:?}"
        );

        let paused = resource(serde_json::json!({
            "user": "bob@contoso.com", "app": {"id": "a"}, "suspend": true}));
        let outcome = conclude(&Pass::new(&paused, timing(), at(0)), Findings::default());
        assert_eq!(
            ready_reason(outcome.status.as_ref().expect("status")),
            "Suspended"
        );
        assert_eq!(reasons(&outcome), vec!["Suspended"]);
    }

    #[test]
    fn a_reconcile_request_is_recorded_once() {
        let mut obj = bob();
        obj.metadata.annotations =
            Some([(RECONCILE_REQUESTED_ANNOTATION.to_string(), "42".to_string())].into());
        let pass = Pass::new(&obj, timing(), at(0));
        assert!(pass.refresh());
        let outcome = conclude(
            &pass,
            Findings {
                catalog: Some(catalog()),
                before: Some(Some(installed("1.0.0"))),
                ..Default::default()
            },
        );
        let obj = after(obj, &outcome);
        assert_eq!(
            obj.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref()),
            Some("42")
        );
        assert!(!Pass::new(&obj, timing(), at(1)).refresh(), "handled");
    }

    #[test]
    fn an_upgrade_seen_later_is_announced_from_the_recorded_version() {
        let first = conclude(
            &Pass::new(&bob(), timing(), at(0)),
            Findings {
                catalog: Some(CatalogView {
                    latest_published: Some(AppVersion::parse("1.1.0")),
                    ..catalog()
                }),
                before: Some(Some(installed("1.0.0"))),
                wrote: Some(Action::Upgrade {
                    installation_id: "inst-1".into(),
                }),
                after: Some(Some(installed("1.0.0"))),
                ..Default::default()
            },
        );
        assert!(first.events.is_empty());
        let obj = after(bob(), &first);
        assert_eq!(
            ready_reason(obj.status.as_ref().expect("status")),
            "Upgrading"
        );
        let pass = Pass::new(&obj, timing(), at(5));
        let newer = CatalogView {
            latest_published: Some(AppVersion::parse("1.1.0")),
            ..catalog()
        };
        assert!(
            pass.observed(newer.clone(), Some(installed("1.0.0")))
                .upgrade_in_flight
        );
        let seen = conclude(
            &pass,
            Findings {
                catalog: Some(newer),
                before: Some(Some(installed("1.1.0"))),
                ..Default::default()
            },
        );
        assert_eq!(reasons(&seen), vec!["Upgraded"]);
    }
}
