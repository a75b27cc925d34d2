//! End-to-end tests: start a `MockServer` and talk to it with a raw hyper client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_mock::{MockOptions, MockServer};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(
    c: &HttpClient,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> http::Response<Incoming> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-test")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    c.request(req).await.unwrap()
}

async fn post(c: &HttpClient, url: &str, body: Value) -> http::Response<Incoming> {
    send(c, Method::POST, url, Some(body)).await
}

async fn json_of(resp: http::Response<Incoming>) -> Value {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// Splits an SSE body into its `data:` payloads.
fn sse_data(body: &str) -> Vec<&str> {
    assert!(
        body.ends_with("\n\n"),
        "body must end with a blank line: {body:?}"
    );
    body.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| f.strip_prefix("data: ").unwrap())
        .collect()
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let clean: Vec<u32> = s
        .bytes()
        .filter(|&c| c != b'=')
        .map(|c| A.iter().position(|&a| a == c).unwrap() as u32)
        .collect();
    for chunk in clean.chunks(4) {
        let acc = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, v)| acc | (v << (18 - 6 * i)));
        for i in 0..(chunk.len() * 6 / 8) {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[tokio::test]
async fn plain_chat() {
    let server = MockServer::start().await.unwrap();
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert!(server.base_url().ends_with("/v1"));
    let c = client();
    let resp = post(
        &c,
        &format!("{}/chat/completions", server.base_url()),
        json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "hi there"}
        ]}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(rid.starts_with("req-mock-"));
    let v = json_of(resp).await;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["id"],
        format!("chatcmpl-mock-{}", &rid["req-mock-".len()..])
    );
    assert_eq!(v["model"], "gpt-4o-mini");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Hello from mock: hi there", "refusal": null},
                "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
    );
}

#[tokio::test]
async fn all_chat_paths_and_models() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let root = format!("http://{}", server.addr());
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    for path in ["/v1/chat/completions", "/chat/completions"] {
        let resp = post(&c, &format!("{root}{path}"), body.clone()).await;
        assert_eq!(resp.status(), 200, "{path}");
    }
    // Azure: model may be absent (the deployment is the model); api-version is required.
    let azure = format!("{root}/openai/deployments/my-gpt/chat/completions");
    let resp = post(
        &c,
        &format!("{azure}?api-version=2024-10-21"),
        json!({"messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await["model"], "my-gpt");
    let resp = post(&c, &azure, body.clone()).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["error"]["param"], "api-version");

    for path in ["/v1/models", "/models"] {
        let resp = send(&c, Method::GET, &format!("{root}{path}"), None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            json_of(resp).await,
            json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 1_700_000_000, "owned_by": "mock"}]})
        );
    }
}

#[tokio::test]
async fn error_formats() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let base = server.base_url();

    let resp = send(&c, Method::GET, &format!("{base}/nope"), None).await;
    assert_eq!(resp.status(), 404);
    let v = json_of(resp).await;
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["code"].is_null());
    assert!(v["error"]["param"].is_null());

    let req = Request::post(format!("{base}/chat/completions"))
        .body(Full::new(Bytes::from_static(b"{not json")))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 400);
    let v = json_of(resp).await;
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["param"].is_null());

    for (url, body, param) in [
        ("chat/completions", json!({"messages": []}), "model"),
        ("chat/completions", json!({"model": "m"}), "messages"),
        ("embeddings", json!({"model": "m"}), "input"),
        ("embeddings", json!({"input": "x"}), "model"),
    ] {
        let resp = post(&c, &format!("{base}/{url}"), body).await;
        assert_eq!(resp.status(), 400);
        let v = json_of(resp).await;
        assert_eq!(v["error"]["param"], param);
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["code"].is_null());
    }
}

#[tokio::test]
async fn stream_framing() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let url = format!("{}/chat/completions", server.base_url());
    let resp = post(
        &c,
        &url,
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "one two three"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = std::str::from_utf8(&body).unwrap();
    let data = sse_data(body);
    assert_eq!(*data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    // role + 3 content + finish
    assert_eq!(chunks.len(), 5);
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-mock-"));
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == id && c.get("usage").is_none())
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock: one two three");
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");

    // With include_usage and a chunk count.
    let resp = post(
        &c,
        &url,
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "one two three"}], "mock": {"chunks": 2}}),
    )
    .await;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let data = sse_data(std::str::from_utf8(&body).unwrap());
    assert_eq!(*data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks.len(), 1 + 2 + 1 + 1);
    assert!(
        chunks[..4]
            .iter()
            .all(|c| c.get("usage") == Some(&Value::Null))
    );
    let last = &chunks[4];
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9})
    );
}

#[tokio::test]
async fn stream_tool_calls() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let resp = post(
        &c,
        &format!("{}/chat/completions", server.base_url()),
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "weather?"}],
               "tools": [{"type": "function", "function": {"name": "get_weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}),
    )
    .await;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let data = sse_data(std::str::from_utf8(&body).unwrap());
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let mut name = String::new();
    let mut args = String::new();
    for c in &chunks {
        if let Some(tc) = c["choices"][0]["delta"]["tool_calls"].get(0) {
            name.push_str(tc["function"]["name"].as_str().unwrap_or(""));
            args.push_str(tc["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(name, "get_weather");
    assert_eq!(args, r#"{"city":"mock"}"#);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn stream_pacing_is_observable() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let resp = post(
        &c,
        &format!("{}/chat/completions", server.base_url()),
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "a b c"}],
               "mock": {"chunk_delay_ms": 60}}),
    )
    .await;
    let start = Instant::now();
    let mut body = resp.into_body();
    let mut arrivals = Vec::new();
    while let Some(frame) = body.frame().await {
        if frame.unwrap().is_data() {
            arrivals.push(start.elapsed());
        }
    }
    // role, 3 content, finish, [DONE]: each frame arrives on its own, ~60ms apart.
    assert_eq!(arrivals.len(), 6);
    assert!(arrivals[0] < Duration::from_millis(50), "{arrivals:?}");
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(40),
            "{arrivals:?}"
        );
    }
}

#[tokio::test]
async fn stream_breaks_mid_body() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let resp = post(
        &c,
        &format!("{}/chat/completions", server.base_url()),
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "a b c"}],
               "mock": {"fail_after_chunks": 2}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut received = Vec::new();
    let err = loop {
        match body.frame().await {
            Some(Ok(f)) => received.extend_from_slice(&f.into_data().unwrap()),
            Some(Err(e)) => break e,
            None => panic!("stream completed instead of breaking"),
        }
    };
    let text = String::from_utf8(received).unwrap();
    assert_eq!(text.matches("data: ").count(), 2, "{text:?} / {err}");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn scripted_fail_times_and_status() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let url = format!("{}/chat/completions", server.base_url());
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                      "mock": {"fail_times": 2, "key": "retry-test", "status": 429, "retry_after": "3"}});
    for _ in 0..2 {
        let resp = post(&c, &url, body.clone()).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "3");
        let v = json_of(resp).await;
        assert_eq!(
            v,
            json!({"error": {"message": "mock error 429", "type": "rate_limit_error", "param": null, "code": null}})
        );
    }
    let resp = post(&c, &url, body.clone()).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("retry-after").is_none());

    // A plain status always fails; embeddings honour scripts too.
    let resp = post(
        &c,
        &format!("{}/embeddings", server.base_url()),
        json!({"model": "e", "input": "x", "mock": {"status": 503}}),
    )
    .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(json_of(resp).await["error"]["type"], "server_error");
}

#[tokio::test]
async fn scripted_delay_and_overrides() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let start = Instant::now();
    let resp = post(
        &c,
        &format!("{}/chat/completions", server.base_url()),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
               "mock": {"delay_ms": 80, "content": "custom reply", "usage": {"prompt_tokens": 100, "completion_tokens": 7}}}),
    )
    .await;
    assert!(start.elapsed() >= Duration::from_millis(80));
    let v = json_of(resp).await;
    assert_eq!(v["choices"][0]["message"]["content"], "custom reply");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107})
    );
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let url = format!("{}/embeddings", server.base_url());
    let resp = post(
        &c,
        &url,
        json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v = json_of(resp).await;
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let floats: Vec<f32> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(floats.len(), 8);
    assert!(floats.iter().all(|x| (-1.0..=1.0).contains(x)));

    let resp = post(
        &c,
        &url,
        json!({"model": "e", "input": "hello world", "encoding_format": "base64", "dimensions": 16}),
    )
    .await;
    let v = json_of(resp).await;
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    let decoded: Vec<f32> = base64_decode(b64)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(decoded.len(), 16);
    assert!(decoded.iter().all(|x| (-1.0..=1.0).contains(x)));

    // Same input and size: same vector in either encoding.
    let resp = post(
        &c,
        &url,
        json!({"model": "e", "input": "hello world", "dimensions": 16}),
    )
    .await;
    let v = json_of(resp).await;
    let floats: Vec<f32> = v["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(floats, decoded);

    // Token inputs.
    let resp = post(&c, &url, json!({"model": "e", "input": [[1, 2, 3], [4]]})).await;
    let v = json_of(resp).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"]["prompt_tokens"], 4);
}

#[tokio::test]
async fn recorded_requests() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let base = server.base_url();
    post(
        &c,
        &format!("{base}/chat/completions?trace=1"),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    send(&c, Method::GET, &format!("{base}/models"), None).await;
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/chat/completions?trace=1");
    assert_eq!(reqs[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(reqs[0].body["model"], "m");
    assert_eq!(reqs[1].path, "/v1/models");

    // Over HTTP; the control calls themselves are not recorded.
    let control = format!("http://{}/_mock/requests", server.addr());
    let listed = json_of(send(&c, Method::GET, &control, None).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["path"], "/v1/chat/completions?trace=1");
    let resp = send(&c, Method::DELETE, &control, None).await;
    assert_eq!(resp.status(), 200);
    assert!(server.requests().is_empty());

    post(
        &c,
        &format!("{base}/embeddings"),
        json!({"model": "e", "input": "x"}),
    )
    .await;
    assert_eq!(server.requests().len(), 1);
    server.clear();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn recording_can_be_off() {
    let server = MockServer::start_with(MockOptions { record: false })
        .await
        .unwrap();
    let c = client();
    post(
        &c,
        &format!("{}/chat/completions", server.base_url()),
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn http2_prior_knowledge() {
    let server = MockServer::start().await.unwrap();
    let c: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let resp = post(
        &c,
        &format!("{}/chat/completions", server.base_url()),
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "h2"}]}),
    )
    .await;
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        std::str::from_utf8(&body)
            .unwrap()
            .ends_with("data: [DONE]\n\n")
    );
    assert_eq!(
        server.requests()[0].headers["host"],
        server.addr().to_string()
    );
}

#[tokio::test]
async fn drop_stops_server() {
    let server = MockServer::start().await.unwrap();
    let addr = server.addr();
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
