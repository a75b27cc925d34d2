//! Accounting at its edges, through the real binary: several completions per request
//! against a budget, budgets while Redis is unreachable (fail closed, or counted locally
//! when configured), and requests whose outcome is unknown (upstream timeout, client gone,
//! stream dropped) — billed at least their input, with a marked spend record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Gatehouse, MASTER_KEY, UPSTREAM_KEY, chat_body, get, post, send};
use gatehouse_mock::MockServer;
use gatehouse_store::{SpendQuery, SpendRecord, Store, StoreOptions};
use http_body_util::BodyExt;
use serde_json::{Value, json};

/// `gpt-mock` at $1 per 1M input tokens and $2 per 1M output tokens; `extra` is appended.
fn config(base: &str, model_extra: &str, extra: &str) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-mock
    litellm_params:
      model: openai/mock-gpt
      api_base: {base}
      api_key: {UPSTREAM_KEY}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
{model_extra}general_settings:
  master_key: {MASTER_KEY}
{extra}"#
    )
}

/// A gateway whose SQLite file the test can read.
fn start_in_dir(cfg: &str) -> (Gatehouse, PathBuf) {
    let dir = common::scratch_dir();
    let path = dir.join("config.yaml");
    std::fs::write(&path, cfg).unwrap();
    let gh = Gatehouse::start_in(&path, "info", &["--host", "127.0.0.1", "--port", "0"]).unwrap();
    (gh, dir)
}

async fn admin_post(gh: &Gatehouse, path: &str, body: Value) -> Value {
    let r = post(&gh.url(path), &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

async fn new_key(gh: &Gatehouse, settings: Value) -> String {
    admin_post(gh, "/key/generate", settings).await["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn chat_as(gh: &Gatehouse, key: &str, extra: Value) -> common::Reply {
    let auth = format!("Bearer {key}");
    post(
        &gh.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        chat_body("gpt-mock", extra),
    )
    .await
}

async fn key_spend(gh: &Gatehouse, key: &str) -> f64 {
    let r = get(&gh.url(&format!("/key/info?key={key}")), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["info"]["spend"].as_f64().unwrap()
}

/// Waits (bounded) for the spend record of `call_id` in the gateway's SQLite file.
async fn spend_record(dir: &std::path::Path, call_id: &str) -> SpendRecord {
    let url = format!("sqlite://{}", dir.join("gatehouse.db").display());
    let store = Store::connect(&url, StoreOptions::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = store
            .spend_logs(&SpendQuery {
                request_id: Some(call_id.to_owned()),
                ..SpendQuery::default()
            })
            .await
            .unwrap();
        if let Some(r) = rows.into_iter().next() {
            return r;
        }
        assert!(Instant::now() < deadline, "no spend record for {call_id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// All spend records of the gateway (after a pause for the batch writer).
async fn all_records(dir: &std::path::Path) -> Vec<SpendRecord> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = format!("sqlite://{}", dir.join("gatehouse.db").display());
    let store = Store::connect(&url, StoreOptions::default()).await.unwrap();
    store.spend_logs(&SpendQuery::default()).await.unwrap()
}

/// `n: 4` without `max_tokens` against a small budget, the upstream generating as much as it
/// may: OpenAI bills the tokens of every choice, each up to `max_tokens`, so the lowered
/// `max_tokens` must be the budget's output share per choice. Before, it was the whole
/// share, and four choices spent four times the budget.
#[tokio::test]
async fn n_choices_cannot_overrun_a_budget() {
    let mock = MockServer::start().await.unwrap();
    let (gh, _dir) = start_in_dir(&config(&mock.base_url(), "", ""));
    let max_budget = 0.01;
    let key = new_key(&gh, json!({"max_budget": max_budget})).await;
    let greedy =
        json!({"n": 4, "mock": {"usage": {"prompt_tokens": 20, "completion_tokens": 1_000_000}}});
    let r = chat_as(&gh, &key, greedy.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = mock.requests().last().unwrap().body.clone();
    let cap = sent["max_completion_tokens"]
        .as_u64()
        .or_else(|| sent["max_tokens"].as_u64())
        .unwrap_or_else(|| panic!("no output limit sent: {sent}"));
    let completion = r.json()["usage"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(completion, 4 * cap, "the mock used every choice's limit");
    let cost: f64 = r.headers["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost <= max_budget, "one request cost {cost} > {max_budget}");
    assert!(
        cost > max_budget * 0.9,
        "the budget is used, not wasted: {cost}"
    );
    // Whatever follows cannot take the spend past the budget either.
    for _ in 0..3 {
        let r = chat_as(&gh, &key, greedy.clone()).await;
        assert!(matches!(r.status.as_u16(), 200 | 429), "{}", r.text());
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let spend = loop {
        let s = key_spend(&gh, &key).await;
        if s > 0.0 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(spend <= max_budget, "spend {spend} > budget {max_budget}");
}

/// A closed loopback port: connections are refused at once.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Budgets fail closed while Redis is unreachable (PRODUCT.md invariant 7): a key with a
/// budget gets a clear 503; keys with only rate limits, or nothing, keep working.
#[tokio::test]
async fn budgets_fail_closed_while_redis_is_down() {
    let mock = MockServer::start().await.unwrap();
    let extra = format!(
        "router_settings:\n  redis_url: redis://127.0.0.1:{}\ngatehouse:\n  redis_timeout: 0.1\n",
        closed_port()
    );
    let (gh, _dir) = start_in_dir(&config(&mock.base_url(), "", &extra));
    let budgeted = new_key(&gh, json!({"max_budget": 10})).await;
    let limited = new_key(&gh, json!({"rpm_limit": 2})).await;
    let plain = new_key(&gh, json!({})).await;
    for _ in 0..3 {
        let r = chat_as(&gh, &budgeted, json!({})).await;
        let e = r.assert_error(503);
        assert_eq!(e["type"], "service_unavailable");
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains("Budgets cannot be checked"), "{msg}");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=5).contains(&retry), "{retry}");
    }
    assert_eq!(mock.requests().len(), 0, "nothing was sent upstream");
    // Rate limits still count (per replica).
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(chat_as(&gh, &limited, json!({})).await.status.as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(chat_as(&gh, &plain, json!({})).await.status, 200);
    // The master key has no budget.
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("gpt-mock", json!({})),
    )
    .await;
    assert_eq!(r.status, 200);
    let log = gh.log();
    assert!(
        log.contains("WARN") && log.contains("refusing requests that a budget applies to"),
        "{log}"
    );
}

/// `budget_fallback: local`: budgets are counted in the replica instead, and hold there.
#[tokio::test]
async fn budget_fallback_local_counts_in_the_replica() {
    let mock = MockServer::start().await.unwrap();
    let extra = format!(
        "router_settings:\n  redis_url: redis://127.0.0.1:{}\ngatehouse:\n  redis_timeout: 0.1\n  budget_fallback: local\n",
        closed_port()
    );
    let (gh, _dir) = start_in_dir(&config(&mock.base_url(), "", &extra));
    // $0.004: one request of 1000 + 1000 tokens costs $0.003.
    let key = new_key(&gh, json!({"max_budget": 0.004})).await;
    let usage = json!({"max_tokens": 1000, "mock": {"usage": {"prompt_tokens": 1000, "completion_tokens": 1000}}});
    let r = chat_as(&gh, &key, usage.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // $0.001 left: it cannot pay for 1000 output tokens, so max_tokens is lowered.
    let r = chat_as(&gh, &key, usage.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = mock.requests().last().unwrap().body.clone();
    assert!(sent["max_tokens"].as_u64().unwrap() < 1000, "{sent}");
    assert!(
        gh.log()
            .contains("counting budgets locally from the database's spend"),
        "{}",
        gh.log()
    );
}

/// The upstream times out after the request was sent: the provider may bill it, so its
/// input is settled and recorded (status 504); before, the reservation was released and
/// nothing was recorded.
#[tokio::test]
async fn upstream_timeout_bills_the_input() {
    let mock = MockServer::start().await.unwrap();
    let (gh, dir) = start_in_dir(&config(
        &mock.base_url(),
        "      timeout: 1\n      max_retries: 0\n",
        "",
    ));
    let key = new_key(&gh, json!({"max_budget": 1})).await;
    let r = chat_as(&gh, &key, json!({"mock": {"delay_ms": 3000}})).await;
    r.assert_error(504);
    let call_id = r.headers["x-litellm-call-id"].to_str().unwrap().to_owned();
    let rec = spend_record(&dir, &call_id).await;
    assert_eq!(rec.status, 504);
    assert_eq!(rec.completion_tokens, 0);
    // "hello there" in one user message: a handful of tokens, not bytes / 4 or bytes.
    assert!((5..=20).contains(&rec.prompt_tokens), "{rec:?}");
    assert_eq!(rec.spend, rec.prompt_tokens * 1_000_000, "input at $1/M");
    let logs = get(&gh.url(&format!("/spend/logs?request_id={call_id}")), &[]).await;
    assert_eq!(logs.json()[0]["status"], "failure");
    assert!(key_spend(&gh, &key).await > 0.0);
}

/// A request refused by the upstream (an answer: not billed), or that never reached it
/// (connection refused), settles nothing and writes no record.
#[tokio::test]
async fn requests_that_never_ran_are_not_billed() {
    let mock = MockServer::start().await.unwrap();
    let dead = format!("http://127.0.0.1:{}/v1", closed_port());
    let (gh, dir) = start_in_dir(&config(
        &mock.base_url(),
        &format!(
            "      max_retries: 0\n  - model_name: dead-mock\n    litellm_params:\n      model: openai/mock-gpt\n      api_base: {dead}\n      api_key: {UPSTREAM_KEY}\n      max_retries: 0\n"
        ),
        "",
    ));
    let key = new_key(&gh, json!({"max_budget": 1})).await;
    let r = chat_as(&gh, &key, json!({"mock": {"status": 400}})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let auth = format!("Bearer {key}");
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        chat_body("dead-mock", json!({})),
    )
    .await;
    r.assert_error(502);
    assert!(all_records(&dir).await.is_empty());
    assert_eq!(key_spend(&gh, &key).await, 0.0);
}

/// The client gives up on a non-streamed request while the upstream works on it: the
/// upstream still bills it, so its input is recorded with status 499.
#[tokio::test]
async fn client_gone_while_waiting_bills_the_input() {
    let mock = MockServer::start().await.unwrap();
    let (gh, dir) = start_in_dir(&config(&mock.base_url(), "", ""));
    let key = new_key(&gh, json!({"max_budget": 1})).await;
    let auth = format!("Bearer {key}");
    let gone = tokio::time::timeout(
        Duration::from_millis(500),
        post(
            &gh.url("/v1/chat/completions"),
            &[("authorization", &auth)],
            chat_body("gpt-mock", json!({"mock": {"delay_ms": 3000}})),
        ),
    )
    .await;
    assert!(gone.is_err(), "the request should still be waiting");
    let records = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = all_records(&dir).await;
            if !r.is_empty() || Instant::now() > deadline {
                break r;
            }
        }
    };
    assert_eq!(records.len(), 1, "{records:?}");
    let rec = &records[0];
    assert_eq!(rec.status, 499);
    assert_eq!(rec.completion_tokens, 0);
    assert!((5..=20).contains(&rec.prompt_tokens), "{rec:?}");
    assert_eq!(rec.spend, rec.prompt_tokens * 1_000_000);
}

/// A stream the client stops reading half-way: what it was sent is billed (output counted
/// from the chunks seen, input with the tokenizer, as no usage chunk came), status 499.
#[tokio::test]
async fn stream_dropped_midway_bills_what_was_seen() {
    let mock = MockServer::start().await.unwrap();
    let (gh, dir) = start_in_dir(&config(&mock.base_url(), "", ""));
    let key = new_key(&gh, json!({"max_budget": 1})).await;
    let auth = format!("Bearer {key}");
    let res = send(
        http::Method::POST,
        &gh.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        chat_body(
            "gpt-mock",
            json!({"stream": true, "mock": {"chunks": 6, "chunk_delay_ms": 300, "content": "one two three four five six"}}),
        )
        .into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let call_id = res.headers()["x-litellm-call-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut body = res.into_body();
    let mut seen = String::new();
    // The first content chunk (after the role chunk, whose content is empty).
    while !seen.contains("\"content\":\"one") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Ok(d) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&d));
        }
    }
    drop(body);
    let rec = spend_record(&dir, &call_id).await;
    assert_eq!(rec.status, 499, "{rec:?}");
    assert!(rec.completion_tokens >= 1, "{rec:?}");
    assert!(rec.completion_tokens < 6, "only part was seen: {rec:?}");
    assert!((5..=20).contains(&rec.prompt_tokens), "{rec:?}");
}

/// A budget that lowers `max_tokens` on a native `/v1/messages` request also fits its
/// `thinking` under the new limit (Anthropic refuses `budget_tokens` ≥ `max_tokens`), and
/// turns thinking off when not even Anthropic's minimum budget (1,024) fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_capped_messages_request_fits_its_thinking() {
    let mock = MockServer::start().await.unwrap();
    let claude = format!(
        "  - model_name: claude-mock\n    litellm_params:\n      model: anthropic/claude-upstream\n      \
         api_base: http://{}\n      api_key: {UPSTREAM_KEY}\n      input_cost_per_token: 0.000001\n      \
         output_cost_per_token: 0.000002\n",
        mock.addr()
    );
    let gh = Gatehouse::start(&config(&mock.base_url(), &claude, ""), "info");
    let body = json!({
        "model": "claude-mock",
        "max_tokens": 16000,
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "messages": [{"role": "user", "content": "think, briefly"}],
    })
    .to_string();
    // About 1,500 output tokens' worth of budget (after the input bound), then about 600.
    for (budget, thinking_on) in [(0.0033, true), (0.0015, false)] {
        let k = post(
            &gh.url("/key/generate"),
            &[],
            json!({"max_budget": budget}).to_string(),
        )
        .await;
        let key = k.json()["key"].as_str().unwrap().to_owned();
        let r = post(
            &gh.url("/v1/messages"),
            &[("x-api-key", &key), ("anthropic-version", "2023-06-01")],
            body.clone(),
        )
        .await;
        assert_eq!(r.status, 200, "budget {budget}: {}", r.text());
        let sent = mock.requests().last().unwrap().body.clone();
        let max_tokens = sent["max_tokens"].as_u64().unwrap();
        assert!(max_tokens < 16000, "lowered by the budget: {sent}");
        if thinking_on {
            let b = sent["thinking"]["budget_tokens"].as_u64().unwrap();
            assert_eq!(sent["thinking"]["type"], "enabled", "{sent}");
            assert!((1024..max_tokens).contains(&b), "{sent}");
        } else {
            assert!(max_tokens <= 1024, "{sent}");
            assert_eq!(sent["thinking"], json!({"type": "disabled"}), "{sent}");
        }
    }
}
