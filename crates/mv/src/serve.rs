//! `coffee-mv serve`: strategy B as a service. Rebuild from PostgreSQL + topics,
//! then keep consuming both topics while serving the HTTP/WS API.

use crate::api::{self, AppState, RebuildStats};
use crate::config::{ServeArgs, SourceArgs};
use crate::kafka::{self, TopicReplay};
use crate::lazy::LazyEngine;
use crate::sources;
use anyhow::{Context, Result};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Binds `args.listen` and serves until `shutdown` is cancelled.
pub async fn run(args: ServeArgs, shutdown: CancellationToken) -> Result<()> {
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    serve(&args.sources, listener, shutdown.cancelled_owned()).await
}

/// Rebuilds, then serves on `listener` until `shutdown` resolves. Tests pass
/// a port-0 listener and their own shutdown future. A shutdown during the
/// rebuild ends it there.
pub async fn serve(src: &SourceArgs, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        t.cancel();
    });
    let mut tasks = Vec::new();
    let rebuilt = tokio::select! {
        r = rebuild(src, &token, &mut tasks) => Some(r),
        _ = token.cancelled() => None,
    };
    // Not inside the select: the API's graceful shutdown must run to its end.
    let result = match rebuilt {
        Some(Ok((engine, rebuild))) => serve_api(listener, engine, rebuild, &token).await,
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    // Ingestion stops however serving ended; a failed task is reported
    // unless serving already failed.
    token.cancel();
    for task in tasks {
        let ended = task.await.context("ingestion task panicked").and_then(|r| r.map(|_rejected| ()));
        if let (Ok(()), Err(e)) = (&result, ended) {
            return Err(e);
        }
    }
    result
}

async fn serve_api(listener: TcpListener, engine: Arc<LazyEngine>, rebuild: RebuildStats, token: &CancellationToken) -> Result<()> {
    let state = AppState { engine, subscriptions: Arc::new(AtomicUsize::new(0)), rebuild, shutdown: token.clone() };
    tracing::info!(addr = %listener.local_addr()?, ?rebuild, "serving");
    axum::serve(api::no_delay(listener), api::router(state)).with_graceful_shutdown(token.clone().cancelled_owned()).await?;
    Ok(())
}

/// Loads the snapshot, then starts one ingestion task per topic (pushed to
/// `tasks`, stopped by `token`) and returns once both replayed to the
/// watermarks they had at start.
async fn rebuild(
    src: &SourceArgs,
    token: &CancellationToken,
    tasks: &mut Vec<JoinHandle<Result<u64>>>,
) -> Result<(Arc<LazyEngine>, RebuildStats)> {
    let t0 = Instant::now();
    let (engine, pg_rows) = sources::load_pg(
        src,
        |s| LazyEngine::with_capacity(s.instruments, s.accounts, s.instruments, s.max_order_id),
        |e, ev| Ok(e.load(ev)?),
    )
    .await?;
    engine.shrink_to_fit();
    let pg_load_ms = t0.elapsed().as_millis() as u64;
    let engine = Arc::new(engine);

    // Ingestion replays both topics from the start over the snapshot (events
    // are absolute, so this converges) and then simply keeps going; the API
    // opens once both reached the watermarks they had at start.
    let t1 = Instant::now();
    src.ensure_topics().await?;
    let events = Arc::new(AtomicU64::new(0));
    let mut ready = Vec::new();
    for (topic, is_price) in [(&src.position_topic, false), (&src.price_topic, true)] {
        let replay = TopicReplay::open(&src.services.brokers, topic).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        ready.push(rx);
        let (e, t, n) = (engine.clone(), token.clone(), events.clone());
        tasks.push(tokio::spawn(async move {
            replay
                .run(
                    move |b| {
                        n.fetch_add(1, Ordering::Relaxed);
                        if is_price {
                            e.apply_price(&kafka::decode_price(b)?);
                        } else {
                            e.apply_position(&kafka::decode_position(b)?)?;
                        }
                        Ok(())
                    },
                    tx,
                    t.cancelled_owned(),
                )
                .await
        }));
    }
    for rx in ready {
        rx.await.context("ingestion ended before catching up")?;
    }
    let stats = RebuildStats {
        pg_rows,
        pg_load_ms,
        topic_events: events.load(Ordering::Relaxed),
        topic_replay_ms: t1.elapsed().as_millis() as u64,
        total_ms: t0.elapsed().as_millis() as u64,
    };
    Ok((engine, stats))
}
