use std::sync::Arc;

use coffee_core::Catalog;
use coffee_core::Version;
use coffee_pipeline::Ingest;
use coffee_store::{PgPool, Projection};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::dashboard::{Accepted, Hub};

/// What every handler can reach: one pointer, because axum clones the state for every request.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The shared services behind [`AppState`].
pub struct Services {
    pub catalog: Arc<Catalog>,
    /// The accepted range of an order's time (`ServerConfig::order_window`).
    pub order_window: coffee_core::OrderWindow,
    pub pool: PgPool,
    pub projection: Projection,
    /// The ingestion paths, in [`Version`] order.
    pub paths: [Arc<dyn Ingest>; 3],
    /// Which `order_id`s are in use, across the paths: answers repeats and conflicts.
    pub registry: coffee_pipeline::Registry,
    pub prometheus: PrometheusHandle,
    /// Order requests in flight, across all versions. When none is left the API answers 503
    /// at once instead of queueing without bound.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// The live dashboard's fan-out (one Redis subscription per process).
    pub dashboard: Hub,
    /// The newest order accepted per path, for the dashboard's lag.
    pub accepted: Arc<Accepted>,
    /// What `/readyz` checks.
    pub readiness: crate::telemetry::Readiness,
    /// `GET /api/history`: ClickHouse when a warehouse is configured, else PostgreSQL.
    pub history: Arc<dyn coffee_warehouse::history::History>,
}

impl Services {
    /// The path that takes orders of `version`.
    pub fn path(&self, version: Version) -> &dyn Ingest {
        let i = match version {
            Version::V1 => 0,
            Version::V2 => 1,
            Version::V3 => 2,
        };
        self.paths[i].as_ref()
    }
}
