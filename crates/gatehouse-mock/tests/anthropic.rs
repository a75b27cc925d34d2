//! End-to-end tests of the Anthropic Messages endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_mock::MockServer;
use http::{Request, StatusCode};
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

/// POSTs `body` with the given `(name, value)` headers.
async fn post_with(
    c: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> http::Response<Incoming> {
    let mut req = Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    c.request(req).await.unwrap()
}

const HEADERS: &[(&str, &str)] = &[
    ("x-api-key", "sk-ant-test"),
    ("anthropic-version", "2023-06-01"),
];

async fn post(c: &HttpClient, server: &MockServer, body: &Value) -> http::Response<Incoming> {
    post_with(c, &messages_url(server), HEADERS, body).await
}

fn messages_url(server: &MockServer) -> String {
    format!("{}/messages", server.base_url())
}

async fn json_of(resp: http::Response<Incoming>) -> Value {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn text_of(resp: http::Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Parses an Anthropic SSE body into `(event, data)` pairs, checking that every
/// frame is `event: X\ndata: {json}` and that `X` equals `data.type`.
fn events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n"), "body must end with a blank line");
    body.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], event.as_str(), "{frame}");
            (event, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(e, _)| e.as_str()).collect()
}

fn weather_tools() -> Value {
    json!([
        {"name": "get_weather", "description": "Weather", "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"]}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    ])
}

#[tokio::test]
async fn plain_message() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let resp = post(
        &c,
        &server,
        &json!({"model": "claude-x", "max_tokens": 100, "system": "be nice",
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}
            ]}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let n = rid.strip_prefix("req-mock-").unwrap().to_owned();
    assert_eq!(
        resp.headers()["request-id"],
        format!("req_mock_{n}").as_str()
    );
    let v = json_of(resp).await;
    assert_eq!(
        v,
        json!({
            "id": format!("msg_mock_{n}"), "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Hello from mock: hi there"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 6, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        })
    );

    // Recorded like the other endpoints.
    let reqs = server.requests();
    let last = reqs.last().unwrap();
    assert_eq!(last.path, "/v1/messages");
    assert_eq!(last.headers["x-api-key"], "sk-ant-test");
    assert_eq!(last.body["model"], "claude-x");
}

#[tokio::test]
async fn tool_use_and_tool_result() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let msgs = json!([{"role": "user", "content": "weather?"}]);
    let v = json_of(
        post(
            &c,
            &server,
            &json!({"model": "m", "max_tokens": 10, "messages": msgs, "tools": weather_tools()}),
        )
        .await,
    )
    .await;
    assert_eq!(v["stop_reason"], "tool_use");
    let id = v["id"].as_str().unwrap().strip_prefix("msg_mock_").unwrap();
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": format!("toolu_mock_{id}"), "name": "get_weather",
                "input": {"city": "mock", "days": 1}}])
    );

    let v = json_of(
        post(
            &c,
            &server,
            &json!({"model": "m", "max_tokens": 10, "messages": msgs, "tools": weather_tools(),
                "tool_choice": {"type": "tool", "name": "get_time"}}),
        )
        .await,
    )
    .await;
    assert_eq!(v["content"][0]["name"], "get_time");
    assert_eq!(v["content"][0]["input"], json!({}));

    let v = json_of(
        post(
            &c,
            &server,
            &json!({"model": "m", "max_tokens": 10, "messages": msgs, "tools": weather_tools(),
                "tool_choice": {"type": "none"}}),
        )
        .await,
    )
    .await;
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"][0]["text"], "Hello from mock: weather?");

    let v = json_of(
        post(
            &c,
            &server,
            &json!({"model": "m", "max_tokens": 10, "tools": weather_tools(), "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "x", "days": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
            ]}),
        )
        .await,
    )
    .await;
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello from mock: tool said sunny"}])
    );
}

#[tokio::test]
async fn thinking_block_comes_first() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let v = json_of(
        post(
            &c,
            &server,
            &json!({"model": "m", "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
                "messages": [{"role": "user", "content": "hm"}]}),
        )
        .await,
    )
    .await;
    let id = v["id"].as_str().unwrap().strip_prefix("msg_mock_").unwrap();
    let signature = v["content"][0]["signature"].as_str().unwrap();
    assert!(signature.starts_with(&format!("sig_mock_{id}_")), "{v}");
    assert_eq!(
        v["content"],
        json!([
            {"type": "thinking", "thinking": "Mock thinking.", "signature": signature},
            {"type": "text", "text": "Hello from mock: hm"}
        ])
    );
    assert_eq!(v["usage"]["output_tokens"], 2 + 4);
}

#[tokio::test]
async fn stream_event_order() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let resp = post(
        &c,
        &server,
        &json!({"model": "claude-x", "max_tokens": 2048, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "a b c d"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let body = text_of(resp).await;
    let ev = events(&body);
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let start = &ev[0].1["message"];
    let id = start["id"].as_str().unwrap();
    assert!(id.starts_with("msg_mock_"));
    assert_eq!(start["model"], "claude-x");
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert_eq!(start["usage"]["input_tokens"], 4);
    assert_eq!(start["usage"]["output_tokens"], 1);

    // Thinking block: thinking deltas, then the signature.
    assert_eq!(
        ev[2].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
    );
    assert_eq!(ev[3].1["delta"]["type"], "thinking_delta");
    assert_eq!(ev[4].1["delta"]["type"], "thinking_delta");
    let thinking = format!(
        "{}{}",
        ev[3].1["delta"]["thinking"].as_str().unwrap(),
        ev[4].1["delta"]["thinking"].as_str().unwrap()
    );
    assert_eq!(thinking, "Mock thinking.");
    assert_eq!(ev[5].1["delta"]["type"], "signature_delta");
    let signature = ev[5].1["delta"]["signature"].as_str().unwrap();
    assert!(
        signature.starts_with(&format!("{}_", id.replace("msg_mock_", "sig_mock_"))),
        "{signature}"
    );
    assert_eq!(ev[6].1, json!({"type": "content_block_stop", "index": 0}));

    // Text block, split in 3 pieces.
    assert_eq!(
        ev[7].1,
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
    );
    let text: String = ev[8..11]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["index"], 1);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "Hello from mock: a b c d");
    assert_eq!(
        ev[12].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 2 + 7}})
    );
    assert_eq!(ev[13].1, json!({"type": "message_stop"}));
}

#[tokio::test]
async fn stream_tool_use_partial_json() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let resp = post(
        &c,
        &server,
        &json!({"model": "m", "max_tokens": 100, "stream": true, "tools": weather_tools(),
            "messages": [{"role": "user", "content": "weather?"}], "mock": {"chunks": 4}}),
    )
    .await;
    let body = text_of(resp).await;
    let ev = events(&body);
    assert_eq!(ev[2].0, "content_block_start");
    let block = &ev[2].1["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_mock_"));
    assert_eq!(block["input"], json!({}));
    let deltas: Vec<&Value> = ev
        .iter()
        .filter(|(e, _)| e == "content_block_delta")
        .map(|(_, d)| &d["delta"])
        .collect();
    assert_eq!(deltas.len(), 4);
    let json_text: String = deltas
        .iter()
        .map(|d| {
            assert_eq!(d["type"], "input_json_delta");
            d["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    let input: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(input, json!({"city": "mock", "days": 1}));
    let (_, delta) = &ev[ev.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(ev.last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn stream_error_event_and_pacing() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let resp = post(
        &c,
        &server,
        &json!({"model": "m", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "x y z"}], "mock": {"stream_error": true}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body = text_of(resp).await;
    let ev = events(&body);
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        ev[4].1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    // chunk_delay_ms paces every frame: 9 frames → 8 gaps.
    let started = Instant::now();
    let resp = post(
        &c,
        &server,
        &json!({"model": "m", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "x y z"}], "mock": {"chunk_delay_ms": 20}}),
    )
    .await;
    let body = text_of(resp).await;
    assert_eq!(events(&body).len(), 9);
    assert!(started.elapsed() >= Duration::from_millis(160));

    // fail_after_chunks aborts the transfer.
    let resp = post(
        &c,
        &server,
        &json!({"model": "m", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "x y z"}], "mock": {"fail_after_chunks": 3}}),
    )
    .await;
    assert!(resp.into_body().collect().await.is_err());
}

#[tokio::test]
async fn scripted_errors_use_anthropic_shape() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let base =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
        (529, "overloaded_error"),
    ] {
        let mut body = base.clone();
        body["mock"] = json!({"status": status, "retry_after": "3"});
        let resp = post(&c, &server, &body).await;
        assert_eq!(resp.status(), status);
        assert_eq!(resp.headers()["retry-after"], "3");
        let rid = resp.headers()["request-id"].to_str().unwrap().to_owned();
        let v = json_of(resp).await;
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": kind, "message": format!("mock error {status}")},
                   "request_id": rid})
        );
    }

    // fail_times / key: the first two fail, then success.
    let mut body = base.clone();
    body["mock"] = json!({"fail_times": 2, "key": "anthropic-k", "status": 529});
    for _ in 0..2 {
        assert_eq!(post(&c, &server, &body).await.status(), 529);
    }
    assert_eq!(post(&c, &server, &body).await.status(), 200);
}

#[tokio::test]
async fn headers_and_validation() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let url = messages_url(&server);
    let body =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});

    let resp = post_with(&c, &url, &[("anthropic-version", "2023-06-01")], &body).await;
    assert_eq!(resp.status(), 401);
    let v = json_of(resp).await;
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");

    let resp = post_with(&c, &url, &[("x-api-key", "k")], &body).await;
    assert_eq!(resp.status(), 400);
    let v = json_of(resp).await;
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic-version")
    );

    let resp = post_with(
        &c,
        &url,
        &[("x-api-key", ""), ("anthropic-version", "1")],
        &body,
    )
    .await;
    assert_eq!(resp.status(), 401);

    for bad in [
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        json!({"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "m", "max_tokens": "10", "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "m", "max_tokens": 10, "messages": []}),
        json!({"model": "m", "max_tokens": 10}),
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}),
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user"}]}),
    ] {
        let resp = post(&c, &server, &bad).await;
        assert_eq!(resp.status(), 400, "{bad}");
        let v = json_of(resp).await;
        assert_eq!(v["type"], "error", "{bad}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{bad}");
    }
    let req = Request::builder()
        .method("POST")
        .uri(&url)
        .header("x-api-key", "k")
        .header("anthropic-version", "1")
        .body(Full::new(Bytes::from_static(b"{not json")))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        json_of(resp).await["error"]["type"],
        "invalid_request_error"
    );

    // Every one of those was recorded.
    assert_eq!(server.requests().len(), 11);
}

#[tokio::test]
async fn count_tokens() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let url = format!("{}/messages/count_tokens", server.base_url());
    let body = json!({"model": "m", "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": "one two three"}]});
    let resp = post_with(&c, &url, HEADERS, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await, json!({"input_tokens": 5}));

    // Same count as the Messages reply's input_tokens.
    let mut full = body.clone();
    full["max_tokens"] = json!(10);
    let v = json_of(post(&c, &server, &full).await).await;
    assert_eq!(v["usage"]["input_tokens"], 5);

    let resp = post_with(&c, &url, &[("anthropic-version", "1")], &body).await;
    assert_eq!(resp.status(), 401);
}

/// Thinking, redacted thinking and a tool call; the replay is accepted only with the
/// blocks as the mock gave them (Anthropic's rules for thinking with tool use).
#[tokio::test]
async fn thinking_signatures_are_checked_on_replay() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let thinking = json!({"type": "enabled", "budget_tokens": 1024});
    let question = json!({"role": "user", "content": "weather?"});
    let v = json_of(
        post(
            &c,
            &server,
            &json!({"model": "m", "max_tokens": 2048, "thinking": thinking, "tools": weather_tools(),
                "messages": [question], "mock": {"redacted_thinking": true}}),
        )
        .await,
    )
    .await;
    assert_eq!(v["stop_reason"], "tool_use");
    let content = v["content"].as_array().unwrap().clone();
    let kinds: Vec<&str> = content
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["thinking", "redacted_thinking", "tool_use"]);
    assert!(
        content[1]["data"]
            .as_str()
            .unwrap()
            .starts_with("redacted_mock_")
    );
    let tool_id = content[2]["id"].as_str().unwrap().to_owned();

    let replay = |assistant: Value| {
        json!({"model": "m", "max_tokens": 2048, "thinking": thinking, "tools": weather_tools(),
            "messages": [question, {"role": "assistant", "content": assistant},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "sunny"}]}]})
    };
    let ok = post(&c, &server, &replay(Value::Array(content.clone()))).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let v = json_of(ok).await;
    assert_eq!(v["content"][1]["text"], "Hello from mock: tool said sunny");

    let mut emptied = content.clone();
    emptied[0]["thinking"] = json!("");
    let mut no_data = content.clone();
    no_data[1]["data"] = json!("");
    let cases = [
        (
            json!(emptied),
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
        (
            json!(no_data),
            "messages.1.content.1: Invalid `data` in `redacted_thinking` block",
        ),
        (
            json!([content[2]]),
            "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`",
        ),
    ];
    for (assistant, message) in cases {
        let resp = post(&c, &server, &replay(assistant)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let v = json_of(resp).await;
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let got = v["error"]["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{got}");
    }

    // Streamed: the redacted block comes whole in its start event.
    let body = text_of(
        post(
            &c,
            &server,
            &json!({"model": "m", "max_tokens": 2048, "thinking": thinking, "stream": true,
                "messages": [question], "mock": {"redacted_thinking": true}}),
        )
        .await,
    )
    .await;
    let ev = events(&body);
    let redacted: Vec<&Value> = ev
        .iter()
        .filter(|(_, d)| d["content_block"]["type"] == "redacted_thinking")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(redacted.len(), 1);
    assert_eq!(redacted[0]["index"], 1);
    assert!(
        !ev.iter()
            .any(|(_, d)| d["type"] == "content_block_delta" && d["index"] == 1)
    );
}

#[tokio::test]
async fn prompt_cache_usage() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let body = |question: &str, stream: bool| {
        json!({"model": "m", "max_tokens": 10, "stream": stream,
            "system": [{"type": "text", "text": "one two three four", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": question}]})
    };
    let v = json_of(post(&c, &server, &body("first", false)).await).await;
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 1, "output_tokens": 4, "cache_creation_input_tokens": 4, "cache_read_input_tokens": 0})
    );
    let v = json_of(post(&c, &server, &body("second one", false)).await).await;
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 2, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4})
    );
    // Streamed: in message_start, as Anthropic reports it.
    let ev = events(&text_of(post(&c, &server, &body("third", true)).await).await);
    assert_eq!(
        ev[0].1["message"]["usage"],
        json!({"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4})
    );
    // A different prefix is a new cache entry.
    let mut other = body("first", false);
    other["system"][0]["text"] = json!("five six seven eight");
    let v = json_of(post(&c, &server, &other).await).await;
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 4);
}
