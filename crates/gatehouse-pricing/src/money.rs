//! [`Money`]: an exact amount of pico-USD.

use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use serde::{Deserialize, Serialize};

use crate::PricingError;

/// Pico-USD in one USD.
const PICO_PER_USD: i64 = 1_000_000_000_000;

/// An exact amount of money in **pico-USD** (10⁻¹² USD).
///
/// Held in an `i64`: the range is ±9,223,372.036854775807 USD (about
/// $9.2 million) per value, which is far more than any one request, key or
/// team budget needs, and fine enough for the cheapest token prices
/// (`$0.005 / 1M tokens` is 5 pico-USD per token). All arithmetic saturates at
/// the ends of the range instead of wrapping. Amounts may be negative (a
/// remaining budget after an overrun, a refund), but [`Money::from_usd`]
/// refuses negative input.
///
/// Serialized (serde) as the bare integer number of pico-USD.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    /// Nothing.
    pub const ZERO: Money = Money(0);
    /// The largest amount, about $9.22 million; saturating arithmetic stops here.
    pub const MAX: Money = Money(i64::MAX);
    /// The smallest (most negative) amount.
    pub const MIN: Money = Money(i64::MIN);

    /// An amount of pico-USD.
    pub const fn from_pico(pico: i64) -> Money {
        Money(pico)
    }

    /// The amount in pico-USD.
    pub const fn pico(self) -> i64 {
        self.0
    }

    /// Converts a USD amount (a float from configuration, e.g. `max_budget: 10.5`)
    /// to pico-USD, rounded to the nearest pico-USD.
    ///
    /// Rule: NaN, infinities and negative amounts are an error
    /// ([`PricingError::InvalidAmount`]); `-0.0` is zero; amounts above
    /// [`Money::MAX`] (about $9.2M) saturate to [`Money::MAX`].
    pub fn from_usd(usd: f64) -> Result<Money, PricingError> {
        if !usd.is_finite() || usd < 0.0 {
            return Err(PricingError::InvalidAmount(usd.to_string()));
        }
        let pico = (usd * PICO_PER_USD as f64).round();
        // `as` saturates for floats out of range, which is the documented rule.
        Ok(Money(pico as i64))
    }

    /// The amount in USD as a float (for display, metrics and LiteLLM-compatible
    /// JSON fields such as `spend`); exact for amounts below about $9,007.
    pub fn as_usd(self) -> f64 {
        // Split to keep full precision of the fractional part.
        let whole = self.0 / PICO_PER_USD;
        let frac = self.0 % PICO_PER_USD;
        whole as f64 + frac as f64 / PICO_PER_USD as f64
    }

    /// `self + other`, saturating.
    pub const fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating.
    pub const fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }

    /// `self × tokens` (a per-token amount times a token count), saturating.
    pub fn mul_tokens(self, tokens: u64) -> Money {
        let product = i128::from(self.0) * i128::from(tokens);
        Money(clamp_i128(product))
    }

    /// How many whole units of `unit` fit in `self` (floor); 0 when `self` is
    /// not positive, `u64::MAX` when `unit` is zero or negative (free).
    pub fn div_floor(self, unit: Money) -> u64 {
        if unit.0 <= 0 {
            return u64::MAX;
        }
        if self.0 <= 0 {
            return 0;
        }
        // Both positive: the quotient fits in u64.
        (self.0 / unit.0) as u64
    }

    /// True when the amount is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The larger of the two amounts.
    pub fn max(self, other: Money) -> Money {
        Money(self.0.max(other.0))
    }

    /// The smaller of the two amounts.
    pub fn min(self, other: Money) -> Money {
        Money(self.0.min(other.0))
    }
}

/// Clamps an `i128` into the `i64` range.
pub(crate) fn clamp_i128(v: i128) -> i64 {
    if v > i128::from(i64::MAX) {
        i64::MAX
    } else if v < i128::from(i64::MIN) {
        i64::MIN
    } else {
        v as i64
    }
}

impl Add for Money {
    type Output = Money;
    /// Saturating addition.
    fn add(self, rhs: Money) -> Money {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub for Money {
    type Output = Money;
    /// Saturating subtraction.
    fn sub(self, rhs: Money) -> Money {
        self.saturating_sub(rhs)
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = self.saturating_sub(rhs);
    }
}

impl Neg for Money {
    type Output = Money;
    /// Saturating negation (`-MIN` is `MAX`).
    fn neg(self) -> Money {
        Money(self.0.saturating_neg())
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Money::saturating_add)
    }
}

/// Prints the amount in USD, exactly, without a currency sign: the integer part,
/// a point, and the pico-USD fraction with trailing zeros removed but at least
/// two decimals — `0.00`, `1.50`, `0.000123`, `-2.25`, `0.000000000001`.
/// Suitable for the `x-litellm-response-cost` header and JSON numbers.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let per = PICO_PER_USD as u64;
        let whole = abs / per;
        let frac = abs % per;
        let mut digits = format!("{frac:012}");
        while digits.len() > 2 && digits.ends_with('0') {
            digits.pop();
        }
        if negative {
            write!(f, "-{whole}.{digits}")
        } else {
            write!(f, "{whole}.{digits}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_usd_rounds_and_rejects() {
        let cases: &[(f64, Option<i64>)] = &[
            (0.0, Some(0)),
            (-0.0, Some(0)),
            (1.0, Some(1_000_000_000_000)),
            (10.5, Some(10_500_000_000_000)),
            (0.000002, Some(2_000_000)),
            (1e-13, Some(0)),
            (6e-13, Some(1)),
            (1e30, Some(i64::MAX)),
            (-1.0, None),
            (-1e-20, None),
            (f64::NAN, None),
            (f64::INFINITY, None),
            (f64::NEG_INFINITY, None),
        ];
        for &(usd, want) in cases {
            let got = Money::from_usd(usd).ok().map(Money::pico);
            assert_eq!(got, want, "from_usd({usd})");
        }
    }

    #[test]
    fn as_usd_round_trips() {
        for usd in [0.0, 1.0, 0.25, 123.456789, 9_000_000.0] {
            let m = Money::from_usd(usd).unwrap();
            assert!((m.as_usd() - usd).abs() < 1e-9, "{usd}");
        }
        assert!((Money::MAX.as_usd() - 9_223_372.036_854_776).abs() < 1e-6);
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Money::MAX + Money::from_pico(1), Money::MAX);
        assert_eq!(Money::MIN - Money::from_pico(1), Money::MIN);
        assert_eq!(
            Money::from_pico(5) - Money::from_pico(7),
            Money::from_pico(-2)
        );
        assert_eq!(Money::from_pico(3).mul_tokens(4), Money::from_pico(12));
        assert_eq!(Money::from_pico(2).mul_tokens(u64::MAX), Money::MAX);
        assert_eq!(Money::from_pico(-2).mul_tokens(u64::MAX), Money::MIN);
        assert_eq!(-Money::MIN, Money::MAX);
        let mut m = Money::ZERO;
        m += Money::from_pico(10);
        m -= Money::from_pico(3);
        assert_eq!(m.pico(), 7);
        let total: Money = [Money::MAX, Money::MAX].into_iter().sum();
        assert_eq!(total, Money::MAX);
    }

    #[test]
    fn div_floor_edges() {
        assert_eq!(Money::from_pico(10).div_floor(Money::from_pico(3)), 3);
        assert_eq!(Money::from_pico(-10).div_floor(Money::from_pico(3)), 0);
        assert_eq!(Money::from_pico(10).div_floor(Money::ZERO), u64::MAX);
    }

    #[test]
    fn display_is_exact() {
        let cases: &[(i64, &str)] = &[
            (0, "0.00"),
            (1_500_000_000_000, "1.50"),
            (123_000_000, "0.000123"),
            (1, "0.000000000001"),
            (-2_250_000_000_000, "-2.25"),
            (i64::MAX, "9223372.036854775807"),
            (i64::MIN, "-9223372.036854775808"),
            (10_000_000_000_000, "10.00"),
        ];
        for &(pico, want) in cases {
            assert_eq!(Money::from_pico(pico).to_string(), want);
        }
    }

    #[test]
    fn serde_is_bare_integer() {
        let m = Money::from_pico(42);
        assert_eq!(serde_json::to_string(&m).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Money>("42").unwrap(), m);
    }
}
