use redis::aio::ConnectionManager;

/// Deletes every key that starts with `prefix` (a namespace, or a scratch prefix of the lab).
/// SCAN, never KEYS: the server stays responsive however many keys it holds. Returns how many
/// keys were deleted.
pub async fn delete_prefix(conn: &mut ConnectionManager, prefix: &str) -> redis::RedisResult<u64> {
    let pattern = format!("{}*", prefix.replace('\\', "\\\\").replace('*', "\\*").replace('?', "\\?").replace('[', "\\["));
    let (mut cursor, mut deleted) = (0u64, 0u64);
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query_async(conn).await?;
        if !keys.is_empty() {
            deleted += redis::cmd("DEL").arg(&keys).query_async::<u64>(conn).await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}
