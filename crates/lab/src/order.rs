//! A realistic order mix, so the server sees the spread of drinks, stores and prices a café
//! would post, not one constant body that a cache or branch predictor could flatter.

use coffee_core::{Catalog, RawOrder};
use rand::distr::{Distribution, weighted::WeightedIndex};
use rand::{Rng, RngExt, SeedableRng};
use serde::Serialize;

/// Drink menu: name, weight in the mix, price range in cents (inclusive).
/// Prices follow the design papers' examples (americano 3.50, cappuccino 4.50, latte 5.00) with
/// sizes and extras spreading them over 3.50–6.75.
const DRINKS: [(&str, u32, (u32, u32)); 3] = [("latte", 45, (450, 675)), ("cappuccino", 30, (425, 575)), ("americano", 25, (350, 450))];

/// Stores and their share of traffic.
const STORES: [(&str, u32); 4] = [("downtown", 35), ("uptown", 30), ("central", 20), ("southend", 15)];

/// One order as the API expects it.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub order_id: uuid::Uuid,
    pub drink: &'static str,
    pub store: &'static str,
    /// Always a multiple of 0.01 > 0; serialized as a JSON number with at most 2 decimals.
    pub price: f64,
    pub timestamp: String,
}

impl Order {
    /// This order as the API accepts it now: the real [`coffee_core::Order::parse`] of its JSON
    /// fields, so that what a ceiling writes is what the server would write.
    pub fn accepted(&self, catalog: &Catalog) -> coffee_core::Order {
        let raw = RawOrder {
            order_id: Some(self.order_id.to_string()),
            drink: self.drink.to_string(),
            store: self.store.to_string(),
            price: serde_json::Number::from_f64(self.price).expect("a finite price"),
            timestamp: self.timestamp.clone(),
        };
        coffee_core::Order::parse(raw, catalog, chrono::Utc::now()).expect("the mix draws orders the API accepts")
    }
}

/// Draws orders from the weighted mix. Cheap to clone; one per load worker.
#[derive(Debug, Clone)]
pub struct OrderMix {
    drinks: WeightedIndex<u32>,
    stores: WeightedIndex<u32>,
}

impl Default for OrderMix {
    fn default() -> Self {
        Self {
            drinks: WeightedIndex::new(DRINKS.iter().map(|d| d.1)).expect("static weights"),
            stores: WeightedIndex::new(STORES.iter().map(|s| s.1)).expect("static weights"),
        }
    }
}

/// A fast, independently seeded generator for one task's draws (the lab's only use of `rand`
/// besides the mix itself).
pub fn rng() -> rand::rngs::SmallRng {
    rand::rngs::SmallRng::from_rng(&mut rand::rng())
}

impl OrderMix {
    /// A fresh order: new UUIDv7 id, timestamp now (UTC, RFC 3339 with `Z`).
    pub fn next_order<R: Rng + ?Sized>(&self, rng: &mut R) -> Order {
        let (drink, _, (lo, hi)) = DRINKS[self.drinks.sample(rng)];
        let store = STORES[self.stores.sample(rng)].0;
        // Prices come in 5-cent steps, as a menu's do.
        let cents = rng.random_range(lo / 5..=hi / 5) * 5;
        Order {
            order_id: uuid::Uuid::now_v7(),
            drink,
            store,
            price: cents as f64 / 100.0,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// The JSON body of a fresh order.
    pub fn next_body<R: Rng + ?Sized>(&self, rng: &mut R) -> bytes::Bytes {
        let order = self.next_order(rng);
        bytes::Bytes::from(serde_json::to_vec(&order).expect("order serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn prices_are_realistic_and_have_two_decimals() {
        let mix = OrderMix::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let body = mix.next_body(&mut rng);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let price_text = v["price"].to_string();
            let price: f64 = price_text.parse().unwrap();
            assert!((3.5..=6.75).contains(&price), "{price_text}");
            let decimals = price_text.split('.').nth(1).map_or(0, str::len);
            assert!(decimals <= 2, "price {price_text} has more than 2 decimals");
            assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
            let id: uuid::Uuid = v["order_id"].as_str().unwrap().parse().unwrap();
            assert_eq!(id.get_version_num(), 7);
        }
    }

    #[test]
    fn every_drawn_order_is_one_the_api_accepts() {
        let (mix, catalog) = (OrderMix::default(), Catalog::default());
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..2000 {
            let o = mix.next_order(&mut rng);
            let accepted = o.accepted(&catalog);
            assert_eq!((accepted.order_id, accepted.drink.as_str(), accepted.store.as_str()), (o.order_id, o.drink, o.store));
            assert_eq!(accepted.price.0, (o.price * 100.0).round() as i64);
        }
    }

    #[test]
    fn mix_follows_weights() {
        let mix = OrderMix::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut drinks: HashMap<&str, u32> = HashMap::new();
        let mut stores: HashMap<&str, u32> = HashMap::new();
        let n = 20_000;
        for _ in 0..n {
            let o = mix.next_order(&mut rng);
            *drinks.entry(o.drink).or_default() += 1;
            *stores.entry(o.store).or_default() += 1;
        }
        let share = |c: u32| c as f64 / n as f64;
        assert!((share(drinks["latte"]) - 0.45).abs() < 0.02);
        assert!((share(drinks["americano"]) - 0.25).abs() < 0.02);
        assert!((share(stores["southend"]) - 0.15).abs() < 0.02);
        assert_eq!(drinks.len(), 3);
        assert_eq!(stores.len(), 4);
    }
}
