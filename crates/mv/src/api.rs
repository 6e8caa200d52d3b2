//! HTTP and WebSocket API over strategy B.
//!
//! `GET /api/accounts/{id}/overview` computes on demand. `/ws/accounts?ids=…`
//! pushes an overview for each subscribed account whenever a price it holds
//! (or one of its positions) changes; the subscription lives exactly as long
//! as the socket task, so a client that leaves costs nothing afterwards.

use crate::lazy::{LazyEngine, Overview};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::SinkExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<LazyEngine>,
    pub subscriptions: Arc<AtomicUsize>,
    pub rebuild: RebuildStats,
    /// Cancelled at shutdown so open sockets end instead of holding it up.
    pub shutdown: CancellationToken,
}

/// How long the last restart took, reported on `/api/health`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct RebuildStats {
    pub pg_rows: u64,
    pub pg_load_ms: u64,
    pub topic_events: u64,
    pub topic_replay_ms: u64,
    pub total_ms: u64,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Health {
    pub price_version: u64,
    pub accounts: usize,
    pub live_orders: usize,
    pub subscriptions: usize,
    pub rebuild: RebuildStats,
}

/// Pushes are many small frames: with Nagle's algorithm on, each waits for
/// the previous frame's (delayed) ACK, adding up to 40 ms. Every listener
/// of this API goes through here.
pub fn no_delay(listener: tokio::net::TcpListener) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY: {e}");
        }
    })
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/accounts/{id}/overview", get(overview))
        .route("/ws/accounts", get(ws_accounts))
        .with_state(state)
}

async fn health(State(st): State<AppState>) -> Json<Health> {
    Json(Health {
        price_version: st.engine.prices().current().version,
        accounts: st.engine.accounts(),
        live_orders: st.engine.live_orders(),
        subscriptions: st.subscriptions.load(Ordering::SeqCst),
        rebuild: st.rebuild,
    })
}

async fn overview(State(st): State<AppState>, Path(id): Path<u32>) -> Response {
    match st.engine.overview(id) {
        Some(o) => Json(o).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no account {id}")).into_response(),
    }
}

#[derive(Deserialize)]
struct WsQuery {
    ids: String,
}

/// Parses `1,2,3`; duplicates collapse.
pub fn parse_ids(s: &str) -> Result<Vec<u32>, String> {
    let mut ids = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<u32>().map_err(|e| format!("bad account id {p:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err("ids must name at least one account".into());
    }
    Ok(ids)
}

async fn ws_accounts(State(st): State<AppState>, Query(q): Query<WsQuery>, ws: WebSocketUpgrade) -> Response {
    match parse_ids(&q.ids) {
        Ok(ids) => ws.on_upgrade(move |socket| subscription(socket, st, ids)),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// Counts live subscriptions; decremented however the task ends.
struct SubscriptionGuard(Arc<AtomicUsize>);
impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What was last pushed for one account.
#[derive(Clone, Copy, Default)]
struct Sent {
    relevant_version: u64,
    generation: u64,
    pushed: bool,
}

async fn subscription(mut socket: WebSocket, st: AppState, ids: Vec<u32>) {
    st.subscriptions.fetch_add(1, Ordering::SeqCst);
    let _guard = SubscriptionGuard(st.subscriptions.clone());
    let mut prices = st.engine.prices().subscribe();
    let mut positions = st.engine.subscribe_positions();
    let mut sent = vec![Sent::default(); ids.len()];
    // Latest overview per account, advanced version by version.
    let mut latest: Vec<Option<Overview>> = vec![None; ids.len()];
    positions.borrow_and_update();
    let mut snap = prices.borrow_and_update().clone();
    loop {
        // Push every account whose overview moved since what we last sent.
        for (k, &id) in ids.iter().enumerate() {
            let ov = match &latest[k] {
                Some(prev) => st.engine.advance(prev, &snap),
                None => st.engine.overview_at(id, &snap),
            };
            let Some(ov) = ov else {
                continue;
            };
            latest[k] = Some(ov.clone());
            let s = &mut sent[k];
            if s.pushed && ov.last_relevant_version <= s.relevant_version && ov.positions_generation <= s.generation {
                continue;
            }
            *s = Sent { relevant_version: ov.last_relevant_version, generation: ov.positions_generation, pushed: true };
            // Queued, not written: one flush per wake-up sends every
            // account's frame in one write.
            if feed(&mut socket, &ov).await.is_err() {
                return;
            }
        }
        if socket.flush().await.is_err() {
            return;
        }
        tokio::select! {
            r = prices.changed() => if r.is_err() { return },
            r = positions.changed() => { if r.is_err() { return } positions.borrow_and_update(); }
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            _ = st.shutdown.cancelled() => { let _ = socket.send(Message::Close(None)).await; return }
        }
        snap = prices.borrow_and_update().clone();
    }
}

async fn feed(socket: &mut WebSocket, ov: &Overview) -> Result<(), axum::Error> {
    let text = serde_json::to_string(ov).expect("overview serialises");
    socket.feed(Message::Text(text.into())).await
}
