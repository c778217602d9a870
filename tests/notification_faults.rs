//! Drift in seconds (issue 22) when Graph's notifications go wrong, end to end: real
//! kube-apiserver and etcd, graph-sim, the operator binary receiving on
//! `--notification-addr`. How fast a change made elsewhere is corrected with notifications and
//! without (the figures are printed), notifications Graph drops, a subscription whose short
//! lifetime must be renewed, requests to the receiver that are not Graph's, and an app removed
//! right after the operator installed it. Every assertion on Graph is on the simulator's
//! request and delivery logs.

mod scenario;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use graph_sim::{LifecycleEvent, NotificationRecord, RequestRecord};
use jiff::Timestamp;
use scenario::{ALICE, BOT, Scenario, TENANT, default_seed, is_ready, seed_with};
use serde_json::json;
use support::operator::{free_port, metric};
use support::wait;

const WAIT: Duration = Duration::from_secs(90);

/// `--notification-addr` and `--notification-url` on a free local port.
fn receiver() -> (String, String) {
    let port = free_port();
    (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    )
}

/// The operator's flags: `extra`, plus the receiver's when `notified`.
fn flags<'a>(receiver: &'a (String, String), notified: bool, extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = extra.to_vec();
    if notified {
        flags.extend([
            "--notification-addr",
            receiver.0.as_str(),
            "--notification-url",
            receiver.1.as_str(),
        ]);
    }
    flags
}

/// A tenant of `n` users (`user00@contoso.com`, …), each with Contoso Bot 1.0.0 installed.
fn users_seed(n: usize) -> String {
    let users: Vec<String> = (0..n)
        .map(|i| format!("{{id: {}, userPrincipalName: {}}}", user_id(i), upn(i)))
        .collect();
    let installations: Vec<String> = (0..n)
        .map(|i| format!("{{user: {}, app: {BOT}, version: \"1.0.0\"}}", upn(i)))
        .collect();
    seed_with(&users, &installations)
}

fn upn(i: usize) -> String {
    format!("user{i:02}@contoso.com")
}

fn user_id(i: usize) -> String {
    format!("22222222-2222-2222-2222-{i:012}")
}

/// Starts a world of `n` users, one resource each for Contoso Bot, all Ready; with
/// notifications, once the app's subscription is made.
async fn users_world(prefix: &str, n: usize, flags: &[&str]) -> Scenario {
    let s = Scenario::start_with(prefix, &users_seed(n), flags).await;
    for i in 0..n {
        s.create(
            &format!("bot-user{i:02}"),
            json!({"user": upn(i), "app": {"id": BOT}}),
        )
        .await;
    }
    for i in 0..n {
        s.wait_for(&format!("bot-user{i:02}"), "Ready", WAIT, is_ready)
            .await;
    }
    s
}

/// The default tenant, notifications on and the drift check an hour away, with one resource
/// (`bot-<user>`) for `user@contoso.com`'s Contoso Bot, Ready with the app installed.
async fn notified_world(prefix: &str, rx: &(String, String), user: &str) -> Scenario {
    let flags = flags(rx, true, &["--default-interval", "1h"]);
    let s = Scenario::start_with(prefix, &default_seed(), &flags).await;
    let name = format!("bot-{user}");
    let spec = json!({"user": format!("{user}@contoso.com"), "app": {"id": BOT}});
    s.create(&name, spec).await;
    let installed = |o: &_| is_ready(o) && scenario::installed_version(o).is_some();
    s.wait_for(&name, "Ready and installed", WAIT, installed)
        .await;
    s
}

/// Polls the simulator's logs (or anything) until `probe` yields.
async fn until<T>(s: &Scenario, what: &str, probe: impl AsyncFnMut() -> Option<T>) -> T {
    wait::until_found(what, WAIT, probe, &|| s.log_context()).await
}

/// The subscription the operator made, once Graph has it: its id and expiry.
async fn subscription(s: &Scenario) -> (String, Timestamp) {
    until(s, "a subscription", async || {
        let listed = s.subscriptions().await;
        let sub = listed.first()?;
        let id = sub["id"].as_str()?.to_string();
        let expiry = sub["expirationDateTime"].as_str()?.parse().ok()?;
        Some((id, expiry))
    })
    .await
}

/// Graph calls on `user`'s installed apps, as the simulator answered them.
fn calls_for(s: &Scenario, user: &str) -> Vec<RequestRecord> {
    s.sim
        .requests()
        .into_iter()
        .filter(|r| {
            r.user
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(user))
        })
        .filter(|r| r.path.contains("/teamwork/installedApps"))
        .collect()
}

/// The successful installs for `user` made after `since`.
fn installs_since(s: &Scenario, user: &str, since: Timestamp) -> Vec<Timestamp> {
    calls_for(s, user)
        .into_iter()
        .filter(|r| r.method == "POST" && r.status == 201 && r.time > since)
        .map(|r| r.time)
        .collect()
}

/// Removes the app for user `i` as the user would, returning when.
fn remove_for(s: &Scenario, i: usize) -> Timestamp {
    let at = Timestamp::now();
    s.sim
        .uninstall_for_user(TENANT, &upn(i), BOT)
        .unwrap_or_else(|e| panic!("uninstall for {}: {e:?}", upn(i)));
    at
}

/// Waits for user `i`'s app to be installed again after `removed`: the time it took.
async fn reinstalled(s: &Scenario, i: usize, removed: Timestamp) -> Duration {
    let installed = until(s, &format!("{} reinstalled", upn(i)), async || {
        installs_since(s, &upn(i), removed).first().copied()
    })
    .await;
    Duration::try_from(installed.duration_since(removed)).expect("installed after the removal")
}

/// Each of the `n` users had their app installed exactly once (the correction), no more.
fn one_install_each(s: &Scenario, n: usize) {
    for i in 0..n {
        let posts = installs_since(s, &upn(i), Timestamp::UNIX_EPOCH);
        assert_eq!(posts.len(), 1, "{}: {posts:?}\n{}", upn(i), s.log_context());
    }
}

/// The nearest-rank `q` quantile of `samples` (0 < q ≤ 1).
fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn figures(label: &str, samples: &[Duration]) -> (Duration, Duration) {
    let (p50, p99) = (quantile(samples, 0.5), quantile(samples, 0.99));
    println!(
        "{label}: change → correcting install over {} users: p50 {} ms, p99 {} ms (min {} ms, max {} ms)",
        samples.len(),
        p50.as_millis(),
        p99.as_millis(),
        quantile(samples, 0.0).as_millis(),
        quantile(samples, 1.0).as_millis(),
    );
    (p50, p99)
}

/// The user (index) a change notification's resource names, by its installation id.
fn user_of(n: &NotificationRecord, users: usize) -> Option<usize> {
    let resource = n.resource.as_deref()?;
    let id = resource
        .rsplit_once("installations('")?
        .1
        .strip_suffix("')")?;
    let (user, _app) = graph_sim::ids::parse_installation_id(id)?;
    (0..users).find(|&i| user_id(i).eq_ignore_ascii_case(&user))
}

const USERS: usize = 12;

#[tokio::test]
async fn a_change_made_elsewhere_is_corrected_in_seconds_with_notifications_and_within_the_interval_without()
 {
    // With notifications, the drift check an hour away: only a notification explains a fix.
    let rx = receiver();
    let on = users_world(
        "latency-on",
        USERS,
        &flags(&rx, true, &["--default-interval", "1h"]),
    )
    .await;
    subscription(&on).await;
    let mut notified = Vec::new();
    for i in 0..USERS {
        let removed = remove_for(&on, i);
        notified.push(reinstalled(&on, i, removed).await);
    }
    let (_, p99) = figures("notifications on, interval 1h", &notified);
    assert!(
        p99 < Duration::from_secs(5),
        "p99 {p99:?} of {notified:?}\n{}",
        on.log_context()
    );
    one_install_each(&on, USERS);
    drop(on);

    // Without them, a 20 s interval: each removal waits for its user's next drift check. The
    // removals are spread over the interval, so the checks they wait for are too.
    let interval = Duration::from_secs(20);
    let off = users_world(
        "latency-off",
        USERS,
        &flags(&rx, false, &["--default-interval", "20s"]),
    )
    .await;
    let step = interval / USERS as u32;
    let mut removals = Vec::new();
    for i in 0..USERS {
        removals.push(remove_for(&off, i));
        tokio::time::sleep(step).await;
    }
    let mut polled = Vec::new();
    for (i, removed) in removals.into_iter().enumerate() {
        polled.push(reinstalled(&off, i, removed).await);
    }
    let (p50, p99) = figures("notifications off, interval 20s", &polled);
    // A drift check lands on the user's slot, half an interval to one and a half after the
    // last one (a busy machine adds a little).
    assert!(
        p99 <= interval * 3 / 2 + Duration::from_secs(5),
        "p99 {p99:?} of {polled:?}"
    );
    assert!(p50 > Duration::from_secs(1), "{polled:?}");
    one_install_each(&off, USERS);
}

#[tokio::test]
async fn with_a_fifth_of_notifications_dropped_every_user_is_corrected_once_and_missed_rereads_them_all()
 {
    const N: usize = 10;
    let resync = Duration::from_secs(30);
    let rx = receiver();
    let extra = ["--default-interval", "10s", "--notification-resync", "30s"];
    let s = users_world("dropped", N, &flags(&rx, true, &extra)).await;
    let (id, _) = subscription(&s).await;
    // Every resource's next check after the subscription is healthy moves it to the resync.
    tokio::time::sleep(Duration::from_secs(16)).await;

    // Graph loses a fifth of its change notifications (the same ones every run).
    s.set_faults(json!({"notificationDropRate": 0.2, "notificationDropSeed": 7}))
        .await;
    let removals: Vec<Timestamp> = (0..N).map(|i| remove_for(&s, i)).collect();
    let mut took = Vec::new();
    for (i, removed) in removals.iter().enumerate() {
        took.push(reinstalled(&s, i, *removed).await);
    }

    // Which users' `deleted` notifications Graph sent, and which it dropped.
    let fates: BTreeMap<usize, String> = (s.sim.notifications().into_iter())
        .filter(|n| n.change_type.as_deref() == Some("deleted"))
        .filter_map(|n| Some((user_of(&n, N)?, n.outcome)))
        .collect();
    assert_eq!(fates.len(), N, "a deleted notification per user: {fates:?}");
    let (dropped, sent): (Vec<usize>, Vec<usize>) = (0..N).partition(|i| fates[i] == "dropped");
    assert!(
        !dropped.is_empty() && !sent.is_empty(),
        "the seed drops some and not all: {fates:?}"
    );
    assert!(sent.iter().all(|i| fates[i] == "delivered"), "{fates:?}");
    let pick = |users: &[usize]| users.iter().map(|&i| took[i]).collect::<Vec<_>>();
    let (by_notification, by_resync) = (pick(&sent), pick(&dropped));
    figures("20% dropped, notified", &by_notification);
    figures("20% dropped, lost (resync 30s)", &by_resync);
    // Notified users are corrected at once; the others by the safety drift check, on their
    // user's slot of the resync period (at most one and a half of it after their last check).
    let slowest_notified = quantile(&by_notification, 1.0);
    assert!(
        slowest_notified < Duration::from_secs(5),
        "{by_notification:?}\n{}",
        s.log_context()
    );
    let slowest_lost = quantile(&by_resync, 1.0);
    assert!(slowest_lost <= resync * 3 / 2, "{by_resync:?}");

    // The reinstalls' own notifications echo the operator's writes: no second install.
    tokio::time::sleep(Duration::from_secs(3)).await;
    one_install_each(&s, N);

    // Graph says it missed notifications: every user the subscription covers is read again at
    // once, not at the next resync.
    let before = Timestamp::now();
    s.sim
        .send_lifecycle(&id, LifecycleEvent::Missed)
        .expect("the missed lifecycle event");
    let last_read = until(&s, "every user re-read after missed", async || {
        let mut latest = before;
        for i in 0..N {
            let read = calls_for(&s, &upn(i))
                .into_iter()
                .find(|r| r.method == "GET" && r.time > before)?;
            latest = latest.max(read.time);
        }
        Some(latest)
    })
    .await;
    let all_read = Duration::try_from(last_read.duration_since(before)).expect("after");
    println!(
        "missed: all {N} covered users re-read within {} ms of the lifecycle event (resync {}s)",
        all_read.as_millis(),
        resync.as_secs()
    );
    let delivered = s
        .sim
        .notifications()
        .into_iter()
        .find(|n| n.lifecycle_event.as_deref() == Some("missed"))
        .map(|n| n.status);
    assert_eq!(delivered, Some(Some(202)), "the receiver took the event");
    assert!(
        all_read < Duration::from_secs(10),
        "{all_read:?}\n{}",
        s.log_context()
    );
}

#[tokio::test]
async fn a_subscription_of_a_minute_is_renewed_before_it_expires_and_still_notifies_after() {
    let rx = receiver();
    let mut s = Scenario::start_with("renewal", &default_seed(), &[]).await;
    // Graph grants a minute at most (graph-sim's smallest): renewals come every 40 s.
    s.set_faults(json!({"subscriptionLifetimeCapMinutes": 1}))
        .await;
    s.start_operator(&flags(&rx, true, &["--default-interval", "1h"]));
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for("bot-alice", "Ready", WAIT, is_ready).await;
    let (id, first_expiry) = subscription(&s).await;

    let renewed = until(&s, "the subscription renewed", async || {
        (s.sim.requests().into_iter())
            .find(|r| r.method == "PATCH" && r.path.ends_with(&format!("/subscriptions/{id}")))
    })
    .await;
    println!(
        "renewal: PATCH {} s before the first expiry, answered {}",
        first_expiry.duration_since(renewed.time).as_secs(),
        renewed.status
    );
    assert_eq!(renewed.status, 200);
    assert!(
        renewed.time < first_expiry,
        "renewed at {} after the expiry {first_expiry}\n{}",
        renewed.time,
        s.log_context()
    );

    // Past the first expiry, alice removes the app: the renewed subscription tells.
    let wait = first_expiry.duration_since(Timestamp::now()) + jiff::SignedDuration::from_secs(3);
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    let removed = Timestamp::now();
    s.sim
        .uninstall_for_user(TENANT, ALICE, BOT)
        .expect("uninstall for alice");
    let took = until(&s, "alice's app reinstalled", async || {
        let post = installs_since(&s, "alice@contoso.com", removed);
        post.first().map(|t| t.duration_since(removed))
    })
    .await;
    let notice = (s.sim.notifications().into_iter())
        .find(|n| n.change_type.as_deref() == Some("deleted"))
        .expect("the deleted notification");
    assert_eq!(
        (notice.subscription_id.as_str(), notice.outcome.as_str()),
        (id.as_str(), "delivered")
    );
    println!(
        "renewal: a removal {} s after the first expiry corrected in {} ms",
        removed.duration_since(first_expiry).as_secs(),
        took.as_millis()
    );
    assert!(took < jiff::SignedDuration::from_secs(5), "{took:?}");
    let creates = (s.sim.requests().into_iter())
        .filter(|r| r.method == "POST" && r.path.ends_with("/subscriptions"))
        .count();
    assert_eq!(creates, 1, "one subscription, renewed, never recreated");
}

/// The status a POST to `path` declaring a body of `length` bytes is answered with, before it
/// sends any: the receiver refuses an oversized body on its `Content-Length`, without reading
/// it. (Sending the body as well races the refusal: a server that closes with bytes unread
/// resets the connection, and the answer may be lost.)
async fn declaring(addr: &str, path: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to the receiver at {addr}: {e}"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("request sent");
    let mut answer = vec![0; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut answer))
        .await
        .expect("the receiver answers before the body")
        .expect("the answer is read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

#[tokio::test]
async fn requests_that_are_not_graphs_are_refused_counted_and_cost_no_graph_read() {
    let rx = receiver();
    let s = notified_world("hostile", &rx, "alice").await;
    let (id, _) = subscription(&s).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = Timestamp::now();

    let http = reqwest::Client::new();
    let post = async |path: &str, body: reqwest::Body| {
        http.post(format!("{}{path}", rx.1))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .status()
            .as_u16()
    };
    let installation = graph_sim::ids::installation_id(ALICE, BOT);
    let change = |subscription: &str, client_state: &str| -> reqwest::Body {
        json!({"value": [{
            "subscriptionId": subscription, "clientState": client_state, "tenantId": TENANT,
            "changeType": "deleted",
            "resource": format!("appCatalogs/teamsApps('{BOT}')/installations('{installation}')"),
        }]})
        .to_string()
        .into()
    };
    let missed = |client_state: &str| -> reqwest::Body {
        json!({"value": [{
            "subscriptionId": id, "clientState": client_state, "tenantId": TENANT,
            "lifecycleEvent": "missed",
        }]})
        .to_string()
        .into()
    };
    let answers = [
        (
            "a change, wrong clientState",
            post("/graph/notifications", change(&id, "guessed")).await,
            403,
        ),
        (
            "a change, unknown subscription",
            post(
                "/graph/notifications",
                change("7ac50e0f-4526-44bc-8e75-834c16143e5d", "guessed"),
            )
            .await,
            403,
        ),
        (
            "missed, wrong clientState",
            post("/graph/lifecycle", missed("guessed")).await,
            403,
        ),
        (
            "2 MiB declared",
            declaring(&rx.0, "/graph/notifications", 2 << 20).await,
            413,
        ),
        (
            "not JSON",
            post("/graph/notifications", "<xml/>".into()).await,
            400,
        ),
    ];
    for (what, got, want) in answers {
        assert_eq!(got, want, "{what}");
    }
    // The whole 2 MiB sent as well: refused on its length, unread, so the client sees the 413
    // or a connection reset under its feet.
    let sent = (http.post(format!("{}/graph/notifications", rx.1)))
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(matches!(sent, Ok(413) | Err(_)), "{sent:?}");

    // Nothing was acted on: no read of anyone's apps, no lifecycle handling.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let reads: Vec<RequestRecord> = (s.sim.requests().into_iter())
        .filter(|r| r.time > before && r.user.is_some())
        .collect();
    assert!(reads.is_empty(), "{reads:?}\n{}", s.log_context());

    let page = s.operator().metrics().await;
    let received = |kind: &str, result: &str| {
        let series = format!(
            r#"teams_app_operator_notifications_received_total{{kind="{kind}",result="{result}"}}"#
        );
        metric(&page, &series).unwrap_or_else(|| panic!("no {series} in\n{page}"))
    };
    let counted = [
        received("notification", "wrong_client_state"),
        received("notification", "unknown_subscription"),
        received("request", "too_large"),
        received("request", "unreadable"),
        received("change", "accepted"),
        received("lifecycle", "accepted"),
    ];
    println!(
        "hostile: refusals counted {counted:?} (wrong clientState, unknown subscription, too large, unreadable; then accepted changes, lifecycle); the whole 2 MiB body got {}",
        sent.map_or_else(|e| format!("a reset ({e})"), |status| status.to_string())
    );
    assert_eq!(counted, [2.0, 1.0, 2.0, 1.0, 0.0, 0.0], "{page}");
}

#[tokio::test]
async fn an_app_removed_right_after_the_operator_installed_it_is_back_within_seconds() {
    let rx = receiver();
    // Bob has nothing: the operator installs the app for him.
    let s = notified_world("echo", &rx, "bob").await;
    subscription(&s).await;
    let wrote = installs_since(&s, "bob@contoso.com", Timestamp::UNIX_EPOCH);
    assert_eq!(wrote.len(), 1, "{wrote:?}");

    // Bob removes it at once, well inside the minute in which notifications about him could be
    // the echo of that install: a removal is no echo of an install.
    let removed = Timestamp::now();
    s.sim
        .uninstall_for_user(TENANT, "bob@contoso.com", BOT)
        .expect("uninstall for bob");
    let since_write = removed.duration_since(wrote[0]);
    let took = until(&s, "bob's app installed again", async || {
        let post = installs_since(&s, "bob@contoso.com", removed);
        post.first().map(|t| t.duration_since(removed))
    })
    .await;
    println!(
        "echo window: a removal {} s after the operator's install corrected in {} ms",
        since_write.as_secs(),
        took.as_millis()
    );
    assert!(since_write < jiff::SignedDuration::from_secs(60));
    assert!(took < jiff::SignedDuration::from_secs(5), "{took:?}");
}

/// `missed` re-reads the covered users' apps even when their shared list was read a moment
/// ago: with the default 30 s `--user-snapshot-ttl`, a change Graph failed to notify is put right
/// at once, not at the resync (12 h) or the interval (1 h).
#[tokio::test]
async fn missed_rereads_a_user_whose_list_was_read_a_moment_ago() {
    let rx = receiver();
    let extra = ["--default-interval", "1h", "--user-snapshot-ttl", "30s"];
    let s = Scenario::start_with("missed-ttl", &default_seed(), &flags(&rx, true, &extra)).await;
    let installed = |o: &_| is_ready(o) && scenario::installed_version(o).is_some();
    s.create(
        "bot-alice",
        json!({"user": "alice@contoso.com", "app": {"id": BOT}}),
    )
    .await;
    s.wait_for("bot-alice", "Ready and installed", WAIT, installed)
        .await;
    let (id, _) = subscription(&s).await;
    // Graph loses every notification from now on; alice removes the app and Graph says it
    // missed some.
    s.set_faults(json!({"notificationDropRate": 1.0})).await;
    let removed = Timestamp::now();
    s.sim
        .uninstall_for_user(TENANT, ALICE, BOT)
        .expect("uninstall for alice");
    s.sim
        .send_lifecycle(&id, LifecycleEvent::Missed)
        .expect("missed sent");
    let installed = until(&s, "alice's app installed again", async || {
        installs_since(&s, "alice@contoso.com", removed)
            .first()
            .copied()
    })
    .await;
    let took = Duration::try_from(installed.duration_since(removed)).expect("after the removal");
    println!("missed, list read a moment before: removed → installed again in {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
