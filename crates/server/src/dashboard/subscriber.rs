//! The process's one Redis pub/sub subscription to `{ns}coffee-rt:metrics-changed`.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens on `channel` until `stop`, waking `dirty` on every message.
///
/// Pub/sub needs a connection of its own (a subscribed connection can do nothing else), so
/// this opens one instead of borrowing the shared `ConnectionManager`. When the connection
/// drops it reconnects with exponential backoff, and wakes `dirty` once it is back: changes
/// published while it was away were lost, so the hub must re-read.
pub async fn listen(client: redis::Client, channel: String, dirty: Arc<Notify>, stop: CancellationToken) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match subscribe(&client, &channel).await {
            Ok(pubsub) => {
                backoff = FIRST_BACKOFF;
                dirty.notify_one();
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        msg = messages.next() => match msg {
                            Some(_) => dirty.notify_one(),
                            None => break,
                        },
                    }
                }
                tracing::warn!(%channel, "dashboard lost its Redis subscription; reconnecting");
            }
            Err(e) => tracing::warn!(%channel, error = %e, retry_in_ms = backoff.as_millis() as u64, "dashboard cannot subscribe to Redis"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(client: &redis::Client, channel: &str) -> anyhow::Result<redis::aio::PubSub> {
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub()).await??;
    tokio::time::timeout(Duration::from_secs(2), pubsub.subscribe(channel)).await??;
    Ok(pubsub)
}
