//! The hub: one per server process, whatever the number of open sockets.
//!
//! It owns the only pub/sub subscription ([`super::subscriber`]) and the orders/s sampler, and
//! publishes the latest serialised snapshot through a `tokio::sync::watch`. A watch keeps only
//! the newest value: a socket that is slow to write simply reads the newest frame when it is
//! ready (skipping the ones in between), and the hub never waits for any socket.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::Utf8Bytes;
use chrono::Utc;
use coffee_core::Version;
use coffee_pipeline::freshness;
use coffee_store::{Keys, Projection, VersionSnapshot};
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{
    Accepted,
    frame::{Fingerprint, Snapshot, VersionView},
    series::Rates,
    subscriber,
};

/// At most one snapshot per this interval: ~10 pushes a second however fast orders come.
pub const MIN_PUSH_GAP: Duration = Duration::from_millis(100);
/// How often the orders/s series is sampled (and a missed change is caught).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Freshness samples are recorded just after the write that published the change; a change
/// of the freshness window alone is pushed only this long after a write of this namespace, so
/// samples recorded by other namespaces in the same process don't wake an idle dashboard.
const FRESHNESS_TAIL: Duration = Duration::from_secs(2);
/// A read of the projection that takes longer than this counts as Redis being unreachable.
const READ_BUDGET: Duration = Duration::from_secs(2);

/// What handlers hold: the latest frame and the stop signal. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    frames: watch::Receiver<Utf8Bytes>,
    stop: CancellationToken,
}

/// The hub's background work; await it after [`Hub::stop`] for a clean shutdown.
pub struct HubTask(JoinHandle<()>);

impl HubTask {
    pub async fn join(self) {
        if let Err(e) = self.0.await {
            tracing::error!(error = %e, "dashboard hub task failed");
        }
    }
}

impl Hub {
    /// Reads the first snapshot (so the first client gets data at once) and starts the hub.
    /// `timezone` is the café's: a "stale since" time is shown in it.
    pub async fn start(
        projection: Projection,
        redis_url: &str,
        accepted: Arc<Accepted>,
        timezone: chrono_tz::Tz,
    ) -> anyhow::Result<(Hub, HubTask)> {
        let client = redis::Client::open(redis_url)?;
        let stop = CancellationToken::new();
        let mut builder =
            Builder { projection, accepted, rates: Rates::default(), seq: 0, last: None, last_write: None, stale_since: None, timezone };
        builder.sample().await?;
        let (first, fingerprint) = builder.build().await?;
        builder.remember(fingerprint);
        let (tx, rx) = watch::channel(first);
        let dirty = Arc::new(Notify::new());
        let channel = Keys::changes_channel(builder.projection.namespace());
        let listener = tokio::spawn(subscriber::listen(client, channel, Arc::clone(&dirty), stop.clone()));
        let task = tokio::spawn(run(builder, tx, dirty, stop.clone(), listener));
        Ok((Hub { frames: rx, stop }, HubTask(task)))
    }

    /// A receiver positioned at the current frame.
    pub fn subscribe(&self) -> watch::Receiver<Utf8Bytes> {
        self.frames.clone()
    }

    /// Resolves when the server stops; sockets close with 1001 (going away).
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn run(mut b: Builder, tx: watch::Sender<Utf8Bytes>, dirty: Arc<Notify>, stop: CancellationToken, listener: JoinHandle<()>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_push = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = dirty.notified() => {}
            _ = tick.tick() => {
                if let Err(e) = tokio::time::timeout(READ_BUDGET, b.sample()).await.unwrap_or_else(|_| Err(anyhow::anyhow!("Redis did not answer"))) {
                    tracing::warn!(error = %e, "dashboard could not sample totals");
                }
            }
        }
        // Coalesce: whatever arrives during the gap is folded into the next build.
        let ready_at = last_push + MIN_PUSH_GAP;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(ready_at) => {}
        }
        match tokio::time::timeout(READ_BUDGET, b.build()).await.unwrap_or_else(|_| Err(anyhow::anyhow!("Redis did not answer"))) {
            Ok((frame, fingerprint)) => {
                // Back from stale: push even an unchanged frame, so pages say "live" again.
                if b.worth_pushing(&fingerprint) || b.stale_since.take().is_some() {
                    b.remember(fingerprint);
                    tx.send_replace(frame);
                    last_push = Instant::now();
                    metrics::counter!("coffee_rt_dashboard_pushes_total").increment(1);
                }
            }
            // Keep the last figures, marked stale: the page must not say "live" about numbers
            // it can no longer refresh. The next tick retries.
            Err(e) => {
                tracing::warn!(error = %e, "dashboard could not read the projection");
                if b.stale_since.is_none() {
                    let since = Utc::now();
                    b.stale_since = Some(since);
                    let stale = stale_frame(&tx.borrow(), since.with_timezone(&b.timezone), b.seq + 1);
                    if let Some(frame) = stale {
                        b.seq += 1;
                        tx.send_replace(frame);
                        metrics::counter!("coffee_rt_dashboard_pushes_total").increment(1);
                    }
                }
            }
        }
    }
    let _ = listener.await;
}

struct Builder {
    projection: Projection,
    accepted: Arc<Accepted>,
    rates: Rates,
    seq: u64,
    last: Option<Fingerprint>,
    last_write: Option<Instant>,
    /// When reading Redis first failed, while it still fails.
    stale_since: Option<chrono::DateTime<Utc>>,
    timezone: chrono_tz::Tz,
}

/// The last frame again, with `stale_since` (in the café's zone, with its offset) and a new seq.
fn stale_frame(last: &Utf8Bytes, since: chrono::DateTime<chrono_tz::Tz>, seq: u64) -> Option<Utf8Bytes> {
    let mut frame: serde_json::Value = serde_json::from_str(last.as_str()).ok()?;
    let object = frame.as_object_mut()?;
    object.insert("seq".into(), seq.into());
    object.insert("stale_since".into(), since.to_rfc3339_opts(chrono::SecondsFormat::Secs, false).into());
    object.insert("timezone".into(), since.timezone().name().into());
    Some(Utf8Bytes::from(frame.to_string()))
}

impl Builder {
    async fn sample(&mut self) -> anyhow::Result<()> {
        let keys: Vec<String> = Version::ALL.iter().map(|v| self.projection.keys(*v).metric("total_orders")).collect();
        let mut conn = self.projection.connection();
        let totals: Vec<Option<i64>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let totals = [0, 1, 2].map(|i| totals.get(i).copied().flatten().unwrap_or(0));
        self.rates.sample(Utc::now().timestamp(), totals);
        Ok(())
    }

    /// Reads every version and serialises the frame it would push next.
    async fn build(&mut self) -> anyhow::Result<(Utf8Bytes, Fingerprint)> {
        let now = Utc::now();
        let p = &self.projection;
        let (v1, v2, v3) = tokio::try_join!(p.snapshot(Version::V1, now), p.snapshot(Version::V2, now), p.snapshot(Version::V3, now))?;
        let snaps: [VersionSnapshot; 3] = [v1, v2, v3];
        for s in &snaps {
            let lag = self.accepted.lag_seconds(s.version, s.newest_accepted_at, now);
            metrics::gauge!("coffee_rt_freshness_lag_seconds", "version" => s.version.as_str()).set(lag);
        }
        let fingerprint = Fingerprint::of(&snaps, self.rates.generation());
        let rates = self.rates.frame();
        let versions = snaps
            .into_iter()
            .map(|metrics| {
                let freshness = freshness::summary(metrics.version);
                (metrics.version.as_str(), VersionView { metrics, freshness })
            })
            .collect();
        let frame = Snapshot {
            kind: "snapshot",
            seq: self.seq + 1,
            generated_at: now,
            versions,
            freshness_window_s: freshness::WINDOW_SECS,
            rates: &rates,
        };
        Ok((Utf8Bytes::from(serde_json::to_string(&frame)?), fingerprint))
    }

    fn worth_pushing(&self, f: &Fingerprint) -> bool {
        let Some(last) = &self.last else { return true };
        if f.written != last.written || f.current_hour != last.current_hour || f.rates != last.rates {
            return true;
        }
        f.freshness != last.freshness && self.last_write.is_some_and(|t| t.elapsed() < FRESHNESS_TAIL)
    }

    fn remember(&mut self, f: Fingerprint) {
        if self.last.as_ref().is_none_or(|l| l.written != f.written) {
            self.last_write = Some(Instant::now());
        }
        self.seq += 1;
        self.last = Some(f);
    }
}
