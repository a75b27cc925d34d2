//! End-to-end: the Anthropic-compatible `/v1/messages` endpoint, natively passed through to
//! an Anthropic upstream and translated for an OpenAI-compatible one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::json;

const ANTHROPIC_KEY: &str = "sk-ant-e2e-9b3d2c7e1f";

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let config = config_for(&mock.base_url(), "").replacen(
        "model_list:\n",
        &format!(
            "model_list:\n  - model_name: claude-mock\n    litellm_params:\n      model: anthropic/claude-upstream\n      api_base: http://{}\n      api_key: {ANTHROPIC_KEY}\n",
            mock.addr()
        ),
        1,
    );
    (mock, Gatehouse::start(&config, "info"))
}

fn messages_body(model: &str, extra: serde_json::Value) -> String {
    let mut v = json!({"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hello there"}]});
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_passthrough_keeps_the_body_and_swaps_model_and_key() {
    let (mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/messages"),
        &[
            ("x-api-key", MASTER_KEY),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "tools-2024-05-16"),
        ],
        messages_body(
            "claude-mock",
            json!({"system": "Be brief.", "top_k": 3, "api_base": "http://127.0.0.1:1"}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Hello from mock: hello there");
    let up = mock.requests().pop().unwrap();
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(up.headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(up.headers["anthropic-beta"], "tools-2024-05-16");
    assert_eq!(up.body["model"], "claude-upstream");
    assert_eq!(up.body["top_k"], 3);
    assert!(up.body.get("api_base").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_upstream_is_translated_both_ways() {
    let (mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/messages"),
        &[("x-api-key", MASTER_KEY)],
        messages_body("gpt-mock", json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "mock-gpt", "the model the upstream reports");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["content"][0]["text"], "Hello from mock: hello there");
    assert_eq!(v["stop_reason"], "end_turn");
    let up = mock.requests().pop().unwrap();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(up.body["model"], "mock-gpt");
    assert_eq!(up.body["max_tokens"], 32);
    assert!(!up.headers.contains_key("anthropic-beta"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn translated_stream_is_anthropic_events_and_errors_are_anthropic_events() {
    let (_mock, gh) = setup().await;
    let res = send(
        http::Method::POST,
        &gh.url("/v1/messages"),
        &[("x-api-key", MASTER_KEY)],
        messages_body("gpt-mock", json!({"stream": true, "mock": {"chunks": 3}})).into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("event: ")))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"), "{text}");
    assert_eq!(events.last(), Some(&"message_stop"), "{text}");
    assert!(events.contains(&"content_block_delta"));

    let res = send(
        http::Method::POST,
        &gh.url("/v1/messages"),
        &[("x-api-key", MASTER_KEY)],
        messages_body(
            "gpt-mock",
            json!({"stream": true, "mock": {"chunks": 5, "fail_after_chunks": 2}}),
        )
        .into(),
    )
    .await;
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\ndata: "), "{text}");
    let v: serde_json::Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(v["type"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_use_anthropics_envelope() {
    let (_mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/messages"),
        &[("x-api-key", "sk-wrong")],
        messages_body("gpt-mock", json!({})),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let r = post(
        &gh.url("/v1/messages"),
        &[],
        r#"{"model":"gpt-mock","messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "error");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
    let r = post(
        &gh.url("/v1/messages/count_tokens"),
        &[],
        r#"{"model":"gpt-mock","messages":[{"role":"user","content":"count these words please"}]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
}

const ANTHROPIC_HEADERS: &[(&str, &str)] = &[
    ("x-api-key", MASTER_KEY),
    ("anthropic-version", "2023-06-01"),
];

fn weather_tool() -> serde_json::Value {
    json!({"name": "get_weather", "input_schema": {"type": "object",
        "properties": {"location": {"type": "string"}}, "required": ["location"]}})
}

/// The `message` an Anthropic client assembles from an SSE body (as the SDKs do: blocks by
/// index, text / thinking / signature / partial JSON appended, usage from message_start
/// updated by message_delta).
fn assemble(text: &str) -> serde_json::Value {
    let mut message = serde_json::Value::Null;
    let mut json_parts: std::collections::BTreeMap<usize, String> = Default::default();
    for frame in text.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let (event, data) = frame.split_once('\n').unwrap();
        let v: serde_json::Value =
            serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(event.strip_prefix("event: ").unwrap(), v["type"]);
        let index = v["index"].as_u64().unwrap_or(0) as usize;
        match v["type"].as_str().unwrap() {
            "message_start" => message = v["message"].clone(),
            "content_block_start" => {
                let blocks = message["content"].as_array_mut().unwrap();
                assert_eq!(blocks.len(), index, "blocks start in order");
                blocks.push(v["content_block"].clone());
            }
            "content_block_delta" => {
                let block = &mut message["content"][index];
                let d = &v["delta"];
                let append =
                    |block: &mut serde_json::Value, key: &str, piece: &serde_json::Value| {
                        let mut s = block[key].as_str().unwrap_or("").to_owned();
                        s.push_str(piece.as_str().unwrap());
                        block[key] = s.into();
                    };
                match d["type"].as_str().unwrap() {
                    "text_delta" => append(block, "text", &d["text"]),
                    "thinking_delta" => append(block, "thinking", &d["thinking"]),
                    "signature_delta" => append(block, "signature", &d["signature"]),
                    "input_json_delta" => json_parts
                        .entry(index)
                        .or_default()
                        .push_str(d["partial_json"].as_str().unwrap()),
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                if let Some(json) = json_parts.remove(&index) {
                    message["content"][index]["input"] = serde_json::from_str(&json).unwrap();
                }
            }
            "message_delta" => {
                message["stop_reason"] = v["delta"]["stop_reason"].clone();
                for (k, n) in v["usage"].as_object().unwrap() {
                    message["usage"][k] = n.clone();
                }
            }
            _ => {}
        }
    }
    message
}

async fn messages(gh: &Gatehouse, body: &serde_json::Value) -> serde_json::Value {
    let stream = body["stream"] == true;
    let res = send(
        http::Method::POST,
        &gh.url("/v1/messages"),
        ANTHROPIC_HEADERS,
        body.to_string().into(),
    )
    .await;
    let status = res.status();
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(15)).await);
    assert_eq!(status, 200, "{text}");
    if stream {
        assemble(&text)
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// Claude Code's loop on a native Anthropic deployment: thinking (signed), redacted
/// thinking and a tool call, then the tool result with the assistant turn sent back as
/// received. The upstream (which checks signatures as Anthropic does) gets every block
/// back byte for byte; streamed and not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_thinking_tool_use_round_trip() {
    let (mock, gh) = setup().await;
    for stream in [false, true] {
        let question =
            json!({"role": "user", "content": format!("weather in Paris? stream={stream}")});
        let first = json!({"model": "claude-mock", "max_tokens": 2048, "stream": stream,
            "thinking": {"type": "enabled", "budget_tokens": 1024}, "tools": [weather_tool()],
            "messages": [question], "mock": {"redacted_thinking": true}});
        let answer = messages(&gh, &first).await;
        assert_eq!(answer["stop_reason"], "tool_use", "{answer}");
        let content = answer["content"].clone();
        let kinds: Vec<&str> = content
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["thinking", "redacted_thinking", "tool_use"],
            "stream={stream}"
        );
        assert_eq!(content[0]["thinking"], "Mock thinking.");
        assert!(
            content[0]["signature"]
                .as_str()
                .unwrap()
                .starts_with("sig_mock_")
        );
        assert!(
            content[1]["data"]
                .as_str()
                .unwrap()
                .starts_with("redacted_mock_")
        );
        assert_eq!(content[2]["input"], json!({"location": "mock"}));

        let mut second = first.clone();
        second["messages"] = json!([question, {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": content[2]["id"], "content": "sunny"}]}]);
        let answer = messages(&gh, &second).await;
        assert_eq!(answer["stop_reason"], "end_turn", "{answer}");
        let text: Vec<&serde_json::Value> = answer["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "text")
            .map(|b| &b["text"])
            .collect();
        assert_eq!(text, [&json!("Hello from mock: tool said sunny")]);
        let up = mock.requests().pop().unwrap();
        assert_eq!(up.path, "/v1/messages");
        assert_eq!(
            up.body["messages"][1]["content"], content,
            "stream={stream}"
        );
    }
}

/// Cache usage passes through the native path unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_cache_usage_is_unchanged() {
    let (_mock, gh) = setup().await;
    let body = |question: &str, stream: bool| {
        json!({"model": "claude-mock", "max_tokens": 64, "stream": stream,
            "system": [{"type": "text", "text": "shared policy of five words", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": question}]})
    };
    let v = messages(&gh, &body("first", false)).await;
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 1, "output_tokens": 4, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 0})
    );
    let v = messages(&gh, &body("second", true)).await;
    assert_eq!(v["usage"]["cache_read_input_tokens"], 5, "{v}");
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 0);
    assert_eq!(v["usage"]["input_tokens"], 1);
}

/// Several `anthropic-beta` header lines reach the upstream as one comma-joined list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_anthropic_beta_value_is_forwarded() {
    let (mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/messages"),
        &[
            ("x-api-key", MASTER_KEY),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14"),
            (
                "anthropic-beta",
                "prompt-caching-2024-07-31,context-1m-2025-08-07",
            ),
        ],
        messages_body("claude-mock", json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let up = mock.requests().pop().unwrap();
    assert_eq!(
        up.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14,prompt-caching-2024-07-31,context-1m-2025-08-07"
    );
}
