//! Users' installed apps, read once per user and shared by every resource that names the user.
//!
//! A tenant's resources are typically a few apps for each of many users. One unfiltered list of
//! a user's installed apps answers for all of that user's resources, where a filtered read per
//! resource would cost one read each — and Graph's installedApps read budget (30/s per tenant)
//! is what bounds a pass over a tenant. A write for the user (install, upgrade, uninstall)
//! invalidates the user's list, so the re-read that verifies it is fresh and serves the user's
//! other resources too. With `--user-snapshot-ttl 0s` each resource reads its own app, filtered.

use std::sync::Arc;
use std::time::Duration;

use crate::graph::{AppRef, GraphClient, GraphError, Installation};

use super::shared_read::SharedRead;

pub struct InstalledApps {
    ttl: Duration,
    lists: SharedRead<String, Arc<Vec<Installation>>>,
}

impl InstalledApps {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            lists: SharedRead::new(ttl),
        }
    }

    /// The user's installation of the catalog app `catalog_app_id`, from a list at most `ttl`
    /// old — or read afresh when `refresh`.
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
        let list = self
            .lists
            .get(&key(user), refresh, || async {
                graph.list_installations(user).await.map(Arc::new)
            })
            .await?;
        Ok(list
            .iter()
            .find(|i| i.catalog_app_id.eq_ignore_ascii_case(catalog_app_id))
            .cloned())
    }

    /// The operator just wrote for `user`: the next read of the user's apps goes to Graph.
    pub fn invalidate(&self, user: &str) {
        self.lists.invalidate(&key(user));
    }
}

/// UPNs are case-insensitive in Entra.
fn key(user: &str) -> String {
    user.to_lowercase()
}
