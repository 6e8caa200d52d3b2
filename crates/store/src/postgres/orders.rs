use chrono::{DateTime, Utc};
use coffee_core::{Order, Version};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// Inserts `orders` in one statement (UNNEST of column arrays: one round trip however many
/// rows) and returns the ids that were new. Ids already present are left alone, which is what
/// makes every retry and replay safe.
pub async fn insert_orders<C: GenericClient>(client: &C, version: Version, orders: &[Order]) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let drinks: Vec<&str> = orders.iter().map(|o| o.drink.as_str()).collect();
    let stores: Vec<&str> = orders.iter().map(|o| o.store.as_str()).collect();
    let prices: Vec<i64> = orders.iter().map(|o| o.price.0).collect();
    let ordered: Vec<DateTime<Utc>> = orders.iter().map(|o| o.ordered_at).collect();
    let accepted: Vec<DateTime<Utc>> = orders.iter().map(|o| o.accepted_at).collect();
    let stmt = client
        .prepare_cached(
            "INSERT INTO orders (order_id, version, drink, store, price_cents, ordered_at, accepted_at)
             SELECT * FROM UNNEST($1::uuid[], array_fill($2::text, ARRAY[cardinality($1::uuid[])]),
                                  $3::text[], $4::text[], $5::int8[], $6::timestamptz[], $7::timestamptz[])
             ON CONFLICT (order_id) DO NOTHING
             RETURNING order_id",
        )
        .await?;
    let rows = client.query(&stmt, &[&ids, &version.as_str(), &drinks, &stores, &prices, &ordered, &accepted]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// An order as PostgreSQL holds it, for comparing a repeated `order_id` with its first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    pub order_id: Uuid,
    pub version: Version,
    pub drink: String,
    pub store: String,
    pub price_cents: i64,
    pub ordered_at: DateTime<Utc>,
}

/// The stored orders among `ids`, whichever path accepted them.
pub async fn stored_orders<C: GenericClient>(client: &C, ids: &[Uuid]) -> Result<Vec<StoredOrder>, tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = client
        .prepare_cached("SELECT order_id, version, drink, store, price_cents, ordered_at FROM orders WHERE order_id = ANY($1)")
        .await?;
    let rows = client.query(&stmt, &[&ids]).await?;
    Ok(rows
        .iter()
        .map(|r| StoredOrder {
            order_id: r.get(0),
            version: r.get::<_, String>(1).parse().expect("orders.version holds v1, v2 or v3"),
            drink: r.get(2),
            store: r.get(3),
            price_cents: r.get(4),
            ordered_at: r.get(5),
        })
        .collect())
}
