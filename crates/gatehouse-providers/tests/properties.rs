//! Property tests over structurally generated *valid* inputs (seeded, reproducible, bounded):
//! random OpenAI chat requests and Anthropic Messages requests of every role and content-part
//! type, with tools, `tool_choice`, tool calls and results, `stop`, sampling fields,
//! `max_tokens`, `stream` and thinking; random upstream answers and streams for each
//! provider. Every translator must accept what it documents as supported, produce
//! well-formed JSON, and keep what the formats share: roles, text, tool call ids, names and
//! arguments. Where the formats allow, Anthropic Messages → OpenAI → Anthropic is a round
//! trip.
//!
//! `never_panics.rs` covers the other side: mutated and garbage bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};

use fastrand::Rng;
use gatehouse_providers::anthropic::{self, inbound};
use gatehouse_providers::{bedrock, gemini};
use serde_json::{Map, Value, json};

/// Requests (and answers) generated per property.
const CASES: usize = 400;

// ---------------------------------------------------------------------------------------
// Generators

const WORDS: &[&str] = &[
    "hello",
    "wörld",
    "naïve",
    "日本語",
    "emoji 🎉",
    "quote \"x\"",
    "back\\slash",
    "new\nline",
    "tab\there",
    "<b>html</b>",
    "null",
    "{\"json\":1}",
    "END",
    "data: [DONE]",
    "\r\n\r\n",
];

/// Non-empty text that is not only whitespace.
fn text(rng: &mut Rng) -> String {
    let mut out = String::from("t");
    for _ in 0..rng.usize(1..5) {
        out.push(' ');
        out.push_str(WORDS[rng.usize(..WORDS.len())]);
    }
    out
}

fn ident(rng: &mut Rng, prefix: &str) -> String {
    let suffix: String = (0..10).map(|_| rng.alphanumeric()).collect();
    format!("{prefix}_{suffix}")
}

fn json_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.usize(..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => json!(rng.i64(-1_000_000..1_000_000)),
        3 => json!(f64::from(rng.i32(-10_000..10_000)) / 8.0),
        4 => Value::String(text(rng)),
        5 => Value::Array(
            (0..rng.usize(..4))
                .map(|_| json_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(json_object(rng, depth - 1)),
    }
}

fn json_object(rng: &mut Rng, depth: usize) -> Map<String, Value> {
    (0..rng.usize(..4))
        .map(|i| {
            (
                format!("k{i}_{}", rng.alphanumeric()),
                json_value(rng, depth),
            )
        })
        .collect()
}

fn schema(rng: &mut Rng) -> Value {
    let types = ["string", "integer", "number", "boolean"];
    let mut props = Map::new();
    let mut required = Vec::new();
    for i in 0..rng.usize(..4) {
        let name = format!("p{i}");
        let prop = if rng.u8(..5) == 0 {
            json!({"type": "array", "items": {"type": types[rng.usize(..types.len())]}})
        } else {
            json!({"type": types[rng.usize(..types.len())], "description": text(rng)})
        };
        props.insert(name.clone(), prop);
        if rng.bool() {
            required.push(Value::String(name));
        }
    }
    let mut s = json!({"type": "object", "properties": props});
    if !required.is_empty() {
        s["required"] = Value::Array(required);
    }
    if rng.u8(..4) == 0 {
        s["additionalProperties"] = json!(false);
    }
    s
}

const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const PDF_B64: &str = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK";

fn image_media(rng: &mut Rng) -> &'static str {
    ["image/png", "image/jpeg", "image/gif", "image/webp"][rng.usize(..4)]
}

/// A generated OpenAI chat request and what it holds that only some providers accept.
struct Chat {
    req: Value,
    /// An `image_url` with an https URL (Bedrock takes image bytes only).
    http_image: bool,
    /// A `file` part (a PDF `data:` URL): Bedrock has none.
    file: bool,
    /// An `input_audio` part: only Gemini.
    audio: bool,
    /// Tool call ids in order, with their function names and parsed arguments.
    calls: Vec<(String, String, Value)>,
    /// Tool messages' `tool_call_id`s in order.
    results: Vec<String>,
    /// The `stop` sequences, if any.
    stop: Vec<String>,
}

fn chat_request(rng: &mut Rng) -> Chat {
    let tools: Vec<(String, Value)> = (0..rng.usize(..4))
        .map(|i| (format!("tool{i}_{}", ident(rng, "fn")), schema(rng)))
        .collect();
    let mut c = Chat {
        req: Value::Null,
        http_image: false,
        file: false,
        audio: false,
        calls: Vec::new(),
        results: Vec::new(),
        stop: Vec::new(),
    };
    let mut messages = Vec::new();
    if rng.bool() {
        let role = if rng.bool() { "system" } else { "developer" };
        let content = if rng.bool() {
            json!(text(rng))
        } else {
            let mut part = json!({"type": "text", "text": text(rng)});
            if rng.bool() {
                part["cache_control"] = json!({"type": "ephemeral"});
            }
            json!([part])
        };
        messages.push(json!({"role": role, "content": content}));
    }
    let turns = rng.usize(1..5);
    for turn in 0..turns {
        messages.push(json!({"role": "user", "content": user_content(rng, &mut c)}));
        if rng.u8(..8) == 0 {
            messages.push(json!({"role": "system", "content": text(rng)}));
        }
        if turn + 1 == turns && rng.bool() {
            break;
        }
        let mut assistant = Map::new();
        assistant.insert("role".into(), "assistant".into());
        let calls: Vec<Value> = if !tools.is_empty() && rng.bool() {
            (0..rng.usize(1..4))
                .map(|_| {
                    let (name, _) = &tools[rng.usize(..tools.len())];
                    let id = ident(rng, "call");
                    let args = Value::Object(json_object(rng, 2));
                    c.calls.push((id.clone(), name.clone(), args.clone()));
                    json!({"id": id, "type": "function",
                           "function": {"name": name, "arguments": args.to_string()}})
                })
                .collect()
        } else {
            Vec::new()
        };
        let content = match rng.u8(..4) {
            0 if !calls.is_empty() => Value::Null,
            1 => json!([{"type": "text", "text": text(rng)}]),
            _ => json!(text(rng)),
        };
        assistant.insert("content".into(), content);
        if rng.u8(..4) == 0 {
            assistant.insert(
                "thinking_blocks".into(),
                json!([{"type": "thinking", "thinking": text(rng), "signature": ident(rng, "sig")}]),
            );
        }
        let ids: Vec<String> = calls
            .iter()
            .map(|call| call["id"].as_str().unwrap().to_owned())
            .collect();
        if !calls.is_empty() {
            assistant.insert("tool_calls".into(), Value::Array(calls));
        }
        messages.push(Value::Object(assistant));
        for id in ids {
            let content = if rng.bool() {
                json!(text(rng))
            } else if rng.bool() {
                json!({"ok": true, "n": rng.u32(..100)}).to_string().into()
            } else {
                json!([{"type": "text", "text": text(rng)}])
            };
            c.results.push(id.clone());
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
        }
        if turn + 1 == turns {
            // End on a user turn (or on tool results).
            if c.results.last().is_none() || rng.bool() {
                messages.push(json!({"role": "user", "content": text(rng)}));
            }
        }
    }
    let mut req = json!({"model": "m", "messages": messages});
    if !tools.is_empty() {
        req["tools"] = tools
            .iter()
            .map(|(name, params)| {
                let mut f = json!({"name": name, "parameters": params});
                if rng.bool() {
                    f["description"] = json!(text(rng));
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        match rng.u8(..5) {
            0 => req["tool_choice"] = json!("auto"),
            1 => req["tool_choice"] = json!("required"),
            2 => req["tool_choice"] = json!("none"),
            3 => {
                req["tool_choice"] = json!({"type": "function", "function": {"name": tools[0].0}});
            }
            _ => {}
        }
        if rng.bool() {
            req["parallel_tool_calls"] = json!(rng.bool());
        }
    }
    match rng.u8(..3) {
        0 => {
            let s = format!("STOP{}", rng.u8(..10));
            c.stop.push(s.clone());
            req["stop"] = json!(s);
        }
        1 => {
            c.stop = (0..rng.usize(1..5)).map(|i| format!("S{i}")).collect();
            req["stop"] = json!(c.stop);
        }
        _ => {}
    }
    if rng.bool() {
        req["temperature"] = json!(f64::from(rng.u8(..=10)) / 10.0);
    }
    if rng.bool() {
        req["top_p"] = json!(f64::from(rng.u8(1..=10)) / 10.0);
    }
    match rng.u8(..3) {
        0 => req["max_tokens"] = json!(rng.u32(1..8192)),
        1 => req["max_completion_tokens"] = json!(rng.u32(1..8192)),
        _ => {}
    }
    if rng.bool() {
        req["stream"] = json!(true);
        if rng.bool() {
            req["stream_options"] = json!({"include_usage": true});
        }
    }
    match rng.u8(..6) {
        0 => req["reasoning_effort"] = json!(["low", "medium", "high"][rng.usize(..3)]),
        1 => req["thinking"] = json!({"type": "enabled", "budget_tokens": rng.u32(1024..4096)}),
        _ => {}
    }
    if rng.u8(..4) == 0 {
        req["user"] = json!(ident(rng, "user"));
    }
    if rng.u8(..4) == 0 {
        req["seed"] = json!(rng.u32(..));
        req["presence_penalty"] = json!(0.5);
        req["n"] = json!(1);
    }
    c.req = req;
    c
}

fn user_content(rng: &mut Rng, c: &mut Chat) -> Value {
    if rng.bool() {
        return json!(text(rng));
    }
    let mut parts = vec![json!({"type": "text", "text": text(rng)})];
    for _ in 0..rng.usize(..3) {
        let part = match rng.u8(..6) {
            0 | 1 => json!({"type": "image_url", "image_url": {
                "url": format!("data:{};base64,{PNG_B64}", image_media(rng))}}),
            2 => {
                c.http_image = true;
                json!({"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}})
            }
            3 => {
                c.file = true;
                json!({"type": "file", "file": {"file_data": format!("data:application/pdf;base64,{PDF_B64}"), "filename": "a.pdf"}})
            }
            4 => {
                c.audio = true;
                json!({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}})
            }
            _ => json!({"type": "text", "text": text(rng)}),
        };
        parts.push(part);
    }
    rng.shuffle(&mut parts);
    Value::Array(parts)
}

/// What a generated Anthropic Messages request may hold.
#[derive(Clone, Copy)]
struct MessagesOptions {
    /// Text-source documents and `is_error` results (which do not survive OpenAI's shape).
    lossy: bool,
}

fn messages_request(rng: &mut Rng, opts: MessagesOptions) -> Value {
    let tools: Vec<(String, Value)> = (0..rng.usize(..4))
        .map(|i| (format!("tool{i}_{}", ident(rng, "fn")), schema(rng)))
        .collect();
    let mut messages = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let turns = rng.usize(1..5);
    for turn in 0..turns {
        let mut user = Vec::new();
        for id in std::mem::take(&mut pending) {
            let content = if rng.bool() {
                json!(text(rng))
            } else {
                json!([{"type": "text", "text": text(rng)}])
            };
            let mut block = json!({"type": "tool_result", "tool_use_id": id, "content": content});
            if opts.lossy && rng.u8(..4) == 0 {
                block["is_error"] = json!(true);
            }
            user.push(block);
        }
        for _ in 0..rng.usize(usize::from(user.is_empty())..3) {
            user.push(match rng.u8(..6) {
                0 => json!({"type": "image", "source": {"type": "base64", "media_type": image_media(rng), "data": PNG_B64}}),
                1 => json!({"type": "image", "source": {"type": "url", "url": "https://example.com/dog.jpg"}}),
                2 => json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}}),
                3 if opts.lossy => json!({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text(rng)}}),
                _ => {
                    let mut b = json!({"type": "text", "text": text(rng)});
                    if rng.u8(..4) == 0 {
                        b["cache_control"] = json!({"type": "ephemeral"});
                    }
                    b
                }
            });
        }
        let content = match user.as_slice() {
            [only] if only["type"] == "text" && rng.bool() => only["text"].clone(),
            _ => Value::Array(user),
        };
        messages.push(json!({"role": "user", "content": content}));
        if turn + 1 == turns {
            break;
        }
        let mut assistant = Vec::new();
        if rng.u8(..3) == 0 {
            assistant.push(
                json!({"type": "thinking", "thinking": text(rng), "signature": ident(rng, "sig")}),
            );
        }
        if rng.u8(..6) == 0 {
            assistant.push(json!({"type": "redacted_thinking", "data": ident(rng, "redacted")}));
        }
        for _ in 0..rng.usize(..3) {
            assistant.push(json!({"type": "text", "text": text(rng)}));
        }
        if !tools.is_empty() && rng.bool() {
            for _ in 0..rng.usize(1..4) {
                let (name, _) = &tools[rng.usize(..tools.len())];
                let id = ident(rng, "toolu");
                pending.push(id.clone());
                assistant.push(json!({"type": "tool_use", "id": id, "name": name,
                                      "input": Value::Object(json_object(rng, 2))}));
            }
        }
        if !assistant
            .iter()
            .any(|b| b["type"] == "text" || b["type"] == "tool_use")
        {
            assistant.push(json!({"type": "text", "text": text(rng)}));
        }
        let content = match assistant.as_slice() {
            [only] if only["type"] == "text" && rng.bool() => only["text"].clone(),
            _ => Value::Array(assistant),
        };
        messages.push(json!({"role": "assistant", "content": content}));
    }
    let mut req =
        json!({"model": "claude-x", "max_tokens": rng.u32(1..8192), "messages": messages});
    match rng.u8(..3) {
        0 => req["system"] = json!(text(rng)),
        1 => {
            req["system"] = (0..rng.usize(1..3))
                .map(|_| json!({"type": "text", "text": text(rng), "cache_control": {"type": "ephemeral"}}))
                .collect();
        }
        _ => {}
    }
    if !tools.is_empty() {
        req["tools"] = tools
            .iter()
            .map(|(name, schema)| {
                let mut t = json!({"name": name, "input_schema": schema});
                if rng.bool() {
                    t["description"] = json!(text(rng));
                }
                t
            })
            .collect();
        let mut choice = match rng.u8(..5) {
            0 => json!({"type": "auto"}),
            1 => json!({"type": "any"}),
            2 => json!({"type": "none"}),
            3 => json!({"type": "tool", "name": tools[0].0}),
            _ => Value::Null,
        };
        if choice.is_object() && choice["type"] != "none" && rng.bool() {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        if !choice.is_null() {
            req["tool_choice"] = choice;
        }
    }
    if rng.bool() {
        req["stop_sequences"] = (0..rng.usize(1..4))
            .map(|i| json!(format!("S{i}")))
            .collect();
    }
    if rng.bool() {
        req["temperature"] = json!(f64::from(rng.u8(..=10)) / 10.0);
    }
    if rng.bool() {
        req["top_p"] = json!(f64::from(rng.u8(1..=10)) / 10.0);
    }
    if rng.bool() {
        req["top_k"] = json!(rng.u32(1..100));
    }
    if rng.u8(..4) == 0 {
        req["thinking"] = json!({"type": "enabled", "budget_tokens": rng.u32(1024..8192)});
    }
    if rng.u8(..4) == 0 {
        req["metadata"] = json!({"user_id": ident(rng, "u")});
    }
    if rng.bool() {
        req["stream"] = json!(true);
    }
    req
}

// ---------------------------------------------------------------------------------------
// Checks

/// Counts what the generated cases exercised, so a generator that stops producing some
/// feature fails the test instead of silently testing less.
#[derive(Default)]
struct Coverage(BTreeMap<&'static str, usize>);

impl Coverage {
    fn saw(&mut self, what: &'static str, yes: bool) {
        *self.0.entry(what).or_default() += usize::from(yes);
    }

    /// Every feature was seen in at least 1 case in 20.
    fn assert_all(&self) {
        for (what, n) in &self.0 {
            assert!(*n >= CASES / 20, "only {n} of {CASES} cases had {what}");
        }
    }
}

fn parse(out: Result<Vec<u8>, anthropic::TranslateError>, what: &str, input: &Value) -> Value {
    match out {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{what}: invalid JSON out ({e}) for {input}")),
        Err(e) => panic!("{what} refused a valid request ({e}): {input}"),
    }
}

/// Consecutive messages never share a role (the providers require alternation).
fn assert_alternating(messages: &[Value], role_key: &str, what: &str, input: &Value) {
    for pair in messages.windows(2) {
        assert_ne!(
            pair[0][role_key], pair[1][role_key],
            "{what}: consecutive messages with one role: {input}"
        );
    }
}

/// `(id, name, input)` of every block of `kind` under `key` in `messages`.
fn blocks<'a>(messages: &'a [Value], content: &str, kind: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter_map(|m| m[content].as_array())
        .flatten()
        .filter(|b| b.get(kind).is_some() || b["type"] == kind)
        .collect()
}

#[test]
fn generated_chat_requests_translate_for_every_provider() {
    let mut rng = Rng::with_seed(0xc4a7_0001);
    let mut seen = Coverage::default();
    for round in 0..CASES {
        let c = chat_request(&mut rng);
        let stream = round % 2 == 0;
        seen.saw("tool calls", !c.calls.is_empty());
        seen.saw("several tool calls in a turn", c.calls.len() > 1);
        seen.saw("tool_choice", c.req.get("tool_choice").is_some());
        seen.saw("stop", !c.stop.is_empty());
        seen.saw("URL images", c.http_image);
        seen.saw("files", c.file);
        seen.saw("audio", c.audio);
        seen.saw(
            "thinking or reasoning_effort",
            c.req.get("thinking").is_some() || c.req.get("reasoning_effort").is_some(),
        );
        seen.saw("a request Bedrock takes", !(c.http_image || c.audio));

        // Anthropic: everything but audio.
        let out = anthropic::chat_request_to_messages(&c.req, "claude-up", stream);
        if c.audio {
            assert!(out.is_err(), "anthropic accepted input_audio: {}", c.req);
        } else {
            let v = parse(out, "anthropic", &c.req);
            let messages = v["messages"].as_array().unwrap();
            assert_eq!(messages.first().unwrap()["role"], "user", "{}", c.req);
            assert_alternating(messages, "role", "anthropic", &c.req);
            let uses: Vec<(String, String, Value)> = blocks(messages, "content", "tool_use")
                .iter()
                .map(|b| {
                    (
                        b["id"].as_str().unwrap().to_owned(),
                        b["name"].as_str().unwrap().to_owned(),
                        b["input"].clone(),
                    )
                })
                .collect();
            assert_eq!(uses, c.calls, "tool calls: {}", c.req);
            let results: Vec<&str> = blocks(messages, "content", "tool_result")
                .iter()
                .map(|b| b["tool_use_id"].as_str().unwrap())
                .collect();
            assert_eq!(results, c.results, "tool results: {}", c.req);
            assert!(v["max_tokens"].as_u64().unwrap() > 0);
            if !c.stop.is_empty() {
                assert_eq!(v["stop_sequences"], json!(c.stop));
            }
            assert_eq!(v["model"], "claude-up");
            assert_eq!(v.get("stream").is_some_and(|s| s == true), stream);
        }

        // Gemini: everything.
        let v = parse(gemini::chat_request_to_generate(&c.req), "gemini", &c.req);
        let contents = v["contents"].as_array().unwrap();
        assert_alternating(contents, "role", "gemini", &c.req);
        for content in contents {
            assert!(
                content["role"] == "user" || content["role"] == "model",
                "{v}"
            );
        }
        let calls: Vec<(String, Value)> = blocks(contents, "parts", "functionCall")
            .iter()
            .map(|p| {
                (
                    p["functionCall"]["name"].as_str().unwrap().to_owned(),
                    p["functionCall"]["args"].clone(),
                )
            })
            .collect();
        let want: Vec<(String, Value)> = c
            .calls
            .iter()
            .map(|(_, n, a)| (n.clone(), a.clone()))
            .collect();
        assert_eq!(calls, want, "gemini function calls: {}", c.req);
        let names: HashMap<&str, &str> = c
            .calls
            .iter()
            .map(|(id, n, _)| (id.as_str(), n.as_str()))
            .collect();
        let responses: Vec<&str> = blocks(contents, "parts", "functionResponse")
            .iter()
            .map(|p| p["functionResponse"]["name"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = c.results.iter().map(|id| names[id.as_str()]).collect();
        assert_eq!(responses, want, "gemini function responses: {}", c.req);
        if !c.stop.is_empty() {
            assert_eq!(v["generationConfig"]["stopSequences"], json!(c.stop));
        }
        assert!(v.get("model").is_none(), "the model is in the URL");

        // Bedrock: no URL images or audio; files (base64 PDFs) become documents.
        let out =
            bedrock::chat_request_to_converse(&c.req, "anthropic.claude-sonnet-4-20250514-v1:0");
        if c.http_image || c.audio {
            assert!(
                out.is_err(),
                "bedrock accepted what it cannot send: {}",
                c.req
            );
        } else {
            let v = parse(out, "bedrock", &c.req);
            let messages = v["messages"].as_array().unwrap();
            assert_alternating(messages, "role", "bedrock", &c.req);
            let uses: Vec<(String, String, Value)> = blocks(messages, "content", "toolUse")
                .iter()
                .map(|b| {
                    let t = &b["toolUse"];
                    (
                        t["toolUseId"].as_str().unwrap().to_owned(),
                        t["name"].as_str().unwrap().to_owned(),
                        t["input"].clone(),
                    )
                })
                .collect();
            assert_eq!(uses, c.calls, "bedrock tool uses: {}", c.req);
            let results: Vec<&str> = blocks(messages, "content", "toolResult")
                .iter()
                .map(|b| b["toolResult"]["toolUseId"].as_str().unwrap())
                .collect();
            assert_eq!(results, c.results, "bedrock tool results: {}", c.req);
            if !c.stop.is_empty() {
                assert_eq!(v["inferenceConfig"]["stopSequences"], json!(c.stop));
            }
            // Documents: PDFs, named document-1, document-2, … (unique, as Converse
            // requires), each in a message that also holds a text block.
            let mut names = Vec::new();
            for m in messages {
                let content = m["content"].as_array().unwrap();
                let docs: Vec<&Value> = content.iter().filter_map(|b| b.get("document")).collect();
                if !docs.is_empty() {
                    assert_eq!(m["role"], "user", "{}", c.req);
                    assert!(content.iter().any(|b| b.get("text").is_some()), "{}", c.req);
                }
                for d in docs {
                    assert_eq!(d["format"], "pdf");
                    assert_eq!(d["source"]["bytes"], PDF_B64);
                    names.push(d["name"].as_str().unwrap().to_owned());
                }
            }
            assert_eq!(names.is_empty(), !c.file, "{}", c.req);
            let want: Vec<String> = (1..=names.len()).map(|n| format!("document-{n}")).collect();
            assert_eq!(names, want, "{}", c.req);
        }
    }
    seen.assert_all();
}

#[test]
fn generated_messages_requests_translate_to_openai() {
    let mut rng = Rng::with_seed(0x3e55_a9e5);
    let mut seen = Coverage::default();
    for round in 0..CASES {
        let req = messages_request(&mut rng, MessagesOptions { lossy: true });
        for kind in [
            "tool_use",
            "tool_result",
            "thinking",
            "redacted_thinking",
            "image",
            "document",
        ] {
            seen.saw(kind, !anthropic_blocks(&req, kind).is_empty());
        }
        seen.saw("system", req.get("system").is_some());
        seen.saw("tool_choice", req.get("tool_choice").is_some());
        let stream = round % 2 == 0;
        let v = parse(
            inbound::messages_request_to_chat(&req, "gpt-up", stream),
            "inbound",
            &req,
        );
        assert_eq!(v["model"], "gpt-up");
        let messages = v["messages"].as_array().unwrap();
        for m in messages {
            let role = m["role"].as_str().unwrap();
            assert!(
                ["system", "user", "assistant", "tool"].contains(&role),
                "{v}"
            );
        }
        // Every tool_use is an assistant tool call with the same id and input; every
        // tool_result a tool message for it.
        let uses = anthropic_blocks(&req, "tool_use");
        let calls: Vec<(String, String, Value)> = messages
            .iter()
            .filter_map(|m| m["tool_calls"].as_array())
            .flatten()
            .map(|c| {
                let f = &c["function"];
                (
                    c["id"].as_str().unwrap().to_owned(),
                    f["name"].as_str().unwrap().to_owned(),
                    serde_json::from_str(f["arguments"].as_str().unwrap()).unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String, Value)> = uses
            .iter()
            .map(|b| {
                (
                    b["id"].as_str().unwrap().to_owned(),
                    b["name"].as_str().unwrap().to_owned(),
                    b["input"].clone(),
                )
            })
            .collect();
        assert_eq!(calls, want, "{req}");
        let results: Vec<&str> = messages
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| m["tool_call_id"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = anthropic_blocks(&req, "tool_result")
            .iter()
            .map(|b| b["tool_use_id"].as_str().unwrap())
            .collect();
        assert_eq!(results, want, "{req}");
        assert_eq!(v["max_tokens"], req["max_tokens"]);
        assert_eq!(v.get("stream").is_some_and(|s| s == true), stream);
        let _ = inbound::estimate_input_tokens(&req);

        // …and on to every upstream format (the chain an Anthropic client on a Gemini or
        // Bedrock model takes).
        let _ = parse(
            anthropic::chat_request_to_messages(&v, "claude-up", stream),
            "inbound → anthropic",
            &req,
        );
        let _ = parse(
            gemini::chat_request_to_generate(&v),
            "inbound → gemini",
            &req,
        );
        let has_url_image_or_document = anthropic_blocks(&req, "image")
            .iter()
            .any(|b| b["source"]["type"] == "url")
            || anthropic_blocks(&req, "document")
                .iter()
                .any(|b| b["source"]["type"] == "base64");
        let out = bedrock::chat_request_to_converse(&v, "anthropic.claude-sonnet-4-20250514-v1:0");
        seen.saw("a request Bedrock takes", !has_url_image_or_document);
        if !has_url_image_or_document {
            let _ = parse(out, "inbound → bedrock", &req);
        }
    }
    seen.assert_all();
}

/// Blocks of `kind` in every message of an Anthropic request, in order.
fn anthropic_blocks<'a>(req: &'a Value, kind: &str) -> Vec<&'a Value> {
    req["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == kind)
        .collect()
}

/// An Anthropic request's messages as `(role, blocks)`, string content as one text block,
/// `cache_control` removed (OpenAI-compatible upstreams have none), tool results' content
/// as its text.
fn normalized_messages(req: &Value) -> Vec<(String, Vec<Value>)> {
    req["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let blocks = match &m["content"] {
                Value::String(s) => vec![json!({"type": "text", "text": s})],
                Value::Array(blocks) => blocks
                    .iter()
                    .map(|b| {
                        let mut b = b.clone();
                        let o = b.as_object_mut().unwrap();
                        o.remove("cache_control");
                        if o.get("type").is_some_and(|t| t == "tool_result") {
                            let text = match o.get("content") {
                                Some(Value::String(s)) => s.clone(),
                                Some(Value::Array(parts)) => parts
                                    .iter()
                                    .filter_map(|p| p["text"].as_str())
                                    .collect::<Vec<_>>()
                                    .join(""),
                                _ => String::new(),
                            };
                            o.insert("content".into(), Value::String(text));
                            o.remove("is_error");
                        }
                        b
                    })
                    .collect(),
                other => panic!("content {other}"),
            };
            (m["role"].as_str().unwrap().to_owned(), blocks)
        })
        .collect()
}

fn system_text(req: &Value) -> Option<String> {
    match &req["system"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => Some(
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
        ),
        _ => None,
    }
}

/// Anthropic Messages → OpenAI → Anthropic keeps roles, text, images, PDFs, thinking with
/// its signature, tool_use ids, names and inputs, tool_result ids and text, tools,
/// `tool_choice`, stop sequences, sampling and `max_tokens` (without thinking, whose budget
/// is bucketed on the way).
#[test]
fn messages_round_trip_through_openai() {
    let mut rng = Rng::with_seed(0x7017_2b1b);
    let mut seen = Coverage::default();
    for _ in 0..CASES {
        let req = messages_request(&mut rng, MessagesOptions { lossy: false });
        for kind in ["tool_use", "tool_result", "thinking", "image", "document"] {
            seen.saw(kind, !anthropic_blocks(&req, kind).is_empty());
        }
        seen.saw(
            "several turns",
            req["messages"].as_array().unwrap().len() > 2,
        );
        let chat = parse(
            inbound::messages_request_to_chat(&req, "gpt-up", false),
            "inbound",
            &req,
        );
        let back = parse(
            anthropic::chat_request_to_messages(&chat, "claude-x", false),
            "anthropic",
            &chat,
        );
        let at = format!("\n  in:   {req}\n  chat: {chat}\n  back: {back}");

        assert_eq!(
            normalized_messages(&back),
            normalized_messages(&req),
            "messages:{at}"
        );
        assert_eq!(system_text(&back), system_text(&req), "system:{at}");
        let tools = |v: &Value| -> Vec<(Value, Value)> {
            v["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| (t["name"].clone(), t["input_schema"].clone()))
                .collect()
        };
        assert_eq!(tools(&back), tools(&req), "tools:{at}");
        if req.get("tools").is_some() {
            assert_eq!(
                back.get("tool_choice"),
                req.get("tool_choice"),
                "tool_choice:{at}"
            );
        }
        for key in ["stop_sequences", "temperature", "top_p", "metadata"] {
            assert_eq!(back.get(key), req.get(key), "{key}:{at}");
        }
        // The client's max_tokens is never raised (the gateway reserved budget for it);
        // thinking is fitted under it, or left out below Anthropic's minimum budget.
        assert_eq!(back["max_tokens"], req["max_tokens"], "max_tokens:{at}");
        if let Some(thinking) = back.get("thinking") {
            assert!(req.get("thinking").is_some(), "thinking:{at}");
            assert_eq!(thinking["type"], "enabled", "thinking:{at}");
            let budget = thinking["budget_tokens"].as_u64().unwrap();
            assert!(
                (anthropic::MIN_THINKING_BUDGET..req["max_tokens"].as_u64().unwrap())
                    .contains(&budget),
                "{at}"
            );
        } else if req.get("thinking").is_some() {
            assert!(
                req["max_tokens"].as_u64().unwrap() <= anthropic::MIN_THINKING_BUDGET,
                "thinking dropped:{at}"
            );
        }
    }
    seen.assert_all();
}

// ---------------------------------------------------------------------------------------
// Answers and streams

/// A generated assistant answer, provider-neutral.
#[derive(Debug, Clone)]
struct Answer {
    thinking: Option<(String, String)>,
    texts: Vec<String>,
    calls: Vec<(String, String, Value)>,
    input_tokens: u64,
    output_tokens: u64,
}

fn answer(rng: &mut Rng) -> Answer {
    let mut a = Answer {
        thinking: rng.u8(..3).eq(&0).then(|| (text(rng), ident(rng, "sig"))),
        texts: (0..rng.usize(..3)).map(|_| text(rng)).collect(),
        calls: (0..rng.usize(..3))
            .map(|i| {
                (
                    ident(rng, "toolu"),
                    format!("f{i}"),
                    Value::Object(json_object(rng, 2)),
                )
            })
            .collect(),
        input_tokens: rng.u64(1..10_000),
        output_tokens: rng.u64(1..10_000),
    };
    if a.texts.is_empty() && a.calls.is_empty() {
        a.texts.push(text(rng));
    }
    a
}

/// `s` cut into 1..=4 pieces at char boundaries.
fn pieces(rng: &mut Rng, s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let n = rng.usize(1..=4).min(chars.len().max(1));
    let mut cuts: Vec<usize> = (0..n - 1).map(|_| rng.usize(..=chars.len())).collect();
    cuts.push(0);
    cuts.push(chars.len());
    cuts.sort_unstable();
    cuts.windows(2)
        .map(|w| chars[w[0]..w[1]].iter().collect())
        .collect()
}

/// An incremental stream translator.
trait Translate {
    fn push(&mut self, bytes: &[u8]) -> Vec<u8>;
    fn finish(&mut self) -> Vec<u8>;
}

macro_rules! translate {
    ($($t:ty),*) => {$(
        impl Translate for $t {
            fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
                <$t>::push(self, bytes)
            }
            fn finish(&mut self) -> Vec<u8> {
                <$t>::finish(self)
            }
        }
    )*};
}

translate!(
    anthropic::StreamTranslator,
    inbound::ChatStreamToMessages,
    gemini::StreamTranslator,
    bedrock::StreamTranslator
);

/// Feeds `bytes` to `t` in random splits, then finishes it.
fn feed(rng: &mut Rng, bytes: &[u8], t: &mut impl Translate) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = rng.usize(1..=rest.len().min(64));
        let (piece, tail) = rest.split_at(n);
        out.extend(t.push(piece));
        rest = tail;
    }
    out.extend(t.finish());
    out
}

/// What an OpenAI chunk stream said: content, reasoning, tool calls by index.
#[derive(Debug, Default, PartialEq)]
struct Said {
    content: String,
    reasoning: String,
    calls: BTreeMap<u64, (String, String, String)>,
    finish: Option<String>,
    done: bool,
}

/// Reads OpenAI chunk SSE, asserting every event is well-formed JSON (or `[DONE]`, last).
fn read_openai_stream(bytes: &[u8]) -> Said {
    let text = std::str::from_utf8(bytes).expect("stream is UTF-8");
    let mut said = Said::default();
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        assert!(!said.done, "data after [DONE]: {text}");
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an SSE data event: {event:?}"));
        if data == "[DONE]" {
            said.done = true;
            continue;
        }
        let v: Value =
            serde_json::from_str(data).unwrap_or_else(|e| panic!("bad chunk ({e}): {data}"));
        assert_eq!(v["object"], "chat.completion.chunk", "{data}");
        for choice in v["choices"].as_array().unwrap() {
            let d = &choice["delta"];
            if let Some(t) = d["content"].as_str() {
                said.content.push_str(t);
            }
            if let Some(t) = d["reasoning_content"].as_str() {
                said.reasoning.push_str(t);
            }
            for call in d["tool_calls"].as_array().into_iter().flatten() {
                let entry = said
                    .calls
                    .entry(call["index"].as_u64().unwrap())
                    .or_default();
                if let Some(id) = call["id"].as_str() {
                    entry.0.push_str(id);
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    entry.1.push_str(name);
                }
                if let Some(args) = call["function"]["arguments"].as_str() {
                    entry.2.push_str(args);
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                said.finish = Some(f.to_owned());
            }
        }
    }
    said
}

fn assert_calls(said: &Said, calls: &[(String, String, Value)], ids: bool, at: &str) {
    assert_eq!(said.calls.len(), calls.len(), "{at}");
    for ((id, name, args), (want_id, want_name, want_args)) in said.calls.values().zip(calls) {
        if ids {
            assert_eq!(id, want_id, "{at}");
        } else {
            assert!(!id.is_empty(), "{at}");
        }
        assert_eq!(name, want_name, "{at}");
        let args: Value =
            serde_json::from_str(args).unwrap_or_else(|e| panic!("arguments ({e}): {at}"));
        assert_eq!(&args, want_args, "{at}");
    }
}

fn sse(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

fn anthropic_message(a: &Answer) -> Value {
    let mut content = Vec::new();
    if let Some((t, s)) = &a.thinking {
        content.push(json!({"type": "thinking", "thinking": t, "signature": s}));
    }
    for t in &a.texts {
        content.push(json!({"type": "text", "text": t}));
    }
    for (id, name, input) in &a.calls {
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    json!({"id": "msg_gen", "type": "message", "role": "assistant", "model": "claude-x",
           "content": content, "stop_reason": if a.calls.is_empty() { "end_turn" } else { "tool_use" },
           "stop_sequence": null,
           "usage": {"input_tokens": a.input_tokens, "output_tokens": a.output_tokens, "cache_read_input_tokens": 3}})
}

fn anthropic_stream(rng: &mut Rng, a: &Answer) -> String {
    let mut s = sse(
        "message_start",
        &json!({"type": "message_start", "message": {"id": "msg_gen", "type": "message", "role": "assistant",
        "model": "claude-x", "content": [], "stop_reason": null, "usage": {"input_tokens": a.input_tokens, "output_tokens": 1}}}),
    );
    s.push_str(&sse("ping", &json!({"type": "ping"})));
    let mut index = 0;
    let mut block = |s: &mut String, start: Value, deltas: Vec<Value>| {
        s.push_str(&sse(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        for d in deltas {
            s.push_str(&sse(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": d}),
            ));
        }
        s.push_str(&sse(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    };
    if let Some((t, sig)) = &a.thinking {
        let mut deltas: Vec<Value> = pieces(rng, t)
            .into_iter()
            .map(|p| json!({"type": "thinking_delta", "thinking": p}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": sig}));
        block(
            &mut s,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            deltas,
        );
    }
    for t in &a.texts {
        let deltas = pieces(rng, t)
            .into_iter()
            .map(|p| json!({"type": "text_delta", "text": p}))
            .collect();
        block(&mut s, json!({"type": "text", "text": ""}), deltas);
    }
    for (id, name, input) in &a.calls {
        let deltas = pieces(rng, &input.to_string())
            .into_iter()
            .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
            .collect();
        block(
            &mut s,
            json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
            deltas,
        );
    }
    s.push_str(&sse("message_delta", &json!({"type": "message_delta",
        "delta": {"stop_reason": if a.calls.is_empty() { "end_turn" } else { "tool_use" }, "stop_sequence": null},
        "usage": {"output_tokens": a.output_tokens}})));
    s.push_str(&sse("message_stop", &json!({"type": "message_stop"})));
    s
}

/// Anthropic answers → OpenAI, body and stream, then back to Anthropic through the inbound
/// translators (the path of a `/v1/messages` client on an OpenAI-compatible model).
#[test]
fn anthropic_answers_translate_and_come_back() {
    let mut rng = Rng::with_seed(0xa95e_0001);
    for _ in 0..CASES {
        let a = answer(&mut rng);
        let body = anthropic_message(&a);
        let at = format!("{body}");
        let chat = parse(
            anthropic::messages_response_to_chat(body.to_string().as_bytes(), "fb", 1),
            "anthropic response",
            &body,
        );
        let m = &chat["choices"][0]["message"];
        let text: String = a.texts.concat();
        assert_eq!(m["content"].as_str().unwrap_or(""), text, "{at}");
        let calls: Vec<(String, String, Value)> = m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_owned(),
                    c["function"]["name"].as_str().unwrap().to_owned(),
                    serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap(),
                )
            })
            .collect();
        assert_eq!(calls, a.calls, "{at}");
        assert_eq!(chat["usage"]["completion_tokens"], a.output_tokens, "{at}");

        let back = parse(
            inbound::chat_response_to_message(chat.to_string().as_bytes(), "fb"),
            "inbound response",
            &chat,
        );
        let kinds: Vec<&str> = back["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        let mut want = Vec::new();
        if a.thinking.is_some() {
            want.push("thinking");
        }
        if !text.is_empty() {
            want.push("text");
        }
        want.extend(a.calls.iter().map(|_| "tool_use"));
        assert_eq!(kinds, want, "{at}");
        if let Some((t, sig)) = &a.thinking {
            assert_eq!(back["content"][0]["thinking"], json!(t));
            assert_eq!(back["content"][0]["signature"], json!(sig));
        }
        assert_eq!(back["stop_reason"], body["stop_reason"], "{at}");

        // Streamed, split anywhere.
        let stream = anthropic_stream(&mut rng, &a);
        let include_usage = rng.bool();
        let mut t = anthropic::StreamTranslator::new("fb", 1, include_usage);
        let out = feed(&mut rng, stream.as_bytes(), &mut t);
        assert_eq!(t.error(), None, "{stream}");
        let said = read_openai_stream(&out);
        assert!(said.done, "{stream}");
        assert_eq!(said.content, text, "{stream}");
        assert_eq!(
            said.reasoning,
            a.thinking
                .as_ref()
                .map(|(t, _)| t.clone())
                .unwrap_or_default()
        );
        assert_calls(&said, &a.calls, true, &stream);
        assert_eq!(
            said.finish.as_deref(),
            Some(if a.calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            })
        );

        // …and that OpenAI stream on to an Anthropic client.
        let mut i = inbound::ChatStreamToMessages::new("fb");
        let events = feed(&mut rng, &out, &mut i);
        assert_eq!(i.error(), None);
        let heard = read_anthropic_stream(&events);
        assert_eq!(heard.text, text);
        assert_eq!(
            heard.thinking,
            a.thinking
                .as_ref()
                .map(|(t, _)| t.clone())
                .unwrap_or_default()
        );
        let want: Vec<(String, String, Value)> = a.calls.clone();
        assert_eq!(heard.tools, want);
        assert!(heard.stopped);
    }
}

/// What an Anthropic event stream said.
#[derive(Debug, Default)]
struct Heard {
    text: String,
    thinking: String,
    tools: Vec<(String, String, Value)>,
    stopped: bool,
}

/// Reads Anthropic SSE, asserting every event is well-formed and named like its `type`.
fn read_anthropic_stream(bytes: &[u8]) -> Heard {
    let text = std::str::from_utf8(bytes).expect("stream is UTF-8");
    let mut heard = Heard::default();
    let mut partial: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let mut lines = event.lines();
        let name = lines
            .next()
            .and_then(|l| l.strip_prefix("event: "))
            .unwrap_or_else(|| panic!("no event name: {event:?}"));
        let data = lines
            .next()
            .and_then(|l| l.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("no data: {event:?}"));
        let v: Value =
            serde_json::from_str(data).unwrap_or_else(|e| panic!("bad event ({e}): {data}"));
        assert_eq!(v["type"], name, "{event}");
        match name {
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                let b = &v["content_block"];
                partial.insert(
                    v["index"].as_u64().unwrap(),
                    (
                        b["id"].as_str().unwrap().to_owned(),
                        b["name"].as_str().unwrap().to_owned(),
                        String::new(),
                    ),
                );
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => heard.text.push_str(d["text"].as_str().unwrap()),
                    "thinking_delta" => heard.thinking.push_str(d["thinking"].as_str().unwrap()),
                    "input_json_delta" => partial
                        .get_mut(&v["index"].as_u64().unwrap())
                        .unwrap()
                        .2
                        .push_str(d["partial_json"].as_str().unwrap()),
                    _ => {}
                }
            }
            "message_stop" => heard.stopped = true,
            _ => {}
        }
    }
    heard.tools = partial
        .into_values()
        .map(|(id, name, json)| {
            (
                id,
                name,
                if json.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&json).unwrap()
                },
            )
        })
        .collect();
    heard
}

fn gemini_response(a: &Answer, finish: &str) -> Value {
    let mut parts = Vec::new();
    if let Some((t, _)) = &a.thinking {
        parts.push(json!({"text": t, "thought": true}));
    }
    for t in &a.texts {
        parts.push(json!({"text": t}));
    }
    for (_, name, args) in &a.calls {
        parts.push(json!({"functionCall": {"name": name, "args": args}}));
    }
    json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
           "usageMetadata": {"promptTokenCount": a.input_tokens, "candidatesTokenCount": a.output_tokens,
                             "totalTokenCount": a.input_tokens + a.output_tokens},
           "modelVersion": "gemini-x", "responseId": "r1"})
}

#[test]
fn gemini_answers_translate() {
    let mut rng = Rng::with_seed(0x6e31_0001);
    for _ in 0..CASES {
        let a = answer(&mut rng);
        let finish = ["STOP", "MAX_TOKENS", "SAFETY"][rng.usize(..3)];
        let body = gemini_response(&a, finish);
        let chat = parse(
            gemini::generate_response_to_chat(body.to_string().as_bytes(), "fb", 1),
            "gemini response",
            &body,
        );
        let m = &chat["choices"][0]["message"];
        assert_eq!(
            m["content"].as_str().unwrap_or(""),
            a.texts.concat(),
            "{body}"
        );
        let names: Vec<&str> = m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["function"]["name"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = a.calls.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(names, want, "{body}");
        assert_eq!(chat["model"], "gemini-x");
        let _ = parse(
            inbound::chat_response_to_message(chat.to_string().as_bytes(), "fb"),
            "inbound",
            &chat,
        );

        // Streamed: the parts spread over several `data:` events, the finish in the last.
        let mut events = String::new();
        let all = gemini_response(&a, finish);
        let parts = all["candidates"][0]["content"]["parts"].as_array().unwrap();
        for (n, part) in parts.iter().enumerate() {
            let mut e = json!({"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}], "modelVersion": "gemini-x"});
            if n + 1 == parts.len() {
                e["candidates"][0]["finishReason"] = json!(finish);
                e["usageMetadata"] = all["usageMetadata"].clone();
            }
            events.push_str(&format!("data: {e}\r\n\r\n"));
        }
        let mut t = gemini::StreamTranslator::new("fb", 1, rng.bool());
        let out = feed(&mut rng, events.as_bytes(), &mut t);
        assert_eq!(t.error(), None, "{events}");
        let said = read_openai_stream(&out);
        assert!(said.done);
        assert_eq!(said.content, a.texts.concat());
        assert_eq!(
            said.reasoning,
            a.thinking
                .as_ref()
                .map(|(t, _)| t.clone())
                .unwrap_or_default()
        );
        assert_calls(&said, &a.calls, false, &events);
    }
}

fn frame(event: &str, payload: &Value) -> Vec<u8> {
    bedrock::encode_message(
        &[
            (":event-type", event),
            (":message-type", "event"),
            (":content-type", "application/json"),
        ],
        payload.to_string().as_bytes(),
    )
}

#[test]
fn bedrock_answers_translate() {
    let mut rng = Rng::with_seed(0xbed_0001);
    for _ in 0..CASES {
        let a = answer(&mut rng);
        let stop = if a.calls.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        };
        let mut content = Vec::new();
        if let Some((t, s)) = &a.thinking {
            content
                .push(json!({"reasoningContent": {"reasoningText": {"text": t, "signature": s}}}));
        }
        for t in &a.texts {
            content.push(json!({"text": t}));
        }
        for (id, name, input) in &a.calls {
            content.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
        }
        let usage = json!({"inputTokens": a.input_tokens, "outputTokens": a.output_tokens, "totalTokens": a.input_tokens + a.output_tokens});
        let body = json!({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop, "usage": usage,
                          "metrics": {"latencyMs": 12}});
        let chat = parse(
            bedrock::converse_response_to_chat(body.to_string().as_bytes(), "bedrock-up", 1),
            "bedrock response",
            &body,
        );
        let m = &chat["choices"][0]["message"];
        assert_eq!(
            m["content"].as_str().unwrap_or(""),
            a.texts.concat(),
            "{body}"
        );
        let calls: Vec<(String, String, Value)> = m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_owned(),
                    c["function"]["name"].as_str().unwrap().to_owned(),
                    serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap(),
                )
            })
            .collect();
        assert_eq!(calls, a.calls, "{body}");
        assert_eq!(chat["model"], "bedrock-up");
        assert_eq!(chat["usage"]["prompt_tokens"], a.input_tokens);

        // ConverseStream: binary event-stream frames, split anywhere.
        let mut bytes = frame("messageStart", &json!({"role": "assistant"}));
        let mut index = 0;
        if let Some((t, s)) = &a.thinking {
            for p in pieces(&mut rng, t) {
                bytes.extend(frame("contentBlockDelta", &json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"text": p}}})));
            }
            bytes.extend(frame("contentBlockDelta", &json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": s}}})));
            bytes.extend(frame(
                "contentBlockStop",
                &json!({"contentBlockIndex": index}),
            ));
            index += 1;
        }
        for t in &a.texts {
            for p in pieces(&mut rng, t) {
                bytes.extend(frame(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": index, "delta": {"text": p}}),
                ));
            }
            bytes.extend(frame(
                "contentBlockStop",
                &json!({"contentBlockIndex": index}),
            ));
            index += 1;
        }
        for (id, name, input) in &a.calls {
            bytes.extend(frame("contentBlockStart", &json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id, "name": name}}})));
            for p in pieces(&mut rng, &input.to_string()) {
                bytes.extend(frame(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": p}}}),
                ));
            }
            bytes.extend(frame(
                "contentBlockStop",
                &json!({"contentBlockIndex": index}),
            ));
            index += 1;
        }
        bytes.extend(frame("messageStop", &json!({"stopReason": stop})));
        bytes.extend(frame(
            "metadata",
            &json!({"usage": usage, "metrics": {"latencyMs": 12}}),
        ));
        let mut t = bedrock::StreamTranslator::new("bedrock-up", 1, true);
        let out = feed(&mut rng, &bytes, &mut t);
        assert_eq!(t.error(), None);
        let said = read_openai_stream(&out);
        assert!(said.done);
        assert_eq!(said.content, a.texts.concat());
        assert_eq!(
            said.reasoning,
            a.thinking
                .as_ref()
                .map(|(t, _)| t.clone())
                .unwrap_or_default()
        );
        assert_calls(&said, &a.calls, true, "bedrock stream");
        assert_eq!(
            said.finish.as_deref(),
            Some(if a.calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            })
        );
    }
}

/// OpenAI-compatible answers (chunk streams as an upstream sends them) → an Anthropic client.
#[test]
fn openai_answers_translate_for_anthropic_clients() {
    let mut rng = Rng::with_seed(0x0a1_0001);
    for _ in 0..CASES {
        let a = answer(&mut rng);
        let text = a.texts.concat();
        let mut chunks = vec![json!({"role": "assistant", "content": ""})];
        if let Some((t, _)) = &a.thinking {
            chunks.extend(
                pieces(&mut rng, t)
                    .into_iter()
                    .map(|p| json!({"reasoning_content": p})),
            );
        }
        if !text.is_empty() {
            chunks.extend(
                pieces(&mut rng, &text)
                    .into_iter()
                    .map(|p| json!({"content": p})),
            );
        }
        for (k, (id, name, input)) in a.calls.iter().enumerate() {
            chunks.push(json!({"tool_calls": [{"index": k, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}));
            for p in pieces(&mut rng, &input.to_string()) {
                chunks.push(json!({"tool_calls": [{"index": k, "function": {"arguments": p}}]}));
            }
        }
        let finish = if a.calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        let mut sse_text = String::new();
        for (n, delta) in chunks.iter().enumerate() {
            let last = n + 1 == chunks.len();
            let c = json!({"id": "chatcmpl-g", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": if last { json!(finish) } else { Value::Null }}]});
            sse_text.push_str(&format!("data: {c}\n\n"));
        }
        sse_text.push_str(&format!("data: {}\n\ndata: [DONE]\n\n",
            json!({"id": "chatcmpl-g", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x", "choices": [],
                   "usage": {"prompt_tokens": a.input_tokens, "completion_tokens": a.output_tokens, "total_tokens": a.input_tokens + a.output_tokens}})));
        let mut i = inbound::ChatStreamToMessages::new("fb");
        let events = feed(&mut rng, sse_text.as_bytes(), &mut i);
        assert_eq!(i.error(), None, "{sse_text}");
        let heard = read_anthropic_stream(&events);
        assert!(heard.stopped, "{sse_text}");
        assert_eq!(heard.text, text);
        assert_eq!(
            heard.thinking,
            a.thinking
                .as_ref()
                .map(|(t, _)| t.clone())
                .unwrap_or_default()
        );
        assert_eq!(heard.tools, a.calls);

        // The same answer as one body.
        let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
        if !a.calls.is_empty() {
            message["tool_calls"] = a
                .calls
                .iter()
                .map(|(id, name, input)| {
                    json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": input.to_string()}})
                })
                .collect();
        }
        let body = json!({"id": "chatcmpl-g", "object": "chat.completion", "created": 1, "model": "gpt-x",
                          "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                          "usage": {"prompt_tokens": a.input_tokens, "completion_tokens": a.output_tokens, "total_tokens": 1}});
        let m = parse(
            inbound::chat_response_to_message(body.to_string().as_bytes(), "fb"),
            "inbound",
            &body,
        );
        let uses: Vec<(String, String, Value)> = m["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .map(|b| {
                (
                    b["id"].as_str().unwrap().to_owned(),
                    b["name"].as_str().unwrap().to_owned(),
                    b["input"].clone(),
                )
            })
            .collect();
        assert_eq!(uses, a.calls);
        assert_eq!(m["usage"]["output_tokens"], a.output_tokens);
    }
}
