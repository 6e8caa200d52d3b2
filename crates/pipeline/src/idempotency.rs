//! `order_id` is an idempotency key, across all three paths, the way payment APIs treat theirs.
//!
//! A repeat of an order (same id, same drink, store, price and time) gets the first
//! acceptance's answer again, marked as a replay, and stores nothing. The same id with another
//! body is a conflict (409) and changes nothing: silently keeping the first meaning, as a bare
//! `ON CONFLICT DO NOTHING` does, would acknowledge an order that is never counted.
//!
//! v2 and v3 answer before PostgreSQL sees the order, so the API keeps a registry in Redis:
//! `{ns}orders:id:{uuid}` holds the version and body of the first use. A claim is `pending`
//! (short expiry) until the path acknowledged the order, then `done` for [`Registry::ttl`]:
//! a process that dies between claim and acknowledgement leaves a claim that expires, so a
//! retry is never answered "replayed" for an order that was never logged. PostgreSQL stays the
//! authority: v1 compares with the stored row itself (so v1 holds even when the registry has
//! expired or Redis is away), and the commit step of v2 and v3 inserts each id once whatever
//! the registry said.

use std::time::Duration;

use coffee_core::{Order, Version};
use coffee_store::postgres::StoredOrder;
use redis::{Script, aio::ConnectionManager};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Ingest, IngestError};

/// How long a `pending` claim lives: longer than any path takes to acknowledge (v1's batch
/// timeout is 3 s, v3's producer 1.5 s).
const PENDING_FOR: Duration = Duration::from_secs(10);

/// What an order's id meant to the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// First use: the path has the order.
    Accepted,
    /// The same order again: nothing stored; answer as `version` answered the first time.
    Replayed { version: Version },
    /// The id was first used, by `version`, for another order; `fields` name what differs.
    Conflict { version: Version, fields: Vec<&'static str> },
}

/// The first use of an id, as the registry and PostgreSQL remember it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prior {
    #[serde(rename = "v")]
    pub version: Version,
    pub drink: String,
    pub store: String,
    pub price_cents: i64,
    /// Microseconds since the epoch (what PostgreSQL keeps).
    pub ordered_at_us: i64,
    /// Absent (false) while the first use is still being acknowledged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
}

impl Prior {
    pub fn of(order: &Order, version: Version) -> Prior {
        Prior {
            version,
            drink: order.drink.clone(),
            store: order.store.clone(),
            price_cents: order.price.0,
            ordered_at_us: order.ordered_at.timestamp_micros(),
            done: false,
        }
    }

    pub fn stored(row: &StoredOrder) -> Prior {
        Prior {
            version: row.version,
            drink: row.drink.clone(),
            store: row.store.clone(),
            price_cents: row.price_cents,
            ordered_at_us: row.ordered_at.timestamp_micros(),
            done: true,
        }
    }

    /// The fields of `order` that differ from this first use; empty for a true repeat.
    pub fn differences(&self, order: &Order) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.drink != order.drink {
            fields.push("drink");
        }
        if self.store != order.store {
            fields.push("store");
        }
        if self.price_cents != order.price.0 {
            fields.push("price");
        }
        if self.ordered_at_us != order.ordered_at.timestamp_micros() {
            fields.push("timestamp");
        }
        fields
    }

    /// What a request carrying `order` gets, given this first use.
    pub fn outcome(&self, order: &Order) -> Outcome {
        let fields = self.differences(order);
        if fields.is_empty() { Outcome::Replayed { version: self.version } } else { Outcome::Conflict { version: self.version, fields } }
    }
}

/// What a path's [`Ingest::submit`] found: only v1, which writes PostgreSQL before answering,
/// can find the id already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    New,
    AlreadyStored(Prior),
}

/// The registry of ids in use, in Redis, shared by every API process and path.
#[derive(Clone)]
pub struct Registry {
    conn: ConnectionManager,
    namespace: String,
    ttl: Duration,
    release: Script,
}

enum Claim {
    Ours,
    Taken(Prior),
}

impl Registry {
    /// `ttl`: how long a used id is remembered (payment APIs keep keys for 24 h). Past it, a
    /// repeat reaches the path again; PostgreSQL still stores the id once.
    pub fn new(conn: ConnectionManager, namespace: &str, ttl: Duration) -> Registry {
        Registry {
            conn,
            namespace: namespace.to_owned(),
            ttl,
            release: Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"),
        }
    }

    fn key(&self, id: &Uuid) -> String {
        format!("{}orders:id:{id}", self.namespace)
    }

    /// Submits `order` to `path` (version `version`) unless its id is already in use.
    /// `client_id` is false when the API generated the id: nobody can repeat it, so no claim.
    pub async fn submit(&self, path: &dyn Ingest, version: Version, order: Order, client_id: bool) -> Result<Outcome, IngestError> {
        if !client_id {
            return finish(path.submit(order.clone()).await?, &order);
        }
        let mine = Prior::of(&order, version);
        let claimed = match self.claim(&order.order_id, &mine).await {
            Ok(Claim::Ours) => true,
            Ok(Claim::Taken(prior)) if prior.done => {
                let outcome = prior.outcome(&order);
                count(version, &outcome);
                return Ok(outcome);
            }
            Ok(Claim::Taken(_)) => return Err(IngestError::InProgress),
            Err(e) => {
                // Redis away: v1 still checks PostgreSQL; v3 still stores the id once.
                tracing::debug!(error = %e, "idempotency registry unreachable; submitting unchecked");
                metrics::counter!("coffee_rt_idempotency_unchecked_total", "version" => version.as_str()).increment(1);
                false
            }
        };
        let submitted = match path.submit(order.clone()).await {
            Ok(s) => s,
            Err(e) => {
                if claimed {
                    let _ = self.release(&order.order_id, &mine).await;
                }
                return Err(e);
            }
        };
        if claimed {
            let first = match &submitted {
                Submitted::New => Prior { done: true, ..mine },
                Submitted::AlreadyStored(prior) => prior.clone(),
            };
            if let Err(e) = self.remember(&order.order_id, &first).await {
                tracing::debug!(error = %e, "could not record a used order id");
            }
        }
        let outcome = finish(submitted, &order)?;
        count(version, &outcome);
        Ok(outcome)
    }

    /// `SET NX GET`: takes the id with a pending claim, or returns whoever holds it.
    async fn claim(&self, id: &Uuid, mine: &Prior) -> redis::RedisResult<Claim> {
        let mut conn = self.conn.clone();
        let value = serde_json::to_string(mine).expect("claim serialises");
        let held: Option<String> = redis::cmd("SET")
            .arg(self.key(id))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(PENDING_FOR.as_millis() as u64)
            .arg("GET")
            .query_async(&mut conn)
            .await?;
        Ok(match held {
            None => Claim::Ours,
            Some(text) => match serde_json::from_str(&text) {
                Ok(prior) => Claim::Taken(prior),
                // Not ours to interpret: treat as in progress rather than overwrite it.
                Err(_) => Claim::Taken(Prior { done: false, ..mine.clone() }),
            },
        })
    }

    async fn remember(&self, id: &Uuid, first: &Prior) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let value = serde_json::to_string(first).expect("claim serialises");
        redis::cmd("SET").arg(self.key(id)).arg(value).arg("PX").arg(self.ttl.as_millis() as u64).query_async(&mut conn).await
    }

    /// Drops our pending claim after the path refused the order, so the client's retry can
    /// claim it again (and, if it was logged after all, PostgreSQL stores it once).
    async fn release(&self, id: &Uuid, mine: &Prior) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let value = serde_json::to_string(mine).expect("claim serialises");
        let _: i64 = self.release.key(self.key(id)).arg(value).invoke_async(&mut conn).await?;
        Ok(())
    }
}

fn finish(submitted: Submitted, order: &Order) -> Result<Outcome, IngestError> {
    Ok(match submitted {
        Submitted::New => Outcome::Accepted,
        Submitted::AlreadyStored(prior) => prior.outcome(order),
    })
}

fn count(version: Version, outcome: &Outcome) {
    match outcome {
        Outcome::Accepted => {}
        Outcome::Replayed { .. } => metrics::counter!("coffee_rt_orders_replayed_total", "version" => version.as_str()).increment(1),
        Outcome::Conflict { .. } => metrics::counter!("coffee_rt_order_id_conflicts_total", "version" => version.as_str()).increment(1),
    }
}

#[cfg(test)]
mod tests {
    use coffee_core::{Catalog, RawOrder};

    use super::*;

    fn order(price: &str) -> Order {
        let raw: RawOrder = serde_json::from_str(&format!(
            r#"{{"order_id":"0193a0c2-7d4e-7000-8000-000000000001","drink":"latte","store":"downtown","price":{price},"timestamp":"2026-01-01T10:00:00Z"}}"#
        ))
        .unwrap();
        Order::parse(raw, &Catalog::default(), "2026-01-01T10:00:01Z".parse().unwrap()).unwrap()
    }

    #[test]
    fn a_repeat_is_a_replay_of_the_first_version() {
        let first = Prior { done: true, ..Prior::of(&order("4.50"), Version::V2) };
        assert_eq!(first.outcome(&order("4.50")), Outcome::Replayed { version: Version::V2 });
    }

    #[test]
    fn another_body_is_a_conflict_naming_the_field() {
        let first = Prior::of(&order("4.50"), Version::V3);
        assert_eq!(first.outcome(&order("5.00")), Outcome::Conflict { version: Version::V3, fields: vec!["price"] });
    }

    #[test]
    fn the_claim_round_trips_through_json() {
        let first = Prior { done: true, ..Prior::of(&order("4.50"), Version::V1) };
        let text = serde_json::to_string(&first).unwrap();
        assert_eq!(serde_json::from_str::<Prior>(&text).unwrap(), first);
        // A pending claim carries no `done`.
        assert!(!serde_json::to_string(&Prior::of(&order("4.50"), Version::V1)).unwrap().contains("done"));
    }
}
