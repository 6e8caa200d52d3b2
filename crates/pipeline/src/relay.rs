//! The outbox relay: applies committed metric deltas to Redis, each exactly once, in order per
//! source.
//!
//! A writer applies its own entry right after committing it (the fast path, which gives v2 and
//! v3 their low freshness) and deletes it in its next transaction. When applying fails, or the
//! process dies first, the entry stays in PostgreSQL; it is applied by the same writer's next
//! [`apply_committed`] (the fence reports a gap and [`drain`] fills it) or by the periodic
//! [`sweep`] that adopts dead writers' entries (and, as no-ops, a stopped writer's last one).

use std::time::Duration;

use chrono::Utc;
use coffee_core::{Applied, Order};
use coffee_store::{OutboxEntry, PgPool, Projection, postgres};

use crate::freshness;

/// Applies `entry` (just committed by its writer). Records the freshness of `orders`, the
/// orders it counts, when it is applied here. `Ok` means Redis now holds the entry (applied
/// now, before, or by draining a gap first): the writer passes its seq as `applied_upto` to
/// its next [`postgres::commit_batch`], which deletes it from the outbox. The outcome says
/// which of the three it was.
pub async fn apply_committed(pool: &PgPool, projection: &Projection, entry: &OutboxEntry, orders: &[Order]) -> anyhow::Result<Applied> {
    let applied = projection.apply(entry).await?;
    match applied {
        Applied::Applied => {
            let now = Utc::now();
            for o in orders {
                freshness::record(entry.version, o.accepted_at, now, 1);
            }
        }
        Applied::Duplicate => {}
        Applied::Gap { fence } => {
            tracing::info!(source = %entry.source, fence, seq = entry.seq, "outbox gap; draining the source first");
            drain(pool, projection, &entry.source).await?;
        }
    }
    Ok(applied)
}

/// Refuses to start a writer whose Redis projection is ahead of PostgreSQL.
///
/// A fence beyond the source's last committed seq cannot come from this database: PostgreSQL
/// was reset or replaced while Redis kept the old namespace. Left alone, every new delta would
/// look like a replay and be skipped, and the metrics would silently stop moving.
pub async fn check_projection(pool: &PgPool, projection: &Projection, version: coffee_core::Version) -> anyhow::Result<()> {
    let client = pool.get().await?;
    let prefix = format!("{}:", version.as_str());
    for (source, fence) in projection.fences(version).await? {
        if !source.starts_with(&prefix) {
            continue; // the v1 aggregator's fence is a transaction id, not an outbox seq
        }
        let (seq, _) = postgres::position(&client, &source).await?;
        anyhow::ensure!(
            fence <= seq as u64,
            "the Redis projection of {source} is at {fence} but PostgreSQL only reached {seq}: this Redis namespace \
             was written from another (or a reset) database. With every writer stopped, run \
             `coffee-rt reconcile --version {} --fix --force`, or use a fresh COFFEE_RT_NAMESPACE",
            version.as_str()
        );
    }
    Ok(())
}

/// Applies every outbox entry of one source in order, then deletes them.
pub async fn drain(pool: &PgPool, projection: &Projection, source: &str) -> anyhow::Result<usize> {
    let client = pool.get().await?;
    let pattern = source.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let mut applied = 0;
    loop {
        let entries = postgres::pending_outbox(&client, &pattern, Duration::ZERO, 500).await?;
        if entries.is_empty() {
            return Ok(applied);
        }
        let (n, removed) = apply_in_order(&client, projection, &entries).await?;
        applied += n;
        // No entry could be applied or dropped: a gap only `reconcile --fix` can close. Stop
        // here instead of spinning; the entries stay in PostgreSQL.
        anyhow::ensure!(removed > 0, "outbox of {source} blocked by a gap in Redis; run `coffee-rt reconcile --fix`");
    }
}

/// Adopts entries older than `older_than` from every source matching `source_like` (a LIKE
/// pattern): entries their writer left behind when it died or lost Redis.
pub async fn sweep(pool: &PgPool, projection: &Projection, source_like: &str, older_than: Duration) -> anyhow::Result<usize> {
    let client = pool.get().await?;
    let entries = postgres::pending_outbox(&client, source_like, older_than, 1000).await?;
    Ok(apply_in_order(&client, projection, &entries).await?.0)
}

/// Publishes `coffee_rt_outbox_entries{version}`: the deltas of `version`'s writers still in the
/// outbox. It stays near the number of writers when Redis keeps up; growing, it means Redis
/// (or a gap) holds the projection back while PostgreSQL keeps every order.
pub async fn publish_outbox_depth(pool: &PgPool, version: coffee_core::Version) -> anyhow::Result<()> {
    let client = pool.get().await?;
    let depth = postgres::outbox_depth(&client, &format!("{}:%", version.as_str())).await?;
    metrics::gauge!("coffee_rt_outbox_entries", "version" => version.as_str()).set(depth as f64);
    Ok(())
}

/// Returns how many entries were applied and how many were removed from the outbox (applied
/// now or found already applied).
async fn apply_in_order(
    client: &deadpool_postgres::Client,
    projection: &Projection,
    entries: &[OutboxEntry],
) -> anyhow::Result<(usize, usize)> {
    let (mut applied, mut removed) = (0, 0);
    let mut blocked: Option<&str> = None;
    for e in entries {
        if blocked == Some(e.source.as_str()) {
            continue;
        }
        match projection.apply(e).await? {
            Applied::Applied => applied += 1,
            Applied::Duplicate => {}
            Applied::Gap { fence } => {
                // An older entry of this source is missing from the outbox. That only happens
                // when Redis lost its state (it keeps nothing on disk here): `reconcile --fix`
                // rebuilds the projection and its fences from PostgreSQL.
                tracing::error!(source = %e.source, fence, seq = e.seq, "outbox gap that PostgreSQL cannot fill; run `coffee-rt reconcile --fix`");
                blocked = Some(&e.source);
                continue;
            }
        }
        postgres::delete_outbox(client, &e.source, e.seq).await?;
        removed += 1;
    }
    Ok((applied, removed))
}
