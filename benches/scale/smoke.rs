//! The smoke run's checks: what `cargo test --all-targets` asserts of a small unthrottled run.

use crate::report::Report;

/// What a small unthrottled run must show. Exact: installs, upgrades, deletes and 429s; catalog
/// reads (one single-flight read per app, and nothing expires within 1h); status writes (one per
/// resource); nothing during the hold. The installedApps reads are bounded, not exact: all of a
/// user's resources share the user's first list, and the read after a user's writes verifies
/// every write under way until then — but with no latency a resource's write may be verified
/// before its sibling's starts, which then takes a read of its own. Hence users +
/// users-with-writes ≤ reads ≤ users + writes (measured: 81 and 83 for 70 ≤ reads ≤ 100; with
/// Graph's latency, as in the benchmark, the lower bound ± 2). Of the steady state, only what a
/// run on a compressed clock cannot get wrong by timing: a subscription per app, every app
/// removed out of band installed again.
pub fn check(report: &Report) {
    let plan = &report.plan;
    let c = &report.convergence;
    let calls = &c.graph_calls;
    assert_eq!(c.ready, plan.resources, "all resources up to date");
    assert_eq!(
        calls.class("install"),
        plan.missing,
        "one install per missing app"
    );
    assert_eq!(
        calls.class("other"),
        plan.lagging,
        "one upgrade per lagging app"
    );
    assert_eq!(calls.class("delete"), 0, "nothing deleted");
    assert_eq!(calls.throttled, 0, "no budget, no 429");
    assert_eq!(
        calls.class("catalogRead"),
        plan.apps,
        "one catalog read per app (single-flight, 1h TTL)"
    );
    let reads = calls.class("installedAppsRead");
    assert!(
        reads >= plan.users + plan.users_with_writes
            && reads <= plan.users + plan.missing + plan.lagging,
        "installedApps reads {reads}: one list per user, one verify per write at most"
    );
    assert_eq!(
        c.status_writes,
        Some(plan.resources as u64),
        "one status write per resource: the pass that brings it up to date; later passes change nothing"
    );
    assert_eq!(
        report.hold.graph_calls.total, 0,
        "nothing to re-check within the 1h interval"
    );
    assert_eq!(
        report.hold.status_writes,
        Some(0),
        "a converged state writes no status"
    );
    assert_eq!(report.change_latency.missed, 0, "every probe reached Graph");
    if let Some(steady) = &report.steady_state {
        assert_eq!(
            steady.on.healthy_subscriptions,
            Some(plan.apps as u64),
            "one healthy subscription per app"
        );
        for mode in [&steady.off, &steady.on] {
            let probes = &mode.change_to_install;
            assert_eq!(probes.missed, 0, "every removed app installed again");
            assert_eq!(mode.window_calls.throttled, 0, "no budget, no 429");
        }
    }
}
