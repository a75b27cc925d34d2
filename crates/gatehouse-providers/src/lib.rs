//! The provider catalogue: every LiteLLM model prefix gatehouse knows, whether it is served
//! yet, and how to build an OpenAI-compatible provider's endpoint URLs from config.
//!
//! This crate is pure (no I/O); it is where provider-specific translation will live.

mod catalogue;
mod endpoint;

pub use catalogue::{AuthStyle, PathStyle, Provider, ProviderLookup, lookup_provider};
pub use endpoint::{
    AZURE_DEFAULT_API_VERSION, EndpointError, Endpoints, Operation, build_endpoints,
    validate_api_base,
};
