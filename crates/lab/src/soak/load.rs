//! The soak's load: fresh orders spread over v1, v2 and v3 and over the `serve` processes, each
//! retried with the same body until it is acknowledged, as a terminal would do through an
//! outage. The API is idempotent on `order_id`, so a retry of a request that did land is
//! answered again and stored once; the audit checks that it was.
//!
//! Open loop at a fixed rate, with one bound: at most [`MAX_OUTSTANDING`] orders unacknowledged
//! at once. During an outage the sending then slows to the rate at which orders are
//! acknowledged, as it would in a café whose terminals each wait for their order, instead of
//! queueing an hour of orders in memory.

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::ledger::{Ledger, Sent};
use crate::ApiVersion;
use crate::load::client::{HttpClient, Outcome};
use crate::order::OrderMix;

/// Orders in flight (sent, not yet acknowledged) at most.
pub const MAX_OUTSTANDING: usize = 4096;
/// An attempt with no answer this long is a timeout and is retried. Longer than the v1
/// batcher's worst commit, short enough that a request lost in a broken connection is retried
/// soon.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry backoff: doubled per attempt from the first, up to the last, with jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often the open loop wakes to send what is due.
const TICK: Duration = Duration::from_millis(5);

/// The sender: shared by the probe and the open loop.
pub struct Load {
    client: HttpClient,
    /// Order URL per path, per server: `urls[version][server]`.
    urls: [Vec<Uri>; 3],
    ledger: Arc<Ledger>,
    mix: OrderMix,
    outstanding: Arc<Semaphore>,
}

impl Load {
    pub fn new(servers: &[String], ledger: Arc<Ledger>) -> anyhow::Result<Arc<Load>> {
        anyhow::ensure!(!servers.is_empty(), "no server to send to");
        let urls = ApiVersion::ALL.map(|v| servers.iter().map(|s| v.order_url(s).parse::<Uri>()).collect::<Result<Vec<_>, _>>());
        let [a, b, c] = urls;
        Ok(Arc::new(Load {
            client: HttpClient::new(),
            urls: [a?, b?, c?],
            ledger,
            mix: OrderMix::default(),
            outstanding: Arc::new(Semaphore::new(MAX_OUTSTANDING)),
        }))
    }

    /// Sends order number `n` (its path is `n mod 3`, its first server `n / 3 mod servers`),
    /// drawn with `rng`, and retries it until it is answered for good. Holds one of the
    /// [`MAX_OUTSTANDING`] permits meanwhile.
    fn one(self: Arc<Self>, n: u64, rng: &mut StdRng, permit: tokio::sync::OwnedSemaphorePermit) {
        let version = ApiVersion::ALL[(n % 3) as usize];
        let order = self.mix.next_order(rng);
        let body = bytes::Bytes::from(serde_json::to_vec(&order).expect("an order serializes"));
        let sent = Sent { version, drink: order.drink, store: order.store, price_cents: (order.price * 100.0).round() as i64 };
        self.ledger.sent(order.order_id, sent);
        let jitter_seed = rng.random::<u64>();
        tokio::spawn(async move {
            let _permit = permit;
            let mut jitter = StdRng::seed_from_u64(jitter_seed);
            let urls = &self.urls[(n % 3) as usize];
            let first_server = (n / 3) as usize;
            let started = Instant::now();
            let mut attempt: u32 = 0;
            loop {
                // Each retry goes to the next server, as a load balancer would send it.
                let uri = urls[(first_server + attempt as usize) % urls.len()].clone();
                attempt += 1;
                let outcome =
                    tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.post_json(uri, body.clone())).await.unwrap_or(Outcome::Timeout);
                match outcome {
                    Outcome::Status(s) if s.is_success() => {
                        self.ledger.finished(order.order_id, version, Ok(()), attempt, started.elapsed());
                        return;
                    }
                    Outcome::Status(s) if s.is_client_error() && s.as_u16() != 408 && s.as_u16() != 429 => {
                        self.ledger.finished(order.order_id, version, Err(s.as_u16()), attempt, started.elapsed());
                        return;
                    }
                    other => self.ledger.retried(version, other.error_key()),
                }
                let backoff = BACKOFF_FIRST.saturating_mul(1 << (attempt - 1).min(8)).min(BACKOFF_MAX);
                tokio::time::sleep(backoff.mul_f64(jitter.random_range(0.5..1.0))).await;
            }
        });
    }

    /// Closed loop: `concurrency` senders, each sending its next order when its last one is
    /// acknowledged, for `duration`. Acknowledged orders per second.
    pub async fn probe(self: &Arc<Self>, duration: Duration, concurrency: usize, seed: u64) -> f64 {
        let before: u64 = self.ledger.acknowledged().values().sum();
        let started = Instant::now();
        let until = started + duration;
        let mut senders = tokio::task::JoinSet::new();
        for k in 0..concurrency {
            let load = Arc::clone(self);
            senders.spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let one_at_a_time = Arc::new(Semaphore::new(1));
                let mut n = k as u64;
                while Instant::now() < until {
                    let permit = Arc::clone(&one_at_a_time).acquire_owned().await.expect("never closed");
                    Arc::clone(&load).one(n, &mut rng, permit);
                    n += concurrency as u64;
                }
                // The last order's permit comes back when it is acknowledged.
                let _ = one_at_a_time.acquire().await;
            });
        }
        while senders.join_next().await.is_some() {}
        let after: u64 = self.ledger.acknowledged().values().sum();
        (after - before) as f64 / started.elapsed().as_secs_f64()
    }

    /// Open loop at `rate` orders/s until `until`, numbering orders from `first`: the orders
    /// sent, and those skipped because the loop was more than a second behind its schedule
    /// (waiting for permits through an outage).
    pub async fn open_loop(self: &Arc<Self>, rate: f64, until: Instant, first: u64, seed: u64) -> (u64, u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let started = Instant::now();
        let (mut sent, mut scheduled, mut skipped) = (0u64, 0u64, 0u64);
        let one_second = (rate as u64).max(1);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now = tick.tick().await;
            if now >= until {
                return (sent, skipped);
            }
            let due = (rate * (now - started).as_secs_f64()) as u64;
            if due > scheduled + one_second {
                // More than a second behind after an outage: the orders not sent meanwhile are
                // not made up in a burst afterwards, as a café's are not.
                skipped += due - one_second - scheduled;
                scheduled = due - one_second;
            }
            while scheduled < due {
                // Waits here while MAX_OUTSTANDING orders are unacknowledged.
                let permit = tokio::select! {
                    p = Arc::clone(&self.outstanding).acquire_owned() => p.expect("never closed"),
                    _ = tokio::time::sleep_until(until) => return (sent, skipped),
                };
                Arc::clone(self).one(first + sent, &mut rng, permit);
                sent += 1;
                scheduled += 1;
            }
        }
    }

    /// Waits until every order sent is answered for good, at most `timeout`. Whether all were.
    pub async fn settle(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.outstanding.acquire_many(MAX_OUTSTANDING as u32)).await.is_ok()
    }
}
