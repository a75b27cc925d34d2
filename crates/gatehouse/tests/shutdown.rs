//! Graceful shutdown and spend: a stream still running at the drain deadline is cut, and its
//! spend — what the client was sent, plus its input — is recorded before the process exits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Gatehouse, MASTER_KEY, UPSTREAM_KEY, chat_body, get, post, send};
use gatehouse_mock::MockServer;
use http::Method;
use http_body_util::BodyExt;
use serde_json::{Value, json};

fn config(base: &str) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-mock
    litellm_params:
      model: openai/mock-gpt
      api_base: {base}
      api_key: {UPSTREAM_KEY}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
general_settings:
  master_key: {MASTER_KEY}
gatehouse:
  shutdown_timeout: 1
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_at_the_drain_deadline_is_billed() {
    let mock = MockServer::start().await.unwrap();
    let dir = common::scratch_dir();
    let path = dir.join("config.yaml");
    std::fs::write(&path, config(&mock.base_url())).unwrap();
    let args = ["--host", "127.0.0.1", "--port", "0"];
    let mut gh = Gatehouse::start_in(&path, "info", &args).unwrap();
    let r = post(&gh.url("/key/generate"), &[], json!({}).to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_owned();

    // A stream of 40 chunks 200 ms apart (8 s): far longer than the 1 s drain.
    let auth = format!("Bearer {key}");
    let words = vec!["word"; 60].join(" ");
    let body = chat_body(
        "gpt-mock",
        json!({"stream": true, "mock": {"chunks": 40, "chunk_delay_ms": 200, "content": words}}),
    );
    let res = send(
        Method::POST,
        &gh.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        body.into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let call_id = res.headers()["x-litellm-call-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let reader = tokio::spawn(async move {
        let mut body = res.into_body();
        let mut seen = 0usize;
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_secs(15), body.frame()).await
        {
            seen += frame.into_data().map_or(0, |d| d.len());
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    gh.terminate();
    let (exit, log) = tokio::task::spawn_blocking(move || {
        let s = gh.wait_exit(Duration::from_secs(15));
        (s, gh.log())
    })
    .await
    .unwrap();
    assert!(exit.expect("did not exit").success(), "{log}");
    assert!(log.contains("shutdown timeout reached"), "{log}");
    let seen = reader.await.unwrap();
    assert!(seen > 0, "the client got part of the stream");

    // Started again on the same database: the cut stream's spend is there.
    let gh = Gatehouse::start_in(&path, "info", &args).unwrap();
    let logs = get(&gh.url(&format!("/spend/logs?request_id={call_id}")), &[]).await;
    assert_eq!(logs.status, 200, "{}", logs.text());
    let rows: Value = logs.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "the cut stream's record: {rows:?}\n{log}");
    assert!(rows[0]["spend"].as_f64().unwrap() > 0.0, "{rows:?}");
    assert!(rows[0]["prompt_tokens"].as_u64().unwrap() > 0, "{rows:?}");
    let info = get(&gh.url(&format!("/key/info?key={key}")), &[]).await;
    assert!(info.json()["info"]["spend"].as_f64().unwrap() > 0.0);
}
