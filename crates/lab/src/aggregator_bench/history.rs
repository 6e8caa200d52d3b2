//! The order history the bench grows its table with: v1 orders generated in SQL with the load
//! generator's mix, 10 ms apart, ending now.

use anyhow::Context;

use super::{INCREMENT_ROWS, INCREMENT_TXNS};

/// Generated orders are 10 ms apart: the history of a steady 100 orders/s (the design papers'
/// v1 guess), so 10 M rows are about 28 hours of it, ending now.
pub const SPACING_MS: u64 = 10;
/// Rows per INSERT statement while growing the table.
const CHUNK: u64 = 1_000_000;
/// Growth steps adding at least this many rows drop the indexes and rebuild them after.
pub const REBUILD_FROM: u64 = 50_000;

/// The generator: rows `$1..=$2` of the history that starts at `$3`, as v1 orders.
pub const GENERATE_SQL: &str = "
INSERT INTO orders (order_id, version, drink, store, price_cents, ordered_at, accepted_at)
SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::int8), 12, '0') || '7' || substr(h, 1, 3)
        || '8' || substr(h, 4, 15))::uuid,
       'v1',
       drink,
       CASE WHEN rs < 0.35 THEN 'downtown' WHEN rs < 0.65 THEN 'uptown'
            WHEN rs < 0.85 THEN 'central' ELSE 'southend' END,
       CASE drink WHEN 'latte' THEN 450 + 5 * floor(rp * 46)::int
                  WHEN 'cappuccino' THEN 425 + 5 * floor(rp * 31)::int
                  ELSE 350 + 5 * floor(rp * 21)::int END,
       ts,
       ts + ra * interval '50 ms'
FROM (SELECT md5(i::text) AS h, random() AS rs, random() AS rp, random() AS ra,
             CASE WHEN rd < 0.45 THEN 'latte' WHEN rd < 0.75 THEN 'cappuccino'
                  ELSE 'americano' END AS drink,
             $3::timestamptz + i * interval '10 ms' AS ts
      FROM (SELECT i, random() AS rd FROM generate_series($1::int8, $2::int8) AS g(i)
            OFFSET 0) a
      OFFSET 0) b";

/// Insert rows `from..to` of the history starting at `base`; returns the rows inserted.
pub async fn generate(client: &tokio_postgres::Client, from: u64, to: u64, base: chrono::DateTime<chrono::Utc>) -> anyhow::Result<u64> {
    if to <= from {
        return Ok(0);
    }
    let (from, last) = (from as i64, to as i64 - 1);
    client.execute(GENERATE_SQL, &[&from, &last, &base]).await.context("generate orders")
}

/// Grow the table from `from` rows to `to` rows. Large steps drop the primary key and indexes
/// first and rebuild them after (what a bulk load does; the result is the same table).
pub async fn grow(client: &tokio_postgres::Client, from: u64, to: u64, base: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    let rebuild = to - from >= REBUILD_FROM;
    let mut recreate = Vec::new();
    if rebuild {
        for r in client
            .query(
                "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = 'orders'::regclass AND contype = 'p'",
                &[],
            )
            .await?
        {
            let (name, def): (String, String) = (r.get(0), r.get(1));
            client.batch_execute(&format!("ALTER TABLE orders DROP CONSTRAINT \"{name}\"")).await?;
            recreate.push(format!("ALTER TABLE orders ADD CONSTRAINT \"{name}\" {def}"));
        }
        for r in client
            .query(
                "SELECT indexname::text, indexdef FROM pg_indexes
                 WHERE schemaname = current_schema() AND tablename = 'orders'",
                &[],
            )
            .await?
        {
            let (name, def): (String, String) = (r.get(0), r.get(1));
            client.batch_execute(&format!("DROP INDEX \"{name}\"")).await?;
            recreate.push(def);
        }
    }
    let mut i = from;
    while i < to {
        let end = (i + CHUNK).min(to);
        generate(client, i, end, base).await?;
        i = end;
    }
    for sql in recreate {
        client.batch_execute(&sql).await.with_context(|| format!("rebuild: {sql}"))?;
    }
    client.batch_execute("VACUUM (ANALYZE) orders").await?;
    Ok(())
}

/// Add [`INCREMENT_ROWS`] rows in [`INCREMENT_TXNS`] transactions; returns the last
/// transaction's id.
pub async fn add_increment(client: &tokio_postgres::Client, from: u64, base: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    let per = INCREMENT_ROWS / INCREMENT_TXNS;
    for k in 0..INCREMENT_TXNS {
        let start = from + k * per;
        let end = if k + 1 == INCREMENT_TXNS { from + INCREMENT_ROWS } else { start + per };
        let n = generate(client, start, end, base).await?;
        anyhow::ensure!(n == end - start, "inserted {n} of {} rows", end - start);
    }
    let last: String = client.query_one("SELECT max(txid)::text FROM orders WHERE version = 'v1'", &[]).await?.get(0);
    Ok(last)
}
