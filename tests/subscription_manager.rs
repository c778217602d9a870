//! The subscription manager against the Graph simulator and the real notification receiver,
//! in process: subscriptions are created (through the validation handshake), kept, renewed,
//! recreated after Graph removes them, deleted when no longer wanted, and a refused create is
//! reported and retried. No Kubernetes API server is involved.
//!
//! A simulator or receiver that cannot start fails the test; nothing here is skipped.

#[path = "subscription_manager/world.rs"]
mod world;

use std::sync::atomic::Ordering;

use graph_sim::FaultConfig;
use jiff::SignedDuration;
use serde_json::json;
use teams_app_operator::notification::{LIFECYCLE_PATH, LifecycleKind, NOTIFICATION_PATH};
use teams_app_operator::subscription::{Health, SubscriptionManager, SubscriptionSettings, Wanted};

use world::{ALICE, BOT, OTHER_TENANT, TABS, client_in, key, world};

#[tokio::test]
async fn subscriptions_are_created_kept_renewed_and_deleted() {
    let mut w = world().await;
    w.manager.sync(w.wanted(&[BOT, TABS])).await;
    let held = w.held().await;
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!((held[0].0.as_str(), held[1].0.as_str()), (BOT, TABS));
    // Both URLs of both subscriptions passed the handshake through the real receiver.
    assert_eq!(w.receiving.counts.snapshot().validations, 4);
    assert_eq!(w.secrets.len(), 2);
    assert!(w.manager.all_healthy_for(&key(), BOT) && w.manager.all_healthy_for(&key(), TABS));
    let bot = w.id_of(BOT);
    assert_eq!(w.manager.covering(&bot), Some((key(), BOT.to_string())));

    // The secret Graph holds is the one the receiver checks: an install is accepted.
    w.client.install(ALICE, BOT, None).await.expect("installed");
    let change = w.next_change().await;
    assert_eq!(change.subscription_id, bot);
    w.manager.note_notification(&change.subscription_id);
    let noted = w.manager.states();
    let noted = noted.iter().find(|s| s.teams_app_id == BOT).expect("BOT");
    assert!(noted.last_notification.is_some());

    assert!(!w.manager.has_work(&w.wanted(&[BOT, TABS])));
    w.manager.sync(w.wanted(&[BOT, TABS])).await;
    assert_eq!(w.held().await, held, "a second sync changes nothing");
    assert_eq!(w.receiving.counts.snapshot().validations, 4);

    // 41 of 60 minutes gone: less than a third left, so both are renewed (same ids).
    w.offset.store(41, Ordering::SeqCst);
    assert!(
        w.manager.has_work(&w.wanted(&[BOT, TABS])),
        "renewals are due"
    );
    w.manager.sync(w.wanted(&[BOT, TABS])).await;
    let renewed = w.held().await;
    for (before, after) in held.iter().zip(&renewed) {
        assert_eq!(before.1, after.1);
        assert!(
            after.2 >= before.2 + SignedDuration::from_mins(40),
            "{before:?} → {after:?}"
        );
    }

    w.manager.sync(w.wanted(&[BOT])).await;
    let left = w.held().await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1, bot);
    assert_eq!(w.secrets.len(), 1);
    assert_eq!(w.manager.covering(&renewed[1].1), None);
    assert_eq!(w.manager.states().len(), 1);
}

#[tokio::test]
async fn lifecycle_events_renew_recreate_and_ask_for_a_recheck() {
    let mut w = world().await;
    w.manager.sync(w.wanted(&[BOT])).await;
    let first = w.id_of(BOT);
    let before = w.held().await[0].2;

    w.offset.store(5, Ordering::SeqCst);
    w.sim
        .send_lifecycle(&first, graph_sim::LifecycleEvent::ReauthorizationRequired)
        .expect("sent");
    let event = w.next_lifecycle().await;
    assert_eq!(event.kind, LifecycleKind::ReauthorizationRequired);
    assert_eq!(w.manager.on_lifecycle(&event).await, None);
    assert!(w.held().await[0].2 >= before + SignedDuration::from_mins(4));

    w.sim
        .send_lifecycle(&first, graph_sim::LifecycleEvent::Missed)
        .expect("sent");
    let event = w.next_lifecycle().await;
    let recheck = Some((key(), BOT.to_string()));
    assert_eq!(w.manager.on_lifecycle(&event).await, recheck);
    assert_eq!(w.id_of(BOT), first, "missed changes no subscription");

    let admin = format!("{}/_sim/subscriptions/{first}/lifecycle", w.sim.base_url());
    let sent = w
        .http
        .post(admin)
        .json(&json!({"event": "subscriptionRemoved"}));
    assert_eq!(sent.send().await.expect("admin").status().as_u16(), 202);
    let event = w.next_lifecycle().await;
    assert_eq!(event.kind, LifecycleKind::SubscriptionRemoved);
    assert_eq!(w.manager.on_lifecycle(&event).await, recheck);
    let held = w.held().await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_ne!(held[0].1, first, "a new subscription");
    assert_eq!(w.id_of(BOT), held[0].1);
    assert_eq!(w.secrets.len(), 1, "the removed one's secret is gone");
    assert_eq!(w.manager.covering(&first), None);
    assert!(w.manager.all_healthy_for(&key(), BOT));
}

#[tokio::test]
async fn a_refused_create_is_failing_then_retried() {
    let w = world().await;
    let refusal: FaultConfig = serde_json::from_value(json!({"failures": [{
        "method": "POST", "pathContains": "/subscriptions", "status": 403,
        "code": "Forbidden", "message": "Missing role permissions on the request."
    }]}))
    .expect("a fault script");
    w.sim.set_faults(refusal).expect("faults set");

    w.manager.sync(w.wanted(&[BOT])).await;
    assert_eq!(w.held().await, vec![]);
    let states = w.manager.states();
    match &states[..] {
        [state] => match &state.health {
            Health::Failing { message, .. } => {
                assert!(message.contains("Missing role permissions"), "{message}");
                assert!(message.starts_with("creating the Graph subscription failed"));
            }
            other => panic!("not failing: {other:?}"),
        },
        other => panic!("one state expected: {other:?}"),
    }
    assert!(!w.manager.all_healthy_for(&key(), BOT));
    assert!(w.secrets.is_empty());

    w.manager.sync(w.wanted(&[BOT])).await;
    assert_eq!(w.held().await.len(), 1);
    assert!(w.manager.all_healthy_for(&key(), BOT));
}

#[tokio::test]
async fn a_renewal_graph_answers_404_creates_a_new_subscription() {
    let w = world().await;
    w.manager.sync(w.wanted(&[BOT])).await;
    let first = w.id_of(BOT);
    // Gone behind the manager's back (deleting twice is no error).
    w.client.delete_subscription(&first).await.expect("deleted");
    w.client
        .delete_subscription(&first)
        .await
        .expect("already gone");

    w.offset.store(41, Ordering::SeqCst);
    w.manager.sync(w.wanted(&[BOT])).await;
    let held = w.held().await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_ne!(held[0].1, first);
    assert_eq!(w.id_of(BOT), held[0].1);
    assert_eq!(w.secrets.len(), 1);
    assert!(w.manager.all_healthy_for(&key(), BOT));
}

#[tokio::test]
async fn a_failed_handshake_is_reported_and_nothing_is_held() {
    let w = world().await;
    let settings = SubscriptionSettings::new(
        format!("{}/not-the-receiver", w.receiver),
        format!("{}{LIFECYCLE_PATH}", w.receiver),
    );
    let manager = SubscriptionManager::new(settings, w.secrets.clone());
    manager.sync(w.wanted(&[BOT])).await;
    assert_eq!(w.held().await, vec![]);
    let states = manager.states();
    let health = states.first().map(|s| s.health.clone());
    assert!(
        matches!(&health, Some(Health::Failing { message, .. })
            if message.contains("Subscription validation request failed")),
        "{health:?}"
    );
    assert!(w.secrets.is_empty(), "no secret left behind");
}

#[tokio::test]
async fn a_connection_moved_to_another_tenant_subscribes_there() {
    let w = world().await;
    w.manager.sync(w.wanted(&[BOT])).await;
    let first = w.id_of(BOT);
    let moved = vec![Wanted {
        key: key(),
        tenant_id: OTHER_TENANT.into(),
        teams_app_id: BOT.into(),
        client: client_in(&w.sim, OTHER_TENANT),
    }];
    w.manager.sync(moved).await;
    let all = w.admin_subscriptions().await;
    assert_eq!(all.len(), 1, "the first tenant's is deleted: {all:?}");
    assert_eq!(all[0]["tenantId"], OTHER_TENANT);
    assert_ne!(all[0]["id"], first.as_str());
    assert_eq!(w.id_of(BOT), all[0]["id"].as_str().unwrap_or_default());
    assert_eq!(w.secrets.len(), 1);
    assert!(w.manager.all_healthy_for(&key(), BOT));
}

/// A new leader (a restart, a failover) goes on with what its predecessor kept: no second
/// subscription, no new handshake, the kept secret still proves Graph's notifications, and it
/// deletes the subscription when no longer wanted.
#[tokio::test]
async fn a_successor_goes_on_with_the_kept_subscriptions() {
    let mut w = world().await;
    w.manager.sync(w.wanted(&[BOT])).await;
    let kept = w.manager.kept();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, w.id_of(BOT));
    let handshakes = w.receiving.counts.snapshot().validations;

    // The successor starts with an empty table, as a restarted process does.
    w.secrets.replace_known([]);
    let mut settings = SubscriptionSettings::new(
        format!("{}{NOTIFICATION_PATH}", w.receiver),
        format!("{}{LIFECYCLE_PATH}", w.receiver),
    );
    settings.lifetime = std::time::Duration::from_secs(60 * 60);
    let successor = SubscriptionManager::new(settings, w.secrets.clone());
    successor.adopt(kept.clone());
    successor.sync(w.wanted(&[BOT])).await;
    let all = w.admin_subscriptions().await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], kept[0].id.as_str());
    assert_eq!(w.receiving.counts.snapshot().validations, handshakes);
    assert!(successor.all_healthy_for(&key(), BOT));
    assert_eq!(successor.kept(), kept);

    w.client.install(ALICE, BOT, None).await.expect("installed");
    assert_eq!(w.next_change().await.subscription_id, kept[0].id);

    successor.sync(Vec::new()).await;
    assert_eq!(
        w.admin_subscriptions().await,
        Vec::<serde_json::Value>::new()
    );
}
