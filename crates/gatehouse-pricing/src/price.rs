//! Token prices, model prices, and what a request costs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::clamp_i128;
use crate::{Money, PricingError, Usage};

/// A price per token in pico-USD (10⁻¹² USD), never negative.
///
/// `$1 / 1M tokens` is `1_000_000` pico-USD per token, so any price with at
/// most six decimals in USD per 1M tokens is exact (`"0.0375"` → `37_500`).
/// Serialized (serde) as the bare integer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TokenPrice(i64);

/// Decimal digits of scale for "USD per 1M tokens" → pico-USD per token.
const SCALE_PER_MILLION: u32 = 6;
/// Decimal digits of scale for "USD per token" → pico-USD per token.
const SCALE_PER_TOKEN: u32 = 12;

impl TokenPrice {
    /// Free: zero per token.
    pub const FREE: TokenPrice = TokenPrice(0);

    /// A price of `pico` pico-USD per token; negative prices are an error.
    pub fn from_pico_per_token(pico: i64) -> Result<TokenPrice, PricingError> {
        if pico < 0 {
            return Err(PricingError::InvalidPrice(pico.to_string()));
        }
        Ok(TokenPrice(pico))
    }

    /// The price in pico-USD per token.
    pub const fn pico_per_token(self) -> i64 {
        self.0
    }

    /// The price of one token as [`Money`].
    pub const fn per_token(self) -> Money {
        Money::from_pico(self.0)
    }

    /// True when the price is zero.
    pub const fn is_free(self) -> bool {
        self.0 == 0
    }

    /// Parses a decimal string in **USD per 1M tokens**, exactly (no floats):
    /// `"2.50"` → 2,500,000 pico-USD per token, `"0.0375"` → 37,500.
    ///
    /// Accepts digits with an optional fraction and an optional exponent
    /// (`"2.5"`, `".5"`, `"3."`, `"1.25e-1"`); rejects signs, spaces, empty
    /// strings, and anything finer than one pico-USD per token (more than six
    /// significant decimals, e.g. `"0.0000001"`) with [`PricingError::TooPrecise`].
    pub fn parse_per_million(s: &str) -> Result<TokenPrice, PricingError> {
        parse_scaled(s, SCALE_PER_MILLION).map(TokenPrice)
    }

    /// Parses a decimal string in **USD per token** exactly (LiteLLM's
    /// `input_cost_per_token` written as a string, e.g. `"0.0000025"` or
    /// `"2.5e-6"`); same rules as [`TokenPrice::parse_per_million`], with up to
    /// twelve decimals.
    pub fn parse_per_token(s: &str) -> Result<TokenPrice, PricingError> {
        parse_scaled(s, SCALE_PER_TOKEN).map(TokenPrice)
    }

    /// Converts a float in **USD per token** (LiteLLM's `input_cost_per_token`
    /// as parsed from YAML) to the nearest pico-USD per token. NaN, infinite and
    /// negative values are an error; prices above about $9.2M per token too.
    /// Sub-pico prices round (`1.4e-13` → 0, `6e-13` → 1).
    pub fn from_usd_per_token(usd: f64) -> Result<TokenPrice, PricingError> {
        if !usd.is_finite() || usd < 0.0 {
            return Err(PricingError::InvalidAmount(usd.to_string()));
        }
        let pico = (usd * 1e12).round();
        if pico >= 9.223_372_036_854_775e18 {
            return Err(PricingError::TooLarge(usd.to_string()));
        }
        Ok(TokenPrice(pico as i64))
    }

    /// The cost of `tokens` tokens at this price, saturating at [`Money::MAX`].
    pub fn cost(self, tokens: u64) -> Money {
        Money::from_pico(self.0).mul_tokens(tokens)
    }
}

/// Prints the price in USD per 1M tokens, exactly: `2.50`, `0.0375`, `0.00`.
impl fmt::Display for TokenPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000;
        let frac = self.0 % 1_000_000;
        let mut digits = format!("{frac:06}");
        while digits.len() > 2 && digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{whole}.{digits}")
    }
}

/// Parses a plain non-negative decimal (`digits[.digits][e[+-]digits]`) and
/// returns its value × 10^`scale` as an exact integer.
fn parse_scaled(s: &str, scale: u32) -> Result<i64, PricingError> {
    let invalid = || PricingError::InvalidPrice(s.to_owned());
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(invalid());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid());
            }
            let v: i64 = digits.parse().map_err(|_| invalid())?;
            if e.starts_with('-') { -v } else { v }
        }
    };
    // Trailing zeros of the fraction carry no value; dropping them keeps the
    // mantissa small ("2.500000000000" is 25 × 10⁻¹).
    let frac_trimmed = frac_part.trim_end_matches('0');
    let mut m: u128 = 0;
    for b in int_part.bytes().chain(frac_trimmed.bytes()) {
        m = m
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .ok_or_else(|| PricingError::TooLarge(s.to_owned()))?;
    }
    // value × 10^scale = m × 10^(scale + exp − fraction digits)
    let k = i64::from(scale) + exp - frac_trimmed.len() as i64;
    if m == 0 {
        return Ok(0);
    }
    let scaled: u128 = if k >= 0 {
        let pow = u32::try_from(k)
            .ok()
            .and_then(|k| 10u128.checked_pow(k))
            .ok_or_else(|| PricingError::TooLarge(s.to_owned()))?;
        m.checked_mul(pow)
            .ok_or_else(|| PricingError::TooLarge(s.to_owned()))?
    } else {
        let pow = u32::try_from(-k)
            .ok()
            .and_then(|k| 10u128.checked_pow(k))
            .ok_or_else(|| PricingError::TooPrecise(s.to_owned()))?;
        if !m.is_multiple_of(pow) {
            return Err(PricingError::TooPrecise(s.to_owned()));
        }
        m / pow
    };
    i64::try_from(scaled).map_err(|_| PricingError::TooLarge(s.to_owned()))
}

/// The prices of one model (one deployment).
///
/// Cache prices are optional: a missing cache-read or cache-write price is
/// billed at the input price. Token limits are optional too and only used to
/// bound reservations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Price of an uncached input token.
    pub input: TokenPrice,
    /// Price of an output token (reasoning tokens included).
    pub output: TokenPrice,
    /// Price of an input token read from the prompt cache (default: `input`).
    pub cache_read: Option<TokenPrice>,
    /// Price of an input token written to the prompt cache (default: `input`).
    /// For Anthropic this is the 5-minute cache-write price.
    pub cache_write: Option<TokenPrice>,
    /// The most output tokens the model produces for one request, if known.
    pub max_output_tokens: Option<u64>,
    /// The most input tokens the model accepts, if known.
    pub max_input_tokens: Option<u64>,
}

/// What a budget allows for one request; see [`ModelPrice::plan_reservation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Reserve `amount` before sending the request.
    Reserve {
        /// The most the request can cost, at most the budget.
        amount: Money,
        /// `Some(n)`: set `max_tokens` (or `max_completion_tokens`) to `n` on the
        /// upstream request, because the client sent none or more than the
        /// budget can pay for. `None`: leave the request as it is.
        max_tokens: Option<u64>,
    },
    /// Refuse the request: the budget cannot pay for its input plus one output
    /// token.
    Refuse {
        /// The least the request would cost (its input and one output token).
        needed: Money,
    },
}

impl ModelPrice {
    /// A model priced `input` and `output` per token with no cache prices or limits.
    pub const fn new(input: TokenPrice, output: TokenPrice) -> ModelPrice {
        ModelPrice {
            input,
            output,
            cache_read: None,
            cache_write: None,
            max_output_tokens: None,
            max_input_tokens: None,
        }
    }

    /// A model priced from LiteLLM's `input_cost_per_token` /
    /// `output_cost_per_token` (USD per token, as floats).
    pub fn from_usd_per_token(input: f64, output: f64) -> Result<ModelPrice, PricingError> {
        Ok(ModelPrice::new(
            TokenPrice::from_usd_per_token(input)?,
            TokenPrice::from_usd_per_token(output)?,
        ))
    }

    /// True when every price is zero.
    pub fn is_free(&self) -> bool {
        self.input.is_free()
            && self.output.is_free()
            && self.cache_read.is_none_or(TokenPrice::is_free)
            && self.cache_write.is_none_or(TokenPrice::is_free)
    }

    /// The price of a cache-read input token (the input price when unset).
    pub fn cache_read_price(&self) -> TokenPrice {
        self.cache_read.unwrap_or(self.input)
    }

    /// The price of a cache-write input token (the input price when unset).
    pub fn cache_write_price(&self) -> TokenPrice {
        self.cache_write.unwrap_or(self.input)
    }

    /// The cost of a finished request:
    /// uncached input × `input` + cache reads × `cache_read` + cache writes ×
    /// `cache_write` + output × `output`.
    ///
    /// Uncached input is `input_tokens − cached_input_tokens −
    /// cache_creation_tokens` (never below zero). Reasoning tokens are part of
    /// `output_tokens` (as in OpenAI's `completion_tokens`); should a usage ever
    /// report more reasoning than output tokens, the reasoning count is billed
    /// instead, so reasoning is never free.
    pub fn cost(&self, usage: &Usage) -> Money {
        let uncached = usage
            .input_tokens
            .saturating_sub(usage.cached_input_tokens)
            .saturating_sub(usage.cache_creation_tokens);
        let output = usage.output_tokens.max(usage.reasoning_tokens);
        // Each product fits in i128 (i64 × u64); their sum may not, so add
        // saturating.
        let term = |price: TokenPrice, tokens: u64| {
            i128::from(price.pico_per_token()) * i128::from(tokens)
        };
        let total = term(self.input, uncached)
            .saturating_add(term(self.cache_read_price(), usage.cached_input_tokens))
            .saturating_add(term(self.cache_write_price(), usage.cache_creation_tokens))
            .saturating_add(term(self.output, output));
        Money::from_pico(clamp_i128(total))
    }

    /// The highest price any input token can be billed at (input, cache write
    /// or cache read), used for reservations so that a request that writes its
    /// prompt to the cache still cannot cost more than was reserved.
    pub fn max_input_price(&self) -> TokenPrice {
        self.input
            .max(self.cache_write_price())
            .max(self.cache_read_price())
    }

    /// The most a request with `input_tokens` of input and at most
    /// `max_output_tokens` of output can cost: input at [`Self::max_input_price`]
    /// plus output at the output price. Saturates at [`Money::MAX`].
    pub fn max_cost(&self, input_tokens: u64, max_output_tokens: u64) -> Money {
        self.max_input_price()
            .cost(input_tokens)
            .saturating_add(self.output.cost(max_output_tokens))
    }

    /// How many output tokens `budget` pays for (floor); 0 for a budget that is
    /// not positive, `u64::MAX` when output is free.
    pub fn output_tokens_affordable(&self, budget: Money) -> u64 {
        budget.div_floor(self.output.per_token())
    }

    /// Plans the budget reservation for a request before it is sent.
    ///
    /// `budget` is what is left to spend (budget minus spend minus other
    /// reservations), `input_tokens` an upper estimate of the request's input,
    /// `requested_max_tokens` the client's `max_tokens` /
    /// `max_completion_tokens` if any.
    ///
    /// - Refuse when the budget cannot pay the input (at
    ///   [`Self::max_input_price`]) plus one output token.
    /// - With a requested `max_tokens` the budget can pay for: reserve input +
    ///   that many output tokens and leave the request alone.
    /// - With none and a known [`Self::max_output_tokens`] the budget can pay
    ///   for: reserve input + that many output tokens, leave the request alone.
    /// - Otherwise lower `max_tokens` on the upstream request to what the
    ///   budget can pay for and reserve exactly that.
    ///
    /// The reserved amount is never more than `budget`. Free output with no
    /// limit reserves only the input.
    pub fn plan_reservation(
        &self,
        budget: Money,
        input_tokens: u64,
        requested_max_tokens: Option<u64>,
    ) -> Reservation {
        let input_cost = self.max_input_price().cost(input_tokens);
        let needed = input_cost.saturating_add(self.output.per_token());
        if budget < needed {
            return Reservation::Refuse { needed };
        }
        let affordable = self.output_tokens_affordable(budget.saturating_sub(input_cost));
        let ceiling = requested_max_tokens.or(self.max_output_tokens);
        match ceiling {
            Some(wanted) if wanted <= affordable => Reservation::Reserve {
                amount: input_cost.saturating_add(self.output.cost(wanted)),
                max_tokens: None,
            },
            _ if affordable == u64::MAX => Reservation::Reserve {
                amount: input_cost,
                max_tokens: None,
            },
            _ => Reservation::Reserve {
                amount: input_cost.saturating_add(self.output.cost(affordable)),
                max_tokens: Some(affordable),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TokenPrice {
        TokenPrice::parse_per_million(s).unwrap()
    }

    #[test]
    fn parse_per_million_table() {
        let ok: &[(&str, i64)] = &[
            ("2.50", 2_500_000),
            ("2.5", 2_500_000),
            ("0.0375", 37_500),
            ("0", 0),
            ("0.00", 0),
            ("10", 10_000_000),
            ("75.00", 75_000_000),
            (".5", 500_000),
            ("3.", 3_000_000),
            ("0.000001", 1),
            ("0.0000010000000000", 1),
            ("1.25e-1", 125_000),
            ("1E2", 100_000_000),
            ("0.005", 5_000),
            ("000.10", 100_000),
            ("0e9999", 0),
            ("9223372036854.775807", i64::MAX),
        ];
        for &(s, want) in ok {
            assert_eq!(
                TokenPrice::parse_per_million(s).map(TokenPrice::pico_per_token),
                Ok(want),
                "{s}"
            );
        }
        type Check = fn(&PricingError) -> bool;
        let bad: &[(&str, Check)] = &[
            ("", |e| matches!(e, PricingError::InvalidPrice(_))),
            (".", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("-1", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("+1", |e| matches!(e, PricingError::InvalidPrice(_))),
            (" 1", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("1 ", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("1,5", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("1.2.3", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("abc", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("1e", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("1e+", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("1e99999", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("NaN", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("٣", |e| matches!(e, PricingError::InvalidPrice(_))),
            ("0.0000001", |e| matches!(e, PricingError::TooPrecise(_))),
            ("1.0000005", |e| matches!(e, PricingError::TooPrecise(_))),
            ("1e-7", |e| matches!(e, PricingError::TooPrecise(_))),
            ("9223372036854.775808", |e| {
                matches!(e, PricingError::TooLarge(_))
            }),
            ("1e300", |e| matches!(e, PricingError::TooLarge(_))),
            (
                "123456789012345678901234567890123456789012345678901234567890",
                |e| matches!(e, PricingError::TooLarge(_)),
            ),
        ];
        for &(s, check) in bad {
            let err = TokenPrice::parse_per_million(s).unwrap_err();
            assert!(check(&err), "{s}: {err:?}");
        }
    }

    #[test]
    fn parse_per_token_and_floats_agree() {
        let cases: &[(&str, f64, i64)] = &[
            ("0.0000025", 0.0000025, 2_500_000),
            ("2.5e-6", 2.5e-6, 2_500_000),
            ("0.000000000001", 1e-12, 1),
            ("0.00000003", 3e-8, 30_000),
            ("0", 0.0, 0),
        ];
        for &(s, f, want) in cases {
            assert_eq!(
                TokenPrice::parse_per_token(s).unwrap().pico_per_token(),
                want,
                "{s}"
            );
            assert_eq!(
                TokenPrice::from_usd_per_token(f).unwrap().pico_per_token(),
                want,
                "{f}"
            );
        }
        assert!(TokenPrice::parse_per_token("0.0000000000001").is_err());
        assert!(TokenPrice::from_usd_per_token(-1e-6).is_err());
        assert!(TokenPrice::from_usd_per_token(f64::NAN).is_err());
        assert!(TokenPrice::from_usd_per_token(1e10).is_err());
        assert!(TokenPrice::from_pico_per_token(-1).is_err());
    }

    #[test]
    fn display_per_million() {
        assert_eq!(p("2.50").to_string(), "2.50");
        assert_eq!(p("0.0375").to_string(), "0.0375");
        assert_eq!(p("0").to_string(), "0.00");
        assert_eq!(p("0.000001").to_string(), "0.000001");
    }

    fn openai_gpt4o() -> ModelPrice {
        ModelPrice {
            input: p("2.50"),
            output: p("10.00"),
            cache_read: Some(p("1.25")),
            cache_write: None,
            max_output_tokens: Some(16_384),
            max_input_tokens: Some(128_000),
        }
    }

    fn anthropic_sonnet() -> ModelPrice {
        ModelPrice {
            input: p("3"),
            output: p("15"),
            cache_read: Some(p("0.30")),
            cache_write: Some(p("3.75")),
            max_output_tokens: Some(64_000),
            max_input_tokens: Some(200_000),
        }
    }

    #[test]
    fn cost_table() {
        let o1 = ModelPrice {
            input: p("15"),
            output: p("60"),
            cache_read: Some(p("7.5")),
            ..ModelPrice::default()
        };
        // (price, usage, expected pico-USD), each computed by hand.
        let cases: Vec<(&str, ModelPrice, Usage, i64)> = vec![
            (
                "gpt-4o plain: 1000 in × 2.5M + 500 out × 10M",
                openai_gpt4o(),
                Usage {
                    input_tokens: 1000,
                    output_tokens: 500,
                    ..Usage::default()
                },
                1000 * 2_500_000 + 500 * 10_000_000,
            ),
            (
                "gpt-4o cached: 2000 in of which 1024 cached",
                openai_gpt4o(),
                Usage {
                    input_tokens: 2000,
                    cached_input_tokens: 1024,
                    output_tokens: 100,
                    ..Usage::default()
                },
                976 * 2_500_000 + 1024 * 1_250_000 + 100 * 10_000_000,
            ),
            (
                "o1 reasoning: 300 out incl. 256 reasoning, billed once",
                o1,
                Usage {
                    input_tokens: 50,
                    output_tokens: 300,
                    reasoning_tokens: 256,
                    ..Usage::default()
                },
                50 * 15_000_000 + 300 * 60_000_000,
            ),
            (
                "sonnet: 10 uncached + 5000 cache read + 2000 cache write, 200 out",
                anthropic_sonnet(),
                Usage {
                    input_tokens: 7010,
                    cached_input_tokens: 5000,
                    cache_creation_tokens: 2000,
                    output_tokens: 200,
                    reasoning_tokens: 0,
                },
                10 * 3_000_000 + 5000 * 300_000 + 2000 * 3_750_000 + 200 * 15_000_000,
            ),
            (
                "cache prices unset fall back to input",
                ModelPrice::new(p("1"), p("2")),
                Usage {
                    input_tokens: 30,
                    cached_input_tokens: 10,
                    cache_creation_tokens: 10,
                    output_tokens: 1,
                    ..Usage::default()
                },
                30 * 1_000_000 + 2_000_000,
            ),
            (
                "inconsistent usage: cached > input never goes negative",
                openai_gpt4o(),
                Usage {
                    input_tokens: 10,
                    cached_input_tokens: 20,
                    ..Usage::default()
                },
                20 * 1_250_000,
            ),
            (
                "reasoning reported beside output is still billed",
                openai_gpt4o(),
                Usage {
                    output_tokens: 5,
                    reasoning_tokens: 50,
                    ..Usage::default()
                },
                50 * 10_000_000,
            ),
            (
                "saturates",
                ModelPrice::new(TokenPrice(i64::MAX), TokenPrice(i64::MAX)),
                Usage {
                    input_tokens: u64::MAX,
                    output_tokens: u64::MAX,
                    ..Usage::default()
                },
                i64::MAX,
            ),
            (
                "empty usage is free",
                anthropic_sonnet(),
                Usage::default(),
                0,
            ),
        ];
        for (name, price, usage, want) in cases {
            assert_eq!(price.cost(&usage).pico(), want, "{name}");
        }
    }

    #[test]
    fn anthropic_usage_shape_cost_end_to_end() {
        let usage = Usage::from_anthropic(&serde_json::json!({
            "input_tokens": 10,
            "cache_read_input_tokens": 5000,
            "cache_creation_input_tokens": 2000,
            "output_tokens": 200
        }));
        assert_eq!(
            anthropic_sonnet().cost(&usage).pico(),
            10 * 3_000_000 + 5000 * 300_000 + 2000 * 3_750_000 + 200 * 15_000_000
        );
    }

    #[test]
    fn max_cost_uses_highest_input_price() {
        let s = anthropic_sonnet();
        assert_eq!(s.max_input_price(), p("3.75"));
        assert_eq!(
            s.max_cost(1000, 100).pico(),
            1000 * 3_750_000 + 100 * 15_000_000
        );
        let g = openai_gpt4o();
        assert_eq!(
            g.max_cost(1000, 100).pico(),
            1000 * 2_500_000 + 100 * 10_000_000
        );
        // Whatever the usage split, cost never exceeds max_cost.
        let u = Usage {
            input_tokens: 1000,
            cache_creation_tokens: 1000,
            output_tokens: 100,
            ..Usage::default()
        };
        assert!(s.cost(&u) <= s.max_cost(1000, 100));
    }

    #[test]
    fn affordable_tokens() {
        let g = openai_gpt4o();
        assert_eq!(g.output_tokens_affordable(Money::from_pico(25_000_000)), 2);
        assert_eq!(g.output_tokens_affordable(Money::from_pico(9_999_999)), 0);
        assert_eq!(g.output_tokens_affordable(Money::from_pico(-5)), 0);
        assert_eq!(
            ModelPrice::default().output_tokens_affordable(Money::ZERO),
            u64::MAX
        );
    }

    #[test]
    fn reservation_plans() {
        let g = openai_gpt4o(); // 2.5M in, 10M out per token (pico)
        let usd = |x: f64| Money::from_usd(x).unwrap();
        // Plenty of budget, requested max_tokens: reserve it, leave request alone.
        assert_eq!(
            g.plan_reservation(usd(1.0), 1000, Some(100)),
            Reservation::Reserve {
                amount: Money::from_pico(1000 * 2_500_000 + 100 * 10_000_000),
                max_tokens: None
            }
        );
        // No max_tokens, budget covers model max: reserve model max.
        assert_eq!(
            g.plan_reservation(usd(1.0), 1000, None),
            Reservation::Reserve {
                amount: Money::from_pico(1000 * 2_500_000 + 16_384 * 10_000_000),
                max_tokens: None
            }
        );
        // Small budget: lower max_tokens to what is affordable.
        // budget 0.01 USD = 10_000_000_000 pico; input 1000 × 2.5M = 2.5e9;
        // left 7.5e9 / 1e7 = 750 tokens.
        assert_eq!(
            g.plan_reservation(usd(0.01), 1000, Some(4000)),
            Reservation::Reserve {
                amount: Money::from_pico(2_500_000_000 + 750 * 10_000_000),
                max_tokens: Some(750)
            }
        );
        assert_eq!(
            g.plan_reservation(usd(0.01), 1000, None),
            Reservation::Reserve {
                amount: Money::from_pico(2_500_000_000 + 750 * 10_000_000),
                max_tokens: Some(750)
            }
        );
        // Input alone is unaffordable: refuse.
        assert_eq!(
            g.plan_reservation(Money::from_pico(2_500_000_000), 1000, None),
            Reservation::Refuse {
                needed: Money::from_pico(2_500_000_000 + 10_000_000)
            }
        );
        // Negative remaining budget: refuse.
        assert!(matches!(
            g.plan_reservation(Money::from_pico(-1), 0, None),
            Reservation::Refuse { .. }
        ));
        // Free model: reserve nothing, never touch the request.
        assert_eq!(
            ModelPrice::default().plan_reservation(Money::ZERO, 1000, None),
            Reservation::Reserve {
                amount: Money::ZERO,
                max_tokens: None
            }
        );
        // The reservation never exceeds the budget.
        for budget in [0i64, 1, 12_345_678, 2_500_000_000, 10_000_000_000, i64::MAX] {
            for req in [None, Some(0), Some(1), Some(10_000), Some(u64::MAX)] {
                if let Reservation::Reserve { amount, max_tokens } =
                    g.plan_reservation(Money::from_pico(budget), 1000, req)
                {
                    assert!(amount.pico() <= budget, "{budget} {req:?}");
                    if let Some(m) = max_tokens {
                        assert!(g.max_cost(1000, m) <= Money::from_pico(budget));
                    }
                }
            }
        }
    }
}
