//! Runs a [`Schedule`] against one URL: the open-loop engine.
//!
//! The schedule is split round-robin over a few worker tasks. Each worker sleeps until its
//! next intended time, sends every request that is due, and keeps its requests in flight
//! concurrently (a `FuturesUnordered`), so a slow response never delays the next send.
//! Two bounds protect the measurement from the client's own collapse:
//! * `connections` caps requests on the wire (HTTP/1: one connection each). A due request
//!   that finds them all busy waits for one *inside its own future* — the schedule goes on —
//!   and the wait is part of its latency, since latency runs from the intended time. Without
//!   the cap, a slow server makes the client open thousands of connections at once, and the
//!   connection storm (SYN backlog overflow, 1 s SYN retries) becomes what is measured.
//! * `max_in_flight` caps outstanding requests (waiting or on the wire): a request due while
//!   it is full is not sent, and is *counted* (`in_flight_limit`), never silently delayed.
//!
//! Before the first intended time, a few connections (what the rate needs, [`warm_connections`])
//! are opened, so the run measures the server's steady state rather than a connect storm.
//!
//! Each worker records into its own histogram; they are merged at the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use http::Uri;
use rand::SeedableRng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::client::{HttpClient, Outcome};
use super::schedule::Schedule;
use crate::order::OrderMix;
use crate::report::new_histogram;

/// Error-breakdown key for requests not sent because the in-flight bound was full.
pub const IN_FLIGHT_LIMIT: &str = "in_flight_limit";

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Full URL of the endpoint to POST orders to.
    pub target: Uri,
    pub rate: f64,
    pub duration: Duration,
    /// Upper bound on outstanding requests (waiting for a connection or on the wire).
    pub max_in_flight: usize,
    /// Upper bound on requests on the wire, i.e. open HTTP/1 connections.
    pub connections: usize,
    /// A request with no response this long after its intended time counts as `timeout`.
    pub timeout: Duration,
    /// Worker tasks sharing the schedule; 0 means one per available core.
    pub workers: usize,
    /// Offered at `rate` before `duration` and left out of every figure: the first second
    /// of a run starting cold (new connections, a new process's first allocations, the
    /// server's pools filling) is not the steady state the run is meant to measure.
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
    pub errors: AtomicU64,
    /// Requests that had to wait for a free connection.
    pub queued: AtomicU64,
    /// Per-worker latency histograms (µs, successes only); only the owner writes, the
    /// progress task reads a few times a second, so the locks are all but uncontended.
    pub latency: Vec<Mutex<Histogram<u64>>>,
    /// Signalled once, when the measured part of the run begins (after any warm-up).
    pub measuring: tokio::sync::Notify,
    /// The worst latency (µs) of the requests due in each second of the schedule: a p99 made
    /// of one stall and one made of a steady tail look alike; this tells them apart.
    pub worst_per_second: Vec<AtomicU64>,
}

impl Live {
    /// All workers' latencies so far, merged.
    pub fn merged_latency(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for h in &self.latency {
            all.add(&*h.lock().expect("latency lock")).expect("same bounds");
        }
        all
    }
}

/// The raw result of a run, before it becomes a report.
#[derive(Debug)]
pub struct RunOutcome {
    pub scheduled: u64,
    pub sent: u64,
    pub ok: u64,
    /// Latency from intended send time to full response, µs, successful requests only.
    pub latency: Histogram<u64>,
    /// How late the generator itself sent each request (µs): if this is large, the client
    /// machine, not the server, is the limit.
    pub send_lag: Histogram<u64>,
    /// Failures by status code or transport error, including [`IN_FLIGHT_LIMIT`].
    pub errors: BTreeMap<String, u64>,
    /// Requests that waited for a free connection (not an error; the wait is in their latency).
    pub queued_for_connection: u64,
    /// From the first intended time to the last completion (at least the planned span).
    pub elapsed: Duration,
    /// The planned span of the schedule (`scheduled / rate`).
    pub span: Duration,
    /// From the first to the last completion (success or not).
    pub completion_window: Duration,
    /// The worst latency (µs) of the requests due in each second, failures included.
    pub worst_per_second: Vec<u64>,
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
    pub fn in_flight_limit_hits(&self) -> u64 {
        self.errors.get(IN_FLIGHT_LIMIT).copied().unwrap_or(0)
    }
}

struct Shared {
    client: HttpClient,
    target: Uri,
    schedule: Schedule,
    /// Requests before this index are the warm-up: sent, never counted.
    first_measured: u64,
    start: Instant,
    /// When the first measured request is due.
    measured_start: Instant,
    workers: u64,
    timeout: Duration,
    permits: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    live: Arc<Live>,
}

struct WorkerResult {
    send_lag: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    first_completion: Option<Instant>,
    last_completion: Instant,
}

/// Create the live counters for a plan; hand them to a progress display before [`run`].
pub fn live_for(plan: &LoadPlan) -> Arc<Live> {
    let workers = worker_count(plan);
    let (all, warm) = plan.schedule();
    Arc::new(Live {
        scheduled: all.total() - warm,
        measuring: tokio::sync::Notify::new(),
        sent: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        queued: AtomicU64::new(0),
        latency: (0..workers).map(|_| Mutex::new(new_histogram())).collect(),
        worst_per_second: (0..plan.duration.as_secs_f64().ceil().max(1.0) as usize).map(|_| AtomicU64::new(0)).collect(),
    })
}

/// Connections opened before the schedule starts: what the rate needs at ~4 ms per request,
/// plus a margin, within the connection bound.
fn warm_connections(plan: &LoadPlan) -> usize {
    ((plan.rate * 0.004).ceil() as usize + 8).min(plan.connections.max(1))
}

fn worker_count(plan: &LoadPlan) -> usize {
    if plan.workers > 0 { plan.workers } else { std::thread::available_parallelism().map_or(2, |n| n.get()).max(2) }
}

/// Run the plan to the end: every scheduled request is sent (or counted as not sent) and
/// every sent request has completed or timed out.
pub async fn run(plan: &LoadPlan, client: HttpClient, live: Arc<Live>) -> RunOutcome {
    client.warm_up(&plan.target, warm_connections(plan)).await;
    let (schedule, first_measured) = plan.schedule();
    let workers = live.latency.len();
    // A short lead-in so every worker is parked on its timer before request 0 is due.
    let start = Instant::now() + Duration::from_millis(20);
    let measured_start = start + schedule.offset(first_measured);
    let signal = live.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(measured_start).await;
        signal.measuring.notify_one();
    });
    let shared = Arc::new(Shared {
        client,
        target: plan.target.clone(),
        schedule,
        first_measured,
        start,
        measured_start,
        workers: workers as u64,
        timeout: plan.timeout,
        permits: Arc::new(Semaphore::new(plan.max_in_flight.max(1))),
        connections: Arc::new(Semaphore::new(plan.connections.max(1))),
        live: live.clone(),
    });
    let handles: Vec<_> = (0..workers).map(|w| tokio::spawn(worker(shared.clone(), w))).collect();

    let mut send_lag = new_histogram();
    let mut errors = BTreeMap::new();
    let mut last = start + schedule.span();
    let span = schedule.span() - schedule.offset(first_measured);
    let mut first: Option<Instant> = None;
    let mut last_done: Option<Instant> = None;
    for h in handles {
        let r = h.await.expect("load worker panicked");
        send_lag.add(&r.send_lag).expect("same bounds");
        for (k, v) in r.errors {
            *errors.entry(k).or_insert(0) += v;
        }
        last = last.max(r.last_completion);
        if let Some(f) = r.first_completion {
            first = Some(first.map_or(f, |x| x.min(f)));
            last_done = Some(last_done.map_or(r.last_completion, |x| x.max(r.last_completion)));
        }
    }
    RunOutcome {
        scheduled: schedule.total() - first_measured,
        sent: live.sent.load(Ordering::Relaxed),
        ok: live.ok.load(Ordering::Relaxed),
        latency: live.merged_latency(),
        send_lag,
        errors,
        queued_for_connection: live.queued.load(Ordering::Relaxed),
        elapsed: last - measured_start,
        span,
        completion_window: match (first, last_done) {
            (Some(f), Some(l)) => l - f,
            _ => Duration::ZERO,
        },
        worst_per_second: live.worst_per_second.iter().map(|w| w.load(Ordering::Relaxed)).collect(),
    }
}

async fn worker(shared: Arc<Shared>, w: usize) -> WorkerResult {
    let mix = OrderMix::default();
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let mut send_lag = new_histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_completion = shared.start;
    let mut first_completion = None;
    let mut in_flight = FuturesUnordered::new();
    let total = shared.schedule.total();
    let mut next = w as u64;

    let due_at = |i: u64| shared.start + shared.schedule.offset(i);
    let sleep = tokio::time::sleep_until(due_at(next));
    tokio::pin!(sleep);

    loop {
        let sending = next < total;
        if !sending && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some(done) = in_flight.next() => {
                let done: Done = done;
                if !done.measured {
                    continue;
                }
                last_completion = last_completion.max(done.at);
                first_completion.get_or_insert(done.at);
                let second = (done.intended - shared.measured_start).as_secs() as usize;
                if let Some(w) = shared.live.worst_per_second.get(second) {
                    w.fetch_max(micros(done.at - done.intended), Ordering::Relaxed);
                }
                if done.outcome.is_success() {
                    shared.live.ok.fetch_add(1, Ordering::Relaxed);
                    let mut h = shared.live.latency[w].lock().expect("latency lock");
                    h.saturating_record(micros(done.at - done.intended));
                } else {
                    shared.live.errors.fetch_add(1, Ordering::Relaxed);
                    *errors.entry(done.outcome.error_key()).or_insert(0) += 1;
                }
            }
            () = &mut sleep, if sending => {
                let now = Instant::now();
                // Catch up on everything due: the timer wakes at ms granularity, and a busy
                // machine may wake it late; the lateness is measured, not hidden.
                while next < total && due_at(next) <= now {
                    let intended = due_at(next);
                    let measured = next >= shared.first_measured;
                    next += shared.workers;
                    if measured {
                        send_lag.saturating_record(micros(now - intended));
                    }
                    match shared.permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            if measured {
                                shared.live.sent.fetch_add(1, Ordering::Relaxed);
                            }
                            let body = mix.next_body(&mut rng);
                            in_flight.push(send(shared.clone(), body, intended, measured, permit));
                        }
                        Err(_) if !measured => {}
                        Err(_) => {
                            shared.live.errors.fetch_add(1, Ordering::Relaxed);
                            *errors.entry(IN_FLIGHT_LIMIT.to_string()).or_insert(0) += 1;
                        }
                    }
                }
                if next < total {
                    sleep.as_mut().reset(due_at(next));
                }
            }
        }
    }
    WorkerResult { send_lag, errors, first_completion, last_completion }
}

/// A completed request.
struct Done {
    outcome: Outcome,
    /// False for a warm-up request.
    measured: bool,
    intended: Instant,
    at: Instant,
}

/// One request: wait for a connection if all are busy, then send. The in-flight permit is
/// held until the response is read or the deadline passes.
async fn send(shared: Arc<Shared>, body: Bytes, intended: Instant, measured: bool, permit: OwnedSemaphorePermit) -> Done {
    let deadline = intended + shared.timeout;
    let request = async {
        let _connection = match shared.connections.clone().try_acquire_owned() {
            Ok(c) => c,
            Err(_) => {
                if measured {
                    shared.live.queued.fetch_add(1, Ordering::Relaxed);
                }
                shared.connections.clone().acquire_owned().await.expect("semaphore never closed")
            }
        };
        shared.client.post_json(shared.target.clone(), body).await
    };
    let outcome = tokio::time::timeout_at(deadline, request).await.unwrap_or(Outcome::Timeout);
    drop(permit);
    Done { outcome, measured, intended, at: Instant::now() }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}
