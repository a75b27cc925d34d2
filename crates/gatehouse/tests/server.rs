//! End-to-end: the listener's rules: loopback without a master key, slow clients, SIGTERM
//! draining, secrets never logged even at trace level, `gatehouse check`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use gatehouse_mock::MockServer;
use http::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_listen_beyond_loopback_without_a_master_key() {
    let config = "model_list:\n  - model_name: m\n    litellm_params: { model: openai/m, api_base: \"http://127.0.0.1:9/v1\" }\n";
    let log =
        match Gatehouse::start_with_args(config, "info", &["--host", "0.0.0.0", "--port", "0"]) {
            Ok(_) => panic!("gatehouse listened on 0.0.0.0 without a master key"),
            Err(log) => log,
        };
    assert!(log.contains("refusing to listen on 0.0.0.0"), "{log}");
    assert!(log.contains("master_key"), "{log}");
    // Loopback without a key is allowed (and warned about).
    let gh = Gatehouse::start(config, "info");
    assert!(gh.log().contains("no master key"));
    // With a master key, 0.0.0.0 is fine.
    let keyed = format!("{config}general_settings:\n  master_key: sk-x\n");
    assert!(
        Gatehouse::start_with_args(&keyed, "info", &["--host", "0.0.0.0", "--port", "0"]).is_ok()
    );
}

async fn read_all(sock: &mut tokio::net::TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Err(_) => panic!("connection still open after {limit:?}"),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_timed_out() {
    let mock = MockServer::start().await.unwrap();
    let gh = Gatehouse::start(&config_for(&mock.base_url(), ""), "info");

    // Headers never finished: closed after client_header_timeout (1 s).
    let mut sock = tokio::net::TcpStream::connect(gh.addr).await.unwrap();
    sock.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (_, took) = read_all(&mut sock, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Idle connection that never sends anything: closed too.
    let mut idle = tokio::net::TcpStream::connect(gh.addr).await.unwrap();
    let (_, took) = read_all(&mut idle, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Body promised but not sent: 408 after client_body_timeout (1 s).
    let mut sock = tokio::net::TcpStream::connect(gh.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER_KEY}\r\ncontent-length: 100\r\n\r\n{{\"model\""
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let (reply, took) = read_all(&mut sock, Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(took < Duration::from_secs(5));
    assert!(mock.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_streams_then_exits() {
    let mock = MockServer::start().await.unwrap();
    let mut gh = Gatehouse::start(&config_for(&mock.base_url(), ""), "info");
    let res = start_stream(&gh, json!({"mock": {"chunks": 5, "chunk_delay_ms": 300}})).await;
    let reader = tokio::spawn(stream_chunks(res, Duration::from_secs(15)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    gh.terminate();
    let chunks = reader.await.unwrap();
    let text = chunks_text(&chunks);
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "stream was cut: {text}"
    );
    let status = tokio::task::spawn_blocking(move || {
        let s = gh.wait_exit(Duration::from_secs(15));
        (s, gh.log())
    })
    .await
    .unwrap();
    let (exit, log) = status;
    assert!(exit.expect("did not exit").success(), "{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log_even_at_trace() {
    let mock = MockServer::start().await.unwrap();
    let gh = Gatehouse::start(&config_for(&mock.base_url(), ""), "trace");
    let url = gh.url("/v1/chat/completions");
    // A tour of the paths: success, stream, retries, upstream errors, bad auth, bad input.
    post(&url, &[], chat_body("gpt-mock", json!({}))).await;
    let res = send(
        Method::POST,
        &url,
        &[],
        chat_body("gpt-mock", json!({"stream": true})).into(),
    )
    .await;
    stream_chunks(res, Duration::from_secs(10)).await;
    post(
        &url,
        &[],
        chat_body(
            "gpt-mock",
            json!({"mock": {"status": 500, "fail_times": 1, "key": "trace"}}),
        ),
    )
    .await;
    post(
        &url,
        &[],
        chat_body("gpt-mock", json!({"mock": {"status": 401}})),
    )
    .await;
    post(
        &url,
        &[("authorization", "Bearer sk-wrong-key")],
        chat_body("gpt-mock", json!({})),
    )
    .await;
    post(&url, &[], "{broken").await;
    post(
        &gh.url("/v1/embeddings"),
        &[],
        r#"{"model":"gpt-mock","input":"hi"}"#,
    )
    .await;
    get(&gh.url("/v1/models"), &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = gh.log();
    assert!(log.lines().count() > 20, "trace logging was not on:\n{log}");
    assert!(log.contains("TRACE"), "no trace lines");
    for secret in [MASTER_KEY, UPSTREAM_KEY] {
        assert!(!log.contains(secret), "secret {secret} found in the log");
        // Not even a long piece of it.
        assert!(
            !log.contains(&secret[3..15]),
            "part of {secret} found in the log"
        );
    }
}

#[test]
fn check_reports_every_problem_and_exits_non_zero() {
    let dir = scratch_dir();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "model_list:\n  - model_name: a\n    litellm_params: { model: openai/a, rpm: lots }\n  - litellm_params: { model: x/y }\nwat: 1\nlitellm_settings: { success_callback: [x] }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "model_list[0].litellm_params.rpm",
        "model_list[1].model_name",
        "model_list[1].litellm_params.model",
        "wat: unknown key",
        "4 problem(s)",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let good = dir.join("good.yaml");
    std::fs::write(&good, "model_list:\n  - model_name: a\n    litellm_params: { model: openai/a }\nlitellm_settings: { success_callback: [x] }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ignored: litellm_settings.success_callback"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: 1 deployment(s)"));
}

#[test]
fn version_and_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gatehouse "));
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("serve") && help.contains("check"));
}
