//! End-to-end: `vertex_ai/` deployments (Gemini and Claude) through the OpenAI API and the
//! Anthropic-compatible endpoint, against the mock's token endpoint and Vertex routes:
//! OAuth2 service-account flow, token caching, token failures, Claude's `rawPredict` /
//! `streamRawPredict` bodies, and no secret in a trace log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::json;

/// The committed test-only service account (its key grants access to nothing).
const TEST_SA: &str = include_str!("../../gatehouse-mock/testdata/vertex-test-sa.json");
/// `{"alg":"RS256","typ":"JWT"}` as base64url: the start of every assertion gatehouse signs.
const JWT_HEADER_B64: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

/// The test account with its token_uri at the mock (and optionally another issuer).
fn service_account(mock: &MockServer, client_email: Option<&str>) -> String {
    let mut sa: serde_json::Value = serde_json::from_str(TEST_SA).unwrap();
    sa["token_uri"] = json!(format!("http://{}/token", mock.addr()));
    if let Some(e) = client_email {
        sa["client_email"] = json!(e);
    }
    sa.to_string()
}

/// A line from the middle of the test key's PEM body.
fn key_fragment() -> String {
    let sa: serde_json::Value = serde_json::from_str(TEST_SA).unwrap();
    sa["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(5)
        .unwrap()
        .to_owned()
}

async fn setup(client_email: Option<&str>) -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let gh = start_with_service_account(&mock, &service_account(&mock, client_email));
    (mock, gh)
}

/// gatehouse with the Vertex deployments of `mock`, authenticating as `sa` (a key file).
fn start_with_service_account(mock: &MockServer, sa: &str) -> Gatehouse {
    let dir = scratch_dir();
    let sa_path = dir.join("sa.json");
    std::fs::write(&sa_path, sa).unwrap();
    let models = format!(
        "model_list:
  - model_name: vertex-mock
    litellm_params:
      model: vertex_ai/gemini-up
      api_base: http://{addr}
      vertex_project: test-proj
      vertex_location: europe-west4
      vertex_credentials: {path}
      max_retries: 1
  - model_name: claude-vertex
    litellm_params:
      model: vertex_ai/claude-sonnet-4@20250514
      api_base: http://{addr}
      vertex_project: test-proj
      vertex_location: us-east5
      vertex_credentials: {path}
      max_retries: 1
",
        addr = mock.addr(),
        path = sa_path.display()
    );
    let config = config_for(&mock.base_url(), "").replacen("model_list:\n", &models, 1);
    Gatehouse::start(&config, "trace")
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

const VERTEX_PATH: &str =
    "/v1/projects/test-proj/locations/europe-west4/publishers/google/models/gemini-up";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_chat_stream_tools_with_one_cached_token() {
    let (mock, gh) = setup(None).await;
    let url = gh.url("/v1/chat/completions");
    let r = post(&url, &[], chat_body("vertex-mock", json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock: hello there"
    );
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "token then generateContent");
    assert_eq!(reqs[0].path, "/token");
    assert_eq!(
        reqs[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(reqs[1].path, format!("{VERTEX_PATH}:generateContent"));
    let auth = reqs[1].headers["authorization"].clone();
    assert!(auth.starts_with("Bearer ya29.mock-"), "{auth}");
    assert!(!reqs[1].headers.contains_key("x-goog-api-key"));
    assert!(reqs[1].body["contents"][0]["role"] == "user");

    let res = send(
        http::Method::POST,
        &url,
        &[],
        chat_body(
            "vertex-mock",
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
    assert!(text.contains("\"usage\":{"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"));

    let tools = json!({"tools": [{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]});
    let r = post(&url, &[], chat_body("vertex-mock", tools)).await;
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather",
        "{v}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    // The Anthropic-compatible endpoint reaches the same model.
    let body = json!({"model": "vertex-mock", "max_tokens": 32, "messages": [{"role": "user", "content": "hello there"}]});
    let r = post(&gh.url("/v1/messages"), &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["content"][0]["text"],
        "Hello from mock: hello there"
    );

    // Embeddings are not served on Vertex yet: a clear 400, no upstream call.
    let before = mock.requests().len();
    let r = post(
        &gh.url("/v1/embeddings"),
        &[],
        r#"{"model":"vertex-mock","input":"a"}"#,
    )
    .await;
    let e = r.assert_error(400);
    assert!(
        e["message"].as_str().unwrap().contains("does not support"),
        "{e}"
    );
    assert_eq!(mock.requests().len(), before);

    let reqs = mock.requests();
    let token_calls = reqs.iter().filter(|r| r.path == "/token").count();
    assert_eq!(token_calls, 1, "the token is fetched once and reused");
    let vertex_calls: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.starts_with(VERTEX_PATH))
        .collect();
    assert_eq!(vertex_calls.len(), 4);
    assert!(
        vertex_calls
            .iter()
            .all(|r| r.headers["authorization"] == auth)
    );

    let token = auth.trim_start_matches("Bearer ");
    let log = gh.log();
    assert!(log.contains("TRACE"), "trace logging was not on");
    assert!(!log.contains(token), "access token in the trace log");
    assert!(
        !log.contains(&key_fragment()),
        "private key in the trace log"
    );
    assert!(
        !log.contains(JWT_HEADER_B64),
        "signed assertion in the trace log"
    );
}

/// A refusal of our service account (`invalid_grant`) is the gateway's problem, as a
/// provider's 401/403 is: a 502 without the token endpoint's text, not retried (asking again
/// cannot help), logged at error with the OAuth error code only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_refusal_is_a_502_without_its_text_not_retried() {
    let (mock, gh) = setup(Some("someone-else@example.iam.gserviceaccount.com")).await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("vertex-mock", json!({})),
    )
    .await;
    let e = r.assert_error(502);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("refused the gateway's credentials"),
        "{message}"
    );
    // The mock's error_description ("Invalid JWT: unknown issuer.") and code stay out.
    for hidden in [
        "invalid_grant",
        "unknown issuer",
        "Invalid JWT",
        "token endpoint",
    ] {
        assert!(!message.contains(hidden), "{hidden}: {message}");
    }
    let reqs = mock.requests();
    assert_eq!(
        reqs.iter().filter(|r| r.path == "/token").count(),
        1,
        "a refused grant is not retried"
    );
    assert!(!reqs.iter().any(|r| r.path.starts_with("/v1/projects/")));
    // Anthropic clients: the same refusal, in Anthropic's shape.
    let r = post(
        &gh.url("/v1/messages"),
        &[],
        json!({"model": "vertex-mock", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "api_error", "{}", r.text());
    assert!(!r.text().contains("unknown issuer"), "{}", r.text());
    let log = gh.log();
    let refusal = log
        .lines()
        .find(|l| l.contains("the token endpoint refused"))
        .unwrap_or_else(|| panic!("no refusal logged: {log}"));
    assert!(refusal.contains("ERROR"), "{refusal}");
    assert!(
        refusal.contains("code=\"invalid_grant\"") || refusal.contains("code=invalid_grant"),
        "{refusal}"
    );
    assert!(
        !log.contains("unknown issuer"),
        "the endpoint's description was logged"
    );
    assert!(!log.contains(&key_fragment()));
    assert!(!log.contains(JWT_HEADER_B64));
}

/// A token endpoint that answers HTTP 503 to everything, on loopback; counts the requests.
async fn failing_token_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/token", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                // Read the request head and its body (bounded), then answer and close.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let read = async {
                    for _ in 0..64 {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
                seen.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"error":"internal_failure","error_description":"Backend Error at shard 7"}"#;
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (uri, count)
}

/// An outage of the token endpoint (a 5xx) is retried like a connect error, and the client
/// gets a 502 that says so, without the endpoint's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_outage_is_retried_then_a_502() {
    let mock = MockServer::start().await.unwrap();
    let (token_uri, token_requests) = failing_token_endpoint().await;
    let mut sa: serde_json::Value = serde_json::from_str(&service_account(&mock, None)).unwrap();
    sa["token_uri"] = json!(token_uri);
    let gh = start_with_service_account(&mock, &sa.to_string());
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("vertex-mock", json!({})),
    )
    .await;
    let e = r.assert_error(502);
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("access token"), "{message}");
    assert!(message.contains("503"), "{message}");
    assert!(!message.contains("Backend Error"), "{message}");
    assert_eq!(
        token_requests.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "retried once like a connect error (max_retries: 1)"
    );
    assert!(mock.requests().is_empty());
    assert!(!gh.log().contains("Backend Error"));
}

const CLAUDE_PATH: &str = "/v1/projects/test-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514";

/// Asserts a recorded request is a Vertex Claude call: bearer token, Vertex's
/// `anthropic_version` in the body, no `model`, no `anthropic-version` header.
fn assert_vertex_claude_call(r: &gatehouse_mock::RecordedRequest, method: &str) {
    assert_eq!(r.path, format!("{CLAUDE_PATH}:{method}"));
    assert!(
        r.headers["authorization"].starts_with("Bearer ya29.mock-"),
        "{:?}",
        r.headers
    );
    assert!(!r.headers.contains_key("x-api-key"));
    assert!(!r.headers.contains_key("anthropic-version"));
    assert_eq!(
        r.body["anthropic_version"], "vertex-2023-10-16",
        "{}",
        r.body
    );
    assert!(r.body.get("model").is_none(), "{}", r.body);
}

fn sse_data(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Claude on Vertex AI through the OpenAI API: plain, streamed, tools and a tool result,
/// translated by the Anthropic translator and sent to `rawPredict` / `streamRawPredict`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_on_vertex_through_the_openai_api() {
    let (mock, gh) = setup(None).await;
    let url = gh.url("/v1/chat/completions");
    let r = post(&url, &[], chat_body("claude-vertex", json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock: hello there"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["model"], "claude-sonnet-4@20250514");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let reqs = mock.requests();
    assert_eq!(reqs[0].path, "/token");
    assert_vertex_claude_call(reqs.last().unwrap(), "rawPredict");
    assert!(reqs.last().unwrap().body["max_tokens"].as_u64().is_some());

    let res = send(
        http::Method::POST,
        &url,
        &[],
        chat_body(
            "claude-vertex",
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
    assert!(text.trim_end().ends_with("data: [DONE]"));
    let chunks = sse_data(&text);
    assert!(
        chunks.last().unwrap()["usage"]["prompt_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let up = mock.requests().pop().unwrap();
    assert_vertex_claude_call(&up, "streamRawPredict");
    assert_eq!(up.body["stream"], true);

    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]);
    let r = post(
        &url,
        &[],
        chat_body("claude-vertex", json!({"tools": tools})),
    )
    .await;
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    let call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["function"]["name"], "get_weather");
    assert_vertex_claude_call(&mock.requests().pop().unwrap(), "rawPredict");
    let body = json!({"model": "claude-vertex", "tools": tools, "messages": [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]});
    let r = post(&url, &[], body.to_string()).await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from mock: tool said sunny",
        "{}",
        r.text()
    );

    // One token for every call; none of it in the trace log.
    let reqs = mock.requests();
    assert_eq!(reqs.iter().filter(|r| r.path == "/token").count(), 1);
    let auth = &reqs.last().unwrap().headers["authorization"];
    assert!(!gh.log().contains(auth.trim_start_matches("Bearer ")));
}

/// Claude on Vertex AI through `/v1/messages`: passed through natively (body rewritten for
/// Vertex), streamed or not, with tools; the client's `anthropic-beta` is kept; token
/// counting asks Vertex's `count-tokens` model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_on_vertex_through_the_messages_endpoint() {
    let (mock, gh) = setup(None).await;
    let url = gh.url("/v1/messages");
    let headers = [
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "interleaved-thinking-2025-05-14"),
    ];
    let body = json!({"model": "claude-vertex", "max_tokens": 64, "system": "be brief",
        "messages": [{"role": "user", "content": "hello there"}], "metadata": {"user_id": "u1"}});
    let r = post(&url, &headers, body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Hello from mock: hello there");
    let up = mock.requests().pop().unwrap();
    assert_vertex_claude_call(&up, "rawPredict");
    assert_eq!(
        up.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14"
    );
    assert_eq!(up.body["system"], "be brief", "passed through untouched");
    assert_eq!(up.body["metadata"], json!({"user_id": "u1"}));
    assert_eq!(up.body["max_tokens"], 64);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let res = send(
        http::Method::POST,
        &url,
        &headers,
        streamed.to_string().into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
    let said: String = sse_data(&text)
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(said, "Hello from mock: hello there");
    assert_vertex_claude_call(&mock.requests().pop().unwrap(), "streamRawPredict");

    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let mut with_tools = body.clone();
    with_tools["tools"] = tools;
    let r = post(&url, &headers, with_tools.to_string()).await;
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
    assert_eq!(v["content"][0]["name"], "get_weather");

    let count =
        json!({"model": "claude-vertex", "messages": [{"role": "user", "content": "hello there"}]});
    let r = post(
        &gh.url("/v1/messages/count_tokens"),
        &headers,
        count.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["input_tokens"], 2);
    let up = mock.requests().pop().unwrap();
    assert_eq!(
        up.path,
        "/v1/projects/test-proj/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict"
    );
    assert_eq!(up.body["model"], "claude-sonnet-4@20250514");
    assert_eq!(up.body["anthropic_version"], "vertex-2023-10-16");
    assert!(up.headers["authorization"].starts_with("Bearer ya29.mock-"));

    // Upstream errors keep Anthropic's envelope on this endpoint.
    let mut failing = body.clone();
    failing["mock"] = json!({"status": 400});
    let r = post(&url, &headers, failing.to_string()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "error", "{}", r.text());
}
