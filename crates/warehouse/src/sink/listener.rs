//! `coffee-rt warehouse --metrics-listen`: `/metrics`, `/livez` and `/readyz`, where ready means
//! PostgreSQL and ClickHouse both answer. The process's Prometheus recorder lives in the server
//! crate (which depends on this one), so the caller hands over how to render it.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    routing::get,
};
use coffee_store::PgPool;
use serde_json::{Value, json};

use crate::clickhouse::ClickHouse;

struct Checks {
    pool: PgPool,
    clickhouse: ClickHouse,
}

async fn timed(check: impl Future<Output = Result<(), String>>) -> String {
    match tokio::time::timeout(Duration::from_millis(900), check).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".to_owned(),
    }
}

async fn readyz(State(checks): State<Arc<Checks>>) -> (StatusCode, Json<Value>) {
    let pg = timed(async {
        let client = checks.pool.get().await.map_err(|e| e.to_string())?;
        client.simple_query("SELECT 1").await.map(drop).map_err(|e| e.to_string())
    });
    let ch = timed(async { checks.clickhouse.ping().await.map_err(|e| e.to_string()) });
    let (pg, ch) = tokio::join!(pg, ch);
    let ready = pg == "ok" && ch == "ok";
    let body = json!({"ready": ready, "postgres": pg, "clickhouse": ch});
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

/// Serves the listener on `addr` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    pool: PgPool,
    clickhouse: ClickHouse,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let router = Router::new()
        .route("/metrics", get(move || std::future::ready(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render()))))
        .route("/livez", get(|| std::future::ready(Json(json!({"status": "ok"})))))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(Checks { pool, clickhouse }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "warehouse metrics listener failed");
        }
    });
    tracing::info!(%bound, "warehouse metrics listener up");
    Ok(bound)
}
