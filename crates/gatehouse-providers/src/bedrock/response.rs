//! Converse response → OpenAI `chat.completion`, and Bedrock error bodies.

use serde_json::{Map, Value, json};

use super::{TranslateError, finish_reason, usage};

/// Converse response body → OpenAI `chat.completion` body bytes.
///
/// `model` goes into `model` (Converse responses name no model: the gateway passes the
/// deployment's upstream model id), `created` is the Unix time to report. Converse
/// responses carry no id: the completion id is `chatcmpl-bedrock-<created>` (the gateway
/// may prefer the `x-amzn-requestid` response header). `text` blocks are concatenated into
/// `message.content` (null when there is none), `toolUse` blocks become `tool_calls`
/// (`id` = `toolUseId`, `arguments` = compact JSON of `input`), `reasoningContent` blocks
/// become `reasoning_content` (their texts) plus LiteLLM's `thinking_blocks`, in order:
/// `reasoningText {text, signature}` → `{type: thinking, thinking, signature}` (`""` when
/// Bedrock sent none) and `redactedContent` → `{type: redacted_thinking, data}` (the base64
/// as sent), so the client can send them back; other blocks (images, citations) are not
/// forwarded.
pub fn converse_response_to_chat(
    body: &[u8],
    model: &str,
    created: u64,
) -> Result<Vec<u8>, TranslateError> {
    let bad =
        |what: &str| TranslateError::new(format!("unexpected upstream response: {what}"), None);
    let resp: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let content = resp
        .get("output")
        .and_then(|o| o.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no output.message.content array"))?;

    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tool) = block.get("toolUse") {
            let get = |key: &str| tool.get(key).and_then(Value::as_str).unwrap_or("");
            let input = tool.get("input").cloned().unwrap_or_else(|| json!({}));
            tool_calls.push(json!({
                "id": get("toolUseId"),
                "type": "function",
                "function": { "name": get("name"), "arguments": input.to_string() },
            }));
        } else if let Some(r) = block.get("reasoningContent") {
            if let Some(t) = r.get("reasoningText") {
                let get = |key: &str| t.get(key).and_then(Value::as_str).unwrap_or("");
                reasoning
                    .get_or_insert_with(String::new)
                    .push_str(get("text"));
                thinking_blocks.push(json!({
                    "type": "thinking",
                    "thinking": get("text"),
                    "signature": get("signature"),
                }));
            } else if let Some(data) = r.get("redactedContent").and_then(Value::as_str) {
                thinking_blocks.push(json!({ "type": "redacted_thinking", "data": data }));
            }
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
    let usage = resp.get("usage").map(usage).unwrap_or_default();
    let mut out = json!({
        "id": format!("chatcmpl-bedrock-{created}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(resp.get("stopReason").and_then(Value::as_str)),
            "logprobs": null,
        }],
        "usage": usage.to_openai(),
    });
    crate::json_mode::tool_answer_to_content(&mut out);
    Ok(out.to_string().into_bytes())
}

/// Bedrock error body (`{"message": "..."}`, sometimes `{"Message": "..."}`) → message.
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let message = v.get("message").or_else(|| v.get("Message"))?.as_str()?;
    Some(message.to_owned())
}

/// The `x-amzn-errortype` header value → the exception name (`ThrottlingException:http://…`
/// → `ThrottlingException`).
pub fn error_type(header: &str) -> &str {
    header.split(':').next().unwrap_or(header).trim()
}
