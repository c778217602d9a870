//! The reconcile decision: what Graph shows + what the spec asks → one action and a verdict.
//!
//! Pure on purpose: no I/O, no clock reads, so every row of the condition table in the design is
//! a unit test. The controller gathers [`Observed`], calls [`decide`], performs the [`Action`],
//! and (after an install or upgrade) observes and decides again to learn the outcome.

use std::time::Duration;

use crate::api::InstallPolicy;
use crate::version::AppVersion;

use super::verdict::{Reason, Verdict};

/// The app as the tenant's catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogView {
    pub app_id: String,
    pub display_name: Option<String>,
    /// The highest *published* definition; submitted or rejected versions never count.
    pub latest_published: Option<AppVersion>,
}

/// The user's installation of the app, when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledView {
    pub id: String,
    /// `None` when Graph did not expand the definition; treated as older than anything.
    pub version: Option<AppVersion>,
    /// The app's name as the installation shows it (for status and messages).
    pub app_display_name: Option<String>,
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
}

/// What the spec asks for, reduced to what matters for the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// `spec.targetVersion`: a minimum, never a pin.
    pub target_version: Option<AppVersion>,
    pub install_policy: InstallPolicy,
}

/// The one Graph write the operator should make now, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Install { catalog_app_id: String },
    Upgrade { installation_id: String },
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
            } else {
                Decision {
                    action: Action::Upgrade {
                        installation_id: installed.id.clone(),
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
        // Install even when the target is above the latest: the user gets the app now, and the
        // next decision waits for the catalog to catch up.
        Some(latest) => Decision {
            action: Action::Install {
                catalog_app_id: catalog.app_id.clone(),
            },
            verdict: Verdict::progressing(Reason::Installing, format!("installing {latest}")),
        },
    }
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
mod tests {
    use super::*;

    fn v(s: &str) -> AppVersion {
        AppVersion::parse(s)
    }

    fn observed(latest: Option<&str>, installed: Option<&str>) -> Observed {
        Observed {
            catalog: CatalogView {
                app_id: "app-1".into(),
                display_name: Some("Contoso Bot".into()),
                latest_published: latest.map(v),
            },
            installation: installed.map(|ver| InstalledView {
                id: "inst-1".into(),
                version: Some(v(ver)),
                app_display_name: None,
            }),
            upgrade_in_flight: false,
            install_in_flight: false,
        }
    }

    fn wanted(target: Option<&str>) -> Wanted {
        Wanted {
            target_version: target.map(v),
            install_policy: InstallPolicy::IfMissing,
        }
    }

    #[test]
    fn installed_at_latest_is_up_to_date() {
        let d = decide(&wanted(None), &observed(Some("1.4.0"), Some("1.4.0")));
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.verdict.reason, Reason::UpToDate);
        assert!(d.verdict.is_ready());
    }

    #[test]
    fn installed_above_target_is_up_to_date_and_never_downgrades() {
        let d = decide(
            &wanted(Some("1.0")),
            &observed(Some("1.4.0"), Some("1.2.0")),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.verdict.reason, Reason::UpToDate);
        // Installed above the catalog's latest (e.g. the catalog dropped a version): no downgrade.
        let d = decide(&wanted(None), &observed(Some("1.0.0"), Some("2.0.0")));
        assert_eq!(d.action, Action::Nothing);
        assert!(d.verdict.is_ready());
    }

    #[test]
    fn lagging_install_is_upgraded_once() {
        let d = decide(&wanted(None), &observed(Some("1.1.0"), Some("1.0.0")));
        assert_eq!(
            d.action,
            Action::Upgrade {
                installation_id: "inst-1".into()
            }
        );
        assert_eq!(d.verdict.reason, Reason::Upgrading);
        assert!(d.verdict.is_reconciling());

        let mut in_flight = observed(Some("1.1.0"), Some("1.0.0"));
        in_flight.upgrade_in_flight = true;
        let d = decide(&wanted(None), &in_flight);
        assert_eq!(
            d.action,
            Action::Nothing,
            "verify, do not call upgrade twice"
        );
        assert_eq!(d.verdict.reason, Reason::Upgrading);
    }

    #[test]
    fn target_above_catalog_waits_for_the_catalog() {
        let d = decide(
            &wanted(Some("2.0")),
            &observed(Some("1.4.0"), Some("1.4.0")),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.verdict.reason, Reason::WaitingForCatalogVersion);
        assert!(d.verdict.is_reconciling());
        assert!(!d.verdict.is_ready());
    }

    #[test]
    fn target_above_catalog_still_moves_forward_when_it_can() {
        let d = decide(
            &wanted(Some("2.0")),
            &observed(Some("1.4.0"), Some("1.0.0")),
        );
        assert!(matches!(d.action, Action::Upgrade { .. }));
    }

    #[test]
    fn missing_install_is_installed_if_missing() {
        let d = decide(&wanted(None), &observed(Some("1.0.0"), None));
        assert_eq!(
            d.action,
            Action::Install {
                catalog_app_id: "app-1".into()
            }
        );
        assert_eq!(d.verdict.reason, Reason::Installing);
    }

    #[test]
    fn missing_install_while_an_install_is_in_flight_waits() {
        let mut o = observed(Some("1.0.0"), None);
        o.install_in_flight = true;
        let d = decide(&wanted(None), &o);
        assert_eq!(
            d.action,
            Action::Nothing,
            "Graph's reads lag: do not post again"
        );
        assert_eq!(d.verdict.reason, Reason::Installing);
        assert!(d.verdict.is_reconciling());
    }

    #[test]
    fn install_in_flight_only_within_window() {
        let w = Duration::from_secs(600);
        assert!(install_in_flight(Some(Duration::from_secs(3)), w));
        assert!(!install_in_flight(Some(Duration::from_secs(600)), w));
        assert!(!install_in_flight(None, w));
    }

    #[test]
    fn installed_is_announced_once_when_graph_shows_it() {
        // Seen right after the call, or by a later reconcile: announced.
        assert!(announce_install(false, true, true));
        // Still lagging: not yet. Already recorded: never again.
        assert!(!announce_install(false, false, true));
        assert!(!announce_install(true, true, true));
        // Installed by someone else: not ours to announce.
        assert!(!announce_install(false, true, false));
    }

    #[test]
    fn missing_install_with_policy_never_is_not_installed() {
        let mut w = wanted(None);
        w.install_policy = InstallPolicy::Never;
        let d = decide(&w, &observed(Some("1.0.0"), None));
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.verdict.reason, Reason::NotInstalled);
        assert!(d.verdict.is_ready() && !d.verdict.is_reconciling() && !d.verdict.is_stalled());
    }

    #[test]
    fn nothing_published_waits_before_installing() {
        let d = decide(&wanted(None), &observed(None, None));
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.verdict.reason, Reason::WaitingForCatalogVersion);
    }

    #[test]
    fn odd_versions_compare_numerically() {
        let d = decide(&wanted(None), &observed(Some("1.10"), Some("1.9")));
        assert!(matches!(d.action, Action::Upgrade { .. }));
        let d = decide(&wanted(Some("1.7")), &observed(Some("1.7.0"), Some("1.7")));
        assert!(d.verdict.is_ready());
    }

    #[test]
    fn unknown_installed_version_is_treated_as_oldest() {
        let mut o = observed(Some("1.0.0"), Some("1.0.0"));
        if let Some(i) = o.installation.as_mut() {
            i.version = None;
        }
        assert!(matches!(
            decide(&wanted(None), &o).action,
            Action::Upgrade { .. }
        ));
    }

    #[test]
    fn upgrade_in_flight_only_within_window_and_same_target() {
        let w = Duration::from_secs(600);
        let latest = v("1.1.0");
        assert!(upgrade_in_flight(
            Some(Duration::from_secs(5)),
            Some(&latest),
            Some(&latest),
            w
        ));
        assert!(!upgrade_in_flight(
            Some(Duration::from_secs(601)),
            Some(&latest),
            Some(&latest),
            w
        ));
        assert!(!upgrade_in_flight(
            Some(Duration::from_secs(5)),
            Some(&v("1.0.5")),
            Some(&latest),
            w
        ));
        assert!(!upgrade_in_flight(None, Some(&latest), Some(&latest), w));
    }
}
