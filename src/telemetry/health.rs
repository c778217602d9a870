//! What `/readyz` answers: whether this process is doing its job right now.
//!
//! Without leader election a replica is ready once the controller's cache of
//! `TeamsAppInstallation`s has synced (before that it would act on a partial view). With leader
//! election, the leader is ready once its cache synced, and a standby is ready while it takes
//! part in the election: it is healthy, only waiting — marking it unready would make a rolling
//! update wait forever on a replica that is not supposed to reconcile.

use std::sync::Mutex;
use std::sync::PoisonError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not yet reconciling (start-up, or leader election not joined yet).
    Starting,
    /// Running the controller; `synced` once its cache is complete.
    Reconciling { synced: bool },
    /// In the leader election, waiting for the Lease.
    Standby,
    /// Shutting down: no longer ready for anything.
    Stopping,
}

/// The readiness state, shared by the controller, the leader election and the HTTP server.
#[derive(Debug)]
pub struct Health {
    role: Mutex<Role>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            role: Mutex::new(Role::Starting),
        }
    }
}

impl Health {
    fn set(&self, role: Role) {
        *self.role.lock().unwrap_or_else(PoisonError::into_inner) = role;
    }

    fn get(&self) -> Role {
        *self.role.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The controller started; its cache is not complete yet.
    pub fn controller_started(&self) {
        self.set(Role::Reconciling { synced: false });
    }

    /// The controller's cache has synced.
    pub fn caches_synced(&self) {
        if let Role::Reconciling { .. } = self.get() {
            self.set(Role::Reconciling { synced: true });
        }
    }

    /// Waiting for the leader Lease.
    pub fn standby(&self) {
        self.set(Role::Standby);
    }

    pub fn stopping(&self) {
        self.set(Role::Stopping);
    }

    /// `Ok` when ready, otherwise why not (shown in `/readyz`'s body).
    pub fn readiness(&self) -> Result<&'static str, &'static str> {
        match self.get() {
            Role::Starting => Err("starting: not reconciling yet"),
            Role::Reconciling { synced: false } => Err("the resource cache has not synced yet"),
            Role::Reconciling { synced: true } => Ok("reconciling"),
            Role::Standby => Ok("standby: waiting for the leader Lease"),
            Role::Stopping => Err("shutting down"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_once_synced_or_standing_by() {
        let h = Health::default();
        assert!(h.readiness().is_err());
        h.caches_synced(); // not reconciling yet: ignored
        assert!(h.readiness().is_err());
        h.controller_started();
        assert!(h.readiness().is_err());
        h.caches_synced();
        assert!(h.readiness().is_ok());
        h.standby();
        assert!(h.readiness().is_ok());
        h.stopping();
        assert!(h.readiness().is_err());
    }
}
