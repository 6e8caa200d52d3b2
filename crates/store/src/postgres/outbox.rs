//! The transactional outbox: orders and the metric delta they cause commit together.

use std::collections::HashSet;

use coffee_core::{MetricsDelta, Order, Version};
use deadpool_postgres::Client;
use deadpool_postgres::GenericClient;

use super::insert_orders;

/// A committed delta waiting for (or already through) Redis: the `seq`-th of `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub source: String,
    pub seq: i64,
    pub version: Version,
    pub delta: MetricsDelta,
}

/// What a committed batch changed.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// The outbox entry, when the batch held any new order.
    pub entry: Option<OutboxEntry>,
    /// The new orders (first copy of each id), to time their freshness.
    pub new_orders: Vec<Order>,
    /// Records skipped because the source had already committed their log offset.
    pub skipped_by_offset: usize,
}

/// Commits one batch for `source` in a single transaction: the new orders, the delta they make
/// (in the outbox) and the source's position.
///
/// `orders` may carry log offsets (`Some` for a Kafka partition, ascending); records at or below
/// the committed offset are dropped first, so a replayed batch that overlaps the last one only
/// partly still inserts each record once. The position row is locked for the transaction, so
/// two writers that both believe they own a source serialise here instead of double-writing.
/// `consumed_upto` is the last log offset the batch covers, including records that carried no
/// order (dead-lettered ones), so they are not read again.
///
/// `applied_upto` is how far the caller knows Redis holds this source's deltas: those outbox
/// entries are deleted in the same transaction. Deleting each entry on its own right after
/// applying it cost a second commit (a WAL flush) per batch; folded in here it is free, and an
/// entry left behind when the writer stops is adopted by the sweep as a duplicate.
///
/// Five round trips however large the batch: BEGIN, lock the position, insert the orders, the
/// outbox and position writes pipelined, COMMIT. Every statement is prepared once per
/// connection.
pub async fn commit_batch(
    client: &mut Client,
    version: Version,
    source: &str,
    orders: &[(Order, Option<i64>)],
    consumed_upto: Option<i64>,
    applied_upto: Option<i64>,
) -> Result<Committed, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Creates the row on a source's first batch and locks it either way.
    let lock = tx
        .prepare_cached(
            "INSERT INTO sink_positions (source) VALUES ($1)
             ON CONFLICT (source) DO UPDATE SET source = EXCLUDED.source
             RETURNING seq, log_offset",
        )
        .await?;
    let row = tx.query_one(&lock, &[&source]).await?;
    let (seq, committed_offset): (i64, Option<i64>) = (row.get(0), row.get(1));

    let already = |off: &Option<i64>| matches!((off, committed_offset), (Some(o), Some(c)) if *o <= c);
    let fresh: Vec<&(Order, Option<i64>)> = orders.iter().filter(|(_, off)| !already(off)).collect();
    let skipped_by_offset = orders.len() - fresh.len();
    let batch: Vec<Order> = fresh.iter().map(|(o, _)| o.clone()).collect();
    let inserted: HashSet<uuid::Uuid> = insert_orders(&tx, version, &batch).await?.into_iter().collect();

    // First copy of each new id only: a batch may hold a client's retry of the same order.
    let mut seen = HashSet::new();
    let new_orders: Vec<Order> = batch.into_iter().filter(|o| inserted.contains(&o.order_id) && seen.insert(o.order_id)).collect();

    let new_offset = fresh.iter().filter_map(|(_, off)| *off).chain(consumed_upto).chain(committed_offset).max();
    let mut entry = None;
    let mut next_seq = seq;
    let (outbox, position, cleanup) = futures::try_join!(
        tx.prepare_cached("INSERT INTO metrics_outbox (source, seq, version, delta) VALUES ($1, $2, $3, $4)"),
        tx.prepare_cached("UPDATE sink_positions SET seq = $2, log_offset = $3 WHERE source = $1"),
        tx.prepare_cached("DELETE FROM metrics_outbox WHERE source = $1 AND seq <= $2"),
    )?;
    let json = if new_orders.is_empty() {
        serde_json::Value::Null
    } else {
        next_seq = seq + 1;
        let delta = MetricsDelta::from_orders(&new_orders);
        let json = serde_json::to_value(&delta).expect("delta serialises");
        entry = Some(OutboxEntry { source: source.to_owned(), seq: next_seq, version, delta });
        json
    };
    let version_str = version.as_str();
    let applied = applied_upto.unwrap_or(0);
    let add_entry = async {
        if entry.is_some() {
            tx.execute(&outbox, &[&source, &next_seq, &version_str, &json]).await?;
        }
        Ok(())
    };
    let clean_up = async {
        if applied_upto.is_some() {
            tx.execute(&cleanup, &[&source, &applied]).await?;
        }
        Ok::<_, tokio_postgres::Error>(())
    };
    // Polled together, the statements go out back to back: one round trip for all of them.
    let move_position = async { tx.execute(&position, &[&source, &next_seq, &new_offset]).await };
    futures::try_join!(add_entry, move_position, clean_up)?;
    tx.commit().await?;
    Ok(Committed { entry, new_orders, skipped_by_offset })
}

/// Outbox entries not yet deleted, oldest first per source. `source_like` is a SQL LIKE
/// pattern (`v2:%` for every v2 worker); `older_than` leaves young entries to their writer.
pub async fn pending_outbox<C: GenericClient>(
    client: &C,
    source_like: &str,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<OutboxEntry>, tokio_postgres::Error> {
    let secs = older_than.as_secs_f64();
    let rows = client
        .query(
            "SELECT source, seq, version, delta FROM metrics_outbox
             WHERE source LIKE $1 AND created_at <= now() - make_interval(secs => $2)
             ORDER BY source, seq LIMIT $3",
            &[&source_like, &secs, &limit],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let version: String = r.get(2);
        let delta: serde_json::Value = r.get(3);
        out.push(OutboxEntry {
            source: r.get(0),
            seq: r.get(1),
            version: version.parse().expect("CHECKed version"),
            delta: serde_json::from_value(delta).expect("outbox holds MetricsDelta JSON"),
        });
    }
    Ok(out)
}

/// Removes an entry once Redis holds it (applied now or before).
pub async fn delete_outbox<C: GenericClient>(client: &C, source: &str, seq: i64) -> Result<(), tokio_postgres::Error> {
    client.execute("DELETE FROM metrics_outbox WHERE source = $1 AND seq = $2", &[&source, &seq]).await?;
    Ok(())
}

/// How many deltas of the sources matching `source_like` (a LIKE pattern) the outbox holds.
pub async fn outbox_depth<C: GenericClient>(client: &C, source_like: &str) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one("SELECT count(*) FROM metrics_outbox WHERE source LIKE $1", &[&source_like]).await?.get(0))
}
