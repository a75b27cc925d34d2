//! Anthropic Messages ↔ OpenAI Chat Completions, the inbound direction: a client (Claude
//! Code, the Anthropic SDKs) calls gatehouse's `POST /v1/messages`, and the chosen deployment
//! speaks OpenAI Chat Completions.
//!
//! Pure functions over `serde_json::Value`; no I/O and no panics on any input.
//!
//! - [`messages_request_to_chat`] / [`messages_request_to_chat_for`]: Anthropic request →
//!   OpenAI `POST /chat/completions` body (for an OpenAI-compatible upstream, or for another
//!   translation: [`ChatTarget`]).
//! - [`chat_response_to_message`]: OpenAI `chat.completion` → Anthropic `message`.
//! - [`ChatStreamToMessages`]: OpenAI `chat.completion.chunk` SSE → Anthropic SSE events.
//! - [`error_body`] / [`error_kind`]: Anthropic-format errors.
//! - [`estimate_input_tokens`]: a rough token count for `/v1/messages/count_tokens`.
//!
//! # What is translated, dropped, refused
//!
//! | Anthropic request | OpenAI request |
//! |---|---|
//! | `system` (string or text blocks, joined by `\n\n`) | leading `system` message (string) |
//! | user `text` / `image` (base64 → `data:` URL, url) / `document` (base64 → `file.file_data`, text source → text part) | content parts; a single text → string content |
//! | user `tool_result` | one `tool` message each (`tool_call_id` = `tool_use_id`, text content, `is_error` → `"Error: "` prefix), before the rest of that user message; images inside a result move to the following user message |
//! | assistant `text`, `tool_use`, `thinking`, `redacted_thinking` | `content` (string, or text parts when several), `tool_calls` (`arguments` = compact JSON of `input`), LiteLLM `thinking_blocks` (signatures kept) + `reasoning_content` |
//! | `tools` (custom / untyped) | function tools (`input_schema` → `parameters`, `strict` kept) |
//! | `tool_choice` auto / any / none / tool | `"auto"` / `"required"` / `"none"` / named function |
//! | `tool_choice.disable_parallel_tool_use: true` | `parallel_tool_calls: false` |
//! | `max_tokens`, `stop_sequences`, `temperature`, `top_p` | `max_tokens`, `stop`, `temperature`, `top_p` |
//! | `metadata.user_id` | `user` |
//! | `thinking: {type: enabled, budget_tokens}` | `reasoning_effort`: ≤1024 low, ≤4096 medium, else high; for a provider translated again ([`ChatTarget::Translated`]: Bedrock, Gemini) also `thinking` unchanged, as LiteLLM takes it on OpenAI requests for Claude models |
//! | `cache_control` on `system` / user text, image, document blocks / `tool_result` / assistant blocks / tools ([`ChatTarget::Translated`] only) | kept on the system text parts (`system` then sent as parts) / the parts / the `tool` message / the assistant message (LiteLLM's message-level spelling) / the function tool |
//! | `stream` (the argument) | `stream: true`, `stream_options.include_usage: true` |
//! | answer `model` (response direction) | the completion's `model`, in streams the first chunk's (into `message_start`): the model the upstream reports; the deployment's upstream model when it names none |
//!
//! Dropped: `cache_control` everywhere for an OpenAI-compatible upstream
//! ([`ChatTarget::OpenAiCompatible`]: such upstreams cache prompts automatically, or not at
//! all), and on blocks inside a `tool_result`; `top_k` (no OpenAI equivalent); for an
//! OpenAI-compatible upstream, `thinking` of other types
//! (`disabled`, …); `tool_choice` / `disable_parallel_tool_use` when there are no tools
//! (OpenAI refuses `tool_choice` without `tools`); `citations` on documents; the other Anthropic
//! top-level fields (`service_tier`, `container`, `context_management`, `mcp_servers`, …).
//! Fields that are not Anthropic fields at all pass through to the OpenAI-compatible upstream
//! as provider-specific parameters ([`ANTHROPIC_MESSAGES_FIELDS`]).
//!
//! Refused with a [`TranslateError`] (a 400 `invalid_request_error`): a missing or invalid
//! `model`, `max_tokens` or `messages`; roles other than user/assistant; server tools
//! (`web_search_20250305`, `bash_…`, any tool whose `type` is not `custom`), which an OpenAI
//! upstream cannot run; content block types that have no OpenAI form (`file` / `url` document
//! sources, Files API images, `search_result`, server tool results, thinking in user turns).
//!
//! Responses: `thinking_blocks` (or `reasoning_content`, signature `""`) → `thinking` and
//! `redacted_thinking` blocks (`data` kept),
//! `content` → a `text` block, `tool_calls` → `tool_use` blocks (`input` = parsed
//! `arguments`; arguments that are not a JSON object become `{}`). `finish_reason` stop →
//! `end_turn` (OpenAI does not say whether a stop sequence matched, so `stop_sequence` is
//! always null; a `stop` with tool calls is `tool_use`), length → `max_tokens`,
//! tool_calls / function_call → `tool_use`, content_filter → `refusal`. Usage:
//! `input_tokens` = `prompt_tokens` less cache reads (`prompt_tokens_details.cached_tokens`)
//! and writes (LiteLLM's `cache_creation_input_tokens`), which are reported as Anthropic's
//! `cache_read_input_tokens` / `cache_creation_input_tokens`.

mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::{Value, json};

pub use request::{
    ANTHROPIC_MESSAGES_FIELDS, ChatTarget, messages_request_to_chat, messages_request_to_chat_for,
};
pub use response::chat_response_to_message;
pub use stream::ChatStreamToMessages;

pub use super::TranslateError;

/// Anthropic-format error body: `{"type":"error","error":{"type": kind, "message": message}}`.
pub fn error_body(kind: &str, message: &str) -> Vec<u8> {
    json!({ "type": "error", "error": { "type": kind, "message": message } })
        .to_string()
        .into_bytes()
}

/// The Anthropic error `type` for an HTTP status. Other 4xx statuses are
/// `invalid_request_error`, other 5xx (and anything else) `api_error`.
pub fn error_kind(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// A rough input token count for `/v1/messages/count_tokens` when the upstream cannot count:
/// `ceil(chars / 4)` over the system prompt, the text of every message (text, thinking,
/// tool results, tool inputs as JSON) and the tool definitions as JSON.
///
/// This is an estimate only: real tokenizers differ by model and language, images and
/// documents are not counted, and neither is the chat template's overhead.
pub fn estimate_input_tokens(req: &Value) -> u64 {
    let mut chars: u64 = 0;
    let mut add = |s: &str| chars = chars.saturating_add(s.chars().count() as u64);
    match req.get("system") {
        Some(Value::String(s)) => add(s),
        Some(Value::Array(blocks)) => {
            for block in blocks {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    add(text);
                }
            }
        }
        _ => {}
    }
    for message in req
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        count_content(message.get("content"), &mut add);
    }
    if let Some(tools) = req.get("tools").filter(|t| !t.is_null()) {
        add(&tools.to_string());
    }
    chars.div_ceil(4)
}

fn count_content(content: Option<&Value>, add: &mut impl FnMut(&str)) {
    match content {
        Some(Value::String(s)) => add(s),
        Some(Value::Array(blocks)) => {
            for block in blocks {
                for key in ["text", "thinking"] {
                    if let Some(text) = block.get(key).and_then(Value::as_str) {
                        add(text);
                    }
                }
                if let Some(input) = block.get("input") {
                    add(&input.to_string());
                }
                if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                    count_content(block.get("content"), add);
                }
            }
        }
        _ => {}
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`. `stop` with tool calls is `tool_use`
/// (some upstreams report `stop` there); unknown or missing reasons are `end_turn`.
pub(crate) fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    }
}

/// `chatcmpl-abc` → `msg_abc`.
pub(crate) fn message_id(upstream_id: &str) -> String {
    let id = upstream_id.strip_prefix("chatcmpl-").unwrap_or(upstream_id);
    format!("msg_{id}")
}
