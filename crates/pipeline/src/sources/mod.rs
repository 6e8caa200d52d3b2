//! Where orders go after the API accepted them, one folder per path, each the same shape: the
//! producer the API calls ([`crate::Ingest`]), and for the log-based paths the consumer that
//! drains the log into the [`crate::commit`] step and the dead letters it sets aside.

pub mod v1_batcher;
pub mod v2_stream;
pub mod v3_kafka;
