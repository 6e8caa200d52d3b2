use coffee_core::Order;
use coffee_store::Keys;
use redis::{AsyncCommands, aio::ConnectionManager, streams::StreamMaxlen};

use super::ORDER_FIELD;
use crate::{Ingest, IngestError, Receipt, idempotency::Submitted};

/// The consumer group every v2 worker joins.
pub const GROUP: &str = "order-workers";

/// Appends accepted v2 orders to the stream. The API answers 202 only after XADD returned.
#[derive(Clone)]
pub struct V2Ingest {
    conn: ConnectionManager,
    stream: String,
    maxlen: usize,
}

impl V2Ingest {
    /// `maxlen` bounds the stream with approximate trimming; keep it far above any backlog.
    pub fn new(conn: ConnectionManager, namespace: &str, maxlen: usize) -> V2Ingest {
        V2Ingest { conn, stream: Keys::stream(namespace), maxlen }
    }
}

#[async_trait::async_trait]
impl Ingest for V2Ingest {
    fn receipt(&self) -> Receipt {
        Receipt::Logged
    }

    /// Resolves once XADD returned: the order is in the stream.
    async fn submit(&self, order: Order) -> Result<Submitted, IngestError> {
        let json = serde_json::to_string(&order.to_record()).expect("record serialises");
        let mut conn = self.conn.clone();
        let _: String = conn
            .xadd_maxlen(&self.stream, StreamMaxlen::Approx(self.maxlen), "*", &[(ORDER_FIELD, json)])
            .await
            .map_err(|e| IngestError::unavailable("redis", e))?;
        Ok(Submitted::New)
    }
}

/// Creates the stream and the consumer group if missing. The group starts at `0`, so entries
/// appended before any worker ever ran are still delivered.
pub async fn ensure_group(conn: &mut ConnectionManager, namespace: &str) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(Keys::stream(namespace), GROUP, "0").await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}
