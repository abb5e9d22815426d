//! Money and prices.
//!
//! Amounts are integers of nano-units (10⁻⁹ of the currency), never floats, so that summing a
//! billion request costs gives the same total in every process and every database. Prices are
//! per million tokens, as providers publish them; the cost of one request is computed exactly in
//! 128-bit arithmetic and rounded half-up to a nano-unit once.

use serde::{Deserialize, Serialize};

/// Nano-units in one unit of currency.
pub const NANOS_PER_UNIT: i64 = 1_000_000_000;

/// An amount of money in nano-units of some currency (the currency travels beside it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nanos(pub i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a decimal amount with at most 9 fractional digits")]
pub struct ParseMoneyError(pub String);

impl Nanos {
    /// Parses a decimal amount such as `"3"`, `"0.075"` or `"12.5"` without going through floats.
    ///
    /// # Errors
    /// When the text is not a non-negative decimal with at most nine fractional digits.
    pub fn parse_decimal(text: &str) -> Result<Self, ParseMoneyError> {
        let error = || ParseMoneyError(text.to_owned());
        let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(error());
        }
        if fraction.len() > 9
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(error());
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| error())?
        };
        let mut fraction_nanos: i64 = 0;
        for (position, digit) in fraction.bytes().enumerate() {
            let place = 10_i64.pow(8 - u32::try_from(position).map_err(|_| error())?);
            fraction_nanos += i64::from(digit - b'0') * place;
        }
        whole
            .checked_mul(NANOS_PER_UNIT)
            .and_then(|nanos| nanos.checked_add(fraction_nanos))
            .map(Nanos)
            .ok_or_else(error)
    }

    /// The amount as a decimal string with nine fractional digits trimmed of trailing zeros.
    #[must_use]
    pub fn to_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let whole = magnitude / NANOS_PER_UNIT.unsigned_abs();
        let fraction = magnitude % NANOS_PER_UNIT.unsigned_abs();
        if fraction == 0 {
            return format!("{sign}{whole}");
        }
        let fraction = format!("{fraction:09}");
        format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
    }
}

/// Prices of one model, per million tokens, in one currency. `version` increases with every
/// change, and each request event names the version it was billed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub currency: String,
    pub input_per_million: Nanos,
    pub output_per_million: Nanos,
    #[serde(default)]
    pub cache_read_per_million: Nanos,
    #[serde(default)]
    pub cache_write_per_million: Nanos,
    pub version: u32,
}

/// Token counts to bill. `input_tokens` excludes cached tokens (Anthropic's convention; the
/// OpenAI decoder subtracts `cached_tokens` from `prompt_tokens` before it gets here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BillableTokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Price {
    /// The exact cost of `tokens` at this price, rounded half-up to a nano-unit.
    #[must_use]
    pub fn cost(&self, tokens: BillableTokens) -> Nanos {
        let term = |count: u64, per_million: Nanos| i128::from(count) * i128::from(per_million.0);
        let total = term(tokens.input, self.input_per_million)
            + term(tokens.output, self.output_per_million)
            + term(tokens.cache_read, self.cache_read_per_million)
            + term(tokens.cache_write, self.cache_write_per_million);
        let rounded = (total + 500_000) / 1_000_000;
        Nanos(i64::try_from(rounded).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: &str, output: &str) -> Price {
        Price {
            currency: "USD".into(),
            input_per_million: Nanos::parse_decimal(input).unwrap_or_default(),
            output_per_million: Nanos::parse_decimal(output).unwrap_or_default(),
            cache_read_per_million: Nanos::parse_decimal("0.3").unwrap_or_default(),
            cache_write_per_million: Nanos::parse_decimal("3.75").unwrap_or_default(),
            version: 1,
        }
    }

    #[test]
    fn parses_and_prints_decimals_exactly() {
        assert_eq!(Nanos::parse_decimal("3"), Ok(Nanos(3_000_000_000)));
        assert_eq!(Nanos::parse_decimal("0.075"), Ok(Nanos(75_000_000)));
        assert_eq!(Nanos::parse_decimal(".5"), Ok(Nanos(500_000_000)));
        assert_eq!(Nanos::parse_decimal("0.000000001"), Ok(Nanos(1)));
        assert!(Nanos::parse_decimal("0.0000000001").is_err());
        assert!(Nanos::parse_decimal("-1").is_err());
        assert!(Nanos::parse_decimal("1e3").is_err());
        assert!(Nanos::parse_decimal("").is_err());
        assert_eq!(Nanos(75_000_000).to_decimal(), "0.075");
        assert_eq!(Nanos(3_000_000_000).to_decimal(), "3");
        assert_eq!(Nanos(-1).to_decimal(), "-0.000000001");
    }

    #[test]
    fn cost_is_exact_per_token_class() {
        // Claude-Sonnet-like prices: $3 in, $15 out, $0.30 cache read, $3.75 cache write.
        let price = price("3", "15");
        let tokens = BillableTokens {
            input: 1_000,
            output: 500,
            cache_read: 2_000,
            cache_write: 100,
        };
        // 1000*3e-6 + 500*15e-6 + 2000*0.3e-6 + 100*3.75e-6 = 0.003 + 0.0075 + 0.0006 + 0.000375
        assert_eq!(price.cost(tokens), Nanos(11_475_000));
    }

    #[test]
    fn cost_rounds_half_up_once() {
        let price = price("0.0000015", "0");
        // The price is 1,500 nanos per million tokens, so one token costs 0.0015 nanos.
        assert_eq!(
            price.cost(BillableTokens {
                input: 1,
                ..Default::default()
            }),
            Nanos(0)
        );
        // 1,000 tokens cost exactly 1.5 nanos, which rounds half-up to 2.
        assert_eq!(
            price.cost(BillableTokens {
                input: 1_000,
                ..Default::default()
            }),
            Nanos(2)
        );
        // 999 tokens cost 1.4985 nanos, which rounds down to 1.
        assert_eq!(
            price.cost(BillableTokens {
                input: 999,
                ..Default::default()
            }),
            Nanos(1)
        );
    }
}
