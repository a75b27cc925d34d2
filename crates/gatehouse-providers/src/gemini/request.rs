//! OpenAI `CreateChatCompletionRequest` → Gemini `generateContent` body, and OpenAI
//! embeddings → `batchEmbedContents` body.
//!
//! Translated:
//!
//! | OpenAI | Gemini |
//! |---|---|
//! | `system` / `developer` messages (anywhere) | `systemInstruction: {parts: [{text}]}` |
//! | `user` content: string, `text`, `image_url` (`data:` → `inlineData`, http(s) → `fileData` with the MIME type guessed from the extension, default `image/jpeg`), `input_audio` → `inlineData` `audio/<format>`, `file` with a `data:` URL → `inlineData` | `user` content parts |
//! | `assistant` content, `tool_calls` | `model` content: `text`, `functionCall {name, args}` (`args` = parsed `arguments`), with the part's `thoughtSignature` read back from the tool call id (or from `extra_content.google.thought_signature`; see the `gemini` module doc) |
//! | `tool` messages | `user` content with `functionResponse {name, response}`: `name` is the function of the earlier assistant tool call with that `tool_call_id` (else the message's `name`); `response` is the content when it parses as a JSON object, else `{content: <text>}` |
//! | consecutive contents of the same role | merged into one content |
//! | `tools` (function) | `tools: [{functionDeclarations: [{name, description, parameters}]}]`; `parameters` cleaned of `$schema`, `additionalProperties`, `strict` (recursively), and left out when it is an object schema without properties (Gemini refuses empty `properties`) |
//! | `tool_choice` auto / none / required / named | `toolConfig.functionCallingConfig {mode: AUTO / NONE / ANY, allowedFunctionNames: [name]}` |
//! | `temperature`, `top_p`, `top_k` | `generationConfig.temperature`, `topP`, `topK` |
//! | `max_completion_tokens`, else `max_tokens` | `generationConfig.maxOutputTokens` |
//! | `stop` (string or array) | `generationConfig.stopSequences` |
//! | `n` | `generationConfig.candidateCount` |
//! | `seed`, `presence_penalty`, `frequency_penalty` | `seed`, `presencePenalty`, `frequencyPenalty` |
//! | `response_format` json_object / json_schema | `responseMimeType: application/json` (+ `responseSchema`, cleaned as above); `text` → nothing |
//! | answer `model` (response direction; Vertex AI too) | `modelVersion` of the response and of each stream chunk (the latest one seen when a chunk has none); the deployment's upstream model when Gemini names none, and always for embeddings (`batchEmbedContents` names no model) |
//! | `reasoning_effort` minimal/low → 1024, medium → 8192, high → 24576, none → 0 | `generationConfig.thinkingConfig {thinkingBudget, includeThoughts: true}` (`includeThoughts` only for a non-zero budget, so that thoughts come back as `reasoning_content`) |
//!
//! Refused with a [`TranslateError`]: `logprobs: true` / `top_logprobs`, `n` that is not a
//! positive integer, `function` role messages, unknown roles and content part types,
//! non-base64 `data:` URLs, images in system messages, tool call `arguments` that are not a
//! JSON object, tool messages whose function name cannot be found, non-function tools.
//! Media URLs that are not http(s) or `data:` — `gs://` above all — are refused with a 400
//! naming the field: Vertex AI would read the bucket with the gateway's service account, on
//! behalf of a client who may have no access to it. The same goes for pass-through fields
//! (below): a `gs://` string anywhere in them, or a `fileUri`/`file_uri` that is not
//! http(s), is refused. `cachedContent` (or `cached_content`) is refused with a 400 naming it,
//! for the same reason: it names a cache by resource name (`cachedContents/…`), and Gemini and
//! Vertex AI would serve any cache the gateway's credentials can read, another client's
//! included.
//!
//! Dropped (no Gemini equivalent, or handled elsewhere):
//!
//! - `logit_bias`: Gemini has no token biasing.
//! - `user`, `metadata`, `store`, `safety_identifier`, `prompt_cache_key`, `service_tier`,
//!   `prediction`, `modalities`, `audio`, `web_search_options`, `verbosity`: OpenAI-platform
//!   features with no counterpart.
//! - `stream`, `stream_options`: streaming is chosen by the URL
//!   (`:streamGenerateContent?alt=sse`), Gemini always reports usage, and
//!   [`super::StreamTranslator`] decides whether to forward it.
//! - `parallel_tool_calls`: Gemini decides by itself.
//! - `functions`, `function_call` (deprecated): use `tools` / `tool_choice`.
//! - `tools[].function.strict`: no strict mode upstream.
//! - assistant `reasoning_content` / `refusal` parts: not replayed (a thought is replayed
//!   only through the signature of a function call).
//! - `tool_choice` when the request has no `tools`.
//! - `model`: the model is in the URL.
//!
//! Passed through untouched: top-level fields that are not OpenAI Chat Completions fields
//! ([`crate::anthropic::OPENAI_CHAT_FIELDS`]), e.g. Gemini's own `safetySettings` or
//! `labels`, as LiteLLM forwards provider-specific parameters (but not `cachedContent`, nor
//! storage URLs: above). A translated field is never overwritten by a pass-through one.

use serde_json::{Map, Value, json};

use crate::openai_request::{
    function_tools, parse_data_url, positive_int, stop_sequences, tool_call,
};

use super::ids::{normalize_signature, signature_from_id};
use super::{THINKING_BUDGET_HIGH, THINKING_BUDGET_LOW, THINKING_BUDGET_MEDIUM, TranslateError};
use crate::anthropic::{OPENAI_CHAT_FIELDS, field};

/// Gemini fields a client may not pass through: `cachedContent` names a cache by resource
/// name, and Gemini / Vertex AI would serve any cache the gateway's key or service account
/// can read — another tenant's prompt included (the `gs://` problem again).
const REFUSED_FIELDS: &[&str] = &["cachedContent", "cached_content"];

/// JSON-schema keys the Gemini `Schema` type rejects.
const UNSUPPORTED_SCHEMA_KEYS: &[&str] = &["$schema", "additionalProperties", "strict"];

/// OpenAI chat request (already validated JSON) → `generateContent` body bytes.
pub fn chat_request_to_generate(openai: &Value) -> Result<Vec<u8>, TranslateError> {
    let req = openai
        .as_object()
        .ok_or_else(|| TranslateError::new("the request body must be a JSON object", None))?;
    refuse_unsupported(req)?;

    let mut out = Map::new();
    let (system, contents) = convert_messages(field(req, "messages"))?;
    out.insert("contents".into(), Value::Array(contents));
    if let Some(system) = system {
        out.insert("systemInstruction".into(), system);
    }

    let tools = convert_tools(field(req, "tools"))?;
    if !tools.is_empty() {
        out.insert(
            "tools".into(),
            json!([{ "functionDeclarations": Value::Array(tools) }]),
        );
        if let Some(config) = convert_tool_choice(field(req, "tool_choice"))? {
            out.insert(
                "toolConfig".into(),
                json!({ "functionCallingConfig": config }),
            );
        }
    }

    let config = generation_config(req)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }

    for (key, value) in req {
        if !OPENAI_CHAT_FIELDS.contains(&key.as_str()) && !out.contains_key(key) {
            if REFUSED_FIELDS.contains(&key.as_str()) {
                return Err(TranslateError::at(
                    key.as_str(),
                    format!(
                        "{key} is not accepted: the provider would use any cached content the \
                         gateway's credentials can reach, on behalf of this client"
                    ),
                ));
            }
            check_passthrough(value, key)?;
            out.insert(key.clone(), value.clone());
        }
    }
    encode(&Value::Object(out))
}

fn encode(v: &Value) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(v)
        .map_err(|e| TranslateError::new(format!("could not encode the request: {e}"), None))
}

fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), TranslateError> {
    if field(req, "logprobs").and_then(Value::as_bool) == Some(true) {
        return Err(TranslateError::at(
            "logprobs",
            "logprobs are not supported for Gemini models",
        ));
    }
    if field(req, "top_logprobs").is_some() {
        return Err(TranslateError::at(
            "top_logprobs",
            "logprobs are not supported for Gemini models",
        ));
    }
    Ok(())
}

fn generation_config(req: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut config = Map::new();
    for (openai, gemini) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = field(req, openai) {
            config.insert(gemini.into(), v.clone());
        }
    }
    let max = match field(req, "max_completion_tokens") {
        Some(v) => Some(positive_int(v, "max_completion_tokens")?),
        None => field(req, "max_tokens")
            .map(|v| positive_int(v, "max_tokens"))
            .transpose()?,
    };
    if let Some(max) = max {
        config.insert("maxOutputTokens".into(), max.into());
    }
    if let Some(stop) = stop_sequences(field(req, "stop"))? {
        config.insert("stopSequences".into(), stop);
    }
    if let Some(n) = field(req, "n") {
        config.insert("candidateCount".into(), positive_int(n, "n")?.into());
    }
    response_format(field(req, "response_format"), &mut config)?;
    if let Some(budget) = reasoning_effort(field(req, "reasoning_effort"))? {
        let thinking = if budget > 0 {
            json!({ "thinkingBudget": budget, "includeThoughts": true })
        } else {
            json!({ "thinkingBudget": 0 })
        };
        config.insert("thinkingConfig".into(), thinking);
    }
    Ok(config)
}

fn response_format(
    format: Option<&Value>,
    config: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    let Some(format) = format else {
        return Ok(());
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), "application/json".into());
            if let Some(schema) = format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .filter(|s| !s.is_null())
            {
                config.insert("responseSchema".into(), clean_schema(schema));
            }
        }
        _ => {
            return Err(TranslateError::at(
                "response_format.type",
                "response_format.type must be text, json_object or json_schema",
            ));
        }
    }
    Ok(())
}

fn reasoning_effort(effort: Option<&Value>) -> Result<Option<u64>, TranslateError> {
    let Some(effort) = effort else {
        return Ok(None);
    };
    Ok(Some(match effort.as_str() {
        Some("none") => 0,
        Some("minimal" | "low") => THINKING_BUDGET_LOW,
        Some("medium") => THINKING_BUDGET_MEDIUM,
        Some("high") => THINKING_BUDGET_HIGH,
        _ => {
            return Err(TranslateError::at(
                "reasoning_effort",
                "reasoning_effort must be one of none, minimal, low, medium, high",
            ));
        }
    }))
}

/// A JSON schema without the keys Gemini rejects, at any depth. Property names (the keys of
/// `properties`, `$defs`, `definitions`) are kept even when they collide with those keys.
pub(crate) fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(obj) => {
            let mut out = Map::with_capacity(obj.len());
            for (key, value) in obj {
                if UNSUPPORTED_SCHEMA_KEYS.contains(&key.as_str()) {
                    continue;
                }
                let cleaned = match (key.as_str(), value) {
                    ("properties" | "$defs" | "definitions", Value::Object(props)) => {
                        Value::Object(
                            props
                                .iter()
                                .map(|(name, s)| (name.clone(), clean_schema(s)))
                                .collect(),
                        )
                    }
                    _ => clean_schema(value),
                };
                out.insert(key.clone(), cleaned);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

/// Returns `systemInstruction` and the merged `contents`.
fn convert_messages(
    messages: Option<&Value>,
) -> Result<(Option<Value>, Vec<Value>), TranslateError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::at("messages", "messages must be an array"))?;

    let mut system: Vec<Value> = Vec::new();
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // tool_call_id → function name, from the assistant messages seen so far.
    let mut call_names: Vec<(String, String)> = Vec::new();

    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let obj = message
            .as_object()
            .ok_or_else(|| TranslateError::at(path.clone(), "each message must be an object"))?;
        let role = field(obj, "role")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::at(format!("{path}.role"), "role is required"))?;
        let (gemini_role, parts) = match role {
            "system" | "developer" => {
                system.extend(parts_of(field(obj, "content"), &path, Parts::TextOnly)?);
                continue;
            }
            "user" => ("user", parts_of(field(obj, "content"), &path, Parts::User)?),
            "assistant" => ("model", assistant_parts(obj, &path, &mut call_names)?),
            "tool" => ("user", vec![function_response(obj, &path, &call_names)?]),
            other => {
                return Err(TranslateError::at(
                    format!("{path}.role"),
                    format!("role '{other}' is not supported for Gemini models"),
                ));
            }
        };
        if parts.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last_role, last_parts)) if *last_role == gemini_role => last_parts.extend(parts),
            _ => out.push((gemini_role, parts)),
        }
    }
    if out.is_empty() {
        return Err(TranslateError::at(
            "messages",
            "messages must contain at least one user or assistant message",
        ));
    }
    let system = (!system.is_empty()).then(|| json!({ "parts": system }));
    let contents = out
        .into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }))
        .collect();
    Ok((system, contents))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    /// system messages: text only.
    TextOnly,
    /// assistant messages: text (refusal parts are dropped).
    Assistant,
    /// user messages: text, images, audio, files.
    User,
}

/// OpenAI message `content` (string or parts) → Gemini parts. Empty texts are skipped.
fn parts_of(
    content: Option<&Value>,
    path: &str,
    allowed: Parts,
) -> Result<Vec<Value>, TranslateError> {
    let items = match content {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![json!({ "text": s })]),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(TranslateError::at(
                format!("{path}.content"),
                "content must be a string or an array of content parts",
            ));
        }
    };
    let mut parts = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let part_path = format!("{path}.content[{j}]");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        let part = match (kind, allowed) {
            ("text", _) => {
                let text = item.get("text").and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::at(format!("{part_path}.text"), "text must be a string")
                })?;
                if text.is_empty() {
                    continue;
                }
                json!({ "text": text })
            }
            ("refusal", Parts::Assistant) => continue,
            ("image_url", Parts::User) => {
                let url = item
                    .get("image_url")
                    .and_then(|i| i.get("url"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::at(
                            format!("{part_path}.image_url.url"),
                            "image_url.url must be a string",
                        )
                    })?;
                media_part(url, &format!("{part_path}.image_url.url"))?
            }
            ("input_audio", Parts::User) => {
                let audio = item.get("input_audio");
                let data = audio.and_then(|a| a.get("data")).and_then(Value::as_str);
                let format = audio.and_then(|a| a.get("format")).and_then(Value::as_str);
                let (Some(data), Some(format)) = (data, format) else {
                    return Err(TranslateError::at(
                        format!("{part_path}.input_audio"),
                        "input_audio needs data and format",
                    ));
                };
                json!({ "inlineData": { "mimeType": format!("audio/{format}"), "data": data } })
            }
            ("file", Parts::User) => {
                let data = item
                    .get("file")
                    .and_then(|f| f.get("file_data"))
                    .and_then(Value::as_str)
                    .filter(|d| d.starts_with("data:"))
                    .ok_or_else(|| {
                        TranslateError::at(
                            format!("{part_path}.file.file_data"),
                            "file parts need file_data as a base64 data: URL for Gemini models",
                        )
                    })?;
                media_part(data, &format!("{part_path}.file.file_data"))?
            }
            _ => {
                return Err(TranslateError::at(
                    format!("{part_path}.type"),
                    format!("content part type '{kind}' is not supported here for Gemini models"),
                ));
            }
        };
        parts.push(part);
    }
    Ok(parts)
}

/// A `data:` URL → `inlineData`; an http(s) URL → `fileData`. Anything else is refused:
/// `gs://` (and other storage schemes) would make Vertex AI read the bucket with the
/// gateway's service-account rights, on behalf of a client who has none.
fn media_part(url: &str, param: &str) -> Result<Value, TranslateError> {
    if let Some((mime, data)) = parse_data_url(url, param)? {
        let mime = if mime.is_empty() {
            "application/octet-stream"
        } else {
            mime
        };
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    if is_http_url(url) {
        return Ok(json!({ "fileData": { "mimeType": guess_mime(url), "fileUri": url } }));
    }
    Err(TranslateError::at(param, format!("{param} {REFUSED_URL}")))
}

const REFUSED_URL: &str = "must be an http(s) URL or a base64 data: URL; gs:// and other \
    storage URLs are refused (the provider would read them with the gateway's credentials)";

fn is_http_url(url: &str) -> bool {
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    lower(8).as_deref() == Some("https://") || lower(7).as_deref() == Some("http://")
}

/// Refuses a pass-through value that names storage the gateway's credentials can read: a
/// `gs://` string anywhere, or a `fileUri` / `file_uri` that is not http(s) (e.g. a raw
/// `systemInstruction` with `fileData` parts).
fn check_passthrough(value: &Value, path: &str) -> Result<(), TranslateError> {
    match value {
        Value::String(s) => {
            if s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("gs://")) {
                return Err(TranslateError::at(path, format!("{path} {REFUSED_URL}")));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_passthrough(item, &format!("{path}[{i}]"))?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{path}.{k}");
                if matches!(k.as_str(), "fileUri" | "file_uri")
                    && !v.as_str().is_some_and(is_http_url)
                {
                    return Err(TranslateError::at(p.clone(), format!("{p} {REFUSED_URL}")));
                }
                check_passthrough(v, &p)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// The MIME type of a URL by its extension (query and fragment ignored), default `image/jpeg`.
fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path
        .rsplit_once('/')
        .map_or(path, |(_, last)| last)
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        Some("pdf") => "application/pdf",
        Some("mp3") => "audio/mp3",
        Some("wav") => "audio/wav",
        Some("mp4") => "video/mp4",
        Some("txt") => "text/plain",
        _ => "image/jpeg",
    }
}

fn assistant_parts(
    msg: &Map<String, Value>,
    path: &str,
    call_names: &mut Vec<(String, String)>,
) -> Result<Vec<Value>, TranslateError> {
    let mut parts = parts_of(field(msg, "content"), path, Parts::Assistant)?;
    if let Some(calls) = field(msg, "tool_calls") {
        let calls = calls.as_array().ok_or_else(|| {
            TranslateError::at(format!("{path}.tool_calls"), "tool_calls must be an array")
        })?;
        for (j, call) in calls.iter().enumerate() {
            let call_path = format!("{path}.tool_calls[{j}]");
            let (id, name, args) = tool_call(call, &call_path)?;
            if let Some(id) = id {
                call_names.push((id.to_owned(), name.to_owned()));
            }
            let mut part = Map::new();
            part.insert("functionCall".into(), json!({ "name": name, "args": args }));
            if let Some(signature) = call_signature(call, id) {
                part.insert("thoughtSignature".into(), Value::String(signature));
            }
            parts.push(Value::Object(part));
        }
    }
    Ok(parts)
}

/// The thought signature of an assistant tool call: encoded in its id (ours, or LiteLLM's),
/// else Google's OpenAI-compatible `extra_content.google.thought_signature`. Only a
/// well-formed base64 string ever comes back ([`signature_from_id`]).
fn call_signature(call: &Value, id: Option<&str>) -> Option<String> {
    id.and_then(signature_from_id).or_else(|| {
        call.get("extra_content")
            .and_then(|e| e.get("google"))
            .and_then(|g| g.get("thought_signature"))
            .and_then(Value::as_str)
            .and_then(normalize_signature)
    })
}

fn function_response(
    msg: &Map<String, Value>,
    path: &str,
    call_names: &[(String, String)],
) -> Result<Value, TranslateError> {
    let id = field(msg, "tool_call_id").and_then(Value::as_str);
    let name = id
        .and_then(|id| call_names.iter().rev().find(|(c, _)| c == id))
        .map(|(_, name)| name.as_str())
        .or_else(|| field(msg, "name").and_then(Value::as_str))
        .ok_or_else(|| {
            TranslateError::at(
                format!("{path}.tool_call_id"),
                "tool messages need the tool_call_id of an earlier assistant tool call",
            )
        })?;
    let text = match field(msg, "content") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let mut text = String::new();
            for (j, item) in items.iter().enumerate() {
                match item.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(item.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    _ => {
                        return Err(TranslateError::at(
                            format!("{path}.content[{j}].type"),
                            "tool message content parts must be text for Gemini models",
                        ));
                    }
                }
            }
            text
        }
        Some(_) => {
            return Err(TranslateError::at(
                format!("{path}.content"),
                "content must be a string or an array of content parts",
            ));
        }
    };
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(obj @ Value::Object(_)) => obj,
        _ => json!({ "content": text }),
    };
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

fn convert_tools(tools: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    let tools = function_tools(tools, "Gemini")?;
    Ok(tools
        .iter()
        .map(|t| {
            let mut decl = Map::new();
            decl.insert("name".into(), t.name.into());
            if let Some(d) = t.description {
                decl.insert("description".into(), d.clone());
            }
            if let Some(params) = t.parameters {
                // Gemini refuses an object schema with empty `properties`: leave it out.
                let empty_object = params.get("type").and_then(Value::as_str) == Some("object")
                    && params
                        .get("properties")
                        .and_then(Value::as_object)
                        .is_none_or(Map::is_empty);
                if !empty_object {
                    decl.insert("parameters".into(), clean_schema(params));
                }
            }
            Value::Object(decl)
        })
        .collect())
}

fn convert_tool_choice(choice: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    let bad = || {
        TranslateError::at(
            "tool_choice",
            "tool_choice must be none, auto, required or a named function",
        )
    };
    Ok(Some(match choice {
        None => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "mode": "AUTO" }),
            "none" => json!({ "mode": "NONE" }),
            "required" => json!({ "mode": "ANY" }),
            _ => return Err(bad()),
        },
        Some(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| obj.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(bad)?;
            json!({ "mode": "ANY", "allowedFunctionNames": [name] })
        }
    }))
}

/// Gemini's embedding task types (`taskType`), as of the API reference.
const TASK_TYPES: &[&str] = &[
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
];

/// OpenAI embeddings request → `batchEmbedContents` body. `upstream_model` is the Gemini
/// model (`text-embedding-004` or `models/text-embedding-004`). `input` must be a string or
/// an array of strings (token arrays are refused: Gemini embeds text). Mapped onto every
/// `EmbedContentRequest`: `dimensions` → `outputDimensionality`; LiteLLM's `task_type` (or
/// Gemini's own `taskType`; case-insensitive, one of Gemini's task types) → `taskType`;
/// `title` (a string) → `title`. `encoding_format` is applied to the response
/// ([`super::batch_response_to_embeddings`]). Every other field (`user`, provider-specific
/// extras) is dropped: `batchEmbedContents` refuses unknown fields.
pub fn embeddings_request_to_batch(
    openai: &Value,
    upstream_model: &str,
) -> Result<Vec<u8>, TranslateError> {
    let req = openai
        .as_object()
        .ok_or_else(|| TranslateError::new("the request body must be a JSON object", None))?;
    let texts: Vec<&str> = match field(req, "input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    TranslateError::at(
                        format!("input[{i}]"),
                        "input must be a string or an array of strings for Gemini models",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(TranslateError::at(
                "input",
                "input must be a string or a non-empty array of strings",
            ));
        }
    };
    let mut shared = Map::new();
    if let Some(d) = field(req, "dimensions") {
        shared.insert(
            "outputDimensionality".into(),
            positive_int(d, "dimensions")?.into(),
        );
    }
    for key in ["task_type", "taskType"] {
        if let Some(v) = field(req, key) {
            let task = v
                .as_str()
                .map(str::to_ascii_uppercase)
                .filter(|t| TASK_TYPES.contains(&t.as_str()))
                .ok_or_else(|| {
                    TranslateError::at(
                        key,
                        format!("{key} must be one of {}", TASK_TYPES.join(", ")),
                    )
                })?;
            shared.insert("taskType".into(), Value::String(task));
        }
    }
    if let Some(v) = field(req, "title") {
        let title = v
            .as_str()
            .ok_or_else(|| TranslateError::at("title", "title must be a string"))?;
        shared.insert("title".into(), Value::String(title.to_owned()));
    }
    let model = if upstream_model.starts_with("models/") {
        upstream_model.to_owned()
    } else {
        format!("models/{upstream_model}")
    };
    let requests: Vec<Value> = texts
        .into_iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), Value::String(model.clone()));
            r.insert("content".into(), json!({ "parts": [{ "text": text }] }));
            r.extend(shared.clone());
            Value::Object(r)
        })
        .collect();
    encode(&json!({ "requests": requests }))
}
