//! End-to-end: retries, upstream errors and timeouts, mid-stream failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::json;

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let gh = Gatehouse::start(&config_for(&mock.base_url(), ""), "info");
    (mock, gh)
}

/// A key unique to this run, so scripted failure counters in the mock never collide.
fn key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("k{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_then_succeeds() {
    let (mock, gh) = setup().await;
    let body = chat_body(
        "gpt-mock",
        json!({"mock": {"status": 500, "fail_times": 2, "key": key()}}),
    );
    let r = post(&gh.url("/v1/chat/completions"), &[], body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["x-litellm-attempted-retries"], "2");
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_relayed_not_retried() {
    let (mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("gpt-mock", json!({"mock": {"status": 400}})),
    )
    .await;
    let e = r.assert_error(400);
    assert!(
        e["message"].as_str().unwrap().contains("mock error 400"),
        "{e}"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_5xx_becomes_502_after_retries() {
    let (mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("gpt-mock", json!({"mock": {"status": 503}})),
    )
    .await;
    r.assert_error(502);
    assert_eq!(mock.requests().len(), 3, "1 try + max_retries 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refusing_our_key_is_502_without_its_message() {
    let (_mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("gpt-mock", json!({"mock": {"status": 401}})),
    )
    .await;
    let e = r.assert_error(502);
    assert!(!e["message"].as_str().unwrap().contains("mock error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_429_honours_retry_after_then_passes_it_on() {
    let (mock, gh) = setup().await;
    let started = std::time::Instant::now();
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body(
            "gpt-mock",
            json!({"mock": {"status": 429, "retry_after": "1"}}),
        ),
    )
    .await;
    r.assert_error(429);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(mock.requests().len(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retry-after was not honoured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_times_out_with_504() {
    let (_mock, gh) = setup().await;
    // timeout: 2 s per attempt in the test config; the mock waits 5 s.
    let cfg_timeout_body = chat_body("gpt-mock", json!({"mock": {"delay_ms": 5000}}));
    let started = std::time::Instant::now();
    let r = post(&gh.url("/v1/chat/completions"), &[], cfg_timeout_body).await;
    r.assert_error(504);
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_502() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gh = Gatehouse::start(
        &config_for(&format!("http://127.0.0.1:{port}/v1"), ""),
        "info",
    );
    post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("gpt-mock", json!({})),
    )
    .await
    .assert_error(502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_stream_failure_ends_with_an_sse_error_event() {
    let (_mock, gh) = setup().await;
    let res = start_stream(&gh, json!({"mock": {"chunks": 5, "fail_after_chunks": 2}})).await;
    let chunks = stream_chunks(res, Duration::from_secs(10)).await;
    let text = chunks_text(&chunks);
    let last_event = text.trim_end().rsplit("\n\n").next().unwrap();
    let data = last_event.strip_prefix("data: ").expect(&text);
    let v: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["error"]["code"], "502", "{text}");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_forwarded_chunk_by_chunk() {
    let (_mock, gh) = setup().await;
    let res = start_stream(
        &gh,
        json!({"stream_options": {"include_usage": true},
                   "mock": {"chunks": 4, "chunk_delay_ms": 300}}),
    )
    .await;
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let chunks = stream_chunks(res, Duration::from_secs(10)).await;
    let first_content = chunks
        .iter()
        .find(|(_, c)| String::from_utf8_lossy(c).contains("\"content\":\"Hello"))
        .expect("no content chunk")
        .0;
    let end = chunks.last().unwrap().0;
    assert!(
        end >= Duration::from_millis(1200),
        "stream ended too early: {end:?}"
    );
    assert!(
        first_content < end - Duration::from_millis(600),
        "first content at {first_content:?}, end {end:?}: buffered?"
    );
    let text = chunks_text(&chunks);
    assert!(text.trim_end().ends_with("data: [DONE]"));
    assert!(text.contains("\"usage\":{"), "usage chunk missing");
}

/// A relayed message is scrubbed before it is capped: a key that straddles the 200-character
/// cap never leaks a prefix, and URLs never reach the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_messages_are_scrubbed_before_the_cap() {
    let (_mock, gh) = setup().await;
    for at in [0, 150, 190, 198] {
        let message = format!(
            "{}{UPSTREAM_KEY} is not allowed here; see https://example.invalid/docs?key={UPSTREAM_KEY}",
            "x".repeat(at)
        );
        let raw = json!({"status": 400, "body": {"error": {"message": message, "type": "invalid_request_error", "param": null}}});
        let r = post(
            &gh.url("/v1/chat/completions"),
            &[],
            chat_body("gpt-mock", json!({"mock": {"raw_error": raw}})),
        )
        .await;
        let e = r.assert_error(400);
        let text = r.text();
        // Any 6-character piece of the key would be a leak.
        for piece in UPSTREAM_KEY.as_bytes().windows(6) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(!text.contains(piece), "{piece:?} leaked at {at}: {text}");
        }
        assert!(!text.contains("example.invalid"), "{text}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with(&"x".repeat(at.min(100)))
        );
    }
}

/// The retry decision reads the provider's answer, not only its status: an OpenAI-compatible
/// 429 for an exhausted quota is final, a 409 conflict is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_classified_answer() {
    let (mock, gh) = setup().await;
    let quota = json!({"status": 429, "body": {"error": {"message": "You exceeded your current quota",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}});
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("gpt-mock", json!({"mock": {"raw_error": quota}})),
    )
    .await;
    r.assert_error(502);
    assert_eq!(
        mock.requests().len(),
        1,
        "an exhausted quota is not retried"
    );
    mock.clear();
    let conflict = json!({"status": 409, "fail_times": 1, "key": key(),
        "body": {"error": {"message": "conflict", "type": "invalid_request_error", "param": null}}});
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("gpt-mock", json!({"mock": {"raw_error": conflict}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(mock.requests().len(), 2);
}

/// `retry-after` is the upstream's to write: an absurd value (beyond what a `Duration` can
/// hold) once panicked the request task, so the client got a dropped connection. Now it
/// reads as a day: too long to sit out, so the answer is relayed at once, not retried, and
/// the client is told to wait a day at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_retry_after_is_relayed_not_a_dropped_connection() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/chat/completions");
    // (upstream status, header, value, client status, type, client retry-after)
    let cases = [
        (
            429,
            "retry-after",
            "1e20",
            429,
            "rate_limit_error",
            Some("86400"),
        ),
        (
            429,
            "retry-after",
            "inf",
            429,
            "rate_limit_error",
            Some("86400"),
        ),
        (
            429,
            "retry-after-ms",
            "18446744073709551615000",
            429,
            "rate_limit_error",
            Some("86400"),
        ),
        // An OpenAI-compatible 503 is a server error: a 502, its wait not relayed.
        (503, "retry-after", "1e300", 502, "upstream_error", None),
    ];
    for (status, header, value, want, kind, retry_after) in cases {
        mock.clear();
        let raw = json!({"status": status, "headers": {header: value},
            "body": {"error": {"message": "slow down", "type": "rate_limit_exceeded", "param": null}}});
        let r = post(
            &url,
            &[],
            chat_body("gpt-mock", json!({"mock": {"raw_error": raw}})),
        )
        .await;
        let e = r.assert_error(want);
        assert_eq!(e["type"], kind, "{header}: {value}: {e}");
        assert_eq!(
            r.headers.get("retry-after").map(|v| v.to_str().unwrap()),
            retry_after,
            "{header}: {value}"
        );
        assert_eq!(mock.requests().len(), 1, "{header}: {value}: not retried");
    }
    // Garbage is no wait at all: backed off and retried (1 try + max_retries 2), as before.
    mock.clear();
    let raw = json!({"status": 429, "headers": {"retry-after": "NaN"},
        "body": {"error": {"message": "slow down", "type": "rate_limit_exceeded", "param": null}}});
    let r = post(
        &url,
        &[],
        chat_body("gpt-mock", json!({"mock": {"raw_error": raw}})),
    )
    .await;
    r.assert_error(429);
    assert_eq!(mock.requests().len(), 3);
    // The gateway is still serving.
    let r = post(&url, &[], chat_body("gpt-mock", json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
