use super::*;

const T1: &str = "tenant-1";
const T2: &str = "tenant-2";

fn at(minute: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
}

fn slot(app: &str) -> Slot<&'static str> {
    Slot {
        key: "conn",
        teams_app_id: app.to_string(),
    }
}

fn want(app: &str) -> Want<&'static str> {
    Want {
        slot: slot(app),
        tenant_id: T1.into(),
    }
}

/// A subscription granted at minute 0 for 90 minutes.
fn held(id: &str) -> Tracked {
    let mut t = Tracked::new(T1);
    t.granted(id, at(90), at(0));
    t
}

fn backoff() -> Backoff {
    Backoff {
        base: Duration::from_secs(60),
        max: Duration::from_secs(600),
    }
}

#[test]
fn a_wanted_slot_without_a_subscription_is_created() {
    let steps = plan(&[want("a")], &HashMap::new(), at(0));
    assert_eq!(
        steps,
        vec![Step::Create {
            slot: slot("a"),
            tenant_id: T1.into()
        }]
    );
}

#[test]
fn a_slot_wanted_twice_is_one_subscription() {
    assert_eq!(
        plan(&[want("a"), want("a")], &HashMap::new(), at(0)).len(),
        1
    );
}

#[test]
fn a_fresh_subscription_needs_nothing() {
    let tracked = HashMap::from([(slot("a"), held("s1"))]);
    assert_eq!(plan(&[want("a")], &tracked, at(59)), vec![]);
    assert_eq!(tracked[&slot("a")].health(at(59)), Health::Healthy);
}

#[test]
fn renewal_is_due_when_less_than_a_third_is_left() {
    let tracked = HashMap::from([(slot("a"), held("s1"))]);
    // 90 minutes granted: due once fewer than 30 are left.
    assert_eq!(plan(&[want("a")], &tracked, at(60)), vec![]);
    assert_eq!(
        plan(&[want("a")], &tracked, at(61)),
        vec![Step::Renew {
            slot: slot("a"),
            id: "s1".into()
        }]
    );
}

#[test]
fn the_granted_lifetime_counts_not_the_asked_one() {
    // Graph granted 3 minutes where 3 days were asked: renew after 2.
    let mut t = Tracked::new(T1);
    t.granted("s1", at(3), at(0));
    let live = t.live.clone().unwrap();
    assert!(!renewal_due(&live, at(2)));
    assert!(renewal_due(&live, at(2) + SignedDuration::from_secs(1)));
    assert_eq!(expiry(at(0), Duration::from_secs(4230 * 60)), at(4230));
}

#[test]
fn reauthorization_renews_at_once() {
    let mut t = held("s1");
    t.asked = Some(Asked::Renew);
    let tracked = HashMap::from([(slot("a"), t)]);
    assert_eq!(
        plan(&[want("a")], &tracked, at(1)),
        vec![Step::Renew {
            slot: slot("a"),
            id: "s1".into()
        }]
    );
}

#[test]
fn a_removed_or_expired_subscription_is_recreated() {
    let mut removed = held("s1");
    removed.removed();
    assert_eq!(removed.health(at(1)), Health::Missing);
    let tracked = HashMap::from([(slot("a"), removed), (slot("b"), held("s2"))]);
    let steps = plan(&[want("a"), want("b")], &tracked, at(91));
    assert_eq!(
        steps,
        vec![
            Step::Recreate {
                slot: slot("a"),
                tenant_id: T1.into(),
                old: None
            },
            Step::Recreate {
                slot: slot("b"),
                tenant_id: T1.into(),
                old: None
            },
        ]
    );
}

#[test]
fn a_connection_in_another_tenant_replaces_its_subscription() {
    let tracked = HashMap::from([(slot("a"), held("s1"))]);
    let moved = Want {
        slot: slot("a"),
        tenant_id: T2.into(),
    };
    assert_eq!(
        plan(&[moved], &tracked, at(1)),
        vec![Step::Recreate {
            slot: slot("a"),
            tenant_id: T2.into(),
            old: Some("s1".into())
        }]
    );
}

#[test]
fn an_unwanted_slot_is_deleted_and_an_expired_one_only_forgotten() {
    let tracked = HashMap::from([(slot("a"), held("s1"))]);
    assert_eq!(
        plan(&[], &tracked, at(1)),
        vec![Step::Delete {
            slot: slot("a"),
            id: Some("s1".into())
        }]
    );
    let mut failing = held("s1");
    failing.failed("503".into(), at(1), &backoff());
    let tracked = HashMap::from([(slot("a"), failing)]);
    assert_eq!(plan(&[], &tracked, at(1)), vec![], "backing off");
    assert_eq!(
        plan(&[], &tracked, at(91)),
        vec![Step::Delete {
            slot: slot("a"),
            id: None
        }]
    );
}

#[test]
fn a_failure_is_retried_with_backoff_and_keeps_its_first_time() {
    let mut t = Tracked::new(T1);
    t.failed("refused".into(), at(0), &backoff());
    let tracked = HashMap::from([(slot("a"), t.clone())]);
    assert_eq!(plan(&[want("a")], &tracked, at(0)), vec![]);
    assert_eq!(
        plan(&[want("a")], &tracked, at(1)),
        vec![Step::Create {
            slot: slot("a"),
            tenant_id: T1.into()
        }]
    );
    t.failed("refused again".into(), at(1), &backoff());
    let f = t.failure.clone().unwrap();
    assert_eq!((f.since, f.attempts, f.retry_at), (at(0), 2, at(3)));
    assert_eq!(
        t.health(at(1)),
        Health::Failing {
            since: at(0),
            message: "refused again".into()
        }
    );
    for _ in 0..10 {
        t.failed("still".into(), at(1), &backoff());
    }
    assert_eq!(t.failure.as_ref().unwrap().retry_at, at(11), "capped");
    t.granted("s1", at(90), at(12));
    assert_eq!(t.health(at(12)), Health::Healthy);
}

#[test]
fn a_failing_renewal_is_retried_until_graph_drops_it() {
    let mut t = held("s1");
    t.failed("503".into(), at(61), &backoff());
    let tracked = HashMap::from([(slot("a"), t)]);
    assert_eq!(plan(&[want("a")], &tracked, at(61)), vec![]);
    assert_eq!(
        plan(&[want("a")], &tracked, at(62)),
        vec![Step::Renew {
            slot: slot("a"),
            id: "s1".into()
        }]
    );
}
