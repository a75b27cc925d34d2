//! End-to-end tests of the Vertex AI routes: the OAuth2 token endpoint and Claude on Vertex
//! (`publishers/anthropic/models/{model}:rawPredict` / `:streamRawPredict`,
//! `count-tokens:rawPredict`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gatehouse_mock::MockServer;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const TEST_SA: &str = include_str!("../testdata/vertex-test-sa.json");
const PREFIX: &str = "/v1/projects/p/locations/us-east5/publishers/anthropic/models";

fn b64(input: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn b64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | u32::from(value(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A bearer token from the mock's token endpoint, for the committed test account.
async fn token(c: &HttpClient, server: &MockServer) -> String {
    let sa: Value = serde_json::from_str(TEST_SA).unwrap();
    let der: String = sa["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let key = RsaKeyPair::from_pkcs8(&b64_decode(&der)).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": sa["client_email"], "scope": "https://www.googleapis.com/auth/cloud-platform",
        "aud": format!("http://{}/token", server.addr()), "iat": now, "exp": now + 3600});
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#, true),
        b64(claims.to_string().as_bytes(), true)
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={input}.{}",
        b64(&sig, true)
    );
    let req = Request::post(format!("http://{}/token", server.addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    c: &HttpClient,
    server: &MockServer,
    rest: &str,
    bearer: Option<&str>,
    body: &Value,
) -> (StatusCode, String) {
    let mut req = Request::post(format!("http://{}{PREFIX}/{rest}", server.addr()))
        .header("content-type", "application/json");
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = c
        .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn vertex_body(extra: Value) -> Value {
    let mut v = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi there"}]});
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

#[tokio::test]
async fn claude_on_vertex_routes() {
    let server = MockServer::start().await.unwrap();
    let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let model = "claude-sonnet-4@20250514:rawPredict";

    // No token, or one the mock did not issue: 401 in Google's shape.
    for bearer in [None, Some("ya29.forged")] {
        let (status, body) = call(&c, &server, model, bearer, &vertex_body(json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("UNAUTHENTICATED"), "{body}");
    }
    let t = token(&c, &server).await;

    // Plain: Anthropic's message, the model from the URL.
    let (status, body) = call(&c, &server, model, Some(&t), &vertex_body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "claude-sonnet-4@20250514");
    assert_eq!(v["content"][0]["text"], "Hello from mock: hi there");

    // Streamed: Anthropic's SSE events.
    let (status, body) = call(
        &c,
        &server,
        "claude-sonnet-4@20250514:streamRawPredict",
        Some(&t),
        &vertex_body(json!({"stream": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("event: message_start\n"), "{body}");
    assert!(body.contains("event: message_stop"), "{body}");

    // Tools work as on Anthropic's API.
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let (_, body) = call(
        &c,
        &server,
        model,
        Some(&t),
        &vertex_body(json!({"tools": tools})),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["stop_reason"], "tool_use", "{body}");

    // count-tokens takes the model in the body.
    let (status, body) = call(
        &c,
        &server,
        "count-tokens:rawPredict",
        Some(&t),
        &vertex_body(json!({"model": "claude-sonnet-4@20250514"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["input_tokens"],
        2
    );

    // What Vertex refuses: a model in the body, a missing or Anthropic-API version, stream
    // flags that do not match the method.
    let mut no_version = vertex_body(json!({}));
    no_version
        .as_object_mut()
        .unwrap()
        .remove("anthropic_version");
    for (rest, body, want) in [
        (
            model,
            vertex_body(json!({"model": "claude-sonnet-4@20250514"})),
            "model: Extra inputs",
        ),
        (model, no_version, "anthropic_version: Field required"),
        (
            model,
            vertex_body(json!({"anthropic_version": "2023-06-01"})),
            "anthropic_version: Input should be",
        ),
        (
            model,
            vertex_body(json!({"stream": true})),
            "needs streamRawPredict",
        ),
        (
            "claude-sonnet-4@20250514:streamRawPredict",
            vertex_body(json!({})),
            "needs \"stream\": true",
        ),
    ] {
        let (status, text) = call(&c, &server, rest, Some(&t), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(want),
            "{text}"
        );
    }
    let (status, _) = call(
        &c,
        &server,
        "claude-x:predict",
        Some(&t),
        &vertex_body(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let reqs = server.requests();
    let last = reqs.last().unwrap();
    assert!(last.path.starts_with(PREFIX));
    assert_eq!(last.headers["authorization"], format!("Bearer {t}"));
}
