//! Parse, don't validate: an [`Order`] exists only valid.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Catalog, Cents, OrderWindow, money::MoneyError};

/// The order exactly as a client sends it. Unknown fields are rejected; types are kept loose
/// (strings, a JSON number) so that [`Order::parse`] can name the field that is wrong.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOrder {
    /// The client's idempotency key (a UUID, not the nil one); the server assigns a UUIDv7 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid, value_type = Option<String>)]
    pub order_id: Option<String>,
    /// A drink of the catalog.
    pub drink: String,
    /// A store of the catalog.
    pub store: String,
    /// The price in the currency's units, at most 2 decimals: `4.50`.
    #[schema(value_type = f64, exclusive_minimum = 0, maximum = 1000, example = 4.5)]
    pub price: serde_json::Number,
    /// When the order was placed: RFC 3339 with an offset, within the server's window
    /// (by default at most 5 minutes ahead of its clock and 30 days behind).
    #[schema(format = DateTime, example = "2025-01-15T10:00:00+02:00")]
    pub timestamp: String,
}

/// A field that failed validation, with a message a client can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        ValidationError { field, message: message.into() }
    }
}

/// A valid order: known drink and store, a positive price in cents, a UTC timestamp and an id
/// (the client's idempotency key, or a UUIDv7 assigned at acceptance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: Uuid,
    pub drink: String,
    pub store: String,
    pub price: Cents,
    pub ordered_at: DateTime<Utc>,
    /// When the API accepted the order; the start of every freshness measurement.
    pub accepted_at: DateTime<Utc>,
}

impl Order {
    /// What the API edge calls: [`Order::parse`], then the order's time checked against
    /// `window` around `accepted_at`. Only the edge applies the window: an order read back
    /// from a log was inside it when it was accepted ([`Order::from_record`] checks no time).
    pub fn parse_within(
        raw: RawOrder,
        catalog: &Catalog,
        accepted_at: DateTime<Utc>,
        window: &OrderWindow,
    ) -> Result<Order, ValidationError> {
        let order = Order::parse(raw, catalog, accepted_at)?;
        window.check(order.ordered_at, accepted_at)?;
        Ok(order)
    }

    /// Validates a client's order, whatever its time. `accepted_at` is the server's clock at
    /// acceptance. The API calls [`Order::parse_within`].
    pub fn parse(raw: RawOrder, catalog: &Catalog, accepted_at: DateTime<Utc>) -> Result<Order, ValidationError> {
        let order_id = match raw.order_id.as_deref() {
            None => Uuid::now_v7(),
            Some(text) => {
                let id = Uuid::try_parse(text).map_err(|_| ValidationError::new("order_id", "must be a UUID"))?;
                if id.is_nil() {
                    return Err(ValidationError::new("order_id", "must not be the nil UUID"));
                }
                id
            }
        };
        if !catalog.has_drink(&raw.drink) {
            return Err(ValidationError::new("drink", format!("unknown drink; expected one of {}", catalog.drinks.join(", "))));
        }
        if !catalog.has_store(&raw.store) {
            return Err(ValidationError::new("store", format!("unknown store; expected one of {}", catalog.stores.join(", "))));
        }
        let price = Cents::from_json_number(&raw.price).map_err(|e: MoneyError| ValidationError::new("price", e.to_string()))?;
        let ordered_at = DateTime::parse_from_rfc3339(&raw.timestamp)
            .map_err(|_| ValidationError::new("timestamp", "must be RFC 3339 with an offset, e.g. 2025-01-15T10:00:00Z"))?
            .with_timezone(&Utc);
        // PostgreSQL keeps microseconds; so does everything else, so every copy of an order agrees.
        let (ordered_at, accepted_at) = (ordered_at.trunc_subsecs(6), accepted_at.trunc_subsecs(6));
        Ok(Order { order_id, drink: raw.drink, store: raw.store, price, ordered_at, accepted_at })
    }

    /// Rebuilds an order read back from a log (stream entry or topic record). The catalog is
    /// checked again: the log is outside our type system and may hold anything.
    pub fn from_record(rec: OrderRecord, catalog: &Catalog) -> Result<Order, ValidationError> {
        if !catalog.has_drink(&rec.drink) {
            return Err(ValidationError::new("drink", "unknown drink"));
        }
        if !catalog.has_store(&rec.store) {
            return Err(ValidationError::new("store", "unknown store"));
        }
        if rec.price_cents <= 0 || rec.price_cents > crate::money::MAX_PRICE.0 {
            return Err(ValidationError::new("price_cents", "out of range"));
        }
        Ok(Order {
            order_id: rec.order_id,
            drink: rec.drink,
            store: rec.store,
            price: Cents(rec.price_cents),
            ordered_at: rec.ordered_at,
            accepted_at: rec.accepted_at,
        })
    }

    pub fn to_record(&self) -> OrderRecord {
        OrderRecord {
            order_id: self.order_id,
            drink: self.drink.clone(),
            store: self.store.clone(),
            price_cents: self.price.0,
            ordered_at: self.ordered_at,
            accepted_at: self.accepted_at,
        }
    }
}

/// The wire form of an accepted order in a log (Redis Stream field `order`, Kafka value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRecord {
    pub order_id: Uuid,
    pub drink: String,
    pub store: String,
    pub price_cents: i64,
    pub ordered_at: DateTime<Utc>,
    pub accepted_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawOrder {
        serde_json::from_str(json).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn parses_the_seed_example() {
        let o = Order::parse(
            raw(r#"{"drink":"cappuccino","store":"downtown","price":4.50,"timestamp":"2025-01-15T10:00:00+02:00"}"#),
            &Catalog::default(),
            now(),
        )
        .unwrap();
        assert_eq!(o.price, Cents(450));
        assert_eq!(o.ordered_at.to_rfc3339(), "2025-01-15T08:00:00+00:00");
        assert_eq!(o.order_id.get_version_num(), 7);
    }

    #[test]
    fn names_the_failing_field() {
        let cases = [
            (r#"{"drink":"tea","store":"uptown","price":1,"timestamp":"2025-01-15T10:00:00Z"}"#, "drink"),
            (r#"{"drink":"latte","store":"mars","price":1,"timestamp":"2025-01-15T10:00:00Z"}"#, "store"),
            (r#"{"drink":"latte","store":"uptown","price":1.234,"timestamp":"2025-01-15T10:00:00Z"}"#, "price"),
            (r#"{"drink":"latte","store":"uptown","price":0,"timestamp":"2025-01-15T10:00:00Z"}"#, "price"),
            (r#"{"drink":"latte","store":"uptown","price":1,"timestamp":"2025-01-15T10:00:00"}"#, "timestamp"),
            (r#"{"drink":"latte","store":"uptown","price":1,"timestamp":"yesterday"}"#, "timestamp"),
            (r#"{"order_id":"x","drink":"latte","store":"uptown","price":1,"timestamp":"2025-01-15T10:00:00Z"}"#, "order_id"),
        ];
        for (json, field) in cases {
            let err = Order::parse(raw(json), &Catalog::default(), now()).unwrap_err();
            assert_eq!(err.field, field, "{json}");
        }
    }

    #[test]
    fn keeps_the_clients_order_id_and_round_trips_as_record() {
        let id = "0190b5a0-0000-7000-8000-000000000001";
        let json = format!(r#"{{"order_id":"{id}","drink":"latte","store":"uptown","price":3,"timestamp":"2025-01-15T10:00:00Z"}}"#);
        let o = Order::parse(raw(&json), &Catalog::default(), now()).unwrap();
        assert_eq!(o.order_id.to_string(), id);
        let back = Order::from_record(serde_json::from_str(&serde_json::to_string(&o.to_record()).unwrap()).unwrap(), &Catalog::default());
        assert_eq!(back.unwrap(), o);
    }

    #[test]
    fn rejects_unknown_fields() {
        assert!(serde_json::from_str::<RawOrder>(r#"{"drink":"latte","store":"uptown","price":3,"timestamp":"x","tip":1}"#).is_err());
    }
}
