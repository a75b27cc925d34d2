//! Anthropic Messages request → OpenAI `CreateChatCompletionRequest` body (see the module
//! table in [`super`] for what is translated, dropped and refused).

use serde_json::{Map, Value, json};

use super::super::field;
use super::TranslateError;

/// Anthropic Messages request (JSON value, as received) → OpenAI chat completions request
/// body bytes, for an OpenAI-compatible upstream ([`ChatTarget::OpenAiCompatible`]).
///
/// `upstream_model` goes into `model`. When `stream`, sets `stream: true` and
/// `stream_options: {include_usage: true}` (so the stream can report usage at the end).
pub fn messages_request_to_chat(
    req: &Value,
    upstream_model: &str,
    stream: bool,
) -> Result<Vec<u8>, TranslateError> {
    messages_request_to_chat_for(req, upstream_model, stream, ChatTarget::OpenAiCompatible)
}

/// Where the OpenAI-shaped request goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTarget {
    /// Sent as is to an OpenAI-compatible upstream: Anthropic-only fields are dropped.
    OpenAiCompatible,
    /// Translated again for another provider (Bedrock, Gemini): the Anthropic fields LiteLLM
    /// accepts on OpenAI requests for Claude models are kept — `thinking` unchanged (beside
    /// `reasoning_effort`), and `cache_control` on text, image and document parts, on
    /// `system` (then sent as text parts), on `tool` messages (from a `tool_result`), on
    /// assistant messages (from any of their blocks: LiteLLM's message-level spelling) and
    /// on tools.
    Translated,
}

/// [`messages_request_to_chat`] for a given [`ChatTarget`].
pub fn messages_request_to_chat_for(
    req: &Value,
    upstream_model: &str,
    stream: bool,
    target: ChatTarget,
) -> Result<Vec<u8>, TranslateError> {
    let req = req
        .as_object()
        .ok_or_else(|| TranslateError::new("the request body must be a JSON object", None))?;

    if !field(req, "model").is_some_and(Value::is_string) {
        return Err(TranslateError::at("model", "model must be a string"));
    }
    let max_tokens = field(req, "max_tokens")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            TranslateError::at("max_tokens", "max_tokens is required: a positive integer")
        })?;

    let mut out = Map::new();
    out.insert("model".into(), Value::String(upstream_model.to_owned()));

    let mut messages = Vec::new();
    if let Some(system) = system_text(field(req, "system"))? {
        let cached = (target == ChatTarget::Translated)
            .then(|| cached_system_parts(field(req, "system")))
            .flatten();
        match cached {
            Some(parts) => messages.push(json!({ "role": "system", "content": parts })),
            None => messages.push(json!({ "role": "system", "content": system })),
        }
    }
    convert_messages(field(req, "messages"), target, &mut messages)?;
    out.insert("messages".into(), Value::Array(messages));
    out.insert("max_tokens".into(), Value::from(max_tokens));

    if let Some(stop) = field(req, "stop_sequences") {
        let list = stop.as_array().ok_or_else(|| {
            TranslateError::at(
                "stop_sequences",
                "stop_sequences must be an array of strings",
            )
        })?;
        for (i, item) in list.iter().enumerate() {
            if !item.is_string() {
                return Err(TranslateError::at(
                    format!("stop_sequences[{i}]"),
                    "stop sequences must be strings",
                ));
            }
        }
        if !list.is_empty() {
            out.insert("stop".into(), stop.clone());
        }
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = field(req, key) {
            if !v.is_number() {
                return Err(TranslateError::at(key, format!("{key} must be a number")));
            }
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(user) = field(req, "metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), user.into());
    }
    if let Some(effort) = reasoning_effort(field(req, "thinking")) {
        out.insert("reasoning_effort".into(), effort.into());
    }
    if target == ChatTarget::Translated
        && let Some(thinking) = field(req, "thinking")
    {
        out.insert("thinking".into(), thinking.clone());
    }

    let tools = convert_tools(field(req, "tools"), target)?;
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = field(req, "tool_choice") {
            let (choice, parallel) = convert_tool_choice(choice)?;
            if let Some(choice) = choice {
                out.insert("tool_choice".into(), choice);
            }
            if parallel == Some(false) {
                out.insert("parallel_tool_calls".into(), Value::Bool(false));
            }
        }
    }

    if stream {
        out.insert("stream".into(), Value::Bool(true));
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }

    for (key, value) in req {
        if !ANTHROPIC_MESSAGES_FIELDS.contains(&key.as_str()) && !out.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }

    serde_json::to_vec(&Value::Object(out))
        .map_err(|e| TranslateError::new(format!("could not encode the request: {e}"), None))
}

/// Every top-level field of Anthropic's Messages request: translated, dropped or refused
/// above. Anything else is provider-specific for the OpenAI-compatible upstream and passes
/// through, never overriding a translated field (the mirror of
/// [`crate::anthropic::OPENAI_CHAT_FIELDS`]).
pub const ANTHROPIC_MESSAGES_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "context_management",
    "mcp_servers",
    "output_format",
    "output_config",
    "betas",
];

/// `thinking.budget_tokens` → `reasoning_effort`; only `type: enabled` counts.
fn reasoning_effort(thinking: Option<&Value>) -> Option<&'static str> {
    let thinking = thinking?;
    if thinking.get("type").and_then(Value::as_str) != Some("enabled") {
        return None;
    }
    let budget = thinking
        .get("budget_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(match budget {
        0..=1024 => "low",
        1025..=4096 => "medium",
        _ => "high",
    })
}

/// `system`: a string or text blocks (joined by `\n\n`). Empty → no system message.
fn system_text(system: Option<&Value>) -> Result<Option<String>, TranslateError> {
    let text = match system {
        None => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                let text = block
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|_| block.get("type").and_then(Value::as_str) == Some("text"))
                    .ok_or_else(|| {
                        TranslateError::at(format!("system[{i}]"), "system blocks must be text")
                    })?;
                if !text.is_empty() {
                    texts.push(text);
                }
            }
            texts.join("\n\n")
        }
        Some(_) => {
            return Err(TranslateError::at(
                "system",
                "system must be a string or an array of text blocks",
            ));
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

/// `system` text blocks as OpenAI text parts with their `cache_control`, when any block
/// has one (else `None`: the joined string is enough).
fn cached_system_parts(system: Option<&Value>) -> Option<Vec<Value>> {
    let blocks = system?.as_array()?;
    if !blocks.iter().any(|b| cache_control(b).is_some()) {
        return None;
    }
    let parts = blocks
        .iter()
        .filter_map(|b| {
            let text = b
                .get("text")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())?;
            Some(with_cache_control(
                json!({ "type": "text", "text": text }),
                b,
                ChatTarget::Translated,
            ))
        })
        .collect();
    Some(parts)
}

/// A block's non-null `cache_control`.
fn cache_control(block: &Value) -> Option<&Value> {
    block.get("cache_control").filter(|c| !c.is_null())
}

/// `value` with `from`'s `cache_control`, if it has one and `target` keeps it (an
/// OpenAI-compatible upstream caches prompts by itself or not at all: it gets none).
fn with_cache_control(mut value: Value, from: &Value, target: ChatTarget) -> Value {
    if target == ChatTarget::Translated
        && let (Some(cc), Some(obj)) = (cache_control(from), value.as_object_mut())
    {
        obj.insert("cache_control".into(), cc.clone());
    }
    value
}

fn convert_messages(
    messages: Option<&Value>,
    target: ChatTarget,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let messages = messages
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| TranslateError::at("messages", "messages must be a non-empty array"))?;
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let role = message.get("role").and_then(Value::as_str);
        let content = message
            .get("content")
            .filter(|c| c.is_string() || c.is_array());
        let Some(content) = content else {
            return Err(TranslateError::at(
                format!("{path}.content"),
                "content must be a string or an array of content blocks",
            ));
        };
        match role {
            Some("user") => user_message(content, &path, target, out)?,
            Some("assistant") => out.push(assistant_message(content, &path, target)?),
            _ => {
                return Err(TranslateError::at(
                    format!("{path}.role"),
                    "role must be user or assistant",
                ));
            }
        }
    }
    Ok(())
}

fn str_at<'a>(block: &'a Value, key: &str, path: &str) -> Result<&'a str, TranslateError> {
    block.get(key).and_then(Value::as_str).ok_or_else(|| {
        TranslateError::at(format!("{path}.{key}"), format!("{key} must be a string"))
    })
}

/// A user message: `tool` messages for its `tool_result` blocks, then a `user` message with
/// the rest (if any).
fn user_message(
    content: &Value,
    path: &str,
    target: ChatTarget,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({ "role": "user", "content": s }));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => return Ok(()),
    };
    let mut parts = Vec::new();
    let mut result_images = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let block_path = format!("{path}.content[{j}]");
        match block.get("type").and_then(Value::as_str) {
            Some("tool_result") => {
                out.push(tool_message(
                    block,
                    &block_path,
                    target,
                    &mut result_images,
                )?);
            }
            _ => {
                if let Some(part) = user_part(block, &block_path, target)? {
                    parts.push(part);
                }
            }
        }
    }
    // Images returned by tools: OpenAI tool messages carry text only.
    result_images.extend(parts);
    let parts = result_images;
    match parts.as_slice() {
        [] => {}
        [only]
            if only.get("type").and_then(Value::as_str) == Some("text")
                && cache_control(only).is_none() =>
        {
            let text = only.get("text").cloned().unwrap_or_default();
            out.push(json!({ "role": "user", "content": text }));
        }
        _ => out.push(json!({ "role": "user", "content": parts })),
    }
    Ok(())
}

/// An Anthropic user content block → an OpenAI content part (`None`: nothing to send).
fn user_part(
    block: &Value,
    path: &str,
    target: ChatTarget,
) -> Result<Option<Value>, TranslateError> {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
    let part = match kind {
        "text" => {
            let text = str_at(block, "text", path)?;
            if text.is_empty() {
                return Ok(None);
            }
            json!({ "type": "text", "text": text })
        }
        "image" => {
            let source_path = format!("{path}.source");
            let source = block.get("source").unwrap_or(&Value::Null);
            let url = match source.get("type").and_then(Value::as_str) {
                Some("base64") => format!(
                    "data:{};base64,{}",
                    str_at(source, "media_type", &source_path)?,
                    str_at(source, "data", &source_path)?
                ),
                Some("url") => str_at(source, "url", &source_path)?.to_owned(),
                _ => {
                    return Err(TranslateError::at(
                        format!("{source_path}.type"),
                        "image sources must be base64 or url for this model",
                    ));
                }
            };
            json!({ "type": "image_url", "image_url": { "url": url } })
        }
        "document" => {
            let source_path = format!("{path}.source");
            let source = block.get("source").unwrap_or(&Value::Null);
            match source.get("type").and_then(Value::as_str) {
                Some("base64") => {
                    let url = format!(
                        "data:{};base64,{}",
                        str_at(source, "media_type", &source_path)?,
                        str_at(source, "data", &source_path)?
                    );
                    let mut file = Map::new();
                    if let Some(title) = block.get("title").and_then(Value::as_str) {
                        file.insert("filename".into(), title.into());
                    }
                    file.insert("file_data".into(), url.into());
                    json!({ "type": "file", "file": file })
                }
                Some("text") => {
                    json!({ "type": "text", "text": str_at(source, "data", &source_path)? })
                }
                _ => {
                    return Err(TranslateError::at(
                        format!("{source_path}.type"),
                        "document sources must be base64 or text for this model",
                    ));
                }
            }
        }
        other => {
            return Err(TranslateError::at(
                format!("{path}.type"),
                format!(
                    "content block type '{other}' is not supported in user messages for this model"
                ),
            ));
        }
    };
    Ok(Some(with_cache_control(part, block, target)))
}

/// A `tool_result` block → an OpenAI `tool` message; its images go to `images`.
fn tool_message(
    block: &Value,
    path: &str,
    target: ChatTarget,
    images: &mut Vec<Value>,
) -> Result<Value, TranslateError> {
    let id = str_at(block, "tool_use_id", path)?;
    let mut text = String::new();
    match block.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(items)) => {
            for (k, item) in items.iter().enumerate() {
                let item_path = format!("{path}.content[{k}]");
                match item.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(str_at(item, "text", &item_path)?);
                    }
                    Some("image") | Some("document") => {
                        if let Some(part) = user_part(item, &item_path, target)? {
                            images.push(part);
                        }
                    }
                    _ => {
                        return Err(TranslateError::at(
                            format!("{item_path}.type"),
                            "tool results may contain text, image and document blocks",
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::at(
                format!("{path}.content"),
                "tool result content must be a string or an array of blocks",
            ));
        }
    }
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        text.insert_str(0, "Error: ");
    }
    Ok(with_cache_control(
        json!({ "role": "tool", "tool_call_id": id, "content": text }),
        block,
        target,
    ))
}

fn assistant_message(
    content: &Value,
    path: &str,
    target: ChatTarget,
) -> Result<Value, TranslateError> {
    let blocks = match content {
        Value::String(s) => return Ok(json!({ "role": "assistant", "content": s })),
        Value::Array(blocks) => blocks,
        _ => return Ok(json!({ "role": "assistant", "content": "" })),
    };
    let mut texts: Vec<&str> = Vec::new();
    let mut tool_calls = Vec::new();
    let mut thinking_blocks = Vec::new();
    let mut reasoning: Option<String> = None;
    for (j, block) in blocks.iter().enumerate() {
        let block_path = format!("{path}.content[{j}]");
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = str_at(block, "text", &block_path)?;
                if !text.is_empty() {
                    texts.push(text);
                }
            }
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({
                    "id": str_at(block, "id", &block_path)?,
                    "type": "function",
                    "function": {
                        "name": str_at(block, "name", &block_path)?,
                        "arguments": input.to_string(),
                    },
                }));
            }
            Some("thinking") => {
                let thinking = str_at(block, "thinking", &block_path)?;
                reasoning.get_or_insert_with(String::new).push_str(thinking);
                thinking_blocks.push(json!({
                    "type": "thinking",
                    "thinking": thinking,
                    "signature": block.get("signature").and_then(Value::as_str).unwrap_or(""),
                }));
            }
            Some("redacted_thinking") => thinking_blocks.push(json!({
                "type": "redacted_thinking",
                "data": str_at(block, "data", &block_path)?,
            })),
            other => {
                return Err(TranslateError::at(
                    format!("{block_path}.type"),
                    format!(
                        "content block type '{}' is not supported in assistant messages for this model",
                        other.unwrap_or("")
                    ),
                ));
            }
        }
    }
    let mut msg = Map::new();
    msg.insert("role".into(), "assistant".into());
    let content = match texts.as_slice() {
        [] if !tool_calls.is_empty() => Value::Null,
        [] => Value::String(String::new()),
        [only] => Value::String((*only).to_owned()),
        many => Value::Array(
            many.iter()
                .map(|t| json!({ "type": "text", "text": t }))
                .collect(),
        ),
    };
    msg.insert("content".into(), content);
    if !tool_calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if let Some(reasoning) = reasoning {
        msg.insert("reasoning_content".into(), reasoning.into());
    }
    if !thinking_blocks.is_empty() {
        msg.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    if target == ChatTarget::Translated
        && let Some(cc) = blocks.iter().rev().find_map(cache_control)
    {
        msg.insert("cache_control".into(), cc.clone());
    }
    Ok(Value::Object(msg))
}

fn convert_tools(tools: Option<&Value>, target: ChatTarget) -> Result<Vec<Value>, TranslateError> {
    let Some(tools) = tools else {
        return Ok(Vec::new());
    };
    let tools = tools
        .as_array()
        .ok_or_else(|| TranslateError::at("tools", "tools must be an array"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        match tool.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t == "custom" => {}
            Some(other) => {
                return Err(TranslateError::at(
                    path,
                    format!(
                        "server tool '{}' cannot run on this model: only custom (client) tools are supported",
                        other.as_str().unwrap_or("?")
                    ),
                ));
            }
        }
        let name = str_at(tool, "name", &path)?;
        let mut function = Map::new();
        function.insert("name".into(), name.into());
        if let Some(description) = tool.get("description").filter(|d| !d.is_null()) {
            function.insert("description".into(), description.clone());
        }
        let schema = tool
            .get("input_schema")
            .filter(|s| !s.is_null())
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
        function.insert("parameters".into(), schema);
        if let Some(strict) = tool.get("strict").filter(|s| s.is_boolean()) {
            function.insert("strict".into(), strict.clone());
        }
        out.push(with_cache_control(
            json!({ "type": "function", "function": function }),
            tool,
            target,
        ));
    }
    Ok(out)
}

/// Anthropic `tool_choice` → (OpenAI `tool_choice`, `parallel_tool_calls`).
fn convert_tool_choice(choice: &Value) -> Result<(Option<Value>, Option<bool>), TranslateError> {
    let parallel = (choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        == Some(true))
    .then_some(false);
    let converted = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                TranslateError::at("tool_choice.name", "tool_choice.name must be a string")
            })?;
            json!({ "type": "function", "function": { "name": name } })
        }
        _ => {
            return Err(TranslateError::at(
                "tool_choice",
                "tool_choice.type must be auto, any, none or tool",
            ));
        }
    };
    Ok((Some(converted), parallel))
}
