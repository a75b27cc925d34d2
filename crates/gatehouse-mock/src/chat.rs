//! `POST /chat/completions`: deterministic replies, tool calls and SSE streams.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::body::{MockBody, SseStream};
use crate::encode::{split_chars, split_words, word_count};
use crate::reply;
use crate::script::MockScript;
use crate::state::MockState;

/// The fields of a chat completion request the mock looks at.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    pub model: Option<String>,
    pub messages: Option<Vec<ChatMessage>>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub mock: Option<MockScript>,
    /// Output limits: reported completion tokens never exceed them (as with a real provider).
    pub max_tokens: Option<Value>,
    pub max_completion_tokens: Option<Value>,
    /// Choices asked for: the output limit holds per choice, and OpenAI bills the tokens of
    /// all of them, so reported completion tokens are capped at `n × max_tokens`.
    pub n: Option<Value>,
}

/// One input message (only role and content matter here).
#[derive(Debug, Deserialize)]
pub(crate) struct ChatMessage {
    pub role: Option<String>,
    pub content: Option<Value>,
}

/// `stream_options`.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// What the assistant answers.
#[derive(Debug, PartialEq)]
pub(crate) enum Reply {
    /// Text content, `finish_reason: "stop"`.
    Text(String),
    /// Tool calls, `finish_reason: "tool_calls"`.
    Tools(Vec<ToolCall>),
}

/// One synthesised tool call.
#[derive(Debug, PartialEq)]
pub(crate) struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of the arguments object.
    pub arguments: String,
}

/// Token usage as reported in responses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// Handles a chat completion request body. `deployment` is the Azure deployment
/// (used as the model when the body has none).
pub(crate) async fn handle(
    body: &[u8],
    deployment: Option<&str>,
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    let mut req: ChatRequest = match serde_json::from_slice(body) {
        Ok(req) => req,
        Err(e) => return reply::unparsable(&e, id),
    };
    let script = req.mock.take().unwrap_or_default();
    if let Err(resp) = script.before_reply(state, id).await {
        return resp;
    }
    let Some(model) = req.model.as_deref().or(deployment) else {
        return reply::bad_request("you must provide a model parameter", Some("model"), id);
    };
    let messages = match req.messages.as_deref() {
        Some(m) if !m.is_empty() => m,
        Some(_) => {
            return reply::bad_request(
                "'messages' must contain at least one message",
                Some("messages"),
                id,
            );
        }
        None => {
            return reply::bad_request(
                "Missing required parameter: 'messages'.",
                Some("messages"),
                id,
            );
        }
    };

    let answer = plan_reply(&req, messages, &script, id);
    let limit = req
        .max_completion_tokens
        .as_ref()
        .or(req.max_tokens.as_ref())
        .and_then(Value::as_u64)
        .map_or(u64::MAX, |per_choice| {
            let n = req.n.as_ref().and_then(Value::as_u64).unwrap_or(1).max(1);
            per_choice.saturating_mul(n)
        });
    let usage = Usage::new(
        script.prompt_tokens(prompt_tokens(messages)),
        script
            .completion_tokens(completion_tokens(&answer))
            .min(limit),
    );
    let out = Envelope {
        id: &format!("chatcmpl-mock-{id}"),
        created: unix_now(),
        model: script.model.as_deref().unwrap_or(model),
    };
    if req.stream == Some(true) {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        match render_stream(&out, &answer, usage, include_usage, script.chunk_count()) {
            Ok(frames) => {
                let stream = SseStream::new(frames, script.chunk_delay(), script.fail_after_chunks);
                reply::event_stream(MockBody::Stream(Box::new(stream)), id)
            }
            Err(e) => reply::internal_error(&e, id),
        }
    } else {
        match render_completion(&out, &answer, usage) {
            Ok(bytes) => reply::json_bytes(bytes, id),
            Err(e) => reply::internal_error(&e, id),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The text of a message content: a string, or the concatenated `text` of the
/// parts of an array content.
pub(crate) fn content_text(content: Option<&Value>) -> Cow<'_, str> {
    match content {
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(Value::Array(parts)) => {
            let mut texts = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str));
            match (texts.next(), texts.next()) {
                (None, _) => Cow::Borrowed(""),
                (Some(only), None) => Cow::Borrowed(only),
                (Some(a), Some(b)) => {
                    let mut s = String::from(a);
                    s.push_str(b);
                    texts.for_each(|t| s.push_str(t));
                    Cow::Owned(s)
                }
            }
        }
        _ => Cow::Borrowed(""),
    }
}

/// Words across all message text contents, at least 1.
pub(crate) fn prompt_tokens(messages: &[ChatMessage]) -> u64 {
    messages
        .iter()
        .map(|m| word_count(&content_text(m.content.as_ref())))
        .sum::<u64>()
        .max(1)
}

/// Words in the reply text; for tool calls, one per call plus the words of its
/// arguments.
pub(crate) fn completion_tokens(reply: &Reply) -> u64 {
    match reply {
        Reply::Text(text) => word_count(text),
        Reply::Tools(calls) => calls.iter().map(|c| 1 + word_count(&c.arguments)).sum(),
    }
}

/// Decides the reply: a tool result gets acknowledged, tools get called, else
/// the last user message is echoed.
pub(crate) fn plan_reply(
    req: &ChatRequest,
    messages: &[ChatMessage],
    script: &MockScript,
    id: u64,
) -> Reply {
    if let Some(last) = messages.last()
        && last.role.as_deref() == Some("tool")
    {
        return Reply::Text(script.content.clone().unwrap_or_else(|| {
            format!(
                "Hello from mock: tool said {}",
                content_text(last.content.as_ref())
            )
        }));
    }
    let tools = select_tools(req, script);
    if !tools.is_empty() {
        let calls = tools
            .into_iter()
            .enumerate()
            .map(|(i, (name, params))| ToolCall {
                id: if i == 0 {
                    format!("call_mock_{id}")
                } else {
                    format!("call_mock_{id}_{i}")
                },
                name: name.to_owned(),
                arguments: synth_arguments(params),
            })
            .collect();
        return Reply::Tools(calls);
    }
    Reply::Text(script.content.clone().unwrap_or_else(|| {
        let user = messages
            .iter()
            .rev()
            .find(|m| m.role.as_deref() == Some("user"))
            .map(|m| content_text(m.content.as_ref()))
            .unwrap_or_default();
        format!("Hello from mock: {user}")
    }))
}

/// The function tools to call, as (name, parameters schema): none when there
/// are no tools or `tool_choice` is `"none"`; the named one for a named
/// `tool_choice`; else the first — or the first two when `mock.parallel` is set,
/// `parallel_tool_calls` is not false and there are at least two.
fn select_tools<'a>(
    req: &'a ChatRequest,
    script: &MockScript,
) -> Vec<(&'a str, Option<&'a Value>)> {
    let Some(tools) = req.tools.as_deref().filter(|t| !t.is_empty()) else {
        return Vec::new();
    };
    let functions: Vec<(&str, Option<&Value>)> = tools
        .iter()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some((f.get("name")?.as_str()?, f.get("parameters")))
        })
        .collect();
    match &req.tool_choice {
        Some(Value::String(s)) if s == "none" => return Vec::new(),
        Some(Value::Object(choice)) => {
            let named = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| choice.get("name"))
                .and_then(Value::as_str);
            if let Some(name) = named {
                let params = functions
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, p)| *p);
                return vec![(name, params)];
            }
        }
        _ => {}
    }
    let parallel = req.parallel_tool_calls != Some(false)
        && script.parallel == Some(true)
        && functions.len() >= 2;
    functions
        .into_iter()
        .take(if parallel { 2 } else { 1 })
        .collect()
}

/// Arguments JSON for a function: one entry per `required` property of the
/// `parameters` schema, in `required` order, with a placeholder value of the
/// property's type; `{}` if nothing is required.
pub(crate) fn synth_arguments(params: Option<&Value>) -> String {
    let mut out = String::from("{");
    let required = params
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array);
    let properties = params.and_then(|p| p.get("properties"));
    let mut seen: Vec<&str> = Vec::new();
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if seen.contains(&name) {
            continue;
        }
        if !seen.is_empty() {
            out.push(',');
        }
        seen.push(name);
        out.push_str(&Value::from(name).to_string());
        out.push(':');
        out.push_str(&placeholder(properties.and_then(|p| p.get(name)), 0).to_string());
    }
    out.push('}');
    out
}

/// A value that fits a property schema: its first `enum` value or `const`, else
/// by `type` — string "mock", number/integer 1, boolean true, array [], object {}.
fn placeholder(schema: Option<&Value>, depth: u8) -> Value {
    let Some(schema) = schema else {
        return Value::from("mock");
    };
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or(Some("null")),
        _ => None,
    };
    match ty {
        Some("string") => Value::from("mock"),
        Some("number" | "integer") => Value::from(1),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => Value::Object(serde_json::Map::new()),
        Some("null") => Value::Null,
        _ => {
            // anyOf / oneOf: the first alternative that is not null.
            let alternative = ["anyOf", "oneOf"]
                .iter()
                .filter_map(|k| schema.get(*k).and_then(Value::as_array))
                .flatten()
                .find(|s| s.get("type").and_then(Value::as_str) != Some("null"));
            match alternative {
                Some(alt) if depth < 8 => placeholder(Some(alt), depth + 1),
                _ => Value::from("mock"),
            }
        }
    }
}

/// Fields shared by a response and all its chunks.
pub(crate) struct Envelope<'a> {
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
}

const FINGERPRINT: &str = "fp_mock";

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: [Choice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCallOut<'a>>>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

fn finish_reason(reply: &Reply) -> &'static str {
    match reply {
        Reply::Text(_) => "stop",
        Reply::Tools(_) => "tool_calls",
    }
}

/// A `chat.completion` object.
pub(crate) fn render_completion(
    env: &Envelope<'_>,
    reply: &Reply,
    usage: Usage,
) -> serde_json::Result<Vec<u8>> {
    let message = match reply {
        Reply::Text(text) => Message {
            role: "assistant",
            content: Some(text),
            refusal: None,
            tool_calls: None,
        },
        Reply::Tools(calls) => Message {
            role: "assistant",
            content: None,
            refusal: None,
            tool_calls: Some(
                calls
                    .iter()
                    .map(|c| ToolCallOut {
                        id: &c.id,
                        kind: "function",
                        function: FunctionOut {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
            ),
        },
    };
    serde_json::to_vec(&Completion {
        id: env.id,
        object: "chat.completion",
        created: env.created,
        model: env.model,
        system_fingerprint: FINGERPRINT,
        choices: [Choice {
            index: 0,
            message,
            logprobs: None,
            finish_reason: finish_reason(reply),
        }],
        usage,
    })
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent, `null` (`Some(None)`), or the usage object.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Collects SSE frames of `chat.completion.chunk` objects.
struct Frames<'a> {
    env: &'a Envelope<'a>,
    include_usage: bool,
    frames: VecDeque<Bytes>,
}

impl Frames<'_> {
    fn push_chunk(
        &mut self,
        choices: &[ChunkChoice<'_>],
        usage: Option<Usage>,
    ) -> serde_json::Result<()> {
        let chunk = Chunk {
            id: self.env.id,
            object: "chat.completion.chunk",
            created: self.env.created,
            model: self.env.model,
            system_fingerprint: FINGERPRINT,
            choices,
            usage: self.include_usage.then_some(usage),
        };
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut buf, &chunk)?;
        buf.extend_from_slice(b"\n\n");
        self.frames.push_back(Bytes::from(buf));
        Ok(())
    }

    fn push_delta(
        &mut self,
        delta: Delta<'_>,
        finish_reason: Option<&'static str>,
    ) -> serde_json::Result<()> {
        self.push_chunk(
            &[ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            None,
        )
    }
}

/// The SSE frames of a streamed reply: a role chunk, the content (or tool call)
/// chunks split in `pieces`, a finish chunk, the usage chunk if asked, `[DONE]`.
pub(crate) fn render_stream(
    env: &Envelope<'_>,
    reply: &Reply,
    usage: Usage,
    include_usage: bool,
    pieces: usize,
) -> serde_json::Result<VecDeque<Bytes>> {
    let mut f = Frames {
        env,
        include_usage,
        frames: VecDeque::with_capacity(pieces + 4),
    };
    let role_content = match reply {
        Reply::Text(_) => Some(""),
        Reply::Tools(_) => None,
    };
    f.push_delta(
        Delta {
            role: Some("assistant"),
            content: Some(role_content),
            ..Delta::default()
        },
        None,
    )?;
    match reply {
        Reply::Text(text) => {
            for piece in split_words(text, pieces) {
                f.push_delta(
                    Delta {
                        content: Some(Some(piece)),
                        ..Delta::default()
                    },
                    None,
                )?;
            }
        }
        Reply::Tools(calls) => {
            for (index, call) in calls.iter().enumerate() {
                f.push_delta(
                    Delta {
                        tool_calls: Some([ToolCallDelta {
                            index,
                            id: Some(&call.id),
                            kind: Some("function"),
                            function: FunctionDelta {
                                name: Some(&call.name),
                                arguments: "",
                            },
                        }]),
                        ..Delta::default()
                    },
                    None,
                )?;
                for piece in split_chars(&call.arguments, pieces) {
                    f.push_delta(
                        Delta {
                            tool_calls: Some([ToolCallDelta {
                                index,
                                id: None,
                                kind: None,
                                function: FunctionDelta {
                                    name: None,
                                    arguments: piece,
                                },
                            }]),
                            ..Delta::default()
                        },
                        None,
                    )?;
                }
            }
        }
    }
    f.push_delta(Delta::default(), Some(finish_reason(reply)))?;
    if include_usage {
        f.push_chunk(&[], Some(usage))?;
    }
    f.frames.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
    Ok(f.frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    fn plan(v: Value) -> Reply {
        let mut req = request(v);
        let script = req.mock.take().unwrap_or_default();
        let messages = req.messages.take().unwrap();
        plan_reply(&req, &messages, &script, 9)
    }

    fn weather_tools() -> Value {
        json!([
            {"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city", "days", "unit"]}}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
        ])
    }

    #[test]
    fn echoes_last_user_message() {
        let r = plan(json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "there"}]}
        ]}));
        assert_eq!(r, Reply::Text("Hello from mock: hi there".into()));
    }

    #[test]
    fn content_override() {
        let r = plan(
            json!({"messages": [{"role": "user", "content": "x"}], "mock": {"content": "custom"}}),
        );
        assert_eq!(r, Reply::Text("custom".into()));
    }

    #[test]
    fn calls_first_tool_with_synthesised_arguments() {
        let r = plan(
            json!({"messages": [{"role": "user", "content": "weather?"}], "tools": weather_tools()}),
        );
        assert_eq!(
            r,
            Reply::Tools(vec![ToolCall {
                id: "call_mock_9".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"mock","days":1,"unit":"c"}"#.into(),
            }])
        );
    }

    #[test]
    fn tool_choice_variants() {
        let msgs = json!([{"role": "user", "content": "q"}]);
        let none = plan(json!({"messages": msgs, "tools": weather_tools(), "tool_choice": "none"}));
        assert_eq!(none, Reply::Text("Hello from mock: q".into()));

        let named = plan(json!({"messages": msgs, "tools": weather_tools(),
            "tool_choice": {"type": "function", "function": {"name": "get_time"}}}));
        let Reply::Tools(calls) = named else { panic!() };
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "get_time");
        assert_eq!(calls[0].arguments, "{}");

        let empty = plan(json!({"messages": msgs, "tools": []}));
        assert!(matches!(empty, Reply::Text(_)));
    }

    #[test]
    fn parallel_calls() {
        let msgs = json!([{"role": "user", "content": "q"}]);
        let Reply::Tools(calls) =
            plan(json!({"messages": msgs, "tools": weather_tools(), "mock": {"parallel": true}}))
        else {
            panic!()
        };
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].id, "call_mock_9");
        assert_eq!(calls[1].id, "call_mock_9_1");
        assert_eq!(calls[1].name, "get_time");

        let Reply::Tools(calls) = plan(json!({"messages": msgs, "tools": weather_tools(),
            "parallel_tool_calls": false, "mock": {"parallel": true}}))
        else {
            panic!()
        };
        assert_eq!(calls.len(), 1);
    }

    #[test]
    fn tool_result_completes_round_trip() {
        let r = plan(json!({"messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_mock_1", "content": "sunny"}
        ], "tools": weather_tools()}));
        assert_eq!(r, Reply::Text("Hello from mock: tool said sunny".into()));
    }

    #[test]
    fn argument_synthesis() {
        assert_eq!(synth_arguments(None), "{}");
        assert_eq!(synth_arguments(Some(&json!({"type": "object"}))), "{}");
        let schema = json!({
            "type": "object",
            "properties": {
                "s": {"type": "string"}, "n": {"type": "number"}, "i": {"type": "integer"},
                "b": {"type": "boolean"}, "a": {"type": "array"}, "o": {"type": "object"},
                "opt": {"type": ["null", "integer"]}, "any": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
                "k": {"const": "fixed"}, "q\"x": {"type": "string"}
            },
            "required": ["s", "n", "i", "b", "a", "o", "opt", "any", "k", "missing", "q\"x", "s"]
        });
        let args = synth_arguments(Some(&schema));
        assert_eq!(
            args,
            r#"{"s":"mock","n":1,"i":1,"b":true,"a":[],"o":{},"opt":1,"any":true,"k":"fixed","missing":"mock","q\"x":"mock"}"#
        );
        let _: Value = serde_json::from_str(&args).unwrap();
    }

    #[test]
    fn token_counts() {
        let req = request(json!({"messages": [
            {"role": "system", "content": "one two"},
            {"role": "user", "content": [{"type": "text", "text": "three four five"}]}
        ]}));
        assert_eq!(prompt_tokens(req.messages.as_deref().unwrap()), 5);
        let empty = request(json!({"messages": [{"role": "user", "content": ""}]}));
        assert_eq!(prompt_tokens(empty.messages.as_deref().unwrap()), 1);
        assert_eq!(
            completion_tokens(&Reply::Text("Hello from mock: x".into())),
            4
        );
    }

    fn env() -> Envelope<'static> {
        Envelope {
            id: "chatcmpl-mock-9",
            created: 1_700_000_000,
            model: "gpt-x",
        }
    }

    #[test]
    fn completion_shape() {
        let bytes = render_completion(&env(), &Reply::Text("hi".into()), Usage::new(2, 1)).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "chatcmpl-mock-9", "object": "chat.completion", "created": 1_700_000_000,
                "model": "gpt-x", "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "refusal": null},
                             "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
            })
        );
    }

    #[test]
    fn tool_completion_shape() {
        let reply = Reply::Tools(vec![ToolCall {
            id: "call_mock_9".into(),
            name: "f".into(),
            arguments: "{}".into(),
        }]);
        let v: Value =
            serde_json::from_slice(&render_completion(&env(), &reply, Usage::new(1, 1)).unwrap())
                .unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v["choices"][0]["message"],
            json!({"role": "assistant", "content": null, "refusal": null,
                   "tool_calls": [{"id": "call_mock_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})
        );
    }

    fn parse_frames(frames: &VecDeque<Bytes>) -> Vec<Value> {
        let last = frames.back().unwrap();
        assert_eq!(last.as_ref(), b"data: [DONE]\n\n");
        frames
            .iter()
            .take(frames.len() - 1)
            .map(|f| {
                let s = std::str::from_utf8(f).unwrap();
                let json = s
                    .strip_prefix("data: ")
                    .unwrap()
                    .strip_suffix("\n\n")
                    .unwrap();
                serde_json::from_str(json).unwrap()
            })
            .collect()
    }

    #[test]
    fn text_stream_frames() {
        let reply = Reply::Text("Hello from mock: a b c".into());
        let frames = render_stream(&env(), &reply, Usage::new(3, 6), false, 3).unwrap();
        let chunks = parse_frames(&frames);
        assert_eq!(chunks.len(), 1 + 3 + 1);
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "chatcmpl-mock-9")
        );
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        let text: String = chunks[1..4]
            .iter()
            .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(text, "Hello from mock: a b c");
        assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
        assert!(
            chunks[..4]
                .iter()
                .all(|c| c["choices"][0]["finish_reason"].is_null())
        );
    }

    #[test]
    fn text_stream_with_usage() {
        let reply = Reply::Text("a b".into());
        let frames = render_stream(&env(), &reply, Usage::new(3, 2), true, 3).unwrap();
        let chunks = parse_frames(&frames);
        // role, 2 content (only 2 words), finish, usage
        assert_eq!(chunks.len(), 5);
        assert!(
            chunks[..4]
                .iter()
                .all(|c| c["usage"].is_null() && c.get("usage").is_some())
        );
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(
            chunks[4]["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
        );
    }

    #[test]
    fn tool_stream_frames() {
        let reply = Reply::Tools(vec![ToolCall {
            id: "call_mock_9".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"mock"}"#.into(),
        }]);
        let frames = render_stream(&env(), &reply, Usage::new(1, 2), false, 3).unwrap();
        let chunks = parse_frames(&frames);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": null})
        );
        assert_eq!(
            chunks[1]["choices"][0]["delta"]["tool_calls"],
            json!([{"index": 0, "id": "call_mock_9", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
        );
        let args: String = chunks[2..5]
            .iter()
            .map(|c| {
                let tc = &c["choices"][0]["delta"]["tool_calls"][0];
                assert_eq!(tc["index"], 0);
                assert!(tc.get("id").is_none());
                tc["function"]["arguments"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(args, r#"{"city":"mock"}"#);
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks.len(), 6);
    }
}
