use std::fmt;

use serde::{Serialize, Serializer};

/// Fractional digits of the token: one token is 10^18 of its smallest unit.
const DECIMALS: usize = 18;
const UNITS_PER_TOKEN: u128 = 10u128.pow(DECIMALS as u32);
/// The largest amount a request may move, and the most any wallet's `balance` or `staked` may
/// hold: 10^12 tokens, 10^30 units, so that every stored figure stays far inside DynamoDB's 38
/// significant digits.
pub const MAX_TOKENS: u128 = 1_000_000_000_000 * UNITS_PER_TOKEN;

/// A quantity of tokens as an integer of the smallest unit. Answered as a decimal string
/// ("0.3", "12"), never as a JSON number, so no client reads it through floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct TokenAmount(u128);

impl TokenAmount {
    pub const ZERO: Self = Self(0);

    pub fn from_units(units: u128) -> Self {
        Self(units)
    }

    pub fn units(self) -> u128 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }
}

impl fmt::Display for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / UNITS_PER_TOKEN;
        let fraction = self.0 % UNITS_PER_TOKEN;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:0width$}", width = DECIMALS);
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl Serialize for TokenAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An amount a request asks to move: more than zero and at most `MAX_TOKENS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(TokenAmount);

impl Amount {
    /// Reads the decimal text itself, never through floating point: digits, optionally a point
    /// and 1 to 18 fractional digits. Signs and exponents are refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(unsigned) = text.strip_prefix('-')
            && split_decimal(unsigned).is_some()
        {
            return Err("must be greater than 0".into());
        }
        let Some((whole, fraction)) = split_decimal(text) else {
            return Err(format!(
                "must be a decimal number such as \"12.5\", with at most {DECIMALS} fractional digits and no exponent"
            ));
        };
        if fraction.len() > DECIMALS {
            return Err(format!("must have at most {DECIMALS} fractional digits"));
        }
        let too_large = || format!("must be at most {}", TokenAmount(MAX_TOKENS));
        let whole = match whole.trim_start_matches('0') {
            "" => 0,
            digits => digits.parse::<u128>().map_err(|_| too_large())?,
        };
        let fraction = format!("{fraction:0<width$}", width = DECIMALS)
            .parse::<u128>()
            .expect("at most 18 decimal digits fit in u128");
        let units = whole
            .checked_mul(UNITS_PER_TOKEN)
            .and_then(|units| units.checked_add(fraction))
            .ok_or_else(too_large)?;
        match units {
            0 => Err("must be greater than 0".into()),
            units if units > MAX_TOKENS => Err(too_large()),
            units => Ok(Self(TokenAmount(units))),
        }
    }

    pub fn tokens(self) -> TokenAmount {
        self.0
    }

    pub fn units(self) -> u128 {
        self.0.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// `digits` or `digits.digits`, split at the point; `None` for anything else.
fn split_decimal(text: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return None,
        None => (text, ""),
    };
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    (!whole.is_empty() && digits(whole) && digits(fraction)).then_some((whole, fraction))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(text: &str) -> u128 {
        Amount::parse(text).unwrap().units()
    }

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(units("1"), UNITS_PER_TOKEN);
        assert_eq!(units("0.1") + units("0.2"), units("0.3"));
        assert_eq!(units("0.000000000000000001"), 1);
        assert_eq!(units("12.500"), 12 * UNITS_PER_TOKEN + UNITS_PER_TOKEN / 2);
        assert_eq!(units("007"), 7 * UNITS_PER_TOKEN);
        assert_eq!(units("1000000000000"), MAX_TOKENS);
    }

    #[test]
    fn refuses_what_is_not_a_plain_positive_decimal() {
        for bad in [
            "", " 1", "1 ", "+1", "1e5", "1E-18", "1.", ".5", "0x10", "NaN", "Infinity", "1,5",
            "1.2.3", "١",
        ] {
            assert!(
                Amount::parse(bad).unwrap_err().contains("decimal number"),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn bounds() {
        for zero in ["0", "0.000", "-0"] {
            assert_eq!(Amount::parse(zero).unwrap_err(), "must be greater than 0");
        }
        assert_eq!(Amount::parse("-1").unwrap_err(), "must be greater than 0");
        assert!(
            Amount::parse("0.0000000000000000001")
                .unwrap_err()
                .contains("at most 18")
        );
        for huge in [
            "1000000000000.000000000000000001",
            "1000000000001",
            &"9".repeat(60),
        ] {
            assert_eq!(
                Amount::parse(huge).unwrap_err(),
                "must be at most 1000000000000"
            );
        }
    }

    #[test]
    fn answers_decimal_strings() {
        assert_eq!(TokenAmount::ZERO.to_string(), "0");
        assert_eq!(Amount::parse("0.30").unwrap().to_string(), "0.3");
        assert_eq!(
            Amount::parse("0.000000000000000001").unwrap().to_string(),
            "0.000000000000000001"
        );
        assert_eq!(Amount::parse("42").unwrap().to_string(), "42");
        assert_eq!(
            serde_json::to_value(Amount::parse("1.25").unwrap()).unwrap(),
            serde_json::json!("1.25")
        );
        assert_eq!(
            TokenAmount::from_units(MAX_TOKENS * 2).to_string(),
            "2000000000000"
        );
    }
}
