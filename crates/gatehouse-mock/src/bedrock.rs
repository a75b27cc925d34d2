//! Amazon Bedrock Runtime: `POST /model/{modelId}/converse` and
//! `POST /model/{modelId}/converse-stream` (AWS
//! event-stream framing), and `POST /model/{modelId}/invoke` for embedding models ([`invoke`]).
//!
//! Requests must be SigV4-signed for service `bedrock` with credentials registered by the
//! test ([`crate::MockServer::accept_aws_credentials`], `--aws-credentials`): the mock
//! recomputes the signature (`sigv4.rs`: path segments encoded again, body hash, signed
//! headers, session token, 15-minute clock window) and answers 403 as Bedrock does —
//! `MissingAuthenticationTokenException` without a SigV4 `authorization`,
//! `UnrecognizedClientException` "The security token included in the request is invalid."
//! for an unknown key or a wrong session token, `InvalidSignatureException` "The request
//! signature we calculated does not match …" for a wrong signature. Errors are `{"message": …}` with an
//! `x-amzn-errortype` header (`ValidationException`, `AccessDeniedException`,
//! `ResourceNotFoundException`, `ThrottlingException`, `ModelTimeoutException`,
//! `InternalServerException`, `ServiceUnavailableException`, … by status).
//!
//! The `mock` script is read from the body's top level or from
//! `additionalModelRequestFields.mock` (where the gateway's translation puts unknown
//! fields). Replies: `"Hello from mock: <last user text>"`; with `toolConfig.tools` a
//! `toolUse` (`tooluse_mock_<n>`) for the first tool (or the `toolChoice.tool` one; the
//! first two with `mock.parallel`) with placeholder input for its required properties;
//! after `toolResult` blocks `"Hello from mock: tool said <texts>"`;
//! `additionalModelRequestFields.thinking.type == "enabled"` puts `reasoningContent`
//! blocks first: `mock.thinking_blocks` (default 1) signed `reasoningText` blocks
//! (`"Mock thinking."`, then `"Mock thinking, part <k>."`; signature
//! `sig_mock_0_<hash of the text>`), then with `mock.redacted_thinking: true` one
//! `redactedContent` (base64 the mock can recognise). With thinking enabled, `budget_tokens`
//! must be at least 1024 and below `inferenceConfig.maxTokens` (when given), as Claude
//! requires. Reasoning sent back is checked as Claude on Bedrock checks it (400
//! `ValidationException`): every `reasoningText` needs the signature issued for its text,
//! every `redactedContent` must be one the mock issued, and with thinking enabled the last
//! assistant turn that used tools must start with its reasoning. `document` blocks are
//! validated as Converse does (user messages only, beside a `text` block, at most 5 a
//! message; `format` one of pdf, csv, doc, docx, xls, xlsx, html, txt, md; a `name` of 1–200
//! characters — alphanumerics, single spaces, hyphens, parentheses, square brackets —
//! unique in the request; non-empty base64 `source.bytes`), and the reply to a user message
//! with documents names them: `"Hello from mock: <text> [read <name> (<format>, <n>
//! bytes)]"`. `cachePoint` blocks (tools, system, messages) must be `{type: default, ttl?:
//! 5m|1h}`, at most 4; the prefix before the last one is reported as
//! `cacheWriteInputTokens` the first time and `cacheReadInputTokens` after (words, like
//! `inputTokens`, which then holds the rest). Streams send `messageStart`, per block (`contentBlockStart` for tool use)
//! `contentBlockDelta`s (`mock.chunks` pieces) and `contentBlockStop`, `messageStop`,
//! `metadata`, one binary frame each; `mock.stream_error` sends a `throttlingException`
//! frame after the first content delta and ends the body.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::anthropic;
use crate::body::{MockBody, SseStream};
use crate::chat::synth_arguments;
use crate::encode::{Fnv, split_chars, split_words, word_count};
use crate::reply;
use crate::script::{MockScript, Scripted};
use crate::state::MockState;

mod sigv4;

pub use sigv4::AwsTestCredentials;

const ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("application/vnd.amazon.eventstream");
const THINKING_TEXT: &str = "Mock thinking.";
/// The prefix of the `redactedContent` the mock issues: base64 of `redacted_`.
const REDACTED_PREFIX: &str = "cmVkYWN0ZWRf";
/// Document formats Converse takes (`DocumentBlock.format`).
const DOCUMENT_FORMATS: &[&str] = &[
    "pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md",
];

/// The Bedrock-only part of the `mock` object (the rest is [`MockScript`]).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct BedrockScript {
    /// With thinking enabled: this many signed reasoning blocks (default 1).
    thinking_blocks: Option<u32>,
    /// With thinking enabled: a `redactedContent` block after the reasoning.
    redacted_thinking: bool,
}

/// One content block of the reply.
#[derive(Debug)]
enum Block {
    Reasoning {
        text: String,
        signature: String,
    },
    Redacted {
        data: String,
    },
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: String,
    },
}

/// Verifies the request's SigV4 signature against the registered test credentials: a
/// 403 with Bedrock's body (`{"message"}`, `x-amzn-errortype`) when it does not hold.
fn check_signature(
    parts: &Parts,
    body: &[u8],
    id: u64,
    state: &MockState,
) -> Option<Response<MockBody>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let refusal = sigv4::verify(parts, body, &state.aws_credentials(), now).err()?;
    Some(error(
        StatusCode::FORBIDDEN,
        refusal.kind,
        &refusal.message,
        id,
    ))
}

/// Handles a Converse (`stream == false`) or ConverseStream request.
pub(crate) async fn handle(
    stream: bool,
    parts: &Parts,
    body: &[u8],
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    if let Some(refused) = check_signature(parts, body, id, state) {
        return refused;
    }
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return validation(&format!("Malformed input request: {e}"), id),
    };
    let script_value = req.get("mock").or_else(|| {
        req.get("additionalModelRequestFields")
            .and_then(|a| a.get("mock"))
    });
    let script: MockScript = match script_value.map(|v| serde_json::from_value(v.clone())) {
        None => MockScript::default(),
        Some(Ok(s)) => s,
        Some(Err(e)) => return validation(&format!("mock: {e}"), id),
    };
    let extra: BedrockScript = match script_value.map(|v| serde_json::from_value(v.clone())) {
        None => BedrockScript::default(),
        Some(Ok(s)) => s,
        Some(Err(e)) => return validation(&format!("mock: {e}"), id),
    };
    match script.check(state).await {
        Scripted::Proceed => {}
        Scripted::Fail(status) => {
            let mut resp = error(
                status,
                error_type(status),
                &format!("mock error {}", status.as_u16()),
                id,
            );
            if let Some(v) = script
                .retry_after
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
            return resp;
        }
        Scripted::BadStatus => return validation("mock.status: not an HTTP status code", id),
    }
    let messages = match validate(&req) {
        Ok(m) => m,
        Err(message) => return validation(&message, id),
    };
    if let Err(message) = check_documents(messages) {
        return validation(&message, id);
    }
    if thinking_enabled(&req) {
        let thinking = req
            .get("additionalModelRequestFields")
            .and_then(|a| a.get("thinking"));
        let max_tokens = req
            .get("inferenceConfig")
            .and_then(|c| c.get("maxTokens"))
            .and_then(Value::as_u64);
        if let Err(message) = anthropic::check_budget(thinking, max_tokens) {
            return validation(
                &format!("The model returned the following errors: {message}"),
                id,
            );
        }
    }
    if let Err(message) = check_reasoning(&req, messages) {
        return validation(&message, id);
    }
    let cache = match cache_prefix(&req, messages) {
        Ok(c) => c,
        Err(message) => return validation(&message, id),
    };
    let (blocks, stop_reason) = plan(&req, messages, &script, &extra, id);
    let prompt_tokens = script.prompt_tokens(input_tokens(req.get("system"), messages));
    let output_tokens = script.completion_tokens(output_tokens(&blocks));
    let mut usage = json!({
        "inputTokens": prompt_tokens,
        "outputTokens": output_tokens,
        "totalTokens": prompt_tokens.saturating_add(output_tokens),
    });
    if let Some((prefix, cached)) = cache {
        // The cached prefix is billed as a cache write the first time, a read after.
        let cached = cached.min(prompt_tokens);
        let (read, write) = if state.cache_prefix_seen(prefix) {
            (cached, 0)
        } else {
            (0, cached)
        };
        usage["inputTokens"] = json!(prompt_tokens - cached);
        usage["cacheReadInputTokens"] = json!(read);
        usage["cacheWriteInputTokens"] = json!(write);
    }
    let resp = if stream {
        let frames = render_stream(
            &blocks,
            stop_reason,
            &usage,
            script.chunk_count(),
            script.stream_error_event("throttlingException", "mock stream error"),
        );
        let body = SseStream::new(frames, script.chunk_delay(), script.fail_after_chunks);
        reply::response(
            StatusCode::OK,
            EVENT_STREAM,
            MockBody::Stream(Box::new(body)),
            id,
        )
    } else {
        let content: Vec<Value> = blocks.iter().map(block_json).collect();
        let out = json!({
            "output": { "message": { "role": "assistant", "content": content } },
            "stopReason": stop_reason,
            "usage": usage,
            "metrics": { "latencyMs": 0 },
        });
        reply::json_bytes(out.to_string(), id)
    };
    with_request_id(resp, id)
}

/// Checks `messages`: a non-empty array of user/assistant messages with content arrays.
fn validate(req: &Value) -> Result<&[Value], String> {
    let messages = match req.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err("A conversation must start with a user message.".into());
        }
        _ => return Err("1 validation error detected: messages is required".into()),
    };
    for (i, m) in messages.iter().enumerate() {
        if !matches!(
            m.get("role").and_then(Value::as_str),
            Some("user" | "assistant")
        ) {
            return Err(format!(
                "1 validation error detected: Value at 'messages.{}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]",
                i + 1
            ));
        }
        if !m.get("content").is_some_and(Value::is_array) {
            return Err(format!(
                "1 validation error detected: messages.{}.content must be a list",
                i + 1
            ));
        }
    }
    Ok(messages)
}

/// Converse's rules for `document` blocks (`Message.content`, `DocumentBlock`): in user
/// messages only, at most 5 a message, beside a `text` block; a known `format`; a `name` of
/// 1–200 allowed characters (alphanumerics, whitespace — no two in a row — hyphens,
/// parentheses, square brackets), unique in the request; non-empty base64 `source.bytes`.
fn check_documents(messages: &[Value]) -> Result<(), String> {
    let mut names: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let content: &[Value] = m
            .get("content")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let mut documents = 0;
        for (j, doc) in content
            .iter()
            .enumerate()
            .filter_map(|(j, b)| Some((j, b.get("document")?)))
        {
            let at = format!(
                "messages.{}.member.content.{}.member.document",
                i + 1,
                j + 1
            );
            let invalid = |what: &str| format!("1 validation error detected: Value at '{at}{what}");
            if m.get("role").and_then(Value::as_str) != Some("user") {
                return Err(format!(
                    "messages.{i}: documents are only supported in user messages"
                ));
            }
            documents += 1;
            let format = doc.get("format").and_then(Value::as_str).unwrap_or("");
            if !DOCUMENT_FORMATS.contains(&format) {
                return Err(invalid(&format!(
                    ".format' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    DOCUMENT_FORMATS.join(", ")
                )));
            }
            let name = doc.get("name").and_then(Value::as_str).unwrap_or("");
            if !valid_document_name(name) {
                return Err(invalid(
                    ".name' failed to satisfy constraint: Member must have length between 1 and 200 and contain only alphanumeric characters, whitespace characters (no more than one in a row), hyphens, parentheses and square brackets",
                ));
            }
            if names.contains(&name) {
                return Err(format!(
                    "The document name {name} is used more than once in the request: document names must be unique"
                ));
            }
            names.push(name);
            let bytes = doc
                .get("source")
                .and_then(|s| s.get("bytes"))
                .and_then(Value::as_str);
            if bytes.and_then(base64_len).is_none_or(|n| n == 0) {
                return Err(invalid(
                    ".source.bytes' failed to satisfy constraint: Member must be non-empty base64-encoded bytes",
                ));
            }
        }
        if documents > 5 {
            return Err(format!(
                "messages.{i}: a message can include up to 5 documents, found {documents}"
            ));
        }
        if documents > 0 && !content.iter().any(|b| b.get("text").is_some()) {
            return Err(format!(
                "messages.{i}: A conversation that includes a document must also include a text content block in the same message."
            ));
        }
    }
    Ok(())
}

fn valid_document_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " -()[]".contains(c);
    (1..=200).contains(&name.chars().count()) && name.chars().all(allowed) && !name.contains("  ")
}

/// The decoded length of standard base64 text, `None` if it is not base64.
fn base64_len(text: &str) -> Option<usize> {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    let ok = text.len().is_multiple_of(4)
        && padding <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    ok.then(|| text.len() / 4 * 3 - padding)
}

/// ` [read <name> (<format>, <n> bytes)]` for each document of a content array.
fn documents_read(content: Option<&Value>) -> String {
    content
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("document"))
        .map(|d| {
            let get = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
            let bytes = d
                .get("source")
                .and_then(|s| s.get("bytes"))
                .and_then(Value::as_str)
                .and_then(base64_len)
                .unwrap_or(0);
            format!(" [read {} ({}, {bytes} bytes)]", get("name"), get("format"))
        })
        .collect()
}

fn texts(content: Option<&Value>) -> String {
    content
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("")
}

/// The texts of the `toolResult` blocks of a content array, joined by a space.
fn tool_results(content: Option<&Value>) -> Option<String> {
    let blocks = content?.as_array()?;
    let results: Vec<String> = blocks
        .iter()
        .filter_map(|b| b.get("toolResult"))
        .map(|r| {
            let content = r.get("content");
            let text = texts(content);
            if text.is_empty() {
                content
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b.get("json"))
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("")
            } else {
                text
            }
        })
        .collect();
    (!results.is_empty()).then(|| results.join(" "))
}

/// Words of the `text` blocks (each counted on its own) of a content array.
fn text_words(content: Option<&Value>) -> u64 {
    content
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .map(word_count)
        .sum()
}

fn input_tokens(system: Option<&Value>, messages: &[Value]) -> u64 {
    let system = text_words(system);
    let messages: u64 = messages
        .iter()
        .map(|m| {
            let content = m.get("content");
            text_words(content) + tool_results(content).map_or(0, |t| word_count(&t))
        })
        .sum();
    (system + messages).max(1)
}

fn output_tokens(blocks: &[Block]) -> u64 {
    blocks
        .iter()
        .map(|b| match b {
            Block::Reasoning { text, .. } => word_count(text),
            Block::Redacted { .. } => 1,
            Block::Text(t) => word_count(t),
            Block::ToolUse { input, .. } => 1 + word_count(input),
        })
        .sum()
}

/// `additionalModelRequestFields.thinking.type == "enabled"` (Anthropic-on-Bedrock).
fn thinking_enabled(req: &Value) -> bool {
    req.get("additionalModelRequestFields")
        .and_then(|a| a.get("thinking"))
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        == Some("enabled")
}

fn text_hash(text: &str) -> String {
    let mut h = Fnv::new();
    h.write(text.as_bytes());
    format!("{:016x}", h.finish())
}

/// The signature the mock gives a reasoning text, so that it can check, as Bedrock does,
/// that the text comes back with its signature: the Anthropic mock's [`sign`] of the text
/// alone (as request 0, so that a stream and a plain reply carry the same signature).
///
/// [`sign`]: anthropic::sign
fn thinking_signature(text: &str) -> String {
    anthropic::sign(anthropic::SIGNATURE, 0, text)
}

/// The `redactedContent` of reply `id`: [`REDACTED_PREFIX`], `id` and a hash of it in hex
/// (valid base64, 44 characters), so the mock knows its own when it comes back.
fn redacted_data(id: u64) -> String {
    format!(
        "{REDACTED_PREFIX}{id:016x}{}",
        text_hash(&format!("redacted {id}"))
    )
}

fn redacted_matches(data: &str) -> bool {
    data.strip_prefix(REDACTED_PREFIX)
        .and_then(|rest| rest.get(..16))
        .and_then(|n| u64::from_str_radix(n, 16).ok())
        .is_some_and(|id| redacted_data(id) == data)
}

/// Claude's rules for reasoning sent back, as Bedrock reports them (a 400
/// `ValidationException` "The model returned the following errors: …"): every
/// `reasoningText` needs the signature issued for exactly its text; with thinking enabled,
/// an assistant turn that used tools must start with its reasoning.
fn check_reasoning(req: &Value, messages: &[Value]) -> Result<(), String> {
    let refused = |what: String| format!("The model returned the following errors: {what}");
    let assistant = |m: &&Value| m.get("role").and_then(Value::as_str) == Some("assistant");
    for (i, m) in messages.iter().enumerate().filter(|(_, m)| assistant(m)) {
        let blocks = m
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (j, r) in blocks
            .enumerate()
            .filter_map(|(j, b)| Some((j, b.get("reasoningContent")?)))
        {
            if let Some(t) = r.get("reasoningText") {
                let text = t.get("text").and_then(Value::as_str).unwrap_or("");
                match t.get("signature").and_then(Value::as_str) {
                    None | Some("") => {
                        return Err(refused(format!(
                            "messages.{i}.content.{j}.thinking.signature: Field required"
                        )));
                    }
                    Some(sig) if !anthropic::verify(anthropic::SIGNATURE, sig, text) => {
                        return Err(refused(format!(
                            "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                        )));
                    }
                    Some(_) => {}
                }
            } else if let Some(data) = r.get("redactedContent").and_then(Value::as_str) {
                if !redacted_matches(data) {
                    return Err(refused(format!(
                        "messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
                    )));
                }
            } else {
                return Err(format!(
                    "1 validation error detected: messages.{i}.content.{j}.reasoningContent must hold reasoningText or redactedContent"
                ));
            }
        }
    }
    if !thinking_enabled(req) {
        return Ok(());
    }
    let Some((i, last)) = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| assistant(m))
    else {
        return Ok(());
    };
    let content = last.get("content").and_then(Value::as_array);
    let uses_tools = content
        .into_iter()
        .flatten()
        .any(|b| b.get("toolUse").is_some());
    let first = content.and_then(|c| c.first());
    if uses_tools && first.is_none_or(|b| b.get("reasoningContent").is_none()) {
        let found = match first {
            Some(b) if b.get("toolUse").is_some() => "tool_use",
            _ => "text",
        };
        return Err(refused(format!(
            "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`."
        )));
    }
    Ok(())
}

/// Checks the `cachePoint` blocks (in `toolConfig.tools`, `system` and message content:
/// `{type: "default", ttl?: "5m" | "1h"}`, at most 4) and returns the prefix they mark: a
/// hash of everything before the last one, and the input tokens (words) it holds. `None`
/// without cache points. (No minimum prefix length, unlike Bedrock, so tests stay short.)
fn cache_prefix(req: &Value, messages: &[Value]) -> Result<Option<(u64, u64)>, String> {
    let mut h = Fnv::new();
    let mut words = 0u64;
    let mut points = 0usize;
    let mut last = None;
    let mut visit = |where_: &str, blocks: &[Value]| -> Result<(), String> {
        h.write(where_.as_bytes());
        for (j, b) in blocks.iter().enumerate() {
            if let Some(point) = b.get("cachePoint") {
                let ok = point.get("type").and_then(Value::as_str) == Some("default")
                    && point
                        .get("ttl")
                        .is_none_or(|t| matches!(t.as_str(), Some("5m" | "1h")));
                if !ok {
                    return Err(format!(
                        "1 validation error detected: Value at '{where_}.{j}.cachePoint' failed to satisfy constraint: type must be 'default' and ttl '5m' or '1h'"
                    ));
                }
                points += 1;
                last = Some((h.finish(), words));
                continue;
            }
            h.write(b.to_string().as_bytes());
            words += b.get("text").and_then(Value::as_str).map_or(0, word_count);
            if let Some(r) = b.get("toolResult") {
                words += word_count(&texts(r.get("content")));
            }
        }
        Ok(())
    };
    let tools = req
        .get("toolConfig")
        .and_then(|c| c.get("tools"))
        .and_then(Value::as_array);
    visit("toolConfig.tools", tools.map_or(&[], Vec::as_slice))?;
    let system = req.get("system").and_then(Value::as_array);
    visit("system", system.map_or(&[], Vec::as_slice))?;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").and_then(Value::as_array);
        visit(
            &format!("messages.{i}.{role}"),
            content.map_or(&[], Vec::as_slice),
        )?;
    }
    if points > 4 {
        return Err(format!(
            "The model returned the following errors: A maximum of 4 blocks with cache_control may be provided. Found {points}."
        ));
    }
    Ok(last)
}

fn plan(
    req: &Value,
    messages: &[Value],
    script: &MockScript,
    extra: &BedrockScript,
    id: u64,
) -> (Vec<Block>, &'static str) {
    let mut blocks = Vec::new();
    if thinking_enabled(req) {
        for k in 0..extra.thinking_blocks.unwrap_or(1).clamp(1, 8) {
            let text = if k == 0 {
                THINKING_TEXT.to_owned()
            } else {
                format!("Mock thinking, part {}.", k + 1)
            };
            blocks.push(Block::Reasoning {
                signature: thinking_signature(&text),
                text,
            });
        }
        if extra.redacted_thinking {
            blocks.push(Block::Redacted {
                data: redacted_data(id),
            });
        }
    }
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"));
    if let Some(result) = tool_results(last_user) {
        let text = script
            .content
            .clone()
            .unwrap_or_else(|| format!("Hello from mock: tool said {result}"));
        blocks.push(Block::Text(text));
        return (blocks, "end_turn");
    }
    let tools = select_tools(req, script);
    if !tools.is_empty() {
        for (k, tool) in tools.into_iter().enumerate() {
            let spec = tool.get("toolSpec");
            let name = spec
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("tool");
            let schema = spec
                .and_then(|s| s.get("inputSchema"))
                .and_then(|s| s.get("json"));
            let suffix = if k == 0 {
                String::new()
            } else {
                format!("_{k}")
            };
            blocks.push(Block::ToolUse {
                id: format!("tooluse_mock_{id}{suffix}"),
                name: name.to_owned(),
                input: synth_arguments(schema),
            });
        }
        return (blocks, "tool_use");
    }
    let text = script.content.clone().unwrap_or_else(|| {
        format!(
            "Hello from mock: {}{}",
            texts(last_user),
            documents_read(last_user)
        )
    });
    blocks.push(Block::Text(text));
    (blocks, "end_turn")
}

/// The tools to call: the `toolChoice.tool` one, else the first (two with `mock.parallel`).
fn select_tools<'a>(req: &'a Value, script: &MockScript) -> Vec<&'a Value> {
    let config = req.get("toolConfig");
    let Some(tools) = config
        .and_then(|c| c.get("tools"))
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
    else {
        return Vec::new();
    };
    let named = config
        .and_then(|c| c.get("toolChoice"))
        .and_then(|c| c.get("tool"))
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str);
    if let Some(name) = named {
        let by_name = tools.iter().find(|t| {
            t.get("toolSpec")
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                == Some(name)
        });
        return by_name.into_iter().collect();
    }
    let n = if script.parallel == Some(true) { 2 } else { 1 };
    tools.iter().take(n).collect()
}

fn block_json(block: &Block) -> Value {
    match block {
        Block::Reasoning { text, signature } => json!({
            "reasoningContent": { "reasoningText": { "text": text, "signature": signature } },
        }),
        Block::Redacted { data } => json!({ "reasoningContent": { "redactedContent": data } }),
        Block::Text(t) => json!({ "text": t }),
        Block::ToolUse { id, name, input } => {
            let input: Value = serde_json::from_str(input).unwrap_or_else(|_| json!({}));
            json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } })
        }
    }
}

fn event(kind: &str, payload: &Value) -> Bytes {
    Bytes::from(encode_message(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    ))
}

fn render_stream(
    blocks: &[Block],
    stop_reason: &str,
    usage: &Value,
    chunks: usize,
    stream_error: Option<(&str, &str)>,
) -> VecDeque<Bytes> {
    let mut frames = VecDeque::new();
    frames.push_back(event("messageStart", &json!({ "role": "assistant" })));
    let mut content_deltas = 0;
    for (index, block) in blocks.iter().enumerate() {
        let delta = |delta: Value| {
            event(
                "contentBlockDelta",
                &json!({ "contentBlockIndex": index, "delta": delta }),
            )
        };
        match block {
            Block::Reasoning { text, signature } => {
                frames.push_back(delta(json!({ "reasoningContent": { "text": text } })));
                frames.push_back(delta(
                    json!({ "reasoningContent": { "signature": signature } }),
                ));
            }
            Block::Redacted { data } => {
                frames.push_back(delta(
                    json!({ "reasoningContent": { "redactedContent": data } }),
                ));
            }
            Block::Text(text) => {
                for piece in split_words(text, chunks) {
                    frames.push_back(delta(json!({ "text": piece })));
                    content_deltas += 1;
                    if let Some((kind, message)) = stream_error
                        && content_deltas == 1
                    {
                        frames.push_back(Bytes::from(encode_message(
                            &[
                                (":exception-type", kind),
                                (":content-type", "application/json"),
                                (":message-type", "exception"),
                            ],
                            json!({ "message": message }).to_string().as_bytes(),
                        )));
                        return frames;
                    }
                }
            }
            Block::ToolUse { id, name, input } => {
                frames.push_back(event(
                    "contentBlockStart",
                    &json!({ "contentBlockIndex": index, "start": { "toolUse": { "toolUseId": id, "name": name } } }),
                ));
                for piece in split_chars(input, chunks) {
                    frames.push_back(delta(json!({ "toolUse": { "input": piece } })));
                }
            }
        }
        frames.push_back(event(
            "contentBlockStop",
            &json!({ "contentBlockIndex": index }),
        ));
    }
    frames.push_back(event("messageStop", &json!({ "stopReason": stop_reason })));
    frames.push_back(event(
        "metadata",
        &json!({ "usage": usage, "metrics": { "latencyMs": 0 } }),
    ));
    frames
}

/// AWS event-stream framing of one message with string headers (a minimal copy of the
/// gateway's encoder: the mock does not depend on the gateway's crates).
pub(crate) fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hdr = Vec::new();
    for (name, value) in headers {
        let name = name.as_bytes();
        let value = value.as_bytes();
        hdr.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        hdr.extend_from_slice(name.get(..usize::from(u8::MAX)).unwrap_or(name));
        hdr.push(7);
        hdr.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        hdr.extend_from_slice(value.get(..usize::from(u16::MAX)).unwrap_or(value));
    }
    let total = 16 + hdr.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(hdr.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The exception name Bedrock reports for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        s if s >= 500 => "InternalServerException",
        _ => "ValidationException",
    }
}

fn validation(message: &str, id: u64) -> Response<MockBody> {
    error(StatusCode::BAD_REQUEST, "ValidationException", message, id)
}

/// A Bedrock error: `{"message": …}` with `x-amzn-errortype`.
fn error(status: StatusCode, kind: &str, message: &str, id: u64) -> Response<MockBody> {
    let body = json!({ "message": message }).to_string();
    let mut resp = reply::response(status, reply::JSON, MockBody::full(body), id);
    if let Ok(v) = HeaderValue::from_str(kind) {
        resp.headers_mut().insert(ERROR_TYPE, v);
    }
    with_request_id(resp, id)
}

fn with_request_id(mut resp: Response<MockBody>, id: u64) -> Response<MockBody> {
    if let Ok(v) = HeaderValue::from_str(&format!("mock-bedrock-{id}")) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// `POST /model/{modelId}/invoke` for the embedding models (`amazon.titan-embed-text-*`,
/// `cohere.embed-*`; anything else is a 400 `ValidationException`). SigV4 headers are
/// required as for Converse. Titan: `{"inputText", "dimensions"?, "normalize"?}` →
/// `{"embedding", "inputTextTokenCount"}` (words); Cohere: `{"texts", "input_type"}` →
/// `{"embeddings": [[…]], "id", "response_type": "embeddings_floats", "texts"}`. Vectors are
/// the OpenAI path's deterministic ones (8 dimensions unless `dimensions`). A text equal to
/// `"mock-fail"` answers 500 `InternalServerException`, so tests can fail one call of many.
pub(crate) fn invoke(
    model: &str,
    parts: &Parts,
    body: &[u8],
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    if let Some(refused) = check_signature(parts, body, id, state) {
        return refused;
    }
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return validation("Malformed input request: expected a JSON object", id),
    };
    let embed = |text: &str, dim: usize| {
        let mut h = crate::encode::Fnv::new();
        h.write(text.as_bytes());
        crate::encode::vector(h.finish(), dim)
    };
    let fail = || {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "mock error 500",
            id,
        )
    };
    let model = model.replace("%3A", ":");
    if model.contains("amazon.titan-embed-text") {
        if let Some(k) = req.as_object().and_then(|o| {
            o.keys()
                .find(|k| !["inputText", "dimensions", "normalize"].contains(&k.as_str()))
        }) {
            return validation(
                &format!("Malformed input request: extraneous key [{k}] is not permitted"),
                id,
            );
        }
        let Some(text) = req.get("inputText").and_then(Value::as_str) else {
            return validation(
                "Malformed input request: required key [inputText] not found",
                id,
            );
        };
        if text == "mock-fail" {
            return fail();
        }
        let dim = req
            .get("dimensions")
            .and_then(Value::as_u64)
            .unwrap_or(8)
            .clamp(1, 8192);
        let body = json!({
            "embedding": embed(text, dim as usize),
            "inputTextTokenCount": word_count(text),
        });
        with_request_id(reply::json(&body, id), id)
    } else if model.contains("cohere.embed-") {
        let Some(texts) = req
            .get("texts")
            .and_then(Value::as_array)
            .filter(|t| !t.is_empty())
        else {
            return validation(
                "Malformed input request: required key [texts] not found",
                id,
            );
        };
        if req.get("input_type").and_then(Value::as_str).is_none() {
            return validation(
                "Malformed input request: required key [input_type] not found",
                id,
            );
        }
        let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
        if texts.contains(&"mock-fail") {
            return fail();
        }
        let embeddings: Vec<Vec<f32>> = texts.iter().map(|t| embed(t, 8)).collect();
        let body = json!({
            "id": format!("mock-cohere-{id}"),
            "response_type": "embeddings_floats",
            "texts": texts,
            "embeddings": embeddings,
        });
        with_request_id(reply::json(&body, id), id)
    } else {
        validation(
            &format!("The provided model {model} does not support InvokeModel in the mock"),
            id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types() {
        let t = |s: u16| error_type(StatusCode::from_u16(s).unwrap());
        assert_eq!(t(429), "ThrottlingException");
        assert_eq!(t(400), "ValidationException");
        assert_eq!(t(403), "AccessDeniedException");
        assert_eq!(t(500), "InternalServerException");
        assert_eq!(t(503), "ServiceUnavailableException");
    }

    #[test]
    fn redacted_data_is_base64_and_recognised() {
        let data = redacted_data(42);
        assert_eq!(base64_len(&data), Some(33));
        assert!(redacted_matches(&data));
        assert!(!redacted_matches(&redacted_data(42).replace('a', "b")));
        assert!(!redacted_matches("RW5jcnlwdGVk"));
    }

    #[test]
    fn documents_are_validated_as_converse_does() {
        let doc = |name: &str, format: &str, bytes: &str| json!({"document": {"name": name, "format": format, "source": {"bytes": bytes}}});
        let user = |content: Vec<Value>| vec![json!({"role": "user", "content": content})];
        let text = json!({"text": "Summarize"});
        let ok = user(vec![text.clone(), doc("document-1", "pdf", "JVBERi0=")]);
        assert_eq!(check_documents(&ok), Ok(()));
        assert_eq!(
            documents_read(ok[0].get("content")),
            " [read document-1 (pdf, 5 bytes)]"
        );
        for (bad, needle) in [
            (
                user(vec![doc("d", "pdf", "JVBERi0=")]),
                "text content block",
            ),
            (
                user(vec![text.clone(), doc("d", "rtf", "JVBERi0=")]),
                ".format'",
            ),
            (
                user(vec![text.clone(), doc("a.pdf", "pdf", "JVBERi0=")]),
                ".name'",
            ),
            (
                user(vec![text.clone(), doc("a  b", "pdf", "JVBERi0=")]),
                ".name'",
            ),
            (
                user(vec![text.clone(), doc("", "pdf", "JVBERi0=")]),
                ".name'",
            ),
            (
                user(vec![text.clone(), doc("d", "pdf", "not base64!")]),
                ".source.bytes'",
            ),
            (
                user(vec![text.clone(), doc("d", "pdf", "")]),
                ".source.bytes'",
            ),
            (
                user(vec![
                    text.clone(),
                    doc("d", "pdf", "QQ=="),
                    doc("d", "txt", "QQ=="),
                ]),
                "unique",
            ),
            (
                vec![
                    json!({"role": "assistant", "content": [text.clone(), doc("d", "pdf", "QQ==")]}),
                ],
                "user messages",
            ),
            (
                user(
                    (0..6)
                        .map(|k| doc(&format!("d{k}"), "txt", "QQ=="))
                        .chain([text.clone()])
                        .collect(),
                ),
                "up to 5",
            ),
        ] {
            let err = check_documents(&bad).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn encoder_layout() {
        let m = encode_message(&[("a", "b")], b"xy");
        // prelude(12) + header(1+1+1+2+1) + payload(2) + crc(4)
        assert_eq!(m.len(), 24);
        assert_eq!(&m[..4], &24u32.to_be_bytes());
        assert_eq!(&m[4..8], &6u32.to_be_bytes());
        assert_eq!(&m[8..12], &crc32fast::hash(&m[..8]).to_be_bytes());
        assert_eq!(&m[20..], &crc32fast::hash(&m[..20]).to_be_bytes());
    }
}
