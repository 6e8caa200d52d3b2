//! Redis losing its data, or dying, under load, on a private Redis (coffee_sandbox) the test may
//! kill: `coffee-rt up` keeps running with no command, and the metrics of every path come back
//! equal to a recomputation from PostgreSQL ([`truth`], SQL of its own).
//!
//! v2 acknowledges an order once it is in the Redis stream. With a Redis that keeps nothing
//! (no AOF), orders acknowledged but not yet consumed die with it: by design in that mode
//! (docs/ARCHITECTURE.md), so for v2 these tests compare Redis with what PostgreSQL holds, not
//! with the client's acknowledgements. With `appendfsync always` none may be lost.

use std::{
    process::Stdio,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use coffee_core::Version;
use coffee_sandbox::{Persistence, RedisServer};
use futures::StreamExt;
use serde_json::Value;
use tokio::{process::Child, time::Instant};

use crate::support::*;

/// How long after Redis answers again the metrics of every path must equal PostgreSQL's.
const REPAIRED_WITHIN: Duration = Duration::from_secs(10);

/// `coffee-rt up` on the shared PostgreSQL and Kafka and the private Redis, answering on a
/// port of its own.
struct Up {
    child: Child,
    base: String,
    client: reqwest::Client,
}

async fn up(env: &TestEnv) -> Up {
    serve(env, "up").await
}

/// `coffee-rt <role>` (`up` or `serve`) answering on a port of its own, once it is ready.
async fn serve(env: &TestEnv, role: &str) -> Up {
    let port = free_port();
    let mut cmd = env.command(&[role]);
    cmd.env("COFFEE_RT_LISTEN", format!("127.0.0.1:{port}")).env("COFFEE_RT_LOG", "warn,librdkafka=off,rdkafka=off").stdout(Stdio::null());
    let up = Up { child: cmd.spawn().unwrap(), base: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() };
    let ready = wait_until(Duration::from_secs(60), || async {
        up.client.get(format!("{}/readyz", up.base)).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "coffee-rt {role} is ready");
    up
}

/// Acknowledged orders by path, as the load's client saw them.
#[derive(Default)]
struct Acked {
    v1: Vec<Value>,
    v2: Vec<Value>,
    v3: Vec<Value>,
}

impl Acked {
    fn of(&self, version: Version) -> &[Value] {
        match version {
            Version::V1 => &self.v1,
            Version::V2 => &self.v2,
            Version::V3 => &self.v3,
        }
    }
}

/// A well-behaved client posting to `paths` in turn, `concurrency` in flight, until `stop` is
/// set: a 503 (Redis away for v2, the outage the test causes) is retried with the same body,
/// so the same `order_id`, for up to a minute. Every order it returns was acknowledged.
struct Load<'a> {
    up: &'a Up,
    paths: &'a [Version],
    stop: AtomicBool,
    acked: Mutex<Acked>,
}

impl Load<'_> {
    async fn run(&self, concurrency: usize) {
        futures::stream::iter(0..)
            .take_while(|_| std::future::ready(!self.stop.load(Ordering::Relaxed)))
            .for_each_concurrent(concurrency, |i| async move {
                let version = self.paths[i % self.paths.len()];
                let o = order(i);
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let res = self.up.client.post(format!("{}/api/{version}/order", self.up.base)).json(&o).send().await;
                    let status = res.as_ref().map_or(0, |r| r.status().as_u16());
                    match status {
                        200..=299 => break,
                        503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                        _ => panic!("{version} answered {status}: {:?}", res.map(|r| r.status())),
                    }
                }
                let mut acked = self.acked.lock().unwrap();
                match version {
                    Version::V1 => acked.v1.push(o),
                    Version::V2 => acked.v2.push(o),
                    Version::V3 => acked.v3.push(o),
                }
            })
            .await;
    }

    fn count(&self, version: Version) -> usize {
        self.acked.lock().unwrap().of(version).len()
    }

    /// Waits until every path has `n` more acknowledged orders than `from` (its counts).
    async fn flowing(&self, from: &[usize], n: usize, what: &str) {
        let ok =
            wait_until(Duration::from_secs(60), || async { self.paths.iter().zip(from).all(|(v, before)| self.count(*v) >= before + n) })
                .await;
        let counts: Vec<usize> = self.paths.iter().map(|v| self.count(*v)).collect();
        assert!(ok, "orders flow on every path {what}: {counts:?} acknowledged");
    }

    fn counts(&self) -> Vec<usize> {
        self.paths.iter().map(|v| self.count(*v)).collect()
    }
}

/// Waits until the metrics of every version equal PostgreSQL's, until `deadline`; returns,
/// per version, the time from `since` to the first match.
async fn all_match(env: &TestEnv, since: Instant, deadline: Instant) -> Vec<(Version, Duration)> {
    let mut out = Vec::new();
    for version in [Version::V1, Version::V2, Version::V3] {
        let left = deadline.saturating_duration_since(Instant::now());
        truth::wait_projection_matches(env, version, left).await;
        out.push((version, since.elapsed()));
    }
    out
}

/// How the private Redis loses its data.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// SIGKILL, down a second, started again with its data directory wiped.
    KilledRestartedEmpty,
    /// FLUSHALL while it runs.
    FlushAll,
}

impl Loss {
    /// Does it; returns when Redis answers again.
    async fn inflict(self, redis: &mut RedisServer) -> Instant {
        assert_ne!(redis.port(), 6379, "faults only ever on a private Redis");
        match self {
            Loss::KilledRestartedEmpty => {
                redis.kill().await.expect("SIGKILL of the private Redis");
                tokio::time::sleep(Duration::from_secs(1)).await;
                redis.start_empty().await.expect("the private Redis starts again, empty");
            }
            Loss::FlushAll => {
                let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
                let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("FLUSHALL on the private Redis");
            }
        }
        Instant::now()
    }
}

/// The private Redis loses everything (`loss`) while orders flow on all three paths; then the
/// metrics of every path must equal PostgreSQL's within [`REPAIRED_WITHIN`] of Redis answering
/// again, with no command run. Returns the load, and how long after Redis returned it stopped.
async fn lose_redis_under_load(redis: &mut RedisServer, env: &TestEnv, loss: Loss) -> (Acked, Duration) {
    let mut up = up(env).await;
    let paths = [Version::V1, Version::V2, Version::V3];
    let load = Load { up: &up, paths: &paths, stop: AtomicBool::new(false), acked: Mutex::default() };
    let (returned, stopped_at) = {
        let fault = async {
            load.flowing(&[0, 0, 0], 200, "before the fault").await;
            let returned = loss.inflict(redis).await;
            load.flowing(&load.counts(), 300, "after Redis returned").await;
            load.stop.store(true, Ordering::Relaxed);
            (returned, returned.elapsed())
        };
        let ((returned, stopped_at), ()) = tokio::join!(fault, load.run(24));
        (returned, stopped_at)
    };
    let acked = load.acked.into_inner().unwrap();
    let matched = all_match(env, returned, returned + REPAIRED_WITHIN).await;
    // And they stay equal: a repair that went on applying would show here.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for version in [Version::V1, Version::V2, Version::V3] {
        truth::assert_projection_matches(env, version).await;
    }
    eprintln!(
        "acknowledged v1 {} v2 {} v3 {}; load stopped {stopped_at:?} after Redis returned; metrics equal PostgreSQL after {matched:?}",
        acked.v1.len(),
        acked.v2.len(),
        acked.v3.len()
    );
    assert!(up.child.try_wait().unwrap().is_none(), "coffee-rt up kept running through the loss");
    up.child.start_kill().unwrap();
    (acked, stopped_at)
}

/// What the v2 acknowledgements lost: acknowledged orders PostgreSQL does not hold (the ones
/// still in the stream when Redis lost it).
async fn v2_lost(env: &TestEnv, acked: &Acked) -> i64 {
    let sent = truth::sum_of(&acked.v2);
    sent.count - truth::stored_as_sent(env, Version::V2, &acked.v2).await.count
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_and_restarted_empty_repairs_every_path_with_no_command() {
    let mut redis = RedisServer::start(Persistence::None).await.expect("a private redis-server");
    let env = TestEnv::with_services(5432, &redis.url());
    let (acked, stopped_at) = lose_redis_under_load(&mut redis, &env, Loss::KilledRestartedEmpty).await;
    assert!(stopped_at < REPAIRED_WITHIN, "the load stopped within the repair window ({stopped_at:?})");
    truth::assert_acked_stored(&env, Version::V1, &acked.v1).await;
    truth::assert_acked_stored(&env, Version::V3, &acked.v3).await;
    eprintln!("v2 orders acknowledged and lost with Redis's data (no AOF): {}", v2_lost(&env, &acked).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn flushall_under_load_repairs_every_path_and_loses_no_v1_or_v3_order() {
    let mut redis = RedisServer::start(Persistence::None).await.expect("a private redis-server");
    let env = TestEnv::with_services(5432, &redis.url());
    let (acked, stopped_at) = lose_redis_under_load(&mut redis, &env, Loss::FlushAll).await;
    assert!(stopped_at < REPAIRED_WITHIN, "the load stopped within the repair window ({stopped_at:?})");
    truth::assert_acked_stored(&env, Version::V1, &acked.v1).await;
    truth::assert_acked_stored(&env, Version::V3, &acked.v3).await;
    eprintln!("v2 orders acknowledged and lost with the flushed stream: {}", v2_lost(&env, &acked).await);
}

/// `appendfsync always`: Redis fsyncs every write before it answers, so an order the API
/// acknowledged (its XADD answered) survives a SIGKILL of Redis and is replayed from the AOF.
/// The API and the worker run as separate processes so the test can pause the worker
/// (SIGSTOP) while orders keep coming: the kill then certainly meets acknowledged orders that
/// only Redis holds.
#[tokio::test(flavor = "multi_thread")]
async fn redis_with_aof_always_killed_mid_stream_loses_no_acknowledged_v2_order() {
    acknowledged_v2_orders_survive_a_redis_kill(Persistence::AofAlways).await;
}

/// `appendfsync everysec` (the scripts' Redis): Redis writes the AOF before it answers and
/// fsyncs it once a second, so a SIGKILL of the Redis process (the kernel keeps what was
/// written) loses nothing acknowledged either; only a crash of the whole machine can lose the
/// last second, which no test here can cause.
#[tokio::test(flavor = "multi_thread")]
async fn redis_with_aof_everysec_killed_mid_stream_loses_no_acknowledged_v2_order() {
    acknowledged_v2_orders_survive_a_redis_kill(Persistence::AofEverySec).await;
}

async fn acknowledged_v2_orders_survive_a_redis_kill(persistence: Persistence) {
    let mut redis = RedisServer::start(persistence).await.expect("a private redis-server");
    let env = TestEnv::with_services(5432, &redis.url());
    let mut api = serve(&env, "serve").await;
    let mut worker = env.command(&["worker", "--consumer", "w1"]).env("COFFEE_RT_LOG", "warn").spawn().unwrap();
    let worker_pid = worker.id().unwrap().to_string();
    let signal = |sig: &str| assert!(std::process::Command::new("kill").args([sig, &worker_pid]).status().unwrap().success());
    let paths = [Version::V2];
    let load = Load { up: &api, paths: &paths, stop: AtomicBool::new(false), acked: Mutex::default() };
    let fault = async {
        load.flowing(&[0], 500, "before the kill").await;
        assert!(wait_until(Duration::from_secs(30), || async { env.rows(Version::V2).await > 0 }).await, "the worker commits");
        signal("-STOP");
        load.flowing(&load.counts(), 200, "while the worker is paused").await;
        let only_in_redis = v2_backlog(&env).await;
        redis.kill().await.expect("SIGKILL of the private Redis");
        tokio::time::sleep(Duration::from_secs(1)).await;
        redis.start_again().await.expect("the private Redis replays its AOF");
        let returned = Instant::now();
        signal("-CONT");
        load.flowing(&load.counts(), 300, "after Redis returned").await;
        load.stop.store(true, Ordering::Relaxed);
        (only_in_redis, returned)
    };
    let ((only_in_redis, returned), ()) = tokio::join!(fault, load.run(32));
    let acked = load.acked.into_inner().unwrap();
    eprintln!("{persistence:?}: {} v2 orders acknowledged; {only_in_redis} of them only in Redis when it was killed", acked.v2.len());
    assert!(only_in_redis >= 200, "the kill met acknowledged orders not yet in PostgreSQL ({only_in_redis})");
    let drained = wait_until(Duration::from_secs(60), || async {
        truth::stored_as_sent(&env, Version::V2, &acked.v2).await.count == acked.v2.len() as i64
    })
    .await;
    let stored = truth::stored_as_sent(&env, Version::V2, &acked.v2).await;
    assert!(drained, "every acknowledged v2 order reaches PostgreSQL: {stored} of {}", truth::sum_of(&acked.v2));
    assert_eq!(truth::rows(&env, Version::V2).await, truth::sum_of(&acked.v2), "each once");
    truth::wait_projection_matches(&env, Version::V2, Duration::from_secs(30)).await;
    eprintln!("v2 metrics equal PostgreSQL {:?} after Redis returned", returned.elapsed());
    assert!(worker.try_wait().unwrap().is_none(), "the worker kept running through the kill");
    assert!(api.child.try_wait().unwrap().is_none(), "the API kept running through the kill");
    worker.start_kill().unwrap();
    api.child.start_kill().unwrap();
}

/// v2 orders in the stream that PostgreSQL does not hold yet: stream length beyond the rows
/// committed (the stream is the test's own and nothing trims it at this size).
async fn v2_backlog(env: &TestEnv) -> i64 {
    let mut conn = env.redis().await;
    let len: i64 = redis::cmd("XLEN").arg(coffee_store::Keys::stream(&env.namespace)).query_async(&mut conn).await.unwrap();
    len - env.rows(Version::V2).await
}
