//! Virtual keys, the admin API, model scoping, spend, budgets and limits through the real
//! binary. Each scenario runs twice (see `on_both_stores!`): `…::sqlite` on the default
//! embedded SQLite file, and `…::postgres_redis` on the shared PostgreSQL (a fresh schema) and
//! Redis (a fresh key prefix) from `GATEHOUSE_TEST_POSTGRES_URL` / `GATEHOUSE_TEST_REDIS_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::stores::Stores;
use common::{Gatehouse, UPSTREAM_KEY, chat_body, get, post};
use gatehouse_mock::MockServer;
use serde_json::{Value, json};

on_both_stores!(
    admin_api_round_trip,
    users_teams_and_admin_roles,
    model_scoping_and_models_list,
    spend_equals_priced_usage,
    budget_holds_under_200_concurrent_requests,
    small_budget_lowers_max_tokens_and_refuses_what_it_cannot_pay,
    rpm_and_parallel_limits,
    keys_survive_a_restart_and_spend_is_flushed_on_shutdown,
    streams_are_metered_without_showing_usage_the_client_did_not_ask_for,
    deployment_rpm_moves_traffic_then_refuses,
    budget_duration_resets_the_budget,
);

/// `gpt-mock` priced at $1 per 1M input tokens and $2 per 1M output tokens, and a second
/// model `other-mock`, on `stores`.
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
  - model_name: other-mock
    litellm_params:
      model: openai/mock-other
      api_base: {base}
      api_key: {UPSTREAM_KEY}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
{}"#,
        stores.settings("")
    )
}

async fn start(stores: &Stores) -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let gh = Gatehouse::start(&config(&mock.base_url(), stores), "info");
    (mock, gh)
}

async fn admin_post(gh: &Gatehouse, path: &str, body: Value) -> Value {
    let r = post(&gh.url(path), &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

async fn admin_get(gh: &Gatehouse, path: &str) -> Value {
    let r = get(&gh.url(path), &[]).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

async fn chat_as(gh: &Gatehouse, key: &str, model: &str, extra: Value) -> common::Reply {
    let auth = bearer(key);
    post(
        &gh.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        chat_body(model, extra),
    )
    .await
}

async fn admin_api_round_trip(stores: Stores) {
    let (_mock, gh) = start(&stores).await;
    let made = admin_post(
        &gh,
        "/key/generate",
        json!({"key_alias": "ci", "models": ["gpt-mock"], "max_budget": 10.0,
               "budget_duration": "30d", "rpm_limit": 100, "tpm_limit": 100000,
               "max_parallel_requests": 5, "metadata": {"team": "x"}, "duration": "1h"}),
    )
    .await;
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-") && key.len() >= 3 + 22, "{key}");
    let token = made["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert_eq!(made["key_name"], format!("sk-...{}", &key[key.len() - 4..]));
    assert_eq!(made["models"], json!(["gpt-mock"]));
    assert_eq!(made["max_budget"], 10.0);
    assert!(made["expires"].is_string());
    assert!(made["budget_reset_at"].is_string());

    // The raw key is never shown again (/key/info echoes only what the caller sent, as
    // LiteLLM does: see admin_api.rs).
    let by_token = admin_get(&gh, &format!("/key/info?key={token}")).await;
    assert_eq!(by_token["info"]["key_alias"], "ci");
    assert_eq!(by_token["info"]["rpm_limit"], 100);
    assert!(
        !by_token.to_string().contains(&key[3..]),
        "raw key shown: {by_token}"
    );

    let list = admin_get(&gh, "/key/list?return_full_object=true").await;
    assert_eq!(list["total_count"], 1);
    assert!(!list.to_string().contains(&key[3..]));

    // Works, then blocked, unblocked, updated, regenerated, deleted.
    assert_eq!(chat_as(&gh, &key, "gpt-mock", json!({})).await.status, 200);
    admin_post(&gh, "/key/block", json!({"key": key})).await;
    chat_as(&gh, &key, "gpt-mock", json!({}))
        .await
        .assert_error(401);
    admin_post(&gh, "/key/unblock", json!({"key": key})).await;
    assert_eq!(chat_as(&gh, &key, "gpt-mock", json!({})).await.status, 200);

    let updated = admin_post(
        &gh,
        "/key/update",
        json!({"key": key, "models": ["gpt-mock", "other-mock"], "rpm_limit": 7}),
    )
    .await;
    assert_eq!(updated["rpm_limit"], 7);
    assert_eq!(
        chat_as(&gh, &key, "other-mock", json!({})).await.status,
        200
    );

    let regen = admin_post(&gh, "/key/regenerate", json!({"key": key})).await;
    let new_key = regen["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    chat_as(&gh, &key, "gpt-mock", json!({}))
        .await
        .assert_error(401);
    assert_eq!(
        chat_as(&gh, &new_key, "gpt-mock", json!({})).await.status,
        200
    );
    assert_eq!(regen["rpm_limit"], 7, "regenerate keeps the settings");

    let del = admin_post(&gh, "/key/delete", json!({"keys": [new_key]})).await;
    assert_eq!(del["deleted_keys"], json!([new_key]));
    chat_as(&gh, &new_key, "gpt-mock", json!({}))
        .await
        .assert_error(401);
}

async fn users_teams_and_admin_roles(stores: Stores) {
    let (_mock, gh) = start(&stores).await;
    let team = admin_post(
        &gh,
        "/team/new",
        json!({"team_alias": "research", "models": ["gpt-mock"], "max_budget": 5}),
    )
    .await;
    let team_id = team["team_id"].as_str().unwrap().to_owned();
    let user = admin_post(
        &gh,
        "/user/new",
        json!({"user_id": "ann", "user_email": "ann@example.com", "teams": [team_id]}),
    )
    .await;
    let user_key = user["key"].as_str().unwrap().to_owned();
    assert_eq!(user["user_id"], "ann");

    let info = admin_get(&gh, "/user/info?user_id=ann").await;
    assert_eq!(info["user_info"]["user_email"], "ann@example.com");
    assert_eq!(info["keys"].as_array().unwrap().len(), 1);
    assert_eq!(info["teams"][0]["team_id"], team_id);

    // A team key is limited to the team's models.
    let tk = admin_post(&gh, "/key/generate", json!({"team_id": team_id})).await;
    let team_key = tk["key"].as_str().unwrap();
    assert_eq!(
        chat_as(&gh, team_key, "gpt-mock", json!({})).await.status,
        200
    );
    let e = chat_as(&gh, team_key, "other-mock", json!({}))
        .await
        .assert_error(401);
    assert_eq!(e["type"], "key_model_access_denied");
    let tinfo = admin_get(&gh, &format!("/team/info?team_id={team_id}")).await;
    assert_eq!(tinfo["team_info"]["team_alias"], "research");
    assert_eq!(tinfo["keys"].as_array().unwrap().len(), 1);

    // A virtual key can never call the admin API...
    let auth = bearer(&user_key);
    for (path, body) in [
        ("/key/generate", "{}"),
        ("/key/delete", r#"{"keys":["x"]}"#),
        ("/user/new", "{}"),
        ("/team/new", "{}"),
    ] {
        post(&gh.url(path), &[("authorization", &auth)], body)
            .await
            .assert_error(403);
    }
    get(&gh.url("/key/list"), &[("authorization", &auth)])
        .await
        .assert_error(403);
    get(&gh.url("/spend/logs"), &[("authorization", &auth)])
        .await
        .assert_error(403);
    // ...unless its user is a proxy_admin.
    let admin = admin_post(
        &gh,
        "/user/new",
        json!({"user_id": "root", "user_role": "proxy_admin"}),
    )
    .await;
    let admin_auth = bearer(admin["key"].as_str().unwrap());
    let r = post(
        &gh.url("/key/generate"),
        &[("authorization", &admin_auth)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Bad input: clear 400s that change nothing.
    for body in [
        json!({"max_budget": -1}),
        json!({"models": "gpt-mock"}),
        json!({"budget_duration": "soon"}),
        json!({"team_id": "no-such-team"}),
        json!({"model_max_budget": {"gpt-mock": 1}}),
        json!({"key": "sk-my-own-key"}),
    ] {
        let r = post(&gh.url("/key/generate"), &[], body.to_string()).await;
        r.assert_error(400);
    }
    let list = admin_get(&gh, "/key/list").await;
    assert_eq!(list["total_count"], 4, "{list}");
    post(&gh.url("/user/new"), &[], r#"{"user_role":"god"}"#)
        .await
        .assert_error(400);
}

async fn model_scoping_and_models_list(stores: Stores) {
    let (_mock, gh) = start(&stores).await;
    let k = admin_post(&gh, "/key/generate", json!({"models": ["gpt-mock"]})).await;
    let key = k["key"].as_str().unwrap();
    let e = chat_as(&gh, key, "other-mock", json!({}))
        .await
        .assert_error(401);
    assert_eq!(e["type"], "key_model_access_denied");
    assert_eq!(e["param"], "model");
    let auth = bearer(key);
    let models = get(&gh.url("/v1/models"), &[("authorization", &auth)]).await;
    let ids: Vec<String> = models.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["gpt-mock"]);
    let all = admin_get(&gh, "/v1/models").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    // Unknown and malformed keys.
    chat_as(&gh, "sk-not-a-key", "gpt-mock", json!({}))
        .await
        .assert_error(401);
    // /model/info never shows credentials.
    let info = admin_get(&gh, "/model/info").await;
    assert_eq!(info["data"].as_array().unwrap().len(), 2);
    assert!(!info.to_string().contains(UPSTREAM_KEY));
    assert_eq!(info["data"][0]["model_info"]["input_cost_per_token"], 1e-6);
}

async fn spend_equals_priced_usage(stores: Stores) {
    let (_mock, gh) = start(&stores).await;
    let k = admin_post(&gh, "/key/generate", json!({"user_id": "bob"})).await;
    let key = k["key"].as_str().unwrap();
    // 1000 input tokens at $1/M + 500 output tokens at $2/M = $0.002.
    let r = chat_as(
        &gh,
        key,
        "gpt-mock",
        json!({"mock": {"usage": {"prompt_tokens": 1000, "completion_tokens": 500}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cost: f64 = r.headers["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((cost - 0.002).abs() < 1e-12, "{cost}");
    let call_id = r.headers["x-litellm-call-id"].to_str().unwrap().to_owned();

    // A stream with usage reported in its last chunk.
    let r = chat_as(
        &gh,
        key,
        "gpt-mock",
        json!({"stream": true, "stream_options": {"include_usage": true},
               "mock": {"usage": {"prompt_tokens": 2000, "completion_tokens": 1000}}}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("[DONE]"));

    // Shows in /key/info within a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    let expected = 0.002 + 0.004;
    loop {
        let info = admin_get(&gh, &format!("/key/info?key={key}")).await;
        let spend = info["info"]["spend"].as_f64().unwrap();
        if (spend - expected).abs() < 1e-12 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spend {spend} != {expected} after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let user = admin_get(&gh, "/user/info?user_id=bob").await;
    assert!((user["user_info"]["spend"].as_f64().unwrap() - expected).abs() < 1e-12);
    let logs = admin_get(&gh, &format!("/spend/logs?api_key={key}")).await;
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 2);
    let first = logs.iter().find(|l| l["request_id"] == call_id).unwrap();
    assert_eq!(first["prompt_tokens"], 1000);
    assert_eq!(first["completion_tokens"], 500);
    assert_eq!(first["model_group"], "gpt-mock");
    assert_eq!(first["model"], "mock-gpt");
    let one = admin_get(&gh, &format!("/spend/logs?request_id={call_id}")).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let global = admin_get(&gh, "/global/spend").await;
    assert!((global["spend"].as_f64().unwrap() - expected).abs() < 1e-12);
}

async fn budget_holds_under_200_concurrent_requests(stores: Stores) {
    let (_mock, gh) = start(&stores).await;
    // Each request: 100 input + 100 output tokens = $0.0003 at the configured prices, but
    // before sending, the reservation is the body size in tokens at the input price plus
    // max_tokens (100) at the output price. A $0.006 budget pays for 20 real requests.
    let k = admin_post(&gh, "/key/generate", json!({"max_budget": 0.006})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let body = chat_body(
        "gpt-mock",
        json!({"max_tokens": 100, "mock": {"usage": {"prompt_tokens": 100, "completion_tokens": 100}, "delay_ms": 20}}),
    );
    let burst = common::budget_burst(&[&gh], &key, &body, 200).await;
    assert!(burst.ok >= 1 && burst.refused >= 1, "{burst:?}");
    // Spend never exceeds the budget: every answer is recorded, and their sum is within it.
    let spend = common::recorded_spend(&gh, &key, &burst).await;
    assert!(
        spend <= 0.006 + 1e-12,
        "spend {spend} over budget: {burst:?}\n{}",
        common::warnings(&gh)
    );
    // Requests admitted near the end had max_tokens lowered to what was left (and the mock,
    // like a provider, honours it), so they cost less than $0.0003.
    assert!(spend <= burst.ok as f64 * 0.0003 + 1e-12, "{burst:?}");
    stores.assert_counted_in_redis(&gh).await;
}

async fn small_budget_lowers_max_tokens_and_refuses_what_it_cannot_pay(stores: Stores) {
    let (mock, gh) = start(&stores).await;
    // $0.001 pays for the input (a few hundred bytes) and a few hundred output tokens.
    let k = admin_post(&gh, "/key/generate", json!({"max_budget": 0.001})).await;
    let key = k["key"].as_str().unwrap();
    let r = chat_as(
        &gh,
        key,
        "gpt-mock",
        json!({"mock": {"usage": {"prompt_tokens": 10, "completion_tokens": 10}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = mock.requests();
    let last = sent.last().unwrap();
    let body: Value = last.body.clone();
    let cap = body["max_completion_tokens"].as_u64().unwrap();
    assert!(cap > 0 && cap < 500, "max_completion_tokens {cap}");
    // A request whose input alone costs more than the budget is refused and never sent.
    let big = "x".repeat(2000);
    let before = mock.requests().len();
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[("authorization", &bearer(key))],
        json!({"model": "gpt-mock", "messages": [{"role": "user", "content": big}]}).to_string(),
    )
    .await;
    let e = r.assert_error(429);
    assert_eq!(e["type"], "budget_exceeded");
    assert_eq!(mock.requests().len(), before);
    stores.assert_counted_in_redis(&gh).await;
}

async fn rpm_and_parallel_limits(stores: Stores) {
    let (_mock, gh) = start(&stores).await;
    let k = admin_post(&gh, "/key/generate", json!({"rpm_limit": 3})).await;
    let key = k["key"].as_str().unwrap();
    for i in 0..3u64 {
        let r = chat_as(&gh, key, "gpt-mock", json!({})).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.headers["x-ratelimit-remaining-requests"],
            (2 - i).to_string().as_str()
        );
    }
    let r = chat_as(&gh, key, "gpt-mock", json!({})).await;
    let e = r.assert_error(429);
    assert_eq!(e["type"], "rate_limit_error");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));

    let k = admin_post(&gh, "/key/generate", json!({"max_parallel_requests": 2})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (url, auth) = (gh.url("/v1/chat/completions"), bearer(&key));
        tasks.push(tokio::spawn(async move {
            post(
                &url,
                &[("authorization", &auth)],
                chat_body("gpt-mock", json!({"mock": {"delay_ms": 300}})),
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
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        4,
        "{statuses:?}"
    );
    // Slots are freed when requests finish.
    assert_eq!(chat_as(&gh, &key, "gpt-mock", json!({})).await.status, 200);

    // tpm: admitted while the minute's tokens are under the limit, counted with the real
    // tokens once answered; `x-ratelimit-remaining-tokens` is what was left before.
    wait_for_fresh_minute(20).await;
    let k = admin_post(&gh, "/key/generate", json!({"tpm_limit": 2500})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let thousand = json!({"mock": {"usage": {"prompt_tokens": 990, "completion_tokens": 10}}});
    for left in ["2500", "1500", "500"] {
        let r = chat_as(&gh, &key, "gpt-mock", thousand.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.headers["x-ratelimit-remaining-tokens"], left);
        assert_eq!(r.headers["x-ratelimit-limit-tokens"], "2500");
        // A Redis-backed settlement is a round trip after the answer: let it land.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = chat_as(&gh, &key, "gpt-mock", thousand).await;
    let e = r.assert_error(429);
    assert_eq!(e["type"], "rate_limit_error");
    assert!(
        e["message"].as_str().unwrap().contains("tokens per minute"),
        "{e}"
    );
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    stores.assert_counted_in_redis(&gh).await;
}

/// Sleeps into the next minute when fewer than `need` seconds are left in this one (limits
/// count per calendar minute).
async fn wait_for_fresh_minute(need: u64) {
    let sec = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if sec + need > 60 {
        tokio::time::sleep(Duration::from_secs(61 - sec)).await;
    }
}

async fn keys_survive_a_restart_and_spend_is_flushed_on_shutdown(stores: Stores) {
    let mock = MockServer::start().await.unwrap();
    let cfg = config(&mock.base_url(), &stores);
    let dir = common::scratch_dir();
    let path = dir.join("config.yaml");
    std::fs::write(&path, &cfg).unwrap();
    let args = ["--host", "127.0.0.1", "--port", "0"];
    let mut gh = Gatehouse::start_in(&path, "info", &args).unwrap();
    let k = admin_post(&gh, "/key/generate", json!({})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let r = chat_as(
            &gh,
            &key,
            "gpt-mock",
            json!({"mock": {"usage": {"prompt_tokens": 1000, "completion_tokens": 0}}}),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    gh.terminate();
    assert!(gh.wait_exit(Duration::from_secs(10)).unwrap().success());
    if let Stores::Sqlite = stores {
        assert!(
            dir.join("gatehouse.db").exists(),
            "SQLite file beside the config"
        );
    }

    let gh = Gatehouse::start_in(&path, "info", &args).unwrap();
    assert_eq!(chat_as(&gh, &key, "gpt-mock", json!({})).await.status, 200);
    let info = admin_get(&gh, &format!("/key/info?key={key}")).await;
    let spend = info["info"]["spend"].as_f64().unwrap();
    assert!(
        spend >= 0.005 - 1e-12,
        "spend before the restart was lost: {spend}"
    );
}

async fn streams_are_metered_without_showing_usage_the_client_did_not_ask_for(stores: Stores) {
    let (mock, gh) = start(&stores).await;
    let k = admin_post(&gh, "/key/generate", json!({})).await;
    let key = k["key"].as_str().unwrap();
    let r = chat_as(
        &gh,
        key,
        "gpt-mock",
        json!({"stream": true, "stream_options": {"include_obfuscation": false},
               "mock": {"usage": {"prompt_tokens": 3000, "completion_tokens": 1000}}}),
    )
    .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains("[DONE]"), "{text}");
    assert!(
        !text.contains("\"usage\":{"),
        "usage chunk forwarded: {text}"
    );
    // The upstream was asked for usage, and the client's other stream options were kept.
    let sent = mock.requests();
    let body = &sent.last().unwrap().body;
    assert_eq!(
        body["stream_options"],
        json!({"include_obfuscation": false, "include_usage": true})
    );
    // $0.003 + $0.002.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let info = admin_get(&gh, &format!("/key/info?key={key}")).await;
        let spend = info["info"]["spend"].as_f64().unwrap();
        if (spend - 0.005).abs() < 1e-12 {
            break;
        }
        assert!(Instant::now() < deadline, "spend {spend}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deployment_rpm_moves_traffic_then_refuses(stores: Stores) {
    let mock = MockServer::start().await.unwrap();
    let base = mock.base_url();
    let cfg = format!(
        r#"model_list:
  - model_name: limited
    litellm_params: {{ model: openai/a, api_base: "{base}", api_key: {UPSTREAM_KEY}, rpm: 2 }}
    model_info: {{ id: dep-a }}
  - model_name: limited
    litellm_params: {{ model: openai/b, api_base: "{base}", api_key: {UPSTREAM_KEY}, rpm: 2 }}
    model_info: {{ id: dep-b }}
{}"#,
        stores.settings("")
    );
    let gh = Gatehouse::start(&cfg, "info");
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 60 >= 57 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
    let mut used = Vec::new();
    for _ in 0..4 {
        let r = post(
            &gh.url("/v1/chat/completions"),
            &[],
            chat_body("limited", json!({})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        used.push(r.headers["x-litellm-model-id"].to_str().unwrap().to_owned());
    }
    used.sort();
    assert_eq!(used, ["dep-a", "dep-a", "dep-b", "dep-b"]);
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("limited", json!({})),
    )
    .await;
    let e = r.assert_error(429);
    assert_eq!(e["type"], "rate_limit_error");
    assert!(r.headers.contains_key("retry-after"));
    stores.assert_counted_in_redis(&gh).await;
}

async fn budget_duration_resets_the_budget(stores: Stores) {
    let (_mock, gh) = start(&stores).await;
    // One request of 1000 + 1000 tokens costs $0.003; what is left of $0.0031 cannot pay
    // for the next one's input.
    let k = admin_post(
        &gh,
        "/key/generate",
        json!({"max_budget": 0.0031, "budget_duration": "2s"}),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_owned();
    let body = json!({"max_tokens": 1000, "mock": {"usage": {"prompt_tokens": 1000, "completion_tokens": 1000}}});
    assert_eq!(
        chat_as(&gh, &key, "gpt-mock", body.clone()).await.status,
        200
    );
    let e = chat_as(&gh, &key, "gpt-mock", body.clone())
        .await
        .assert_error(429);
    assert_eq!(e["type"], "budget_exceeded");
    // The period ends after 2 s; the reset job runs every few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = chat_as(&gh, &key, "gpt-mock", body.clone()).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(Instant::now() < deadline, "budget never reset");
    }
    let info = admin_get(&gh, &format!("/key/info?key={key}")).await;
    assert!(info["info"]["budget_reset_at"].is_string());
    stores.assert_counted_in_redis(&gh).await;
}
