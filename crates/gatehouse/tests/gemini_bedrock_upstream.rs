//! End-to-end: `gemini/` and `bedrock/` deployments served through the OpenAI API (and the
//! Anthropic-compatible endpoint), against the mock speaking each provider's wire format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::json;

const GEMINI_KEY: &str = "gem-e2e-key-5e8a1c3b7d";
const AWS_SECRET: &str = "aws-e2e-secret-2f9c4e6a8b";
const AWS_TOKEN: &str = "aws-e2e-token-7d1b3f5a9c";

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    // The mock verifies SigV4 against these: every Bedrock answer below proves the signing.
    mock.accept_aws_credentials("AKIDEXAMPLE", AWS_SECRET, Some(AWS_TOKEN));
    let addr = mock.addr();
    let models = format!(
        "model_list:
  - model_name: gemini-mock
    litellm_params:
      model: gemini/gemini-up
      api_base: http://{addr}
      api_key: {GEMINI_KEY}
  - model_name: bedrock-mock
    litellm_params:
      model: bedrock/anthropic.claude-up-v1:0
      aws_bedrock_runtime_endpoint: http://{addr}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: {AWS_SECRET}
      aws_session_token: {AWS_TOKEN}
"
    );
    let config = config_for(&mock.base_url(), "").replacen("model_list:\n", &models, 1);
    (mock, Gatehouse::start(&config, "trace"))
}

fn chat(model: &str, extra: serde_json::Value) -> String {
    chat_body(model, extra)
}

fn content_of_stream(text: &str) -> String {
    let mut content = String::new();
    for event in text.split("\n\n") {
        if let Some(data) = event.trim().strip_prefix("data: ")
            && data != "[DONE]"
        {
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
                content.push_str(c);
            }
        }
    }
    content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_chat_stream_tools_and_embeddings() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/chat/completions");
    let r = post(&url, &[], chat("gemini-mock", json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from mock: hello there"
    );
    let up = mock.requests().pop().unwrap();
    assert_eq!(up.path, "/v1beta/models/gemini-up:generateContent");
    assert_eq!(up.headers["x-goog-api-key"], GEMINI_KEY);
    assert!(!up.path.contains("key="), "API key in the URL");

    let res = send(
        http::Method::POST,
        &url,
        &[],
        chat("gemini-mock", json!({"stream": true})).into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
    assert_eq!(
        content_of_stream(&text),
        "Hello from mock: hello there",
        "{text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"));
    assert!(
        mock.requests()
            .pop()
            .unwrap()
            .path
            .contains(":streamGenerateContent?alt=sse")
    );

    let tools = json!({"tools": [{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]});
    let r = post(&url, &[], chat("gemini-mock", tools)).await;
    let call = &r.json()["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{}", r.text());

    let r = post(
        &gh.url("/v1/embeddings"),
        &[],
        r#"{"model":"gemini-mock","input":["a","b"],"encoding_format":"float"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    assert!(!gh.log().contains(GEMINI_KEY), "key in the trace log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_chat_stream_and_tools_are_signed() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/chat/completions");
    let r = post(&url, &[], chat("bedrock-mock", json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from mock: hello there"
    );
    let up = mock.requests().pop().unwrap();
    assert!(
        up.path.starts_with("/model/anthropic.claude-up-v1"),
        "{}",
        up.path
    );
    assert!(up.path.ends_with("/converse"));
    let auth = &up.headers["authorization"];
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    assert!(up.headers.contains_key("x-amz-date"));
    assert_eq!(up.headers["x-amz-security-token"], AWS_TOKEN);

    let res = send(
        http::Method::POST,
        &url,
        &[],
        chat(
            "bedrock-mock",
            json!({"stream": true, "stream_options": {"include_usage": true}}),
        )
        .into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
    assert_eq!(
        content_of_stream(&text),
        "Hello from mock: hello there",
        "{text}"
    );
    assert!(text.contains("\"usage\":{"));
    assert!(
        mock.requests()
            .pop()
            .unwrap()
            .path
            .ends_with("/converse-stream")
    );

    let tools = json!({"tools": [{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]});
    let r = post(&url, &[], chat("bedrock-mock", tools)).await;
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather",
        "{v}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let log = gh.log();
    assert!(
        !log.contains(AWS_SECRET) && !log.contains(AWS_TOKEN),
        "AWS credentials in the trace log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_clients_reach_gemini_and_bedrock_models() {
    let (_mock, gh) = setup().await;
    for model in ["gemini-mock", "bedrock-mock"] {
        let body = json!({"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hello there"}]});
        let r = post(&gh.url("/v1/messages"), &[], body.to_string()).await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(
            r.json()["content"][0]["text"],
            "Hello from mock: hello there",
            "{model}"
        );

        let mut body = body;
        body["stream"] = json!(true);
        let res = send(
            http::Method::POST,
            &gh.url("/v1/messages"),
            &[],
            body.to_string().into(),
        )
        .await;
        let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
        assert!(text.starts_with("event: message_start"), "{model}: {text}");
        assert!(
            text.trim_end()
                .ends_with("data: {\"type\":\"message_stop\"}"),
            "{model}: {text}"
        );
        let said: String = text
            .split("\n\n")
            .filter_map(|e| e.split_once("data: "))
            .filter_map(|(_, d)| serde_json::from_str::<serde_json::Value>(d).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(said, "Hello from mock: hello there", "{model}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_titan_and_cohere_embeddings() {
    let mock = MockServer::start().await.unwrap();
    mock.accept_aws_credentials("AKIDEXAMPLE", AWS_SECRET, None);
    let addr = mock.addr();
    let mut models = String::from("model_list:\n");
    for (name, id) in [
        ("titan-v2", "amazon.titan-embed-text-v2:0"),
        ("titan-v1", "amazon.titan-embed-text-v1"),
        ("cohere-en", "cohere.embed-english-v3"),
        ("cohere-multi", "cohere.embed-multilingual-v3"),
        ("claude-bedrock", "anthropic.claude-up-v1:0"),
    ] {
        models.push_str(&format!(
            "  - model_name: {name}
    litellm_params:
      model: bedrock/{id}
      aws_bedrock_runtime_endpoint: http://{addr}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: {AWS_SECRET}
      max_retries: 0
"
        ));
    }
    let config = config_for(&mock.base_url(), "").replacen("model_list:\n", &models, 1);
    let gh = Gatehouse::start(&config, "debug");
    let url = gh.url("/v1/embeddings");

    // Titan: one signed invoke per input, answered in order with summed usage.
    let inputs: Vec<String> = (0..10).map(|i| format!("text number {i}")).collect();
    let body = json!({"model": "titan-v2", "input": inputs, "dimensions": 4});
    let r = post(&url, &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 10);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["embedding"].as_array().unwrap().len(), 4);
    }
    assert_eq!(v["usage"]["prompt_tokens"], 30, "3 words x 10 inputs");
    assert_eq!(v["model"], "amazon.titan-embed-text-v2:0");
    let invokes: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path == "/model/amazon.titan-embed-text-v2%3A0/invoke")
        .collect();
    assert_eq!(invokes.len(), 10);
    assert!(
        invokes
            .iter()
            .all(|r| r.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential="))
    );
    let mut sent: Vec<String> = invokes
        .iter()
        .map(|r| r.body["inputText"].as_str().unwrap().to_owned())
        .collect();
    sent.sort();
    let mut want = inputs.clone();
    want.sort();
    assert_eq!(sent, want);
    // The same text embeds the same in any position.
    let one = post(
        &url,
        &[],
        json!({"model": "titan-v2", "input": "text number 3", "dimensions": 4}).to_string(),
    )
    .await
    .json();
    assert_eq!(one["data"][0]["embedding"], data[3]["embedding"]);

    // base64 is honoured; v1 takes one string.
    let r = post(
        &url,
        &[],
        json!({"model": "titan-v1", "input": "hello", "encoding_format": "base64"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b64 = r.json()["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b64.len(), 44, "8 f32s in base64: {b64}");

    // One failing call fails the request.
    let r = post(
        &url,
        &[],
        json!({"model": "titan-v2", "input": ["fine", "mock-fail", "fine too"]}).to_string(),
    )
    .await;
    r.assert_error(502);

    // Cohere: one call for all texts, estimated usage.
    for model in ["cohere-en", "cohere-multi"] {
        let r = post(
            &url,
            &[],
            json!({"model": model, "input": ["abcdefgh", "abc"]}).to_string(),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        let v = r.json();
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(v["usage"]["prompt_tokens"], 3, "ceil(8/4) + ceil(3/4)");
        let up = mock.requests().pop().unwrap();
        assert!(up.path.ends_with("/invoke"), "{}", up.path);
        assert_eq!(up.body["input_type"], "search_document");
    }

    // Token arrays and chat models: clear 400s, no upstream call.
    let before = mock.requests().len();
    let r = post(
        &url,
        &[],
        json!({"model": "titan-v2", "input": [[1, 2, 3]]}).to_string(),
    )
    .await;
    r.assert_error(400);
    let r = post(
        &url,
        &[],
        json!({"model": "claude-bedrock", "input": "x"}).to_string(),
    )
    .await;
    r.assert_error(400);
    assert_eq!(mock.requests().len(), before);
    assert!(!gh.log().contains(AWS_SECRET));
}
