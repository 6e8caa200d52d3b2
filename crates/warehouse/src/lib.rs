//! The warehouse: history for the café.
//!
//! Redis holds running totals and the current hour; PostgreSQL holds every order, but a
//! `GROUP BY` over all of them grows with the table. ClickHouse answers history queries over
//! any range: the sink copies every committed order of every path into it exactly once, and
//! the history queries run there, or on PostgreSQL when no warehouse is configured.

pub mod clickhouse;
pub mod history;
pub mod schema;
pub mod sink;

/// Where the warehouse is. The code speaks ClickHouse's HTTP interface, so a local server,
/// a current ClickHouse or ClickHouse Cloud work by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// e.g. `http://127.0.0.1:8123` (user and password, if any, in the URL).
    pub url: String,
    /// The database the sink creates and writes (`coffee_rt` by default).
    pub database: String,
}
