//! Strategy A under load: rebuild, saturation run, paced runs at 1× and 10×
//! the paper's rate. Output records go to a consumer thread, as they would
//! to a producer.

use super::pace::{Pacer, histogram, percentiles_ms};
use super::result::{RateRun, StrategyResult};
use super::state::{Built, build};
use super::{BenchArgs, Strategy, command_line, rss};
use crate::config::SourceArgs;
use crate::dataset::{DataSet, PAPER_UPDATES_PER_S};
use crate::eager::{AccountChange, EagerEngine};
use anyhow::{Result, ensure};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Ships per-update batches to a consumer thread and gets the buffers back,
/// so the engine thread pays for encoding and hand-off but not allocation.
struct Sink {
    tx: mpsc::SyncSender<Vec<u8>>,
    back: mpsc::Receiver<Vec<u8>>,
    consumer: std::thread::JoinHandle<(u64, u64)>,
}

impl Sink {
    fn new() -> Sink {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(64);
        let (back_tx, back) = mpsc::channel();
        let consumer = std::thread::spawn(move || {
            let (mut bytes, mut check) = (0u64, 0u64);
            for mut buf in rx {
                bytes += buf.len() as u64;
                // Touch the payload so the hand-off is real work.
                check = buf.chunks(AccountChange::WIRE_LEN).fold(check, |c, r| c.wrapping_add(r[0] as u64));
                buf.clear();
                let _ = back_tx.send(buf);
            }
            (bytes, check)
        });
        Sink { tx, back, consumer }
    }

    fn buffer(&self) -> Vec<u8> {
        self.back.try_recv().unwrap_or_default()
    }

    fn ship(&self, buf: Vec<u8>) {
        self.tx.send(buf).expect("consumer alive");
    }

    fn finish(self) -> u64 {
        drop(self.tx);
        self.consumer.join().expect("consumer").0 / AccountChange::WIRE_LEN as u64
    }
}

/// Applies one update, ships its account changes; returns messages emitted.
fn step(e: &mut EagerEngine, ds: &DataSet, sink: &Sink, stream: u64, n: u64) -> u64 {
    let u = ds.price_update(stream, n, n as i64);
    let mut buf = sink.buffer();
    let mut msgs = 0u64;
    e.apply_price(&u, |c| {
        c.encode(&mut buf);
        msgs += 1;
    });
    sink.ship(buf);
    msgs
}

fn paced(e: &mut EagerEngine, ds: &DataSet, sink: &Sink, rate_x: f64, secs: f64) -> RateRun {
    let rate = PAPER_UPDATES_PER_S * rate_x;
    let n = (rate * secs).ceil() as u64;
    let mut h = histogram();
    let mut msgs = 0u64;
    let mut pacer = Pacer::new(rate);
    let t0 = Instant::now();
    for k in 0..n {
        let due = pacer.wait_next();
        msgs += step(e, ds, sink, 10 + rate_x as u64, k);
        h.record(due.elapsed().as_nanos() as u64).expect("in range");
    }
    let el = t0.elapsed().as_secs_f64();
    RateRun {
        rate_x,
        offered_per_s: rate,
        achieved_per_s: n as f64 / el,
        updates: n,
        latency_ms: percentiles_ms(&h),
        output_msgs_per_s: msgs as f64 / el,
    }
}

pub async fn run(args: &BenchArgs, src: &SourceArgs) -> Result<StrategyResult> {
    let ds = args.dataset();
    let rss0 = rss::rss_mb();
    let built = build(
        args,
        src,
        |s| EagerEngine::with_capacity(s.instruments, s.accounts, s.accounts, s.max_order_id),
        |e, ev| Ok(e.load(ev)?),
        |e, u| {
            e.apply_price(u, |_| {});
            Ok(())
        },
    )
    .await?;
    let state_mb = rss::rss_mb() - rss0;
    tracing::info!(state_mb, load_s = built.load_s, topic_s = built.topic_s, "A rebuilt");
    let Built { mut engine, load_s, topic_s, topic_events } = built;
    let (args2, ds2) = (args.clone(), ds);
    let (engine, runs, sat, sat_msgs) = tokio::task::spawn_blocking(move || {
        let sink = Sink::new();
        // Saturation: back to back for a fixed time.
        let (t0, mut n, mut msgs) = (Instant::now(), 0u64, 0u64);
        while t0.elapsed() < Duration::from_secs_f64(args2.saturation_s) {
            msgs += step(&mut engine, &ds2, &sink, 1, n);
            n += 1;
        }
        let el = t0.elapsed().as_secs_f64();
        let runs = vec![paced(&mut engine, &ds2, &sink, 1.0, args2.duration_s), paced(&mut engine, &ds2, &sink, 10.0, args2.duration_s)];
        let shipped = sink.finish();
        tracing::info!(shipped, "A output records shipped");
        (engine, runs, n as f64 / el, msgs as f64 / el)
    })
    .await?;
    // The incremental totals after all of this must equal a recomputation.
    let full = engine.recompute_all();
    for (a, t) in full.iter().enumerate() {
        ensure!(engine.totals(a as u32) == *t, "account {a}: incremental totals drifted from recomputation");
    }
    tracing::info!(sat, sat_msgs, "A saturation");
    let ten = runs[1].clone();
    Ok(StrategyResult {
        strategy: Strategy::A.label().into(),
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
        overview_get_ms: None,
        watched_accounts: None,
        command: command_line(),
        machine: rss::machine(),
        load_avg: rss::loadavg(),
    })
}
