//! The Redis metrics projection: the seed's `{v}:metrics:*` keys, written atomically by Lua.

mod connect;
mod keys;
mod projection;
mod snapshot;

pub use connect::{blocking_connection, connect};
pub use keys::Keys;
pub use projection::Projection;
pub use snapshot::{Named, VersionSnapshot};
