//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`, `batchEmbedContents`
//! response → OpenAI embeddings list, and Google error bodies.

use serde_json::{Map, Value, json};

use super::ids::{digest_hex, id_seed, tool_call_id};
use super::{
    TranslateError, base64_encode, completion_id, finish_reason, function_call, model_version,
    usage_to_openai,
};

fn bad(what: &str) -> TranslateError {
    TranslateError::new(format!("unexpected upstream response: {what}"), None)
}

/// Gemini non-streaming response body → OpenAI `chat.completion` body bytes.
///
/// Each candidate becomes a choice: text parts concatenated into `content` (null when there
/// are none), `thought: true` parts into `reasoning_content`, `functionCall` parts into
/// `tool_calls` (ids unique per response, with the part's `thoughtSignature` encoded in them:
/// see the module doc of `gemini`; compact JSON arguments). A prompt blocked by
/// `promptFeedback.blockReason` (no candidates) is one choice with null content and
/// `finish_reason: "content_filter"`. `model` is the response's `modelVersion` (the model
/// Gemini reports), or `fallback_model` when it has none.
pub fn generate_response_to_chat(
    body: &[u8],
    fallback_model: &str,
    created: u64,
) -> Result<Vec<u8>, TranslateError> {
    let resp: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    if !resp.is_object() {
        return Err(bad("not an object"));
    }
    let candidates = resp
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let seed = id_seed(&resp, || format!("{created}:{}", digest_hex(body)));
    let mut choices = Vec::with_capacity(candidates.len().max(1));
    for (i, candidate) in candidates.iter().enumerate() {
        let index = candidate
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(i as u64);
        choices.push(choice(candidate, index, &seed));
    }
    if choices.is_empty() {
        let blocked = resp
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some();
        if !blocked {
            return Err(bad("no candidates"));
        }
        choices.push(json!({
            "index": 0,
            "message": { "role": "assistant", "content": null, "refusal": null },
            "finish_reason": "content_filter",
            "logprobs": null,
        }));
    }
    let out = json!({
        "id": completion_id(&resp),
        "object": "chat.completion",
        "created": created,
        "model": model_version(&resp).unwrap_or(fallback_model),
        "system_fingerprint": null,
        "choices": choices,
        "usage": usage_to_openai(resp.get("usageMetadata")),
    });
    Ok(out.to_string().into_bytes())
}

fn choice(candidate: &Value, index: u64, seed: &str) -> Value {
    let parts = candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for part in parts {
        if let Some(call) = part.get("functionCall") {
            let (name, arguments) = function_call(call);
            let signature = part.get("thoughtSignature").and_then(Value::as_str);
            tool_calls.push(json!({
                "id": tool_call_id(seed, index, tool_calls.len(), signature),
                "type": "function",
                "function": { "name": name, "arguments": arguments },
            }));
        } else if let Some(t) = part.get("text").and_then(Value::as_str) {
            let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
            let target = if thought { &mut reasoning } else { &mut text };
            target.get_or_insert_with(String::new).push_str(t);
        }
        // inlineData, executableCode, codeExecutionResult: no OpenAI counterpart. A
        // `thoughtSignature` on a non-functionCall part is dropped (see the module doc).
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert("content".into(), text.map_or(Value::Null, Value::String));
    message.insert("refusal".into(), Value::Null);
    let called = !tool_calls.is_empty();
    if called {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if let Some(reasoning) = reasoning {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    json!({
        "index": index,
        "message": message,
        "finish_reason": finish_reason(candidate.get("finishReason").and_then(Value::as_str), called),
        "logprobs": null,
    })
}

/// `batchEmbedContents` response (`{"embeddings":[{"values":[…]}]}`) → OpenAI embeddings
/// list. With `encoding_base64` each vector is base64 of its little-endian `f32`s, as OpenAI
/// sends for `encoding_format: "base64"`. Gemini reports no token counts (usage is zero)
/// and no model: `model` goes into `model` (the gateway passes the deployment's upstream
/// model).
pub fn batch_response_to_embeddings(
    body: &[u8],
    model: &str,
    encoding_base64: bool,
) -> Result<Vec<u8>, TranslateError> {
    let resp: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let embeddings = resp
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no embeddings array"))?;
    let mut data = Vec::with_capacity(embeddings.len());
    for (index, e) in embeddings.iter().enumerate() {
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("an embedding has no values"))?;
        let embedding = if encoding_base64 {
            let mut bytes = Vec::with_capacity(values.len() * 4);
            for v in values {
                let x = v.as_f64().ok_or_else(|| bad("a non-numeric value"))?;
                bytes.extend_from_slice(&(x as f32).to_le_bytes());
            }
            Value::String(base64_encode(&bytes))
        } else {
            if !values.iter().all(Value::is_number) {
                return Err(bad("a non-numeric value"));
            }
            Value::Array(values.clone())
        };
        data.push(json!({ "object": "embedding", "index": index, "embedding": embedding }));
    }
    let out = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": 0, "total_tokens": 0 },
    });
    Ok(out.to_string().into_bytes())
}

/// Google error body (`{"error":{"code":…,"message":…,"status":…}}`) → `(message, status)`,
/// if it parses (`status` may be empty).
pub fn error_message(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    // streamGenerateContent without alt=sse answers a JSON array.
    let error = v.get("error").or_else(|| v.get(0)?.get("error"))?;
    let message = error.get("message")?.as_str()?;
    let status = error.get("status").and_then(Value::as_str).unwrap_or("");
    Some((message.to_owned(), status.to_owned()))
}
