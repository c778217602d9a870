//! Catalog lag (`catalogLagMs`): an app or definition added (or a definition's state changed)
//! through the admin API reaches catalog reads only once the change is older than the lag; until
//! then they show the app as it was, or no app at all (see [`super::lag`]). Installs and upgrades
//! go by the catalog they can see: an app it does not show yet is a 404 as for an unknown app, a
//! version it does not show yet is not upgraded to. As for the other lags, a new fault
//! configuration or tenant setting starts with fresh reads.

use std::time::{Duration, Instant};

use super::lag::{History, tracked};
use super::state::{AdminError, App, Tenant};

/// Per app id (lower-cased), the app as it was before each change still within the lag; `None`
/// = not in the catalog then.
pub(crate) type CatalogTrail = History<String, Option<App>>;

impl Tenant {
    /// Runs an admin change of app `id`'s catalog entry, remembering it as it was while `lag` is
    /// on.
    pub fn track_app<T>(
        &mut self,
        id: &str,
        lag: Duration,
        now: Instant,
        change: impl FnOnce(&mut Tenant) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let key = id.to_ascii_lowercase();
        let snapshot = |t: &Tenant| t.app(id).cloned();
        tracked(
            self,
            key,
            (lag, now),
            snapshot,
            |t| &mut t.catalog_trail,
            change,
        )
    }

    /// App `id` as the catalog shows it at `now` under `lag`; `None` = not (yet) in it.
    pub fn catalog_app(&self, id: &str, now: Instant, lag: Duration) -> Option<&App> {
        match self
            .catalog_trail
            .visible(&id.to_ascii_lowercase(), now, lag)
        {
            Some(before) => before.as_ref(),
            None => self.app(id),
        }
    }

    /// The catalog's apps as they show at `now` under `lag`, in catalog order.
    pub fn catalog_apps(&self, now: Instant, lag: Duration) -> impl Iterator<Item = &App> {
        self.apps
            .iter()
            .filter_map(move |a| self.catalog_app(&a.id, now, lag))
    }
}
