//! A short-lived cache of catalog lookups, shared by all reconciles.
//!
//! Every reconcile needs the app's catalog entry (its latest published version), and typically
//! thousands of resources name the same few apps. Reading the catalog once per app per
//! `--catalog-cache-ttl` instead of once per reconcile halves the Graph reads of a drift pass —
//! and Graph's read budget (30/s per tenant) is what bounds a pass over 10,000 resources. A
//! newly published version is thus noticed up to one TTL later; an upgrade is never based on a
//! version the catalog does not have, because Graph's upgrade always moves to the latest anyway.
//!
//! Concurrent misses for one app wait for a single lookup instead of each sending their own.
//! Failures are not cached: the next reconcile asks Graph again. "Not in the catalog" is kept
//! for at most [`MISSING_TTL`]: an app just published can take a day or two to show (Graph
//! documents 24–48 hours), and a resource waiting for it re-checks on its slot, at most one
//! interval apart — an old "missing" must not make it wait another interval once the app shows.
//! Every resource naming the missing app still shares one read per [`MISSING_TTL`].

use std::time::Duration;

use crate::graph::{AppRef, CatalogApp, GraphClient, GraphError};

use super::shared_read::SharedRead;

/// How long "not in the catalog" is served at most.
pub const MISSING_TTL: Duration = Duration::from_secs(5);

/// By tenant (lowercase) and app: each tenant has its own catalog.
pub struct CatalogCache(SharedRead<(String, AppRef), Option<CatalogApp>>);

impl CatalogCache {
    /// `ttl` zero: no caching, every lookup goes to Graph.
    pub fn new(ttl: Duration) -> Self {
        Self(SharedRead::new(ttl).shorter_for(MISSING_TTL, Option::is_none))
    }

    /// The catalog entry of `app` (`None`: not in the tenant's catalog), at most `ttl` old —
    /// or read afresh when `refresh` (someone asked for a re-check now).
    pub async fn lookup(
        &self,
        graph: &GraphClient,
        app: &AppRef,
        refresh: bool,
    ) -> Result<Option<CatalogApp>, GraphError> {
        let key = (graph.tenant_id().to_lowercase(), app.clone());
        self.0.get(&key, refresh, || graph.catalog_app(app)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{CredentialSource, GraphSettings, Secret};
    use graph_sim::{DEMO_SEED_YAML, Seed, SimOptions, SimServer};

    const BOT: &str = "33333333-3333-3333-3333-333333333333";

    async fn setup() -> (SimServer, GraphClient) {
        let seed = Seed::from_yaml_str(DEMO_SEED_YAML).expect("demo seed");
        let sim = SimServer::start("127.0.0.1:0".parse().unwrap(), seed, SimOptions::default())
            .await
            .expect("graph-sim starts");
        let base = url::Url::parse(&sim.base_url()).unwrap();
        let settings = GraphSettings::new(
            "00000000-0000-0000-0000-000000000001",
            "11111111-1111-1111-1111-111111111111",
            CredentialSource::ClientSecret(Secret::new("s3cret")),
        )
        .with_base_url(base);
        let graph = GraphClient::new(settings).expect("client");
        (sim, graph)
    }

    fn catalog_reads(sim: &SimServer) -> usize {
        sim.requests()
            .iter()
            .filter(|r| r.path.contains("/appCatalogs/"))
            .count()
    }

    #[tokio::test]
    async fn one_read_per_app_per_ttl_even_when_asked_concurrently() {
        let (sim, graph) = setup().await;
        let cache = CatalogCache::new(Duration::from_millis(300));
        let app = AppRef::Id(BOT.into());
        let lookups = (0..8).map(|_| cache.lookup(&graph, &app, false));
        for found in futures::future::join_all(lookups).await {
            assert_eq!(found.unwrap().map(|a| a.id).as_deref(), Some(BOT));
        }
        assert_eq!(catalog_reads(&sim), 1);

        // A newly published version shows once the entry is older than the TTL.
        sim.add_definition(
            "00000000-0000-0000-0000-000000000001",
            BOT,
            serde_json::from_value(serde_json::json!(
                {"version": "1.1.0", "publishingState": "published"}
            ))
            .unwrap(),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(350)).await;
        let found = cache.lookup(&graph, &app, false).await.unwrap().unwrap();
        assert_eq!(
            found
                .latest_published()
                .map(|d| d.version.to_string())
                .as_deref(),
            Some("1.1.0")
        );
        assert_eq!(catalog_reads(&sim), 2);
        // Unknown apps are cached as unknown, too.
        let missing = AppRef::Id("99999999-9999-9999-9999-999999999999".into());
        assert!(
            cache
                .lookup(&graph, &missing, false)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            cache
                .lookup(&graph, &missing, false)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(catalog_reads(&sim), 3);
    }

    #[tokio::test]
    async fn zero_ttl_always_asks_graph_and_failures_are_not_cached() {
        let (sim, graph) = setup().await;
        let app = AppRef::Id(BOT.into());
        let uncached = CatalogCache::new(Duration::ZERO);
        uncached.lookup(&graph, &app, false).await.unwrap();
        uncached.lookup(&graph, &app, false).await.unwrap();
        assert_eq!(catalog_reads(&sim), 2);

        let cache = CatalogCache::new(Duration::from_secs(60));
        sim.set_faults(
            serde_json::from_value(serde_json::json!({"failures": [
                {"pathContains": "/appCatalogs/", "status": 403, "count": 1}
            ]}))
            .unwrap(),
        )
        .unwrap();
        assert!(cache.lookup(&graph, &app, false).await.is_err());
        assert!(cache.lookup(&graph, &app, false).await.unwrap().is_some());
        assert_eq!(catalog_reads(&sim), 4);
    }
}
