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
            required: ConsentedPermissionSet::default(),
        },
        installation: installed.map(|ver| InstalledView {
            id: "inst-1".into(),
            version: Some(v(ver)),
            app_display_name: None,
            consented: Vec::new(),
        }),
        upgrade_in_flight: false,
        install_in_flight: false,
        uninstall_refused: None,
    }
}

fn wanted(target: Option<&str>) -> Wanted {
    Wanted {
        target_version: target.map(v),
        install_policy: InstallPolicy::IfMissing,
        ensure: Ensure::Present,
        consent: None,
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
            installation_id: "inst-1".into(),
            consent: None,
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
            catalog_app_id: "app-1".into(),
            consent: None,
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

fn rsc(app: &[&str], delegated: &[&str]) -> ConsentedPermissionSet {
    use crate::graph::{PermissionType, ResourceSpecificPermission};
    let one = |name: &&str, permission_type| ResourceSpecificPermission {
        permission_value: name.to_string(),
        permission_type,
    };
    ConsentedPermissionSet {
        resource_specific_permissions: app
            .iter()
            .map(|n| one(n, PermissionType::Application))
            .chain(delegated.iter().map(|n| one(n, PermissionType::Delegated)))
            .collect(),
    }
}

fn consent(permissions: &[&str]) -> Option<Consent> {
    Some(Consent {
        mode: crate::api::ConsentMode::Explicit,
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
    })
}

#[test]
fn an_upgrade_needing_unconsented_permissions_stops_before_writing() {
    let mut o = observed(Some("2.0.0"), Some("1.0.0"));
    o.catalog.required = rsc(&["TeamsActivity.Send.User"], &["Chat.Read.User"]);
    let d = decide(&wanted(None), &o);
    assert_eq!(d.action, Action::Nothing);
    assert_eq!(d.verdict.reason, Reason::ConsentRequired);
    assert!(d.verdict.is_stalled());
    assert!(
        d.verdict.message.contains("TeamsActivity.Send.User")
            && d.verdict.message.contains("1.0.0 stays installed"),
        "{}",
        d.verdict.message
    );

    // Consented: the upgrade sends the definition's whole set, delegated included.
    let mut w = wanted(None);
    w.consent = consent(&["teamsactivity.send.user"]);
    let d = decide(&w, &o);
    assert_eq!(
        d.action,
        Action::Upgrade {
            installation_id: "inst-1".into(),
            consent: Some(o.catalog.required.clone()),
        }
    );
    // MatchCatalog consents to whatever the version requires.
    w.consent = Some(Consent {
        mode: crate::api::ConsentMode::MatchCatalog,
        permissions: Vec::new(),
    });
    assert!(matches!(decide(&w, &o).action, Action::Upgrade { .. }));
}

#[test]
fn delegated_only_permissions_need_no_consent_and_send_none() {
    let mut o = observed(Some("1.0.0"), None);
    o.catalog.required = rsc(&[], &["Chat.Read.User"]);
    assert_eq!(
        decide(&wanted(None), &o).action,
        Action::Install {
            catalog_app_id: "app-1".into(),
            consent: None,
        }
    );
}

#[test]
fn absent_uninstalls_what_is_there_and_is_ready_once_gone() {
    let mut w = wanted(None);
    w.ensure = Ensure::Absent;
    let d = decide(&w, &observed(Some("1.0.0"), Some("1.0.0")));
    assert_eq!(
        d.action,
        Action::Uninstall {
            installation_id: "inst-1".into()
        }
    );
    assert_eq!(d.verdict.reason, Reason::Uninstalling);
    let d = decide(&w, &observed(Some("1.0.0"), None));
    assert_eq!(d.action, Action::Nothing);
    assert_eq!(d.verdict.reason, Reason::Absent);
    assert!(d.verdict.is_ready());
    // Never installs, whatever the catalog says.
    let d = decide(&w, &observed(Some("9.0.0"), None));
    assert_eq!(d.action, Action::Nothing);
}

#[test]
fn a_refused_uninstall_of_a_policy_install_is_not_asked_again() {
    let mut w = wanted(None);
    w.ensure = Ensure::Absent;
    let mut o = observed(Some("1.0.0"), Some("1.0.0"));
    o.uninstall_refused = Some("preinstalled by a setup policy".into());
    let d = decide(&w, &o);
    assert_eq!(d.action, Action::Nothing);
    assert_eq!(d.verdict.reason, Reason::ManagedByPolicy);
    assert!(d.verdict.is_stalled());
}
