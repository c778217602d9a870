//! Which resources reach kube-runtime's runner, and when: a backlog goes a user at a time.
//!
//! When more resources are due than `--concurrency` (every resource at start-up, a mass create),
//! kube-runtime parks the excess in a hash set and takes from it in no particular order. A
//! user's resources then come up minutes apart, each after the previous one's list of the user's
//! installed apps has outlived `--user-snapshot-ttl`, and each reads the list again: one read per
//! resource instead of one per user, at a budget of 30 reads/s for the whole tenant.
//!
//! So the watch's triggers pass through here first. While fewer than `limit` of the resources
//! let through are unfinished, a trigger goes straight on (no added latency); beyond that,
//! triggers wait, grouped by user, users in arrival order, and a user's waiting resources are let
//! through together. They then run side by side: one list of the user's apps serves them all,
//! and one read after their writes verifies them all. The controller reports each finished
//! reconcile back through [`Finished`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use kube::ResourceExt;

use crate::api::TeamsAppInstallation;

/// A resource, by namespace and name (what the controller's outcomes carry).
type Key = (Option<String>, String);

/// Tells the admission that a reconcile it let through has finished (whatever its outcome).
#[derive(Clone)]
pub struct Finished(mpsc::UnboundedSender<Key>);

impl Finished {
    pub fn finished(&self, namespace: Option<&str>, name: &str) {
        // The admission is gone only when the controller stopped.
        let _ = self
            .0
            .unbounded_send((namespace.map(str::to_string), name.to_string()));
    }
}

/// `triggers`, let through at most `limit` unfinished at a time (0: no limit; a user's resources
/// together; errors at once), and the handle the controller reports finished reconciles to.
pub fn by_user<S, E>(triggers: S, limit: usize) -> (ByUser<S>, Finished)
where
    S: Stream<Item = Result<TeamsAppInstallation, E>> + Unpin,
{
    let (tx, rx) = mpsc::unbounded();
    let stream = ByUser {
        triggers,
        ended: false,
        finished: rx,
        limit: if limit == 0 { usize::MAX } else { limit },
        running: HashSet::new(),
        users: VecDeque::new(),
        waiting: HashMap::new(),
        next: VecDeque::new(),
    };
    (stream, Finished(tx))
}

pub struct ByUser<S> {
    triggers: S,
    ended: bool,
    finished: mpsc::UnboundedReceiver<Key>,
    limit: usize,
    /// Let through and not reported finished yet.
    running: HashSet<Key>,
    /// Users with waiting resources, in the order their first one arrived.
    users: VecDeque<String>,
    /// Waiting resources by user; a resource triggered again while it waits waits once.
    waiting: HashMap<String, Vec<TeamsAppInstallation>>,
    /// The user being let through.
    next: VecDeque<TeamsAppInstallation>,
}

impl<S> ByUser<S> {
    fn wait(&mut self, obj: TeamsAppInstallation) {
        // UPNs are case-insensitive in Entra.
        let user = obj.spec.user.to_lowercase();
        let group = self.waiting.entry(user.clone()).or_insert_with(|| {
            self.users.push_back(user);
            Vec::new()
        });
        let key = key(&obj);
        match group.iter_mut().find(|o| key_matches(o, &key)) {
            Some(older) => *older = obj,
            None => group.push(obj),
        }
    }
}

impl<S, E> Stream for ByUser<S>
where
    S: Stream<Item = Result<TeamsAppInstallation, E>> + Unpin,
{
    type Item = Result<TeamsAppInstallation, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        while let Poll::Ready(Some(key)) = this.finished.poll_next_unpin(cx) {
            this.running.remove(&key);
        }
        while !this.ended {
            match this.triggers.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(obj))) => this.wait(obj),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => break,
            }
        }
        loop {
            if let Some(obj) = this.next.pop_front() {
                this.running.insert(key(&obj));
                return Poll::Ready(Some(Ok(obj)));
            }
            if this.running.len() >= this.limit {
                // Woken by `finished`.
                return Poll::Pending;
            }
            let Some(user) = this.users.pop_front() else {
                return if this.ended {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                };
            };
            this.next
                .extend(this.waiting.remove(&user).unwrap_or_default());
        }
    }
}

fn key(obj: &TeamsAppInstallation) -> Key {
    (obj.namespace(), obj.name_any())
}

fn key_matches(obj: &TeamsAppInstallation, key: &Key) -> bool {
    obj.metadata.namespace == key.0 && obj.metadata.name.as_deref() == Some(key.1.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn resource(name: &str, user: &str) -> Result<TeamsAppInstallation, ()> {
        Ok(serde_json::from_value(serde_json::json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppInstallation",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"user": user, "app": {"id": "33333333-3333-3333-3333-333333333333"}},
        }))
        .expect("valid resource"))
    }

    /// What the stream lets through right now, by name.
    fn let_through<S>(admitted: &mut ByUser<S>) -> Vec<String>
    where
        S: Stream<Item = Result<TeamsAppInstallation, ()>> + Unpin,
    {
        let mut names = Vec::new();
        while let Some(Some(Ok(obj))) = admitted.next().now_or_never() {
            names.push(obj.name_any());
        }
        names
    }

    #[test]
    fn a_backlog_goes_a_user_at_a_time_and_a_users_resources_together() {
        let (tx, rx) = mpsc::unbounded();
        // Interleaved users, as a list in another order would bring them.
        for (name, user) in [
            ("a1", "alice@contoso.com"),
            ("b1", "bob@contoso.com"),
            ("a2", "Alice@contoso.com"),
            ("c1", "carol@contoso.com"),
            ("b2", "bob@contoso.com"),
            ("a3", "alice@contoso.com"),
        ] {
            tx.unbounded_send(resource(name, user)).expect("open");
        }
        let (mut admitted, finished) = by_user(rx, 2);
        // alice's three go together, though that is over the limit; bob waits.
        assert_eq!(let_through(&mut admitted), ["a1", "a2", "a3"]);
        finished.finished(Some("ns"), "a1");
        finished.finished(Some("ns"), "a2");
        assert_eq!(let_through(&mut admitted), ["b1", "b2"]);
        finished.finished(Some("ns"), "a3");
        finished.finished(Some("ns"), "b1");
        assert_eq!(let_through(&mut admitted), ["c1"]);
        // Below the limit, a trigger goes straight on.
        finished.finished(Some("ns"), "b2");
        finished.finished(Some("ns"), "c1");
        tx.unbounded_send(resource("d1", "dave@contoso.com"))
            .expect("open");
        assert_eq!(let_through(&mut admitted), ["d1"]);
    }

    #[test]
    fn a_resource_triggered_again_while_it_waits_waits_once() {
        let (tx, rx) = mpsc::unbounded();
        for name in ["a1", "b1", "b1", "a2"] {
            let user = if name.starts_with('a') {
                "alice"
            } else {
                "bob"
            };
            tx.unbounded_send(resource(name, user)).expect("open");
        }
        let (mut admitted, finished) = by_user(rx, 1);
        assert_eq!(let_through(&mut admitted), ["a1", "a2"]);
        finished.finished(Some("ns"), "a1");
        finished.finished(Some("ns"), "a2");
        assert_eq!(let_through(&mut admitted), ["b1"]);
    }
}
