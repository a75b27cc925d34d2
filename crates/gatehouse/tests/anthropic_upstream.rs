//! End-to-end: an `anthropic/` deployment served through the OpenAI API, against the
//! mock speaking Anthropic's Messages wire format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::json;

const ANTHROPIC_KEY: &str = "sk-ant-e2e-4c1f0b9a7d";

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let config = config_for(&mock.base_url(), "").replacen(
        "model_list:\n",
        &format!(
            "model_list:\n  - model_name: claude-mock\n    litellm_params:\n      model: anthropic/claude-upstream\n      api_base: http://{}\n      api_key: {ANTHROPIC_KEY}\n      max_retries: 1\n",
            mock.addr()
        ),
        1,
    );
    let gh = Gatehouse::start(&config, "info");
    (mock, gh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_is_translated_to_messages_and_back() {
    let (mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        json!({
            "model": "claude-mock",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
            "stop": "END",
        })
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "claude-upstream", "the model Anthropic reports");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock: hello there"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(r.headers.contains_key("x-litellm-model-id"));

    let seen = mock.requests();
    let up = seen.last().unwrap();
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(up.headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(up.headers["anthropic-version"], "2023-06-01");
    assert!(!up.headers.contains_key("authorization"));
    assert_eq!(up.body["model"], "claude-upstream");
    assert_eq!(up.body["max_tokens"], 4096);
    assert_eq!(up.body["stop_sequences"], json!(["END"]));
    assert!(up.body["system"].to_string().contains("Be brief."));
    assert_eq!(up.body["messages"][0]["role"], "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_translated() {
    let (_mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        json!({
            "model": "claude-mock",
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}],
        })
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: serde_json::Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "mock"}));
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_translated_event_by_event() {
    let (_mock, gh) = setup().await;
    let res = send(
        http::Method::POST,
        &gh.url("/v1/chat/completions"),
        &[],
        json!({
            "model": "claude-mock",
            "messages": [{"role": "user", "content": "hello there"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "mock": {"chunks": 3, "chunk_delay_ms": 200},
        })
        .to_string()
        .into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let chunks = stream_chunks(res, Duration::from_secs(15)).await;
    let text = chunks_text(&chunks);
    let mut content = String::new();
    let mut saw_usage = false;
    for event in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an OpenAI SSE frame: {event:?}"));
        if data == "[DONE]" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        if v["usage"].is_object() {
            saw_usage = true;
        }
    }
    assert_eq!(content, "Hello from mock: hello there");
    assert!(saw_usage, "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"));
    let first = chunks
        .iter()
        .find(|(_, c)| String::from_utf8_lossy(c).contains("Hello"))
        .unwrap()
        .0;
    assert!(
        first + Duration::from_millis(300) < chunks.last().unwrap().0,
        "translated stream was buffered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_stream_error_event_becomes_an_openai_error_event() {
    let (_mock, gh) = setup().await;
    let res = send(
        http::Method::POST,
        &gh.url("/v1/chat/completions"),
        &[],
        json!({"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}], "stream": true,
               "mock": {"stream_error": true}})
        .to_string()
        .into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let v: serde_json::Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "502", "{text}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Overloaded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_errors_and_unsupported_endpoints() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/chat/completions");
    let body = |m: serde_json::Value| {
        json!({"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}], "mock": m})
            .to_string()
    };
    let e = post(&url, &[], body(json!({"status": 400})))
        .await
        .assert_error(400);
    assert!(e["message"].as_str().unwrap().contains("mock"), "{e}");
    mock.clear();
    // Overloaded is 503 for OpenAI clients (Anthropic clients get Anthropic's 529).
    post(&url, &[], body(json!({"status": 529})))
        .await
        .assert_error(503);
    assert_eq!(
        mock.requests().len(),
        2,
        "529 overloaded is retried (max_retries 1)"
    );
    let e = post(
        &gh.url("/v1/embeddings"),
        &[],
        r#"{"model":"claude-mock","input":"x"}"#,
    )
    .await
    .assert_error(400);
    assert_eq!(e["param"], "model");
    let e = post(
        &url,
        &[],
        json!({"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}], "n": 2})
            .to_string(),
    )
    .await
    .assert_error(400);
    assert!(e["param"].is_string(), "{e}");
}
