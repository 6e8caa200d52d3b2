//! The on-disk size of each store: PostgreSQL's `orders` with its indexes, ClickHouse's active
//! parts after `OPTIMIZE TABLE … FINAL` merged them.

use anyhow::Context;
use coffee_warehouse::clickhouse::{ClickHouse, quote};
use coffee_warehouse::schema::ORDERS;
use serde::Deserialize;
use tokio::time::Instant;

use crate::results::analytics::StorageSize;

/// The active parts of `{db}.orders`, summed (`system.parts`).
#[derive(Debug, Deserialize)]
struct Parts {
    parts: u64,
    rows: u64,
    bytes_on_disk: u64,
    compressed: u64,
    uncompressed: u64,
}

/// Parts, rows, bytes on disk, compressed and uncompressed column bytes.
async fn parts(ch: &ClickHouse) -> anyhow::Result<[u64; 5]> {
    let sql = format!(
        "SELECT count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS bytes_on_disk,
                sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS uncompressed
         FROM system.parts WHERE active AND database = {} AND table = {}",
        quote(ch.database()),
        quote(ORDERS)
    );
    let rows: Vec<Parts> = ch.query_json(&sql).await.context("system.parts")?;
    let p = rows.first().context("system.parts returned no row")?;
    Ok([p.parts, p.rows, p.bytes_on_disk, p.compressed, p.uncompressed])
}

/// Sizes of both stores, once `rows` orders are in each. Merges ClickHouse's parts first
/// (`OPTIMIZE TABLE … FINAL`), and checks that the merged parts hold exactly `rows` rows: the
/// replacing merge has collapsed every replayed copy.
pub async fn measure(pg: &tokio_postgres::Client, ch: &ClickHouse, rows: u64) -> anyhow::Result<StorageSize> {
    let r = pg
        .query_one("SELECT pg_relation_size('orders'), pg_indexes_size('orders'), pg_total_relation_size('orders')", &[])
        .await
        .context("PostgreSQL sizes")?;
    let (table, indexes, total): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    let [loaded, ..] = parts(ch).await?;
    let t = Instant::now();
    ch.execute(&format!("OPTIMIZE TABLE {} FINAL", ch.table(ORDERS))).await.context("OPTIMIZE TABLE … FINAL")?;
    let optimize_s = t.elapsed().as_secs_f64();
    let [merged, ch_rows, on_disk, compressed, uncompressed] = parts(ch).await?;
    anyhow::ensure!(ch_rows == rows, "ClickHouse's merged parts hold {ch_rows} rows, PostgreSQL {rows}");
    Ok(StorageSize {
        pg_table_bytes: table as u64,
        pg_indexes_bytes: indexes as u64,
        pg_total_bytes: total as u64,
        ch_parts_loaded: loaded,
        ch_parts: merged,
        ch_bytes_on_disk: on_disk,
        ch_compressed_bytes: compressed,
        ch_uncompressed_bytes: uncompressed,
        optimize_s: (optimize_s * 10.0).round() / 10.0,
    })
}
