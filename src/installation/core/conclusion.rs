//! The end of a reconcile, decided without I/O: what the shell found in Graph and did there
//! ([`Findings`]) → the [`Outcome`]: the status to write (only when it changed), the Events to
//! publish, and when to look again.

use std::time::Duration;

use crate::api::TeamsAppInstallationStatus;
use crate::kit::Announcement;
use crate::kit::conditions::same_status;
use crate::tenancy::Refused;
use crate::version::AppVersion;

use super::decision::{
    Action, CatalogView, InstalledView, announce_install, decide, install_in_flight,
};
use super::failure::{
    ErrorClass, Failure, GraphStep, verdict_for_failure, verdict_for_refused_consent,
};
use super::pass::{Pass, observed_with};
use super::plan;
use super::provisioning;
use super::verdict::{Reason, Verdict};

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
    /// Another resource owns this user's installation of the app (`namespace/name`): this one
    /// only read.
    pub owner: Option<String>,
    /// The connection the resource names cannot be used (nothing was asked of Graph).
    pub connection: Option<Refused>,
    /// The tenant the Graph calls went to (`status.tenantId`).
    pub tenant: Option<String>,
    /// After Teams answered 404 for the user: whether the directory knows them (`None`: not
    /// asked, or the directory could not say).
    pub user_in_directory: Option<bool>,
    /// The failed write consented RSC permissions.
    pub consented: bool,
    /// After Graph refused a write that consented (403): whether the tenant turned RSC in
    /// personal scope off (`None`: not asked, or the settings could not be read).
    pub consent_disabled: Option<bool>,
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
    if let Some(refused) = &findings.connection {
        return settle(pass, pass.previous.clone(), unusable(refused), Vec::new());
    }
    let mut status = record(pass, &findings);
    if let Some((step, failure)) = &findings.failure {
        if failure.class == ErrorClass::NotFound
            && step.is_about_the_user()
            && findings.user_in_directory == Some(true)
        {
            return not_provisioned(pass, status, failure);
        }
        if findings.consented && failure.class == ErrorClass::Forbidden {
            let verdict = verdict_for_refused_consent(*step, failure, findings.consent_disabled);
            return settle(pass, status, verdict, Vec::new());
        }
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
    let decision = decide(&pass.wanted, &observed);
    if let Some(owner) = &findings.owner {
        return settle(
            pass,
            status,
            as_duplicate(decision.verdict, owner),
            Vec::new(),
        );
    }
    if pass.observe {
        // Plan mode: what `Manage` would do goes into `status.plan` instead of a write.
        let (plan, verdict, events) = plan::observe(pass, &decision, &observed);
        status.plan = Some(Box::new(plan));
        return settle(pass, status, verdict, events);
    }
    let events = announcements(pass, &findings, &status);
    settle(pass, status, decision.verdict, events)
}

/// The resource's connection cannot be used: the policy refuses (a person must change the
/// connection, the namespace or the resource), or it is not Ready yet (it will be; a change of
/// the connection wakes the resource).
fn unusable(refused: &Refused) -> Verdict {
    match refused {
        Refused::NotFound(message) => Verdict::stalled(Reason::ConnectionNotFound, message.clone()),
        Refused::NotAllowed(message) => {
            Verdict::stalled(Reason::ConnectionNotAllowed, message.clone())
        }
        Refused::NotReady(message) => {
            Verdict::progressing(Reason::ConnectionNotReady, message.clone())
        }
    }
}

/// A resource another one owns: Ready when what it asks for holds in Graph (so overlapping
/// rollouts do not count it as a failure), else waiting for the owner; either way the reason
/// says whose installation it is.
fn as_duplicate(verdict: Verdict, owner: &str) -> Verdict {
    let whose = format!(
        "{owner} owns this user's installation of the app (the oldest resource for them): this one makes no Graph writes and its deletion never uninstalls"
    );
    if verdict.is_ready() {
        Verdict::settled(
            Reason::DuplicateInstallation,
            format!("{}; {whose}", verdict.message),
        )
    } else if verdict.is_stalled() {
        verdict
    } else {
        Verdict::progressing(
            Reason::DuplicateInstallation,
            format!("waiting for {owner}: {}; {whose}", verdict.message),
        )
    }
}

/// The previous status, updated with what this reconcile learned and did.
fn record(pass: &Pass, findings: &Findings) -> TeamsAppInstallationStatus {
    let mut status = pass.previous.clone();
    if findings.tenant.is_some() {
        status.tenant_id = findings.tenant.clone();
    }
    if let Some(requested) = &pass.requested_at {
        status.last_handled_reconcile_at = Some(requested.clone());
    }
    if !pass.observe {
        status.plan = None;
    }
    if let Some(catalog) = &findings.catalog {
        status.catalog_app_id = Some(catalog.app_id.clone());
        if catalog.display_name.is_some() {
            status.app_display_name = catalog.display_name.clone();
        }
        status.latest_version = catalog.latest_published.as_ref().map(ToString::to_string);
        status.required_permissions = catalog.required_application();
    }
    if let Some(seen) = findings.after.as_ref().or(findings.before.as_ref()) {
        status.installation_id = seen.as_ref().map(|i| i.id.clone());
        status.installed_version = seen
            .as_ref()
            .and_then(|i| i.version.as_ref().map(ToString::to_string));
        if let Some(name) = seen.as_ref().and_then(|i| i.app_display_name.clone()) {
            status.app_display_name = Some(name);
        }
        status.consented_permissions = seen
            .as_ref()
            .map(|i| i.consented.clone())
            .unwrap_or_default();
    }
    match findings.wrote {
        Some(Action::Install { .. }) => status.last_install_time = Some(pass.now.clone()),
        Some(Action::Upgrade { .. }) => status.last_upgrade_time = Some(pass.now.clone()),
        Some(Action::Uninstall { .. } | Action::Nothing) | None => {}
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
    let verdict = verdict.retried();
    let events = vec![warning(&verdict)];
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

/// Teams answered 404 for a user the directory knows: Teams has not provisioned them yet.
/// Waited for on a backoff of its own (not every few seconds: it takes minutes to hours), then
/// Stalled; see [`provisioning`]. The Warning Event carries Graph's answer (with its request-id)
/// once, when the resource starts waiting; the condition's message stays the same while it
/// waits, so the retries write no status.
fn not_provisioned(pass: &Pass, status: TeamsAppInstallationStatus, failure: &Failure) -> Outcome {
    let since = provisioning::waiting_since(&pass.previous.conditions, &pass.now);
    let waited = pass.age_of(Some(&since)).unwrap_or_default();
    let verdict =
        provisioning::verdict(&pass.user, &since, waited, pass.timing.provisioning_timeout);
    let waiting = verdict.is_reconciling();
    let event = Announcement::warning(
        verdict.reason.as_str(),
        "Reconcile",
        format!("{}: {}", verdict.message, failure.message),
    );
    let mut outcome = settle(pass, status, verdict, Vec::new());
    if waiting {
        if outcome.status.is_some() {
            outcome.events.push(event);
        }
        outcome.requeue = provisioning::retry_delay(waited, pass.interval());
    }
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
        status.conditions = verdict.conditions(pass.generation, &[], &pass.now);
    }
    let changed = !same_status(&pass.previous, &status);
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
    status.conditions = verdict.conditions(pass.generation, &pass.previous.conditions, &pass.now);
    let changed = !same_status(&pass.previous, &status);
    if changed && verdict.is_stalled() {
        events.push(warning(&verdict));
    }
    // A duplicate waiting for its owner's write looks again as soon as a writer would verify.
    let waiting_for_owner = verdict.reason == Reason::DuplicateInstallation && !verdict.is_ready();
    let requeue = match verdict.reason {
        Reason::Installing | Reason::Upgrading => pass.timing.verify_interval,
        _ if waiting_for_owner => pass.timing.verify_interval,
        // Waiting on something outside (a version or app the catalog does not show yet, a
        // block a Teams admin lifts): noticed within one interval of it changing.
        _ if !verdict.is_ready() => pass.requeue_waiting(),
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
    events.extend(upgrade_not_applied(pass, findings, &app));
    if let (Some(Action::Uninstall { .. }), None) = (&findings.wrote, &status.installation_id) {
        events.push(Announcement::normal(
            "Uninstalled",
            "Uninstall",
            format!("uninstalled {app} for {} (ensure: Absent)", pass.user),
        ));
    }
    events
}

/// Graph accepted an upgrade (204) a write window ago, and the installation still shows the old
/// version: this reconcile asked once more. Said in a Warning Event each time, so a person sees
/// an upgrade that Teams keeps not applying — the operator itself asks at most once per window,
/// never in a loop.
fn upgrade_not_applied(pass: &Pass, findings: &Findings, app: &str) -> Option<Announcement> {
    let Some(Action::Upgrade { .. }) = findings.wrote else {
        return None;
    };
    let asked = pass.previous.last_upgrade_time.as_ref()?;
    let aimed = pass.previous.latest_version.as_deref()?;
    let latest = findings.catalog.as_ref()?.latest_published.as_ref()?;
    let installed = findings.before.clone().flatten()?.version?;
    if AppVersion::parse(aimed) != *latest || installed >= *latest {
        // A newer version was published since (this is a first call for it), or it was applied.
        return None;
    }
    let age = pass.age_of(Some(asked)).unwrap_or_default();
    let timing = &pass.timing;
    if age >= timing.write_window * 2 + timing.verify_interval {
        // Not the repeat of a call one window ago (re-checks come every verify interval while it
        // waits): the last call was for an earlier upgrade, and the status recorded a newer
        // latest version before this first call for it.
        return None;
    }
    Some(Announcement::warning(
        "UpgradeNotApplied",
        "Upgrade",
        format!(
            "Graph accepted the upgrade of {app} to {latest} at {} but still showed {installed} {}s later; asked once more (at most once per {}s)",
            asked.0,
            age.as_secs(),
            pass.timing.write_window.as_secs()
        ),
    ))
}

/// The Warning Event for a failure or a stall.
fn warning(verdict: &Verdict) -> Announcement {
    Announcement::warning(
        verdict.reason.as_str(),
        "Reconcile",
        verdict.message.clone(),
    )
}

#[cfg(test)]
mod tests;
