//! Self-repair: when Redis loses a version's projection, it is rebuilt from PostgreSQL with no
//! human command.
//!
//! Redis can lose data in several ways: a restart of a Redis that keeps nothing on disk, a
//! failover to an empty replica, a FLUSHALL, or an AOF with `appendfsync everysec` that misses
//! its last second. The fences go with the metrics, the writers' next deltas become gaps the
//! outbox can no longer fill (it keeps only what Redis has not applied), and the metrics would
//! stop moving. Every writer process runs [`watch`]: once a second it compares each source's
//! Redis fence with what PostgreSQL can still replay ([`postgres::Replayable`]) and, when a
//! source is out of reach, rebuilds the version from one PostgreSQL snapshot, with the same
//! snapshot-and-fence logic as `reconcile --fix` (deltas committed after the snapshot still
//! apply on top, exactly once). Orders keep landing in PostgreSQL meanwhile; the writers'
//! deltas that arrive during the rebuild wait in the outbox and are applied after it.
//!
//! One process rebuilds at a time: the rebuild holds a PostgreSQL advisory lock (per database,
//! namespace and version) in an open transaction, so a crashed rebuilder releases it with its
//! connection. Processes that find the projection lost at the same time wait on the lock, then
//! check again and find it repaired.
//!
//! v1 needs none of this: its aggregator recomputes everything when its fence is missing.

use std::time::{Duration, Instant};

use chrono::Utc;
use coffee_core::Version;
use coffee_store::{PgPool, Projection, postgres};

use crate::{reconcile, relay};

/// How often a writer process checks its version's projection.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long the "rebuilding" marker outlives a rebuilder that died.
const MARKER_TTL: Duration = Duration::from_secs(120);

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Every source's fence is up to date, or behind by deltas still in the outbox (`behind`):
    /// normal for a moment after each commit, and a loss the outbox can still replay when it
    /// lasts (Redis lost only what the writers had not yet deleted).
    Intact { behind: Vec<(String, u64)> },
    /// These sources' fences are behind what PostgreSQL still keeps.
    Lost(Vec<String>),
}

/// What [`rebuild`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuilt {
    /// The projection now equals a PostgreSQL snapshot of `orders` orders.
    Rebuilt { orders: i64, took: Duration },
    /// Another process had repaired it by the time the lock was ours.
    AlreadyIntact,
}

/// Compares `version`'s Redis fences with what PostgreSQL can replay.
///
/// PostgreSQL is read first, Redis second: a fence only moves forward and an outbox entry is
/// deleted only once Redis holds it, so a writer running in between cannot make a healthy
/// projection look lost.
pub async fn check(pool: &PgPool, projection: &Projection, version: Version) -> anyhow::Result<Health> {
    let client = pool.get().await?;
    let sources = postgres::replayable(&client, &format!("{}:%", version.as_str())).await?;
    drop(client);
    if sources.is_empty() {
        return Ok(Health::Intact { behind: Vec::new() });
    }
    let fences = projection.fences(version).await?;
    let (mut lost, mut behind) = (Vec::new(), Vec::new());
    for s in sources {
        let fence = fences.get(&s.source).copied().unwrap_or(0);
        if !s.reachable_from(fence) {
            lost.push(s.source);
        } else if (fence as i64) < s.seq {
            behind.push((s.source, fence));
        }
    }
    Ok(if lost.is_empty() { Health::Intact { behind } } else { Health::Lost(lost) })
}

/// Rebuilds `version`'s projection from PostgreSQL if [`check`] still finds it lost once this
/// process holds the rebuild lock.
pub async fn rebuild(pool: &PgPool, projection: &Projection, version: Version) -> anyhow::Result<Rebuilt> {
    let mut client = pool.get().await?;
    let lock = client.transaction().await?;
    let key = format!("coffee-rt rebuild {} {}", projection.namespace(), version.as_str());
    lock.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&key]).await?;
    if matches!(check(pool, projection, version).await?, Health::Intact { .. }) {
        lock.commit().await?;
        return Ok(Rebuilt::AlreadyIntact);
    }
    let started = Instant::now();
    metrics::gauge!("coffee_rt_projection_rebuilding", "version" => version.as_str()).set(1.0);
    projection.mark_rebuilding(version, Utc::now(), MARKER_TTL).await?;
    let result = reconcile::replace_from_snapshot(pool, projection, version).await;
    // The marker goes whatever happened: a failed rebuild is retried by the next check, and a
    // dashboard must not say "rebuilding" about a projection nobody is working on.
    let cleared = projection.clear_rebuilding(version).await;
    metrics::gauge!("coffee_rt_projection_rebuilding", "version" => version.as_str()).set(0.0);
    lock.commit().await?;
    let report = result?;
    cleared?;
    let took = started.elapsed();
    metrics::counter!("coffee_rt_projection_rebuilds_total", "version" => version.as_str()).increment(1);
    metrics::histogram!("coffee_rt_projection_rebuild_seconds", "version" => version.as_str()).record(took.as_secs_f64());
    Ok(Rebuilt::Rebuilt { orders: report.total.count, took })
}

/// Checks `version`'s projection every [`CHECK_EVERY`], rebuilds it when lost and replays
/// sources that stay behind, until `stop` resolves.
/// Errors (Redis or PostgreSQL away) are logged at debug level: the writers report those, and
/// the check simply runs again once both answer.
pub async fn watch(pool: PgPool, projection: Projection, version: Version, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_behind: Vec<(String, u64)> = Vec::new();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        match check(&pool, &projection, version).await {
            Ok(Health::Intact { behind }) => {
                // Behind at the same fence a second later: nobody is applying those deltas
                // (their writer is idle or gone). Replay them from the outbox now rather than
                // wait for the relay's sweep; the fence makes a race with the writer harmless.
                for (source, _) in behind.iter().filter(|b| was_behind.contains(b)) {
                    match relay::drain(&pool, &projection, source).await {
                        Ok(n) => tracing::info!(source = %source, applied = n, "replayed a stalled source from the outbox"),
                        Err(e) => tracing::debug!(source = %source, error = %e, "replaying from the outbox failed"),
                    }
                }
                was_behind = behind;
            }
            Ok(Health::Lost(sources)) => {
                tracing::warn!(version = version.as_str(), ?sources, "Redis lost the projection; rebuilding it from PostgreSQL");
                match rebuild(&pool, &projection, version).await {
                    Ok(Rebuilt::Rebuilt { orders, took }) => {
                        tracing::info!(version = version.as_str(), orders, took_ms = took.as_millis() as u64, "projection rebuilt")
                    }
                    Ok(Rebuilt::AlreadyIntact) => {
                        tracing::info!(version = version.as_str(), "projection already rebuilt by another process")
                    }
                    Err(e) => tracing::warn!(version = version.as_str(), error = %e, "rebuilding the projection failed; retrying"),
                }
            }
            Err(e) => tracing::debug!(version = version.as_str(), error = %e, "projection check failed"),
        }
    }
}
