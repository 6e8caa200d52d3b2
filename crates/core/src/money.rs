//! Money is integer cents from the HTTP body to the Redis counters.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in cents. Never a float once parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(pub i64);

/// The largest price one order may carry: 1,000.00.
pub const MAX_PRICE: Cents = Cents(100_000);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a JSON number")]
    NotANumber,
    #[error("must have at most 2 decimals")]
    TooPrecise,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("must be at most 1000.00")]
    TooLarge,
}

impl Cents {
    /// Parses a price from a JSON number.
    ///
    /// serde_json hands us an `f64`; its shortest round-trip decimal form (`Display`) is the
    /// literal the client most plausibly wrote (`4.5` for `4.50`, `0.30000000000000004` for a
    /// computed sum), so we parse that text with integer arithmetic and reject more than two
    /// decimals instead of rounding money silently.
    pub fn from_json_number(n: &serde_json::Number) -> Result<Cents, MoneyError> {
        if let Some(i) = n.as_i64() {
            return Self::checked(i.checked_mul(100).ok_or(MoneyError::TooLarge)?);
        }
        if n.as_u64().is_some() {
            return Err(MoneyError::TooLarge);
        }
        let f = n.as_f64().ok_or(MoneyError::NotANumber)?;
        if !f.is_finite() {
            return Err(MoneyError::NotANumber);
        }
        if f <= 0.0 {
            return Err(MoneyError::NotPositive);
        }
        if f > 1_000.0 {
            return Err(MoneyError::TooLarge);
        }
        let text = format!("{f}");
        let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
        if frac.len() > 2 || text.contains(['e', 'E']) {
            return Err(MoneyError::TooPrecise);
        }
        let whole: i64 = whole.parse().map_err(|_| MoneyError::NotANumber)?;
        let mut frac_cents: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| MoneyError::NotANumber)? };
        if frac.len() == 1 {
            frac_cents *= 10;
        }
        Self::checked(whole * 100 + frac_cents)
    }

    fn checked(cents: i64) -> Result<Cents, MoneyError> {
        if cents <= 0 {
            Err(MoneyError::NotPositive)
        } else if cents > MAX_PRICE.0 {
            Err(MoneyError::TooLarge)
        } else {
            Ok(Cents(cents))
        }
    }
}

impl fmt::Display for Cents {
    /// `1234` cents prints as `12.34`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Cents, MoneyError> {
        let n: serde_json::Number = serde_json::from_str(json).unwrap();
        Cents::from_json_number(&n)
    }

    #[test]
    fn accepts_up_to_two_decimals() {
        assert_eq!(parse("4.50"), Ok(Cents(450)));
        assert_eq!(parse("4.5"), Ok(Cents(450)));
        assert_eq!(parse("0.01"), Ok(Cents(1)));
        assert_eq!(parse("3"), Ok(Cents(300)));
        assert_eq!(parse("1000"), Ok(Cents(100_000)));
        assert_eq!(parse("1000.00"), Ok(Cents(100_000)));
        assert_eq!(parse("19.99"), Ok(Cents(1999)));
        assert_eq!(parse("1e2"), Ok(Cents(10_000)));
    }

    #[test]
    fn rejects_bad_prices() {
        assert_eq!(parse("4.555"), Err(MoneyError::TooPrecise));
        assert_eq!(parse("0"), Err(MoneyError::NotPositive));
        assert_eq!(parse("-1.5"), Err(MoneyError::NotPositive));
        assert_eq!(parse("1000.01"), Err(MoneyError::TooLarge));
        assert_eq!(parse("0.001"), Err(MoneyError::TooPrecise));
        assert_eq!(parse("99999999999999999999"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn displays_as_money() {
        assert_eq!(Cents(1234).to_string(), "12.34");
        assert_eq!(Cents(5).to_string(), "0.05");
        assert_eq!(Cents(-250).to_string(), "-2.50");
    }

    proptest::proptest! {
        #[test]
        fn every_two_decimal_price_round_trips(cents in 1i64..=100_000) {
            let text = Cents(cents).to_string();
            proptest::prop_assert_eq!(parse(&text), Ok(Cents(cents)));
        }
    }
}
