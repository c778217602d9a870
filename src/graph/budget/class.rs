//! Graph's throttling classes and the configured rate of each.

use std::time::Duration;

/// Graph's throttling classes for Teams app calls, each limited on its own per app per tenant
/// (graph-contract.md; the simulator's `budgets` use the same classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallClass {
    /// GET a user's installedApps (list or one): 30/s.
    InstalledAppsRead,
    /// GET appCatalogs: 30/s.
    CatalogRead,
    /// POST installedApps (install): 30/s.
    Install,
    /// DELETE installedApps: 15/s.
    Delete,
    /// Other Teams calls, upgrade among them: 30/s.
    Other,
    /// Directory reads (a group's members, a user): Graph's identity and access limits, which
    /// are far higher than the Teams ones (thousands of resource units per 10 s per tenant).
    DirectoryRead,
}

impl CallClass {
    pub const ALL: [CallClass; 6] = [
        Self::InstalledAppsRead,
        Self::CatalogRead,
        Self::Install,
        Self::Delete,
        Self::Other,
        Self::DirectoryRead,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstalledAppsRead => "installed_apps_read",
            Self::CatalogRead => "catalog_read",
            Self::Install => "install",
            Self::Delete => "delete",
            Self::Other => "other",
            Self::DirectoryRead => "directory_read",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Self::InstalledAppsRead => 0,
            Self::CatalogRead => 1,
            Self::Install => 2,
            Self::Delete => 3,
            Self::Other => 4,
            Self::DirectoryRead => 5,
        }
    }

    /// The class of a Graph request, from its method and path (relative to the version root).
    pub fn of(method: &str, path: &str) -> Self {
        let path = path.split('?').next().unwrap_or_default();
        match method {
            "GET" if path.starts_with("/appCatalogs") => Self::CatalogRead,
            "GET" if path.starts_with("/groups") || !path.contains("/teamwork") => {
                Self::DirectoryRead
            }
            "GET" => Self::InstalledAppsRead,
            "POST" if path.ends_with("/installedApps") => Self::Install,
            "DELETE" => Self::Delete,
            _ => Self::Other,
        }
    }
}

/// Requests per second per class; `0` disables the limit for that class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Each read class: GET installedApps and GET appCatalogs.
    pub read_per_second: f64,
    /// Each write class: install, and other calls (upgrade).
    pub write_per_second: f64,
    pub delete_per_second: f64,
    /// Directory reads: a group's members, a user.
    pub directory_per_second: f64,
    /// How many requests of one class may go out back to back before pacing starts. `1` means
    /// strict pacing.
    pub burst: f64,
    /// Each class's limit is spread over one second plus this. Graph counts a request in its
    /// one-second window when it arrives, after a delay that varies from request to request:
    /// paced at exactly the limit, that jitter squeezes one request too many into some window
    /// now and then, and each 429 holds the class for a second or more (30 requests' worth).
    /// A guard of the latency's spread keeps every window at or under the limit.
    pub window_guard: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            read_per_second: 30.0,
            write_per_second: 30.0,
            delete_per_second: 15.0,
            directory_per_second: 20.0,
            burst: 1.0,
            window_guard: Duration::from_millis(50),
        }
    }
}

impl BudgetConfig {
    fn per_second(&self, class: CallClass) -> f64 {
        match class {
            CallClass::InstalledAppsRead | CallClass::CatalogRead => self.read_per_second,
            CallClass::Install | CallClass::Other => self.write_per_second,
            CallClass::Delete => self.delete_per_second,
            CallClass::DirectoryRead => self.directory_per_second,
        }
    }

    /// The rate the client paces `class` at: its limit over one second plus the guard.
    pub(super) fn paced_per_second(&self, class: CallClass) -> f64 {
        self.per_second(class) / (1.0 + self.window_guard.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fall_into_graphs_classes() {
        let cases = [
            (
                "GET",
                "/users/u/teamwork/installedApps?$filter=x",
                CallClass::InstalledAppsRead,
            ),
            (
                "GET",
                "/users/u/teamwork/installedApps/i",
                CallClass::InstalledAppsRead,
            ),
            (
                "GET",
                "/appCatalogs/teamsApps?$filter=x",
                CallClass::CatalogRead,
            ),
            (
                "POST",
                "/users/u/teamwork/installedApps",
                CallClass::Install,
            ),
            (
                "POST",
                "/users/u/teamwork/installedApps/i/upgrade",
                CallClass::Other,
            ),
            (
                "DELETE",
                "/users/u/teamwork/installedApps/i",
                CallClass::Delete,
            ),
        ];
        for (method, path, class) in cases {
            assert_eq!(CallClass::of(method, path), class, "{method} {path}");
        }
    }
}
