//! OpenAI `CreateChatCompletionRequest` → Bedrock `Converse` / `ConverseStream` request body.
//!
//! The same body serves both operations; the model id is not in it but in the URL
//! ([`super::converse_path`]).
//!
//! Translated:
//!
//! | OpenAI | Converse |
//! |---|---|
//! | `system` / `developer` messages (anywhere) | `system: [{text}]`, one block per text |
//! | `user` content: string, `text`, `image_url` with a base64 `data:` URL | `{text}`, `{image: {format, source: {bytes: <base64>}}}` (format from the media type: png, jpeg, gif, webp) |
//! | `user` `file` part with `file_data` a base64 `data:` URL (the `/v1/messages` chain turns Anthropic `document` blocks with a base64 source into these) | `{document: {format, name, source: {bytes: <base64>}}}`: `format` from the media type — `application/pdf` pdf, `text/csv` csv, `application/msword` doc, `…wordprocessingml.document` docx, `application/vnd.ms-excel` xls, `…spreadsheetml.sheet` xlsx, `text/html` html, `text/plain` txt, `text/markdown` md (for `application/octet-stream`, from `file.filename`'s extension); `name` generated, `document-1`, `document-2`, … in request order (unique, of the characters Converse allows, neutral as AWS advises); a message with documents but no text (a PDF a tool returned) gets a text block `Attached: document-1` after them, as Converse requires one |
//! | `assistant` content, `refusal`, `tool_calls` | `{text}`, `{toolUse: {toolUseId, name, input}}` (`input` = parsed `arguments`) |
//! | `assistant` `thinking_blocks` (LiteLLM; what the response direction emits) | first in the message: `{type: thinking, thinking, signature}` → `{reasoningContent: {reasoningText: {text, signature}}}`, `{type: redacted_thinking, data}` → `{reasoningContent: {redactedContent: data}}` (base64) — Bedrock needs the signature back for Claude with thinking and tools; streamed pieces are reassembled as for Anthropic (a run of `thinking` entries up to the one that brings the signature is one block; a lone block whose text is empty or a prefix of the message's `reasoning_content` takes that text) |
//! | `tool` messages | a `user` message of `{toolResult: {toolUseId, content: [{text}]}}` blocks |
//! | consecutive messages of the same role (tool results included) | merged into one message |
//! | `cache_control: {type: ephemeral, ttl?}` (LiteLLM's Anthropic spelling) on a system / user / assistant part, a message, a tool message (or its parts), a tool | a `{cachePoint: {type: default, ttl?}}` block right after it (in `system`, the message's content, after the `toolResult`, or after the `toolSpec` in `toolConfig.tools`); `ttl` only when `5m` or `1h` |
//! | `tools` (function) | `toolConfig.tools: [{toolSpec: {name, description, inputSchema: {json: parameters}}}]` |
//! | `tool_choice` auto / required / named function | `toolConfig.toolChoice` `{auto: {}}` / `{any: {}}` / `{tool: {name}}` |
//! | `max_completion_tokens`, else `max_tokens` | `inferenceConfig.maxTokens` |
//! | `temperature`, `top_p`, `stop` | `inferenceConfig.temperature`, `topP`, `stopSequences` |
//! | `thinking` (LiteLLM/Anthropic object; the `/v1/messages` chain carries Claude Code's) | `additionalModelRequestFields.thinking`, for Anthropic models ([`super::is_anthropic_model`]); unchanged but for a budget fitted under the client's output limit (below) |
//! | else `reasoning_effort` minimal/low → 1024, medium → 2048, high → 4096 (none → off) | `additionalModelRequestFields.thinking: {type: enabled, budget_tokens}`, for Anthropic models |
//! | `top_k` | `additionalModelRequestFields.top_k` (Anthropic models) |
//! | `response_format` `json_object` / `json_schema` (`text`: nothing) | one tool `json_tool_call` (input schema: the schema) forced with `toolChoice: {tool: {name}}`; its call comes back as `content` — see `crate::json_mode` for what is refused |
//! | answer `model` (response direction) | Converse and ConverseStream name no model: the deployment's upstream model id, on the body and every chunk |
//!
//! With thinking enabled, Claude requires `maxTokens` > `budget_tokens` (and a budget of at
//! least 1024). An output limit the client set (`max_completion_tokens`, else `max_tokens`;
//! through `/v1/messages`, Claude Code's `max_tokens`) is never raised — the gateway
//! reserved budget for it, and OpenAI's `max_completion_tokens` bounds reasoning plus
//! visible tokens alike — so the thinking budget is fitted under it instead:
//!
//! | client limit `L`, budget `B` | sent |
//! |---|---|
//! | `L > B` | `maxTokens: L`, `budget_tokens: B` |
//! | `L ≤ B`, `L - 1 ≥ 1024` | `maxTokens: L`, `budget_tokens: L - 1` |
//! | `L ≤ B`, `L - 1 < 1024` | `maxTokens: L`, no `thinking` |
//! | no limit | `maxTokens: B +` [`super::DEFAULT_MAX_TOKENS`] (the budget plus the default answer) |
//!
//! (`B` is the `thinking` object's `budget_tokens`, or the `reasoning_effort` budget;
//! thinking of other types — `disabled`, `adaptive` — is sent as it is.)
//!
//! Refused with a [`TranslateError`]: `n > 1`, `logprobs: true` / `top_logprobs`, image URLs
//! that are not base64 `data:` URLs (Converse takes image bytes only), image media types
//! other than png/jpeg/gif/webp, `file` parts without base64 `data:` `file_data` (`file_id`:
//! no Files API) or of other types (400 naming `messages[i].content[j].file.file_data`),
//! `function` role messages, unknown roles and
//! content part types, tool call `arguments` that are not a JSON object, `thinking_blocks`
//! that are not a list of thinking / redacted_thinking blocks (or whose `thinking`,
//! `signature`, `data` are not strings), redacted data that is not base64.
//!
//! Dropped (no Converse equivalent): `tool_choice: "none"` — Converse has no "none", so the
//! tools are dropped entirely (a history that still holds tool calls may then be refused by
//! Bedrock); `tool_choice` without `tools`; `parallel_tool_calls`; `presence_penalty`,
//! `frequency_penalty`, `logit_bias`, `seed`, `stream` (the operation
//! decides), `stream_options`, `user`, `metadata`, `store`, `service_tier`, `prediction`,
//! `modalities`, `audio`, `web_search_options`, `verbosity`, `functions`, `function_call`,
//! `tools[].function.strict`; `cache_control` of other types than `ephemeral`; assistant
//! `reasoning_content` without `thinking_blocks`, and thinking that no entry signs
//! (Bedrock refuses reasoning it cannot verify); `thinking` / `reasoning_effort` for
//! non-Anthropic models (Nova, Llama, … refuse Anthropic's field).
//!
//! Passed through: top-level fields that are not OpenAI Chat Completions fields. Converse's
//! own top-level fields ([`CONVERSE_FIELDS`]: `guardrailConfig`, `performanceConfig`, …)
//! stay top-level; anything else goes into `additionalModelRequestFields` (as LiteLLM does),
//! never overwriting a translated field.

use serde_json::{Map, Value, json};

use crate::openai_request::{function_tools_in, parse_data_url, stop_sequences};

use super::{DEFAULT_MAX_TOKENS, TranslateError};
use crate::anthropic::{
    OPENAI_CHAT_FIELDS, Replayed, enabled_budget, field, replayed_thinking, requested_thinking,
    thinking_on,
};

/// Top-level Converse fields a client may set directly (passed through as they are).
pub const CONVERSE_FIELDS: &[&str] = &[
    "guardrailConfig",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
];

/// OpenAI chat request (already validated JSON) → Converse request body bytes.
///
/// `model_id` is the deployment's Bedrock model id (it goes in the URL, not the body): it
/// decides whether `thinking` is sent ([`super::is_anthropic_model`]).
pub fn chat_request_to_converse(openai: &Value, model_id: &str) -> Result<Vec<u8>, TranslateError> {
    let req = openai
        .as_object()
        .ok_or_else(|| TranslateError::new("the request body must be a JSON object", None))?;
    refuse_unsupported(req)?;

    let mut out = Map::new();
    let (system, messages) = convert_messages(field(req, "messages"))?;
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let mut inference = Map::new();
    // The client's output limit, if it set one: never raised (see the module doc).
    let (limit, thinking) = requested_thinking(req)?;
    let thinking = thinking.filter(|_| super::is_anthropic_model(model_id));
    let mut max_tokens = limit;
    let mut additional = Map::new();
    let json_tool = crate::json_mode::json_tool(req, "Bedrock", thinking_on(thinking.as_ref()))?;
    if let Some(thinking) = thinking {
        // No limit given: room for the budget plus the default answer length.
        if limit.is_none()
            && let Some(budget) = enabled_budget(&thinking)
        {
            max_tokens = Some(budget.saturating_add(DEFAULT_MAX_TOKENS));
        }
        additional.insert("thinking".into(), thinking);
    }
    if let Some(n) = max_tokens {
        inference.insert("maxTokens".into(), n.into());
    }
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(v) = field(req, from) {
            if !v.is_number() {
                return Err(TranslateError::at(from, format!("{from} must be a number")));
            }
            inference.insert(to.into(), v.clone());
        }
    }
    if let Some(stop) = stop_sequences(field(req, "stop"))? {
        inference.insert("stopSequences".into(), stop);
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(v) = field(req, "top_k") {
        additional.insert("top_k".into(), v.clone());
    }

    if let Some(tool) = json_tool {
        // response_format: one forced tool (crate::json_mode).
        let name = crate::json_mode::JSON_TOOL_NAME;
        let spec = json!({ "name": name, "description": tool.description,
            "inputSchema": { "json": tool.schema } });
        let config =
            json!({ "tools": [{ "toolSpec": spec }], "toolChoice": { "tool": { "name": name } } });
        out.insert("toolConfig".into(), config);
    } else if let Some(config) = tool_config(req)? {
        out.insert("toolConfig".into(), config);
    }

    for (key, value) in req {
        if OPENAI_CHAT_FIELDS.contains(&key.as_str()) || out.contains_key(key) {
            continue;
        }
        if CONVERSE_FIELDS.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        } else if key == "additionalModelRequestFields" {
            if let Some(obj) = value.as_object() {
                for (k, v) in obj {
                    additional.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        } else {
            additional
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
    }
    if !additional.is_empty() {
        out.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }

    serde_json::to_vec(&Value::Object(out))
        .map_err(|e| TranslateError::new(format!("could not encode the request: {e}"), None))
}

fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), TranslateError> {
    if let Some(n) = field(req, "n")
        && n.as_u64() != Some(1)
    {
        return Err(TranslateError::at(
            "n",
            "n must be 1: Bedrock models return one completion per request",
        ));
    }
    let top = field(req, "top_logprobs").is_some();
    if top || field(req, "logprobs").and_then(Value::as_bool) == Some(true) {
        return Err(TranslateError::at(
            if top { "top_logprobs" } else { "logprobs" },
            "logprobs are not supported by Bedrock models",
        ));
    }
    Ok(())
}

/// Returns the `system` blocks and the alternating Converse messages.
fn convert_messages(messages: Option<&Value>) -> Result<(Vec<Value>, Vec<Value>), TranslateError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::at("messages", "messages must be an array"))?;
    let mut system = Vec::new();
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let obj = message
            .as_object()
            .ok_or_else(|| TranslateError::at(path.clone(), "messages must be objects"))?;
        let role = field(obj, "role").and_then(Value::as_str).unwrap_or("");
        let (role, mut blocks) = match role {
            "system" | "developer" => {
                let mut blocks = content_blocks(field(obj, "content"), &path, Parts::TextOnly)?;
                end_cache_point(obj, &mut blocks);
                system.extend(blocks);
                continue;
            }
            "user" => (
                "user",
                content_blocks(field(obj, "content"), &path, Parts::User)?,
            ),
            "assistant" => ("assistant", assistant_blocks(obj, &path)?),
            "tool" => ("user", tool_result(obj, &path)?),
            other => {
                return Err(TranslateError::at(
                    format!("{path}.role"),
                    format!("role '{other}' is not supported for Bedrock models"),
                ));
            }
        };
        end_cache_point(obj, &mut blocks);
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last, last_blocks)) if *last == role => last_blocks.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    if out.is_empty() {
        return Err(TranslateError::at(
            "messages",
            "messages must contain at least one user or assistant message",
        ));
    }
    name_documents(&mut out);
    let messages = out
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    Ok((system, messages))
}

/// An Anthropic-style `cache_control: {type: ephemeral, ttl?}` (LiteLLM's spelling on OpenAI
/// requests) → a Converse `{cachePoint: {type: default, ttl?}}` block. Other types, and
/// TTLs Bedrock does not take (only `5m`, `1h`), are not sent.
fn cache_point(cache_control: Option<&Value>) -> Option<Value> {
    let cc = cache_control?;
    if cc.get("type").and_then(Value::as_str) != Some("ephemeral") {
        return None;
    }
    let mut point = Map::new();
    point.insert("type".into(), "default".into());
    if let Some(ttl) = cc
        .get("ttl")
        .and_then(Value::as_str)
        .filter(|t| matches!(*t, "5m" | "1h"))
    {
        point.insert("ttl".into(), ttl.into());
    }
    Some(json!({ "cachePoint": point }))
}

fn is_cache_point(block: &Value) -> bool {
    block.get("cachePoint").is_some()
}

/// LiteLLM's message-level `cache_control`: a cache point after the message's last block
/// (unless one is already there).
fn end_cache_point(msg: &Map<String, Value>, blocks: &mut Vec<Value>) {
    if let Some(point) = cache_point(field(msg, "cache_control"))
        && blocks.last().is_some_and(|b| !is_cache_point(b))
    {
        blocks.push(point);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    TextOnly,
    Assistant,
    User,
    ToolResult,
}

/// OpenAI `content` (string or parts) → Converse content blocks; empty texts skipped. A part
/// with `cache_control` is followed by a `cachePoint` block (not inside tool results, whose
/// content cannot hold one: see [`tool_result`]).
fn content_blocks(
    content: Option<&Value>,
    path: &str,
    allowed: Parts,
) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![json!({ "text": s })]),
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
        let text_of = |key: &str| part.get(key).and_then(Value::as_str);
        let block = match (kind, allowed) {
            ("text", _) => {
                let text = text_of("text").ok_or_else(|| {
                    TranslateError::at(format!("{part_path}.text"), "text must be a string")
                })?;
                if text.is_empty() {
                    continue;
                }
                json!({ "text": text })
            }
            ("refusal", Parts::Assistant) => match text_of("refusal").filter(|t| !t.is_empty()) {
                Some(text) => json!({ "text": text }),
                None => continue,
            },
            ("file", Parts::User) => document_block(part, &part_path)?,
            ("image_url", Parts::User) => {
                let param = format!("{part_path}.image_url.url");
                let url = part
                    .get("image_url")
                    .and_then(|i| i.get("url").or(Some(i)))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::at(param.clone(), "image_url.url must be a string")
                    })?;
                image_block(url, &param)?
            }
            _ => {
                return Err(TranslateError::at(
                    format!("{part_path}.type"),
                    format!("content part type '{kind}' is not supported here for Bedrock models"),
                ));
            }
        };
        blocks.push(block);
        if allowed != Parts::ToolResult
            && let Some(point) = cache_point(part.get("cache_control"))
        {
            blocks.push(point);
        }
    }
    Ok(blocks)
}

/// A base64 `data:` URL → `{image: {format, source: {bytes}}}`.
fn image_block(url: &str, param: &str) -> Result<Value, TranslateError> {
    let (media_type, data) = parse_data_url(url, param)?.ok_or_else(|| {
        TranslateError::at(
            param,
            "Bedrock models take images as base64 data: URLs only (no http(s) URLs)",
        )
    })?;
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(TranslateError::at(
                param,
                format!("image type '{other}' is not supported (png, jpeg, gif, webp)"),
            ));
        }
    };
    Ok(json!({ "image": { "format": format, "source": { "bytes": data } } }))
}

/// The Converse document formats (`DocumentBlock.format`) and the media types (and file
/// extensions) they are read from.
const DOCUMENT_FORMATS: &[(&str, &[&str])] = &[
    ("pdf", &["application/pdf"]),
    ("csv", &["text/csv"]),
    ("doc", &["application/msword"]),
    (
        "docx",
        &["application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
    ),
    ("xls", &["application/vnd.ms-excel"]),
    (
        "xlsx",
        &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
    ),
    ("html", &["text/html"]),
    ("txt", &["text/plain"]),
    ("md", &["text/markdown", "text/x-markdown"]),
];

/// An OpenAI `file` part with inline `file_data` (a base64 `data:` URL) → a Converse
/// `{document: {format, name, source: {bytes}}}`. The format comes from the media type
/// (parameters ignored), or — for `application/octet-stream` — from `file.filename`'s
/// extension. `name` is left empty here: [`name_documents`] numbers the documents of the
/// request once they are all known.
fn document_block(part: &Value, path: &str) -> Result<Value, TranslateError> {
    let param = format!("{path}.file.file_data");
    let file = part.get("file");
    let data_url = file
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TranslateError::at(
                param.clone(),
                "only inline file_data (a base64 data: URL) is supported for Bedrock models",
            )
        })?;
    let (media_type, data) = parse_data_url(data_url, &param)?
        .ok_or_else(|| TranslateError::at(param.clone(), "file_data must be a base64 data: URL"))?;
    if data.is_empty() || !data.bytes().all(is_base64_byte) {
        return Err(TranslateError::at(
            param,
            "file_data must hold non-empty base64 data",
        ));
    }
    let media_type = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let by_type = DOCUMENT_FORMATS
        .iter()
        .find(|(_, types)| types.contains(&media_type.as_str()))
        .map(|(format, _)| *format);
    let by_extension = || {
        let filename = file?.get("filename")?.as_str()?;
        let (_, ext) = filename.rsplit_once('.')?;
        let ext = ext.to_ascii_lowercase();
        DOCUMENT_FORMATS
            .iter()
            .map(|(format, _)| *format)
            .find(|format| *format == ext)
    };
    let format = match by_type {
        Some(format) => format,
        None if media_type.is_empty() || media_type == "application/octet-stream" => {
            by_extension().ok_or_else(|| unsupported_document(&param, &media_type))?
        }
        None => return Err(unsupported_document(&param, &media_type)),
    };
    Ok(json!({ "document": { "format": format, "name": "", "source": { "bytes": data } } }))
}

fn unsupported_document(param: &str, media_type: &str) -> TranslateError {
    let supported: Vec<&str> = DOCUMENT_FORMATS
        .iter()
        .flat_map(|(_, types)| types.iter().copied())
        .collect();
    TranslateError::at(
        param,
        format!(
            "file type '{media_type}' is not supported for Bedrock models (supported: {})",
            supported.join(", ")
        ),
    )
}

/// Names the request's documents `document-1`, `document-2`, … in order (Converse requires a
/// name unique within the request, of alphanumerics, single spaces, hyphens, parentheses and
/// square brackets; a neutral one, as AWS advises, since the model reads it), and gives a
/// message that holds documents but no `text` block one naming them — Converse refuses a
/// document without a text block beside it (as after a `tool_result` that returned a PDF).
fn name_documents(messages: &mut [(&'static str, Vec<Value>)]) {
    let mut n = 0usize;
    for (_, blocks) in messages.iter_mut() {
        let mut names = Vec::new();
        for doc in blocks
            .iter_mut()
            .filter_map(|b| b.get_mut("document").and_then(Value::as_object_mut))
        {
            n += 1;
            let name = format!("document-{n}");
            doc.insert("name".into(), Value::String(name.clone()));
            names.push(name);
        }
        if !names.is_empty() && !blocks.iter().any(|b| b.get("text").is_some()) {
            // Right after the last document (and its cache point, if any).
            let mut at = blocks
                .iter()
                .rposition(|b| b.get("document").is_some())
                .map_or(blocks.len(), |i| i + 1);
            if blocks.get(at).is_some_and(is_cache_point) {
                at += 1;
            }
            let text = json!({ "text": format!("Attached: {}", names.join(", ")) });
            blocks.insert(at.min(blocks.len()), text);
        }
    }
}

/// An assistant message: its reasoning first (as Claude requires), then text, then tool use.
fn assistant_blocks(msg: &Map<String, Value>, path: &str) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = reasoning_blocks(msg, path)?;
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

/// LiteLLM's `thinking_blocks` of an assistant message, rebuilt as for Anthropic
/// ([`crate::anthropic::replayed_thinking`]: pieces joined, the text from
/// `reasoning_content` when the one block lacks it) → `reasoningContent` blocks:
/// thinking → `{reasoningText: {text, signature}}`, redacted → `{redactedContent: data}`
/// (base64, as Bedrock sent it; anything else is refused). Thinking without a signature is
/// not sent: Bedrock refuses reasoning it cannot verify (and `reasoning_content` alone has
/// no signature).
fn reasoning_blocks(msg: &Map<String, Value>, path: &str) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::new();
    for block in replayed_thinking(msg, path)? {
        match block {
            Replayed::Thinking { signature: "", .. } => {}
            Replayed::Thinking { text, signature } => out.push(json!({
                "reasoningContent": {
                    "reasoningText": { "text": text, "signature": signature },
                },
            })),
            Replayed::Redacted { data, at } => {
                if data.is_empty() || !data.bytes().all(is_base64_byte) {
                    return Err(TranslateError::at(
                        format!("{path}.thinking_blocks[{at}].data"),
                        "redacted thinking data must be the base64 string the model sent",
                    ));
                }
                out.push(json!({ "reasoningContent": { "redactedContent": data } }));
            }
        }
    }
    Ok(out)
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
}

fn tool_use_block(call: &Value, path: &str) -> Result<Value, TranslateError> {
    let (id, name, input) = crate::openai_request::tool_call(call, path)?;
    let id =
        id.ok_or_else(|| TranslateError::at(format!("{path}.id"), "tool call id is required"))?;
    Ok(json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } }))
}

/// A `tool` message → its `toolResult` block, followed by a cache point when the message or
/// any of its parts carries `cache_control` (a tool result's content cannot hold one).
fn tool_result(msg: &Map<String, Value>, path: &str) -> Result<Vec<Value>, TranslateError> {
    let id = field(msg, "tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TranslateError::at(
                format!("{path}.tool_call_id"),
                "tool messages need a tool_call_id",
            )
        })?;
    let mut content = content_blocks(field(msg, "content"), path, Parts::ToolResult)?;
    if content.is_empty() {
        // Converse requires at least one block.
        content.push(json!({ "text": "" }));
    }
    let mut out = vec![json!({ "toolResult": { "toolUseId": id, "content": content } })];
    let part_point = field(msg, "content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|p| cache_point(p.get("cache_control")));
    if let Some(point) = part_point {
        out.push(point);
    }
    Ok(out)
}

/// `tools` + `tool_choice` → `toolConfig` (None without tools or with `tool_choice: none`).
fn tool_config(req: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let Some(tools) = field(req, "tools") else {
        return Ok(None);
    };
    let tools = tools
        .as_array()
        .ok_or_else(|| TranslateError::at("tools", "tools must be an array"))?;
    if tools.is_empty() {
        return Ok(None);
    }
    let choice = match field(req, "tool_choice") {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({ "auto": {} })),
            "required" => Some(json!({ "any": {} })),
            // Converse has no "none": the tools are not sent at all.
            "none" => return Ok(None),
            _ => return Err(bad_tool_choice()),
        },
        Some(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| obj.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(bad_tool_choice)?;
            Some(json!({ "tool": { "name": name } }))
        }
    };
    let mut specs = Vec::with_capacity(tools.len());
    for t in function_tools_in(tools, "Bedrock")? {
        let mut spec = Map::new();
        spec.insert("name".into(), t.name.into());
        if let Some(d) = t.description {
            spec.insert("description".into(), d.clone());
        }
        spec.insert("inputSchema".into(), json!({ "json": t.schema() }));
        specs.push(json!({ "toolSpec": spec }));
        if let Some(point) = cache_point(t.tool.get("cache_control")) {
            specs.push(point);
        }
    }
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(specs));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

fn bad_tool_choice() -> TranslateError {
    TranslateError::at(
        "tool_choice",
        "tool_choice must be none, auto, required or a named function",
    )
}
