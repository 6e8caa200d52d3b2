//! Runs a [`Schedule`] against one URL: the open-loop engine.
//!
//! Every request goes out on a connection owned by one task, as in wrk2 and oha: the task
//! waits for its request's intended time, sends it, reads the answer, and takes the next one.
//! Latency runs from the intended time (or from the send, if that was earlier), so a server
//! that keeps every connection busy makes later requests *late*, and the lateness is in their
//! latency: nothing is hidden by waiting politely (coordinated omission).
//!
//! How requests are spread over connections is the [`ConnectionModel`]: a pool shared by all
//! requests (a gateway in front of the API), or independent clients with one connection and
//! their own slice of the schedule each (POS terminals).
//!
//! The earlier engine sent from two scheduler tasks through hyper's pooled client, opening a
//! new connection whenever the warm ones were busy (up to 512). Against one `coffee-rt up`,
//! v2 at 20,000/s for 10 s from cold, three alternating runs each (docs/SCALE.md, "The
//! generator"): old engine p50 1.8 ms, p99 57, 11 and 109 ms; this engine p50 0.95 ms, p99
//! 4.4, 5.7 and 27 ms; oha (`-c 96 --latency-correction`) p50 0.86 ms, p99 5.2, 4.2 and 6.2 ms.
//! Two causes: the p50 lead was timer rounding (below), and the tail came from connections
//! opened mid-run under load. Here every connection is opened before the run and kept busy
//! back to back, which is how a real pool is used.
//!
//! Timers: tokio's timer rounds a deadline up to the next millisecond, which would add up to
//! 1 ms to every measured latency. A task therefore wakes up to [`EARLY`] before its request's
//! intended time and sends at once; such a request's latency runs from its actual send.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Uri, header};
use tokio::time::Instant;

use super::client::{Connection, Outcome};
use super::schedule::Schedule;
use crate::order::{self, OrderMix};
use crate::results::load::ConnectionModel;
use crate::results::load::new_histogram;

/// How far before its intended time a request may be sent (see the module docs).
pub const EARLY: Duration = Duration::from_millis(1);

/// A request sent later than this after its intended time counts as sent late.
pub const LATE: Duration = Duration::from_millis(1);

/// Latency histograms are sharded so thousands of client tasks neither share one lock nor
/// carry one histogram each.
const SHARDS: usize = 8;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Full URL of the endpoint to POST orders to.
    pub target: Uri,
    pub rate: f64,
    pub duration: Duration,
    pub model: ConnectionModel,
    /// A request with no response this long after its intended time counts as `timeout`
    /// (and one whose deadline passed before it could be sent is not sent).
    pub timeout: Duration,
    /// Offered at `rate` before `duration` and left out of every figure: the first second
    /// of a run starting cold (a new process's first allocations, the server's pools
    /// filling) is not the steady state the run is meant to measure.
    pub warmup: Duration,
}

impl LoadPlan {
    /// The whole schedule (warm-up first) and how many of its requests belong to the warm-up.
    fn schedule(&self) -> (Schedule, u64) {
        let all = Schedule::new(self.rate, self.warmup + self.duration);
        let warm = (self.rate * self.warmup.as_secs_f64()).floor() as u64;
        (all, warm.min(all.total().saturating_sub(1)))
    }
}

/// Counters the progress display reads while the run goes on.
pub struct Live {
    pub scheduled: u64,
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    /// Successful requests of the warm-up (in no figure, but their orders are in the pipeline).
    pub warm_ok: AtomicU64,
    pub errors: AtomicU64,
    /// Requests sent more than [`LATE`] after their intended time.
    pub late: AtomicU64,
    /// Latency histograms (µs, successes only), sharded by connection.
    pub latency: Vec<Mutex<Histogram<u64>>>,
    send_lag: Vec<Mutex<Histogram<u64>>>,
    errors_by_key: Mutex<BTreeMap<String, u64>>,
    /// Signalled once, when the measured part of the run begins (after any warm-up).
    pub measuring: tokio::sync::Notify,
    /// The worst latency (µs) of the requests due in each second of the schedule: a p99 made
    /// of one stall and one made of a steady tail look alike; this tells them apart.
    pub worst_per_second: Vec<AtomicU64>,
}

impl Live {
    /// All connections' latencies so far, merged.
    pub fn merged_latency(&self) -> Histogram<u64> {
        merge(&self.latency)
    }
}

fn merge(shards: &[Mutex<Histogram<u64>>]) -> Histogram<u64> {
    let mut all = new_histogram();
    for h in shards {
        all.add(&*h.lock().expect("histogram lock")).expect("same bounds");
    }
    all
}

/// The raw result of a run, before it becomes a report.
#[derive(Debug)]
pub struct RunOutcome {
    pub scheduled: u64,
    pub sent: u64,
    pub ok: u64,
    /// Successful requests of the warm-up.
    pub warm_ok: u64,
    /// Latency from intended send time to full response, µs, successful requests only.
    pub latency: Histogram<u64>,
    /// How late each request was sent (µs): all connections busy, or the generator itself
    /// short of CPU. Large values mean the client side, not only the server, set the pace.
    pub send_lag: Histogram<u64>,
    /// Requests sent more than [`LATE`] after their intended time.
    pub late_sends: u64,
    /// Failures by status code or transport error.
    pub errors: BTreeMap<String, u64>,
    /// From the first intended time to the last completion (at least the planned span).
    pub elapsed: Duration,
    /// The planned span of the schedule (`scheduled / rate`).
    pub span: Duration,
    /// From the first to the last completion (success or not).
    pub completion_window: Duration,
    /// The worst latency (µs) of the requests due in each second, failures included.
    pub worst_per_second: Vec<u64>,
    pub model: ConnectionModel,
}

impl RunOutcome {
    /// Successful responses per second. Measured over the window in which responses came
    /// back, but never a shorter one than the schedule's span: a healthy server scores the
    /// offered rate however long each response takes, and a server that queues scores what
    /// it really delivered, since its responses spread over a longer window.
    pub fn achieved_rate(&self) -> f64 {
        self.ok as f64 / self.span.max(self.completion_window).as_secs_f64().max(f64::MIN_POSITIVE)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Create the live counters for a plan; hand them to a progress display before [`run`].
pub fn live_for(plan: &LoadPlan) -> Arc<Live> {
    let (all, warm) = plan.schedule();
    let shards = || (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect();
    Arc::new(Live {
        scheduled: all.total() - warm,
        sent: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        warm_ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        late: AtomicU64::new(0),
        latency: shards(),
        send_lag: shards(),
        errors_by_key: Mutex::default(),
        measuring: tokio::sync::Notify::new(),
        worst_per_second: (0..plan.duration.as_secs_f64().ceil().max(1.0) as usize).map(|_| AtomicU64::new(0)).collect(),
    })
}

struct Shared {
    addr: SocketAddr,
    host: header::HeaderValue,
    path: Uri,
    schedule: Schedule,
    model: ConnectionModel,
    /// Next request index, for the pooled model.
    next: AtomicU64,
    /// Requests before this index are the warm-up: sent, never counted.
    first_measured: u64,
    start: Instant,
    /// When the first measured request is due.
    measured_start: Instant,
    timeout: Duration,
    live: Arc<Live>,
}

impl Shared {
    fn due(&self, i: u64) -> Instant {
        self.start + self.schedule.offset(i)
    }
}

/// Run the plan to the end: every scheduled request is sent (or counted as a timeout when its
/// deadline passed first) and every sent request has completed or timed out.
pub async fn run(plan: &LoadPlan, live: Arc<Live>) -> anyhow::Result<RunOutcome> {
    let authority = plan.target.authority().context("the target URL needs a host")?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((authority.host(), port))
        .await?
        .next()
        .with_context(|| format!("{} resolves to no address", authority.host()))?;
    let path: Uri = plan.target.path_and_query().map_or("/", |p| p.as_str()).parse()?;
    let n = plan.model.connections();

    // Open every connection before the first intended time, as wrk and oha do: the run then
    // measures the server's steady state, not a connect storm. A connection that cannot be
    // opened now is tried again at its first request, and a failure then is an error.
    let mut opened = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        opened.extend(futures::future::join_all(chunk.iter().map(|_| Connection::open(addr))).await);
    }

    let (schedule, first_measured) = plan.schedule();
    // A short lead-in so every task is parked on its timer before request 0 is due.
    let start = Instant::now() + Duration::from_millis(20);
    let measured_start = start + schedule.offset(first_measured);
    let signal = live.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(measured_start).await;
        signal.measuring.notify_one();
    });
    let shared = Arc::new(Shared {
        addr,
        host: header::HeaderValue::from_str(authority.as_str())?,
        path,
        schedule,
        model: plan.model,
        next: AtomicU64::new(0),
        first_measured,
        start,
        measured_start,
        timeout: plan.timeout,
        live: live.clone(),
    });
    let tasks: Vec<_> = opened.into_iter().enumerate().map(|(k, c)| tokio::spawn(connection(shared.clone(), k, c))).collect();
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    for t in tasks {
        if let Some((f, l)) = t.await.context("a load connection task panicked")? {
            first = Some(first.map_or(f, |x| x.min(f)));
            last = Some(last.map_or(l, |x| x.max(l)));
        }
    }
    let span = schedule.span() - schedule.offset(first_measured);
    Ok(RunOutcome {
        scheduled: schedule.total() - first_measured,
        sent: live.sent.load(Ordering::Relaxed),
        ok: live.ok.load(Ordering::Relaxed),
        warm_ok: live.warm_ok.load(Ordering::Relaxed),
        latency: live.merged_latency(),
        send_lag: merge(&live.send_lag),
        late_sends: live.late.load(Ordering::Relaxed),
        errors: live.errors_by_key.lock().expect("errors lock").clone(),
        elapsed: last.map_or(span, |l| (l - measured_start).max(span)),
        span,
        completion_window: match (first, last) {
            (Some(f), Some(l)) => l - f,
            _ => Duration::ZERO,
        },
        worst_per_second: live.worst_per_second.iter().map(|w| w.load(Ordering::Relaxed)).collect(),
        model: plan.model,
    })
}

/// One connection's task: take a request, wait for its time, send it, read the answer, again.
/// Returns the first and last completion of a measured request.
async fn connection(shared: Arc<Shared>, k: usize, mut conn: Option<Connection>) -> Option<(Instant, Instant)> {
    let mix = OrderMix::default();
    let mut rng = order::rng();
    let live = &shared.live;
    let shard = k % SHARDS;
    let total = shared.schedule.total();
    let mut window: Option<(Instant, Instant)> = None;
    for j in 0u64.. {
        let i = match shared.model {
            ConnectionModel::Pooled(_) => shared.next.fetch_add(1, Ordering::Relaxed),
            ConnectionModel::Clients(n) => k as u64 + j * n.max(1) as u64,
        };
        if i >= total {
            break;
        }
        let intended = shared.due(i);
        let wake = intended - EARLY;
        if wake > Instant::now() {
            tokio::time::sleep_until(wake).await;
        }
        let body = mix.next_body(&mut rng);
        let sent = Instant::now();
        let deadline = intended + shared.timeout;
        let measured = i >= shared.first_measured;
        let outcome = if sent >= deadline {
            Outcome::Timeout
        } else {
            if measured {
                live.sent.fetch_add(1, Ordering::Relaxed);
            }
            match tokio::time::timeout_at(deadline, exchange(&shared, &mut conn, body)).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    // The connection still carries the unanswered request: it is of no more use.
                    conn = None;
                    Outcome::Timeout
                }
            }
        };
        if !measured {
            if outcome.is_success() {
                live.warm_ok.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let done = Instant::now();
        let lag = sent.saturating_duration_since(intended);
        shared.live.send_lag[shard].lock().expect("histogram lock").saturating_record(micros(lag));
        if lag > LATE {
            live.late.fetch_add(1, Ordering::Relaxed);
        }
        let took = micros(done - sent.min(intended));
        let second = (intended - shared.measured_start).as_secs() as usize;
        if let Some(w) = live.worst_per_second.get(second) {
            w.fetch_max(took, Ordering::Relaxed);
        }
        if outcome.is_success() {
            live.ok.fetch_add(1, Ordering::Relaxed);
            live.latency[shard].lock().expect("histogram lock").saturating_record(took);
        } else {
            live.errors.fetch_add(1, Ordering::Relaxed);
            *live.errors_by_key.lock().expect("errors lock").entry(outcome.error_key()).or_insert(0) += 1;
        }
        window = Some(window.map_or((done, done), |(f, _)| (f, done)));
    }
    window
}

/// One request on the task's connection, opening a new one if there is none or it closed.
async fn exchange(shared: &Shared, conn: &mut Option<Connection>, body: Bytes) -> Outcome {
    if conn.as_ref().is_none_or(Connection::is_closed) {
        *conn = Connection::open(shared.addr).await;
    }
    let Some(c) = conn.as_mut() else { return Outcome::Connect };
    let outcome = c.post_json(shared.host.clone(), shared.path.clone(), body).await;
    if outcome == Outcome::Io {
        *conn = None;
    }
    outcome
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}
