//! Accounting primitives for gatehouse: what a request costs.
//!
//! This crate is pure and synchronous; everything in it is cheap enough for the
//! gateway's hot path except the tokenizer, which is only used when an upstream
//! reports no usage (see [`count_tokens`]).
//!
//! # The money unit
//!
//! All money is exact integer arithmetic in **pico-USD** (1 pico-USD =
//! 10⁻¹² USD), held in [`Money`] (an `i64`, so at most about **$9.22 million**
//! per value; arithmetic saturates instead of wrapping). Token prices are
//! [`TokenPrice`]s, pico-USD per token: `$2.50 / 1M tokens` is exactly
//! `2_500_000` pico-USD per token, and the finest representable price is
//! `$0.000001 / 1M tokens`. Floats appear only at the edges ([`Money::from_usd`],
//! [`Money::as_usd`], [`TokenPrice::from_usd_per_token`]) for configuration
//! values that are floats already.
//!
//! # What is here
//!
//! - [`Money`], [`TokenPrice`], [`ModelPrice`] with [`ModelPrice::cost`],
//!   [`ModelPrice::max_cost`], [`ModelPrice::output_tokens_affordable`] and
//!   [`ModelPrice::plan_reservation`] (budget reservation and `max_tokens`
//!   clamping);
//! - [`PriceTable`]: the built-in price table shipped as `prices.json` (each
//!   price with its public source and date) and [`PriceTable::lookup`];
//! - [`Usage`] and its extraction from OpenAI and Anthropic usage objects,
//!   whole response bodies ([`usage_from_openai_body`],
//!   [`usage_from_anthropic_body`]) and SSE streams ([`StreamUsage`]);
//! - token counting with tiktoken's `o200k_base` when usage is missing
//!   ([`count_tokens`], [`count_chat_input`], [`count_embedding_input`],
//!   [`count_anthropic_input`]).

#![warn(missing_docs)]

mod error;
mod money;
mod price;
mod stream;
mod table;
mod tokens;
mod usage;

pub use error::PricingError;
pub use money::Money;
pub use price::{ModelPrice, Reservation, TokenPrice};
pub use stream::{DEFAULT_STREAM_TEXT_LIMIT, StreamUsage};
pub use table::{PriceEntry, PriceMode, PriceTable};
pub use tokens::{
    ANTHROPIC_IMAGE_TOKEN_ALLOWANCE, IMAGE_TOKEN_ALLOWANCE, REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE, TOKENS_PER_NAME, count_anthropic_input, count_chat_input,
    count_embedding_input, count_tokens, tokenizer_loaded,
};
pub use usage::{Usage, usage_from_anthropic_body, usage_from_openai_body};
