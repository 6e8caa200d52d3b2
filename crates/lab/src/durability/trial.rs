//! One kill trial: v2 orders at a fixed rate, SIGKILL of Redis mid-stream, Redis started again
//! from its data dir, more orders, then the worker drains and the client's acknowledgements
//! are counted against PostgreSQL ([`tally`]).
//!
//! Two scenarios. `live`: the worker runs throughout, as in production, so only what it had
//! not yet read at the kill is at risk. `backlog`: the worker starts only once Redis is back,
//! so every order acknowledged before the kill is still only in Redis when it dies: what
//! survives is exactly what Redis kept.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use coffee_pipeline::sources::v2_stream::{GROUP, ORDER_FIELD};
use coffee_store::Keys;
use tokio::time::Instant;

use super::plan::{mode_name, persistence, scenario_name};
use super::poster::{Poster, Sent};
use super::results::Trial;
use super::world::{NAMESPACE, World};
use crate::config::{KillScenario, RedisAof};

/// The drain is over when PostgreSQL's rows have not changed for this long.
const STABLE_FOR: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(250);

/// Which trial, and its phases.
#[derive(Debug, Clone)]
pub struct TrialSpec {
    pub mode: RedisAof,
    pub scenario: KillScenario,
    pub trial: u32,
    pub rate: f64,
    pub before_kill: Duration,
    pub after_restart: Duration,
    pub drain_timeout: Duration,
}

/// Runs one trial in a world of its own, removed after whatever happened.
pub async fn run_trial(bin: &Path, database_url: &str, brokers: &str, spec: &TrialSpec) -> anyhow::Result<Trial> {
    let live = spec.scenario == KillScenario::Live;
    let mut world = World::start(bin, database_url, brokers, persistence(spec.mode), live).await?;
    let result = kill_and_count(&mut world, spec).await;
    world.remove(result.is_err()).await;
    result.with_context(|| format!("{} {} trial {}", mode_name(spec.mode), scenario_name(spec.scenario), spec.trial))
}

async fn kill_and_count(world: &mut World, spec: &TrialSpec) -> anyhow::Result<Trial> {
    let poster = Poster::start(&world.url, spec.rate)?;
    tokio::time::sleep(spec.before_kill).await;
    world.ensure_running()?;
    let aof_delayed_fsync = aof_delayed_fsync(&world.redis.url()).await;
    let killed = Instant::now();
    world.redis.kill().await?;
    world.redis.start_again().await.context("starting Redis again from its data dir")?;
    let back = Instant::now();
    if spec.scenario == KillScenario::Backlog {
        world.start_worker()?;
    }
    tokio::time::sleep(spec.after_restart).await;
    let sent = poster.finish().await?;
    let posted = Instant::now();
    world.ensure_running()?;

    let acked: HashSet<uuid::Uuid> = sent.iter().filter(|s| s.acked()).map(|s| s.order_id).collect();
    let drained = drain(world, &acked, spec.drain_timeout).await?;
    let drain_ms = posted.elapsed().as_secs_f64() * 1000.0;
    world.ensure_running()?;
    let (stored, tally) = (&drained.stored, tally(&sent, &drained.stored, killed));
    // Where the lost ones went: still in the stream (the pipeline dropped them) or in the dead
    // letters, or nowhere in Redis (Redis lost them).
    let lost: HashSet<uuid::Uuid> = acked.difference(stored).copied().collect();
    let (lost_in_stream, lost_dead_lettered) = if lost.is_empty() {
        (0, 0)
    } else {
        let url = world.redis.url();
        let count = |ids: HashSet<uuid::Uuid>| ids.intersection(&lost).count() as u64;
        (
            count(stream_order_ids(&url, &Keys::stream(NAMESPACE)).await?),
            count(stream_order_ids(&url, &Keys::dead_letters(NAMESPACE)).await?),
        )
    };
    Ok(Trial {
        mode: mode_name(spec.mode),
        scenario: scenario_name(spec.scenario),
        trial: spec.trial,
        sent: sent.len() as u64,
        acked: tally.acked,
        acked_before_kill: tally.acked_before_kill,
        lost: tally.lost,
        loss_window_ms: tally.loss_window_ms,
        last_loss_before_kill_ms: tally.last_loss_before_kill_ms,
        unacked_stored: tally.unacked_stored,
        failures: tally.failures,
        redis_down_ms: (back - killed).as_secs_f64() * 1000.0,
        aof_delayed_fsync,
        stored: stored.len() as u64,
        drain_ms,
        drained: drained.complete,
        pending_at_end: drained.pending,
        lost_in_stream,
        lost_dead_lettered,
    })
}

/// What the drain found.
struct Drained {
    stored: HashSet<uuid::Uuid>,
    /// Entries delivered to the worker but never acknowledged, still in the group at the end.
    pending: u64,
    /// False when the drain timed out with entries still pending or rows still changing.
    complete: bool,
}

/// Waits until PostgreSQL holds every acknowledged order, or nothing more can arrive: its v2
/// rows unchanged for [`STABLE_FOR`] and the consumer group with nothing pending or unread.
/// An entry delivered by the Redis that was killed and replayed from its AOF stays pending
/// until the worker claims it (`--claim-idle`, 30 s): late, not lost, so the drain waits.
async fn drain(world: &World, acked: &HashSet<uuid::Uuid>, timeout: Duration) -> anyhow::Result<Drained> {
    let (client, connection) =
        tokio_postgres::connect(&world.database_url(), tokio_postgres::NoTls).await.context("connecting to the scratch database")?;
    tokio::spawn(connection);
    let deadline = Instant::now() + timeout;
    let (mut last_len, mut stable_since) = (usize::MAX, Instant::now());
    loop {
        let rows = client.query("SELECT order_id FROM orders WHERE version = 'v2'", &[]).await?;
        let stored: HashSet<uuid::Uuid> = rows.iter().map(|r| r.get(0)).collect();
        if acked.is_subset(&stored) {
            return Ok(Drained { stored, pending: 0, complete: true });
        }
        if stored.len() != last_len {
            (last_len, stable_since) = (stored.len(), Instant::now());
        }
        let (pending, unread) = group_backlog(&world.redis.url()).await?;
        if stable_since.elapsed() >= STABLE_FOR && pending == 0 && unread == 0 {
            return Ok(Drained { stored, pending, complete: true });
        }
        if Instant::now() >= deadline {
            return Ok(Drained { stored, pending, complete: false });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The v2 group's pending entries and its lag (entries not yet delivered); zeros when the
/// stream or the group is gone (a Redis that came back empty has nothing left to deliver).
async fn group_backlog(url: &str) -> anyhow::Result<(u64, u64)> {
    let mut conn = redis::Client::open(url)?.get_multiplexed_async_connection().await.context("connecting to the private Redis")?;
    let info: redis::RedisResult<redis::streams::StreamInfoGroupsReply> =
        redis::AsyncCommands::xinfo_groups(&mut conn, Keys::stream(NAMESPACE)).await;
    let Ok(info) = info else { return Ok((0, 0)) };
    Ok(info.groups.iter().find(|g| g.name == GROUP).map_or((0, 0), |g| (g.pending as u64, g.lag.unwrap_or(0) as u64)))
}

/// The `order_id`s of every entry of `stream` (its `order` field holds the order's record).
async fn stream_order_ids(url: &str, stream: &str) -> anyhow::Result<HashSet<uuid::Uuid>> {
    let mut conn = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
    let reply: redis::streams::StreamRangeReply = redis::AsyncCommands::xrange_all(&mut conn, stream).await?;
    let id_of = |e: &redis::streams::StreamId| -> Option<uuid::Uuid> {
        let text: String = e.get(ORDER_FIELD)?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?.get("order_id")?.as_str()?.parse().ok()
    };
    Ok(reply.ids.iter().filter_map(id_of).collect())
}

/// `aof_delayed_fsync` from `INFO persistence`; `None` when it cannot be read.
async fn aof_delayed_fsync(url: &str) -> Option<u64> {
    let mut conn = redis::Client::open(url).ok()?.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO").arg("persistence").query_async(&mut conn).await.ok()?;
    info.lines().find_map(|l| l.strip_prefix("aof_delayed_fsync:")).and_then(|v| v.trim().parse().ok())
}

/// The counts of one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub acked: u64,
    pub acked_before_kill: u64,
    pub lost: u64,
    pub loss_window_ms: f64,
    pub last_loss_before_kill_ms: f64,
    pub unacked_stored: u64,
    pub failures: BTreeMap<String, u64>,
}

/// The client's record against what PostgreSQL holds: an acknowledged order it lacks is lost;
/// the loss window runs from the first lost acknowledgement to the kill.
pub fn tally(sent: &[Sent], stored: &HashSet<uuid::Uuid>, killed: Instant) -> Tally {
    let mut t = Tally {
        acked: 0,
        acked_before_kill: 0,
        lost: 0,
        loss_window_ms: 0.0,
        last_loss_before_kill_ms: 0.0,
        unacked_stored: 0,
        failures: BTreeMap::new(),
    };
    let (mut first_lost, mut last_lost): (Option<Instant>, Option<Instant>) = (None, None);
    for s in sent {
        if !s.acked() {
            *t.failures.entry(s.outcome.error_key()).or_default() += 1;
            t.unacked_stored += u64::from(stored.contains(&s.order_id));
            continue;
        }
        t.acked += 1;
        t.acked_before_kill += u64::from(s.answered <= killed);
        if !stored.contains(&s.order_id) {
            t.lost += 1;
            first_lost = Some(first_lost.map_or(s.answered, |f| f.min(s.answered)));
            last_lost = Some(last_lost.map_or(s.answered, |l| l.max(s.answered)));
        }
    }
    // Signed: a loss acknowledged after the kill (by the restarted Redis) shows as negative.
    let before_kill = |at: Instant| {
        if at <= killed { (killed - at).as_secs_f64() * 1000.0 } else { -((at - killed).as_secs_f64() * 1000.0) }
    };
    t.loss_window_ms = first_lost.map_or(0.0, before_kill);
    t.last_loss_before_kill_ms = last_lost.map_or(0.0, before_kill);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::client::Outcome;

    #[test]
    fn lost_acknowledgements_and_their_window_before_the_kill() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let ok = Outcome::Status(http::StatusCode::ACCEPTED);
        let shed = Outcome::Status(http::StatusCode::SERVICE_UNAVAILABLE);
        let ids: Vec<uuid::Uuid> = (0..6).map(|_| uuid::Uuid::new_v4()).collect();
        let sent = vec![
            Sent { order_id: ids[0], answered: at(100), outcome: ok },                // stored
            Sent { order_id: ids[1], answered: at(700), outcome: ok },                // lost, first
            Sent { order_id: ids[2], answered: at(900), outcome: ok },                // lost, last
            Sent { order_id: ids[3], answered: at(1000), outcome: shed },             // 503, not stored
            Sent { order_id: ids[4], answered: at(1100), outcome: Outcome::Timeout }, // stored anyway
            Sent { order_id: ids[5], answered: at(1500), outcome: ok },               // after the restart, stored
        ];
        let stored: HashSet<uuid::Uuid> = [ids[0], ids[4], ids[5]].into();
        let t = tally(&sent, &stored, at(1000));
        assert_eq!((t.acked, t.acked_before_kill, t.lost, t.unacked_stored), (4, 3, 2, 1));
        assert_eq!((t.loss_window_ms, t.last_loss_before_kill_ms), (300.0, 100.0));
        assert_eq!(t.failures, BTreeMap::from([("503".to_string(), 1), ("timeout".to_string(), 1)]));

        let none = tally(&sent, &ids.iter().copied().collect(), at(1000));
        assert_eq!((none.lost, none.loss_window_ms), (0, 0.0));
    }
}
