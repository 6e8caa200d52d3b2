//! The Redis metrics projection: the design papers' `{v}:metrics:*` keys, written atomically by Lua.

mod connect;
mod keys;
mod namespace;
mod projection;
mod snapshot;

pub use connect::{blocking_connection, connect};
pub use keys::Keys;
pub use namespace::delete_prefix;
pub use projection::Projection;
pub use snapshot::{Named, VersionSnapshot};
