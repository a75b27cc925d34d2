//! OpenAI `CreateChatCompletionRequest` → Anthropic Messages request body.
//!
//! Translated:
//!
//! | OpenAI | Anthropic |
//! |---|---|
//! | `system` / `developer` messages (anywhere) | top-level `system`: a string (texts joined by `\n\n`), or text blocks when any part carries `cache_control` |
//! | `user` content: string, `text`, `image_url` (`data:` → base64 source, http(s) → url source), `file` with a `data:` PDF → `document` | `user` content blocks |
//! | `assistant` `thinking_blocks` (LiteLLM), content, `tool_calls` | `thinking` / `redacted_thinking` first (signatures and `data` kept), `text`, `tool_use` (`input` = parsed `arguments`); streamed thinking a client accumulated in pieces is reassembled (a run of `thinking` entries up to the one that brings the signature is one block), and a lone thinking block whose text is empty or a prefix of the message's `reasoning_content` takes that text (Anthropic checks the signature against the whole text) |
//! | `tool` messages | `user` message of `tool_result` blocks (`tool_use_id` = `tool_call_id`) |
//! | consecutive messages of the same Anthropic role | merged into one message (Anthropic requires alternation) |
//! | message-level `cache_control` (LiteLLM) | on the message's last block; part-level `cache_control` is kept |
//! | `tools` (function) | `{name, description, input_schema}` (`parameters`, default empty object schema), `cache_control` kept |
//! | `tool_choice` auto / required / none / named function | `{type: auto}` / `{type: any}` / `{type: none}` / `{type: tool, name}` |
//! | `parallel_tool_calls: false` | `tool_choice.disable_parallel_tool_use: true` (auto if no tool_choice) |
//! | `max_completion_tokens`, else `max_tokens` | `max_tokens`, default [`DEFAULT_MAX_TOKENS`] |
//! | `stop` (string or array) | `stop_sequences` |
//! | `temperature`, `top_p`, `top_k` | same (passed through; Anthropic's temperature range is 0–1) |
//! | `stream` (the argument) | `stream: true` |
//! | `user` | `metadata.user_id` |
//! | `thinking` (LiteLLM/Anthropic object) | passed through (its budget fitted under the client's output limit: below) |
//! | answer `model` (response direction) | the message's `model`, in streams `message_start.message.model` (the model Anthropic reports); the deployment's upstream model when it names none |
//! | `reasoning_effort` minimal/low → 1024, medium → 2048, high → 4096 (none → off) | `thinking: {type: enabled, budget_tokens}` |
//! | `response_format` `json_object` / `json_schema` (`text`: nothing) | one tool `json_tool_call` (input schema: the schema) forced with `tool_choice: {type: tool}`; its call comes back as `content` with `finish_reason: stop` ([`crate::json_mode`], which also lists what is refused) |
//!
//! With thinking enabled, Anthropic requires `max_tokens` > `budget_tokens` (and a budget of
//! at least [`super::MIN_THINKING_BUDGET`] = 1024). An output limit the client set
//! (`max_completion_tokens`, else `max_tokens`) is never raised — the gateway reserved
//! budget for it, and OpenAI's `max_completion_tokens` bounds reasoning plus visible tokens
//! alike — so the thinking budget is fitted under it instead:
//!
//! | client limit `L`, budget `B` | sent |
//! |---|---|
//! | `L > B` | `max_tokens: L`, `budget_tokens: B` |
//! | `L ≤ B`, `L - 1 ≥ 1024` | `max_tokens: L`, `budget_tokens: L - 1` |
//! | `L ≤ B`, `L - 1 < 1024` | `max_tokens: L`, no `thinking` |
//! | no limit, `B < 4096` | `max_tokens:` [`DEFAULT_MAX_TOKENS`], `budget_tokens: B` |
//! | no limit, `B ≥ 4096` | `max_tokens: B + 4096` (the budget plus the default answer) |
//!
//! (`B` is the `thinking` object's `budget_tokens`, or the `reasoning_effort` budget;
//! thinking of other types — `disabled`, `adaptive` — is sent as it is.)
//!
//! Refused with a [`TranslateError`]: `n > 1` (one completion per request),
//! `logprobs: true` / `top_logprobs` (Anthropic has no token log-probabilities), `function`
//! role messages and `functions`-era content, unknown roles and content part types, non-base64
//! `data:` URLs, images in system messages, tool call `arguments` that are not a JSON object,
//! `response_format` beside `tools` or thinking, and a client tool named `json_tool_call`.
//!
//! Dropped (no Anthropic equivalent):
//!
//! - `presence_penalty`, `frequency_penalty`, `logit_bias`: no sampling penalties upstream.
//! - `seed`: no deterministic sampling upstream.
//! - `stream_options`: usage is always reported by Anthropic; [`super::StreamTranslator`]
//!   decides whether to forward it.
//! - `metadata`, `store`, `service_tier`, `prediction`, `modalities`, `audio`,
//!   `web_search_options`, `verbosity`: OpenAI-platform features with no counterpart.
//! - `functions`, `function_call` (deprecated): use `tools` / `tool_choice`.
//! - `tools[].function.strict`: no strict mode upstream.
//! - assistant `reasoning_content` without `thinking_blocks`: Anthropic needs the signature.
//! - `tool_choice` when the request has no `tools` (Anthropic would refuse it).
//!
//! Passed through untouched: top-level fields that are not OpenAI Chat Completions fields at
//! all ([`OPENAI_CHAT_FIELDS`]) — provider-specific parameters such as Anthropic's
//! `context_management` or `container`, as LiteLLM forwards them. A translated field is never
//! overwritten by a pass-through one.

use serde_json::{Map, Value, json};

use crate::json_mode::{JSON_TOOL_NAME, json_tool};
use crate::openai_request::{function_tools, parse_data_url, stop_sequences};

use super::{
    DEFAULT_MAX_TOKENS, TranslateError, enabled_budget, field, requested_thinking, thinking_on,
};

/// OpenAI chat request (already validated JSON) → Anthropic Messages request body bytes.
///
/// `upstream_model` is the deployment's Anthropic model name; `stream` sets `stream: true`.
pub fn chat_request_to_messages(
    openai: &Value,
    upstream_model: &str,
    stream: bool,
) -> Result<Vec<u8>, TranslateError> {
    let req = openai
        .as_object()
        .ok_or_else(|| TranslateError::new("the request body must be a JSON object", None))?;
    refuse_unsupported(req)?;

    let mut out = Map::new();
    out.insert("model".into(), Value::String(upstream_model.to_owned()));

    let (system, messages) = convert_messages(field(req, "messages"))?;
    if let Some(system) = system {
        out.insert("system".into(), system);
    }
    out.insert("messages".into(), Value::Array(messages));

    // The client's output limit, if it set one: never raised (see the module doc).
    let (limit, thinking) = requested_thinking(req)?;
    let json_tool = json_tool(req, "Anthropic", thinking_on(thinking.as_ref()))?;
    let mut max_tokens = limit.unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(thinking) = thinking {
        // No limit given: room for the budget plus the default answer length.
        if limit.is_none()
            && let Some(budget) = enabled_budget(&thinking)
            && max_tokens <= budget
        {
            max_tokens = budget.saturating_add(max_tokens);
        }
        out.insert("thinking".into(), thinking);
    }
    out.insert("max_tokens".into(), Value::from(max_tokens));

    if let Some(stop) = stop_sequences(field(req, "stop"))? {
        out.insert("stop_sequences".into(), stop);
    }
    for key in ["temperature", "top_p", "top_k"] {
        if let Some(v) = field(req, key) {
            out.insert(key.into(), v.clone());
        }
    }
    if stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(user) = field(req, "user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }

    let tools = convert_tools(field(req, "tools"))?;
    if let Some(tool) = json_tool {
        // response_format: one forced tool (json_tool refuses it beside the client's tools).
        out.insert(
            "tools".into(),
            json!([{
                "name": JSON_TOOL_NAME,
                "description": tool.description,
                "input_schema": tool.schema,
            }]),
        );
        out.insert(
            "tool_choice".into(),
            json!({ "type": "tool", "name": JSON_TOOL_NAME }),
        );
    } else if !tools.is_empty() {
        let parallel = field(req, "parallel_tool_calls").and_then(Value::as_bool);
        if let Some(choice) = convert_tool_choice(field(req, "tool_choice"), parallel)? {
            out.insert("tool_choice".into(), choice);
        }
        out.insert("tools".into(), Value::Array(tools));
    }

    for (key, value) in req {
        if !OPENAI_CHAT_FIELDS.contains(&key.as_str()) && !out.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }

    serde_json::to_vec(&Value::Object(out))
        .map_err(|e| TranslateError::new(format!("could not encode the request: {e}"), None))
}

/// Every top-level field of OpenAI's `CreateChatCompletionRequest` (plus LiteLLM's
/// `thinking`): translated, refused or dropped above. Anything else is provider-specific and
/// passes through.
pub const OPENAI_CHAT_FIELDS: &[&str] = &[
    "messages",
    "model",
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "thinking",
    "tool_choice",
    "tools",
    "top_k",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

/// Fields whose meaning Anthropic cannot honour: refusing beats silently ignoring them.
fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), TranslateError> {
    if let Some(n) = field(req, "n")
        && n.as_u64() != Some(1)
    {
        return Err(TranslateError::at(
            "n",
            "n must be 1: Anthropic models return one completion per request",
        ));
    }
    if field(req, "logprobs").and_then(Value::as_bool) == Some(true)
        || field(req, "top_logprobs").is_some()
    {
        let param = if field(req, "top_logprobs").is_some() {
            "top_logprobs"
        } else {
            "logprobs"
        };
        return Err(TranslateError::at(
            param,
            "logprobs are not supported by Anthropic models",
        ));
    }
    Ok(())
}

/// Returns the `system` value and the alternating Anthropic messages.
fn convert_messages(
    messages: Option<&Value>,
) -> Result<(Option<Value>, Vec<Value>), TranslateError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::at("messages", "messages must be an array"))?;

    let mut system: Vec<Value> = Vec::new();
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();

    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let obj = message
            .as_object()
            .ok_or_else(|| TranslateError::at(path.clone(), "each message must be an object"))?;
        let role = field(obj, "role")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::at(format!("{path}.role"), "role is required"))?;

        let (anthropic_role, mut blocks) = match role {
            "system" | "developer" => {
                let mut blocks = content_blocks(field(obj, "content"), &path, Parts::TextOnly)?;
                attach_cache_control(obj, &mut blocks);
                system.extend(blocks);
                continue;
            }
            "user" => (
                "user",
                content_blocks(field(obj, "content"), &path, Parts::User)?,
            ),
            "assistant" => ("assistant", assistant_blocks(obj, &path)?),
            "tool" => ("user", vec![tool_result(obj, &path)?]),
            other => {
                return Err(TranslateError::at(
                    format!("{path}.role"),
                    format!("role '{other}' is not supported for Anthropic models"),
                ));
            }
        };
        attach_cache_control(obj, &mut blocks);
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last_role, last_blocks)) if *last_role == anthropic_role => {
                last_blocks.extend(blocks);
            }
            _ => out.push((anthropic_role, blocks)),
        }
    }

    if out.is_empty() {
        return Err(TranslateError::at(
            "messages",
            "messages must contain at least one user or assistant message",
        ));
    }

    let system = if system.is_empty() {
        None
    } else if system.iter().any(|b| b.get("cache_control").is_some()) {
        Some(Value::Array(system))
    } else {
        let texts: Vec<&str> = system
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect();
        Some(Value::String(texts.join("\n\n")))
    };
    let messages = out
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    Ok((system, messages))
}

/// LiteLLM's message-level `cache_control` goes on the message's last block.
fn attach_cache_control(msg: &Map<String, Value>, blocks: &mut [Value]) {
    if let Some(cc) = field(msg, "cache_control")
        && let Some(last) = blocks.last_mut().and_then(Value::as_object_mut)
    {
        last.insert("cache_control".into(), cc.clone());
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    /// system messages: text only.
    TextOnly,
    /// assistant messages: text and refusal.
    Assistant,
    /// user messages: text, images, files.
    User,
    /// tool results: text and images.
    ToolResult,
}

/// OpenAI message `content` (string or parts) → Anthropic content blocks. Empty texts are skipped.
fn content_blocks(
    content: Option<&Value>,
    path: &str,
    allowed: Parts,
) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![json!({ "type": "text", "text": s })]),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(TranslateError::at(
                format!("{path}.content"),
                "content must be a string or an array of content parts",
            ));
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{path}.content[{j}]");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        let mut block = match (kind, allowed) {
            ("text", _) => {
                let text = part.get("text").and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::at(format!("{part_path}.text"), "text must be a string")
                })?;
                if text.is_empty() {
                    continue;
                }
                json!({ "type": "text", "text": text })
            }
            ("refusal", Parts::Assistant) => {
                let text = part.get("refusal").and_then(Value::as_str).unwrap_or("");
                if text.is_empty() {
                    continue;
                }
                json!({ "type": "text", "text": text })
            }
            ("image_url", Parts::User | Parts::ToolResult) => {
                let image = part.get("image_url");
                let url = image
                    .and_then(|i| i.get("url").or(Some(i)))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::at(
                            format!("{part_path}.image_url.url"),
                            "image_url.url must be a string",
                        )
                    })?;
                image_block(url, &format!("{part_path}.image_url.url"))?
            }
            ("file", Parts::User) => file_block(part, &part_path)?,
            _ => {
                return Err(TranslateError::at(
                    format!("{part_path}.type"),
                    format!(
                        "content part type '{kind}' is not supported here for Anthropic models"
                    ),
                ));
            }
        };
        if let (Some(cc), Some(obj)) = (part.get("cache_control"), block.as_object_mut())
            && !cc.is_null()
        {
            obj.insert("cache_control".into(), cc.clone());
        }
        blocks.push(block);
    }
    Ok(blocks)
}

/// A `data:` URL → `Some((media type, data))` (Anthropic needs the media type); `None` when
/// `url` is not a `data:` URL.
fn base64_source<'a>(
    url: &'a str,
    param: &str,
) -> Result<Option<(&'a str, &'a str)>, TranslateError> {
    match parse_data_url(url, param)? {
        Some(("", _)) => Err(TranslateError::at(
            param,
            "data: URLs must be base64-encoded with a media type",
        )),
        parsed => Ok(parsed),
    }
}

fn image_block(url: &str, param: &str) -> Result<Value, TranslateError> {
    if let Some((media_type, data)) = base64_source(url, param)? {
        return Ok(json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }))
    } else {
        Err(TranslateError::at(
            param,
            "image URLs must be http(s) URLs or base64 data: URLs",
        ))
    }
}

/// OpenAI `file` part with inline `file_data` → Anthropic `document` block.
fn file_block(part: &Value, path: &str) -> Result<Value, TranslateError> {
    let param = format!("{path}.file.file_data");
    let data_url = part
        .get("file")
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TranslateError::at(
                param.clone(),
                "only inline file_data (a base64 data: URL) is supported for Anthropic models",
            )
        })?;
    let (media_type, data) = base64_source(data_url, &param)?
        .ok_or_else(|| TranslateError::at(param.clone(), "expected a data: URL"))?;
    Ok(json!({
        "type": "document",
        "source": { "type": "base64", "media_type": media_type, "data": data },
    }))
}

fn assistant_blocks(msg: &Map<String, Value>, path: &str) -> Result<Vec<Value>, TranslateError> {
    let mut blocks: Vec<Value> = replayed_thinking(msg, path)?
        .into_iter()
        .map(|block| match block {
            Replayed::Thinking { text, signature } => {
                json!({ "type": "thinking", "thinking": text, "signature": signature })
            }
            Replayed::Redacted { data, .. } => json!({ "type": "redacted_thinking", "data": data }),
        })
        .collect();
    blocks.extend(content_blocks(
        field(msg, "content"),
        path,
        Parts::Assistant,
    )?);

    if let Some(calls) = field(msg, "tool_calls") {
        let calls = calls.as_array().ok_or_else(|| {
            TranslateError::at(format!("{path}.tool_calls"), "tool_calls must be an array")
        })?;
        for (j, call) in calls.iter().enumerate() {
            blocks.push(tool_use_block(call, &format!("{path}.tool_calls[{j}]"))?);
        }
    }
    Ok(blocks)
}

/// One reasoning block of an assistant message, as [`replayed_thinking`] rebuilt it from the
/// client's `thinking_blocks` (each translator writes it in its upstream's shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replayed<'a> {
    /// A thinking block: its text and signature (empty when no entry of its run brought one).
    Thinking { text: String, signature: &'a str },
    /// A `redacted_thinking` block's `data`; `at` is its position in `thinking_blocks`, to
    /// name it in an error.
    Redacted { data: &'a str, at: usize },
}

/// An assistant message's LiteLLM `thinking_blocks` as the reasoning blocks to send back (in
/// order: the caller puts them first, as Anthropic and Bedrock require), rebuilt from
/// whatever a streaming client accumulated:
///
/// - a run of `thinking` entries is one block until an entry brings a signature (a client
///   that appended every streamed delta sends the text in pieces, the signature last);
///   the texts are joined and the block carries that signature;
/// - a message with exactly one thinking block whose text is empty or a prefix of the
///   message's `reasoning_content` (a client that kept only the signature delta, or lost
///   later pieces) gets its text from `reasoning_content` — the upstream checks the
///   signature against the whole text; a text that differs otherwise is kept;
/// - `redacted_thinking` entries are kept as they are (`data`); other fields (`index`,
///   `cache_control` …) are not forwarded.
///
/// Entries of other types, and `thinking` / `signature` / `data` that are not strings, are
/// refused with a [`TranslateError`] naming the field.
pub(crate) fn replayed_thinking<'a>(
    msg: &'a Map<String, Value>,
    path: &str,
) -> Result<Vec<Replayed<'a>>, TranslateError> {
    let Some(thinking) = field(msg, "thinking_blocks") else {
        return Ok(Vec::new());
    };
    let list = thinking.as_array().ok_or_else(|| {
        TranslateError::at(
            format!("{path}.thinking_blocks"),
            "thinking_blocks must be an array",
        )
    })?;
    let mut blocks = Vec::new();
    // The thinking block being assembled: (text, signature).
    let mut open: Option<(String, &str)> = None;
    let close = |open: &mut Option<(String, &'a str)>, blocks: &mut Vec<Replayed<'a>>| {
        if let Some((text, signature)) = open.take() {
            blocks.push(Replayed::Thinking { text, signature });
        }
    };
    for (j, block) in list.iter().enumerate() {
        let block_path = format!("{path}.thinking_blocks[{j}]");
        let text = |key: &str| -> Result<&'a str, TranslateError> {
            match block.get(key) {
                None | Some(Value::Null) => Ok(""),
                Some(Value::String(s)) => Ok(s),
                Some(_) => Err(TranslateError::at(
                    format!("{block_path}.{key}"),
                    format!("{key} must be a string"),
                )),
            }
        };
        match block.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                let (thinking, signature) = open.get_or_insert_with(Default::default);
                thinking.push_str(text("thinking")?);
                let sig = text("signature")?;
                if !sig.is_empty() {
                    *signature = sig;
                    close(&mut open, &mut blocks);
                }
            }
            Some("redacted_thinking") => {
                close(&mut open, &mut blocks);
                blocks.push(Replayed::Redacted {
                    data: text("data")?,
                    at: j,
                });
            }
            _ => {
                return Err(TranslateError::at(
                    format!("{block_path}.type"),
                    "thinking blocks must be of type thinking or redacted_thinking",
                ));
            }
        }
    }
    close(&mut open, &mut blocks);

    let is_thinking = |b: &Replayed<'_>| matches!(b, Replayed::Thinking { .. });
    if blocks.iter().filter(|b| is_thinking(b)).count() == 1
        && let Some(reasoning) = field(msg, "reasoning_content")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        && let Some(Replayed::Thinking { text, .. }) = blocks.iter_mut().find(|b| is_thinking(b))
        && reasoning.starts_with(text.as_str())
    {
        reasoning.clone_into(text);
    }
    Ok(blocks)
}

fn tool_use_block(call: &Value, path: &str) -> Result<Value, TranslateError> {
    let (id, name, input) = crate::openai_request::tool_call(call, path)?;
    let id =
        id.ok_or_else(|| TranslateError::at(format!("{path}.id"), "tool call id is required"))?;
    Ok(json!({ "type": "tool_use", "id": id, "name": name, "input": input }))
}

fn tool_result(msg: &Map<String, Value>, path: &str) -> Result<Value, TranslateError> {
    let id = field(msg, "tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TranslateError::at(
                format!("{path}.tool_call_id"),
                "tool messages need a tool_call_id",
            )
        })?;
    let mut result = Map::new();
    result.insert("type".into(), "tool_result".into());
    result.insert("tool_use_id".into(), id.into());
    match field(msg, "content") {
        Some(Value::String(s)) if !s.is_empty() => {
            result.insert("content".into(), s.as_str().into());
        }
        content => {
            let blocks = content_blocks(content, path, Parts::ToolResult)?;
            if !blocks.is_empty() {
                result.insert("content".into(), Value::Array(blocks));
            }
        }
    }
    Ok(Value::Object(result))
}

fn convert_tools(tools: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    let tools = function_tools(tools, "Anthropic")?;
    Ok(tools
        .iter()
        .map(|t| {
            let mut converted = Map::new();
            converted.insert("name".into(), t.name.into());
            if let Some(d) = t.description {
                converted.insert("description".into(), d.clone());
            }
            converted.insert("input_schema".into(), t.schema());
            if let Some(cc) = t.tool.get("cache_control").filter(|c| !c.is_null()) {
                converted.insert("cache_control".into(), cc.clone());
            }
            Value::Object(converted)
        })
        .collect())
}

fn convert_tool_choice(
    choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Option<Value>, TranslateError> {
    let mut converted = match choice {
        None => json!({ "type": "auto" }),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "required" => json!({ "type": "any" }),
            "none" => return Ok(Some(json!({ "type": "none" }))),
            _ => {
                return Err(TranslateError::at(
                    "tool_choice",
                    "tool_choice must be none, auto, required or a named function",
                ));
            }
        },
        Some(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| obj.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| {
                    TranslateError::at(
                        "tool_choice",
                        "tool_choice must be none, auto, required or a named function",
                    )
                })?;
            json!({ "type": "tool", "name": name })
        }
    };
    if parallel == Some(false) {
        if let Some(obj) = converted.as_object_mut() {
            obj.insert("disable_parallel_tool_use".into(), Value::Bool(true));
        }
    } else if choice.is_none() {
        // Anthropic's default is auto: say nothing.
        return Ok(None);
    }
    Ok(Some(converted))
}
