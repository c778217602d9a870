//! The rollout's app as the tenant's catalog has it: the latest published version and the
//! application RSC permissions it requires — what a plan's revision and the consent decision
//! are made from. Read through the connection's client (same budget as every other read), at
//! most once per pass, and kept for a short while: a wave turning Ready is dozens of passes in
//! a minute, and none of them needs a fresh catalog.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::api::TeamsAppRollout;
use crate::graph::{AppRef, GraphClient, GraphError};

use super::super::core::{Catalog, Reason, Verdict};

/// How long a catalog read serves a rollout. Short: a catalog bump between review and apply
/// must show as `PlanChanged` within moments, not at the next membership read.
const CATALOG_TTL: Duration = Duration::from_secs(30);

/// One rollout's read: when, for which generation of its spec, and what it found.
struct Entry {
    read_at: Instant,
    generation: Option<i64>,
    catalog: Catalog,
}

/// Catalog reads by rollout uid.
#[derive(Default)]
pub struct Catalogs {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Why the catalog is not known this pass: a verdict to report and the error whose
/// `Retry-After` paces the retry.
pub struct CatalogFailure {
    pub verdict: Verdict,
    pub error: GraphError,
}

impl Catalogs {
    /// The kept read while it is fresh and the spec is the same, else a read from Graph.
    pub async fn catalog(
        &self,
        graph: &GraphClient,
        rollout: &TeamsAppRollout,
    ) -> Result<Catalog, CatalogFailure> {
        let uid = rollout.metadata.uid.clone().unwrap_or_default();
        let generation = rollout.metadata.generation;
        if let Some(entry) = self.lock().get(&uid)
            && entry.read_at.elapsed() < CATALOG_TTL
            && entry.generation == generation
        {
            return Ok(entry.catalog.clone());
        }
        let app = match (&rollout.spec.app.id, &rollout.spec.app.external_id) {
            (Some(id), _) => AppRef::Id(id.clone()),
            (None, Some(external)) => AppRef::ExternalId(external.clone()),
            (None, None) => return Ok(Catalog::default()),
        };
        let found = graph.catalog_app(&app).await.map_err(|error| {
            let verdict = Verdict::progressing(
                Reason::GraphUnavailable,
                format!("reading the app catalog, will retry: {error}"),
            );
            CatalogFailure {
                verdict: verdict.retried(),
                error,
            }
        })?;
        // No such app: nothing is required; each installation says the app is missing.
        let catalog = found
            .as_ref()
            .and_then(|app| app.latest_published())
            .map(|d| Catalog {
                version: Some(d.version.to_string()),
                required: d.required.application(),
            })
            .unwrap_or_default();
        let entry = Entry {
            read_at: Instant::now(),
            generation,
            catalog: catalog.clone(),
        };
        self.lock().insert(uid, entry);
        Ok(catalog)
    }

    /// The rollout is gone.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
