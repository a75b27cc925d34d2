//! `POST /v1/messages` (Anthropic's Messages API, plain and streamed, with tool
//! use, thinking and redacted_thinking blocks, prompt-cache usage) and
//! `POST /v1/messages/count_tokens`.
//!
//! With `thinking` enabled, `budget_tokens` must be at least 1024 and below `max_tokens`
//! (else 400, in Anthropic's words). Like Anthropic, the mock signs what it thinks and checks
//! it when it comes back: with `thinking` enabled, every `thinking` block of the request must carry the signature the
//! mock gave its text, every `redacted_thinking` block data the mock issued, and the last
//! assistant message, if it calls tools, must start with one of them (else 400, in
//! Anthropic's words). Signatures are `sig_mock_<n>_<h>` with `h` an FNV-1a hash of a fixed
//! key, `n` and the text: deterministic, bound to the text, and not a secret (a test mock).

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::body::{MockBody, SseStream};
use crate::chat::{content_text, synth_arguments};
use crate::encode::{Fnv, split_chars, split_words, word_count};
use crate::reply;
use crate::script::{MockScript, Scripted};
use crate::state::MockState;

/// Anthropic's request-id header (sent besides `x-request-id`).
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// The text of every thinking block.
pub(crate) const THINKING_TEXT: &str = "Mock thinking.";

/// The fields of a Messages request the mock looks at. Loosely typed so that
/// validation can answer in Anthropic's words.
#[derive(Debug, Deserialize)]
pub(crate) struct MessagesRequest {
    pub model: Option<Value>,
    pub max_tokens: Option<Value>,
    pub messages: Option<Value>,
    pub system: Option<Value>,
    pub stream: Option<bool>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub thinking: Option<Value>,
    pub anthropic_version: Option<Value>,
    pub mock: Option<Value>,
}

/// The Anthropic-only part of the `mock` object (the rest is [`MockScript`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AnthropicScript {
    /// With thinking enabled: a `redacted_thinking` block after the thinking block.
    pub redacted_thinking: bool,
    /// Usage overrides beside `mock.usage.{input_tokens, output_tokens}`.
    pub usage: CacheOverride,
}

/// `mock.usage.cache_creation_input_tokens` / `cache_read_input_tokens`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CacheOverride {
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
}

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    /// `/v1/messages`
    Create,
    /// `/v1/messages/count_tokens`
    CountTokens,
}

/// One content block of the reply.
#[derive(Debug)]
pub(crate) enum Block {
    Thinking {
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Box<RawValue>,
    },
}

/// The planned reply: its blocks and `stop_reason`.
#[derive(Debug)]
pub(crate) struct Plan {
    pub blocks: Vec<Block>,
    pub stop_reason: &'static str,
}

/// The `anthropic_version` Vertex AI requires in the body.
pub(crate) const VERTEX_VERSION: &str = "vertex-2023-10-16";

/// Where a Messages-format request came in.
#[derive(Debug, Clone, Copy)]
enum Api<'a> {
    /// Anthropic's API: headers checked, `model` in the body.
    Anthropic,
    /// Vertex AI's Anthropic publisher (bearer checked by the caller): `model` in the URL
    /// (`None` for `count-tokens`, which takes it in the body); `stream` is whether the
    /// method was `streamRawPredict`.
    Vertex {
        model: Option<&'a str>,
        stream: bool,
    },
}

/// Handles a Messages (or count_tokens) request.
pub(crate) async fn handle(
    op: Op,
    headers: &HeaderMap,
    body: &[u8],
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    if !has_header(headers, "x-api-key") {
        return error(StatusCode::UNAUTHORIZED, "x-api-key header is required", id);
    }
    if !has_header(headers, "anthropic-version") {
        return error(
            StatusCode::BAD_REQUEST,
            "anthropic-version: header is required",
            id,
        );
    }
    serve(op, Api::Anthropic, body, id, state).await
}

/// Handles Vertex AI's `…/publishers/anthropic/models/{rest}`, `rest` being
/// `{model}:rawPredict`, `{model}:streamRawPredict` or `count-tokens:rawPredict`. The body
/// is a Messages request without `model` (with it, for `count-tokens`) and with
/// `anthropic_version: "vertex-2023-10-16"`; `stream: true` must go with (and only with)
/// `streamRawPredict`.
pub(crate) async fn handle_vertex(
    rest: &str,
    body: &[u8],
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    let (op, api) = match rest.split_once(':') {
        Some(("count-tokens", "rawPredict")) => (
            Op::CountTokens,
            Api::Vertex {
                model: None,
                stream: false,
            },
        ),
        Some((model, method @ ("rawPredict" | "streamRawPredict"))) if !model.is_empty() => (
            Op::Create,
            Api::Vertex {
                model: Some(model),
                stream: method == "streamRawPredict",
            },
        ),
        _ => {
            return crate::gemini::error(
                StatusCode::NOT_FOUND,
                &format!("Publisher model {rest} is not found."),
                id,
            );
        }
    };
    serve(op, api, body, id, state).await
}

async fn serve(
    op: Op,
    api: Api<'_>,
    body: &[u8],
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    let mut req: MessagesRequest = match serde_json::from_slice(body) {
        Ok(req) => req,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("There was an error parsing the body of your request: {e}"),
                id,
            );
        }
    };
    let (script, extra) = match req.mock.take() {
        None => (MockScript::default(), AnthropicScript::default()),
        Some(mock) => match (
            MockScript::deserialize(&mock),
            AnthropicScript::deserialize(&mock),
        ) {
            (Ok(script), Ok(extra)) => (script, extra),
            (Err(e), _) | (_, Err(e)) => {
                return error(StatusCode::BAD_REQUEST, &format!("mock: {e}"), id);
            }
        },
    };
    match script.check(state).await {
        Scripted::Proceed => {}
        Scripted::Fail(status) => {
            return scripted_error(status, script.retry_after.as_deref(), id);
        }
        Scripted::BadStatus => {
            return error(
                StatusCode::BAD_REQUEST,
                "mock.status: not an HTTP status code",
                id,
            );
        }
    }
    if let Api::Vertex { model, stream } = api {
        if let Err(message) = check_vertex(&req, model.is_some(), stream) {
            return error(StatusCode::BAD_REQUEST, &message, id);
        }
        if let Some(model) = model {
            req.model = Some(Value::String(model.to_owned()));
        }
    }
    let messages = match validate(&req, op) {
        Ok(m) => m,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message, id),
    };
    if op == Op::Create
        && thinking_enabled(&req)
        && let Err(message) = check_thinking(&req, messages)
    {
        return error(StatusCode::BAD_REQUEST, &message, id);
    }
    let all_tokens = input_tokens(req.system.as_ref(), messages);
    if op == Op::CountTokens {
        let input_tokens = script.prompt_tokens(all_tokens);
        return with_request_id(
            reply::json(&serde_json::json!({ "input_tokens": input_tokens }), id),
            id,
        );
    }
    let requested = req.model.as_ref().and_then(Value::as_str).unwrap_or("");
    let model = script.model.as_deref().unwrap_or(requested);
    let plan = match plan_reply(&req, messages, &script, &extra, id) {
        Ok(plan) => plan,
        Err(e) => return reply::internal_error(&e, id),
    };
    let usage = usage(&req, messages, all_tokens, &plan, &script, &extra, state);
    let msg_id = format!("msg_mock_{id}");
    let env = Envelope { id: &msg_id, model };
    let resp = if req.stream == Some(true) {
        match render_stream(
            &env,
            &plan,
            usage,
            script.chunk_count(),
            script.stream_error_event("overloaded_error", "Overloaded"),
        ) {
            Ok(frames) => {
                let stream = SseStream::new(frames, script.chunk_delay(), script.fail_after_chunks);
                reply::event_stream(MockBody::Stream(Box::new(stream)), id)
            }
            Err(e) => reply::internal_error(&e, id),
        }
    } else {
        match render_message(&env, &plan, usage) {
            Ok(bytes) => reply::json_bytes(bytes, id),
            Err(e) => reply::internal_error(&e, id),
        }
    };
    with_request_id(resp, id)
}

/// Vertex's rules for the body: `anthropic_version` is Vertex's, `model` only for
/// `count-tokens` (the URL names the model otherwise), `stream` matches the method.
fn check_vertex(req: &MessagesRequest, model_in_url: bool, stream: bool) -> Result<(), String> {
    match req.anthropic_version.as_ref().and_then(Value::as_str) {
        Some(VERTEX_VERSION) => {}
        None => return Err("anthropic_version: Field required".into()),
        Some(_) => {
            return Err(format!(
                "anthropic_version: Input should be '{VERTEX_VERSION}'"
            ));
        }
    }
    if model_in_url && req.model.is_some() {
        return Err("model: Extra inputs are not permitted".into());
    }
    match (stream, req.stream == Some(true)) {
        (true, false) => Err("streamRawPredict needs \"stream\": true".into()),
        (false, true) => Err("\"stream\": true needs streamRawPredict".into()),
        _ => Ok(()),
    }
}

fn has_header(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
}

/// Checks `model`, `max_tokens` (not for count_tokens) and `messages`; returns
/// the messages.
fn validate(req: &MessagesRequest, op: Op) -> Result<&[Value], String> {
    match &req.model {
        Some(Value::String(m)) if !m.is_empty() => {}
        None | Some(Value::Null) => return Err("model: Field required".into()),
        Some(_) => return Err("model: Input should be a valid string".into()),
    }
    if op == Op::Create {
        match &req.max_tokens {
            Some(v) if v.as_u64().is_some() => {}
            None | Some(Value::Null) => return Err("max_tokens: Field required".into()),
            Some(_) => return Err("max_tokens: Input should be a valid integer".into()),
        }
    }
    let messages = match &req.messages {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err("messages: at least one message is required".into());
        }
        None | Some(Value::Null) => return Err("messages: Field required".into()),
        Some(_) => return Err("messages: Input should be a valid list".into()),
    };
    for (i, m) in messages.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some("user" | "assistant") => {}
            _ => {
                return Err(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                ));
            }
        }
        match m.get("content") {
            Some(Value::String(_) | Value::Array(_)) => {}
            None | Some(Value::Null) => {
                return Err(format!("messages.{i}.content: Field required"));
            }
            Some(_) => {
                return Err(format!(
                    "messages.{i}.content: Input should be a valid string or list"
                ));
            }
        }
    }
    match &req.system {
        None | Some(Value::Null | Value::String(_) | Value::Array(_)) => {}
        Some(_) => return Err("system: Input should be a valid string or list".into()),
    }
    Ok(messages)
}

/// The texts of the `tool_result` blocks of a content array (each block's
/// content as text), joined by a space; `None` if there are none.
fn tool_results(content: Option<&Value>) -> Option<String> {
    let blocks = content?.as_array()?;
    let mut results = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .peekable();
    results.peek()?;
    let texts: Vec<Cow<'_, str>> = results.map(|b| content_text(b.get("content"))).collect();
    Some(texts.join(" "))
}

/// Words of the system prompt and of every message's text and tool results,
/// at least 1.
pub(crate) fn input_tokens(system: Option<&Value>, messages: &[Value]) -> u64 {
    let system = word_count(&content_text(system));
    let messages: u64 = messages
        .iter()
        .map(|m| {
            let content = m.get("content");
            word_count(&content_text(content)) + tool_results(content).map_or(0, |t| word_count(&t))
        })
        .sum();
    (system + messages).max(1)
}

/// What [`sign`] signs: the text of a thinking block, or (with an empty text) the data of a
/// redacted_thinking block.
pub(crate) const SIGNATURE: &str = "sig_mock";
const REDACTED: &str = "redacted_mock";

/// `<kind>_<n>_<h>`, `h` an FNV-1a hash of a fixed key, `kind`, `n` (the request number)
/// and `text`.
pub(crate) fn sign(kind: &str, n: u64, text: &str) -> String {
    let mut h = Fnv::new();
    h.write(b"gatehouse-mock signing key\0");
    h.write(kind.as_bytes());
    h.write(&n.to_le_bytes());
    h.write(text.as_bytes());
    format!("{kind}_{n}_{:016x}", h.finish())
}

/// True when `signature` is what [`sign`] gave `text` (in any request).
pub(crate) fn verify(kind: &str, signature: &str, text: &str) -> bool {
    let Some(n) = signature
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|rest| rest.split_once('_'))
        .and_then(|(n, _)| n.parse::<u64>().ok())
    else {
        return false;
    };
    sign(kind, n, text) == signature
}

/// `thinking: {"type": "enabled", …}`.
fn thinking_enabled(req: &MessagesRequest) -> bool {
    req.thinking
        .as_ref()
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        == Some("enabled")
}

fn block_type(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

/// Anthropic's checks of a request with thinking enabled: no forced tool; every thinking
/// block signed by the mock for its text, every redacted_thinking block's data issued by
/// the mock; and a last assistant message that calls tools starts with its thinking.
fn check_thinking(req: &MessagesRequest, messages: &[Value]) -> Result<(), String> {
    check_budget(
        req.thinking.as_ref(),
        req.max_tokens.as_ref().and_then(Value::as_u64),
    )?;
    let choice = req.tool_choice.as_ref().and_then(block_type);
    if matches!(choice, Some("any" | "tool")) {
        return Err("Thinking may not be enabled when tool_choice forces tool use.".into());
    }
    let assistant = |m: &Value| m.get("role").and_then(Value::as_str) == Some("assistant");
    for (i, m) in messages.iter().enumerate().filter(|(_, m)| assistant(m)) {
        let blocks = m.get("content").and_then(Value::as_array);
        for (j, b) in blocks.into_iter().flatten().enumerate() {
            let get = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("");
            match block_type(b) {
                Some("thinking") if !verify(SIGNATURE, get("signature"), get("thinking")) => {
                    return Err(format!(
                        "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                    ));
                }
                Some("redacted_thinking") if !verify(REDACTED, get("data"), "") => {
                    return Err(format!(
                        "messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
                    ));
                }
                _ => {}
            }
        }
    }
    let last = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| assistant(m));
    if let Some((i, m)) = last {
        let blocks: &[Value] = m
            .get("content")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let first = blocks.first().and_then(block_type);
        let calls_tools = blocks.iter().any(|b| block_type(b) == Some("tool_use"));
        if calls_tools && !matches!(first, Some("thinking" | "redacted_thinking")) {
            return Err(format!(
                "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`.",
                first.unwrap_or("nothing")
            ));
        }
    }
    Ok(())
}

/// Anthropic's limits on an enabled `thinking` (shared with Claude on Bedrock): a
/// `budget_tokens` of at least 1024, below `max_tokens` (when given).
pub(crate) fn check_budget(
    thinking: Option<&Value>,
    max_tokens: Option<u64>,
) -> Result<(), String> {
    let budget = thinking.and_then(|t| t.get("budget_tokens"));
    let Some(budget) = budget.and_then(Value::as_u64) else {
        return Err("thinking.enabled.budget_tokens: Field required".into());
    };
    if budget < 1024 {
        return Err(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".into(),
        );
    }
    if max_tokens.is_some_and(|m| m <= budget) {
        return Err("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size".into());
    }
    Ok(())
}

/// The prompt-cache prefix: a hash of `tools`, `system` and the messages up to the last
/// block carrying `cache_control` (that key left out), and its words; `None` without
/// such a block.
fn cache_prefix(req: &MessagesRequest, messages: &[Value]) -> Option<(u64, u64)> {
    let mut h = Fnv::new();
    let mut words = 0;
    let mut breakpoint = None;
    let mut add = |role: &str, item: &Value, h: &mut Fnv, words: &mut u64| {
        let mut item = item.clone();
        let marked = match item.as_object_mut() {
            Some(obj) => obj.remove("cache_control").is_some_and(|c| !c.is_null()),
            None => false,
        };
        h.write(role.as_bytes());
        h.write(item.to_string().as_bytes());
        *words += match &item {
            Value::String(s) => word_count(s),
            _ => {
                let text = item.get("text").and_then(Value::as_str).unwrap_or("");
                word_count(text)
                    + if block_type(&item) == Some("tool_result") {
                        word_count(&content_text(item.get("content")))
                    } else {
                        0
                    }
            }
        };
        if marked {
            breakpoint = Some((h.finish(), *words));
        }
    };
    for tool in req.tools.iter().flatten() {
        add("tool", tool, &mut h, &mut words);
    }
    match &req.system {
        Some(Value::Array(blocks)) => blocks
            .iter()
            .for_each(|b| add("system", b, &mut h, &mut words)),
        Some(system) => add("system", system, &mut h, &mut words),
        None => {}
    }
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        match m.get("content") {
            Some(Value::Array(blocks)) => {
                blocks.iter().for_each(|b| add(role, b, &mut h, &mut words))
            }
            Some(content) => add(role, content, &mut h, &mut words),
            None => {}
        }
    }
    breakpoint
}

/// The reply's usage: words in and out; the prompt-cache prefix (see [`cache_prefix`])
/// counted as `cache_creation_input_tokens` the first time this server sees it and as
/// `cache_read_input_tokens` after, and not in `input_tokens`; then the `mock.usage`
/// overrides.
fn usage(
    req: &MessagesRequest,
    messages: &[Value],
    all_tokens: u64,
    plan: &Plan,
    script: &MockScript,
    extra: &AnthropicScript,
    state: &MockState,
) -> UsageOut {
    let (mut creation, mut read) = (0, 0);
    if let Some((hash, words)) = cache_prefix(req, messages).filter(|(_, w)| *w > 0) {
        // The fail_times counter doubles as the cache: true only the first time.
        if state.should_fail(&format!("anthropic-prompt-cache:{hash:016x}"), 1) {
            creation = words;
        } else {
            read = words;
        }
    }
    let input = all_tokens.saturating_sub(creation).saturating_sub(read);
    UsageOut {
        input_tokens: script.prompt_tokens(input),
        output_tokens: script.completion_tokens(output_tokens(plan)),
        cache_creation_input_tokens: extra.usage.cache_creation_input_tokens.unwrap_or(creation),
        cache_read_input_tokens: extra.usage.cache_read_input_tokens.unwrap_or(read),
    }
}

/// Words of text and thinking blocks (1 for a redacted one); one per tool use plus the
/// words of its input.
pub(crate) fn output_tokens(plan: &Plan) -> u64 {
    plan.blocks
        .iter()
        .map(|b| match b {
            Block::Thinking { .. } => word_count(THINKING_TEXT),
            Block::RedactedThinking { .. } => 1,
            Block::Text(t) => word_count(t),
            Block::ToolUse { input, .. } => 1 + word_count(input.get()),
        })
        .sum()
}

/// Decides the reply: an optional thinking block, then a tool-result
/// acknowledgement, tool use, or an echo of the last user message.
pub(crate) fn plan_reply(
    req: &MessagesRequest,
    messages: &[Value],
    script: &MockScript,
    extra: &AnthropicScript,
    id: u64,
) -> serde_json::Result<Plan> {
    let mut blocks = Vec::new();
    if thinking_enabled(req) {
        blocks.push(Block::Thinking {
            signature: sign(SIGNATURE, id, THINKING_TEXT),
        });
        if extra.redacted_thinking {
            blocks.push(Block::RedactedThinking {
                data: sign(REDACTED, id, ""),
            });
        }
    }
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"));
    if let Some(result) = tool_results(last_user) {
        blocks.push(Block::Text(
            script
                .content
                .clone()
                .unwrap_or_else(|| format!("Hello from mock: tool said {result}")),
        ));
        return Ok(Plan {
            blocks,
            stop_reason: "end_turn",
        });
    }
    let tools = select_tools(req, script);
    if !tools.is_empty() {
        for (i, (name, schema)) in tools.into_iter().enumerate() {
            blocks.push(Block::ToolUse {
                id: if i == 0 {
                    format!("toolu_mock_{id}")
                } else {
                    format!("toolu_mock_{id}_{i}")
                },
                name: name.to_owned(),
                input: RawValue::from_string(synth_arguments(schema))?,
            });
        }
        return Ok(Plan {
            blocks,
            stop_reason: "tool_use",
        });
    }
    blocks.push(Block::Text(script.content.clone().unwrap_or_else(|| {
        format!("Hello from mock: {}", content_text(last_user))
    })));
    Ok(Plan {
        blocks,
        stop_reason: "end_turn",
    })
}

/// The tools to use, as (name, input schema): none without tools or with
/// `tool_choice.type == "none"`; the named one for `"tool"`; else the first —
/// or the first two with `mock.parallel` unless `disable_parallel_tool_use`.
fn select_tools<'a>(
    req: &'a MessagesRequest,
    script: &MockScript,
) -> Vec<(&'a str, Option<&'a Value>)> {
    let Some(tools) = req.tools.as_deref().filter(|t| !t.is_empty()) else {
        return Vec::new();
    };
    let named: Vec<(&str, Option<&Value>)> = tools
        .iter()
        .filter_map(|t| Some((t.get("name")?.as_str()?, t.get("input_schema"))))
        .collect();
    let choice = req.tool_choice.as_ref();
    match choice.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("none") => return Vec::new(),
        Some("tool") => {
            if let Some(name) = choice.and_then(|c| c.get("name")).and_then(Value::as_str) {
                let schema = named.iter().find(|(n, _)| *n == name).and_then(|(_, s)| *s);
                return vec![(name, schema)];
            }
        }
        _ => {}
    }
    let disabled = choice
        .and_then(|c| c.get("disable_parallel_tool_use"))
        .and_then(Value::as_bool)
        == Some(true);
    let parallel = !disabled && script.parallel == Some(true) && named.len() >= 2;
    named
        .into_iter()
        .take(if parallel { 2 } else { 1 })
        .collect()
}

/// Fields shared by the message and its stream.
pub(crate) struct Envelope<'a> {
    pub id: &'a str,
    pub model: &'a str,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct UsageOut {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

impl UsageOut {
    #[cfg(test)]
    fn new(input_tokens: u64, output_tokens: u64) -> Self {
        UsageOut {
            input_tokens,
            output_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
        }
    }
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<BlockOut<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    usage: UsageOut,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockOut<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
    },
}

/// A `content_block_delta` payload; serialised as `{"type": "<kind>_delta", …}`.
#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaOut<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

#[derive(Serialize)]
struct MessageDeltaOut {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// One stream event; serialised with its `type` tag.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: MessageOut<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: BlockOut<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: usize,
        delta: DeltaOut<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDeltaOut,
        usage: OutputUsage,
    },
    MessageStop,
    Error {
        error: ErrorObject<'a>,
    },
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::Ping => "ping",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Error { .. } => "error",
        }
    }
}

fn block_out(block: &Block) -> BlockOut<'_> {
    match block {
        Block::Thinking { signature } => BlockOut::Thinking {
            thinking: THINKING_TEXT,
            signature,
        },
        Block::RedactedThinking { data } => BlockOut::RedactedThinking { data },
        Block::Text(text) => BlockOut::Text { text },
        Block::ToolUse { id, name, input } => BlockOut::ToolUse { id, name, input },
    }
}

/// A `message` object.
pub(crate) fn render_message(
    env: &Envelope<'_>,
    plan: &Plan,
    usage: UsageOut,
) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&MessageOut {
        id: env.id,
        kind: "message",
        role: "assistant",
        model: env.model,
        content: plan.blocks.iter().map(block_out).collect(),
        stop_reason: Some(plan.stop_reason),
        stop_sequence: None,
        usage,
    })
}

/// Collects `event: …\ndata: …\n\n` frames.
struct Frames<'a> {
    frames: VecDeque<Bytes>,
    /// Send an error event of this type and message after the first content delta.
    fail_after_first_delta: Option<(&'a str, &'a str)>,
    /// Set once that error event has been sent: the stream ends there.
    ended: bool,
}

impl Frames<'_> {
    fn push(&mut self, event: &Event<'_>) -> serde_json::Result<()> {
        if self.ended {
            return Ok(());
        }
        let name = event.name();
        let mut buf = Vec::with_capacity(160);
        buf.extend_from_slice(b"event: ");
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b"\ndata: ");
        serde_json::to_writer(&mut buf, event)?;
        buf.extend_from_slice(b"\n\n");
        self.frames.push_back(Bytes::from(buf));
        if let Some((kind, message)) = self.fail_after_first_delta
            && matches!(event, Event::ContentBlockDelta { .. })
        {
            self.push(&Event::Error {
                error: ErrorObject { kind, message },
            })?;
            self.ended = true;
        }
        Ok(())
    }

    fn delta(&mut self, index: usize, delta: DeltaOut<'_>) -> serde_json::Result<()> {
        self.push(&Event::ContentBlockDelta { index, delta })
    }
}

/// The SSE frames of a streamed reply: `message_start`, `ping`, per block
/// `content_block_start` / deltas (split in `pieces`) / `content_block_stop`,
/// `message_delta`, `message_stop`. With `stream_error` (its type and message), an
/// `error` event follows the first delta and the stream ends there.
pub(crate) fn render_stream(
    env: &Envelope<'_>,
    plan: &Plan,
    usage: UsageOut,
    pieces: usize,
    stream_error: Option<(&str, &str)>,
) -> serde_json::Result<VecDeque<Bytes>> {
    let mut f = Frames {
        frames: VecDeque::with_capacity(plan.blocks.len() * (pieces + 2) + 4),
        fail_after_first_delta: stream_error,
        ended: false,
    };
    f.push(&Event::MessageStart {
        message: MessageOut {
            id: env.id,
            kind: "message",
            role: "assistant",
            model: env.model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: UsageOut {
                output_tokens: 1,
                ..usage
            },
        },
    })?;
    f.push(&Event::Ping)?;
    let empty_input = RawValue::from_string("{}".to_owned())?;
    for (index, block) in plan.blocks.iter().enumerate() {
        let start = match block {
            Block::Thinking { .. } => BlockOut::Thinking {
                thinking: "",
                signature: "",
            },
            // Sent whole in its start event, as Anthropic does.
            Block::RedactedThinking { data } => BlockOut::RedactedThinking { data },
            Block::Text(_) => BlockOut::Text { text: "" },
            Block::ToolUse { id, name, .. } => BlockOut::ToolUse {
                id,
                name,
                input: &empty_input,
            },
        };
        f.push(&Event::ContentBlockStart {
            index,
            content_block: start,
        })?;
        match block {
            Block::Thinking { signature } => {
                for piece in split_words(THINKING_TEXT, pieces) {
                    f.delta(index, DeltaOut::Thinking { thinking: piece })?;
                }
                f.delta(index, DeltaOut::Signature { signature })?;
            }
            Block::RedactedThinking { .. } => {}
            Block::Text(text) => {
                for piece in split_words(text, pieces) {
                    f.delta(index, DeltaOut::Text { text: piece })?;
                }
            }
            Block::ToolUse { input, .. } => {
                for piece in split_chars(input.get(), pieces) {
                    f.delta(
                        index,
                        DeltaOut::InputJson {
                            partial_json: piece,
                        },
                    )?;
                }
            }
        }
        f.push(&Event::ContentBlockStop { index })?;
    }
    f.push(&Event::MessageDelta {
        delta: MessageDeltaOut {
            stop_reason: plan.stop_reason,
            stop_sequence: None,
        },
        usage: OutputUsage {
            output_tokens: usage.output_tokens,
        },
    })?;
    f.push(&Event::MessageStop)?;
    Ok(f.frames)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorObject<'a>,
    request_id: &'a str,
}

/// Anthropic's error `type` for an HTTP status.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// Adds `request-id: req_mock_<id>`.
fn with_request_id(mut resp: Response<MockBody>, id: u64) -> Response<MockBody> {
    if let Ok(v) = HeaderValue::try_from(format!("req_mock_{id}")) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// An Anthropic-format error:
/// `{"type":"error","error":{"type","message"},"request_id"}`, the type
/// following the status.
pub(crate) fn error(status: StatusCode, message: &str, id: u64) -> Response<MockBody> {
    let request_id = format!("req_mock_{id}");
    let body = ErrorBody {
        kind: "error",
        error: ErrorObject {
            kind: error_type(status),
            message,
        },
        request_id: &request_id,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
        br#"{"type":"error","error":{"type":"api_error","message":"mock error"}}"#.to_vec()
    });
    with_request_id(
        reply::response(status, reply::JSON, MockBody::full(bytes), id),
        id,
    )
}

/// The reply to a scripted failure: `mock error <status>`, plus `retry-after`.
fn scripted_error(status: StatusCode, retry_after: Option<&str>, id: u64) -> Response<MockBody> {
    let mut resp = error(status, &format!("mock error {}", status.as_u16()), id);
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(v: Value) -> Plan {
        let mut req: MessagesRequest = serde_json::from_value(v).unwrap();
        let mock = req.mock.take().unwrap_or(json!({}));
        let script = MockScript::deserialize(&mock).unwrap();
        let extra = AnthropicScript::deserialize(&mock).unwrap();
        let messages = validate(&req, Op::Create).unwrap().to_vec();
        plan_reply(&req, &messages, &script, &extra, 9).unwrap()
    }

    fn texts(p: &Plan) -> Vec<String> {
        p.blocks
            .iter()
            .map(|b| match b {
                Block::Thinking { signature } => format!("thinking:{signature}"),
                Block::RedactedThinking { data } => format!("redacted:{data}"),
                Block::Text(t) => format!("text:{t}"),
                Block::ToolUse { id, name, input } => format!("tool:{id}:{name}:{}", input.get()),
            })
            .collect()
    }

    #[test]
    fn plans() {
        let p = plan(json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}]}));
        assert_eq!(texts(&p), ["text:Hello from mock: hi there"]);
        assert_eq!(p.stop_reason, "end_turn");

        let tools = json!([
            {"name": "a", "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
            {"name": "b", "input_schema": {"type": "object"}}
        ]);
        let msgs = json!([{"role": "user", "content": "q"}]);
        let p = plan(
            json!({"model": "m", "max_tokens": 5, "messages": msgs, "tools": tools,
            "thinking": {"type": "enabled", "budget_tokens": 1024}}),
        );
        assert_eq!(
            texts(&p),
            [
                format!("thinking:{}", sign(SIGNATURE, 9, THINKING_TEXT)),
                r#"tool:toolu_mock_9:a:{"x":1}"#.to_owned()
            ]
        );
        let p = plan(
            json!({"model": "m", "max_tokens": 5, "messages": msgs, "tools": tools,
            "thinking": {"type": "enabled", "budget_tokens": 1024}, "mock": {"redacted_thinking": true}}),
        );
        assert_eq!(p.blocks.len(), 3);
        assert_eq!(texts(&p)[1], format!("redacted:{}", sign(REDACTED, 9, "")));
        assert_eq!(p.stop_reason, "tool_use");
        let p = plan(
            json!({"model": "m", "max_tokens": 5, "messages": msgs, "tools": tools,
            "tool_choice": {"type": "tool", "name": "b"}}),
        );
        assert_eq!(texts(&p), ["tool:toolu_mock_9:b:{}"]);
        let p = plan(
            json!({"model": "m", "max_tokens": 5, "messages": msgs, "tools": tools,
            "tool_choice": {"type": "none"}}),
        );
        assert_eq!(texts(&p), ["text:Hello from mock: q"]);
        let p = plan(
            json!({"model": "m", "max_tokens": 5, "messages": msgs, "tools": tools,
            "mock": {"parallel": true}}),
        );
        assert_eq!(p.blocks.len(), 2);
        let p = plan(json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "a", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]}]}
        ], "tools": tools}));
        assert_eq!(texts(&p), ["text:Hello from mock: tool said sunny"]);
    }

    #[test]
    fn validation() {
        let check = |v: Value| {
            let req: MessagesRequest = serde_json::from_value(v).unwrap();
            validate(&req, Op::Create).map(<[Value]>::len)
        };
        assert_eq!(
            check(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})),
            Err("max_tokens: Field required".into())
        );
        assert!(check(json!({"max_tokens": 1, "messages": []})).is_err());
        assert!(check(json!({"model": "m", "max_tokens": 1, "messages": []})).is_err());
        assert!(
            check(json!({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}))
                .is_err()
        );
        assert_eq!(
            check(
                json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})
            ),
            Ok(1)
        );
    }

    #[test]
    fn token_counts() {
        let msgs = vec![
            json!({"role": "user", "content": "one two"}),
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "three"}]}),
        ];
        assert_eq!(input_tokens(Some(&json!("sys tem")), &msgs), 5);
        assert_eq!(
            input_tokens(
                Some(&json!([{"type": "text", "text": "a"}])),
                &[json!({"role": "user", "content": ""})]
            ),
            1
        );
    }

    #[test]
    fn error_types() {
        let t = |s: u16| error_type(StatusCode::from_u16(s).unwrap());
        assert_eq!(t(400), "invalid_request_error");
        assert_eq!(t(401), "authentication_error");
        assert_eq!(t(403), "permission_error");
        assert_eq!(t(404), "not_found_error");
        assert_eq!(t(409), "invalid_request_error");
        assert_eq!(t(413), "request_too_large");
        assert_eq!(t(429), "rate_limit_error");
        assert_eq!(t(500), "api_error");
        assert_eq!(t(503), "api_error");
        assert_eq!(t(529), "overloaded_error");
    }

    #[test]
    fn stream_error_cuts_after_first_delta() {
        let p = Plan {
            blocks: vec![Block::Text("a b c".into())],
            stop_reason: "end_turn",
        };
        let env = Envelope {
            id: "msg_1",
            model: "m",
        };
        let frames = render_stream(
            &env,
            &p,
            UsageOut::new(1, 3),
            3,
            Some(("overloaded_error", "Overloaded")),
        )
        .unwrap();
        let names: Vec<&str> = frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(f).unwrap();
                s.strip_prefix("event: ")
                    .unwrap()
                    .split('\n')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "error"
            ]
        );
        assert_eq!(
            frames.back().unwrap().as_ref(),
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
        );
    }

    #[test]
    fn signatures_are_bound_to_text_and_kind() {
        let sig = sign(SIGNATURE, 42, THINKING_TEXT);
        assert!(sig.starts_with("sig_mock_42_"), "{sig}");
        assert!(verify(SIGNATURE, &sig, THINKING_TEXT));
        assert!(!verify(SIGNATURE, &sig, ""), "an emptied text");
        assert!(!verify(SIGNATURE, &sig, "Mock thinking!"));
        assert!(!verify(SIGNATURE, "", THINKING_TEXT));
        assert!(!verify(
            SIGNATURE,
            "sig_mock_42_0000000000000000",
            THINKING_TEXT
        ));
        assert!(!verify(SIGNATURE, "sig_mock_x_1", THINKING_TEXT));
        assert!(
            !verify(REDACTED, &sig, THINKING_TEXT),
            "a signature is not redacted data"
        );
        let data = sign(REDACTED, 7, "");
        assert!(verify(REDACTED, &data, ""));
        assert!(!verify(REDACTED, &data.replace('7', "8"), ""));
    }

    fn thinking_check(messages: Value, tool_choice: Value) -> Result<(), String> {
        let req: MessagesRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": messages, "tool_choice": tool_choice}))
        .unwrap();
        let messages = validate(&req, Op::Create).unwrap().to_vec();
        check_thinking(&req, &messages)
    }

    #[test]
    fn thinking_replays_are_checked_as_anthropic_does() {
        let thinking = json!({"type": "thinking", "thinking": THINKING_TEXT, "signature": sign(SIGNATURE, 3, THINKING_TEXT)});
        let redacted = json!({"type": "redacted_thinking", "data": sign(REDACTED, 3, "")});
        let tool_use = json!({"type": "tool_use", "id": "t1", "name": "a", "input": {}});
        let turn = |assistant: Value| {
            json!([{"role": "user", "content": "q"},
                   {"role": "assistant", "content": assistant},
                   {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}])
        };
        assert_eq!(
            thinking_check(turn(json!([thinking, redacted, tool_use])), Value::Null),
            Ok(())
        );
        assert_eq!(
            thinking_check(turn(json!([redacted, tool_use])), Value::Null),
            Ok(())
        );
        // No thinking before the tool call.
        let e = thinking_check(turn(json!([tool_use])), Value::Null).unwrap_err();
        assert!(
            e.starts_with("messages.1.content.0.type: Expected `thinking`"),
            "{e}"
        );
        // The text emptied (what a replay of a streamed answer used to send).
        let mut emptied = thinking.clone();
        emptied["thinking"] = json!("");
        let e = thinking_check(turn(json!([emptied, tool_use])), Value::Null).unwrap_err();
        assert_eq!(
            e,
            "messages.1.content.0: Invalid `signature` in `thinking` block"
        );
        let mut unsigned = thinking.clone();
        unsigned["signature"] = json!("");
        assert!(thinking_check(turn(json!([unsigned, tool_use])), Value::Null).is_err());
        let mut bad = redacted.clone();
        bad["data"] = json!("EmwKAhgB");
        let e = thinking_check(turn(json!([thinking, bad, tool_use])), Value::Null).unwrap_err();
        assert_eq!(
            e,
            "messages.1.content.1: Invalid `data` in `redacted_thinking` block"
        );
        // A plain text history needs no thinking; a forced tool is refused.
        let plain = json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]);
        assert_eq!(thinking_check(plain.clone(), Value::Null), Ok(()));
        assert!(thinking_check(plain, json!({"type": "any"})).is_err());
    }

    #[test]
    fn prompt_cache_writes_then_reads() {
        let state = MockState::new();
        let body = |question: &str| {
            json!({"model": "m", "max_tokens": 5,
                "system": [{"type": "text", "text": "a long shared system prompt", "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": question}]})
        };
        let usage_of = |v: Value| {
            let mut req: MessagesRequest = serde_json::from_value(v).unwrap();
            let mock = req.mock.take().unwrap_or(json!({}));
            let script = MockScript::deserialize(&mock).unwrap();
            let extra = AnthropicScript::deserialize(&mock).unwrap();
            let messages = validate(&req, Op::Create).unwrap().to_vec();
            let p = plan_reply(&req, &messages, &script, &extra, 1).unwrap();
            let all = input_tokens(req.system.as_ref(), &messages);
            serde_json::to_value(usage(&req, &messages, all, &p, &script, &extra, &state)).unwrap()
        };
        let first = usage_of(body("first question"));
        assert_eq!(first["cache_creation_input_tokens"], 5);
        assert_eq!(first["cache_read_input_tokens"], 0);
        assert_eq!(first["input_tokens"], 2);
        let second = usage_of(body("another question here"));
        assert_eq!(second["cache_creation_input_tokens"], 0);
        assert_eq!(second["cache_read_input_tokens"], 5);
        assert_eq!(second["input_tokens"], 3);
        // No breakpoint, no cache; scripted numbers win.
        let plain = usage_of(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x y"}]}),
        );
        assert_eq!(plain["cache_read_input_tokens"], 0);
        assert_eq!(plain["cache_creation_input_tokens"], 0);
        let mut scripted = body("q");
        scripted["mock"] = json!({"usage": {"input_tokens": 9, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7}});
        let u = usage_of(scripted);
        assert_eq!(
            (
                u["input_tokens"].as_u64(),
                u["cache_read_input_tokens"].as_u64(),
                u["cache_creation_input_tokens"].as_u64()
            ),
            (Some(9), Some(100), Some(7))
        );
    }
}
