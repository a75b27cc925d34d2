//! The provider catalogue: every LiteLLM model prefix gatehouse knows, whether it is served
//! yet, and how to build an OpenAI-compatible provider's endpoint URLs from config.
//!
//! This crate is pure (no I/O); provider wire-format translation lives here too
//! (`anthropic`: OpenAI Chat Completions ↔ Anthropic Messages).

pub mod anthropic;
pub mod bedrock;
mod catalogue;
mod endpoint;
pub mod gemini;

pub use catalogue::{AuthStyle, PathStyle, Provider, ProviderLookup, WireFormat, lookup_provider};
pub use endpoint::{
    AZURE_DEFAULT_API_VERSION, EndpointError, Endpoints, Operation, build_endpoints,
    encode_path_segment, validate_api_base,
};
