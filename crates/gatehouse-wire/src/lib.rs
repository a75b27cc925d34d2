//! The client-facing wire formats as gatehouse reads and writes them: OpenAI's, and the
//! shape of Anthropic's Messages requests for the Anthropic-compatible endpoint.
//!
//! Pure code, no I/O: a zero-copy view of a JSON request object ([`JsonObject`]) that
//! validates the few fields the gateway acts on and passes every other field through
//! untouched; the OpenAI error envelope ([`ErrorBody`]); SSE framing helpers ([`sse`]).
//!
//! **Architecture invariant:** fields that could choose where the gateway connects or with
//! which credentials (`api_base`, `base_url`, `api_key`, …) are removed here, by their
//! unescaped name, before anything is forwarded.

mod error;
mod object;
mod request;
pub mod sse;

pub use error::ErrorBody;
pub use object::{JsonObject, ObjectError, json_string};
pub use request::{
    ChatRequest, EmbeddingsRequest, MessagesRequest, RequestError, UPSTREAM_CONTROL_FIELDS,
};
