//! Google's Gemini API (`v1beta`): `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` and `:batchEmbedContents`.
//!
//! Requests need a non-empty `x-goog-api-key` header (else 401 `UNAUTHENTICATED`); a
//! `key=` query parameter is refused with 400 `INVALID_ARGUMENT` ("API key must be sent in
//! a header"), so tests can prove the gateway never puts keys in URLs. Errors, scripted
//! ones included, have Google's shape `{"error":{"code","message","status"}}` (400
//! `INVALID_ARGUMENT`, 401 `UNAUTHENTICATED`, 403 `PERMISSION_DENIED`, 404 `NOT_FOUND`,
//! 409 `ABORTED`, 429 `RESOURCE_EXHAUSTED`, 500 `INTERNAL`, 503 `UNAVAILABLE`, 504
//! `DEADLINE_EXCEEDED`, other 4xx `FAILED_PRECONDITION`, other 5xx `UNKNOWN`).
//!
//! The reply is one candidate: `"Hello from mock: " + <text of the last user content>`;
//! `"Hello from mock: tool said <response.content, or the response as JSON>"` when the last
//! part of the last content is a `functionResponse`; with `tools` (function declarations)
//! and `toolConfig.functionCallingConfig.mode` not `NONE`, a `functionCall` of the first
//! declaration (or the first of `allowedFunctionNames`; the first two with `mock.parallel`)
//! with placeholder `args` for its required properties. `thinkingConfig.includeThoughts`
//! puts a thought part (`"Mock thinking."`, `thought: true`) first. `finishReason` is
//! `STOP`; `mock.safety_block: true` answers a candidate with `finishReason: "SAFETY"`, a
//! blocked `safetyRatings` entry and no content; `mock.prompt_block: "<reason>"` (e.g.
//! `"SAFETY"`) answers no candidates at all, only `promptFeedback: {blockReason,
//! safetyRatings}` and the prompt's usage, as Gemini does for a blocked prompt (streamed:
//! one frame). Usage counts words (`promptTokenCount` over the system instruction and all
//! text parts, `candidatesTokenCount` over the reply, `thoughtsTokenCount` for the thought).
//!
//! Thought signatures, as Gemini 3 documents them: the first `functionCall` part of every
//! reply carries a `thoughtSignature` (standard base64 of a value derived from the call's
//! name and arguments, so the mock can recognise its own). For models whose name starts
//! with `gemini-3`, a request whose current turn (the contents after the last `user`
//! content holding something other than `functionResponse` parts) has a `model` content
//! whose first `functionCall` part lacks that signature is refused with 400
//! `INVALID_ARGUMENT` ("… is missing a `thought_signature`"), and one with a signature the
//! mock did not issue for that call with 400 "Corrupted thought signature.".
//!
//! Streaming sends `data: {GenerateContentResponse}\r\n\r\n` frames like Google: the thought
//! (if any), then the text split in `mock.chunks` pieces (function calls whole, one frame);
//! the last frame carries `finishReason` and `usageMetadata`. `mock.stream_error` sends a
//! 503 `UNAVAILABLE` error frame after the first content frame and ends there. Without
//! `alt=sse` the stream endpoint answers 400.
//!
//! Embeddings answer `{"embeddings":[{"values":[…]}]}`, the same deterministic vectors as
//! the OpenAI path (8 dimensions unless `outputDimensionality`); every
//! `requests[i].model` must be `models/<model of the URL>`. Like Gemini, the mock refuses
//! unknown fields (`Invalid JSON payload received. Unknown name "…"`): the body holds only
//! `requests`, each request only `model`, `content`, `taskType` (one of Gemini's task
//! types), `title` and `outputDimensionality`.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::body::{MockBody, SseStream};
use crate::chat::synth_arguments;
use crate::encode::{Fnv, split_words, vector, word_count};
use crate::reply;
use crate::script::{MockScript, Scripted};
use crate::state::MockState;

/// The text of the thought part.
const THINKING_TEXT: &str = "Mock thinking.";
/// Where the Gemini routes live.
pub(crate) const PATH_PREFIX: &str = "/v1beta/models/";
const DEFAULT_DIMENSIONS: u64 = 8;
/// Gemini's `TaskType` values.
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
const MAX_DIMENSIONS: u64 = 65_536;

/// Which API a Gemini-format request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// The Gemini API: `x-goog-api-key` required; `role` optional.
    Gemini,
    /// Vertex AI: the bearer token was checked by the caller; `role` required on every content.
    Vertex,
}

/// Handles `POST /v1beta/models/{rest}` (or Vertex's `…/publishers/google/models/{rest}`),
/// `rest` being `{model}:{method}`.
pub(crate) async fn handle(
    api: Api,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    let params: Vec<(&str, &str)> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .collect();
    if params.iter().any(|(k, _)| *k == "key") {
        return error(
            StatusCode::BAD_REQUEST,
            "API key must be sent in a header (x-goog-api-key), not in the URL",
            id,
        );
    }
    let Some((model, method)) = rest.split_once(':').filter(|(m, _)| !m.is_empty()) else {
        return not_found(rest, id);
    };
    let method = match method {
        "generateContent" => Method::Generate,
        "streamGenerateContent" => Method::Stream,
        "batchEmbedContents" if api == Api::Gemini => Method::Embed,
        _ => return not_found(rest, id),
    };
    let has_key = headers
        .get("x-goog-api-key")
        .is_some_and(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace));
    if !has_key && api == Api::Gemini {
        return error(
            StatusCode::UNAUTHORIZED,
            "Request is missing required authentication credential: x-goog-api-key.",
            id,
        );
    }
    if method == Method::Stream && !params.contains(&("alt", "sse")) {
        return error(
            StatusCode::BAD_REQUEST,
            "the mock only streams with alt=sse",
            id,
        );
    }
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid JSON payload received.",
                id,
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON payload received. {e}"),
                id,
            );
        }
    };
    let mock = req.get("mock");
    let script: MockScript = mock
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    match script.check(state).await {
        Scripted::Proceed => {}
        Scripted::Fail(status) => {
            let mut resp = error(status, &format!("mock error {}", status.as_u16()), id);
            if let Some(v) = script
                .retry_after
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
            return resp;
        }
        Scripted::BadStatus => {
            return error(
                StatusCode::BAD_REQUEST,
                "mock.status: not an HTTP status code",
                id,
            );
        }
    }
    let flag = |name: &str| mock.and_then(|m| m.get(name)).and_then(Value::as_bool) == Some(true);
    match method {
        Method::Embed => embed(model, &req, id),
        Method::Generate | Method::Stream => {
            let contents = match validate(&req, api == Api::Vertex) {
                Ok(c) => c,
                Err(message) => return error(StatusCode::BAD_REQUEST, &message, id),
            };
            if model.starts_with("gemini-3")
                && let Err(message) = check_signatures(contents)
            {
                return error(StatusCode::BAD_REQUEST, &message, id);
            }
            let prompt = script.prompt_tokens(prompt_tokens(&req, contents));
            let env = Envelope {
                model: script.model.as_deref().unwrap_or(model),
                response_id: format!("mock-{id}"),
            };
            if let Some(reason) = mock
                .and_then(|m| m.get("prompt_block"))
                .and_then(Value::as_str)
            {
                let blocked = env.blocked(reason, prompt);
                return if method == Method::Stream {
                    let frames = std::collections::VecDeque::from([frame(&blocked)]);
                    let stream =
                        SseStream::new(frames, script.chunk_delay(), script.fail_after_chunks);
                    reply::event_stream(MockBody::Stream(Box::new(stream)), id)
                } else {
                    reply::json(&blocked, id)
                };
            }
            let plan = plan_reply(&req, contents, &script, flag("safety_block"));
            let completion = script.completion_tokens(plan.completion_tokens());
            let usage = usage(prompt, completion, plan.thought);
            if method == Method::Stream {
                let frames = render_stream(
                    &env,
                    &plan,
                    &usage,
                    script.chunk_count(),
                    script.stream_error_text("The model is overloaded. Please try again later."),
                );
                let stream = SseStream::new(frames, script.chunk_delay(), script.fail_after_chunks);
                reply::event_stream(MockBody::Stream(Box::new(stream)), id)
            } else {
                reply::json(
                    &env.response(plan.parts(), Some(plan.finish), Some(&usage)),
                    id,
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Generate,
    Stream,
    Embed,
}

/// Google's `status` for an HTTP status code.
pub(crate) fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "UNKNOWN",
        _ => "FAILED_PRECONDITION",
    }
}

fn error_body(status: StatusCode, message: &str) -> Value {
    json!({ "error": { "code": status.as_u16(), "message": message, "status": status_name(status) } })
}

/// A Google-format error.
pub(crate) fn error(status: StatusCode, message: &str, id: u64) -> Response<MockBody> {
    let bytes = serde_json::to_vec(&error_body(status, message)).unwrap_or_else(|_| {
        br#"{"error":{"code":500,"message":"mock error","status":"INTERNAL"}}"#.to_vec()
    });
    reply::response(status, reply::JSON, MockBody::full(bytes), id)
}

fn not_found(rest: &str, id: u64) -> Response<MockBody> {
    error(
        StatusCode::NOT_FOUND,
        &format!("models/{rest} is not found for API version v1beta"),
        id,
    )
}

/// Checks `contents`: a non-empty array of `{role: user|model, parts: [..]}` (`role`
/// required when `role_required`, as on Vertex).
fn validate(req: &Value, role_required: bool) -> Result<&[Value], String> {
    let contents = match req.get("contents") {
        Some(Value::Array(c)) if !c.is_empty() => c,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err("* GenerateContentRequest.contents: contents is not specified".into());
        }
        Some(_) => return Err("Invalid value at 'contents'".into()),
    };
    for (i, c) in contents.iter().enumerate() {
        match c.get("role").and_then(Value::as_str) {
            None if role_required => {
                return Err(format!(
                    "Please use a valid role: user, model. (contents[{i}].role is missing)"
                ));
            }
            None | Some("user" | "model") => {}
            Some(other) => {
                return Err(format!(
                    "Please use a valid role: user, model. (contents[{i}].role: {other})"
                ));
            }
        }
        match c.get("parts") {
            Some(Value::Array(p)) if !p.is_empty() => {}
            _ => {
                return Err(format!(
                    "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
                ));
            }
        }
    }
    Ok(contents)
}

fn parts(content: &Value) -> &[Value] {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn text_of(content: &Value) -> String {
    parts(content)
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect()
}

/// Words of the system instruction and every text part, at least 1.
fn prompt_tokens(req: &Value, contents: &[Value]) -> u64 {
    let system = req
        .get("systemInstruction")
        .map_or(0, |s| word_count(&text_of(s)));
    let contents: u64 = contents.iter().map(|c| word_count(&text_of(c))).sum();
    (system + contents).max(1)
}

/// The planned candidate.
#[derive(Debug)]
struct Plan {
    thought: bool,
    text: Option<String>,
    /// `(name, args JSON)`
    calls: Vec<(String, Value)>,
    finish: &'static str,
}

impl Plan {
    fn completion_tokens(&self) -> u64 {
        let text = self.text.as_deref().map_or(0, word_count);
        let calls: u64 = self
            .calls
            .iter()
            .map(|(_, args)| 1 + word_count(&args.to_string()))
            .sum();
        text + calls
    }

    fn parts(&self) -> Vec<Value> {
        let mut parts = Vec::new();
        if self.thought {
            parts.push(json!({ "text": THINKING_TEXT, "thought": true }));
        }
        if let Some(text) = &self.text {
            parts.push(json!({ "text": text }));
        }
        parts.extend(call_parts(&self.calls));
        parts
    }
}

/// The `functionCall` parts of a reply; the first carries its thought signature.
fn call_parts(calls: &[(String, Value)]) -> Vec<Value> {
    calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            let mut part = Map::new();
            part.insert("functionCall".into(), json!({ "name": name, "args": args }));
            if i == 0 {
                part.insert(
                    "thoughtSignature".into(),
                    thought_signature(name, args).into(),
                );
            }
            Value::Object(part)
        })
        .collect()
}

/// The signature the mock gives a call: standard base64 (with `+`, `/` and padding) of a
/// value derived from its name and arguments.
fn thought_signature(name: &str, args: &Value) -> String {
    let mut h = Fnv::new();
    h.write(name.as_bytes());
    h.write(&[0]);
    h.write(args.to_string().as_bytes());
    let mut bytes = vec![0xfb, 0xef, 0xff];
    bytes.extend_from_slice(format!("mock-thought:{:016x}", h.finish()).as_bytes());
    crate::encode::base64_encode(&bytes)
}

/// Gemini 3's rule: in the current turn, the first `functionCall` part of every model
/// content must carry the signature it was given.
fn check_signatures(contents: &[Value]) -> Result<(), String> {
    let is_turn_start = |c: &Value| {
        c.get("role").and_then(Value::as_str) == Some("user")
            && parts(c).iter().any(|p| p.get("functionResponse").is_none())
    };
    let start = contents.iter().rposition(is_turn_start).unwrap_or(0);
    for (i, content) in contents.iter().enumerate().skip(start) {
        if content.get("role").and_then(Value::as_str) != Some("model") {
            continue;
        }
        let Some(first) = parts(content)
            .iter()
            .find(|p| p.get("functionCall").is_some())
        else {
            continue;
        };
        let call = first.get("functionCall").unwrap_or(&Value::Null);
        let name = call.get("name").and_then(Value::as_str).unwrap_or("");
        let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
        match first.get("thoughtSignature").and_then(Value::as_str) {
            None => {
                return Err(format!(
                    "Function call `{name}` in the {}. content block is missing a `thought_signature`.",
                    i + 1
                ));
            }
            Some(sig) if sig != thought_signature(name, &args) => {
                return Err("Corrupted thought signature.".into());
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn plan_reply(req: &Value, contents: &[Value], script: &MockScript, safety_block: bool) -> Plan {
    let thought = req
        .get("generationConfig")
        .and_then(|g| g.get("thinkingConfig"))
        .and_then(|t| t.get("includeThoughts"))
        .and_then(Value::as_bool)
        == Some(true);
    if safety_block {
        return Plan {
            thought: false,
            text: None,
            calls: Vec::new(),
            finish: "SAFETY",
        };
    }
    let last_response = contents
        .last()
        .and_then(|c| parts(c).last())
        .and_then(|p| p.get("functionResponse"));
    if let Some(resp) = last_response {
        let said = match resp.get("response").and_then(|r| r.get("content")) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => resp
                .get("response")
                .map_or_else(String::new, Value::to_string),
        };
        return Plan {
            thought,
            text: Some(
                script
                    .content
                    .clone()
                    .unwrap_or_else(|| format!("Hello from mock: tool said {said}")),
            ),
            calls: Vec::new(),
            finish: "STOP",
        };
    }
    let calls = select_calls(req, script);
    if !calls.is_empty() {
        return Plan {
            thought,
            text: None,
            calls,
            finish: "STOP",
        };
    }
    let last_user = contents
        .iter()
        .rev()
        .find(|c| c.get("role").and_then(Value::as_str) != Some("model"))
        .map(text_of)
        .unwrap_or_default();
    Plan {
        thought,
        text: Some(
            script
                .content
                .clone()
                .unwrap_or_else(|| format!("Hello from mock: {last_user}")),
        ),
        calls: Vec::new(),
        finish: "STOP",
    }
}

/// Function calls to make: none without declarations or with mode `NONE`; else the first
/// allowed declaration (two with `mock.parallel`).
fn select_calls(req: &Value, script: &MockScript) -> Vec<(String, Value)> {
    let decls: Vec<&Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .collect();
    let config = req
        .get("toolConfig")
        .and_then(|t| t.get("functionCallingConfig"));
    if decls.is_empty()
        || config.and_then(|c| c.get("mode")).and_then(Value::as_str) == Some("NONE")
    {
        return Vec::new();
    }
    let allowed: Vec<&str> = config
        .and_then(|c| c.get("allowedFunctionNames"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let n = if script.parallel == Some(true) { 2 } else { 1 };
    decls
        .into_iter()
        .filter_map(|d| Some((d.get("name")?.as_str()?, d.get("parameters"))))
        .filter(|(name, _)| allowed.is_empty() || allowed.contains(name))
        .take(n)
        .map(|(name, params)| {
            let args = serde_json::from_str(&synth_arguments(params)).unwrap_or_else(|_| json!({}));
            (name.to_owned(), args)
        })
        .collect()
}

fn usage(prompt: u64, completion: u64, thought: bool) -> Value {
    let thoughts = if thought {
        word_count(THINKING_TEXT)
    } else {
        0
    };
    let mut u = Map::new();
    u.insert("promptTokenCount".into(), prompt.into());
    u.insert("candidatesTokenCount".into(), completion.into());
    if thought {
        u.insert("thoughtsTokenCount".into(), thoughts.into());
    }
    u.insert(
        "totalTokenCount".into(),
        (prompt + completion + thoughts).into(),
    );
    Value::Object(u)
}

struct Envelope<'a> {
    model: &'a str,
    response_id: String,
}

impl Envelope<'_> {
    /// A `GenerateContentResponse` with one candidate.
    fn response(&self, parts: Vec<Value>, finish: Option<&str>, usage: Option<&Value>) -> Value {
        let mut candidate = Map::new();
        if !parts.is_empty() {
            candidate.insert("content".into(), json!({ "parts": parts, "role": "model" }));
        }
        if let Some(finish) = finish {
            candidate.insert("finishReason".into(), finish.into());
            if finish == "SAFETY" {
                candidate.insert("safetyRatings".into(), blocked_rating());
            }
        }
        candidate.insert("index".into(), 0.into());
        let mut resp = Map::new();
        resp.insert("candidates".into(), json!([Value::Object(candidate)]));
        if let Some(usage) = usage {
            resp.insert("usageMetadata".into(), usage.clone());
        }
        resp.insert("modelVersion".into(), self.model.into());
        resp.insert("responseId".into(), self.response_id.clone().into());
        Value::Object(resp)
    }
}

impl Envelope<'_> {
    /// A `GenerateContentResponse` for a blocked prompt: no candidates.
    fn blocked(&self, reason: &str, prompt: u64) -> Value {
        json!({
            "promptFeedback": { "blockReason": reason, "safetyRatings": blocked_rating() },
            "usageMetadata": { "promptTokenCount": prompt, "totalTokenCount": prompt },
            "modelVersion": self.model,
            "responseId": self.response_id,
        })
    }
}

fn blocked_rating() -> Value {
    json!([{ "category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true }])
}

fn frame(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\r\n\r\n"))
}

/// The SSE frames of a streamed reply.
fn render_stream(
    env: &Envelope<'_>,
    plan: &Plan,
    usage: &Value,
    pieces: usize,
    stream_error: Option<&str>,
) -> std::collections::VecDeque<Bytes> {
    let mut parts: Vec<Vec<Value>> = Vec::new();
    if plan.thought {
        parts.push(vec![json!({ "text": THINKING_TEXT, "thought": true })]);
    }
    if let Some(text) = &plan.text {
        for piece in split_words(text, pieces) {
            parts.push(vec![json!({ "text": piece })]);
        }
    }
    if !plan.calls.is_empty() {
        parts.push(call_parts(&plan.calls));
    }
    let mut frames = std::collections::VecDeque::with_capacity(parts.len() + 1);
    if parts.is_empty() {
        frames.push_back(frame(&env.response(
            Vec::new(),
            Some(plan.finish),
            Some(usage),
        )));
        return frames;
    }
    let last = parts.len() - 1;
    for (i, p) in parts.into_iter().enumerate() {
        let done = i == last;
        frames.push_back(frame(&env.response(
            p,
            done.then_some(plan.finish),
            done.then_some(usage),
        )));
        if let Some(message) = stream_error {
            frames.push_back(frame(&error_body(StatusCode::SERVICE_UNAVAILABLE, message)));
            break;
        }
    }
    frames
}

/// `batchEmbedContents`.
fn embed(model: &str, req: &Value, id: u64) -> Response<MockBody> {
    let Some(requests) = req
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "* BatchEmbedContentsRequest.requests: requests is not specified",
            id,
        );
    };
    let unknown = |obj: &Value, known: &[&str]| -> Option<String> {
        obj.as_object()?
            .keys()
            .find(|k| !known.contains(&k.as_str()))
            .cloned()
    };
    if let Some(k) = unknown(req, &["requests"]) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."),
            id,
        );
    }
    let want_model = format!("models/{model}");
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let known = [
            "model",
            "content",
            "taskType",
            "title",
            "outputDimensionality",
        ];
        if let Some(k) = unknown(r, &known) {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Invalid JSON payload received. Unknown name \"{k}\" at 'requests[{i}]': Cannot find field."
                ),
                id,
            );
        }
        if let Some(t) = r.get("taskType")
            && !t.as_str().is_some_and(|t| TASK_TYPES.contains(&t))
        {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid value at 'requests[{i}].task_type' ({t})"),
                id,
            );
        }
        if r.get("model").and_then(Value::as_str) != Some(want_model.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "* BatchEmbedContentsRequest.requests[{i}].model: the model must be {want_model}"
                ),
                id,
            );
        }
        let Some(content) = r.get("content") else {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "* BatchEmbedContentsRequest.requests[{i}].content: content is not specified"
                ),
                id,
            );
        };
        let dim = match r.get("outputDimensionality") {
            None | Some(Value::Null) => DEFAULT_DIMENSIONS,
            Some(d) => match d.as_u64().filter(|d| (1..=MAX_DIMENSIONS).contains(d)) {
                Some(d) => d,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "outputDimensionality must be between 1 and 65536",
                        id,
                    );
                }
            },
        };
        let text = text_of(content);
        let mut h = Fnv::new();
        h.write(text.as_bytes());
        embeddings.push(EmbeddingOut {
            values: vector(h.finish(), dim as usize),
        });
    }
    reply::json(&BatchOut { embeddings }, id)
}

/// Serialised from `f32`s (not through `Value`, which would widen them to `f64` digits), so
/// the numbers are the OpenAI path's bit for bit.
#[derive(serde::Serialize)]
struct EmbeddingOut {
    values: Vec<f32>,
}

#[derive(serde::Serialize)]
struct BatchOut {
    embeddings: Vec<EmbeddingOut>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embeddings::base64_floats;

    #[test]
    fn status_names() {
        let s = |c: u16| status_name(StatusCode::from_u16(c).unwrap());
        assert_eq!(s(400), "INVALID_ARGUMENT");
        assert_eq!(s(401), "UNAUTHENTICATED");
        assert_eq!(s(403), "PERMISSION_DENIED");
        assert_eq!(s(404), "NOT_FOUND");
        assert_eq!(s(429), "RESOURCE_EXHAUSTED");
        assert_eq!(s(500), "INTERNAL");
        assert_eq!(s(503), "UNAVAILABLE");
        assert_eq!(s(502), "UNKNOWN");
        assert_eq!(s(422), "FAILED_PRECONDITION");
    }

    #[test]
    fn base64_matches_openai_path() {
        // Same helper as the OpenAI path, so vectors agree bit for bit.
        assert_eq!(base64_floats(&[1.0]), "AACAPw==");
    }

    #[test]
    fn plans() {
        let script = MockScript::default();
        let req = json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}, {"text": " there"}]}],
                         "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object",
                             "properties": {"q": {"type": "string"}}, "required": ["q"]}}, {"name": "g"}]}],
                         "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}}});
        let contents = validate(&req, true).unwrap();
        let plan = plan_reply(&req, contents, &script, false);
        assert_eq!(plan.calls, vec![("g".to_owned(), json!({}))]);
        let mut req = req;
        req["toolConfig"]["functionCallingConfig"] = json!({"mode": "AUTO"});
        let plan = plan_reply(&req, validate(&req, true).unwrap(), &script, false);
        assert_eq!(plan.calls, vec![("f".to_owned(), json!({"q": "mock"}))]);
        req["toolConfig"]["functionCallingConfig"] = json!({"mode": "NONE"});
        let plan = plan_reply(&req, validate(&req, true).unwrap(), &script, false);
        assert_eq!(plan.text.as_deref(), Some("Hello from mock: Hi there"));
        let plan = plan_reply(&req, validate(&req, true).unwrap(), &script, true);
        assert_eq!(plan.finish, "SAFETY");
        assert!(plan.parts().is_empty());
    }
}
