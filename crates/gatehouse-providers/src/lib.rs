//! Providers: every LiteLLM model prefix gatehouse knows, whether it is served yet, how to
//! build its endpoint URLs from config, and the translation between the client-facing
//! formats (OpenAI Chat Completions, Anthropic Messages) and each provider's wire format
//! (`anthropic`, `gemini`, `bedrock`; `vertex` reuses `gemini`'s translators), and what each
//! provider's error answers mean (`errors`).
//!
//! This crate is pure (no I/O): request in, request out; chunk in, chunks out.

pub mod anthropic;
pub mod bedrock;
mod catalogue;
mod endpoint;
pub mod errors;
pub mod gemini;
mod json_mode;
mod openai_chunks;
mod openai_request;
pub mod sse;
pub mod vertex;

pub use catalogue::{AuthStyle, PathStyle, Provider, ProviderLookup, WireFormat, lookup_provider};
pub use endpoint::{
    AZURE_DEFAULT_API_VERSION, EndpointError, Endpoints, Operation, build_endpoints,
    build_vertex_endpoints, validate_api_base,
};
