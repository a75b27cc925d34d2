//! Anthropic Messages response → OpenAI `chat.completion`, and Anthropic error bodies.

use serde_json::{Map, Value, json};

use super::{TranslateError, Usage, finish_reason, reported_model};
use crate::json_mode::tool_answer_to_content;

/// Anthropic non-streaming response body → OpenAI `chat.completion` body bytes.
///
/// `model` is the message's own `model` (the model Anthropic reports), or `fallback_model`
/// when it has none; `created` is the Unix time to report. Text blocks are concatenated into `message.content` (null when there is
/// none), `tool_use` blocks become `tool_calls`, `thinking` blocks become
/// `reasoning_content` plus LiteLLM's `thinking_blocks` (signatures and `redacted_thinking`
/// kept so the client can send them back). Server-tool blocks are not forwarded. The tool
/// call that emulates `response_format` becomes `content` ([`crate::json_mode`]).
pub fn messages_response_to_chat(
    body: &[u8],
    fallback_model: &str,
    created: u64,
) -> Result<Vec<u8>, TranslateError> {
    let bad =
        |what: &str| TranslateError::new(format!("unexpected upstream response: {what}"), None);
    let msg: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let content = msg
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no content array"))?;

    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in content {
        let get = |key: &str| block.get(key).and_then(Value::as_str);
        match get("type") {
            Some("text") => text
                .get_or_insert_with(String::new)
                .push_str(get("text").unwrap_or("")),
            Some("thinking") => {
                let thinking = get("thinking").unwrap_or("");
                reasoning.get_or_insert_with(String::new).push_str(thinking);
                thinking_blocks.push(json!({
                    "type": "thinking",
                    "thinking": thinking,
                    "signature": get("signature").unwrap_or(""),
                }));
            }
            Some("redacted_thinking") => thinking_blocks.push(json!({
                "type": "redacted_thinking",
                "data": get("data").unwrap_or(""),
            })),
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({
                    "id": get("id").unwrap_or(""),
                    "type": "function",
                    "function": {
                        "name": get("name").unwrap_or(""),
                        "arguments": input.to_string(),
                    },
                }));
            }
            _ => {}
        }
    }

    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert("content".into(), text.map_or(Value::Null, Value::String));
    message.insert("refusal".into(), Value::Null);
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if let Some(reasoning) = reasoning {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    if !thinking_blocks.is_empty() {
        message.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }

    let mut usage = Usage::default();
    if let Some(u) = msg.get("usage") {
        usage.update(u);
    }
    let mut out = json!({
        "id": msg.get("id").and_then(Value::as_str).unwrap_or(""),
        "object": "chat.completion",
        "created": created,
        "model": reported_model(&msg).unwrap_or(fallback_model),
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(msg.get("stop_reason").and_then(Value::as_str)),
            "logprobs": null,
        }],
        "usage": usage.to_openai(),
    });
    tool_answer_to_content(&mut out);
    Ok(out.to_string().into_bytes())
}

/// Anthropic error body (`{"type":"error","error":{"type":…,"message":…}}`) →
/// `(message, anthropic error type)`, if it parses.
pub fn error_message(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let error = v.get("error")?;
    let message = error.get("message")?.as_str()?;
    let kind = error.get("type")?.as_str()?;
    Some((message.to_owned(), kind.to_owned()))
}
