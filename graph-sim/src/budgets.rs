//! Graph's throttling budgets. Graph limits each app in each tenant per *class* of Teams call —
//! reading installed apps, reading the catalog, installing, uninstalling, everything else — each
//! in requests per second; directory reads (group members, users) are a service of their own
//! with a limit of their own, and it counts every request, the throttled ones too: a client that
//! keeps hammering during a throttle stays throttled. A `$batch` saves round trips, not quota;
//! each item counts in its own class.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::Method;
use serde::{Deserialize, Serialize};

use super::path;

/// Requests per second per tenant for each class (`budgets` of `PUT /_sim/faults`); absent or 0
/// = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Budgets {
    /// `GET …/installedApps…` (list, get one, navigations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_apps_read: Option<u32>,
    /// `GET /appCatalogs…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_read: Option<u32>,
    /// `POST /users/{user}/teamwork/installedApps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<u32>,
    /// `DELETE /users/{user}/teamwork/installedApps/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<u32>,
    /// Every other call, upgrade among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<u32>,
    /// Directory reads: `GET /groups/…` (a group's transitive members) and `GET /users/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_read: Option<u32>,
}

impl Budgets {
    /// Graph's documented limits per app per tenant: 30/s for each Teams class, 15/s for
    /// uninstalls. Directory reads stay unlimited: Entra ID meters them in resource units per
    /// app and tenant (a cost per request that depends on the query), not as a request rate, so
    /// there is no documented number to put here; set `directoryRead` to model one.
    pub const GRAPH: Budgets = Budgets {
        installed_apps_read: Some(30),
        catalog_read: Some(30),
        install: Some(30),
        delete: Some(15),
        other: Some(30),
        directory_read: None,
    };

    /// The limit of a class; `None` = unlimited.
    fn limit(&self, class: Class) -> Option<u32> {
        let budget = match class {
            Class::InstalledAppsRead => self.installed_apps_read,
            Class::CatalogRead => self.catalog_read,
            Class::Install => self.install,
            Class::Delete => self.delete,
            Class::Other => self.other,
            Class::DirectoryRead => self.directory_read,
        };
        budget.filter(|n| *n > 0)
    }
}

/// The budget a Graph call is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    InstalledAppsRead,
    CatalogRead,
    Install,
    Delete,
    Other,
    DirectoryRead,
}

impl Class {
    /// The class's key in `budgets` (and in the request log).
    pub fn as_str(self) -> &'static str {
        match self {
            Class::InstalledAppsRead => "installedAppsRead",
            Class::CatalogRead => "catalogRead",
            Class::Install => "install",
            Class::Delete => "delete",
            Class::Other => "other",
            Class::DirectoryRead => "directoryRead",
        }
    }

    /// `path` is the raw path after the version prefix, as [`path::segments`] reads it; a path
    /// Graph would refuse counts as `Other` (it is still a call).
    pub fn of(method: &Method, raw_path: &str) -> Class {
        let segments = path::segments(raw_path).unwrap_or_default();
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let installed_apps = |u: &str, tw: &str, apps: &str| {
            is(u, "users") && is(tw, "teamwork") && is(apps, "installedApps")
        };
        match (method, s.as_slice()) {
            (&Method::GET, [u, _, tw, apps, ..]) if installed_apps(u, tw, apps) => {
                Class::InstalledAppsRead
            }
            (&Method::GET, [catalogs, ..]) if is(catalogs, "appCatalogs") => Class::CatalogRead,
            (&Method::GET, [groups, ..]) if is(groups, "groups") => Class::DirectoryRead,
            (&Method::GET, [users, _]) if is(users, "users") => Class::DirectoryRead,
            (&Method::POST, [u, _, tw, apps]) if installed_apps(u, tw, apps) => Class::Install,
            (&Method::DELETE, [u, _, tw, apps, _]) if installed_apps(u, tw, apps) => Class::Delete,
            _ => Class::Other,
        }
    }
}

/// The requests of the last second, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Window(VecDeque<Instant>);

impl Window {
    /// Counts a request at `now` — admitted or not, as Graph counts them — and, when that puts
    /// the window over `limit`, how long until a request would fit again (whole seconds, at
    /// least one, as Graph's `Retry-After` usually is).
    pub fn count(&mut self, now: Instant, limit: u32) -> Result<(), f64> {
        let limit = limit.max(1) as usize;
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.0.pop_front();
        }
        self.0.push_back(now);
        if self.0.len() <= limit {
            return Ok(());
        }
        // The next request fits once all but `limit - 1` of these have left the window.
        let oldest_to_leave = self.0[self.0.len() - limit];
        let wait = Duration::from_secs(1).saturating_sub(now.duration_since(oldest_to_leave));
        Err(wait.as_secs_f64().ceil().max(1.0))
    }
}

/// One window per tenant and class.
#[derive(Debug, Default)]
pub(crate) struct Meter(HashMap<(String, Class), Window>);

impl Meter {
    /// Counts a call of `class` for `tenant`; `Err(retry after seconds)` when over its budget.
    pub fn count(
        &mut self,
        budgets: &Budgets,
        tenant: &str,
        class: Class,
        now: Instant,
    ) -> Result<(), f64> {
        let Some(limit) = budgets.limit(class) else {
            return Ok(());
        };
        self.0
            .entry((tenant.to_ascii_lowercase(), class))
            .or_default()
            .count(now, limit)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_fall_into_graphs_classes() {
        let user = "/users/alice@contoso.com/teamwork/installedApps";
        for (method, path, class) in [
            (Method::GET, user.to_string(), Class::InstalledAppsRead),
            (Method::GET, format!("{user}/abc"), Class::InstalledAppsRead),
            (
                Method::GET,
                format!("{user}/abc/teamsAppDefinition"),
                Class::InstalledAppsRead,
            ),
            (
                Method::GET,
                "/users('alice%40contoso.com')/TEAMWORK/installedapps".to_string(),
                Class::InstalledAppsRead,
            ),
            (
                Method::GET,
                "/appCatalogs/teamsApps".into(),
                Class::CatalogRead,
            ),
            (
                Method::GET,
                "/appcatalogs/teamsApps/x/appDefinitions".into(),
                Class::CatalogRead,
            ),
            (Method::POST, user.to_string(), Class::Install),
            (Method::DELETE, format!("{user}/abc"), Class::Delete),
            (Method::POST, format!("{user}/abc/upgrade"), Class::Other),
            (Method::POST, format!("{user}/abc"), Class::Other),
            (Method::DELETE, user.to_string(), Class::Other),
            (Method::GET, "/users/alice".into(), Class::DirectoryRead),
            (
                Method::GET,
                "/users('o''neil')".into(),
                Class::DirectoryRead,
            ),
            (
                Method::GET,
                "/groups/g/transitiveMembers/microsoft.graph.user".into(),
                Class::DirectoryRead,
            ),
            (
                Method::GET,
                "/groups('g')/transitiveMembers/microsoft.graph.user".into(),
                Class::DirectoryRead,
            ),
            (Method::POST, "/groups/g/members".into(), Class::Other),
            (Method::GET, "/users/$bogus".into(), Class::Other),
        ] {
            assert_eq!(Class::of(&method, &path), class, "{method} {path}");
        }
    }

    #[test]
    fn each_class_has_its_own_window_and_throttled_calls_count() {
        let budgets = Budgets {
            install: Some(2),
            delete: Some(0),
            ..Budgets::default()
        };
        let mut meter = Meter::default();
        let t0 = Instant::now();
        assert!(meter.count(&budgets, "T", Class::Install, t0).is_ok());
        assert!(meter.count(&budgets, "t", Class::Install, t0).is_ok());
        assert_eq!(meter.count(&budgets, "t", Class::Install, t0), Err(1.0));
        assert!(meter.count(&budgets, "other", Class::Install, t0).is_ok());
        for _ in 0..100 {
            assert!(
                meter.count(&budgets, "t", Class::Delete, t0).is_ok(),
                "0 = unlimited"
            );
            assert!(
                meter.count(&budgets, "t", Class::Other, t0).is_ok(),
                "absent = unlimited"
            );
        }
        // Hammering during the throttle: at 900 ms the three from t0 are still in the window.
        let t900 = t0 + Duration::from_millis(900);
        assert!(meter.count(&budgets, "t", Class::Install, t900).is_err());
        // At 1 s those have left, but the throttled one at 900 ms still counts: one more fits.
        let t1000 = t0 + Duration::from_millis(1000);
        assert!(meter.count(&budgets, "t", Class::Install, t1000).is_ok());
        assert!(meter.count(&budgets, "t", Class::Install, t1000).is_err());
    }
}
