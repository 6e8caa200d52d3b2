//! Scratch state the benches create for one run and remove after it, whatever happens: names
//! that concurrent runs never share, and the Redis half of it. (Scratch databases are
//! `coffee_store::postgres::ScratchDatabase`.)

use anyhow::Context;

/// A short suffix for scratch names: this process's id (so a test can find the leftovers of its
/// own runs) and 8 random hex digits.
pub fn suffix() -> String {
    format!("{}_{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Deletes every Redis key that starts with `prefix`.
pub async fn delete_redis_keys(url: &str, prefix: &str) -> anyhow::Result<()> {
    let mut conn = coffee_store::redis::connect(url).await.with_context(|| format!("connecting to Redis at {url}"))?;
    coffee_store::redis::delete_prefix(&mut conn, prefix).await?;
    Ok(())
}
