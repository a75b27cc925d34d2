//! Fixtures follow the examples of Anthropic's Messages, tool use, vision, extended thinking
//! and streaming documentation.

use serde_json::{Value, json};

use super::*;

const MODEL: &str = "claude-sonnet-4-5-20250929";

fn translate(openai: Value) -> Value {
    let bytes = chat_request_to_messages(&openai, MODEL, false).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn translate_err(openai: Value) -> TranslateError {
    chat_request_to_messages(&openai, MODEL, false).unwrap_err()
}

#[test]
fn requests() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "minimal, default max_tokens",
            json!({"model": "m", "messages": [{"role": "user", "content": "Hello, Claude"}]}),
            json!({"model": MODEL, "max_tokens": DEFAULT_MAX_TOKENS,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, Claude"}]}]}),
        ),
        (
            "system and developer hoisted and joined",
            json!({"model": "m", "max_tokens": 1024, "messages": [
                {"role": "system", "content": "You are a seasoned data scientist."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer briefly."}]},
                {"role": "user", "content": "Analyze this dataset."}]}),
            json!({"model": MODEL, "max_tokens": 1024,
                   "system": "You are a seasoned data scientist.\n\nAnswer briefly.",
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Analyze this dataset."}]}]}),
        ),
        (
            "system with cache_control stays blocks",
            json!({"model": "m", "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Long document", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": "Summarize"}]}),
            json!({"model": MODEL, "max_tokens": DEFAULT_MAX_TOKENS,
                   "system": [{"type": "text", "text": "Long document", "cache_control": {"type": "ephemeral"}}],
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Summarize"}]}]}),
        ),
        (
            "multi-turn, consecutive same role merged",
            json!({"model": "m", "max_completion_tokens": 300, "max_tokens": 5, "messages": [
                {"role": "user", "content": "Hello there."},
                {"role": "user", "content": "Are you there?"},
                {"role": "assistant", "content": "Hi, I'm Claude."},
                {"role": "assistant", "content": [{"type": "text", "text": "How can I help?"}]},
                {"role": "user", "content": "Explain LLMs."}]}),
            json!({"model": MODEL, "max_tokens": 300, "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hello there."}, {"type": "text", "text": "Are you there?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Hi, I'm Claude."}, {"type": "text", "text": "How can I help?"}]},
                {"role": "user", "content": [{"type": "text", "text": "Explain LLMs."}]}]}),
        ),
        (
            "images: base64 data URL and https URL",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
                {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/ant.jpg", "detail": "high"}},
                {"type": "text", "text": "Describe these images."}]}]}),
            json!({"model": MODEL, "max_tokens": DEFAULT_MAX_TOKENS, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/ant.jpg"}},
                {"type": "text", "text": "Describe these images."}]}]}),
        ),
        (
            "tools, tool_choice auto, stop string, sampling, user",
            json!({"model": "m", "messages": [{"role": "user", "content": "What is the weather like in San Francisco?"}],
                   "tools": [{"type": "function", "function": {"name": "get_weather",
                       "description": "Get the current weather in a given location",
                       "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
                       "strict": true}},
                       {"type": "function", "function": {"name": "get_time"}}],
                   "tool_choice": "auto", "stop": "\n\nHuman:", "temperature": 0.5, "top_p": 0.9, "top_k": 40,
                   "user": "user-123", "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.2,
                   "response_format": {"type": "text"}, "stream_options": {"include_usage": true}}),
            json!({"model": MODEL, "max_tokens": DEFAULT_MAX_TOKENS,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "What is the weather like in San Francisco?"}]}],
                   "tools": [{"name": "get_weather", "description": "Get the current weather in a given location",
                              "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}},
                             {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}],
                   "tool_choice": {"type": "auto"}, "stop_sequences": ["\n\nHuman:"],
                   "temperature": 0.5, "top_p": 0.9, "top_k": 40, "metadata": {"user_id": "user-123"}}),
        ),
        (
            "tool round trip: tool_calls -> tool_use, tool messages merged into one user turn",
            json!({"model": "m", "stop": ["END", "STOP"], "messages": [
                {"role": "user", "content": "Weather in SF and NYC?"},
                {"role": "assistant", "content": "Let me check.", "tool_calls": [
                    {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\"}"}},
                    {"id": "toolu_01B", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "toolu_01A", "content": "15 degrees"},
                {"role": "tool", "tool_call_id": "toolu_01B", "content": [{"type": "text", "text": "20 degrees"}]},
                {"role": "user", "content": "Thanks"}]}),
            json!({"model": MODEL, "max_tokens": DEFAULT_MAX_TOKENS, "stop_sequences": ["END", "STOP"], "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in SF and NYC?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "San Francisco, CA"}},
                    {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "15 degrees"},
                    {"type": "tool_result", "tool_use_id": "toolu_01B", "content": [{"type": "text", "text": "20 degrees"}]},
                    {"type": "text", "text": "Thanks"}]}]}),
        ),
        (
            "reasoning_effort high under a small max_tokens: no thinking; thinking_blocks replayed first",
            json!({"model": "m", "max_tokens": 1000, "reasoning_effort": "high", "messages": [
                {"role": "user", "content": "Is 17 prime?"},
                {"role": "assistant", "content": "Yes.", "reasoning_content": "dropped",
                 "thinking_blocks": [{"type": "thinking", "thinking": "Check divisors.", "signature": "EqQBCgIYAhIM"},
                                     {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"}]},
                {"role": "user", "content": "And 18?"}]}),
            json!({"model": MODEL, "max_tokens": 1000, "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Is 17 prime?"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Check divisors.", "signature": "EqQBCgIYAhIM"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
                    {"type": "text", "text": "Yes."}]},
                {"role": "user", "content": [{"type": "text", "text": "And 18?"}]}]}),
        ),
        (
            "explicit thinking passes through; reasoning_effort ignored",
            json!({"model": "m", "max_tokens": 16000, "reasoning_effort": "low",
                   "thinking": {"type": "enabled", "budget_tokens": 10000},
                   "messages": [{"role": "user", "content": "Prove it."}]}),
            json!({"model": MODEL, "max_tokens": 16000, "thinking": {"type": "enabled", "budget_tokens": 10000},
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Prove it."}]}]}),
        ),
    ];
    for (name, input, expected) in cases {
        assert_eq!(translate(input), expected, "{name}");
    }
}

/// `{type: enabled, budget_tokens: n}`.
fn enabled(budget: u64) -> Value {
    json!({"type": "enabled", "budget_tokens": budget})
}

/// The rule of the request module doc: an explicit output limit is never raised; the
/// thinking budget is fitted under it (down to Anthropic's minimum of 1024, else no
/// thinking); only without a limit is one picked to cover the budget.
#[test]
fn thinking_budget_fits_under_the_clients_output_limit() {
    let cases: Vec<(&str, Value, u64, Value)> = vec![
        (
            "limit above the budget: both as sent",
            json!({"max_tokens": 16000, "thinking": enabled(10000)}),
            16000,
            enabled(10000),
        ),
        (
            "limit equal to the budget: budget lowered to limit - 1",
            json!({"max_tokens": 10000, "thinking": enabled(10000)}),
            10000,
            enabled(9999),
        ),
        (
            "max_completion_tokens is the limit (bounds reasoning + answer, as at OpenAI)",
            json!({"max_completion_tokens": 3000, "max_tokens": 64000, "thinking": enabled(10000)}),
            3000,
            enabled(2999),
        ),
        (
            "reasoning_effort high under a 2048 limit",
            json!({"max_tokens": 2048, "reasoning_effort": "high"}),
            2048,
            enabled(2047),
        ),
        (
            "lowered exactly to the minimum",
            json!({"max_tokens": 1025, "reasoning_effort": "high"}),
            1025,
            enabled(1024),
        ),
        (
            "below the minimum: no thinking",
            json!({"max_tokens": 1024, "reasoning_effort": "low"}),
            1024,
            Value::Null,
        ),
        (
            "a tiny limit: no thinking",
            json!({"max_completion_tokens": 1, "thinking": enabled(31999)}),
            1,
            Value::Null,
        ),
        (
            "disabled thinking passes as it is",
            json!({"max_tokens": 100, "thinking": {"type": "disabled"}}),
            100,
            json!({"type": "disabled"}),
        ),
        (
            "adaptive thinking (no budget) passes as it is",
            json!({"max_tokens": 100, "thinking": {"type": "adaptive"}}),
            100,
            json!({"type": "adaptive"}),
        ),
        (
            "no limit, budget under the default: the default",
            json!({"reasoning_effort": "low"}),
            DEFAULT_MAX_TOKENS,
            enabled(1024),
        ),
        (
            "no limit, budget at the default: budget + default",
            json!({"reasoning_effort": "high"}),
            4096 + DEFAULT_MAX_TOKENS,
            enabled(4096),
        ),
        (
            "no limit, Claude Code's budget: budget + default",
            json!({"thinking": enabled(31999)}),
            31999 + DEFAULT_MAX_TOKENS,
            enabled(31999),
        ),
    ];
    for (name, extra, max_tokens, thinking) in cases {
        let mut req = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let out = translate(req);
        assert_eq!(out["max_tokens"], max_tokens, "{name}");
        assert_eq!(
            out.get("thinking").cloned().unwrap_or(Value::Null),
            thinking,
            "{name}"
        );
    }
    // Any explicit limit against any budget: the limit is sent as it is, and what thinking
    // is sent is valid for Anthropic (1024 ≤ budget < max_tokens).
    for limit in [
        1, 2, 500, 1023, 1024, 1025, 2048, 4096, 4097, 31999, 32000, 64000,
    ] {
        for budget in [1024, 2048, 4096, 10000, 31999, 63999] {
            for key in ["max_tokens", "max_completion_tokens"] {
                let out = translate(
                    json!({"model": "m", key: limit, "thinking": enabled(budget),
                    "messages": [{"role": "user", "content": "x"}]}),
                );
                assert_eq!(out["max_tokens"], limit, "{key}={limit} budget={budget}");
                if let Some(sent) = out.get("thinking") {
                    let b = sent["budget_tokens"].as_u64().unwrap();
                    assert!(
                        (MIN_THINKING_BUDGET..limit).contains(&b),
                        "{key}={limit} budget={budget}: {b}"
                    );
                    assert_eq!(b, budget.min(limit - 1));
                } else {
                    assert!(limit <= budget && limit - 1 < MIN_THINKING_BUDGET);
                }
            }
        }
    }
}

#[test]
fn reasoning_effort_budgets() {
    for (effort, budget) in [
        ("low", 1024),
        ("medium", 2048),
        ("high", 4096),
        ("minimal", 1024),
    ] {
        let out = translate(
            json!({"model": "m", "reasoning_effort": effort, "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": budget}),
            "{effort}"
        );
        assert!(out["max_tokens"].as_u64().unwrap() > budget, "{effort}");
    }
    let out = translate(
        json!({"model": "m", "reasoning_effort": "none", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(out.get("thinking").is_none());
}

#[test]
fn tool_choice_variants() {
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let cases = [
        (json!("auto"), None, json!({"type": "auto"})),
        (json!("required"), None, json!({"type": "any"})),
        (json!("none"), Some(false), json!({"type": "none"})),
        (
            json!({"type": "function", "function": {"name": "get_weather"}}),
            None,
            json!({"type": "tool", "name": "get_weather"}),
        ),
        (
            json!("required"),
            Some(false),
            json!({"type": "any", "disable_parallel_tool_use": true}),
        ),
        (
            Value::Null,
            Some(false),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
    ];
    for (choice, parallel, expected) in cases {
        let mut req = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice});
        if let Some(p) = parallel {
            req["parallel_tool_calls"] = json!(p);
        }
        assert_eq!(
            translate(req)["tool_choice"],
            expected,
            "{choice} {parallel:?}"
        );
    }
    // No tool_choice, parallel allowed: Anthropic's default, nothing sent.
    let out = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "parallel_tool_calls": true}),
    );
    assert!(out.get("tool_choice").is_none());
    // tool_choice without tools is dropped.
    let out = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "none"}),
    );
    assert!(out.get("tool_choice").is_none() && out.get("tools").is_none());
}

#[test]
fn streaming_flag() {
    let req = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let out: Value =
        serde_json::from_slice(&chat_request_to_messages(&req, MODEL, true).unwrap()).unwrap();
    assert_eq!(out["stream"], json!(true));
    assert!(translate(req).get("stream").is_none());
}

#[test]
fn provider_specific_fields_pass_through_but_never_override() {
    let out = translate(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "context_management": {"edits": []},
        "seed": 7,
        "presence_penalty": 1,
    }));
    assert_eq!(out["context_management"], json!({"edits": []}));
    assert!(out.get("seed").is_none() && out.get("presence_penalty").is_none());
    assert_eq!(out["model"], json!(MODEL));
}

#[test]
fn request_errors() {
    let user = json!({"role": "user", "content": "x"});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"n": 2, "messages": [user]}), "n"),
        (json!({"logprobs": true, "messages": [user]}), "logprobs"),
        (
            json!({"top_logprobs": 2, "messages": [user]}),
            "top_logprobs",
        ),
        (
            json!({"messages": [{"role": "system", "content": "only system"}]}),
            "messages",
        ),
        (
            json!({"messages": [user, {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{\"city\": "}}]}]}),
            "messages[1].tool_calls[1].function.arguments",
        ),
        (
            json!({"messages": [user, {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "r"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"messages": [{"role": "function", "name": "f", "content": "r"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, user]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [user], "tools": [{"type": "custom", "custom": {"name": "x"}}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [user], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"messages": [user], "reasoning_effort": "extreme"}),
            "reasoning_effort",
        ),
        (json!({"messages": [user], "stop": [1]}), "stop[0]"),
        (json!({"messages": [user], "max_tokens": 0}), "max_tokens"),
    ];
    for (req, param) in cases {
        let err = translate_err(req.clone());
        assert_eq!(err.param.as_deref(), Some(param), "{req}: {err}");
    }
}

fn respond(body: Value) -> Value {
    let bytes =
        messages_response_to_chat(body.to_string().as_bytes(), "claude", 1_700_000_000).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn message(content: Value, stop_reason: &str, usage: Value) -> Value {
    json!({"id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
           "model": MODEL, "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage})
}

#[test]
fn response_text() {
    let out = respond(message(
        json!([{"type": "text", "text": "Hi! My name is Claude."}, {"type": "text", "text": " Nice to meet you."}]),
        "end_turn",
        json!({"input_tokens": 2095, "output_tokens": 503}),
    ));
    assert_eq!(
        out,
        json!({"id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "object": "chat.completion", "created": 1_700_000_000u64,
               "model": MODEL, "system_fingerprint": null,
               "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                            "message": {"role": "assistant", "content": "Hi! My name is Claude. Nice to meet you.", "refusal": null}}],
               "usage": {"prompt_tokens": 2095, "completion_tokens": 503, "total_tokens": 2598,
                         "prompt_tokens_details": {"cached_tokens": 0},
                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
    );
}

#[test]
fn response_tool_use_and_thinking() {
    let out = respond(message(
        json!([
            {"type": "thinking", "thinking": "The user wants the weather.", "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "I'll check."},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA", "unit": "celsius"}}
        ]),
        "tool_use",
        json!({"input_tokens": 10, "output_tokens": 20}),
    ));
    let msg = &out["choices"][0]["message"];
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(msg["content"], "I'll check.");
    assert_eq!(msg["reasoning_content"], "The user wants the weather.");
    assert_eq!(
        msg["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "The user wants the weather.", "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve"},
               {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}])
    );
    assert_eq!(
        msg["tool_calls"],
        json!([{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"}}])
    );

    // Tool call only: content is null.
    let out = respond(message(
        json!([{"type": "tool_use", "id": "t", "name": "f", "input": {}}]),
        "tool_use",
        json!({"input_tokens": 1, "output_tokens": 1}),
    ));
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
}

#[test]
fn response_stop_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ] {
        let out = respond(message(
            json!([{"type": "text", "text": "x"}]),
            stop,
            json!({}),
        ));
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{stop}");
    }
}

#[test]
fn response_cache_usage() {
    let out = respond(message(
        json!([{"type": "text", "text": "x"}]),
        "end_turn",
        json!({"input_tokens": 21, "cache_creation_input_tokens": 188086, "cache_read_input_tokens": 100, "output_tokens": 393}),
    ));
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 188207, "completion_tokens": 393, "total_tokens": 188600,
               "prompt_tokens_details": {"cached_tokens": 100},
               "cache_creation_input_tokens": 188086, "cache_read_input_tokens": 100})
    );
}

#[test]
fn response_errors() {
    assert!(messages_response_to_chat(b"not json", "m", 0).is_err());
    assert!(messages_response_to_chat(b"{\"type\":\"message\"}", "m", 0).is_err());
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
    assert_eq!(
        error_message(body),
        Some(("Overloaded".to_owned(), "overloaded_error".to_owned()))
    );
    assert_eq!(error_message(b"<html>bad gateway</html>"), None);
    assert_eq!(error_message(br#"{"error":"nope"}"#), None);
}

// ---- streaming ----

fn sse(events: &[(&str, Value)]) -> String {
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

fn message_start(usage: Value) -> (&'static str, Value) {
    (
        "message_start",
        json!({"type": "message_start", "message": {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [],
        "model": MODEL, "stop_reason": null, "stop_sequence": null, "usage": usage}}),
    )
}

fn text_stream() -> String {
    sse(&[
        message_start(
            json!({"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 15}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

/// Splits OpenAI SSE output into JSON chunks; asserts framing and the final `[DONE]`.
fn frames(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    text.split_terminator("\n\n")
        .map(|frame| frame.strip_prefix("data: ").unwrap())
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

fn run(input: &str, include_usage: bool) -> Vec<u8> {
    let mut t = StreamTranslator::new("claude", 42, include_usage);
    let mut out = t.push(input.as_bytes());
    out.extend(t.finish());
    assert_eq!(t.error(), None);
    out
}

#[test]
fn stream_text() {
    let chunks = frames(&run(&text_stream(), true));
    let deltas: Vec<(Value, Value)> = chunks
        .iter()
        .filter(|c| !c["choices"].as_array().unwrap().is_empty())
        .map(|c| {
            (
                c["choices"][0]["delta"].clone(),
                c["choices"][0]["finish_reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        deltas,
        vec![
            (json!({"role": "assistant", "content": ""}), Value::Null),
            (json!({"content": "Hello"}), Value::Null),
            (json!({"content": "!"}), Value::Null),
            (json!({}), json!("stop")),
        ]
    );
    for c in &chunks {
        assert_eq!(c["id"], "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["created"], 42);
        assert_eq!(c["model"], MODEL, "the model Anthropic reports");
    }
    let (last, rest) = chunks.split_last().unwrap();
    assert!(
        rest.iter()
            .all(|c| c["usage"].is_null() && c.get("usage").is_some())
    );
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 30, "completion_tokens": 15, "total_tokens": 45,
               "prompt_tokens_details": {"cached_tokens": 5},
               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5})
    );

    // Without include_usage: no usage key, no usage chunk.
    let chunks = frames(&run(&text_stream(), false));
    assert_eq!(chunks.len(), 4);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn stream_tool_call() {
    let input = sse(&[
        message_start(json!({"input_tokens": 472, "output_tokens": 2})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay, let's check"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"location\":"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " \"San Francisco, CA\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 2}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 89}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let deltas: Vec<Value> = frames(&run(&input, false))
        .iter()
        .map(|c| json!([c["choices"][0]["delta"], c["choices"][0]["finish_reason"]]))
        .collect();
    assert_eq!(
        deltas,
        vec![
            json!([{"role": "assistant", "content": ""}, null]),
            json!([{"content": "Okay, let's check"}, null]),
            json!([{"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}, null]),
            json!([{"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}, null]),
            json!([{"tool_calls": [{"index": 0, "function": {"arguments": " \"San Francisco, CA\"}"}}]}, null]),
            json!([{"tool_calls": [{"index": 1, "id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": ""}}]}, null]),
            json!([{"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, null]),
            json!([{}, "tool_calls"]),
        ]
    );
}

fn thinking_stream() -> String {
    sse(&[
        message_start(json!({"input_tokens": 10, "output_tokens": 1})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "I need to find the GCD of 1071 and 462"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "The GCD is 21."}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null}, "usage": {"output_tokens": 40}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

#[test]
fn stream_thinking() {
    let deltas: Vec<Value> = frames(&run(&thinking_stream(), false))
        .iter()
        .map(|c| json!([c["choices"][0]["delta"], c["choices"][0]["finish_reason"]]))
        .collect();
    assert_eq!(
        deltas,
        vec![
            json!([{"role": "assistant", "content": ""}, null]),
            json!([{"reasoning_content": "I need to find the GCD of 1071 and 462",
                    "thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "I need to find the GCD of 1071 and 462"}]}, null]),
            json!([{"thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}]}, null]),
            json!([{"content": "The GCD is 21."}, null]),
            json!([{}, "length"]),
        ]
    );
}

#[test]
fn stream_splits_and_line_endings() {
    for input in [text_stream(), thinking_stream()] {
        let whole = run(&input, true);
        // Byte by byte.
        let mut t = StreamTranslator::new("claude", 42, true);
        let mut out = Vec::new();
        for b in input.as_bytes() {
            out.extend(t.push(std::slice::from_ref(b)));
        }
        out.extend(t.finish());
        assert_eq!(out, whole);
        // CRLF line endings, comments, split in uneven pieces.
        let crlf = format!(": keep-alive\n\n{}", input.replace('\n', "\r\n"));
        let mut t = StreamTranslator::new("claude", 42, true);
        let mut out = Vec::new();
        for piece in crlf.as_bytes().chunks(7) {
            out.extend(t.push(piece));
        }
        out.extend(t.finish());
        assert_eq!(out, whole);
    }
}

#[test]
fn stream_multibyte_split() {
    let input = sse(&[
        message_start(json!({"input_tokens": 1, "output_tokens": 1})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo 🌍"}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let mut t = StreamTranslator::new("claude", 42, false);
    let mut out = Vec::new();
    for piece in input.as_bytes().chunks(3) {
        out.extend(t.push(piece));
    }
    out.extend(t.finish());
    assert_eq!(
        frames(&out)[1]["choices"][0]["delta"]["content"],
        "héllo 🌍"
    );
}

#[test]
fn stream_error_event() {
    let input = format!(
        "{}event: error\ndata: {}\n\n",
        sse(&[message_start(
            json!({"input_tokens": 1, "output_tokens": 1})
        )]),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    let mut t = StreamTranslator::new("claude", 42, false);
    let out = t.push(input.as_bytes());
    assert_eq!(t.error(), Some("Overloaded"));
    assert_eq!(
        out.iter().filter(|b| **b == b'\n').count(),
        2,
        "only the role chunk"
    );
    assert!(t.push(text_stream().as_bytes()).is_empty());
    assert!(t.finish().is_empty());
}

#[test]
fn stream_truncated_or_without_message_stop() {
    // Ends mid-message: error, no [DONE].
    let mut t = StreamTranslator::new("claude", 42, false);
    let input = text_stream();
    let cut = input.find("event: message_delta").unwrap();
    t.push(&input.as_bytes()[..cut]);
    assert!(t.finish().is_empty());
    assert!(t.error().is_some());

    // Finished (message_delta seen) but message_stop missing, last event without blank line.
    let mut t = StreamTranslator::new("claude", 42, true);
    let cut = input.find("event: message_stop").unwrap();
    let mut out = t.push(&input.as_bytes()[..cut]);
    assert!(!out.ends_with(b"data: [DONE]\n\n"));
    out.extend(t.finish());
    assert_eq!(t.error(), None);
    assert_eq!(out, run(&input, true));

    // Malformed JSON.
    let mut t = StreamTranslator::new("claude", 42, false);
    t.push(b"event: message_start\ndata: {not json\n\n");
    assert!(t.error().is_some());
}

/// The answer names the model Anthropic reports (`model`, `message_start.message.model`);
/// the name passed in (the deployment's upstream model) only when Anthropic names none.
#[test]
fn response_model_is_the_one_anthropic_reports() {
    let reported = message(
        json!([{"type": "text", "text": "x"}]),
        "end_turn",
        json!({}),
    );
    assert_eq!(respond(reported.clone())["model"], MODEL);
    for missing in [json!(null), json!(""), json!(7)] {
        let mut body = reported.clone();
        body["model"] = missing;
        assert_eq!(respond(body)["model"], "claude", "fallback");
    }
    let mut body = reported;
    body.as_object_mut().unwrap().remove("model");
    assert_eq!(respond(body)["model"], "claude", "fallback");

    // Streamed: every chunk, the role chunk and the usage chunk included.
    let chunks = frames(&run(&text_stream(), true));
    assert!(chunks.len() > 2);
    assert!(chunks.iter().all(|c| c["model"] == MODEL), "{chunks:?}");
    let without = text_stream().replace(&format!(r#""model":"{MODEL}","#), "");
    assert_ne!(without, text_stream());
    let chunks = frames(&run(&without, true));
    assert!(chunks.iter().all(|c| c["model"] == "claude"), "{chunks:?}");
}

/// openai-python's stream accumulation (`ChatCompletionStreamState`, `accumulate_delta`):
/// strings concatenate, objects merge, list entries merge by their `index` (an entry
/// without one is an error there), `index` and `type` are replaced.
fn accumulate(acc: &mut serde_json::Map<String, Value>, delta: &serde_json::Map<String, Value>) {
    for (key, d) in delta {
        let Some(a) = acc.get_mut(key).filter(|a| !a.is_null()) else {
            acc.insert(key.clone(), d.clone());
            continue;
        };
        if key == "index" || key == "type" {
            *a = d.clone();
            continue;
        }
        match (a, d) {
            (Value::String(a), Value::String(d)) => a.push_str(d),
            (Value::Object(a), Value::Object(d)) => accumulate(a, d),
            (Value::Array(a), Value::Array(d)) => {
                for entry in d {
                    let i = entry["index"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("list delta entry without index: {entry}"))
                        as usize;
                    match a.get_mut(i) {
                        Some(slot) => {
                            accumulate(slot.as_object_mut().unwrap(), entry.as_object().unwrap())
                        }
                        None => a.push(entry.clone()),
                    }
                }
            }
            (a, d) => *a = d.clone(),
        }
    }
}

const SIG: &str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds";
const REDACTED: &str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj2pm=";

/// Thinking in two deltas with its signature, a redacted_thinking block, text and a tool
/// call: what Claude streams for a tool-using turn with extended thinking.
fn thinking_tool_stream() -> String {
    sse(&[
        message_start(json!({"input_tokens": 10, "output_tokens": 1})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "The user wants "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "the weather."}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": SIG}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": REDACTED}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Checking."}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 2}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{\"location\": \"Paris\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 3}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 40}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

/// The assistant content Anthropic must get back for [`thinking_tool_stream`].
fn expected_replay() -> Value {
    json!([
        {"type": "thinking", "thinking": "The user wants the weather.", "signature": SIG},
        {"type": "redacted_thinking", "data": REDACTED},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}},
    ])
}

/// The assistant turn of a replay of `assistant` (an accumulated message) after a tool result.
fn replayed(assistant: Value) -> Value {
    let req = json!({"model": "m", "reasoning_effort": "low", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        assistant,
        {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny"}]});
    let out = translate(req);
    assert_eq!(out["messages"][1]["role"], "assistant");
    out["messages"][1]["content"].clone()
}

#[test]
fn streamed_thinking_accumulates_and_replays() {
    let chunks = frames(&run(&thinking_tool_stream(), false));
    let deltas: Vec<&serde_json::Map<String, Value>> = chunks
        .iter()
        .map(|c| c["choices"][0]["delta"].as_object().unwrap())
        .collect();

    // LiteLLM's streamed shape: the thinking text in reasoning_content and in
    // thinking_blocks, then the signature, then the redacted block; every entry indexed.
    let thinking: Vec<&Value> = deltas
        .iter()
        .filter_map(|d| d.get("thinking_blocks"))
        .collect();
    assert_eq!(
        thinking,
        [
            &json!([{"index": 0, "type": "thinking", "thinking": "The user wants "}]),
            &json!([{"index": 0, "type": "thinking", "thinking": "the weather."}]),
            &json!([{"index": 0, "type": "thinking", "thinking": "", "signature": SIG}]),
            &json!([{"index": 1, "type": "redacted_thinking", "data": REDACTED}]),
        ]
    );

    // A client accumulating as the OpenAI SDK's stream helper does.
    let mut message = serde_json::Map::new();
    for d in &deltas {
        accumulate(&mut message, d);
    }
    assert_eq!(message["reasoning_content"], "The user wants the weather.");
    assert_eq!(
        message["thinking_blocks"],
        json!([{"index": 0, "type": "thinking", "thinking": "The user wants the weather.", "signature": SIG},
               {"index": 1, "type": "redacted_thinking", "data": REDACTED}])
    );
    assert_eq!(replayed(Value::Object(message)), expected_replay());

    // A client that appends every thinking_blocks entry as it comes (LiteLLM-style
    // consumers without index merging) and concatenates reasoning_content.
    let mut appended = Vec::new();
    let mut reasoning = String::new();
    for d in &deltas {
        appended.extend(
            d.get("thinking_blocks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        reasoning.push_str(
            d.get("reasoning_content")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
    }
    let message = json!({"role": "assistant", "content": "Checking.", "reasoning_content": reasoning,
        "thinking_blocks": appended,
        "tool_calls": [{"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]});
    assert_eq!(replayed(message), expected_replay());

    // A client that kept only the signed entry: the text comes from reasoning_content.
    let message = json!({"role": "assistant", "content": "Checking.", "reasoning_content": "The user wants the weather.",
        "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": SIG},
                            {"type": "redacted_thinking", "data": REDACTED}],
        "tool_calls": [{"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]});
    assert_eq!(replayed(message), expected_replay());
}

/// Anthropic always indexes content blocks; deltas that come without `index` are still one
/// `thinking_blocks` entry of their own (text pieces and signature together), which a
/// later indexed block does not merge into.
#[test]
fn stream_unindexed_thinking_is_one_block_of_its_own() {
    let delta = |index: Option<u64>, delta: Value| {
        let mut event = json!({"type": "content_block_delta", "delta": delta});
        if let Some(i) = index {
            event["index"] = json!(i);
        }
        ("content_block_delta", event)
    };
    let out = run(
        &sse(&[
            message_start(json!({"input_tokens": 1, "output_tokens": 1})),
            delta(None, json!({"type": "thinking_delta", "thinking": "a"})),
            delta(None, json!({"type": "thinking_delta", "thinking": "b"})),
            delta(None, json!({"type": "signature_delta", "signature": "s1"})),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            ),
            delta(Some(1), json!({"type": "thinking_delta", "thinking": "c"})),
            delta(
                Some(1),
                json!({"type": "signature_delta", "signature": "s2"}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ]),
        false,
    );
    let mut message = serde_json::Map::new();
    for chunk in frames(&out) {
        accumulate(
            &mut message,
            chunk["choices"][0]["delta"].as_object().unwrap(),
        );
    }
    assert_eq!(message["reasoning_content"], "abc");
    assert_eq!(
        message["thinking_blocks"],
        json!([{"index": 0, "type": "thinking", "thinking": "ab", "signature": "s1"},
               {"index": 1, "type": "thinking", "thinking": "c", "signature": "s2"}])
    );
}

/// A client that lost the later pieces of a lone thinking block (its text a prefix of
/// `reasoning_content`) gets the whole text back: Anthropic checks the signature against it.
#[test]
fn replayed_thinking_prefix_takes_reasoning_content() {
    let got = replayed(json!({"role": "assistant", "content": "ok",
        "reasoning_content": "The user wants the weather.",
        "thinking_blocks": [{"type": "thinking", "thinking": "The user "},
                            {"type": "thinking", "thinking": "", "signature": SIG}]}));
    assert_eq!(
        got[0],
        json!({"type": "thinking", "thinking": "The user wants the weather.", "signature": SIG})
    );
}

#[test]
fn replayed_thinking_edge_cases() {
    let assistant = |blocks: Value, reasoning: Value| json!({"role": "assistant", "content": "ok", "reasoning_content": reasoning, "thinking_blocks": blocks});
    // Two signed blocks stay two; an empty text is not filled when it is ambiguous.
    let got = replayed(assistant(
        json!([{"type": "thinking", "thinking": "", "signature": "s1"},
               {"type": "thinking", "thinking": "", "signature": "s2"}]),
        json!("both texts"),
    ));
    assert_eq!(
        got,
        json!([{"type": "thinking", "thinking": "", "signature": "s1"},
               {"type": "thinking", "thinking": "", "signature": "s2"},
               {"type": "text", "text": "ok"}])
    );
    // A non-empty text is never replaced; no reasoning_content leaves an empty text alone.
    let got = replayed(assistant(
        json!([{"type": "thinking", "thinking": "mine", "signature": "s1"}]),
        json!("other"),
    ));
    assert_eq!(got[0]["thinking"], "mine");
    let got = replayed(assistant(
        json!([{"type": "thinking", "thinking": "", "signature": "s1"}]),
        Value::Null,
    ));
    assert_eq!(got[0]["thinking"], "");
    // An unsigned run at the end is kept as one block (Anthropic decides about it).
    let got = replayed(assistant(
        json!([{"type": "thinking", "thinking": "a"}, {"type": "thinking", "thinking": "b", "signature": null}]),
        Value::Null,
    ));
    assert_eq!(
        got[0],
        json!({"type": "thinking", "thinking": "ab", "signature": ""})
    );
    // Wrong types are refused, naming the field.
    let err = translate_err(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        assistant(json!([{"type": "thinking", "thinking": 7, "signature": "s"}]), Value::Null)]}));
    assert_eq!(
        err.param.as_deref(),
        Some("messages[1].thinking_blocks[0].thinking")
    );
}
