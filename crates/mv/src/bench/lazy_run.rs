//! Strategy B under load: rebuild, then the real HTTP/WebSocket API on a
//! loopback port with WebSocket clients watching accounts, while a driver
//! thread applies price updates at 1× and 10× the paper's rate. Latency is
//! from an update's due time to the client receiving an overview that
//! includes it.

use super::pace::{Pacer, histogram, percentiles_ms};
use super::result::{RateRun, StrategyResult};
use super::state::{Built, build};
use super::{BenchArgs, Strategy, command_line, rss};
use crate::api::{self, AppState, RebuildStats};
use crate::config::SourceArgs;
use crate::dataset::{DataSet, PAPER_UPDATES_PER_S};
use crate::lazy::{LazyEngine, Overview};
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// (account, price_version, receive time ns since `base`), in arrival order.
type Samples = Arc<Mutex<Vec<(u32, u64, u64)>>>;

/// Accounts watched, spread evenly and distinct across clients.
fn watch_lists(accounts: u32, clients: usize, per_client: usize) -> Vec<Vec<u32>> {
    let want = (clients * per_client) as u64;
    let total = want.min(accounts as u64);
    let mut ids = (0..total).map(|k| (k * accounts as u64 / total) as u32);
    (0..clients).map(|_| ids.by_ref().take(per_client).collect::<Vec<_>>()).filter(|v| !v.is_empty()).collect()
}

/// Drives updates open loop; returns (version, due ns) per update.
fn drive(e: &LazyEngine, ds: &DataSet, base: Instant, rate: f64, n: u64, stream: u64) -> Vec<(u64, u64)> {
    let mut pacer = Pacer::new(rate);
    (0..n)
        .map(|k| {
            let due = pacer.wait_next();
            let snap = e.apply_price(&ds.price_update(stream, k, k as i64));
            (snap.version, (due - base).as_nanos() as u64)
        })
        .collect()
}

/// Waits until every watched account has been pushed `version` or later.
async fn settle(samples: &Samples, watched: usize, version: u64) -> Result<()> {
    let t0 = Instant::now();
    loop {
        let mut seen: HashMap<u32, u64> = HashMap::new();
        for &(a, v, _) in samples.lock().unwrap().iter() {
            let s = seen.entry(a).or_default();
            *s = (*s).max(v);
        }
        if seen.len() >= watched && seen.values().all(|&v| v >= version) {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("watched accounts never received version {version}: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Latency of every update in `due` to each watched account, and pushes
/// counted in the versions' range.
fn analyse(samples: &[(u32, u64, u64)], due: &[(u64, u64)]) -> (Histogram<u64>, u64) {
    let mut h = histogram();
    let (lo, hi) = (due[0].0, due[due.len() - 1].0);
    let due_of = |v: u64| due[(v - lo) as usize].1;
    let mut last: HashMap<u32, u64> = HashMap::new();
    let mut pushes = 0;
    for &(a, v, t) in samples {
        let l = last.entry(a).or_insert(0);
        if v >= lo && v <= hi {
            pushes += 1;
        }
        for w in (*l + 1).max(lo)..=v.min(hi) {
            h.record(t.saturating_sub(due_of(w)).max(1)).expect("in range");
        }
        *l = (*l).max(v);
    }
    (h, pushes)
}

pub async fn run(args: &BenchArgs, src: &SourceArgs) -> Result<StrategyResult> {
    let ds = args.dataset();
    let rss0 = rss::rss_mb();
    let built = build(
        args,
        src,
        |s| LazyEngine::with_capacity(s.instruments, s.accounts, s.instruments, s.max_order_id),
        |e, ev| Ok(e.load(ev)?),
        |e, u| {
            e.apply_price(u);
            Ok(())
        },
    )
    .await?;
    let state_mb = rss::rss_mb() - rss0;
    let Built { engine, load_s, topic_s, topic_events } = built;
    tracing::info!(state_mb, load_s, topic_s, "B rebuilt");
    let engine = Arc::new(engine);

    let token = CancellationToken::new();
    let state = AppState {
        engine: engine.clone(),
        subscriptions: Arc::new(AtomicUsize::new(0)),
        rebuild: RebuildStats::default(),
        shutdown: token.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(
        axum::serve(api::no_delay(listener), api::router(state)).with_graceful_shutdown(token.clone().cancelled_owned()).into_future(),
    );

    let base = Instant::now();
    let samples: Samples = Arc::default();
    let lists = watch_lists(ds.accounts, args.ws_clients, args.accounts_per_client);
    let watched: usize = lists.iter().map(Vec::len).sum();
    let mut clients = Vec::new();
    for ids in &lists {
        let q = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws/accounts?ids={q}"), None, true)
            .await
            .context("ws connect")?;
        let s = samples.clone();
        clients.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let now = (Instant::now() - base).as_nanos() as u64;
                    let o: Overview = serde_json::from_str(&t).expect("overview json");
                    s.lock().unwrap().push((o.account, o.price_version, now));
                }
            }
        }));
    }
    settle(&samples, watched, engine.prices().current().version).await?;

    // Saturation: back to back, subscribers attached (they coalesce).
    let (e, d) = (engine.clone(), ds);
    let sat_s = args.saturation_s;
    let sat = tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < Duration::from_secs_f64(sat_s) {
            e.apply_price(&d.price_update(1, n, n as i64));
            n += 1;
        }
        n as f64 / t0.elapsed().as_secs_f64()
    })
    .await?;
    settle(&samples, watched, engine.prices().current().version).await?;

    let mut runs = Vec::new();
    for rate_x in [1.0, 10.0] {
        let rate = PAPER_UPDATES_PER_S * rate_x;
        let n = (rate * args.duration_s).ceil() as u64;
        let (e, d) = (engine.clone(), ds);
        let t0 = Instant::now();
        let due = tokio::task::spawn_blocking(move || drive(&e, &d, base, rate, n, 10 + rate_x as u64)).await?;
        let el = t0.elapsed().as_secs_f64();
        settle(&samples, watched, due.last().map(|d| d.0).unwrap_or(0)).await?;
        let (h, pushes) = analyse(&samples.lock().unwrap(), &due);
        runs.push(RateRun {
            rate_x,
            offered_per_s: rate,
            achieved_per_s: n as f64 / el,
            updates: n,
            latency_ms: percentiles_ms(&h),
            output_msgs_per_s: pushes as f64 / el,
        });
    }

    // On-demand reads over HTTP.
    let http = reqwest::Client::new();
    let mut g = histogram();
    for k in 0..200u32 {
        let a = k * 7919 % ds.accounts;
        let t = Instant::now();
        let o: Overview = http.get(format!("http://{addr}/api/accounts/{a}/overview")).send().await?.error_for_status()?.json().await?;
        g.record(t.elapsed().as_nanos() as u64)?;
        anyhow::ensure!(o.account == a);
    }
    token.cancel();
    for c in clients {
        c.await?;
    }
    server.await??;

    let ten = runs[1].clone();
    Ok(StrategyResult {
        strategy: Strategy::B.label().into(),
        scale: args.scale,
        rss_mb: rss::rss_mb(),
        state_mb,
        peak_rss_mb: rss::hwm_mb(),
        update_latency_ms: ten.latency_ms,
        updates_per_s: sat,
        output_msgs_per_s: ten.output_msgs_per_s,
        rebuild_s: load_s + topic_s,
        rebuild_pg_or_gen_s: load_s,
        rebuild_topic_s: topic_s,
        rebuild_topic_events: topic_events,
        source: Built::<()>::source(args).into(),
        accounts: ds.accounts,
        instruments: ds.instruments,
        holdings: ds.holdings_count(),
        orders: ds.orders_count(),
        runs,
        overview_get_ms: Some(percentiles_ms(&g)),
        watched_accounts: Some(watched as u32),
        command: command_line(),
        machine: rss::machine(),
        load_avg: rss::loadavg(),
    })
}
