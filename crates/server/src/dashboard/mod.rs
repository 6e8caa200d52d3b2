//! The live dashboard: the page (`GET /`), its WebSocket (`GET /ws/dashboard`) and the hub
//! that feeds every socket from one Redis subscription.
//!
//! Data flow: every metrics write PUBLISHes on `Keys::changes_channel` → the [`hub`]'s single
//! subscriber marks the snapshot dirty → the hub rebuilds it at most every 100 ms and stores
//! it, serialised once, in a `tokio::sync::watch` → each [`ws`] task sends the latest value.

mod frame;
mod hub;
mod lag;
mod page;
mod series;
mod subscriber;
mod ws;

pub use hub::{Hub, HubTask};
pub use lag::Accepted;
pub(crate) use page::{asset, index};
pub(crate) use ws::ws_dashboard;
