use coffee_store::Keys;
use redis::aio::ConnectionManager;

/// Moves a stream entry that cannot be processed to `orders:stream:dead`, with the reason and
/// its original id, then acknowledges it. The two commands run as one MULTI, so an entry is
/// never both dead-lettered and still pending, nor acknowledged and lost.
pub async fn dead_letter(
    conn: &mut ConnectionManager,
    namespace: &str,
    group: &str,
    id: &str,
    fields: &[(String, String)],
    reason: &str,
) -> redis::RedisResult<()> {
    let mut entry: Vec<(String, String)> = fields.to_vec();
    entry.push(("reason".into(), reason.into()));
    entry.push(("original_id".into(), id.into()));
    let _: () = redis::pipe()
        .atomic()
        .xadd(Keys::dead_letters(namespace), "*", &entry)
        .ignore()
        .xack(Keys::stream(namespace), group, &[id])
        .ignore()
        .query_async(conn)
        .await?;
    metrics::counter!("coffee_rt_dead_letters_total", "version" => "v2").increment(1);
    Ok(())
}
