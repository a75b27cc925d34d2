//! OpenAI Chat Completions → Amazon Bedrock Runtime `Converse` / `ConverseStream`, the
//! upstream direction: a client speaks OpenAI to gatehouse, a `bedrock/…` deployment is
//! served by Bedrock's Converse API, signed with AWS Signature Version 4.
//!
//! Pure functions; no I/O and no panics on any input.
//!
//! - [`sign`] / [`amz_date`] / [`Credentials`]: SigV4 header signing.
//! - [`EventStreamDecoder`] / [`encode_message`]: AWS event-stream binary framing.
//! - [`chat_request_to_converse`]: OpenAI request → Converse body (the model id goes in
//!   the URL: [`converse_path`]).
//! - [`converse_response_to_chat`]: Converse response → OpenAI `chat.completion`.
//! - [`StreamTranslator`]: ConverseStream event-stream bytes → OpenAI chunk SSE.
//! - [`error_message`] / [`error_type`]: Bedrock error body and `x-amzn-errortype`.
//! - [`embeddings_request_to_invoke`] / [`invoke_responses_to_embeddings`]: OpenAI
//!   embeddings ↔ `InvokeModel` for Titan and Cohere embedding models ([`embed_family`]).
//!
//! Request failures are [`TranslateError`]s (shared with the Anthropic translation).

mod embeddings;
mod eventstream;
mod request;
mod response;
mod sigv4;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::Value;

pub use crate::anthropic::TranslateError;
pub use embeddings::{
    EmbedFamily, EmbedRequests, embed_family, embeddings_request_to_invoke, invoke_path,
    invoke_responses_to_embeddings,
};
pub use eventstream::{EventStreamDecoder, EventStreamError, Message, encode_message};
pub use request::chat_request_to_converse;
pub use response::{converse_response_to_chat, error_message, error_type};
pub use sigv4::{Credentials, SignError, amz_date, sign};
pub use stream::StreamTranslator;

/// The SigV4 service name of Bedrock Runtime.
pub const SERVICE: &str = "bedrock";

/// `maxTokens` added on top of a thinking budget when the request sets no length.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The request path for a model: `/model/{modelId}/converse` (or `/converse-stream`), the
/// model id percent-encoded as one path segment (`us.anthropic.claude-…-v1:0` →
/// `…-v1%3A0`; an inference-profile ARN's `/` and `:` are encoded too).
pub fn converse_path(model_id: &str, stream: bool) -> String {
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("/model/{}/{op}", sigv4::uri_encode(model_id.as_bytes()))
}

/// Bedrock `stopReason` → OpenAI `finish_reason`. Unknown or missing reasons are "stop".
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("guardrail_intervened") | Some("content_filtered") => "content_filter",
        // end_turn, stop_sequence, and anything new.
        _ => "stop",
    }
}

/// Bedrock `usage` (`inputTokens`, `outputTokens`, `cacheReadInputTokens`,
/// `cacheWriteInputTokens`) → the shared usage counts (`totalTokens` is recomputed).
pub(crate) fn usage(u: &Value) -> crate::anthropic::Usage {
    let get = |key: &str| u.get(key).and_then(Value::as_u64).unwrap_or(0);
    crate::anthropic::Usage {
        input: get("inputTokens"),
        cache_read: get("cacheReadInputTokens"),
        cache_creation: get("cacheWriteInputTokens"),
        output: get("outputTokens"),
    }
}
