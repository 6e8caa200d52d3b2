//! Every order the soak sent and what came of it, as a café's terminals would have to keep it:
//! an order is *acknowledged* once any attempt got a 2xx, and from then on it must be in
//! PostgreSQL exactly once. An order still retrying when the load ends is *unresolved*: it may
//! or may not have landed, so the audit allows it either way and reports how many there were.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::ApiVersion;

/// What the audit checks a row against: the order as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub version: ApiVersion,
    pub drink: &'static str,
    pub store: &'static str,
    pub price_cents: i64,
}

/// Where one order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sent, no 2xx yet (retrying).
    Pending,
    /// A 2xx came.
    Acknowledged,
    /// A 4xx that a retry cannot change: the soak never sends such a body, so every one is a
    /// finding (a 409 would mean the API saw a different body under the same `order_id`).
    Rejected(u16),
}

/// Counters of one path.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PathStats {
    pub acknowledged: u64,
    /// Every HTTP attempt, first sends and retries.
    pub attempts: u64,
    /// Failed attempts by cause (`"503"`, `"timeout"`, `"connect"`, `"io"`), each retried.
    pub retried: BTreeMap<String, u64>,
    /// Non-retriable answers by status (each one fails the soak).
    pub rejected: BTreeMap<String, u64>,
    /// The most attempts one order needed before its 2xx.
    pub max_attempts: u32,
    /// The longest one order took from its first send to its 2xx, seconds.
    pub max_ack_s: f64,
}

#[derive(Default)]
struct Inner {
    orders: HashMap<Uuid, (Sent, State)>,
    paths: BTreeMap<ApiVersion, PathStats>,
}

/// Shared by every sending task.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

/// The ledger once the load has ended, for the audit.
pub struct Closed {
    pub orders: HashMap<Uuid, (Sent, State)>,
    pub paths: BTreeMap<ApiVersion, PathStats>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before the first attempt: the order exists from now on, whatever comes of it.
    pub fn sent(&self, id: Uuid, sent: Sent) {
        let mut inner = self.lock();
        inner.paths.entry(sent.version).or_default();
        inner.orders.insert(id, (sent, State::Pending));
    }

    /// One attempt failed in a way a retry can fix.
    pub fn retried(&self, version: ApiVersion, cause: String) {
        let mut inner = self.lock();
        let p = inner.paths.entry(version).or_default();
        p.attempts += 1;
        *p.retried.entry(cause).or_default() += 1;
    }

    /// The final attempt: a 2xx (`Ok`) or a non-retriable status (`Err`).
    pub fn finished(&self, id: Uuid, version: ApiVersion, result: Result<(), u16>, attempts: u32, took: Duration) {
        let mut inner = self.lock();
        let state = match result {
            Ok(()) => State::Acknowledged,
            Err(status) => State::Rejected(status),
        };
        if let Some(entry) = inner.orders.get_mut(&id) {
            entry.1 = state;
        }
        let p = inner.paths.entry(version).or_default();
        p.attempts += 1;
        match result {
            Ok(()) => {
                p.acknowledged += 1;
                p.max_attempts = p.max_attempts.max(attempts);
                p.max_ack_s = p.max_ack_s.max((took.as_secs_f64() * 1000.0).round() / 1000.0);
            }
            Err(status) => *p.rejected.entry(status.to_string()).or_default() += 1,
        }
    }

    /// Acknowledged orders so far, per path (the drain's target).
    pub fn acknowledged(&self) -> BTreeMap<ApiVersion, u64> {
        self.lock().paths.iter().map(|(v, p)| (*v, p.acknowledged)).collect()
    }

    /// Everything, for the audit; the ledger is left empty.
    pub fn close(&self) -> Closed {
        let mut inner = self.lock();
        Closed { orders: std::mem::take(&mut inner.orders), paths: std::mem::take(&mut inner.paths) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(version: ApiVersion) -> Sent {
        Sent { version, drink: "latte", store: "downtown", price_cents: 450 }
    }

    #[test]
    fn an_order_is_pending_until_its_final_answer() {
        let ledger = Ledger::default();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        ledger.sent(a, sent(ApiVersion::V1));
        ledger.sent(b, sent(ApiVersion::V2));
        ledger.sent(c, sent(ApiVersion::V2));
        ledger.retried(ApiVersion::V2, "503".into());
        ledger.retried(ApiVersion::V2, "timeout".into());
        ledger.finished(b, ApiVersion::V2, Ok(()), 3, Duration::from_millis(1500));
        ledger.finished(c, ApiVersion::V2, Err(409), 1, Duration::ZERO);
        assert_eq!(ledger.acknowledged()[&ApiVersion::V2], 1);
        let closed = ledger.close();
        assert_eq!(closed.orders[&a].1, State::Pending);
        assert_eq!(closed.orders[&b].1, State::Acknowledged);
        assert_eq!(closed.orders[&c].1, State::Rejected(409));
        let v2 = &closed.paths[&ApiVersion::V2];
        assert_eq!((v2.attempts, v2.acknowledged, v2.max_attempts), (4, 1, 3));
        assert_eq!(v2.retried.values().sum::<u64>(), 2);
        assert_eq!(v2.rejected["409"], 1);
        assert_eq!(v2.max_ack_s, 1.5);
        assert_eq!(closed.paths[&ApiVersion::V1].acknowledged, 0);
    }
}
