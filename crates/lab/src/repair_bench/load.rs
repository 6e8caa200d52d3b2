//! The trial's load: v1, v2 and v3 orders at a third of the rate each, open loop, until told
//! to stop, with a record of every order (its `order_id` and when and how it was answered):
//! the record, not the server, says which orders were acknowledged.
//!
//! Each path has its own keep-alive connections and its own schedule, so v2's outage while
//! Redis is away (its requests answered 503, or slowly) does not make v1's and v3's requests
//! late. Within a path it is the load engine's pooled model (`crate::load::engine`): a due
//! request goes out on the first free connection, its latency runs from its intended send
//! time, and one whose deadline passed before a connection was free is a timeout, not sent.
//! Not the engine itself: that one counts orders, and this bench must know each one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use http::{Uri, header};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ApiVersion;
use crate::load::client::{Connection, Outcome};
use crate::load::engine::EARLY;
use crate::order::{self, OrderMix};
use crate::results::load::new_histogram;

/// What came of one order.
#[derive(Debug, Clone)]
pub struct Answer {
    pub order_id: uuid::Uuid,
    pub version: ApiVersion,
    /// When its answer arrived (or its deadline passed).
    pub answered: Instant,
    /// From its intended send time (or its send, if earlier) to `answered`, µs.
    pub took_us: u64,
    pub outcome: Outcome,
}

impl Answer {
    /// Acknowledged: any 2xx (v1 answers 201, v2 and v3 202), so that an answer the API may
    /// add later cannot hide a loss.
    pub fn acked(&self) -> bool {
        self.outcome.is_success()
    }
}

/// One path's share of the run.
#[derive(Debug)]
pub struct PathLoad {
    pub version: ApiVersion,
    pub rate: f64,
    pub answers: Vec<Answer>,
    /// Latency of the acknowledged orders, µs from the intended send time.
    pub latency: Histogram<u64>,
    /// Requests sent more than a millisecond after their intended time.
    pub late: u64,
}

impl PathLoad {
    /// Failures by status or transport error (`"503"`, `"timeout"`, `"connect"`, `"io"`).
    pub fn errors(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for a in self.answers.iter().filter(|a| !a.acked()) {
            *out.entry(a.outcome.error_key()).or_default() += 1;
        }
        out
    }
}

/// The whole run.
#[derive(Debug)]
pub struct LoadOutcome {
    pub started: Instant,
    pub stopped: Instant,
    pub paths: Vec<PathLoad>,
}

/// A running load.
pub struct RunningLoad {
    started: Instant,
    stop: CancellationToken,
    paths: Vec<tokio::task::JoinHandle<anyhow::Result<PathLoad>>>,
}

impl RunningLoad {
    /// Opens `connections` to `base_url` per path and starts sending, `rate` orders/s over
    /// the three paths; a request unanswered `timeout` after its intended time is a timeout.
    pub async fn start(base_url: &str, rate: f64, connections: usize, timeout: Duration) -> anyhow::Result<RunningLoad> {
        anyhow::ensure!(rate > 0.0 && rate.is_finite(), "the rate must be > 0, not {rate}");
        anyhow::ensure!(connections > 0, "at least one connection per path");
        let stop = CancellationToken::new();
        let mut paths = Vec::new();
        let mut opened = Vec::new();
        for version in ApiVersion::ALL {
            let target: Uri = version.order_url(base_url).parse()?;
            let authority = target.authority().context("the server URL needs a host")?.clone();
            let addr = tokio::net::lookup_host((authority.host(), authority.port_u16().unwrap_or(80)))
                .await?
                .next()
                .with_context(|| format!("{} resolves to no address", authority.host()))?;
            // Every connection is opened before the first request, as the load engine does.
            let conns = futures::future::join_all((0..connections).map(|_| Connection::open(addr))).await;
            opened.push((version, target, authority, addr, conns));
        }
        let started = Instant::now() + Duration::from_millis(20);
        for (version, target, authority, addr, conns) in opened {
            let shared = Arc::new(Shared {
                version,
                addr,
                host: header::HeaderValue::from_str(authority.as_str())?,
                path: target.path_and_query().map_or("/", |p| p.as_str()).parse()?,
                interval: Duration::from_secs_f64(3.0 / rate),
                start: started,
                timeout,
                next: AtomicU64::new(0),
                stop: stop.clone(),
            });
            paths.push(tokio::spawn(run_path(shared, conns, rate / 3.0)));
        }
        Ok(RunningLoad { started, stop, paths })
    }

    /// Stops sending and waits for every request in flight to be answered or time out.
    pub async fn finish(self) -> anyhow::Result<LoadOutcome> {
        self.stop.cancel();
        let stopped = Instant::now();
        let mut paths = Vec::new();
        for p in self.paths {
            paths.push(p.await.context("a load task panicked")??);
        }
        Ok(LoadOutcome { started: self.started, stopped, paths })
    }
}

struct Shared {
    version: ApiVersion,
    addr: SocketAddr,
    host: header::HeaderValue,
    path: Uri,
    /// Between two intended sends of this path.
    interval: Duration,
    start: Instant,
    timeout: Duration,
    /// The next request index of this path.
    next: AtomicU64,
    stop: CancellationToken,
}

/// One path: a task per connection, their records merged.
async fn run_path(shared: Arc<Shared>, conns: Vec<Option<Connection>>, rate: f64) -> anyhow::Result<PathLoad> {
    let tasks: Vec<_> = conns.into_iter().map(|c| tokio::spawn(connection(shared.clone(), c))).collect();
    let mut out = PathLoad { version: shared.version, rate, answers: Vec::new(), latency: new_histogram(), late: 0 };
    for t in tasks {
        let (answers, latency, late) = t.await.context("a load connection task panicked")?;
        out.answers.extend(answers);
        out.latency.add(&latency).expect("same bounds");
        out.late += late;
    }
    out.answers.sort_by_key(|a| a.answered);
    Ok(out)
}

/// Takes the path's next request, waits for its time, sends it, records the answer; until
/// the stop.
async fn connection(shared: Arc<Shared>, mut conn: Option<Connection>) -> (Vec<Answer>, Histogram<u64>, u64) {
    let (mix, mut rng) = (OrderMix::default(), order::rng());
    let (mut answers, mut latency, mut late) = (Vec::new(), new_histogram(), 0u64);
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let intended = shared.start + shared.interval.mul_f64(i as f64);
        let wake = intended.checked_sub(EARLY).unwrap_or(intended);
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            _ = tokio::time::sleep_until(wake) => {}
        }
        let order = mix.next_order(&mut rng);
        let body = bytes::Bytes::from(serde_json::to_vec(&order).expect("an order serializes"));
        let sent = Instant::now();
        let deadline = intended + shared.timeout;
        let outcome = if sent >= deadline {
            Outcome::Timeout
        } else {
            late += u64::from(sent.saturating_duration_since(intended) > Duration::from_millis(1));
            match tokio::time::timeout_at(deadline, exchange(&shared, &mut conn, body)).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    // The connection still carries the unanswered request: of no more use.
                    conn = None;
                    Outcome::Timeout
                }
            }
        };
        let answered = Instant::now();
        let took_us = u64::try_from((answered - sent.min(intended)).as_micros()).unwrap_or(u64::MAX).max(1);
        if outcome.is_success() {
            latency.saturating_record(took_us);
        }
        answers.push(Answer { order_id: order.order_id, version: shared.version, answered, took_us, outcome });
    }
    (answers, latency, late)
}

/// One request on the task's connection, opening a new one if there is none or it closed.
async fn exchange(shared: &Shared, conn: &mut Option<Connection>, body: bytes::Bytes) -> Outcome {
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
