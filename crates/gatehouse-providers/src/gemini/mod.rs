//! OpenAI Chat Completions / Embeddings ↔ Google Gemini API (`generativelanguage`
//! `v1beta`), the upstream direction: a client speaks OpenAI to gatehouse, a `gemini/…`
//! deployment is served by `models/{m}:generateContent`, `:streamGenerateContent?alt=sse`
//! and `:batchEmbedContents`.
//!
//! Pure functions over `serde_json::Value`; no I/O and no panics on any input. The model is
//! part of the URL, never of the chat body; the API key goes in the `x-goog-api-key`
//! header, never in the URL (the endpoint builder's business, not this module's).
//!
//! - [`chat_request_to_generate`]: OpenAI chat request → `generateContent` body (the same
//!   body serves `streamGenerateContent`).
//! - [`generate_response_to_chat`]: `GenerateContentResponse` → OpenAI `chat.completion`.
//! - [`StreamTranslator`]: Gemini SSE (`data: {GenerateContentResponse}`) → OpenAI
//!   `chat.completion.chunk` frames.
//! - [`embeddings_request_to_batch`] / [`batch_response_to_embeddings`]: OpenAI embeddings
//!   ↔ `batchEmbedContents`.
//! - [`error_message`]: Google error body → message and status.
//!
//! Errors reuse [`crate::anthropic::TranslateError`] (a client-facing 400). Fields that would
//! let a client use what only the gateway's credentials reach — `gs://` and other storage
//! URLs, `cachedContent` — are refused (see [`chat_request_to_generate`]'s module table).
//!
//! ## Tool call ids and thought signatures
//!
//! Thinking models (Gemini 2.5, 3) put an opaque `thoughtSignature` on response parts, and
//! Gemini 3 answers 400 "Function call is missing a thought_signature" when the first
//! `functionCall` part of each step of the current turn comes back without its signature.
//! OpenAI and Anthropic clients echo only tool call ids and message content, so the
//! signature of a `functionCall` part travels in the id gatehouse gives the tool call:
//!
//! - **Out** (answer, streamed or not): `call_<24 hex>` — SHA-256 of the `responseId`,
//!   candidate and position, so ids differ across turns — then, if the part is signed,
//!   `ids::SIGNATURE_SEPARATOR` (`__thought__`) and the signature in base64url without
//!   padding (ids stay within `[A-Za-z0-9_-]`, which Anthropic requires of `tool_use`
//!   ids). A signature over `ids::MAX_SIGNATURE_LEN` characters is not carried.
//! - **Back** (an assistant `tool_calls` entry in a later request): the part gets
//!   `thoughtSignature` = whatever follows the first separator of the id, if — and only
//!   if — it is base64 of a valid length (either alphabet), re-encoded as the standard
//!   base64 Gemini sent (`ids::signature_from_id`); else the call goes without one. Ids in
//!   LiteLLM's form (`…__thought__<base64>`) and Google's OpenAI-compatible
//!   `extra_content.google.thought_signature` are read the same way. A forged id can put
//!   nothing but a base64 string into `thoughtSignature`, which Gemini verifies.
//!
//! Parallel calls: Gemini signs only the first `functionCall` part of a response, so only
//! the first id carries a signature, and it goes back on that same part. Signatures on
//! other parts (text, thoughts; recommended but not required to be returned) are dropped:
//! they cannot ride on an id, and putting them in `thinking_blocks` would let them reach
//! an Anthropic model as an Anthropic thinking signature (and Anthropic's reach Gemini)
//! when a conversation changes model — a 400 either way.

mod ids;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::{Value, json};

pub use crate::anthropic::TranslateError;
pub use request::{chat_request_to_generate, embeddings_request_to_batch};
pub use response::{batch_response_to_embeddings, error_message, generate_response_to_chat};
pub use stream::StreamTranslator;

/// `thinkingBudget` for `reasoning_effort` minimal/low.
pub const THINKING_BUDGET_LOW: u64 = 1024;
/// `thinkingBudget` for `reasoning_effort` medium.
pub const THINKING_BUDGET_MEDIUM: u64 = 8192;
/// `thinkingBudget` for `reasoning_effort` high.
pub const THINKING_BUDGET_HIGH: u64 = 24576;

/// The model a `GenerateContentResponse` (or stream chunk) reports: its `modelVersion`, if
/// a non-empty string.
pub(crate) fn model_version(resp: &Value) -> Option<&str> {
    resp.get("modelVersion")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
}

/// Gemini `finishReason` → OpenAI `finish_reason`. `STOP` becomes `tool_calls` when the
/// candidate called functions; unknown or missing reasons are "stop".
pub(crate) fn finish_reason(reason: Option<&str>, called_tools: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY",
        ) => "content_filter",
        _ if called_tools => "tool_calls",
        // STOP, LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED, new ones.
        _ => "stop",
    }
}

/// Gemini `usageMetadata` → OpenAI `usage` (thoughts count as completion tokens, as OpenAI
/// counts reasoning tokens).
pub(crate) fn usage_to_openai(meta: Option<&Value>) -> Value {
    let get = |key: &str| {
        meta.and_then(|m| m.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let prompt = get("promptTokenCount");
    let thoughts = get("thoughtsTokenCount");
    let completion = get("candidatesTokenCount").saturating_add(thoughts);
    let total = match meta
        .and_then(|m| m.get("totalTokenCount"))
        .and_then(Value::as_u64)
    {
        Some(t) => t,
        None => prompt.saturating_add(completion),
    };
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": { "cached_tokens": get("cachedContentTokenCount") },
        "completion_tokens_details": { "reasoning_tokens": thoughts },
    })
}

/// The OpenAI `id` for a Gemini `responseId`.
pub(crate) fn completion_id(response: &Value) -> String {
    match response.get("responseId").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => format!("chatcmpl-{id}"),
        _ => "chatcmpl-gemini".to_owned(),
    }
}

/// A `functionCall` part → OpenAI tool call function `{name, arguments}` (compact JSON).
pub(crate) fn function_call(call: &Value) -> (String, String) {
    let name = call
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let args = call
        .get("args")
        .filter(|a| !a.is_null())
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    (name, args)
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with padding).
pub(crate) fn base64_encode(input: &[u8]) -> String {
    let sym = |v: u32| {
        BASE64_ALPHABET
            .get((v & 63) as usize)
            .map_or('A', |&b| char::from(b))
    };
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let (b, len) = match *chunk {
            [a, b, c] => ((u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c), 3),
            [a, b] => ((u32::from(a) << 16) | (u32::from(b) << 8), 2),
            [a] => (u32::from(a) << 16, 1),
            _ => continue,
        };
        out.push(sym(b >> 18));
        out.push(sym(b >> 12));
        out.push(if len > 1 { sym(b >> 6) } else { '=' });
        out.push(if len > 2 { sym(b) } else { '=' });
    }
    out
}
