//! Rollout specs that cannot work (issue 23), tried as a user would on a real API server with
//! graph-sim and the operator binary: shares that shrink and numbers or durations the operator
//! cannot hold are refused at `kubectl apply` naming the field (and the operator's own check
//! agrees); a membership interval of a millisecond is clamped; a rollout with the longest name
//! an object can have still gets its Events.
//!
//! Objects stored before these rules existed, and objects the operator cannot read at all, are in
//! `tests/stored_before_the_rules.rs` (it changes the CRDs, so it has a control plane of its own).

mod scenario;
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt};
use scenario::rollouts::*;
use scenario::{BOT, Scenario};
use serde_json::{Value, json};
use teams_app_operator::api::{TeamsAppRollout, TeamsAppRolloutSpec};

fn tar_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<TeamsAppRollout>(&());
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// A rollout manifest, its spec as written (numbers of any size, strings as they are).
fn manifest(name: &str, spec: &Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "teamsapps.dev/v1alpha1",
        "kind": "TeamsAppRollout",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a manifest")
}

/// A rollout of the bot to one group, with `extra` fields.
fn spec_with(extra: Value) -> Value {
    let mut spec = json!({"app": {"id": BOT}, "audience": {"groups": [ALL]}});
    for (field, value) in extra.as_object().cloned().unwrap_or_default() {
        spec[field] = value;
    }
    spec
}

/// What the operator concludes about a spec the API server stored or refused: it must agree.
fn operator_accepts(spec: &Value) -> bool {
    serde_json::from_value::<TeamsAppRolloutSpec>(spec.clone()).is_ok_and(|s| s.validate().is_ok())
}

#[tokio::test]
async fn specs_that_cannot_work_are_refused_at_apply_time_naming_the_field() {
    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "tar-specs").await;
    let api = tar_api(&client, &namespace);
    // (what, extra spec fields, the parts of the API server's message that must be there)
    let refused: Vec<(&str, Value, &[&str])> = vec![
        (
            "percentages that shrink",
            json!({"waves": [{"name": "a", "percent": 50}, {"name": "b", "percent": 10}]}),
            &["spec.waves", "percentages must not decrease"],
        ),
        (
            "percentages that shrink around a count",
            json!({"waves": [{"name": "a", "percent": 50}, {"name": "b", "count": 10}, {"name": "c", "percent": 20}]}),
            &[
                "spec.waves",
                "must come before the first wave with a percent",
            ],
        ),
        (
            "a count after a percentage",
            json!({"waves": [{"name": "a", "percent": 10}, {"name": "b", "count": 500}]}),
            &[
                "spec.waves",
                "must come before the first wave with a percent",
            ],
        ),
        (
            "counts that shrink",
            json!({"waves": [{"name": "a", "count": 50}, {"name": "b", "count": 10}, {"name": "c", "percent": 100}]}),
            &["spec.waves", "counts must not decrease"],
        ),
        (
            "a count beyond a u32",
            json!({"waves": [{"name": "a", "count": 5_000_000_000u64}]}),
            &["spec.waves[0].count", "1000000"],
        ),
        (
            "a count of two million",
            json!({"waves": [{"name": "a", "count": 2_000_000}]}),
            &["spec.waves[0].count", "1000000"],
        ),
        (
            "maxFailures beyond an i32",
            json!({"maxFailures": 3_000_000_000u64}),
            &["spec.maxFailures", "0 to 1000000"],
        ),
        (
            "a negative maxFailures",
            json!({"maxFailures": -1}),
            &["spec.maxFailures", "0 to 1000000"],
        ),
        (
            "removalLimit beyond a million",
            json!({"removalLimit": 1_000_001}),
            &["spec.removalLimit", "0 to 1000000"],
        ),
        (
            "a bake time of a hundred thousand years",
            json!({"waves": [{"name": "a", "percent": 100, "bakeTime": "876000000h"}]}),
            &["spec.waves[0].bakeTime", "at most 720h"],
        ),
        (
            "a bake time of 31 days",
            json!({"waves": [{"name": "a", "percent": 100, "bakeTime": "744h"}]}),
            &["spec.waves[0].bakeTime", "at most 720h"],
        ),
        (
            "a membership interval of more than a week",
            json!({"membershipInterval": "169h"}),
            &["spec.membershipInterval", "at most 168h"],
        ),
        (
            "a removal delay of more than 30 days",
            json!({"removalDelay": "43201m"}),
            &["spec.removalDelay", "at most 720h"],
        ),
        (
            "an installation interval that overflows",
            json!({"template": {"interval": "999999999h"}}),
            &["spec.template.interval", "at most 168h"],
        ),
    ];
    for (i, (what, extra, expected)) in refused.iter().enumerate() {
        let spec = spec_with(extra.clone());
        let err = match api
            .create(
                &PostParams::default(),
                &manifest(&format!("refused-{i}"), &spec),
            )
            .await
        {
            Ok(_) => panic!("the API server accepted {what}: {spec}"),
            Err(e) => e.to_string(),
        };
        for part in *expected {
            assert!(
                err.contains(part),
                "refusing {what}: expected {part:?} in {err}"
            );
        }
        assert!(
            !operator_accepts(&spec),
            "the operator's own check accepts {what}, which the API server refuses"
        );
    }

    let accepted: Vec<(&str, Value)> = vec![
        (
            "counts, then percentages",
            json!({"waves": [{"name": "pilot", "count": 10}, {"name": "more", "count": 10}, {"name": "early", "percent": 10}, {"name": "all", "percent": 100}]}),
        ),
        (
            "the largest numbers",
            json!({"waves": [{"name": "a", "count": 1_000_000, "bakeTime": "720h"}], "maxFailures": 1_000_000, "removalLimit": 1_000_000}),
        ),
        (
            "the longest waits",
            json!({"membershipInterval": "168h", "removalDelay": "720h", "template": {"interval": "10080m"}}),
        ),
        // Accepted, and raised to --min-membership-interval by the operator.
        ("a millisecond", json!({"membershipInterval": "1ms"})),
    ];
    for (i, (what, extra)) in accepted.iter().enumerate() {
        let spec = spec_with(extra.clone());
        api.create(
            &PostParams::default(),
            &manifest(&format!("accepted-{i}"), &spec),
        )
        .await
        .unwrap_or_else(|e| panic!("the API server refused {what}: {e}"));
        assert!(
            operator_accepts(&spec),
            "the operator's own check refuses {what}, which the API server accepts"
        );
    }
}

/// Graph reads of a group's members so far.
async fn audience_reads(s: &Scenario) -> usize {
    s.count_requests("GET", "/transitiveMembers").await
}

#[tokio::test]
async fn a_millisecond_membership_interval_is_raised_to_the_floor() {
    let mut flags = FAST.to_vec();
    flags.extend(["--min-membership-interval", "2s"]);
    let s = Scenario::start_with("tar-1ms", &seed(4, |_| Kind::Member, &[]), &flags).await;
    let rollouts = Rollouts::new(&s);
    rollouts
        .create(
            "bot",
            json!({
                "app": {"id": BOT},
                "audience": {"groups": [NESTED_A]},
                "membershipInterval": "1ms",
            }),
        )
        .await;
    rollouts
        .wait_for_reason("bot", "RolloutComplete", Duration::from_secs(60))
        .await;

    // Watch for a while: reads and status writes come every 2s at most, not every millisecond
    // (which would be thousands of each).
    let before = audience_reads(&s).await;
    let mut versions = BTreeSet::new();
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(6) {
        let r = rollouts.get("bot").await;
        versions.insert(r.resource_version().unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reads = audience_reads(&s).await - before;
    assert!(
        reads >= 1,
        "the audience was never read again (the interval is 2s)"
    );
    assert!(
        reads <= 12,
        "{reads} audience reads in about 6s with a 2s floor"
    );
    assert!(
        versions.len() <= 12,
        "{} versions of the rollout in about 6s: status rewritten in a loop",
        versions.len()
    );
}

#[tokio::test]
async fn a_rollout_with_the_longest_name_gets_its_events() {
    let s = Scenario::start_with("tar-long", &seed(2, |_| Kind::Member, &[]), &FAST).await;
    let rollouts = Rollouts::new(&s);
    // 253 characters: the most an object name may have.
    let name = format!("helpdesk-{}", "a".repeat(244));
    assert_eq!(name.len(), 253);
    rollouts
        .create(
            &name,
            json!({"app": {"id": BOT}, "audience": {"groups": [ALL]}}),
        )
        .await;
    rollouts
        .wait_for_reason(&name, "RolloutComplete", Duration::from_secs(60))
        .await;
    for reason in ["WaveStarted", "WaveCompleted"] {
        s.wait_for_event(&name, reason).await;
    }
    let events = s.events(&name).await;
    assert!(
        events
            .iter()
            .all(|e| e.metadata.name.as_deref().is_some_and(|n| n.len() <= 253)),
        "{events:?}"
    );
    // Its installations' names are the longest too (shortened rollout name + user id), and
    // they get their Events as well.
    let children = rollouts.children().await;
    assert_eq!(children.len(), 2);
    for child in &children {
        let child = child.name_any();
        assert_eq!(child.len(), 253, "{child}");
        s.wait_for_event(&child, "Installed").await;
    }
    assert!(
        !s.operator_log().contains("could not record Event"),
        "{}",
        s.operator_log()
    );
}
