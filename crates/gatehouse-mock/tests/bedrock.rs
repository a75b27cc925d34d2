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

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "mock-test-secret-3b9f1c";
const MODEL_PATH: &str = "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0";

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A mock that accepts requests signed with `KEY_ID` / `SECRET`.
async fn mock() -> MockServer {
    let mock = MockServer::start().await.unwrap();
    mock.accept_aws_credentials(KEY_ID, SECRET, None);
    mock
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `YYYYMMDDTHHMMSSZ` for now (days → civil date, proleptic Gregorian).
fn amz_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// SigV4 headers for a POST (this test's own signer, from AWS's published steps): host,
/// content-type, x-amz-date (and x-amz-security-token) signed; each path segment encoded
/// again in the canonical URI.
fn signed(
    host: &str,
    path: &str,
    body: &[u8],
    secret: &str,
    token: Option<&str>,
) -> Vec<(String, String)> {
    use ring::{digest, hmac};
    let date = amz_now();
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("host".to_owned(), host.to_owned()),
        ("x-amz-date".to_owned(), date.clone()),
    ];
    if let Some(t) = token {
        headers.push(("x-amz-security-token".to_owned(), t.to_owned()));
    }
    let encode = |seg: &str| -> String {
        seg.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let uri = path.split('/').map(encode).collect::<Vec<_>>().join("/");
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let canonical: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let creq = format!(
        "POST\n{uri}\n\n{canonical}\n{}\n{}",
        names.join(";"),
        hex(digest::digest(&digest::SHA256, body).as_ref())
    );
    let scope = format!("{}/us-east-1/bedrock/aws4_request", &date[..8]);
    let sts = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, creq.as_bytes()).as_ref())
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [&date[..8], "us-east-1", "bedrock", "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    let sig = hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), sts.as_bytes()).as_ref());
    headers.push((
        "authorization".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={KEY_ID}/{scope}, SignedHeaders={}, Signature={sig}",
            names.join(";")
        ),
    ));
    headers
}

async fn send(
    mock: &MockServer,
    path: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Reply {
    let url = format!("http://{}{path}", mock.addr());
    let mut req = Request::builder().method("POST").uri(url);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let resp = client()
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// A correctly signed POST to `{MODEL_PATH}/{op}`.
async fn post(mock: &MockServer, op: &str, body: &Value) -> Reply {
    let path = format!("{MODEL_PATH}/{op}");
    let body = body.to_string().into_bytes();
    let headers = signed(&mock.addr().to_string(), &path, &body, SECRET, None);
    send(mock, &path, headers, body).await
}

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
    let mock = mock().await;
    let body = json!({
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "Hello there"}]}],
        "inferenceConfig": {"maxTokens": 100}
    });
    let r = post(&mock, "converse", &body).await;
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
    assert!(last.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    assert_eq!(last.body["inferenceConfig"]["maxTokens"], 100);
}

#[tokio::test]
async fn tools_and_tool_results() {
    let mock = mock().await;
    let tool_config = json!({"tools": [
        {"toolSpec": {"name": "top_song", "inputSchema": {"json": {"type": "object",
            "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}},
        {"toolSpec": {"name": "other", "inputSchema": {"json": {"type": "object"}}}}]});
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "What is the top song?"}]}],
        "toolConfig": tool_config,
    });
    let v = post(&mock, "converse", &body).await.json();
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
    let v = post(&mock, "converse", &body).await.json();
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
    let v = post(&mock, "converse", &body).await.json();
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(
        v["output"]["message"]["content"][0]["text"],
        "Hello from mock: tool said Elemental Hotel"
    );
}

#[tokio::test]
async fn stream_frames() {
    let mock = mock().await;
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "one two three four"}]}],
        "mock": {"chunks": 2},
    });
    let r = post(&mock, "converse-stream", &body).await;
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
    let f = frames(&post(&mock, "converse-stream", &body).await.body);
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
    let f = frames(&post(&mock, "converse-stream", &body).await.body);
    let last = f.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        ("throttlingException", "exception")
    );
    assert_eq!(last.2["message"], "mock stream error");
}

#[tokio::test]
async fn stream_breaks_after_chunks() {
    let mock = mock().await;
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "x"}]}],
        "mock": {"fail_after_chunks": 2},
    });
    let path = format!("{MODEL_PATH}/converse-stream");
    let url = format!("http://{}{path}", mock.addr());
    let body = body.to_string().into_bytes();
    let mut req = Request::builder().method("POST").uri(url);
    for (k, v) in signed(&mock.addr().to_string(), &path, &body, SECRET, None) {
        req = req.header(k, v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.into_body().collect().await.is_err());
}

#[tokio::test]
async fn signatures_are_verified() {
    let mock = mock().await;
    let host = mock.addr().to_string();
    let path = format!("{MODEL_PATH}/converse");
    let body = json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]})
        .to_string()
        .into_bytes();
    let refused = |r: &Reply, kind: &str, message: &str| {
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.headers["x-amzn-errortype"], kind);
        assert_eq!(r.json(), json!({ "message": message }));
    };
    let mismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    let bad_token = "The security token included in the request is invalid.";

    // No SigV4 at all.
    let r = send(&mock, &path, vec![], body.clone()).await;
    refused(
        &r,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    );
    let bearer = vec![("authorization".to_owned(), "Bearer abc".to_owned())];
    let r = send(&mock, &path, bearer, body.clone()).await;
    refused(
        &r,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    );

    // Signed with another secret.
    let h = signed(&host, &path, &body, "not-the-secret", None);
    refused(
        &send(&mock, &path, h, body.clone()).await,
        "InvalidSignatureException",
        mismatch,
    );

    // Signed right, then the body changed on the way.
    let h = signed(&host, &path, &body, SECRET, None);
    let r = send(&mock, &path, h, br#"{"messages":[]}"#.to_vec()).await;
    refused(&r, "InvalidSignatureException", mismatch);

    // The path signed as sent (%3A), not encoded again (%253A): what a naive signer does.
    let naive = signed(&host, &path.replace("%3A", ":"), &body, SECRET, None);
    refused(
        &send(&mock, &path, naive, body.clone()).await,
        "InvalidSignatureException",
        mismatch,
    );

    // An unknown key.
    let mut h = signed(&host, &path, &body, SECRET, None);
    let auth = h.last_mut().unwrap();
    auth.1 = auth.1.replace("AKIDEXAMPLE", "AKIDOTHER");
    refused(
        &send(&mock, &path, h, body.clone()).await,
        "UnrecognizedClientException",
        bad_token,
    );

    // Session tokens: required once registered, and must match.
    mock.accept_aws_credentials(KEY_ID, SECRET, Some("session-tok"));
    let h = signed(&host, &path, &body, SECRET, None);
    refused(
        &send(&mock, &path, h, body.clone()).await,
        "UnrecognizedClientException",
        bad_token,
    );
    let h = signed(&host, &path, &body, SECRET, Some("other-tok"));
    refused(
        &send(&mock, &path, h, body.clone()).await,
        "UnrecognizedClientException",
        bad_token,
    );
    let h = signed(&host, &path, &body, SECRET, Some("session-tok"));
    assert_eq!(send(&mock, &path, h, body.clone()).await.status, 200);

    // A mock nobody gave credentials refuses everything.
    let bare = MockServer::start().await.unwrap();
    let h = signed(&bare.addr().to_string(), &path, &body, SECRET, None);
    refused(
        &send(&bare, &path, h, body.clone()).await,
        "UnrecognizedClientException",
        bad_token,
    );

    // InvokeModel too.
    let path = "/model/amazon.titan-embed-text-v2%3A0/invoke";
    let body = br#"{"inputText":"hi"}"#.to_vec();
    let h = signed(&host, path, &body, SECRET, None);
    refused(
        &send(&mock, path, h, body.clone()).await,
        "UnrecognizedClientException",
        bad_token,
    );
    let h = signed(&host, path, &body, SECRET, Some("session-tok"));
    let r = send(&mock, path, h, body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["inputTextTokenCount"], 1);
}

/// What Claude on Bedrock checks when reasoning comes back, and what the mock issues.
#[tokio::test]
async fn thinking_signatures_must_come_back() {
    let mock = mock().await;
    let tools = json!({"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]});
    let thinking = json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
    let user = json!({"role": "user", "content": [{"text": "x"}]});
    let first = post(
        &mock,
        "converse",
        &json!({"messages": [user], "toolConfig": tools, "additionalModelRequestFields": thinking}),
    )
    .await
    .json();
    let content = first["output"]["message"]["content"].clone();
    let reasoning = &content[0]["reasoningContent"]["reasoningText"];
    assert_eq!(reasoning["text"], "Mock thinking.");
    let signature = reasoning["signature"].as_str().unwrap().to_owned();
    assert!(signature.starts_with("sig_mock_"), "{signature}");
    let tool_id = content[1]["toolUse"]["toolUseId"]
        .as_str()
        .unwrap()
        .to_owned();
    let turn2 = |assistant: Value| {
        json!({"messages": [user, {"role": "assistant", "content": assistant},
            {"role": "user", "content": [{"toolResult": {"toolUseId": tool_id, "content": [{"text": "42"}]}}]}],
            "toolConfig": tools, "additionalModelRequestFields": thinking})
    };

    // Sent back as it came: accepted.
    let r = post(&mock, "converse", &turn2(content.clone())).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["output"]["message"]["content"][1]["text"],
        "Hello from mock: tool said 42"
    );

    let refused = |r: Reply, want: &str| {
        assert_eq!(r.status, 400);
        assert_eq!(r.headers["x-amzn-errortype"], "ValidationException");
        let message = r.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(want), "{message}");
    };
    // Reasoning dropped: the tool-use turn no longer starts with it.
    let without = json!([content[1].clone()]);
    refused(
        post(&mock, "converse", &turn2(without.clone())).await,
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`",
    );
    // (Without thinking in this request, the same history is fine.)
    let mut no_thinking = turn2(without);
    no_thinking
        .as_object_mut()
        .unwrap()
        .remove("additionalModelRequestFields");
    assert_eq!(post(&mock, "converse", &no_thinking).await.status, 200);
    // Signature dropped, or the text changed (an empty text, as a careless stream rebuild sends).
    let mut unsigned = content.clone();
    unsigned[0]["reasoningContent"]["reasoningText"]
        .as_object_mut()
        .unwrap()
        .remove("signature");
    refused(
        post(&mock, "converse", &turn2(unsigned)).await,
        "messages.1.content.0.thinking.signature: Field required",
    );
    let mut emptied = content.clone();
    emptied[0]["reasoningContent"]["reasoningText"]["text"] = json!("");
    refused(
        post(&mock, "converse", &turn2(emptied)).await,
        "messages.1.content.0: Invalid `signature` in `thinking` block",
    );

    // Streams carry the same signature in a delta of its own.
    let f = frames(
        &post(
            &mock,
            "converse-stream",
            &json!({"messages": [user], "additionalModelRequestFields": thinking}),
        )
        .await
        .body,
    );
    let sig = f
        .iter()
        .find_map(|(_, _, p)| p["delta"]["reasoningContent"]["signature"].as_str())
        .unwrap();
    assert!(sig.starts_with("sig_mock_") && sig.ends_with(signature.rsplit('_').next().unwrap()));
}

/// `mock.thinking_blocks` and `mock.redacted_thinking`: several signed reasoning blocks and
/// a redacted one, streamed and not; the redacted data must come back as issued. And
/// Claude's limits on the budget.
#[tokio::test]
async fn several_reasoning_blocks_redacted_reasoning_and_budget_limits() {
    let mock = mock().await;
    let user = json!({"role": "user", "content": [{"text": "x"}]});
    let body = |extra: Value| {
        let mut b = json!({"messages": [user],
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024},
                "mock": {"thinking_blocks": 2, "redacted_thinking": true}}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let r = post(&mock, "converse", &body(json!({}))).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let content = r.json()["output"]["message"]["content"].clone();
    let first = &content[0]["reasoningContent"]["reasoningText"];
    let second = &content[1]["reasoningContent"]["reasoningText"];
    assert_eq!(first["text"], "Mock thinking.");
    assert_eq!(second["text"], "Mock thinking, part 2.");
    assert_ne!(first["signature"], second["signature"]);
    let data = content[2]["reasoningContent"]["redactedContent"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(data.len().is_multiple_of(4) && data.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(content[3]["text"], "Hello from mock: x");

    // Streamed: one delta per text, signature and redacted block, by content block index.
    let f = frames(&post(&mock, "converse-stream", &body(json!({}))).await.body);
    // (Signatures and data name the request: compare what follows its number.)
    let tail = |s: &str| s.rsplit('_').next().unwrap().to_owned();
    let reasoning: Vec<(u64, String, String)> = f
        .iter()
        .filter_map(|(_, _, p)| {
            let (key, value) = p["delta"]
                .get("reasoningContent")?
                .as_object()?
                .iter()
                .next()?;
            let value = value.as_str().unwrap();
            let value = match key.as_str() {
                "signature" => tail(value),
                "redactedContent" => value.len().to_string(),
                _ => value.to_owned(),
            };
            Some((p["contentBlockIndex"].as_u64().unwrap(), key.clone(), value))
        })
        .collect();
    let want = |k: u64, key: &str, v: String| (k, key.to_owned(), v);
    assert_eq!(
        reasoning,
        [
            want(0, "text", "Mock thinking.".into()),
            want(0, "signature", tail(first["signature"].as_str().unwrap())),
            want(1, "text", "Mock thinking, part 2.".into()),
            want(1, "signature", tail(second["signature"].as_str().unwrap())),
            want(2, "redactedContent", data.len().to_string()),
        ]
    );

    // Replayed as issued: fine; a redacted block the mock did not issue: refused.
    let replay = |assistant: Value| {
        json!({"messages": [user, {"role": "assistant", "content": assistant},
            {"role": "user", "content": [{"text": "and?"}]}]})
    };
    let r = post(&mock, "converse", &replay(content.clone())).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut forged = content.clone();
    forged[2]["reasoningContent"]["redactedContent"] = json!("RW5jcnlwdGVk");
    let r = post(&mock, "converse", &replay(forged)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("messages.1.content.2: Invalid `data` in `redacted_thinking` block")
    );

    // Budget limits, as Claude on Bedrock words them.
    for (thinking, max_tokens, want) in [
        (
            json!({"type": "enabled", "budget_tokens": 1024}),
            json!(1024),
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
        (
            json!({"type": "enabled", "budget_tokens": 1000}),
            json!(4096),
            "greater than or equal to 1024",
        ),
    ] {
        let r = post(
            &mock,
            "converse",
            &json!({"messages": [user], "inferenceConfig": {"maxTokens": max_tokens},
                "additionalModelRequestFields": {"thinking": thinking}}),
        )
        .await;
        assert_eq!(r.status, 400, "{want}");
        let message = r.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.starts_with("The model returned the following errors: ")
                && message.contains(want),
            "{message}"
        );
    }
    let r = post(
        &mock,
        "converse",
        &json!({"messages": [user], "inferenceConfig": {"maxTokens": 1025},
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}}),
    )
    .await;
    assert_eq!(r.status, 200);
}

/// Converse `document` blocks: accepted when valid (the reply names what was read), refused
/// as Bedrock refuses them otherwise.
#[tokio::test]
async fn documents_are_read_and_validated() {
    let mock = mock().await;
    let doc = |name: &str, format: &str| json!({"document": {"format": format, "name": name, "source": {"bytes": "JVBERi0xLjQK"}}});
    let r = post(
        &mock,
        "converse",
        &json!({"messages": [{"role": "user", "content": [
            {"text": "Summarize"}, doc("document-1", "pdf"), doc("document (2) [x]", "md")]}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["output"]["message"]["content"][0]["text"],
        "Hello from mock: Summarize [read document-1 (pdf, 9 bytes)] [read document (2) [x] (md, 9 bytes)]"
    );
    for (content, want) in [
        (
            json!([doc("document-1", "pdf")]),
            "must also include a text content block",
        ),
        (json!([{"text": "x"}, doc("report.pdf", "pdf")]), ".name'"),
        (json!([{"text": "x"}, doc("d", "rtf")]), ".format'"),
        (
            json!([{"text": "x"}, doc("d", "pdf"), doc("d", "txt")]),
            "unique",
        ),
    ] {
        let r = post(
            &mock,
            "converse",
            &json!({"messages": [{"role": "user", "content": content}]}),
        )
        .await;
        assert_eq!(r.status, 400, "{want}");
        assert_eq!(r.headers["x-amzn-errortype"], "ValidationException");
        let message = r.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(want), "{want}: {message}");
    }
}

#[tokio::test]
async fn cache_points_are_checked_and_counted() {
    let mock = mock().await;
    let point = json!({"cachePoint": {"type": "default"}});
    let body = |question: &str| {
        json!({"system": [{"text": "You answer questions about the five documents below."}, point],
               "messages": [{"role": "user", "content": [
                   {"text": "Document one two three"}, {"cachePoint": {"type": "default", "ttl": "1h"}},
                   {"text": question}]}]})
    };
    let usage = |r: Reply| {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["usage"].clone()
    };
    // 8 system words + 4 words before the last cache point: written once, then read.
    let u = usage(post(&mock, "converse", &body("What is it?")).await);
    assert_eq!(
        (
            &u["inputTokens"],
            &u["cacheWriteInputTokens"],
            &u["cacheReadInputTokens"]
        ),
        (&json!(3), &json!(12), &json!(0))
    );
    let f = frames(&post(&mock, "converse-stream", &body("Why?")).await.body);
    let u = &f.last().unwrap().2["usage"];
    assert_eq!(
        (
            &u["inputTokens"],
            &u["cacheWriteInputTokens"],
            &u["cacheReadInputTokens"]
        ),
        (&json!(1), &json!(0), &json!(12))
    );
    // No cache point, no cache fields.
    let u = usage(
        post(
            &mock,
            "converse",
            &json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]}),
        )
        .await,
    );
    assert!(u.get("cacheReadInputTokens").is_none());

    for bad in [
        json!({"system": [{"text": "x"}, {"cachePoint": {"type": "ephemeral"}}], "messages": [{"role": "user", "content": [{"text": "x"}]}]}),
        json!({"system": [{"text": "x"}, {"cachePoint": {"type": "default", "ttl": "2d"}}], "messages": [{"role": "user", "content": [{"text": "x"}]}]}),
        json!({"system": [{"text": "a"}, point, {"text": "b"}, point, {"text": "c"}, point],
               "messages": [{"role": "user", "content": [{"text": "x"}, point, {"text": "y"}, point]}]}),
    ] {
        let r = post(&mock, "converse", &bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.headers["x-amzn-errortype"], "ValidationException");
    }
}

#[tokio::test]
async fn scripted_errors_and_validation() {
    let mock = mock().await;
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
        let r = post(&mock, "converse", &body).await;
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
    assert_eq!(post(&mock, "converse-stream", &body).await.status, 429);
    assert_eq!(post(&mock, "converse-stream", &body).await.status, 200);

    // Validation.
    let r = post(&mock, "converse", &json!({"messages": []})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.headers["x-amzn-errortype"], "ValidationException");
    let r = post(
        &mock,
        "converse",
        &json!({"messages": [{"role": "system", "content": [{"text": "x"}]}]}),
    )
    .await;
    assert_eq!(r.status, 400);

    // Unknown operation.
    let r = post(&mock, "invoke-nothing", &json!({})).await;
    assert_eq!(r.status, 404);
}
