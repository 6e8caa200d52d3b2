use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    routing::get,
};
use coffee_core::Version;
use coffee_pipeline::sources::v3_kafka::TopicProbe;
use coffee_store::{PgPool, Projection};
use redis::aio::ConnectionManager;
use serde_json::{Map, Value, json};

/// What a process depends on, checked by `GET /readyz`: PostgreSQL and Redis when given, and
/// the broker (required for a processor; reported only by the API, whose v3 answers 503 alone
/// while the broker is away).
#[derive(Clone, Default)]
pub struct Readiness {
    pub postgres: Option<PgPool>,
    pub redis: Option<ConnectionManager>,
    pub kafka: Option<(TopicProbe, bool)>,
    /// Reported, never required: whether each version's projection is `live` or `rebuilding`
    /// from PostgreSQL after Redis lost it (orders are accepted either way).
    pub projection: Option<Projection>,
}

impl Readiness {
    /// Runs every check at once, each within 900 ms. Returns whether the required ones pass,
    /// and a JSON object with `ready` and one `"ok"` or `"error: …"` per service.
    pub async fn check(&self) -> (bool, Value) {
        let budget = Duration::from_millis(900);
        let pg = async {
            let Some(pool) = &self.postgres else { return None };
            Some(timed(budget, async {
                let client = pool.get().await.map_err(|e| e.to_string())?;
                client.simple_query("SELECT 1").await.map_err(|e| e.to_string())?;
                Ok(())
            }))
        };
        let redis = async {
            let mut conn = self.redis.clone()?;
            Some(timed(
                budget,
                async move { redis::cmd("PING").query_async::<String>(&mut conn).await.map(drop).map_err(|e| e.to_string()) },
            ))
        };
        let kafka = async {
            let (probe, _) = self.kafka.as_ref()?;
            Some(timed(budget, async { probe.check().await.map_err(|e| e.to_string()) }))
        };
        let projection = async {
            let projection = self.projection.as_ref()?;
            Some(tokio::time::timeout(budget, projection_states(projection)).await.unwrap_or_else(|_| json!("error: timed out")))
        };
        let (pg, redis, kafka, projection) = tokio::join!(pg, redis, kafka, projection);
        let (pg, redis, kafka) = (resolve(pg).await, resolve(redis).await, resolve(kafka).await);
        let kafka_required = self.kafka.as_ref().is_some_and(|(_, required)| *required);
        let ready = [(&pg, true), (&redis, true), (&kafka, kafka_required)]
            .iter()
            .all(|(result, required)| !required || result.as_deref().is_none_or(|r| r == "ok"));
        let mut body = Map::new();
        body.insert("ready".into(), json!(ready));
        for (name, result) in [("postgres", pg), ("redis", redis), ("kafka", kafka)] {
            if let Some(r) = result {
                body.insert(name.into(), json!(r));
            }
        }
        if let Some(p) = projection {
            body.insert("projection".into(), p);
        }
        (ready, Value::Object(body))
    }
}

/// `{"v1": "live", "v2": "rebuilding since 2026-12-01T14:02:03Z", …}`.
async fn projection_states(projection: &Projection) -> Value {
    let mut states = Map::new();
    for v in Version::ALL {
        let state = match projection.rebuilding_since(v).await {
            Ok(None) => "live".to_owned(),
            Ok(Some(since)) => format!("rebuilding since {}", since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            Err(e) => format!("error: {e}"),
        };
        states.insert(v.as_str().into(), json!(state));
    }
    Value::Object(states)
}

async fn timed(budget: Duration, check: impl Future<Output = Result<(), String>>) -> String {
    match tokio::time::timeout(budget, check).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".to_owned(),
    }
}

async fn resolve(check: Option<impl Future<Output = String>>) -> Option<String> {
    match check {
        Some(f) => Some(f.await),
        None => None,
    }
}

/// `GET /readyz`: 200 when ready, 503 otherwise, with the per-service report.
pub async fn readyz(State(readiness): State<Arc<Readiness>>) -> (StatusCode, Json<Value>) {
    let (ready, body) = readiness.check().await;
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

/// Serves `GET /metrics`, `/livez` and `/readyz` on `addr` until `shutdown`: the listener of the
/// roles that have no API (`worker`, `processor`, `aggregate --every`). Each process exports
/// what it records itself, as Prometheus expects of a fleet: a split `worker`'s batch sizes,
/// flush latency, lag and freshness exist only in that process.
pub async fn serve_metrics(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let handle = super::prometheus();
    let router = Router::new()
        .route("/metrics", get(move || std::future::ready(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()))))
        .route("/livez", get(|| std::future::ready(Json(json!({"status": "ok"})))))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(readiness));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    tracing::info!(%bound, "metrics listener up");
    Ok(bound)
}
