//! Users' installed apps, read once per user and shared by every resource that names the user.
//!
//! A tenant's resources are typically a few apps for each of many users. One unfiltered list of
//! a user's installed apps answers for all of that user's resources, where a filtered read per
//! resource would cost one read each — and Graph's installedApps read budget (30/s per tenant)
//! is what bounds a pass over a tenant. With `--user-snapshot-ttl 0s` each resource reads its
//! own app, filtered.
//!
//! Writes for a user (install, upgrade) are bracketed by [`InstalledApps::writing`]: while one
//! is under way, reads of the user's apps wait for it, and a list read before the user's last
//! write is never used again. So when a user's resources write side by side, the one read after
//! all their writes verifies every one of them (Graph's budget is per call: a verify read per
//! write would cost up to one more read per resource) and serves the user's other resources too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedRwLockReadGuard, RwLock};
use tokio::time::Instant;

use crate::graph::{AppRef, GraphClient, GraphError, Installation};

use super::shared_read::SharedRead;

pub struct InstalledApps {
    ttl: Duration,
    lists: SharedRead<String, Arc<Vec<Installation>>>,
    /// Only users written for (or told of) recently.
    writes: Mutex<HashMap<String, Arc<Writes>>>,
}

/// One user's writes: each one under way holds `under_way` (shared); reads take it exclusively
/// for a moment, i.e. wait for all of them.
#[derive(Default)]
struct Writes {
    under_way: Arc<RwLock<()>>,
    last_done: Mutex<Option<Instant>>,
    /// When Graph last told of a change to the user's apps made elsewhere (a change
    /// notification): a list read before it is not used again either.
    noticed: Mutex<Option<Instant>>,
}

/// A write for a user under way: reads of the user's apps wait until it is dropped, and from
/// then on only a list read afterwards is used.
pub struct Writing {
    writes: Arc<Writes>,
    _under_way: OwnedRwLockReadGuard<()>,
}

impl Drop for Writing {
    fn drop(&mut self) {
        // Before `_under_way` is released, so a waiting read sees it.
        *lock(&self.writes.last_done) = Some(Instant::now());
    }
}

impl InstalledApps {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            lists: SharedRead::new(ttl),
            writes: Mutex::default(),
        }
    }

    /// The user's installation of the catalog app `catalog_app_id`, from a list at most `ttl`
    /// old, read after the user's last write — or read afresh when `refresh`. Waits for the
    /// user's writes under way.
    pub async fn find(
        &self,
        graph: &GraphClient,
        user: &str,
        catalog_app_id: &str,
        refresh: bool,
    ) -> Result<Option<Installation>, GraphError> {
        if self.ttl.is_zero() {
            let app = AppRef::Id(catalog_app_id.to_string());
            return graph.find_installation(user, &app).await;
        }
        let last_write = self.settled(graph.tenant_id(), user).await;
        let since = if refresh {
            Some(Instant::now())
        } else {
            last_write
        };
        let list = self
            .lists
            .get_since(&key(graph.tenant_id(), user), since, || async {
                graph.list_installations(user).await.map(Arc::new)
            })
            .await?;
        Ok(list
            .iter()
            .find(|i| i.catalog_app_id.eq_ignore_ascii_case(catalog_app_id))
            .cloned())
    }

    /// The operator is about to write for `user` in `tenant`; hold the returned guard until
    /// Graph answered.
    pub async fn writing(&self, tenant: &str, user: &str) -> Writing {
        let writes = self.writes_of(tenant, user);
        let under_way = writes.under_way.clone().read_owned().await;
        Writing {
            writes,
            _under_way: under_way,
        }
    }

    /// The user's entry, made when missing. Users come and go: only entries in use or whose
    /// last write or notice a cached list could still predate are kept, so memory follows the
    /// recent writes, not all ever made.
    fn writes_of(&self, tenant: &str, user: &str) -> Arc<Writes> {
        let mut all = lock(&self.writes);
        if all.len() >= 1024 && all.len().is_power_of_two() {
            let ttl = self.ttl;
            all.retain(|_, w| Arc::strong_count(w) > 1 || w.recent(ttl));
        }
        all.entry(key(tenant, user)).or_default().clone()
    }

    /// Waits for the user's writes under way; when the last of the user's writes finished, or
    /// a change made elsewhere was noticed, whichever came later.
    async fn settled(&self, tenant: &str, user: &str) -> Option<Instant> {
        let writes = lock(&self.writes).get(&key(tenant, user)).cloned()?;
        drop(writes.under_way.write().await);
        let done = *lock(&writes.last_done);
        done.max(*lock(&writes.noticed))
    }

    /// Graph told of a change to the user's apps (a change notification): from now on only a
    /// list read afterwards is used. Unless the operator itself wrote for the user within
    /// `echo_window` or is writing now: the notification is then most likely that write's own,
    /// which the write's verify read covers — no extra read (returns false, marking nothing).
    pub fn changed_elsewhere(&self, tenant: &str, user: &str, echo_window: Duration) -> bool {
        let writes = self.writes_of(tenant, user);
        let writing = writes.under_way.try_write().is_err();
        let own = lock(&writes.last_done).is_some_and(|done| done.elapsed() < echo_window);
        if writing || own {
            return false;
        }
        *lock(&writes.noticed) = Some(Instant::now());
        true
    }

    /// `user`'s apps may have changed elsewhere, unannounced: a list read before now is not
    /// used again.
    pub fn noticed(&self, tenant: &str, user: &str) {
        *lock(&self.writes_of(tenant, user).noticed) = Some(Instant::now());
    }
}

impl Writes {
    /// Whether a list read at most `ttl` ago could predate this user's last write or notice.
    fn recent(&self, ttl: Duration) -> bool {
        let recent = |at: &Mutex<Option<Instant>>| lock(at).is_some_and(|t| t.elapsed() < ttl);
        recent(&self.last_done) || recent(&self.noticed)
    }
}

/// A user of a tenant (two tenants' users are never one, whatever their names). UPNs are
/// case-insensitive in Entra.
fn key(tenant: &str, user: &str) -> String {
    format!("{}/{}", tenant.to_lowercase(), user.to_lowercase())
}

/// The guarded data stays consistent even if a holder panicked (an instant, a map of handles).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
