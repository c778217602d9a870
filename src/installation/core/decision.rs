//! The reconcile decision: what Graph shows + what the spec asks → one action and a verdict.
//!
//! Pure on purpose: no I/O, no clock reads, so every row of the condition table in the design is
//! a unit test. The controller gathers [`Observed`], calls [`decide`], performs the [`Action`],
//! and (after an install or upgrade) observes and decides again to learn the outcome.

use std::time::Duration;

use crate::api::{Consent, Ensure, InstallPolicy};
use crate::graph::ConsentedPermissionSet;
use crate::version::AppVersion;

use super::verdict::{Reason, Verdict};

/// The app as the tenant's catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogView {
    pub app_id: String,
    pub display_name: Option<String>,
    /// The highest *published* definition; submitted or rejected versions never count.
    pub latest_published: Option<AppVersion>,
    /// The RSC permissions that definition requires (what an install or upgrade moves to).
    pub required: ConsentedPermissionSet,
}

impl CatalogView {
    /// The application RSC permissions the latest published version requires.
    pub fn required_application(&self) -> Vec<String> {
        self.required.application()
    }
}

/// The user's installation of the app, when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledView {
    pub id: String,
    /// `None` when Graph did not expand the definition; treated as older than anything.
    pub version: Option<AppVersion>,
    /// The app's name as the installation shows it (for status and messages).
    pub app_display_name: Option<String>,
    /// The application RSC permissions the installation was consented with.
    pub consented: Vec<String>,
}

/// Everything the decision needs to know about the world.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub catalog: CatalogView,
    pub installation: Option<InstalledView>,
    /// An upgrade towards the current latest version was already requested and Graph may still
    /// be catching up (see [`upgrade_in_flight`]). While true, the decision verifies instead of
    /// calling upgrade again.
    pub upgrade_in_flight: bool,
    /// An install was requested recently (see [`install_in_flight`]): a missing installation
    /// is Graph's read side lagging, not a reason to install again.
    pub install_in_flight: bool,
    /// Graph refused to uninstall this installation because a Teams setup policy installed it
    /// (the last status says so, for this generation): asking again cannot help.
    pub uninstall_refused: Option<String>,
}

/// What the spec asks for, reduced to what matters for the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// `spec.targetVersion`: a minimum, never a pin.
    pub target_version: Option<AppVersion>,
    pub install_policy: InstallPolicy,
    pub ensure: Ensure,
    pub consent: Option<Consent>,
}

/// The one Graph write the operator should make now, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Install {
        catalog_app_id: String,
        /// The RSC permission set to consent (the definition's whole set when it holds an
        /// application permission; `None` when it needs no consent).
        consent: Option<ConsentedPermissionSet>,
    },
    Upgrade {
        installation_id: String,
        consent: Option<ConsentedPermissionSet>,
    },
    Uninstall {
        installation_id: String,
    },
}

/// The decision: what to do, and how the resource stands if that action succeeds (or if there
/// is none, how it stands now).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: Action,
    pub verdict: Verdict,
}

/// Decides the next step. See the module docs and design.md "Version semantics".
pub fn decide(wanted: &Wanted, observed: &Observed) -> Decision {
    if wanted.ensure == Ensure::Absent {
        return decide_absent(observed);
    }
    let catalog = &observed.catalog;
    let latest = catalog.latest_published.as_ref();
    let Some(installed) = &observed.installation else {
        return decide_missing(wanted, catalog, observed.install_in_flight);
    };

    // Graph always upgrades to the latest published version, so "desired" is the floor the spec
    // gives, or the latest when there is no floor.
    let Some(desired) = wanted.target_version.as_ref().or(latest) else {
        // Installed, and the catalog has nothing published to compare with: nothing to do.
        return no_action(Verdict::up_to_date(installed.version.as_ref()));
    };
    let current = installed
        .version
        .clone()
        .unwrap_or_else(|| AppVersion::parse("0"));
    if current >= *desired {
        return no_action(Verdict::up_to_date(Some(&current)));
    }
    match latest {
        Some(latest) if *latest > current => {
            let verdict = Verdict::progressing(
                Reason::Upgrading,
                format!("upgrading from {current} to {latest}"),
            );
            if observed.upgrade_in_flight {
                // Already asked; Graph's read side lags behind its upgrades. Verify, don't repeat.
                no_action(verdict)
            } else if let Some(refusal) = consent_refusal(wanted, catalog, Some(&current)) {
                no_action(refusal)
            } else {
                Decision {
                    action: Action::Upgrade {
                        installation_id: installed.id.clone(),
                        consent: catalog.required.to_consent().cloned(),
                    },
                    verdict,
                }
            }
        }
        _ => no_action(Verdict::progressing(
            Reason::WaitingForCatalogVersion,
            format!(
                "installed {current}; target {desired} is not published in the catalog yet (latest published: {})",
                latest.map_or("none".to_string(), |v| v.to_string())
            ),
        )),
    }
}

fn decide_missing(wanted: &Wanted, catalog: &CatalogView, install_in_flight: bool) -> Decision {
    if wanted.install_policy == InstallPolicy::Never {
        // Nothing left to do: Ready, so kstatus, Flux and `kubectl wait` see a settled resource
        // rather than one in progress forever.
        return no_action(Verdict::settled(
            Reason::NotInstalled,
            "the app is not installed for this user and installPolicy is Never".to_string(),
        ));
    }
    if install_in_flight {
        // Already asked (Graph said 201 or 409); its reads lag its writes. Wait, don't repeat.
        return no_action(Verdict::progressing(
            Reason::Installing,
            "install requested; waiting for Graph to show it".to_string(),
        ));
    }
    match &catalog.latest_published {
        None => no_action(Verdict::progressing(
            Reason::WaitingForCatalogVersion,
            "the app has no published version in the catalog yet".to_string(),
        )),
        Some(_) if let Some(refusal) = consent_refusal(wanted, catalog, None) => no_action(refusal),
        // Install even when the target is above the latest: the user gets the app now, and the
        // next decision waits for the catalog to catch up.
        Some(latest) => Decision {
            action: Action::Install {
                catalog_app_id: catalog.app_id.clone(),
                consent: catalog.required.to_consent().cloned(),
            },
            verdict: Verdict::progressing(Reason::Installing, format!("installing {latest}")),
        },
    }
}

/// `ensure: Absent`: uninstall what is there; nothing there is the goal. A setup policy's
/// install that Graph refused to remove stays as it is (Stalled) until the spec changes or
/// someone asks for a fresh look.
fn decide_absent(observed: &Observed) -> Decision {
    match &observed.installation {
        None => no_action(Verdict::settled(
            Reason::Absent,
            "the app is not installed for this user, as ensure: Absent asks".to_string(),
        )),
        Some(_) if let Some(message) = &observed.uninstall_refused => {
            no_action(Verdict::stalled(Reason::ManagedByPolicy, message.clone()))
        }
        Some(installed) => Decision {
            action: Action::Uninstall {
                installation_id: installed.id.clone(),
            },
            verdict: Verdict::progressing(
                Reason::Uninstalling,
                format!(
                    "uninstalling {} (ensure: Absent)",
                    installed
                        .version
                        .as_ref()
                        .map_or("the app".to_string(), |v| format!("version {v}"))
                ),
            ),
        },
    }
}

/// Whether the version an install or upgrade would move to needs RSC application permissions
/// `spec.consent` does not cover: decided from the catalog, before any write, so a new version
/// can never be granted more than someone consented to.
fn consent_refusal(
    wanted: &Wanted,
    catalog: &CatalogView,
    installed: Option<&AppVersion>,
) -> Option<Verdict> {
    let required = catalog.required_application();
    let missing = Consent::missing(wanted.consent.as_ref(), &required);
    if missing.is_empty() {
        return None;
    }
    let latest = catalog
        .latest_published
        .as_ref()
        .map_or("the latest version".to_string(), |v| format!("version {v}"));
    let stays = installed.map_or(String::new(), |v| format!("; {v} stays installed"));
    Some(Verdict::stalled(
        Reason::ConsentRequired,
        format!(
            "{latest} requires resource-specific application permissions that spec.consent does not cover: {}. Add them to spec.consent.permissions (or set spec.consent.mode: MatchCatalog) to consent; nothing was written{stays}",
            missing.join(", ")
        ),
    ))
}

fn no_action(verdict: Verdict) -> Decision {
    Decision {
        action: Action::Nothing,
        verdict,
    }
}

/// Whether an upgrade the operator asked for earlier may still be on its way.
///
/// Graph's upgrade has no async pattern and its reads can lag for a while, so after one call the
/// operator only re-reads — for `window` after the call, and only while the catalog's latest
/// version is still the one that upgrade aimed at. After that, it calls again (the first call
/// may have been lost).
pub fn upgrade_in_flight(
    last_upgrade_age: Option<Duration>,
    aimed_at: Option<&AppVersion>,
    latest_published: Option<&AppVersion>,
    window: Duration,
) -> bool {
    match (last_upgrade_age, aimed_at, latest_published) {
        (Some(age), Some(aimed), Some(latest)) => age < window && aimed == latest,
        _ => false,
    }
}

/// Whether an install the operator asked for `last_install_age` ago may still be on its way:
/// Graph answers 201 (or 409) at once, but its list can go on without the app for a while.
/// After `window` the operator asks again; a 409 then confirms the install exists.
pub fn install_in_flight(last_install_age: Option<Duration>, window: Duration) -> bool {
    last_install_age.is_some_and(|age| age < window)
}

/// Whether to announce `Installed`: the installation is visible now, was not at the last status,
/// and the operator asked for it recently. The announcement waits for Graph to show the install
/// (however late that is) and happens once, since the next status records the installation.
pub fn announce_install(visible_before: bool, visible_now: bool, requested_recently: bool) -> bool {
    visible_now && !visible_before && requested_recently
}

#[cfg(test)]
mod tests;
