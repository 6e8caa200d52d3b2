//! PostgreSQL: connection pool, migrations, batched idempotent inserts, the outbox, writers'
//! positions, the GROUP BY queries the aggregator and `reconcile` share, and scratch databases.

mod aggregate;
mod connect;
mod orders;
mod outbox;
mod positions;
mod scratch;
mod warehouse;

pub use aggregate::{XidWindow, acceptance_ages, compute_metrics, snapshot_xmin};
pub use connect::{PgPool, connect, create_database_if_missing, migrate};
pub use orders::{StoredOrder, insert_orders, stored_orders};
pub use outbox::{Committed, OutboxEntry, commit_batch, delete_outbox, outbox_depth, pending_outbox};
pub use positions::{Replayable, log_offsets, log_offsets_once, position, replayable};
pub use scratch::{ScratchDatabase, with_dbname};
pub use warehouse::{
    PageKey, WAREHOUSE_SOURCE, WarehouseOrder, oldest_unwarehoused, reset_warehouse_watermark, set_warehouse_watermark, snapshot_xmax,
    unwarehoused_orders, warehouse_page, warehouse_watermark,
};
