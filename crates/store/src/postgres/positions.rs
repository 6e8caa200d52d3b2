//! `sink_positions`: how far each writer (a v2 consumer, a v3 partition) has committed.
//!
//! A row holds the writer's last outbox `seq` and, for a log-based source, the last log offset
//! it consumed, both moved in the same transaction as its orders (see [`super::commit_batch`]).

use std::{collections::HashMap, str::FromStr, time::Duration};

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::{Config, NoTls};

/// Where a source stands: its last outbox seq and last committed log offset.
pub async fn position<C: GenericClient>(client: &C, source: &str) -> Result<(i64, Option<i64>), tokio_postgres::Error> {
    let row = client.query_opt("SELECT seq, log_offset FROM sink_positions WHERE source = $1", &[&source]).await?;
    Ok(row.map(|r| (r.get(0), r.get(1))).unwrap_or((0, None)))
}

/// The last consumed log offset of each of `sources` that has one.
pub async fn log_offsets(client: &tokio_postgres::Client, sources: &[String]) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT source, log_offset FROM sink_positions WHERE source = ANY($1) AND log_offset IS NOT NULL", &[&sources])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// [`log_offsets`] on a connection of its own, for a caller outside any pool's runtime: Kafka's
/// rebalance callback runs synchronously inside the consumer's poll, so it cannot await the
/// pool; it runs this on a thread of its own instead.
pub async fn log_offsets_once(url: &str, sources: &[String]) -> anyhow::Result<HashMap<String, i64>> {
    let mut config = Config::from_str(url).context("parsing DATABASE_URL")?;
    config.connect_timeout(Duration::from_secs(2));
    let (client, conn) = config.connect(NoTls).await.context("connecting to PostgreSQL")?;
    let task = tokio::spawn(conn);
    let offsets = log_offsets(&client, sources).await;
    drop(client);
    let _ = task.await;
    Ok(offsets?)
}

/// What PostgreSQL can still replay into Redis for one source: its last committed outbox seq
/// and the range of its entries still in the outbox (deleted oldest first, so contiguous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayable {
    pub source: String,
    pub seq: i64,
    pub outbox: Option<(i64, i64)>,
}

impl Replayable {
    /// True when a projection whose fence for this source is `fence` can be brought up to date
    /// from the outbox: it already holds every delta, or the next one it needs is still there.
    /// False means Redis lost deltas PostgreSQL no longer keeps: only a rebuild helps.
    pub fn reachable_from(&self, fence: u64) -> bool {
        let fence = fence as i64;
        fence >= self.seq || self.outbox.is_some_and(|(min, max)| min <= fence + 1 && fence < max)
    }
}

/// [`Replayable`] for every source matching `source_like` (a LIKE pattern, e.g. `v2:%`).
pub async fn replayable<C: GenericClient>(client: &C, source_like: &str) -> Result<Vec<Replayable>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT p.source, p.seq, min(o.seq), max(o.seq)
               FROM sink_positions p LEFT JOIN metrics_outbox o ON o.source = p.source
              WHERE p.source LIKE $1 AND p.seq > 0
              GROUP BY p.source, p.seq",
            &[&source_like],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let (min, max): (Option<i64>, Option<i64>) = (r.get(2), r.get(3));
            Replayable { source: r.get(0), seq: r.get(1), outbox: min.zip(max) }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::Replayable;

    fn source(seq: i64, outbox: Option<(i64, i64)>) -> Replayable {
        Replayable { source: "v2:a".into(), seq, outbox }
    }

    #[test]
    fn a_fence_at_or_past_the_position_is_up_to_date() {
        assert!(source(5, None).reachable_from(5));
        assert!(source(5, Some((5, 5))).reachable_from(5));
    }

    #[test]
    fn a_fence_behind_is_fine_while_the_outbox_holds_the_next_delta() {
        assert!(source(7, Some((5, 7))).reachable_from(4));
        assert!(source(7, Some((3, 7))).reachable_from(5));
    }

    #[test]
    fn a_fence_behind_what_the_outbox_keeps_is_lost() {
        // FLUSHALL: no fence at all, entries 1..=5 long deleted.
        assert!(!source(7, Some((6, 7))).reachable_from(0));
        assert!(!source(7, None).reachable_from(0));
        // An AOF that lost its last second: fence 3, entries up to 5 already deleted.
        assert!(!source(7, Some((6, 7))).reachable_from(3));
    }
}
