//! Errors of the pricing crate.

/// Everything that can go wrong while parsing prices or the price table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// A USD amount was negative, NaN or infinite.
    #[error("invalid USD amount {0}: must be a finite number >= 0")]
    InvalidAmount(String),
    /// A decimal price string is not a plain non-negative decimal number.
    #[error("invalid price {0:?}: expected a non-negative decimal such as \"2.50\"")]
    InvalidPrice(String),
    /// A decimal price string has more precision than pico-USD per token can hold.
    #[error("price {0:?} is more precise than 1 pico-USD per token")]
    TooPrecise(String),
    /// A price is too large to be represented.
    #[error("price {0:?} is too large")]
    TooLarge(String),
    /// The built-in or a supplied price table is not valid JSON of the expected shape.
    #[error("price table is malformed: {0}")]
    Table(String),
    /// One entry of a price table is not sane.
    #[error("price table entry {provider}/{model}: {reason}")]
    Entry {
        /// Provider of the offending entry.
        provider: String,
        /// Model id of the offending entry.
        model: String,
        /// What is wrong with it.
        reason: String,
    },
}
