//! Two gatehouse processes sharing PostgreSQL (a fresh schema) and Redis (a fresh key
//! prefix), as replicas behind a load balancer: rate limits and budgets are exact across
//! both, and a key deleted on one is refused by the other within a second. They need
//! `GATEHOUSE_TEST_POSTGRES_URL` and `GATEHOUSE_TEST_REDIS_URL` (`.ci/run` sets both); without
//! them they print SKIPPED, or fail when `GATEHOUSE_REQUIRE_STORES` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::stores::{Stores, run};
use common::{Gatehouse, UPSTREAM_KEY, chat_body, get, post};
use gatehouse_mock::MockServer;
use serde_json::json;

fn config(base: &str, stores: &Stores) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-mock
    litellm_params:
      model: openai/mock-gpt
      api_base: {base}
      api_key: {UPSTREAM_KEY}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
{}"#,
        stores.settings("")
    )
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A mock upstream and two replicas on `stores`.
async fn two_replicas(stores: &Stores) -> (MockServer, Gatehouse, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let cfg = config(&mock.base_url(), stores);
    let a = Gatehouse::start(&cfg, "info");
    let b = Gatehouse::start(&cfg, "info");
    assert!(a.log().contains("Redis"), "{}", a.log());
    (mock, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_keys_and_spend() {
    let test = "replicas_share_limits_keys_and_spend";
    run(Stores::shared(test).await, share_limits_keys_and_spend).await;
}

async fn share_limits_keys_and_spend(stores: Stores) {
    let (_mock, a, b) = two_replicas(&stores).await;

    // A key made on replica A works on B.
    let r = post(
        &a.url("/key/generate"),
        &[],
        json!({"rpm_limit": 30}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_owned();

    // 60 concurrent requests over both replicas: exactly 30 admitted. Windows are whole
    // minutes, so keep the burst clear of a minute boundary.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 60 >= 55 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
    let mut tasks = Vec::new();
    for i in 0..60 {
        let gh = if i % 2 == 0 { &a } else { &b };
        let url = gh.url("/v1/chat/completions");
        let auth = bearer(&key);
        tasks.push(tokio::spawn(async move {
            post(
                &url,
                &[("authorization", &auth)],
                chat_body("gpt-mock", json!({})),
            )
            .await
            .status
            .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(admitted + limited, 60, "{statuses:?}");
    assert_eq!(admitted, 30, "rpm limit not exact across replicas");

    // Spend from both replicas lands in the shared database.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let logs = get(&b.url(&format!("/spend/logs?api_key={key}")), &[])
            .await
            .json();
        let n = logs.as_array().map_or(0, Vec::len);
        if n == 30 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} spend rows, want 30");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deleted on A: refused by B (which has it cached) within a second.
    let k2 = post(&a.url("/key/generate"), &[], "{}").await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        &b.url("/v1/chat/completions"),
        &[("authorization", &bearer(&k2))],
        chat_body("gpt-mock", json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        &a.url("/key/delete"),
        &[],
        json!({"keys": [k2]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let deleted_at = Instant::now();
    loop {
        let r = post(
            &b.url("/v1/chat/completions"),
            &[("authorization", &bearer(&k2))],
            chat_body("gpt-mock", json!({})),
        )
        .await;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 200);
        assert!(
            deleted_at.elapsed() < Duration::from_secs(1),
            "replica B still accepts a deleted key after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Blocked on B: refused by A within a second.
    let k3 = post(&a.url("/key/generate"), &[], "{}").await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post(
            &a.url("/v1/chat/completions"),
            &[("authorization", &bearer(&k3))],
            chat_body("gpt-mock", json!({}))
        )
        .await
        .status,
        200
    );
    let r = post(&b.url("/key/block"), &[], json!({"key": k3}).to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let blocked_at = Instant::now();
    loop {
        let r = post(
            &a.url("/v1/chat/completions"),
            &[("authorization", &bearer(&k3))],
            chat_body("gpt-mock", json!({})),
        )
        .await;
        if r.status == 401 {
            break;
        }
        assert!(
            blocked_at.elapsed() < Duration::from_secs(1),
            "replica A still accepts a blocked key after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stores.assert_counted_in_redis(&a).await;
    stores.assert_counted_in_redis(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_holds_across_two_replicas() {
    let test = "budget_holds_across_two_replicas";
    run(Stores::shared(test).await, budget_across_replicas).await;
}

/// 200 concurrent requests on one key, half through each replica: the budget they share
/// (in Redis) is never exceeded, and every refusal is 429 `budget_exceeded`.
async fn budget_across_replicas(stores: Stores) {
    let (_mock, a, b) = two_replicas(&stores).await;
    // As in accounts.rs: each request costs $0.0003 (100 + 100 tokens), reserves a little
    // more (its body in tokens at the input price + max_tokens at the output price); a
    // $0.006 budget pays for 20.
    let r = post(
        &a.url("/key/generate"),
        &[],
        json!({"max_budget": 0.006}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_owned();
    let body = chat_body(
        "gpt-mock",
        json!({"max_tokens": 100, "mock": {"usage": {"prompt_tokens": 100, "completion_tokens": 100}, "delay_ms": 20}}),
    );
    let burst = common::budget_burst(&[&a, &b], &key, &body, 200).await;
    assert!(burst.ok >= 1 && burst.refused >= 1, "{burst:?}");
    // Both replicas record every answer in the shared database; the total is within budget.
    let spend = common::recorded_spend(&b, &key, &burst).await;
    assert_eq!(common::recorded_spend(&a, &key, &burst).await, spend);
    assert!(
        spend <= 0.006 + 1e-12,
        "spend {spend} over budget across replicas: {burst:?}\nA:\n{}\nB:\n{}",
        common::warnings(&a),
        common::warnings(&b)
    );
    assert!(spend <= burst.ok as f64 * 0.0003 + 1e-12, "{burst:?}");
    stores.assert_counted_in_redis(&a).await;
    stores.assert_counted_in_redis(&b).await;
}
