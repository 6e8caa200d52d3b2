//! `mv serve`: strategy B as a service. Rebuild from PostgreSQL + topics,
//! then keep consuming both topics while serving the HTTP/WS API.

use crate::api::{self, AppState, RebuildStats};
use crate::kafka::{self, TopicReplay};
use crate::lazy::LazyEngine;
use crate::sources::{self, SourceArgs};
use anyhow::{Context, Result};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Address for the HTTP/WebSocket API.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
}

/// Binds `args.listen` and serves until Ctrl-C.
pub async fn run(args: ServeArgs) -> Result<()> {
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    serve(&args.sources, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Rebuilds, then serves on `listener` until `shutdown` resolves. Tests pass
/// a port-0 listener and their own shutdown future.
pub async fn serve(src: &SourceArgs, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
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
    let token = CancellationToken::new();

    // Ingestion replays both topics from the start over the snapshot (events
    // are absolute, so this converges) and then simply keeps going; the API
    // opens once both reached the watermarks they had at start.
    let t1 = Instant::now();
    src.ensure_topics().await?;
    let events = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut ready = Vec::new();
    for (topic, is_price) in [(&src.position_topic, false), (&src.price_topic, true)] {
        let replay = TopicReplay::open(&src.brokers, topic).await?;
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
    let rebuild = RebuildStats {
        pg_rows,
        pg_load_ms,
        topic_events: events.load(Ordering::Relaxed),
        topic_replay_ms: t1.elapsed().as_millis() as u64,
        total_ms: t0.elapsed().as_millis() as u64,
    };

    let state = AppState { engine, subscriptions: Arc::new(AtomicUsize::new(0)), rebuild, shutdown: token.clone() };
    tracing::info!(addr = %listener.local_addr()?, ?rebuild, "serving");
    let t = token.clone();
    axum::serve(api::no_delay(listener), api::router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            t.cancel();
        })
        .await?;
    token.cancel();
    for task in tasks {
        task.await??;
    }
    Ok(())
}
