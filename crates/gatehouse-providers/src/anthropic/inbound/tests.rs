//! Fixtures follow the examples of Anthropic's Messages, tool use, vision, extended thinking
//! and streaming documentation, and OpenAI's chat completions reference.

use serde_json::{Value, json};

use super::super::chat_request_to_messages;
use super::*;

const UPSTREAM: &str = "gpt-4o";

fn translate(req: Value) -> Value {
    let bytes = messages_request_to_chat(&req, UPSTREAM, false).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn base(messages: Value) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages})
}

fn with(mut req: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    req
}

fn out(messages: Value) -> Value {
    json!({"model": UPSTREAM, "max_tokens": 1024, "messages": messages})
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Get the current weather in a given location",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}})
}

fn weather_function() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a given location",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}})
}

#[test]
fn requests() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "minimal string content",
            base(json!([{"role": "user", "content": "Hello, Claude"}])),
            out(json!([{"role": "user", "content": "Hello, Claude"}])),
        ),
        (
            "system string, single text block becomes a string",
            with(
                base(json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])),
                json!({"system": "You are a seasoned data scientist."}),
            ),
            out(
                json!([{"role": "system", "content": "You are a seasoned data scientist."},
                       {"role": "user", "content": "Hi"}]),
            ),
        ),
        (
            "system blocks joined, cache_control dropped",
            with(
                base(
                    json!([{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]}]),
                ),
                json!({"system": [{"type": "text", "text": "You are Claude Code."},
                                   {"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral"}}]}),
            ),
            out(
                json!([{"role": "system", "content": "You are Claude Code.\n\nLong doc"},
                       {"role": "user", "content": "Hi"}]),
            ),
        ),
        (
            "images: base64 and url",
            base(json!([{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/a.jpg"}},
                {"type": "text", "text": "Describe these images."}]}])),
            out(json!([{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/a.jpg"}},
                {"type": "text", "text": "Describe these images."}]}])),
        ),
        (
            "documents: base64 pdf and plain text",
            base(json!([{"role": "user", "content": [
                {"type": "document", "title": "paper.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Grass is green."}},
                {"type": "text", "text": "Summarize."}]}])),
            out(json!([{"role": "user", "content": [
                {"type": "file", "file": {"filename": "paper.pdf", "file_data": "data:application/pdf;base64,JVBERi0"}},
                {"type": "text", "text": "Grass is green."},
                {"type": "text", "text": "Summarize."}]}])),
        ),
        (
            "assistant tool_use, then tool results before the user's text",
            base(json!([
                {"role": "user", "content": "Weather in SF and NYC?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking both."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "San Francisco, CA"}},
                    {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"location": "New York, NY"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "15 degrees"},
                    {"type": "tool_result", "tool_use_id": "toolu_02", "content": [{"type": "text", "text": "ConnectionError"}], "is_error": true},
                    {"type": "text", "text": "Thanks"}]}])),
            out(json!([
                {"role": "user", "content": "Weather in SF and NYC?"},
                {"role": "assistant", "content": "Checking both.", "tool_calls": [
                    {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\"}"}},
                    {"id": "toolu_02", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"New York, NY\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_01", "content": "15 degrees"},
                {"role": "tool", "tool_call_id": "toolu_02", "content": "Error: ConnectionError"},
                {"role": "user", "content": "Thanks"}])),
        ),
        (
            "tool result with text blocks and an image: image moves to a user message",
            base(json!([
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "screenshot", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
                    {"type": "text", "text": "line 1"}, {"type": "text", "text": "line 2"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]}]}])),
            out(json!([
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "line 1\nline 2"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]}])),
        ),
        (
            "thinking and redacted_thinking kept with signatures",
            base(json!([
                {"role": "user", "content": "What is 27 * 453?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Let me compute.", "signature": "EqQBCgIYAhIM"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"},
                    {"type": "text", "text": "12231"},
                    {"type": "text", "text": "Done."}]},
                {"role": "user", "content": "Thanks"}])),
            out(json!([
                {"role": "user", "content": "What is 27 * 453?"},
                {"role": "assistant",
                 "content": [{"type": "text", "text": "12231"}, {"type": "text", "text": "Done."}],
                 "reasoning_content": "Let me compute.",
                 "thinking_blocks": [
                    {"type": "thinking", "thinking": "Let me compute.", "signature": "EqQBCgIYAhIM"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"}]},
                {"role": "user", "content": "Thanks"}])),
        ),
        (
            "sampling, stop, user, thinking budget; top_k dropped",
            with(
                base(json!([{"role": "user", "content": "Hi"}])),
                json!({
                "stop_sequences": ["\n\nHuman:", "END"], "temperature": 0.5, "top_p": 0.9, "top_k": 40,
                "metadata": {"user_id": "user-123"}, "thinking": {"type": "enabled", "budget_tokens": 10000},
                "service_tier": "auto"}),
            ),
            with(
                out(json!([{"role": "user", "content": "Hi"}])),
                json!({
                "stop": ["\n\nHuman:", "END"], "temperature": 0.5, "top_p": 0.9, "user": "user-123",
                "reasoning_effort": "high"}),
            ),
        ),
        (
            "tools: custom and untyped; disable_parallel_tool_use",
            with(
                base(json!([{"role": "user", "content": "Hi"}])),
                json!({
                "tools": [weather_tool(), with(weather_tool(), json!({"type": "custom", "name": "w2", "cache_control": {"type": "ephemeral"}}))],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
            ),
            with(
                out(json!([{"role": "user", "content": "Hi"}])),
                json!({
                "tools": [weather_function(), {"type": "function", "function": {"name": "w2", "description": "Get the current weather in a given location",
                    "parameters": weather_tool()["input_schema"]}}],
                "tool_choice": "required", "parallel_tool_calls": false}),
            ),
        ),
        (
            "tool_choice without tools dropped",
            with(
                base(json!([{"role": "user", "content": "Hi"}])),
                json!({"tool_choice": {"type": "auto"}}),
            ),
            out(json!([{"role": "user", "content": "Hi"}])),
        ),
    ];
    for (name, input, expected) in cases {
        assert_eq!(translate(input), expected, "{name}");
    }
}

#[test]
fn thinking_budgets() {
    for (thinking, effort) in [
        (
            json!({"type": "enabled", "budget_tokens": 1024}),
            Some("low"),
        ),
        (
            json!({"type": "enabled", "budget_tokens": 1025}),
            Some("medium"),
        ),
        (
            json!({"type": "enabled", "budget_tokens": 4096}),
            Some("medium"),
        ),
        (
            json!({"type": "enabled", "budget_tokens": 4097}),
            Some("high"),
        ),
        (json!({"type": "disabled"}), None),
    ] {
        let got = translate(with(
            base(json!([{"role": "user", "content": "Hi"}])),
            json!({ "thinking": thinking }),
        ));
        assert_eq!(
            got.get("reasoning_effort").and_then(Value::as_str),
            effort,
            "{thinking}"
        );
    }
}

#[test]
fn tool_choice_variants() {
    for (choice, expected) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
        (
            json!({"type": "tool", "name": "get_weather"}),
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
    ] {
        let got = translate(with(
            base(json!([{"role": "user", "content": "Hi"}])),
            json!({"tools": [weather_tool()], "tool_choice": choice}),
        ));
        assert_eq!(got["tool_choice"], expected, "{choice}");
        assert!(got.get("parallel_tool_calls").is_none());
    }
}

#[test]
fn streaming_flag() {
    let req = base(json!([{"role": "user", "content": "Hi"}]));
    let got: Value =
        serde_json::from_slice(&messages_request_to_chat(&req, UPSTREAM, true).unwrap()).unwrap();
    assert_eq!(got["stream"], json!(true));
    assert_eq!(got["stream_options"], json!({"include_usage": true}));
    assert!(translate(req).get("stream").is_none());
}

#[test]
fn request_errors() {
    let hi = json!([{"role": "user", "content": "Hi"}]);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"max_tokens": 10, "messages": hi}), "model"),
        (
            json!({"model": 5, "max_tokens": 10, "messages": hi}),
            "model",
        ),
        (json!({"model": "m", "messages": hi}), "max_tokens"),
        (
            json!({"model": "m", "max_tokens": 0, "messages": hi}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": "10", "messages": hi}),
            "max_tokens",
        ),
        (json!({"model": "m", "max_tokens": 10}), "messages"),
        (
            json!({"model": "m", "max_tokens": 10, "messages": []}),
            "messages",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": 3}]}),
            "messages[0].content",
        ),
        (with(base(hi.clone()), json!({"system": 5})), "system"),
        (
            with(base(hi.clone()), json!({"system": [{"type": "image"}]})),
            "system[0]",
        ),
        (
            with(base(hi.clone()), json!({"stop_sequences": "END"})),
            "stop_sequences",
        ),
        (
            with(base(hi.clone()), json!({"stop_sequences": ["a", 1]})),
            "stop_sequences[1]",
        ),
        (
            with(base(hi.clone()), json!({"temperature": "hot"})),
            "temperature",
        ),
        (
            with(
                base(hi.clone()),
                json!({"tools": [weather_tool(), {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}),
            ),
            "tools[1]",
        ),
        (
            with(base(hi.clone()), json!({"tools": [{"input_schema": {}}]})),
            "tools[0].name",
        ),
        (
            with(
                base(hi.clone()),
                json!({"tools": [weather_tool()], "tool_choice": {"type": "tool"}}),
            ),
            "tool_choice.name",
        ),
        (
            with(
                base(hi.clone()),
                json!({"tools": [weather_tool()], "tool_choice": {"type": "maybe"}}),
            ),
            "tool_choice",
        ),
        (
            base(
                json!([{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]),
            ),
            "messages[0].content[0].source.type",
        ),
        (
            base(
                json!([{"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}]}]),
            ),
            "messages[0].content[0].source.type",
        ),
        (
            base(
                json!([{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]}]),
            ),
            "messages[0].content[0].source.media_type",
        ),
        (
            base(json!([{"role": "user", "content": [{"type": "search_result", "source": "x"}]}])),
            "messages[0].content[0].type",
        ),
        (
            base(json!([{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}])),
            "messages[0].content[0].tool_use_id",
        ),
        (
            base(
                json!([{"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}]),
            ),
            "messages[0].content[0].type",
        ),
        (
            base(
                json!([{"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}]),
            ),
            "messages[0].content[0].id",
        ),
    ];
    for (req, param) in cases {
        let err = messages_request_to_chat(&req, UPSTREAM, false).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{req}: {err}");
    }
    let err = messages_request_to_chat(&json!([1]), UPSTREAM, false).unwrap_err();
    assert_eq!(err.param, None);
}

/// Anthropic → OpenAI (this module) → Anthropic (the upstream direction) keeps system,
/// messages and tools, modulo the documented drops (`cache_control`, `is_error` prefix).
#[test]
fn round_trip_through_chat_request_to_messages() {
    let text = |t: &str| json!({"type": "text", "text": t});
    let cases: Vec<Value> = vec![
        json!({"model": "m", "max_tokens": 100, "system": "Be brief.",
               "messages": [{"role": "user", "content": [text("Hi")]},
                            {"role": "assistant", "content": [text("Hello!")]},
                            {"role": "user", "content": [text("Bye"), text("now")]}]}),
        json!({"model": "m", "max_tokens": 100, "tools": [weather_tool()], "tool_choice": {"type": "tool", "name": "get_weather"},
               "messages": [
                {"role": "user", "content": [text("Weather?"),
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0"}}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Use the tool.", "signature": "sig=="},
                    {"type": "redacted_thinking", "data": "opaque"},
                    text("Let me check."),
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Rome", "unit": ["c"]}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"},
                    text("And tomorrow?")]}]}),
    ];
    for original in cases {
        let chat: Value =
            serde_json::from_slice(&messages_request_to_chat(&original, UPSTREAM, false).unwrap())
                .unwrap();
        let back: Value =
            serde_json::from_slice(&chat_request_to_messages(&chat, "m", false).unwrap()).unwrap();
        assert_eq!(back["messages"], original["messages"], "{chat}");
        assert_eq!(back.get("system"), original.get("system"));
        assert_eq!(back.get("tools"), original.get("tools"));
        assert_eq!(back.get("tool_choice"), original.get("tool_choice"));
        assert_eq!(back["max_tokens"], original["max_tokens"]);
    }
}

/// A Claude Code-shaped request: cache breakpoints on the system prompt, the tools and the
/// last turn; extended thinking with its budget; a signed thinking block to send back.
fn claude_code_request() -> Value {
    let cc = json!({"type": "ephemeral"});
    json!({"model": "claude-sonnet-4-5", "max_tokens": 32000,
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": cc},
                   {"type": "text", "text": "cwd: /src"}],
        "tools": [weather_tool(), {"name": "Bash", "input_schema": {"type": "object"}, "cache_control": cc}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?", "cache_control": cc}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "sig=="},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}, "cache_control": cc}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "cache_control": cc}]}]})
}

#[test]
fn translated_target_keeps_thinking_and_cache_control() {
    let original = claude_code_request();
    let cc = json!({"type": "ephemeral"});
    let chat: Value = serde_json::from_slice(
        &messages_request_to_chat_for(&original, UPSTREAM, false, ChatTarget::Translated).unwrap(),
    )
    .unwrap();
    assert_eq!(
        chat["thinking"],
        json!({"type": "enabled", "budget_tokens": 31999})
    );
    assert_eq!(chat["reasoning_effort"], "high");
    assert_eq!(
        chat["messages"][0],
        json!({"role": "system", "content": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": cc},
            {"type": "text", "text": "cwd: /src"}]})
    );
    assert_eq!(
        chat["messages"][1],
        json!({"role": "user", "content": [{"type": "text", "text": "Weather in Paris?", "cache_control": cc}]})
    );
    assert_eq!(chat["messages"][2]["cache_control"], cc);
    assert_eq!(
        chat["messages"][2]["thinking_blocks"][0]["signature"],
        "sig=="
    );
    assert_eq!(
        chat["messages"][3],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "18C", "cache_control": cc})
    );
    assert!(chat["tools"][0].get("cache_control").is_none());
    assert_eq!(chat["tools"][1]["cache_control"], cc);

    // The Anthropic upstream translator reads all of it back where it was.
    let back: Value =
        serde_json::from_slice(&chat_request_to_messages(&chat, "m", false).unwrap()).unwrap();
    assert_eq!(back["messages"], original["messages"]);
    assert_eq!(back["system"], original["system"]);
    assert_eq!(back["tools"], original["tools"]);
    assert_eq!(back["thinking"], original["thinking"]);
    assert_eq!(back["max_tokens"], original["max_tokens"]);

    // An OpenAI-compatible upstream gets neither (and the plain shapes it got before).
    let plain = translate(original);
    assert!(plain.get("thinking").is_none());
    let text = plain.to_string();
    assert!(!text.contains("cache_control"), "{text}");
    assert_eq!(
        plain["messages"][0]["content"],
        "You are Claude Code.\n\ncwd: /src"
    );
    assert_eq!(
        plain["messages"][1],
        json!({"role": "user", "content": "Weather in Paris?"})
    );
}

// ---- responses ----

fn respond(message: Value, finish: &str, usage: Value) -> Value {
    let body = json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    });
    let bytes = chat_response_to_message(body.to_string().as_bytes(), "claude-x").unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

#[test]
fn response_text() {
    let got = respond(
        json!({"role": "assistant", "content": "Hello there!", "refusal": null}),
        "stop",
        usage(19, 10),
    );
    assert_eq!(
        got,
        json!({"id": "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT", "type": "message", "role": "assistant", "model": "gpt-4o-2024-08-06",
               "content": [{"type": "text", "text": "Hello there!"}], "stop_reason": "end_turn", "stop_sequence": null,
               "usage": {"input_tokens": 19, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 10}})
    );
}

#[test]
fn response_tools_and_thinking() {
    let calls = json!([
        {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Boston, MA\"}"}},
        {"id": "call_def", "type": "function", "function": {"name": "broken", "arguments": "{\"loc"}},
        {"id": "call_ghi", "type": "function", "function": {"name": "array", "arguments": "[1]"}}]);
    let got = respond(
        json!({"role": "assistant", "content": null, "tool_calls": calls, "reasoning_content": "Need weather.",
               "thinking_blocks": [{"type": "thinking", "thinking": "Need weather.", "signature": "sig"},
                                   {"type": "redacted_thinking", "data": "abc"}]}),
        "tool_calls",
        usage(5, 6),
    );
    assert_eq!(
        got["content"],
        json!([
            {"type": "thinking", "thinking": "Need weather.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "abc"},
            {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"location": "Boston, MA"}},
            {"type": "tool_use", "id": "call_def", "name": "broken", "input": {}},
            {"type": "tool_use", "id": "call_ghi", "name": "array", "input": {}}])
    );
    assert_eq!(got["stop_reason"], "tool_use");

    let got = respond(
        json!({"role": "assistant", "content": "4", "reasoning_content": "2+2"}),
        "stop",
        usage(5, 6),
    );
    assert_eq!(
        got["content"],
        json!([{"type": "thinking", "thinking": "2+2", "signature": ""}, {"type": "text", "text": "4"}])
    );
}

#[test]
fn response_stop_reasons() {
    let tool =
        json!([{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]);
    for (finish, tool_calls, expected) in [
        ("stop", Value::Null, "end_turn"),
        ("length", Value::Null, "max_tokens"),
        ("tool_calls", tool.clone(), "tool_use"),
        ("function_call", Value::Null, "tool_use"),
        ("content_filter", Value::Null, "refusal"),
        ("stop", tool, "tool_use"),
        ("something_new", Value::Null, "end_turn"),
    ] {
        let got = respond(
            json!({"role": "assistant", "content": "x", "tool_calls": tool_calls}),
            finish,
            usage(1, 1),
        );
        assert_eq!(got["stop_reason"], expected, "{finish}");
        assert_eq!(got["stop_sequence"], Value::Null);
    }
}

#[test]
fn response_cached_usage_and_errors() {
    let got = respond(
        json!({"role": "assistant", "content": "x"}),
        "stop",
        json!({"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
               "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0}}),
    );
    assert_eq!(
        got["usage"],
        json!({"input_tokens": 86, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1920, "output_tokens": 300})
    );
    // LiteLLM's cache_creation_input_tokens (the Bedrock and Anthropic translators send it):
    // counted in prompt_tokens, reported apart by Anthropic.
    let got = respond(
        json!({"role": "assistant", "content": "x"}),
        "stop",
        json!({"prompt_tokens": 1610, "completion_tokens": 5, "total_tokens": 1615,
               "prompt_tokens_details": {"cached_tokens": 100},
               "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 100}),
    );
    assert_eq!(
        got["usage"],
        json!({"input_tokens": 10, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 100, "output_tokens": 5})
    );
    let no_usage =
        json!({"id": "x", "choices": [{"message": {"content": ""}, "finish_reason": "stop"}]});
    let got: Value = serde_json::from_slice(
        &chat_response_to_message(no_usage.to_string().as_bytes(), "m").unwrap(),
    )
    .unwrap();
    assert_eq!(got["content"], json!([]));
    assert_eq!(got["id"], "msg_x");
    assert_eq!(got["usage"]["output_tokens"], 0);
    for bad in [&b"nope"[..], br#"{"choices": []}"#, br#"{"choices": [{}]}"#] {
        assert!(chat_response_to_message(bad, "m").is_err());
    }
}

// ---- streams ----

fn frame(delta: Value, finish: Value) -> String {
    let chunk = json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

fn usage_frame() -> String {
    let chunk = json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
        "model": "gpt-4o-mini", "choices": [],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42, "prompt_tokens_details": {"cached_tokens": 10}}});
    format!("data: {chunk}\n\n")
}

const DONE: &str = "data: [DONE]\n\n";

/// Parses Anthropic SSE output; asserts every `event:` names the data's `type`.
fn events(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.is_empty() || text.ends_with("\n\n"), "{text}");
    text.split_terminator("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(event.strip_prefix("event: ").unwrap(), data["type"]);
            data
        })
        .collect()
}

fn run(input: &str) -> Vec<Value> {
    let mut t = ChatStreamToMessages::new("claude-x");
    let mut out = t.push(input.as_bytes());
    out.extend(t.finish());
    assert_eq!(t.error(), None);
    events(&out)
}

fn message_start() -> Value {
    json!({"type": "message_start", "message": {"id": "msg_123", "type": "message", "role": "assistant",
        "model": "gpt-4o-mini", "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 0, "output_tokens": 0}}})
}

fn delta(index: u64, delta: Value) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": delta})
}

fn start(index: u64, block: Value) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": block})
}

fn stop(index: u64) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

fn message_end(stop_reason: &str, usage: Value) -> [Value; 2] {
    [
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": usage}),
        json!({"type": "message_stop"}),
    ]
}

fn full_usage() -> Value {
    json!({"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10, "output_tokens": 12})
}

fn text_stream() -> String {
    [
        frame(json!({"role": "assistant", "content": ""}), Value::Null),
        frame(json!({"content": "Hello"}), Value::Null),
        ": keep-alive\n\n".to_owned(),
        frame(json!({"content": " world"}), Value::Null),
        frame(json!({}), json!("stop")),
        usage_frame(),
        DONE.to_owned(),
    ]
    .concat()
}

fn expected_text_events() -> Vec<Value> {
    let mut expected = vec![
        message_start(),
        json!({"type": "ping"}),
        start(0, json!({"type": "text", "text": ""})),
        delta(0, json!({"type": "text_delta", "text": "Hello"})),
        delta(0, json!({"type": "text_delta", "text": " world"})),
        stop(0),
    ];
    expected.extend(message_end("end_turn", full_usage()));
    expected
}

#[test]
fn stream_text_with_usage() {
    assert_eq!(run(&text_stream()), expected_text_events());
}

fn tool_stream() -> String {
    let call = |v: Value| frame(json!({"tool_calls": [v]}), Value::Null);
    [
        frame(json!({"role": "assistant", "content": null}), Value::Null),
        call(json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}})),
        call(json!({"index": 0, "function": {"arguments": "{\"loc"}})),
        call(json!({"index": 0, "function": {"arguments": "ation\":\"Paris\"}"}})),
        call(json!({"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}})),
        frame(json!({}), json!("tool_calls")),
        DONE.to_owned(),
    ]
    .concat()
}

#[test]
fn stream_two_tool_calls_with_fragments() {
    let mut expected = vec![
        message_start(),
        json!({"type": "ping"}),
        start(
            0,
            json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}),
        ),
        delta(
            0,
            json!({"type": "input_json_delta", "partial_json": "{\"loc"}),
        ),
        delta(
            0,
            json!({"type": "input_json_delta", "partial_json": "ation\":\"Paris\"}"}),
        ),
        stop(0),
        start(
            1,
            json!({"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}),
        ),
        delta(1, json!({"type": "input_json_delta", "partial_json": "{}"})),
        stop(1),
    ];
    expected.extend(message_end("tool_use", json!({"output_tokens": 0})));
    assert_eq!(run(&tool_stream()), expected);
}

#[test]
fn stream_text_then_tool_call() {
    let input = [
        frame(json!({"content": "Checking."}), Value::Null),
        frame(
            json!({"tool_calls": [{"index": 0, "id": "call_9", "function": {"name": "f", "arguments": "{}"}}]}),
            json!("tool_calls"),
        ),
        DONE.to_owned(),
    ]
    .concat();
    let got = run(&input);
    assert_eq!(
        got[2..7],
        [
            start(0, json!({"type": "text", "text": ""})),
            delta(0, json!({"type": "text_delta", "text": "Checking."})),
            stop(0),
            start(
                1,
                json!({"type": "tool_use", "id": "call_9", "name": "f", "input": {}})
            ),
            delta(1, json!({"type": "input_json_delta", "partial_json": "{}"})),
        ]
    );
    assert_eq!(got[8]["delta"]["stop_reason"], "tool_use");
}

fn reasoning_stream() -> String {
    [
        frame(json!({"role": "assistant", "reasoning_content": "Let me "}), Value::Null),
        // LiteLLM repeats the text in thinking_blocks.
        frame(
            json!({"reasoning_content": "think.", "thinking_blocks": [{"type": "thinking", "thinking": "think.", "signature": null}]}),
            Value::Null,
        ),
        frame(
            json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "EqQBCg=="}]}),
            Value::Null,
        ),
        frame(json!({"content": "42"}), Value::Null),
        frame(json!({}), json!("length")),
        usage_frame(),
        DONE.to_owned(),
    ]
    .concat()
}

#[test]
fn stream_reasoning_then_text() {
    let mut expected = vec![
        message_start(),
        json!({"type": "ping"}),
        start(
            0,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
        ),
        delta(0, json!({"type": "thinking_delta", "thinking": "Let me "})),
        delta(0, json!({"type": "thinking_delta", "thinking": "think."})),
        delta(
            0,
            json!({"type": "signature_delta", "signature": "EqQBCg=="}),
        ),
        stop(0),
        start(1, json!({"type": "text", "text": ""})),
        delta(1, json!({"type": "text_delta", "text": "42"})),
        stop(1),
    ];
    expected.extend(message_end("max_tokens", full_usage()));
    assert_eq!(run(&reasoning_stream()), expected);
}

#[test]
fn stream_byte_by_byte_and_crlf_equal_whole() {
    for input in [text_stream(), tool_stream(), reasoning_stream()] {
        let whole = run(&input);
        let crlf = input.replace('\n', "\r\n");
        for variant in [&input, &crlf] {
            let mut t = ChatStreamToMessages::new("claude-x");
            let mut out = Vec::new();
            for b in variant.as_bytes() {
                let piece = t.push(std::slice::from_ref(b));
                // Only complete events come out.
                assert!(piece.is_empty() || piece.ends_with(b"\n\n"));
                out.extend(piece);
            }
            out.extend(t.finish());
            assert_eq!(t.error(), None);
            assert_eq!(events(&out), whole);
        }
    }
}

#[test]
fn stream_finish_without_done_and_no_trailing_newline() {
    // No [DONE]: finish() completes after a finish_reason; the last frame lacks its blank line.
    let input = [
        frame(json!({"content": "Hi"}), Value::Null),
        frame(json!({}), json!("stop")).trim_end().to_owned(),
    ]
    .concat();
    let got = run(&input);
    assert_eq!(got.last(), Some(&json!({"type": "message_stop"})));
    assert_eq!(got[got.len() - 2]["delta"]["stop_reason"], "end_turn");

    // Nothing after [DONE] is emitted, finish() adds nothing.
    let mut t = ChatStreamToMessages::new("claude-x");
    let mut out = t.push(text_stream().as_bytes());
    out.extend(t.push(frame(json!({"content": "late"}), Value::Null).as_bytes()));
    assert!(t.finish().is_empty());
    assert_eq!(events(&out), expected_text_events());
}

#[test]
fn stream_error_frame() {
    let mut t = ChatStreamToMessages::new("claude-x");
    let input = [
        frame(json!({"content": "Hi"}), Value::Null),
        "data: {\"error\": {\"message\": \"Rate limit reached\", \"type\": \"rate_limit_exceeded\"}}\n\n".to_owned(),
        frame(json!({"content": "more"}), Value::Null),
    ]
    .concat();
    let out = t.push(input.as_bytes());
    assert_eq!(t.error(), Some("Rate limit reached"));
    let got = events(&out);
    assert_eq!(
        got.len(),
        4,
        "message_start, ping, block start, delta: {got:?}"
    );
    assert!(t.finish().is_empty());

    let mut t = ChatStreamToMessages::new("claude-x");
    t.push(b"data: {not json\n\n");
    assert_eq!(t.error(), Some("malformed chunk from upstream"));
}

#[test]
fn stream_early_end() {
    let mut t = ChatStreamToMessages::new("claude-x");
    t.push(frame(json!({"content": "Hi"}), Value::Null).as_bytes());
    assert!(t.finish().is_empty());
    assert!(t.error().unwrap().contains("ended"));

    let mut t = ChatStreamToMessages::new("claude-x");
    assert!(t.finish().is_empty());
    assert!(t.error().is_some());
}

#[test]
fn stream_empty_done() {
    let mut expected = vec![
        json!({"type": "message_start", "message": {"id": "msg_", "type": "message", "role": "assistant",
            "model": "claude-x", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        json!({"type": "ping"}),
    ];
    expected.extend(message_end("end_turn", json!({"output_tokens": 0})));
    assert_eq!(run(DONE), expected, "no chunk named a model: the fallback");
}

// ---- errors and estimates ----

#[test]
fn errors() {
    let body: Value =
        serde_json::from_slice(&error_body("not_found_error", "no such model")).unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "not_found_error", "message": "no such model"}})
    );
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "api_error"),
        (529, "overloaded_error"),
    ] {
        assert_eq!(error_kind(status), kind, "{status}");
    }
}

#[test]
fn estimate() {
    assert_eq!(estimate_input_tokens(&json!({})), 0);
    // 8 + 4 chars → 3 tokens; one more char rounds up.
    let req = json!({"system": "12345678", "messages": [{"role": "user", "content": "abcd"}]});
    assert_eq!(estimate_input_tokens(&req), 3);
    let req = json!({"system": [{"type": "text", "text": "12345678"}],
                     "messages": [{"role": "user", "content": [{"type": "text", "text": "abcde"}]}]});
    assert_eq!(estimate_input_tokens(&req), 4);
    let tools = json!([weather_tool()]);
    let req = json!({"messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}],
        "tools": tools});
    let chars = r#"{"a":1}"#.len() + 2 + tools.to_string().len();
    assert_eq!(estimate_input_tokens(&req), chars.div_ceil(4) as u64);
}

/// The answer names the model the OpenAI-compatible upstream reports (the completion's or the
/// first chunk's `model`); the name passed in only when the upstream names none.
#[test]
fn response_model_is_the_one_the_upstream_reports() {
    let message = json!({"role": "assistant", "content": "Hi"});
    assert_eq!(
        respond(message.clone(), "stop", usage(1, 1))["model"],
        "gpt-4o-2024-08-06"
    );
    for missing in [None, Some(json!(null)), Some(json!(""))] {
        let mut body = json!({"id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]});
        if let Some(model) = missing {
            body["model"] = model;
        }
        let bytes = chat_response_to_message(body.to_string().as_bytes(), "claude-x").unwrap();
        let got: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(got["model"], "claude-x", "fallback for {body}");
    }

    // Streamed: message_start carries the first chunk's model.
    let got = run(&(frame(json!({"content": "Hi"}), json!("stop")) + DONE));
    assert_eq!(got[0]["type"], "message_start");
    assert_eq!(got[0]["message"]["model"], "gpt-4o-mini");
    let anonymous =
        frame(json!({"content": "Hi"}), json!("stop")).replace(r#""model":"gpt-4o-mini","#, "");
    assert!(!anonymous.contains("gpt-4o-mini"));
    let got = run(&(anonymous + DONE));
    assert_eq!(got[0]["message"]["model"], "claude-x");
}

/// Asserts Anthropic's block discipline: one block open at a time, each delta for the open
/// block, each stop for it; returns each block's concatenated `partial_json` by index.
fn assert_blocks_whole(events: &[Value]) -> std::collections::BTreeMap<u64, String> {
    let mut open: Option<u64> = None;
    let mut json = std::collections::BTreeMap::new();
    for e in events {
        let index = e["index"].as_u64();
        match e["type"].as_str().unwrap() {
            "content_block_start" => {
                assert_eq!(
                    open, None,
                    "a block starts while another is open: {events:?}"
                );
                open = index;
            }
            "content_block_delta" => {
                assert_eq!(index, open, "a delta for a block that is not open: {e}");
                if let Some(p) = e["delta"]["partial_json"].as_str() {
                    json.entry(index.unwrap())
                        .or_insert_with(String::new)
                        .push_str(p);
                }
            }
            "content_block_stop" => {
                assert_eq!(index, open, "a stop for a block that is not open: {e}");
                open = None;
            }
            _ => {}
        }
    }
    assert_eq!(open, None);
    json
}

#[test]
fn stream_interleaved_tool_call_deltas_keep_blocks_whole() {
    let calls = |v: Value| frame(json!({"tool_calls": v}), Value::Null);
    let input = [
        calls(json!([
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}])),
        calls(json!([{"index": 0, "function": {"arguments": "{\"city\":"}}])),
        calls(json!([{"index": 1, "function": {"arguments": "{\"tz\":"}}])),
        calls(json!([{"index": 0, "function": {"arguments": "\"Paris}\"}"}}])),
        calls(json!([{"index": 1, "function": {"arguments": "\"CET\"}"}},
                     {"index": 2, "id": "call_c", "type": "function", "function": {"name": "noop", "arguments": "{}"}}])),
        frame(json!({}), json!("tool_calls")),
        DONE.to_owned(),
    ]
    .concat();
    let got = run(&input);
    let json = assert_blocks_whole(&got);
    let starts: Vec<&Value> = got
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .map(|e| &e["content_block"])
        .collect();
    assert_eq!(
        starts,
        [
            &json!({"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}}),
            &json!({"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}}),
            &json!({"type": "tool_use", "id": "call_c", "name": "noop", "input": {}}),
        ]
    );
    let parsed: Vec<Value> = json
        .values()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert_eq!(
        parsed,
        [json!({"city": "Paris}"}), json!({"tz": "CET"}), json!({})]
    );
    // The first call streamed as it came: its pieces precede the second call's block.
    let first_stop = got.iter().position(|e| e == &stop(0)).unwrap();
    let second_start = got
        .iter()
        .position(|e| e["type"] == "content_block_start" && e["index"] == 1)
        .unwrap();
    assert!(first_stop < second_start);
    assert_eq!(got[got.len() - 2]["delta"]["stop_reason"], "tool_use");

    // Byte by byte gives the same events.
    let mut t = ChatStreamToMessages::new("claude-x");
    let mut out = Vec::new();
    for b in input.as_bytes() {
        out.extend(t.push(std::slice::from_ref(b)));
    }
    out.extend(t.finish());
    assert_eq!(events(&out), got);

    // A call whose arguments never complete keeps its block open: the other calls wait
    // and are sent whole at the end, none lost.
    let input = [
        calls(json!([{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{\"a\":"}}])),
        calls(json!([{"index": 1, "id": "call_b", "function": {"name": "g", "arguments": "{\"b\":"}}])),
        calls(json!([{"index": 1, "function": {"arguments": "2}"}}])),
        calls(json!([{"index": 0, "function": {"arguments": "1"}}])),
        frame(json!({}), json!("tool_calls")),
        DONE.to_owned(),
    ]
    .concat();
    let json = assert_blocks_whole(&run(&input));
    assert_eq!(json.values().collect::<Vec<_>>(), ["{\"a\":1", "{\"b\":2}"]);
}

#[test]
fn stream_thinking_blocks_by_index_and_redacted() {
    let input = [
        frame(
            json!({"reasoning_content": "First.", "thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "First."}]}),
            Value::Null,
        ),
        frame(
            json!({"thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "", "signature": "sig-1"}]}),
            Value::Null,
        ),
        // A second thinking block right after the first: a new index, a new block.
        frame(
            json!({"reasoning_content": "Second.", "thinking_blocks": [{"index": 1, "type": "thinking", "thinking": "Second."}]}),
            Value::Null,
        ),
        frame(
            json!({"thinking_blocks": [{"index": 1, "type": "thinking", "thinking": "", "signature": "sig-2"}]}),
            Value::Null,
        ),
        frame(
            json!({"thinking_blocks": [{"index": 2, "type": "redacted_thinking", "data": "EmwKAhgB"}]}),
            Value::Null,
        ),
        frame(json!({"content": "Done."}), json!("stop")),
        DONE.to_owned(),
    ]
    .concat();
    let got = run(&input);
    assert_blocks_whole(&got);
    let mut expected = vec![
        message_start(),
        json!({"type": "ping"}),
        start(
            0,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
        ),
        delta(0, json!({"type": "thinking_delta", "thinking": "First."})),
        delta(0, json!({"type": "signature_delta", "signature": "sig-1"})),
        stop(0),
        start(
            1,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
        ),
        delta(1, json!({"type": "thinking_delta", "thinking": "Second."})),
        delta(1, json!({"type": "signature_delta", "signature": "sig-2"})),
        stop(1),
        start(2, json!({"type": "redacted_thinking", "data": "EmwKAhgB"})),
        stop(2),
        start(3, json!({"type": "text", "text": ""})),
        delta(3, json!({"type": "text_delta", "text": "Done."})),
        stop(3),
    ];
    expected.extend(message_end("end_turn", json!({"output_tokens": 0})));
    assert_eq!(got, expected);
}

/// An upstream that gives its `thinking_blocks` entries no index (an OpenAI-compatible
/// proxy, or gatehouse's Bedrock stream before it had them): a signature ends a thinking
/// block, so back-to-back blocks stay apart, each with its own signature — never one block
/// with the texts joined and the signatures concatenated (which Claude would refuse).
#[test]
fn stream_unindexed_back_to_back_thinking_blocks_stay_apart() {
    let signature = |sig: &str| {
        frame(
            json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": sig}]}),
            Value::Null,
        )
    };
    let input = [
        frame(json!({"reasoning_content": "First."}), Value::Null),
        signature("sig-1"),
        frame(json!({"reasoning_content": "Second."}), Value::Null),
        signature("sig-2"),
        // A signature right after another: a block of its own too.
        signature("sig-3"),
        frame(json!({"content": "Done."}), json!("stop")),
        DONE.to_owned(),
    ]
    .concat();
    let got = run(&input);
    assert_blocks_whole(&got);
    let thinking = json!({"type": "thinking", "thinking": "", "signature": ""});
    let mut expected = vec![
        message_start(),
        json!({"type": "ping"}),
        start(0, thinking.clone()),
        delta(0, json!({"type": "thinking_delta", "thinking": "First."})),
        delta(0, json!({"type": "signature_delta", "signature": "sig-1"})),
        stop(0),
        start(1, thinking.clone()),
        delta(1, json!({"type": "thinking_delta", "thinking": "Second."})),
        delta(1, json!({"type": "signature_delta", "signature": "sig-2"})),
        stop(1),
        start(2, thinking),
        delta(2, json!({"type": "signature_delta", "signature": "sig-3"})),
        stop(2),
        start(3, json!({"type": "text", "text": ""})),
        delta(3, json!({"type": "text_delta", "text": "Done."})),
        stop(3),
    ];
    expected.extend(message_end("end_turn", json!({"output_tokens": 0})));
    assert_eq!(got, expected);
}

/// The `/v1/messages` → Bedrock chain, streamed: ConverseStream frames with two signed
/// reasoning blocks and a redacted one, through the Bedrock translator (OpenAI chunks) and
/// back to Anthropic events. Each reasoning block comes out as its own thinking block with
/// its own signature, the redacted one as `redacted_thinking`, fed any byte at a time.
#[test]
fn bedrock_stream_through_the_inbound_chain_keeps_reasoning_blocks_apart() {
    use crate::bedrock::{StreamTranslator, encode_message};
    let event = |kind: &str, payload: Value| {
        encode_message(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.to_string().as_bytes(),
        )
    };
    let reasoning = |i: u64, r: Value| {
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": i, "delta": {"reasoningContent": r}}),
        )
    };
    let upstream = [
        event("messageStart", json!({"role": "assistant"})),
        reasoning(0, json!({"text": "Mock thinking."})),
        reasoning(0, json!({"signature": "sig_mock_1_a"})),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        reasoning(1, json!({"text": "Mock thinking, part 2."})),
        reasoning(1, json!({"signature": "sig_mock_1_b"})),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        reasoning(2, json!({"redactedContent": "cmVkYWN0ZWRf"})),
        event("contentBlockStop", json!({"contentBlockIndex": 2})),
        event("contentBlockStart", json!({"contentBlockIndex": 3,
            "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{\"city\":\"Paris\"}"}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 3})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event("metadata", json!({"usage": {"inputTokens": 5, "outputTokens": 9}})),
    ]
    .concat();
    for step in [upstream.len(), 7, 1] {
        let mut bedrock = StreamTranslator::new("anthropic.claude-x-v1:0", 1, true);
        let mut inbound = ChatStreamToMessages::new("claude-x");
        let mut out = Vec::new();
        for piece in upstream.chunks(step) {
            out.extend(inbound.push(&bedrock.push(piece)));
        }
        out.extend(inbound.push(&bedrock.finish()));
        out.extend(inbound.finish());
        assert_eq!((bedrock.error(), inbound.error()), (None, None));
        let got = events(&out);
        assert_blocks_whole(&got);
        let blocks: Vec<&Value> = got
            .iter()
            .filter(|e| e["type"] != "message_start" && e["type"] != "ping")
            .collect();
        let thinking = json!({"type": "thinking", "thinking": "", "signature": ""});
        assert_eq!(
            blocks[..13],
            [
                &start(0, thinking.clone()),
                &delta(
                    0,
                    json!({"type": "thinking_delta", "thinking": "Mock thinking."})
                ),
                &delta(
                    0,
                    json!({"type": "signature_delta", "signature": "sig_mock_1_a"})
                ),
                &stop(0),
                &start(1, thinking),
                &delta(
                    1,
                    json!({"type": "thinking_delta", "thinking": "Mock thinking, part 2."})
                ),
                &delta(
                    1,
                    json!({"type": "signature_delta", "signature": "sig_mock_1_b"})
                ),
                &stop(1),
                &start(
                    2,
                    json!({"type": "redacted_thinking", "data": "cmVkYWN0ZWRf"})
                ),
                &stop(2),
                &start(
                    3,
                    json!({"type": "tool_use", "id": "tooluse_1", "name": "get_weather", "input": {}})
                ),
                &delta(
                    3,
                    json!({"type": "input_json_delta", "partial_json": "{\"city\":\"Paris\"}"})
                ),
                &stop(3),
            ],
            "step {step}"
        );
        assert_eq!(blocks[13]["delta"]["stop_reason"], "tool_use");
    }
}

#[test]
fn cache_creation_usage_is_kept() {
    // LiteLLM's usage fields (as gatehouse's own OpenAI answers for Anthropic models carry
    // them): prompt_tokens includes reads and writes.
    let u = json!({"prompt_tokens": 1300, "completion_tokens": 7, "total_tokens": 1307,
        "prompt_tokens_details": {"cached_tokens": 200},
        "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 200});
    let got = respond(
        json!({"role": "assistant", "content": "x"}),
        "stop",
        u.clone(),
    );
    let expected = json!({"input_tokens": 100, "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 200, "output_tokens": 7});
    assert_eq!(got["usage"], expected);
    let chunk =
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": u});
    let input = [
        frame(json!({"content": "x"}), json!("stop")),
        format!("data: {chunk}\n\n"),
        DONE.to_owned(),
    ]
    .concat();
    let got = run(&input);
    assert_eq!(got[got.len() - 2]["usage"], expected);
}
