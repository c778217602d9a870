//! Directory lag (`directoryLagMs`): a change to a user (properties, plans, soft deletion,
//! restore) or to a group's members shows in directory reads only once it is older than the lag;
//! until then reads see the object as it was (see [`super::lag`]). Only directory reads lag —
//! Teams calls and the admin API act on the true state — and only changes made under the knobs in
//! force lag: a new fault configuration or tenant setting starts with fresh reads, as for
//! `readLagMs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::groups::{DirectoryState, Member, closure};
use super::lag::{History, tracked};
use super::state::{AdminError, Tenant, User};

/// The users and group memberships as they were before each change still within the lag.
#[derive(Default)]
pub(crate) struct DirectoryTrail {
    users: History<usize, User>,
    groups: History<usize, Vec<Member>>,
}

impl DirectoryTrail {
    /// Forgets every pending change: reads show the true state.
    pub fn clear(&mut self) {
        self.users.clear();
        self.groups.clear();
    }
}

impl Tenant {
    /// Runs an admin change of user `u`, remembering the user as it was while `lag` is on.
    pub fn track_user<T>(
        &mut self,
        u: usize,
        lag: Duration,
        now: Instant,
        change: impl FnOnce(&mut Tenant) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let snapshot = |t: &Tenant| t.users[u].clone();
        tracked(
            self,
            u,
            (lag, now),
            snapshot,
            |t| &mut t.trail.users,
            change,
        )
    }

    /// Runs an admin change of group `g`'s members, remembering them as they were while `lag` is
    /// on.
    pub fn track_group<T>(
        &mut self,
        g: usize,
        lag: Duration,
        now: Instant,
        change: impl FnOnce(&mut Tenant) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let snapshot = |t: &Tenant| t.groups[g].members.clone();
        tracked(
            self,
            g,
            (lag, now),
            snapshot,
            |t| &mut t.trail.groups,
            change,
        )
    }

    /// The directory as a read at `now` sees it under `lag`.
    pub fn directory_at(&self, now: Instant, lag: Duration) -> DirectoryView<'_> {
        DirectoryView {
            tenant: self,
            now,
            lag,
        }
    }

    /// The users a read at `now` finds in group `g` through any depth of nesting, each once,
    /// sorted by id: the cached true closure unless a membership or user change is still within
    /// the lag.
    pub fn transitive_users_at(&mut self, g: usize, now: Instant, lag: Duration) -> Arc<[usize]> {
        let trail = &self.trail;
        let lagging =
            !lag.is_zero() && (trail.users.pending(now, lag) || trail.groups.pending(now, lag));
        if lagging {
            closure(&self.directory_at(now, lag), g).into()
        } else {
            self.transitive_users(g)
        }
    }
}

/// Users and memberships as a directory read sees them.
pub(crate) struct DirectoryView<'t> {
    tenant: &'t Tenant,
    now: Instant,
    lag: Duration,
}

impl DirectoryState for DirectoryView<'_> {
    fn groups(&self) -> usize {
        self.tenant.groups.len()
    }

    fn users(&self) -> usize {
        self.tenant.users.len()
    }

    fn members(&self, g: usize) -> &[Member] {
        match self.tenant.trail.groups.visible(&g, self.now, self.lag) {
            Some(before) => before,
            None => &self.tenant.groups[g].members,
        }
    }

    fn user(&self, u: usize) -> &User {
        self.tenant
            .trail
            .users
            .visible(&u, self.now, self.lag)
            .unwrap_or(&self.tenant.users[u])
    }
}
