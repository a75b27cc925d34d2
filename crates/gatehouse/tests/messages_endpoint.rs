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
