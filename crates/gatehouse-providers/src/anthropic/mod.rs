//! OpenAI Chat Completions ↔ Anthropic Messages, the upstream direction: a client speaks
//! OpenAI to gatehouse, an `anthropic/…` deployment is served by Anthropic's Messages API.
//!
//! Pure functions over `serde_json::Value`; no I/O and no panics on any input.
//!
//! - [`chat_request_to_messages`]: OpenAI request → Anthropic `POST /v1/messages` body.
//! - [`messages_response_to_chat`]: Anthropic message → OpenAI `chat.completion`.
//! - [`StreamTranslator`]: Anthropic SSE events → OpenAI `chat.completion.chunk` frames.
//! - [`error_message`]: Anthropic error body → message and error type.

pub mod inbound;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use crate::openai_request::positive_int;

pub use request::{OPENAI_CHAT_FIELDS, chat_request_to_messages};
pub(crate) use request::{Replayed, replayed_thinking};
pub use response::{error_message, messages_response_to_chat};
pub use stream::StreamTranslator;

/// `anthropic-version` header value we send.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `max_tokens` when the OpenAI request has none (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Anthropic's smallest `thinking.budget_tokens` (its documented minimum).
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// `thinking.budget_tokens` when `thinking` is `{type: enabled, budget_tokens: n}`.
pub(crate) fn enabled_budget(thinking: &Value) -> Option<u64> {
    thinking
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| *t == "enabled")
        .and_then(|_| thinking.get("budget_tokens"))
        .and_then(Value::as_u64)
}

/// Fits a `thinking` object under the output limit the client set (`max_completion_tokens`
/// or `max_tokens`), which Anthropic requires to exceed the budget. The limit is never
/// raised: the gateway reserved spend for it (OpenAI's `max_completion_tokens` bounds
/// reasoning plus visible tokens too). A budget ≥ the limit becomes `limit - 1`; when that
/// is below [`MIN_THINKING_BUDGET`], no thinking is sent (`None`). Other thinking objects
/// (`disabled`, `adaptive`, a budget under the limit) are returned as they are.
pub fn fit_thinking(mut thinking: Value, limit: u64) -> Option<Value> {
    let Some(budget) = enabled_budget(&thinking) else {
        return Some(thinking);
    };
    if budget < limit {
        return Some(thinking);
    }
    let fitted = limit.saturating_sub(1);
    if fitted < MIN_THINKING_BUDGET {
        return None;
    }
    if let Some(obj) = thinking.as_object_mut() {
        obj.insert("budget_tokens".into(), Value::from(fitted));
    }
    Some(thinking)
}

/// The client's output limit (`max_completion_tokens`, else `max_tokens`), if it set one,
/// and the thinking it asked for (`thinking` as sent, else the [`reasoning_effort`] budget)
/// fitted under that limit ([`fit_thinking`]): what the Anthropic and Bedrock translations
/// start from (each then picks its own `max_tokens` when the client set none).
pub(crate) fn requested_thinking(
    req: &Map<String, Value>,
) -> Result<(Option<u64>, Option<Value>), TranslateError> {
    let limit = match field(req, "max_completion_tokens") {
        Some(v) => Some(positive_int(v, "max_completion_tokens")?),
        None => match field(req, "max_tokens") {
            Some(v) => Some(positive_int(v, "max_tokens")?),
            None => None,
        },
    };
    let thinking = match field(req, "thinking") {
        Some(t) => Some(t.clone()),
        None => reasoning_effort(field(req, "reasoning_effort"))?,
    };
    let thinking = match limit {
        Some(limit) => thinking.and_then(|t| fit_thinking(t, limit)),
        None => thinking,
    };
    Ok((limit, thinking))
}

/// Whether a `thinking` object to be sent turns thinking on (anything but `disabled`).
pub(crate) fn thinking_on(thinking: Option<&Value>) -> bool {
    thinking.is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"))
}

/// OpenAI `reasoning_effort` → an enabled `thinking` object: minimal/low 1024, medium 2048,
/// high 4096 tokens; `none` (or no effort) → none.
fn reasoning_effort(effort: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    let Some(effort) = effort else {
        return Ok(None);
    };
    let budget: u64 = match effort.as_str() {
        Some("none") => return Ok(None),
        Some("minimal") | Some("low") => 1024,
        Some("medium") => 2048,
        Some("high") => 4096,
        _ => {
            return Err(TranslateError::at(
                "reasoning_effort",
                "reasoning_effort must be one of none, minimal, low, medium, high",
            ));
        }
    };
    Ok(Some(json!({ "type": "enabled", "budget_tokens": budget })))
}

/// A request gatehouse cannot translate: a client-facing 400 (`invalid_request_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// Human-readable reason, safe to show to the client.
    pub message: String,
    /// The offending request field, OpenAI style (`messages[2].tool_calls[0].function.arguments`).
    pub param: Option<String>,
}

impl TranslateError {
    pub(crate) fn new(message: impl Into<String>, param: Option<String>) -> Self {
        Self {
            message: message.into(),
            param,
        }
    }

    pub(crate) fn at(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(message, Some(param.into()))
    }
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(param) => write!(f, "{} (param: {param})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TranslateError {}

/// Anthropic `stop_reason` → OpenAI `finish_reason`. Unknown or missing reasons are "stop".
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn, and anything new.
        _ => "stop",
    }
}

/// Token counts reported by Anthropic, accumulated over a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub output: u64,
}

impl Usage {
    /// Overwrites the counts present in an Anthropic `usage` object (missing ones are kept).
    pub fn update(&mut self, usage: &Value) {
        let get = |key: &str| usage.get(key).and_then(Value::as_u64);
        if let Some(n) = get("input_tokens") {
            self.input = n;
        }
        if let Some(n) = get("cache_read_input_tokens") {
            self.cache_read = n;
        }
        if let Some(n) = get("cache_creation_input_tokens") {
            self.cache_creation = n;
        }
        if let Some(n) = get("output_tokens") {
            self.output = n;
        }
    }

    /// The OpenAI `usage` object, LiteLLM-compatible (cache counts also at the top level).
    pub fn to_openai(self) -> Value {
        let prompt = self
            .input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_creation);
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": self.output,
            "total_tokens": prompt.saturating_add(self.output),
            "prompt_tokens_details": { "cached_tokens": self.cache_read },
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
        })
    }
}

/// The model a response (or a stream's message / chunk) reports in its `model` field, if
/// it is a non-empty string. Anthropic and OpenAI both name the field `model`.
pub(crate) fn reported_model(response: &Value) -> Option<&str> {
    response
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
}

/// A non-null field of a JSON object.
pub(crate) fn field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}
