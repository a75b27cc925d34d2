//! OpenAI `chat.completion` → Anthropic `message`.

use serde_json::{Map, Value, json};

use super::{TranslateError, message_id, stop_reason};
use crate::anthropic::reported_model;

/// OpenAI chat.completion body → Anthropic `message` body bytes. `model` is the completion's
/// own `model` (the model the OpenAI-compatible upstream reports), or `fallback_model` when
/// it has none.
///
/// Content blocks, in order: thinking (from LiteLLM's `thinking_blocks`, else from
/// `reasoning_content` with signature `""`), text (non-empty `content`, else `refusal`),
/// one `tool_use` per tool call (`input` = parsed `arguments`; arguments that do not parse
/// to a JSON object become `{}`).
pub fn chat_response_to_message(
    body: &[u8],
    fallback_model: &str,
) -> Result<Vec<u8>, TranslateError> {
    let bad =
        |what: &str| TranslateError::new(format!("unexpected upstream response: {what}"), None);
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| bad("no choices"))?;
    let message = choice.get("message").ok_or_else(|| bad("no message"))?;

    let mut content = thinking_blocks(message);
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            message
                .get("refusal")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        });
    if let Some(text) = text {
        content.push(json!({ "type": "text", "text": text }));
    }
    let mut has_tools = false;
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function");
        let get = |key: &str| {
            function
                .and_then(|f| f.get(key))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        has_tools = true;
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").and_then(Value::as_str).unwrap_or(""),
            "name": get("name"),
            "input": parse_arguments(get("arguments")),
        }));
    }

    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let out = json!({
        "id": message_id(v.get("id").and_then(Value::as_str).unwrap_or("")),
        "type": "message",
        "role": "assistant",
        "model": reported_model(&v).unwrap_or(fallback_model),
        "content": content,
        "stop_reason": stop_reason(finish, has_tools),
        "stop_sequence": null,
        "usage": usage(v.get("usage")).to_anthropic(),
    });
    Ok(out.to_string().into_bytes())
}

/// Tool call `arguments` → `input`: a JSON object, else `{}`.
pub(super) fn parse_arguments(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    }
}

/// `thinking_blocks` (LiteLLM) if present, else `reasoning_content` (or `reasoning`).
fn thinking_blocks(message: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(blocks) = message.get("thinking_blocks").and_then(Value::as_array) {
        for block in blocks {
            let get = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or("");
            match get("type") {
                "thinking" => out.push(json!({
                    "type": "thinking", "thinking": get("thinking"), "signature": get("signature"),
                })),
                "redacted_thinking" => {
                    out.push(json!({ "type": "redacted_thinking", "data": get("data") }));
                }
                _ => {}
            }
        }
    }
    if out.is_empty()
        && let Some(reasoning) = ["reasoning_content", "reasoning"]
            .iter()
            .find_map(|k| message.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
    {
        out.push(json!({ "type": "thinking", "thinking": reasoning, "signature": "" }));
    }
    out
}

/// OpenAI token counts, as Anthropic reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct InboundUsage {
    pub prompt: u64,
    pub cached: u64,
    /// Cache writes: LiteLLM's `cache_creation_input_tokens` beside OpenAI's usage (the
    /// Bedrock and Anthropic translators report it), part of `prompt`.
    pub created: u64,
    pub completion: u64,
}

impl InboundUsage {
    /// `input_tokens` excludes cache reads and writes (Anthropic counts them separately).
    pub fn to_anthropic(self) -> Value {
        json!({
            "input_tokens": self.prompt.saturating_sub(self.cached).saturating_sub(self.created),
            "cache_creation_input_tokens": self.created,
            "cache_read_input_tokens": self.cached,
            "output_tokens": self.completion,
        })
    }
}

/// An OpenAI `usage` object (missing counts are 0).
pub(super) fn usage(u: Option<&Value>) -> InboundUsage {
    let get = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let Some(u) = u else {
        return InboundUsage::default();
    };
    InboundUsage {
        prompt: get(u.get("prompt_tokens")),
        cached: get(u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens"))),
        created: get(u.get("cache_creation_input_tokens")),
        completion: get(u.get("completion_tokens")),
    }
}
