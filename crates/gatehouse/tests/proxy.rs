//! End-to-end: the real binary on an ephemeral loopback port, in front of the mock upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup(extra: &str) -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let gh = Gatehouse::start(&config_for(&mock.base_url(), extra), "info");
    (mock, gh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_is_proxied_with_model_rewritten_and_gateway_headers() {
    let (mock, gh) = setup("").await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body(
            "gpt-mock",
            json!({"custom_field": {"a": [1, 2.50]}, "temperature": 0.2}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock: hello there"
    );
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    for h in [
        "x-litellm-call-id",
        "x-litellm-model-id",
        "x-litellm-response-duration-ms",
    ] {
        assert!(r.headers.contains_key(h), "missing {h}");
    }
    assert_eq!(r.headers["content-type"], "application/json");

    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let up = &seen[0];
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(up.body["model"], "mock-gpt");
    assert_eq!(up.body["custom_field"], json!({"a": [1, 2.5]}));
    assert_eq!(
        up.headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}")
    );
    assert!(
        !up.headers.values().any(|v| v.contains(MASTER_KEY)),
        "master key forwarded"
    );

    // `/chat/completions` without /v1 is the same endpoint.
    let r = post(
        &gh.url("/chat/completions"),
        &[],
        chat_body("gpt-mock", json!({})),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_chooses_where_the_gateway_connects() {
    let (mock, gh) = setup("").await;
    let decoy = MockServer::start().await.unwrap();
    let body = chat_body(
        "gpt-mock",
        json!({
            "api_base": decoy.base_url(),
            "base_url": decoy.base_url(),
            "api_key": "sk-attacker",
            "extra_headers": {"authorization": "Bearer sk-attacker"},
        }),
    );
    // The escaped spelling of the same key must not slip through either.
    let escaped = body.replacen("\"api_base\"", "\"api\\u005fbase\"", 1);
    for b in [body, escaped] {
        let r = post(
            &gh.url("/v1/chat/completions"),
            &[
                ("x-litellm-api-base", &decoy.base_url()),
                ("api-base", &decoy.base_url()),
            ],
            b,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(
        decoy.requests().is_empty(),
        "the decoy upstream was contacted"
    );
    for up in mock.requests() {
        for f in ["api_base", "base_url", "api_key", "extra_headers"] {
            assert!(up.body.get(f).is_none(), "{f} was forwarded");
        }
        assert_eq!(
            up.headers["authorization"],
            format!("Bearer {UPSTREAM_KEY}")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_read_from_every_header_and_bad_keys_get_401() {
    let (mock, gh) = setup("").await;
    let url = gh.url("/v1/chat/completions");
    let body = chat_body("gpt-mock", json!({}));
    for (h, v) in [
        ("x-api-key", MASTER_KEY.to_owned()),
        ("x-litellm-api-key", MASTER_KEY.to_owned()),
        ("api-key", MASTER_KEY.to_owned()),
        ("authorization", format!("Bearer {MASTER_KEY}")),
    ] {
        assert_eq!(
            post(&url, &[(h, &v)], body.clone()).await.status,
            200,
            "{h}"
        );
    }
    post(&url, &[("no-auth", "")], body.clone())
        .await
        .assert_error(401);
    post(&url, &[("authorization", "Bearer sk-wrong")], body.clone())
        .await
        .assert_error(401);
    let r = get(
        &gh.url("/v1/models"),
        &[("authorization", "Bearer sk-wrong")],
    )
    .await;
    r.assert_error(401);
    assert_eq!(
        mock.requests().len(),
        4,
        "refused requests must not reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_400_and_changes_nothing() {
    let (mock, gh) = setup("").await;
    let url = gh.url("/v1/chat/completions");
    let e = post(&url, &[], "{not json").await.assert_error(400);
    assert!(e["message"].as_str().unwrap().contains("not valid JSON"));
    let e = post(&url, &[], r#"{"model":"gpt-mock"}"#)
        .await
        .assert_error(400);
    assert_eq!(e["param"], "messages");
    let e = post(
        &url,
        &[],
        r#"{"model":"gpt-mock","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
    )
    .await
    .assert_error(400);
    assert_eq!(e["param"], "stream");
    let e = post(&url, &[], chat_body("no-such-model", json!({})))
        .await
        .assert_error(400);
    assert!(e["message"].as_str().unwrap().contains("no-such-model"));
    let e = post(
        &url,
        &[],
        r#"{"model":"gpt-mock","model":"x","messages":[]}"#,
    )
    .await
    .assert_error(400);
    assert!(e["message"].as_str().unwrap().contains("duplicate"));
    let e = post(&gh.url("/v1/embeddings"), &[], r#"{"model":"gpt-mock"}"#)
        .await
        .assert_error(400);
    assert_eq!(e["param"], "input");
    get(&gh.url("/v1/nothing-here"), &[])
        .await
        .assert_error(404);
    get(&url, &[]).await.assert_error(405);
    assert!(mock.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let (mock, gh) = setup("").await;
    let big = chat_body("gpt-mock", json!({"pad": "x".repeat(1_100_000)}));
    post(&gh.url("/v1/chat/completions"), &[], big.clone())
        .await
        .assert_error(413);

    // Chunked (no content-length): refused once the limit is crossed, without reading it all.
    let mut sock = tokio::net::TcpStream::connect(gh.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER_KEY}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    for _ in 0..20 {
        if sock.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let reply = read_reply(&mut sock).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(mock.requests().is_empty());
}

async fn read_reply(sock: &mut tokio::net::TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends one HTTP/1.1 request with a JSON body on `sock` and returns the reply's head.
async fn request_on(sock: &mut tokio::net::TcpStream, path: &str, key: &str, body: &str) -> String {
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    read_reply(sock).await.to_ascii_lowercase()
}

/// A refusal sent before the request body is read says `connection: close`: hyper cannot
/// reuse that connection, and a keep-alive client must not send its next request on it
/// (it would see "server disconnected" instead of an answer). Answers after a read body
/// keep the connection alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_body_is_read_close_the_connection() {
    let (_mock, gh) = setup("").await;
    let body = chat_body(
        "gpt-mock",
        json!({"messages": [{"role": "user", "content": "x".repeat(200_000)}]}),
    );
    for path in ["/v1/chat/completions", "/v1/messages", "/key/generate"] {
        let mut sock = tokio::net::TcpStream::connect(gh.addr).await.unwrap();
        let reply = request_on(&mut sock, path, "sk-wrong", &body).await;
        assert!(reply.starts_with("http/1.1 401"), "{path}: {reply}");
        assert!(reply.contains("connection: close"), "{path}: {reply}");
    }
    // A served request (body read) keeps the connection for the next one.
    let mut sock = tokio::net::TcpStream::connect(gh.addr).await.unwrap();
    let small = chat_body("gpt-mock", json!({}));
    let reply = request_on(&mut sock, "/v1/chat/completions", MASTER_KEY, &small).await;
    assert!(reply.starts_with("http/1.1 200"), "{reply}");
    assert!(!reply.contains("connection: close"), "{reply}");
    // A 400 about the body it has read keeps it too.
    let reply = request_on(&mut sock, "/v1/chat/completions", MASTER_KEY, "{}").await;
    assert!(reply.contains("http/1.1 400"), "{reply}");
    assert!(!reply.contains("connection: close"), "{reply}");
}
