//! Overload: twice, then five times, the sustainable rate against the real `coffee-rt serve`
//! (its own process, so the RSS read is the server's alone). Only 2xx and 503 come back, the
//! RSS stays under [`RSS_BOUND_MB`], the accepted requests' p99 is printed, and within 5 s
//! of the load stopping an order is served normally.
//!
//! The sustainable rate is measured first: v1 with `--max-in-flight 4`, so the cap (4 orders
//! waiting for their batch commit) and not this 2-core machine's CPU is what saturates, and a
//! load generator in the same machine can offer several times that rate.
//! Needs `cargo build -p coffee-rt` first (scripts/test builds every binary).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use coffee_testkit::{free_port, wait_until};
use futures::StreamExt;
use tokio::task::JoinSet;

use crate::{common::TestEnv, edge_support::order_now};

const MAX_IN_FLIGHT: usize = 4;
/// The bound stated in docs/RELIABILITY.md. Measured: ~40 MB idle, at most ~60 MB at 5×.
const RSS_BOUND_MB: f64 = 150.0;
/// What "served normally" means after the load: an order acknowledged within this long.
const NORMAL: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_the_sustainable_rate_sheds_with_503_in_bounded_memory_and_recovers() {
    let env = TestEnv::new();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = env.spawn(&["serve"], &[("COFFEE_RT_LISTEN", &listen), ("COFFEE_RT_MAX_IN_FLIGHT", &MAX_IN_FLIGHT.to_string())]);
    let pid = child.id().expect("serve runs");
    let url = format!("http://{listen}/api/v1/order");
    // A client must not reuse a keep-alive connection the server may be closing: the server
    // closes one idle for the header timeout (5 s), so the pool forgets them after 1 s.
    let client = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(1)).build().unwrap();
    let ready = wait_until(Duration::from_secs(30), || async {
        client.get(format!("http://{listen}/readyz")).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "serve became ready");
    let idle_rss = rss_mb(pid);

    let sustainable = calibrate(&client, &url, Duration::from_secs(5)).await;
    eprintln!("sustainable: {sustainable:.0} orders/s (closed loop, {MAX_IN_FLIGHT} clients); RSS idle {idle_rss:.1} MB");
    assert!(sustainable > 50.0, "the server serves at all: {sustainable:.0}/s");

    for (factor, secs) in [(2.0, 30), (5.0, 10)] {
        let run = open_loop(&client, &url, factor * sustainable, Duration::from_secs(secs), pid).await;
        eprintln!("{factor}x: {run}");
        assert!(run.other.is_empty(), "{factor}x: only 2xx and 503 answers; also got {:?}", &run.other[..run.other.len().min(10)]);
        assert!(run.shed > 0, "{factor}x was overload: some requests were shed");
        assert!(run.accepted > 0, "{factor}x: the server kept accepting");
        assert!(run.max_rss_mb < RSS_BOUND_MB, "{factor}x: RSS {:.1} MB, bound {RSS_BOUND_MB} MB", run.max_rss_mb);

        let recovered = run.recovered;
        eprintln!("{factor}x: an order served normally {recovered:?} after the load stopped");
        assert!(recovered <= Duration::from_secs(5), "{factor}x: service normal within 5 s, took {recovered:?}");
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// Orders per second accepted by `MAX_IN_FLIGHT` clients posting back to back for `time`.
async fn calibrate(client: &reqwest::Client, url: &str, time: Duration) -> f64 {
    let started = Instant::now();
    let accepted = futures::stream::iter(0..MAX_IN_FLIGHT)
        .map(|_| async move {
            let mut n = 0usize;
            while started.elapsed() < time {
                let res = client.post(url).json(&order_now()).send().await.expect("request");
                n += usize::from(res.status().is_success());
            }
            n
        })
        .buffer_unordered(MAX_IN_FLIGHT)
        .fold(0, |a, b| async move { a + b })
        .await;
    accepted as f64 / started.elapsed().as_secs_f64()
}

/// A status (or why there was none) and the milliseconds it took.
type Answer = (Result<u16, String>, f64);

struct Run {
    sent: usize,
    accepted: usize,
    shed: usize,
    other: Vec<String>,
    accepted_ms: Vec<f64>,
    shed_ms: Vec<f64>,
    max_rss_mb: f64,
    /// The most file descriptors the server held (its connections, and a few dozen more).
    max_fds: usize,
    offered: f64,
    /// From the end of the offer to the first order served within [`NORMAL`].
    recovered: Duration,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "offered {:.0}/s, sent {}, 2xx {} (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms), 503 {} (p99 {:.1} ms), other {}, max RSS {:.1} MB, max fds {}",
            self.offered,
            self.sent,
            self.accepted,
            pct(&self.accepted_ms, 0.50),
            pct(&self.accepted_ms, 0.99),
            pct(&self.accepted_ms, 1.0),
            self.shed,
            pct(&self.shed_ms, 0.99),
            self.other.len(),
            self.max_rss_mb,
            self.max_fds
        )
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Offers `rate` requests a second for `time` whatever the answers (open loop: a slow server
/// does not slow the offer), sampling the server's RSS every 250 ms.
async fn open_loop(client: &reqwest::Client, url: &str, rate: f64, time: Duration, pid: u32) -> Run {
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let outstanding = Arc::new(AtomicUsize::new(0));
    let max_rss = Arc::new(Mutex::new((0.0f64, 0usize)));
    let sampler = {
        let max_rss = Arc::clone(&max_rss);
        tokio::spawn(async move {
            loop {
                let (rss, fds) = (rss_mb(pid), open_fds(pid));
                {
                    let mut m = max_rss.lock().unwrap();
                    *m = (m.0.max(rss), m.1.max(fds));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let mut sent = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while started.elapsed() < time {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        while sent < due {
            sent += 1;
            let (client, url, answers, outstanding) = (client.clone(), url.to_owned(), Arc::clone(&answers), Arc::clone(&outstanding));
            outstanding.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let t = Instant::now();
                // Longer than the server's own request timeout (30 s): the server answers first.
                let res = client.post(&url).json(&order_now()).timeout(Duration::from_secs(40)).send().await;
                let answer = match res {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let retry_after = r.headers().contains_key("retry-after");
                        let _ = r.bytes().await;
                        if status == 503 && !retry_after { Err("503 without Retry-After".into()) } else { Ok(status) }
                    }
                    Err(e) => Err(format!("{e:?}")),
                };
                answers.lock().unwrap().push((answer, t.elapsed().as_secs_f64() * 1000.0));
                outstanding.fetch_sub(1, Ordering::Relaxed);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    let offered = sent as f64 / started.elapsed().as_secs_f64();
    // From the moment the offer stops, a new order is tried while the answers still due drain.
    let stopped = Instant::now();
    let (recovered, ()) = tokio::join!(recover(client, url, stopped), async { while tasks.join_next().await.is_some() {} });
    sampler.abort();
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let (max_rss_mb, max_fds) = *max_rss.lock().unwrap();
    let mut run = Run {
        sent,
        accepted: 0,
        shed: 0,
        other: Vec::new(),
        accepted_ms: Vec::new(),
        shed_ms: Vec::new(),
        max_rss_mb,
        max_fds,
        offered,
        recovered,
    };
    for (answer, ms) in answers {
        match answer {
            Ok(s) if (200..300).contains(&s) => {
                run.accepted += 1;
                run.accepted_ms.push(ms);
            }
            Ok(503) => {
                run.shed += 1;
                run.shed_ms.push(ms);
            }
            Ok(s) => run.other.push(format!("status {s}")),
            Err(e) => run.other.push(e),
        }
    }
    run.accepted_ms.sort_by(f64::total_cmp);
    run.shed_ms.sort_by(f64::total_cmp);
    run
}

/// How long after `stopped` an order was first acknowledged within [`NORMAL`] (tries for 10 s).
async fn recover(client: &reqwest::Client, url: &str, stopped: Instant) -> Duration {
    while stopped.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        let res = client.post(url).json(&order_now()).timeout(Duration::from_secs(2)).send().await;
        if res.is_ok_and(|r| r.status().is_success()) && t.elapsed() <= NORMAL {
            return stopped.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stopped.elapsed()
}

/// The resident set of process `pid`, from /proc/<pid>/status.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server is running");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

/// How many file descriptors process `pid` holds.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}
