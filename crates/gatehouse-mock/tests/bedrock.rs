//! End-to-end tests of the Bedrock Runtime Converse endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use gatehouse_mock::MockServer;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc";
const MODEL_PATH: &str = "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0";

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

async fn post(mock: &MockServer, op: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let url = format!("http://{}{MODEL_PATH}/{op}", mock.addr());
    let mut req = Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = client().request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

const SIGNED: &[(&str, &str)] = &[("authorization", AUTH), ("x-amz-date", "20250101T000000Z")];

/// Decodes event-stream frames, checking both CRCs; returns (event type or
/// exception type, message type, payload JSON).
fn frames(mut b: &[u8]) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let total = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        let hlen = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
        assert_eq!(
            u32::from_be_bytes(b[8..12].try_into().unwrap()),
            crc32fast::hash(&b[..8]),
            "prelude CRC"
        );
        assert_eq!(
            u32::from_be_bytes(b[total - 4..total].try_into().unwrap()),
            crc32fast::hash(&b[..total - 4]),
            "message CRC"
        );
        let mut h = &b[12..12 + hlen];
        let (mut kind, mut mtype) = (String::new(), String::new());
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = std::str::from_utf8(&h[1..1 + n]).unwrap().to_owned();
            assert_eq!(h[1 + n], 7, "string header");
            let vl = u16::from_be_bytes(h[2 + n..4 + n].try_into().unwrap()) as usize;
            let value = std::str::from_utf8(&h[4 + n..4 + n + vl])
                .unwrap()
                .to_owned();
            match name.as_str() {
                ":event-type" | ":exception-type" => kind = value,
                ":message-type" => mtype = value,
                _ => {}
            }
            h = &h[4 + n + vl..];
        }
        let payload = serde_json::from_slice(&b[12 + hlen..total - 4]).unwrap();
        out.push((kind, mtype, payload));
        b = &b[total..];
    }
    out
}

#[tokio::test]
async fn plain_converse() {
    let mock = MockServer::start().await.unwrap();
    let body = json!({
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "Hello there"}]}],
        "inferenceConfig": {"maxTokens": 100}
    });
    let r = post(&mock, "converse", SIGNED, &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.headers.contains_key("x-amzn-requestid"));
    let v = r.json();
    assert_eq!(v["output"]["message"]["role"], "assistant");
    assert_eq!(
        v["output"]["message"]["content"],
        json!([{"text": "Hello from mock: Hello there"}])
    );
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(v["usage"]["inputTokens"], 4);
    assert_eq!(v["usage"]["outputTokens"], 5);
    assert_eq!(v["usage"]["totalTokens"], 9);

    let recorded = mock.requests();
    let last = recorded.last().unwrap();
    assert_eq!(last.path, format!("{MODEL_PATH}/converse"));
    assert_eq!(last.headers["authorization"], AUTH);
    assert_eq!(last.headers["x-amz-date"], "20250101T000000Z");
    assert_eq!(last.body["inferenceConfig"]["maxTokens"], 100);
}

#[tokio::test]
async fn tools_and_tool_results() {
    let mock = MockServer::start().await.unwrap();
    let tool_config = json!({"tools": [
        {"toolSpec": {"name": "top_song", "inputSchema": {"json": {"type": "object",
            "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}},
        {"toolSpec": {"name": "other", "inputSchema": {"json": {"type": "object"}}}}]});
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "What is the top song?"}]}],
        "toolConfig": tool_config,
    });
    let v = post(&mock, "converse", SIGNED, &body).await.json();
    assert_eq!(v["stopReason"], "tool_use");
    let tool = &v["output"]["message"]["content"][0]["toolUse"];
    assert_eq!(tool["name"], "top_song");
    assert_eq!(tool["input"], json!({"sign": "mock"}));
    assert!(
        tool["toolUseId"]
            .as_str()
            .unwrap()
            .starts_with("tooluse_mock_")
    );

    // Named choice, and the script read from additionalModelRequestFields.
    let mut named = tool_config.clone();
    named["toolChoice"] = json!({"tool": {"name": "other"}});
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "x"}]}],
        "toolConfig": named,
        "additionalModelRequestFields": {"mock": {"usage": {"prompt_tokens": 42}}},
    });
    let v = post(&mock, "converse", SIGNED, &body).await.json();
    assert_eq!(
        v["output"]["message"]["content"][0]["toolUse"]["name"],
        "other"
    );
    assert_eq!(v["usage"]["inputTokens"], 42);

    let body = json!({
        "messages": [
            {"role": "user", "content": [{"text": "What is the top song?"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "top_song", "input": {"sign": "WZPZ"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "Elemental Hotel"}]}}]}],
        "toolConfig": tool_config,
    });
    let v = post(&mock, "converse", SIGNED, &body).await.json();
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(
        v["output"]["message"]["content"][0]["text"],
        "Hello from mock: tool said Elemental Hotel"
    );
}

#[tokio::test]
async fn stream_frames() {
    let mock = MockServer::start().await.unwrap();
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "one two three four"}]}],
        "mock": {"chunks": 2},
    });
    let r = post(&mock, "converse-stream", SIGNED, &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let f = frames(&r.body);
    let kinds: Vec<&str> = f.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    assert!(f.iter().all(|(_, m, _)| m == "event"));
    let text: String = f
        .iter()
        .filter_map(|(_, _, p)| p["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock: one two three four");
    assert_eq!(f[4].2["stopReason"], "end_turn");
    assert_eq!(f[5].2["usage"]["inputTokens"], 4);

    // Tool use with thinking.
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "x"}]}],
        "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object",
            "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}}]},
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        "mock": {"chunks": 3},
    });
    let f = frames(&post(&mock, "converse-stream", SIGNED, &body).await.body);
    let kinds: Vec<&str> = f.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "contentBlockStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    assert_eq!(
        f[1].2["delta"]["reasoningContent"]["text"],
        "Mock thinking."
    );
    assert_eq!(f[4].2["start"]["toolUse"]["name"], "f");
    assert_eq!(f[4].2["contentBlockIndex"], 1);
    let args: String = f
        .iter()
        .filter_map(|(_, _, p)| p["delta"]["toolUse"]["input"].as_str())
        .collect();
    assert_eq!(args, r#"{"a":1}"#);
    assert_eq!(f[9].2["stopReason"], "tool_use");

    // Scripted exception frame.
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "x"}]}],
        "mock": {"stream_error": true},
    });
    let f = frames(&post(&mock, "converse-stream", SIGNED, &body).await.body);
    let last = f.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        ("throttlingException", "exception")
    );
    assert_eq!(last.2["message"], "mock stream error");
}

#[tokio::test]
async fn stream_breaks_after_chunks() {
    let mock = MockServer::start().await.unwrap();
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "x"}]}],
        "mock": {"fail_after_chunks": 2},
    });
    let url = format!("http://{}{MODEL_PATH}/converse-stream", mock.addr());
    let mut req = Request::builder().method("POST").uri(url);
    for (k, v) in SIGNED {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.into_body().collect().await.is_err());
}

#[tokio::test]
async fn auth_required() {
    let mock = MockServer::start().await.unwrap();
    let body = json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]});
    for headers in [
        &[][..],
        &[
            ("authorization", "Bearer abc"),
            ("x-amz-date", "20250101T000000Z"),
        ][..],
        &[("authorization", AUTH)][..],
    ] {
        let r = post(&mock, "converse", headers, &body).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.json(), json!({"message": "Missing Authentication Token"}));
        assert_eq!(
            r.headers["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
    }
}

#[tokio::test]
async fn scripted_errors_and_validation() {
    let mock = MockServer::start().await.unwrap();
    for (status, kind) in [
        (429, "ThrottlingException"),
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
    ] {
        let body = json!({
            "messages": [{"role": "user", "content": [{"text": "x"}]}],
            "mock": {"status": status, "retry_after": "3"},
        });
        let r = post(&mock, "converse", SIGNED, &body).await;
        assert_eq!(r.status.as_u16(), status);
        assert_eq!(r.headers["x-amzn-errortype"], kind);
        assert_eq!(r.headers["retry-after"], "3");
        assert_eq!(r.json(), json!({"message": format!("mock error {status}")}));
    }

    // fail_times then success.
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "x"}]}],
        "mock": {"fail_times": 1, "key": "bedrock-ft", "status": 429},
    });
    assert_eq!(
        post(&mock, "converse-stream", SIGNED, &body).await.status,
        429
    );
    assert_eq!(
        post(&mock, "converse-stream", SIGNED, &body).await.status,
        200
    );

    // Validation.
    let r = post(&mock, "converse", SIGNED, &json!({"messages": []})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.headers["x-amzn-errortype"], "ValidationException");
    let r = post(
        &mock,
        "converse",
        SIGNED,
        &json!({"messages": [{"role": "system", "content": [{"text": "x"}]}]}),
    )
    .await;
    assert_eq!(r.status, 400);

    // Unknown operation.
    let r = post(&mock, "invoke-nothing", SIGNED, &json!({})).await;
    assert_eq!(r.status, 404);
}
