//! Waiting on the API server, for any kind: poll with a deadline, and on timeout panic with the
//! last state seen plus what the caller adds (usually the operator's log). Every suite waits
//! through these; tests never assert on timing.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use teams_app_operator::kit::conditions::{self, Conditioned};

/// What a failed wait prints after the last state it saw (an operator's log, say).
pub type Context<'a> = &'a (dyn Fn() -> String + Send + Sync);

/// How often a wait looks.
const POLL: Duration = Duration::from_millis(250);

/// Polls `probe` until it finds something, returning it; panics after `timeout` naming `what`
/// and the caller's context. For anything that is not one object's state (the simulator's
/// logs); looks every 100 ms, so the times the tests print are that fine.
pub async fn until_found<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
    context: Context<'_>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `name` until `check` holds, returning it; panics after `timeout` with the last state.
pub async fn until<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&K) -> bool,
    context: Context<'_>,
) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = api.get_opt(name).await.ok().flatten();
        if let Some(obj) = &last
            && check(obj)
        {
            return obj.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {name} to be {what}; last seen: {}\n{}",
                serde_json::to_string_pretty(&last).unwrap_or_default(),
                context()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `name` until it is Ready=True for its current generation.
pub async fn until_ready<K>(api: &Api<K>, name: &str, timeout: Duration, context: Context<'_>) -> K
where
    K: Conditioned + Clone + DeserializeOwned + Serialize + Debug,
{
    let ready = |obj: &K| conditions::is_ready_for_generation(obj);
    until(api, name, "Ready", timeout, ready, context).await
}

/// Polls `name` until its Ready condition carries `reason`.
pub async fn until_reason<K>(
    api: &Api<K>,
    name: &str,
    reason: &str,
    timeout: Duration,
    context: Context<'_>,
) -> K
where
    K: Conditioned + Clone + DeserializeOwned + Serialize + Debug,
{
    let has_reason = |obj: &K| {
        conditions::find(obj.conditions(), conditions::READY).is_some_and(|c| c.reason == reason)
    };
    until(api, name, reason, timeout, has_reason, context).await
}

/// Polls until `name` is gone (deleted, finalizers released).
pub async fn until_gone<K>(api: &Api<K>, name: &str, timeout: Duration, context: Context<'_>)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let deadline = Instant::now() + timeout;
    while api.get_opt(name).await.ok().flatten().is_some() {
        assert!(
            Instant::now() < deadline,
            "{name} was not deleted (finalizer kept?)\n{}",
            context()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The Events about the object `name` in `namespace`: (type, reason) pairs with the full Events.
pub async fn events_of(client: &Client, namespace: &str, name: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    events
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing Events in {namespace}: {e}"))
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

/// Polls until an Event with `reason` about `name` exists.
pub async fn until_event(
    client: &Client,
    namespace: &str,
    name: &str,
    reason: &str,
    timeout: Duration,
    context: Context<'_>,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen: Vec<String> = events_of(client, namespace, name)
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .collect();
        if seen.iter().any(|r| r == reason) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {reason} Event for {name}; saw {seen:?}\n{}",
            context()
        );
        tokio::time::sleep(POLL).await;
    }
}
