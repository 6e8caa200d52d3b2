//! Open-order index: order id → (account, instrument, signed qty).
//!
//! Needed because order events are absolute (upsert/cancel by id): to apply
//! one we must subtract what the order contributed before. Ids come from a
//! PostgreSQL sequence and are dense, so a `Vec` indexed by id costs 16 bytes
//! an order (800 MB for 50 M orders) where a hash map would cost over twice
//! that. Ids far beyond the dense range are refused rather than allocated.

use crate::model::{AccountId, InstrumentId, OrderId, Qty};

/// How far past the highest known id a new id may be before it is refused.
pub const MAX_ID_GAP: u64 = 1 << 24;

const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderSlot {
    pub account: AccountId,
    pub instrument: InstrumentId,
    pub signed_qty: Qty,
}

#[derive(Debug, thiserror::Error)]
#[error("order id {id} is more than {MAX_ID_GAP} past the dense id range ({len})")]
pub struct SparseOrderId {
    pub id: OrderId,
    pub len: u64,
}

#[derive(Default)]
pub struct OrderBook {
    slots: Vec<OrderSlot>,
    live: usize,
}

impl OrderBook {
    pub fn with_capacity(n: usize) -> Self {
        OrderBook { slots: Vec::with_capacity(n), live: 0 }
    }

    pub fn live(&self) -> usize {
        self.live
    }

    pub fn get(&self, id: OrderId) -> Option<OrderSlot> {
        self.slots.get(id as usize).copied().filter(|s| s.account != EMPTY)
    }

    /// Stores the order, returning what it replaced.
    pub fn upsert(&mut self, id: OrderId, slot: OrderSlot) -> Result<Option<OrderSlot>, SparseOrderId> {
        assert!(slot.account != EMPTY, "account id u32::MAX is reserved");
        let len = self.slots.len() as u64;
        if id >= len {
            if id - len > MAX_ID_GAP {
                return Err(SparseOrderId { id, len });
            }
            let empty = OrderSlot { account: EMPTY, instrument: 0, signed_qty: 0 };
            self.slots.resize(id as usize + 1, empty);
        }
        let prev = std::mem::replace(&mut self.slots[id as usize], slot);
        if prev.account == EMPTY {
            self.live += 1;
            Ok(None)
        } else {
            Ok(Some(prev))
        }
    }

    pub fn remove(&mut self, id: OrderId) -> Option<OrderSlot> {
        let s = self.slots.get_mut(id as usize)?;
        if s.account == EMPTY {
            return None;
        }
        let prev = *s;
        s.account = EMPTY;
        s.signed_qty = 0;
        self.live -= 1;
        Some(prev)
    }

    pub fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<OrderSlot>()
    }
}
