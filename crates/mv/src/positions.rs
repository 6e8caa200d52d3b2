//! Compact struct-of-arrays list of net positions, sorted by a u32 key.
//!
//! Strategy A keeps one per instrument (keyed by account) so a price update
//! walks three dense arrays; strategy B keeps one per account (keyed by
//! instrument) so an overview walks its own. 20 bytes a position, no
//! per-position allocation or object header.

use crate::model::Qty;

#[derive(Default, Clone, Debug)]
pub struct PositionList {
    pub keys: Vec<u32>,
    /// Net holding quantity.
    pub hold: Vec<Qty>,
    /// Net signed open-order quantity.
    pub ord: Vec<Qty>,
}

impl PositionList {
    pub fn with_capacity(n: usize) -> Self {
        PositionList { keys: Vec::with_capacity(n), hold: Vec::with_capacity(n), ord: Vec::with_capacity(n) }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Index of `key`, inserted with zero quantities if absent. Appending in
    /// key order (how PostgreSQL COPY and the generator deliver rows) is O(1).
    pub fn slot(&mut self, key: u32) -> usize {
        if let Some(&last) = self.keys.last() {
            if last == key {
                return self.keys.len() - 1;
            }
            if last > key {
                return match self.keys.binary_search(&key) {
                    Ok(i) => i,
                    Err(i) => {
                        self.keys.insert(i, key);
                        self.hold.insert(i, 0);
                        self.ord.insert(i, 0);
                        i
                    }
                };
            }
        }
        self.keys.push(key);
        self.hold.push(0);
        self.ord.push(0);
        self.keys.len() - 1
    }

    pub fn find(&self, key: u32) -> Option<usize> {
        self.keys.binary_search(&key).ok()
    }

    pub fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        self.hold.shrink_to_fit();
        self.ord.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 4 + (self.hold.capacity() + self.ord.capacity()) * 8
    }
}
