//! `response_format` emulation, through both translators that use it (Anthropic Messages and
//! Bedrock Converse), request and answer, streamed and not. Wire shapes follow Anthropic's
//! tool-use and streaming documentation and Bedrock's Converse / ConverseStream references.

use serde_json::{Value, json};

use crate::anthropic::{StreamTranslator, chat_request_to_messages, messages_response_to_chat};
use crate::bedrock::{self, chat_request_to_converse, converse_response_to_chat, encode_message};

fn anthropic(req: Value) -> Value {
    serde_json::from_slice(&chat_request_to_messages(&req, "claude", false).unwrap()).unwrap()
}

fn converse(req: Value) -> Value {
    serde_json::from_slice(
        &chat_request_to_converse(&req, "anthropic.claude-sonnet-4-20250514-v1:0").unwrap(),
    )
    .unwrap()
}

fn person_schema() -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
           "required": ["name", "age"], "additionalProperties": false})
}

fn chat(response_format: Value) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "Who?"}], "response_format": response_format})
}

#[test]
fn json_schema_becomes_one_forced_tool() {
    let rf = json!({"type": "json_schema", "json_schema": {"name": "person", "description": "A person.",
        "schema": person_schema(), "strict": true}});
    let a = anthropic(chat(rf.clone()));
    assert_eq!(
        a["tools"],
        json!([{"name": "json_tool_call",
                "description": "Respond with JSON matching this schema (person). A person.",
                "input_schema": person_schema()}])
    );
    assert_eq!(
        a["tool_choice"],
        json!({"type": "tool", "name": "json_tool_call"})
    );
    assert!(a.get("response_format").is_none());

    let b = converse(chat(rf));
    assert_eq!(
        b["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "json_tool_call",
                  "description": "Respond with JSON matching this schema (person). A person.",
                  "inputSchema": {"json": person_schema()}}}],
               "toolChoice": {"tool": {"name": "json_tool_call"}}})
    );
    assert!(b.get("response_format").is_none());
    assert!(b.get("additionalModelRequestFields").is_none());
}

#[test]
fn json_object_and_text() {
    let a = anthropic(chat(json!({"type": "json_object"})));
    assert_eq!(a["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(a["tool_choice"]["name"], "json_tool_call");
    let b = converse(chat(json!({"type": "json_object"})));
    assert_eq!(
        b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"],
        json!({"json": {"type": "object"}})
    );
    // A json_schema without a schema is any object.
    let a = anthropic(chat(
        json!({"type": "json_schema", "json_schema": {"name": "x"}}),
    ));
    assert_eq!(a["tools"][0]["input_schema"], json!({"type": "object"}));

    for text in [
        anthropic(chat(json!({"type": "text"}))),
        converse(chat(json!({"type": "text"}))),
    ] {
        assert!(text.get("tools").is_none() && text.get("toolConfig").is_none());
        assert!(text.get("tool_choice").is_none());
    }
}

#[test]
fn refusals_name_the_field() {
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let with = |extra: Value| {
        let mut req = chat(json!({"type": "json_object"}));
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        req
    };
    let cases = [
        (with(json!({"tools": tools})), "response_format"),
        (with(json!({"reasoning_effort": "low"})), "response_format"),
        (
            with(json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})),
            "response_format",
        ),
        (
            chat(
                json!({"type": "json_schema", "json_schema": {"name": "l", "schema": {"type": "array"}}}),
            ),
            "response_format.json_schema.schema",
        ),
        (
            chat(
                json!({"type": "json_schema", "json_schema": {"name": "l", "schema": {"anyOf": []}}}),
            ),
            "response_format.json_schema.schema",
        ),
        (chat(json!({"type": "yaml"})), "response_format.type"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                   "tools": [{"type": "function", "function": {"name": "json_tool_call"}}]}),
            "tools[0].function.name",
        ),
    ];
    for (req, param) in cases {
        let a = chat_request_to_messages(&req, "claude", false).unwrap_err();
        assert_eq!(a.param.as_deref(), Some(param), "{req}: {a}");
        assert!(a.message.contains("Anthropic"), "{a}");
        let b =
            chat_request_to_converse(&req, "anthropic.claude-sonnet-4-20250514-v1:0").unwrap_err();
        assert_eq!(b.param.as_deref(), Some(param), "{req}: {b}");
    }
    // Thinking explicitly disabled is no conflict.
    let a = anthropic(with(json!({"thinking": {"type": "disabled"}})));
    assert_eq!(a["tool_choice"]["name"], "json_tool_call");
}

#[test]
fn answers_come_back_as_content() {
    // Anthropic: the forced tool_use block.
    let msg = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "json_tool_call",
                     "input": {"name": "Ada", "age": 36}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 5, "output_tokens": 7}});
    let out: Value = serde_json::from_slice(
        &messages_response_to_chat(msg.to_string().as_bytes(), "claude", 1).unwrap(),
    )
    .unwrap();
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["message"].get("tool_calls").is_none(), "{out}");
    let content: Value =
        serde_json::from_str(choice["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"name": "Ada", "age": 36}));

    // Bedrock Converse: the forced toolUse block.
    let resp = json!({"output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "tooluse_1", "name": "json_tool_call", "input": {"name": "Ada", "age": 36}}}]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {"latencyMs": 10}});
    let out: Value = serde_json::from_slice(
        &converse_response_to_chat(resp.to_string().as_bytes(), "m", 1).unwrap(),
    )
    .unwrap();
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["message"].get("tool_calls").is_none(), "{out}");
    let content: Value =
        serde_json::from_str(choice["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"name": "Ada", "age": 36}));

    // Other tools are untouched.
    let mut chat = json!({"choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]});
    let before = chat.clone();
    super::tool_answer_to_content(&mut chat);
    assert_eq!(chat, before);
}

/// OpenAI SSE bytes → (the concatenated content, the finish reasons, whether any tool call
/// was streamed).
fn collect(out: &[u8]) -> (String, Vec<String>, bool) {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let mut content = String::new();
    let mut finish = Vec::new();
    let mut tools = false;
    for frame in text.split_terminator("\n\n") {
        let data = frame.strip_prefix("data: ").unwrap();
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        let Some(choice) = v["choices"].get(0) else {
            continue;
        };
        assert!(choice["delta"].is_object(), "{v}");
        content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        tools |= choice["delta"].get("tool_calls").is_some();
        if let Some(f) = choice["finish_reason"].as_str() {
            finish.push(f.to_owned());
        }
    }
    (content, finish, tools)
}

#[test]
fn anthropic_stream_input_json_becomes_content() {
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block":
            {"type": "tool_use", "id": "toolu_1", "name": "json_tool_call", "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"name\": \"Ada\","}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": " \"age\": 36}"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 9}}),
        json!({"type": "message_stop"}),
    ];
    let input: String = events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect();
    let mut t = StreamTranslator::new("claude", 1, false);
    let mut out = t.push(input.as_bytes());
    out.extend(t.finish());
    assert_eq!(t.error(), None);
    let (content, finish, tools) = collect(&out);
    assert_eq!(content, "{\"name\": \"Ada\", \"age\": 36}");
    assert_eq!(finish, ["stop"]);
    assert!(!tools, "{}", String::from_utf8_lossy(&out));
}

#[test]
fn bedrock_stream_tool_use_becomes_content() {
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
    let input = [
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "json_tool_call"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"name\":\"Ada\","}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "\"age\":36}"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {"latencyMs": 10}}),
        ),
    ]
    .concat();
    let mut t = bedrock::StreamTranslator::new("m", 1, true);
    let mut out = t.push(&input);
    out.extend(t.finish());
    assert_eq!(t.error(), None);
    let (content, finish, tools) = collect(&out);
    assert_eq!(content, "{\"name\":\"Ada\",\"age\":36}");
    assert_eq!(finish, ["stop"]);
    assert!(!tools);
}

#[test]
fn stream_rewriter_keeps_other_calls() {
    let mut s = super::JsonStream::default();
    let mut start = json!({"tool_calls": [{"index": 0, "id": "t", "type": "function",
        "function": {"name": "f", "arguments": ""}}]});
    let before = start.clone();
    assert!(s.rewrite(&mut start));
    assert_eq!(start, before);
    assert_eq!(s.finish(Some("tool_calls")), Some("tool_calls"));
    // The start of the emulating call alone leaves nothing to send.
    let mut s = super::JsonStream::default();
    let mut start = json!({"tool_calls": [{"index": 0, "id": "t", "type": "function",
        "function": {"name": "json_tool_call", "arguments": ""}}]});
    assert!(!s.rewrite(&mut start));
    let mut piece = json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]});
    assert!(s.rewrite(&mut piece));
    assert_eq!(piece, json!({"content": "{}"}));
    assert_eq!(s.finish(Some("tool_calls")), Some("stop"));
    assert_eq!(s.finish(Some("length")), Some("length"));
    let mut text = json!({"content": "x"});
    assert!(s.rewrite(&mut text));
    assert_eq!(text, json!({"content": "x"}));
}
