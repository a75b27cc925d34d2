//! The admin API against LiteLLM's behaviour (key_management_endpoints.py,
//! internal_user_endpoints.py, team_endpoints.py, spend_management_endpoints.py): model access
//! through the user's list, `/spend/logs` (summaries, rows, no silent cap) and
//! `/spend/logs/ui` paging, unique key aliases, `/key/info|update|delete` shapes, team roles,
//! `/key/regenerate` with settings, over-long durations, and no raw key in the log at
//! `RUST_LOG=trace`. Real binary, default SQLite store, in-process mock upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Gatehouse, MASTER_KEY, UPSTREAM_KEY, chat_body, get, post};
use gatehouse_mock::MockServer;
use gatehouse_store::{KeyRecord, SpendRecord, Store, StoreOptions};
use serde_json::{Value, json};

/// `gpt-mock` → `openai/mock-gpt` and `other-mock` → `openai/mock-other`, both $1/M input and
/// $2/M output.
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
    model_info: {{ id: dep-gpt }}
  - model_name: other-mock
    litellm_params:
      model: openai/mock-other
      api_base: {base}
      api_key: {UPSTREAM_KEY}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
general_settings:
  master_key: {MASTER_KEY}
"#
    )
}

async fn start(rust_log: &str) -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let gh = Gatehouse::start(&config(&mock.base_url()), rust_log);
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

async fn chat_as(gh: &Gatehouse, key: &str, model: &str, extra: Value) -> common::Reply {
    let auth = format!("Bearer {key}");
    post(
        &gh.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        chat_body(model, extra),
    )
    .await
}

fn models_of(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

// ---------- dates ----------

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Days since 1970-01-01 → `YYYY-MM-DD` (H. Hinnant's algorithm).
fn ymd(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-12)
}

// ---------- 1. model access through the user's list ----------

#[tokio::test]
async fn user_models_apply_to_personal_keys_as_in_litellm() {
    let (_mock, gh) = start("info").await;
    admin_post(
        &gh,
        "/user/new",
        json!({"user_id": "u1", "models": ["gpt-mock"], "auto_create_key": false}),
    )
    .await;
    // A personal key with no models of its own is limited by its user's list.
    let k = admin_post(&gh, "/key/generate", json!({"user_id": "u1"})).await;
    let key = k["key"].as_str().unwrap();
    assert_eq!(k["models"], json!([]));
    assert_eq!(chat_as(&gh, key, "gpt-mock", json!({})).await.status, 200);
    let e = chat_as(&gh, key, "other-mock", json!({}))
        .await
        .assert_error(401);
    assert_eq!(e["type"], "key_model_access_denied");
    assert!(e["message"].as_str().unwrap().contains("gpt-mock"), "{e}");
    let auth = format!("Bearer {key}");
    let listed = get(&gh.url("/v1/models"), &[("authorization", &auth)]).await;
    assert_eq!(models_of(&listed.json()), ["gpt-mock"]);

    // A key cannot widen its user's list.
    let wide = admin_post(
        &gh,
        "/key/generate",
        json!({"user_id": "u1", "models": ["gpt-mock", "other-mock"]}),
    )
    .await;
    chat_as(&gh, wide["key"].as_str().unwrap(), "other-mock", json!({}))
        .await
        .assert_error(401);

    // A team key of the same user follows the team, not the user (LiteLLM checks the user's
    // models only for personal keys).
    let team = admin_post(&gh, "/team/new", json!({"members": ["u1"]})).await;
    let tk = admin_post(
        &gh,
        "/key/generate",
        json!({"user_id": "u1", "team_id": team["team_id"]}),
    )
    .await;
    assert_eq!(
        chat_as(&gh, tk["key"].as_str().unwrap(), "other-mock", json!({}))
            .await
            .status,
        200
    );

    // `no-default-models`: no model at all on personal keys.
    admin_post(
        &gh,
        "/user/new",
        json!({"user_id": "u2", "models": ["no-default-models"], "auto_create_key": false}),
    )
    .await;
    let k2 = admin_post(&gh, "/key/generate", json!({"user_id": "u2"})).await;
    chat_as(&gh, k2["key"].as_str().unwrap(), "gpt-mock", json!({}))
        .await
        .assert_error(401);

    // A user with an empty list allows everything.
    let k3 = admin_post(&gh, "/key/generate", json!({"user_id": "free"})).await;
    assert_eq!(
        chat_as(&gh, k3["key"].as_str().unwrap(), "other-mock", json!({}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn user_alias_is_stored_and_returned() {
    let (_mock, gh) = start("info").await;
    let made = admin_post(
        &gh,
        "/user/new",
        json!({"user_id": "ann", "user_alias": "Ann from research"}),
    )
    .await;
    assert_eq!(made["user_alias"], "Ann from research");
    let info = admin_get(&gh, "/user/info?user_id=ann").await;
    assert_eq!(info["user_info"]["user_alias"], "Ann from research");
    post(&gh.url("/user/new"), &[], r#"{"user_alias": 7}"#)
        .await
        .assert_error(400);
}

// ---------- 2. /spend/logs ----------

/// Waits (bounded) until `/spend/logs?api_key=` shows `n` rows, and returns them.
async fn rows_for(gh: &Gatehouse, key: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let v = admin_get(gh, &format!("/spend/logs?api_key={key}")).await;
        let rows = v.as_array().unwrap().clone();
        if rows.len() == n {
            return rows;
        }
        assert!(Instant::now() < deadline, "{} rows, want {n}", rows.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn spend_logs_rows_and_daily_summaries_match_litellm() {
    let (_mock, gh) = start("info").await;
    let k = admin_post(&gh, "/key/generate", json!({"user_id": "bob"})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let token = k["token"].as_str().unwrap().to_owned();
    for (model, prompt) in [("gpt-mock", 1000), ("gpt-mock", 2000), ("other-mock", 500)] {
        let r = chat_as(
            &gh,
            &key,
            model,
            json!({"mock": {"usage": {"prompt_tokens": prompt, "completion_tokens": 100}}}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let rows = rows_for(&gh, &key, 3).await;
    // Raw rows: LiteLLM's `model` is the upstream model, `model_group` the public name.
    let gpt = rows
        .iter()
        .find(|r| r["prompt_tokens"] == 1000)
        .unwrap()
        .clone();
    assert_eq!(gpt["model"], "mock-gpt");
    assert_eq!(gpt["model_group"], "gpt-mock");
    assert_eq!(gpt["model_id"], "dep-gpt");
    assert_eq!(gpt["custom_llm_provider"], "openai");
    assert_eq!(gpt["api_key"], token);
    assert_eq!(gpt["user"], "bob");
    assert_eq!(gpt["total_tokens"], 1100);
    assert!(close(&gpt["spend"], 0.0012), "{gpt}");
    let other = rows.iter().find(|r| r["prompt_tokens"] == 500).unwrap();
    assert_eq!(other["model"], "mock-other");
    // Newest first.
    let times: Vec<&str> = rows
        .iter()
        .map(|r| r["startTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // With start_date and end_date, summarize defaults to true: one entry per day with spend,
    // then zero entries for the days after it up to end_date.
    let today = now_ms() / DAY_MS;
    let (start, end) = (ymd(today - 1), ymd(today + 2));
    let summary = admin_get(
        &gh,
        &format!("/spend/logs?api_key={key}&start_date={start}&end_date={end}"),
    )
    .await;
    let days = summary.as_array().unwrap();
    let mut expected: Vec<(String, f64, f64, f64)> = Vec::new(); // day, total, gpt, other
    for r in &rows {
        let day = r["startTime"].as_str().unwrap()[..10].to_owned();
        let spend = r["spend"].as_f64().unwrap();
        let (g, o) = if r["model"] == "mock-gpt" {
            (spend, 0.0)
        } else {
            (0.0, spend)
        };
        match expected.iter_mut().find(|e| e.0 == day) {
            Some(e) => {
                e.1 += spend;
                e.2 += g;
                e.3 += o;
            }
            None => expected.push((day, spend, g, o)),
        }
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let last_data_day = expected.last().unwrap().0.clone();
    for (i, (day, total, g, o)) in expected.iter().enumerate() {
        let e = &days[i];
        assert_eq!(e["startTime"], day.as_str(), "{summary}");
        assert!(close(&e["spend"], *total), "{e}");
        assert!(close(&e["users"]["bob"], *total), "{e}");
        assert!(close(&e[token.as_str()], *total), "{e}");
        if *g > 0.0 {
            assert!(close(&e["models"]["mock-gpt"], *g), "{e}");
        }
        if *o > 0.0 {
            assert!(close(&e["models"]["mock-other"], *o), "{e}");
        }
    }
    let fill: Vec<&Value> = days[expected.len()..].iter().collect();
    let mut want_day = (0..5)
        .map(|d| ymd(today - 1 + d))
        .skip_while(|d| *d <= last_data_day);
    for f in &fill {
        assert_eq!(
            **f,
            json!({"startTime": want_day.next().unwrap(), "spend": 0.0, "users": {}, "models": {}})
        );
    }
    assert_eq!(fill.last().unwrap()["startTime"], end.as_str());
    assert!(!summary.to_string().contains(&key[3..]));

    // summarize=false: the rows of the range; a range without spend summarizes to [].
    let raw = admin_get(
        &gh,
        &format!("/spend/logs?api_key={key}&start_date={start}&end_date={end}&summarize=false"),
    )
    .await;
    assert_eq!(raw.as_array().unwrap().len(), 3);
    let empty = admin_get(&gh, "/spend/logs?start_date=2001-01-01&end_date=2001-01-31").await;
    assert_eq!(empty, json!([]));
    // Only one date: no summary, LiteLLM's row listing.
    let one_bound = admin_get(&gh, &format!("/spend/logs?user_id=bob&start_date={start}")).await;
    assert_eq!(one_bound.as_array().unwrap().len(), 3);

    for bad in [
        format!("/spend/logs?start_date={start}&end_date={end}&summarize=maybe"),
        "/spend/logs?start_date=2024-13-01&end_date=2024-12-31".to_owned(),
        "/spend/logs?start_date=1990-01-01&end_date=2024-12-31".to_owned(),
    ] {
        get(&gh.url(&bad), &[]).await.assert_error(400);
    }

    // /spend/logs/ui: LiteLLM's paging.
    let ui = |page: u32| {
        format!(
            "/spend/logs/ui?api_key={token}&start_date={} 00:00:00&end_date={} 23:59:59&page={page}&page_size=2",
            ymd(today - 1),
            ymd(today + 1)
        )
        .replace(' ', "%20")
    };
    let p1 = admin_get(&gh, &ui(1)).await;
    assert_eq!(
        (
            &p1["total"],
            &p1["page"],
            &p1["page_size"],
            &p1["total_pages"]
        ),
        (&json!(3), &json!(1), &json!(2), &json!(2))
    );
    assert_eq!(p1["data"].as_array().unwrap().len(), 2);
    let p2 = admin_get(&gh, &ui(2)).await;
    assert_eq!(p2["data"].as_array().unwrap().len(), 1);
    let mut ids: Vec<&str> = p1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["data"].as_array().unwrap())
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    get(&gh.url("/spend/logs/ui?page=1"), &[])
        .await
        .assert_error(400);
    let e = get(&gh.url(&format!("{}&min_spend=1", ui(1))), &[])
        .await
        .assert_error(400);
    assert_eq!(e["param"], "min_spend");
    get(&gh.url(&ui(1).replace("page_size=2", "page_size=101")), &[])
        .await
        .assert_error(400);
}

/// More rows than `/spend/logs` returns: a 400 that says how to narrow the query, never a
/// silently shortened list; `/spend/logs/ui` pages through them, a summary adds them all up.
#[tokio::test]
async fn spend_logs_refuse_rather_than_truncate() {
    let mock = MockServer::start().await.unwrap();
    let dir = common::scratch_dir();
    let path = dir.join("config.yaml");
    std::fs::write(&path, config(&mock.base_url())).unwrap();
    let gh = Gatehouse::start_in(&path, "info", &["--host", "127.0.0.1", "--port", "0"]).unwrap();
    // Write 10,001 rows straight into the gateway's SQLite file (WAL: both may write).
    let db = Store::connect(
        &format!("sqlite://{}", dir.join("gatehouse.db").display()),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    let t0 = now_ms() - 60_000;
    let rows: Vec<SpendRecord> = (0..10_001i64)
        .map(|i| SpendRecord {
            request_id: format!("bulk-{i}"),
            token_hash: None,
            user_id: Some("bulk".into()),
            team_id: None,
            model: "gpt-mock".into(),
            deployment_id: "dep-gpt".into(),
            started_at: t0 + i,
            ended_at: t0 + i + 1,
            prompt_tokens: 1,
            completion_tokens: 1,
            cached_tokens: 0,
            spend: 1_000_000, // $0.000001
            status: 200,
        })
        .collect();
    for chunk in rows.chunks(2_000) {
        db.insert_spend(&gatehouse_store::new_batch_id(), chunk)
            .await
            .unwrap();
    }
    db.close().await;

    let e = get(&gh.url("/spend/logs?user_id=bulk"), &[])
        .await
        .assert_error(400);
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("10000") && msg.contains("start_date"), "{msg}");
    let today = ymd(t0 / DAY_MS);
    get(
        &gh.url(&format!(
            "/spend/logs?user_id=bulk&start_date={today}&end_date={today}&summarize=false"
        )),
        &[],
    )
    .await
    .assert_error(400);
    // Narrower queries are answered in full.
    let one = admin_get(&gh, "/spend/logs?request_id=bulk-77").await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["model"], "mock-gpt");
    let summary = admin_get(
        &gh,
        &format!("/spend/logs?user_id=bulk&start_date={today}&end_date={today}"),
    )
    .await;
    let total: f64 = summary
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["spend"].as_f64().unwrap())
        .sum();
    assert!((total - 0.010_001).abs() < 1e-9, "{summary}");
    let last = admin_get(
        &gh,
        &format!(
            "/spend/logs/ui?user_id=bulk&start_date={}%2000:00:00&end_date={}%2023:59:59&page=101&page_size=100",
            ymd(t0 / DAY_MS - 1),
            ymd(t0 / DAY_MS + 1)
        ),
    )
    .await;
    assert_eq!(last["total"], 10_001);
    assert_eq!(last["total_pages"], 101);
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    assert_eq!(last["data"][0]["request_id"], "bulk-0");
}

// ---------- 3. unique aliases and deletes ----------

#[tokio::test]
async fn key_aliases_are_unique_with_litellms_error() {
    let (_mock, gh) = start("info").await;
    let a = admin_post(&gh, "/key/generate", json!({"key_alias": "prod"})).await;
    let b = admin_post(&gh, "/key/generate", json!({"key_alias": "dev"})).await;
    let (ka, kb) = (a["key"].as_str().unwrap(), b["key"].as_str().unwrap());
    let want =
        "Key with alias 'prod' already exists. Unique key aliases across all keys are required.";
    for (path, body) in [
        ("/key/generate", json!({"key_alias": "prod"})),
        ("/key/update", json!({"key": kb, "key_alias": "prod"})),
        ("/key/regenerate", json!({"key": kb, "key_alias": "prod"})),
        ("/user/new", json!({"user_id": "carl", "key_alias": "prod"})),
    ] {
        let e = post(&gh.url(path), &[], body.to_string())
            .await
            .assert_error(400);
        assert_eq!(e["message"], want, "{path}");
        assert_eq!(e["param"], "key_alias", "{path}");
    }
    // Nothing changed: two keys, b still works under its alias, no user carl.
    assert_eq!(admin_get(&gh, "/key/list").await["total_count"], 2);
    assert_eq!(chat_as(&gh, kb, "gpt-mock", json!({})).await.status, 200);
    get(&gh.url("/user/info?user_id=carl"), &[])
        .await
        .assert_error(404);
    // Re-sending a key's own alias is fine (LiteLLM excludes the key being updated).
    admin_post(&gh, "/key/update", json!({"key": ka, "key_alias": "prod"})).await;

    // Deleting by alias deletes that one key and names the alias once.
    let del = admin_post(&gh, "/key/delete", json!({"key_aliases": ["prod"]})).await;
    assert_eq!(del, json!({"deleted_keys": ["prod"]}));
    chat_as(&gh, ka, "gpt-mock", json!({}))
        .await
        .assert_error(401);
    assert_eq!(chat_as(&gh, kb, "gpt-mock", json!({})).await.status, 200);
    // The alias is free again.
    admin_post(&gh, "/key/generate", json!({"key_alias": "prod"})).await;
}

#[tokio::test]
async fn key_delete_is_all_or_nothing() {
    let (_mock, gh) = start("info").await;
    let k = admin_post(&gh, "/key/generate", json!({})).await;
    let key = k["key"].as_str().unwrap();
    // One of two missing: 400 and nothing deleted.
    let e = post(
        &gh.url("/key/delete"),
        &[],
        json!({"keys": [key, "sk-not-a-key"]}).to_string(),
    )
    .await
    .assert_error(400);
    assert!(
        e["message"].as_str().unwrap().contains("Not all keys"),
        "{e}"
    );
    // (Read from the store: the proxy path could still be serving a cached copy.)
    let token = k["token"].as_str().unwrap();
    admin_get(&gh, &format!("/key/info?key={token}")).await;
    post(
        &gh.url("/key/delete"),
        &[],
        json!({"key_aliases": ["nope"], "keys": [key]}).to_string(),
    )
    .await
    .assert_error(400);
    admin_get(&gh, &format!("/key/info?key={token}")).await;
    assert_eq!(chat_as(&gh, key, "gpt-mock", json!({})).await.status, 200);
    // None exists: 404.
    post(
        &gh.url("/key/delete"),
        &[],
        json!({"keys": ["sk-not-a-key"]}).to_string(),
    )
    .await
    .assert_error(404);
    // All exist: deleted, named as passed (a token works too).
    let del = admin_post(&gh, "/key/delete", json!({"keys": [token]})).await;
    assert_eq!(del, json!({"deleted_keys": [token]}));
    chat_as(&gh, key, "gpt-mock", json!({}))
        .await
        .assert_error(401);
}

// ---------- 4. shapes ----------

#[tokio::test]
async fn key_info_and_update_echo_the_key_as_passed() {
    let (_mock, gh) = start("info").await;
    let k = admin_post(&gh, "/key/generate", json!({"key_alias": "shape"})).await;
    let (key, token) = (k["key"].as_str().unwrap(), k["token"].as_str().unwrap());
    assert_eq!(k["token_id"], token);

    let by_raw = admin_get(&gh, &format!("/key/info?key={key}")).await;
    assert_eq!(by_raw["key"], key);
    let info = by_raw["info"].as_object().unwrap();
    assert!(!info.contains_key("token"), "LiteLLM drops token: {by_raw}");
    assert_eq!(info["key_alias"], "shape");
    assert_eq!(info["key_name"], format!("sk-...{}", &key[key.len() - 4..]));

    let by_token = admin_get(&gh, &format!("/key/info?key={token}")).await;
    assert_eq!(by_token["key"], token);
    assert!(
        !by_token.to_string().contains(&key[3..]),
        "the raw key is only ever echoed to whoever sent it"
    );

    let upd = admin_post(&gh, "/key/update", json!({"key": token, "rpm_limit": 9})).await;
    assert_eq!(upd["key"], token);
    assert_eq!(upd["rpm_limit"], 9);
    let upd = admin_post(&gh, "/key/update", json!({"key": key, "tpm_limit": 99})).await;
    assert_eq!(upd["key"], key);
    assert_eq!(upd["tpm_limit"], 99);
}

#[tokio::test]
async fn team_members_keep_their_roles() {
    let (_mock, gh) = start("info").await;
    let t = admin_post(
        &gh,
        "/team/new",
        json!({"team_alias": "r", "members": ["carol"],
               "members_with_roles": [{"user_id": "ann", "role": "admin"},
                                      {"user_id": "bob", "role": "user"},
                                      {"user_id": "dan"}]}),
    )
    .await;
    let id = t["team_id"].as_str().unwrap();
    let info = admin_get(&gh, &format!("/team/info?team_id={id}")).await;
    let roles: Vec<(String, String)> = info["team_info"]["members_with_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("carol", "user"),
        ("ann", "admin"),
        ("bob", "user"),
        ("dan", "user"),
    ]
    .iter()
    .map(|(u, r)| ((*u).to_owned(), (*r).to_owned()))
    .collect();
    assert_eq!(roles, want);
    assert_eq!(info["team_info"]["admins"], json!(["ann"]));
    // LiteLLM keeps membership rows only for per-member budgets, which gatehouse lacks.
    assert_eq!(info["team_memberships"], json!([]));
    // Members became users.
    admin_get(&gh, "/user/info?user_id=ann").await;

    let e = post(
        &gh.url("/team/new"),
        &[],
        json!({"team_id": "bad", "members_with_roles": [{"user_id": "x", "role": "owner"}]})
            .to_string(),
    )
    .await
    .assert_error(400);
    assert_eq!(e["param"], "members_with_roles");
    get(&gh.url("/team/info?team_id=bad"), &[])
        .await
        .assert_error(404);
}

// ---------- 6. regenerate with settings ----------

#[tokio::test]
async fn regenerate_applies_litellm_fields_and_refuses_unknown_ones() {
    let (_mock, gh) = start("info").await;
    let k = admin_post(&gh, "/key/generate", json!({"rpm_limit": 1})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    for (body, param) in [
        (json!({"key": key, "soft_budget": 1.0}), "soft_budget"),
        (json!({"key": key, "new_key": "sk-mine"}), "new_key"),
        (
            json!({"key": key, "new_master_key": "sk-x"}),
            "new_master_key",
        ),
        (json!({"key": key, "duration": "soon"}), "duration"),
    ] {
        let e = post(&gh.url("/key/regenerate"), &[], body.to_string())
            .await
            .assert_error(400);
        assert_eq!(e["param"], param);
    }
    // Refused attempts changed nothing: the key still works.
    assert_eq!(chat_as(&gh, &key, "gpt-mock", json!({})).await.status, 200);

    let r = admin_post(
        &gh,
        &format!("/key/{key}/regenerate"),
        json!({"max_budget": 5.0, "rpm_limit": 30, "models": ["gpt-mock"],
               "metadata": {"rotated": true}}),
    )
    .await;
    let new_key = r["key"].as_str().unwrap();
    assert_ne!(new_key, key);
    assert_eq!(r["max_budget"], 5.0);
    assert_eq!(r["rpm_limit"], 30);
    assert_eq!(r["token_id"], r["token"]);
    let info = admin_get(&gh, &format!("/key/info?key={new_key}")).await;
    assert_eq!(info["info"]["models"], json!(["gpt-mock"]));
    assert_eq!(info["info"]["metadata"], json!({"rotated": true}));
    chat_as(&gh, &key, "gpt-mock", json!({}))
        .await
        .assert_error(401);
    assert_eq!(
        chat_as(&gh, new_key, "gpt-mock", json!({})).await.status,
        200
    );
    chat_as(&gh, new_key, "other-mock", json!({}))
        .await
        .assert_error(401);
}

// ---------- 7. durations ----------

#[tokio::test]
async fn durations_that_overflow_are_refused_by_name() {
    let (_mock, gh) = start("info").await;
    for (body, param) in [
        (json!({"duration": "99999999999999d"}), "duration"),
        (json!({"duration": "4000000000mo"}), "duration"),
        (json!({"duration": "9000y"}), "duration"),
        (
            json!({"budget_duration": "99999999999w"}),
            "budget_duration",
        ),
    ] {
        let e = post(&gh.url("/key/generate"), &[], body.to_string())
            .await
            .assert_error(400);
        assert_eq!(e["param"], param, "{body}");
    }
    assert_eq!(admin_get(&gh, "/key/list").await["total_count"], 0);
    let e = post(
        &gh.url("/user/new"),
        &[],
        json!({"user_id": "eve", "duration": "99999999999999d"}).to_string(),
    )
    .await
    .assert_error(400);
    assert_eq!(e["param"], "duration");
    get(&gh.url("/user/info?user_id=eve"), &[])
        .await
        .assert_error(404);
    let k = admin_post(&gh, "/key/generate", json!({})).await;
    post(
        &gh.url("/key/update"),
        &[],
        json!({"key": k["key"], "duration": "99999999999999d"}).to_string(),
    )
    .await
    .assert_error(400);
    let info = admin_get(
        &gh,
        &format!("/key/info?key={}", k["token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(info["info"]["expires"], Value::Null);
    // A long but representable one is fine.
    let ok = admin_post(&gh, "/key/generate", json!({"duration": "100y"})).await;
    assert!(ok["expires"].as_str().unwrap().starts_with('2'), "{ok}");
}

// ---------- 5. no raw key in the log ----------

#[tokio::test]
async fn regenerate_by_path_never_logs_the_raw_key_even_at_trace() {
    let (_mock, gh) = start("trace").await;
    let made = admin_post(&gh, "/key/generate", json!({})).await;
    let first = made["key"].as_str().unwrap().to_owned();
    // Success path (info "admin action").
    let r = admin_post(&gh, &format!("/key/{first}/regenerate"), json!({})).await;
    let second = r["key"].as_str().unwrap().to_owned();
    // Authentication failure (warn) and a refused virtual key (warn), both naming the path.
    post(
        &gh.url(&format!("/key/{second}/regenerate")),
        &[("authorization", "Bearer sk-wrong-master")],
        "{}",
    )
    .await
    .assert_error(401);
    let auth = format!("Bearer {second}");
    post(
        &gh.url(&format!("/key/{second}/regenerate")),
        &[("authorization", &auth)],
        "{}",
    )
    .await
    .assert_error(403);
    // An unknown key in the path, and the key in a query string and a body.
    post(
        &gh.url("/key/sk-unknownunknownunknown/regenerate"),
        &[],
        "{}",
    )
    .await
    .assert_error(404);
    admin_get(&gh, &format!("/key/info?key={second}")).await;
    admin_post(&gh, "/key/block", json!({"key": second})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = gh.log();
    for secret in [&first, &second, "sk-unknownunknownunknown"] {
        assert!(!log.contains(secret), "{secret} in the log");
        assert!(
            !log.contains(&secret[3..]),
            "{secret} (without sk-) in the log"
        );
    }
    assert!(!log.contains(MASTER_KEY));
    // The requests are still identifiable: by their token's first 8 hex digits.
    let token = made["token"].as_str().unwrap();
    assert!(
        log.contains(&format!("/key/{{token:{}}}/regenerate", &token[..8])),
        "no redacted path in the log"
    );
}

// ---------- 3b. the migration that makes aliases unique ----------

#[tokio::test]
async fn old_duplicate_aliases_are_renamed_and_reported_at_start_up() {
    let mock = MockServer::start().await.unwrap();
    let dir = common::scratch_dir();
    let path = dir.join("config.yaml");
    std::fs::write(&path, config(&mock.base_url())).unwrap();
    // A database from before aliases were unique, holding two keys named "shared".
    let url = format!("sqlite://{}", dir.join("gatehouse.db").display());
    let old = Store::connect_at_version(&url, StoreOptions::default(), 1)
        .await
        .unwrap();
    for (n, created) in [(1u8, 1_000i64), (2, 2_000)] {
        let mut k = KeyRecord::new([n; 32], format!("sk-...000{n}"));
        k.key_alias = Some("shared".into());
        k.created_at = created;
        old.insert_key(&k).await.unwrap();
    }
    old.close().await;

    let gh = Gatehouse::start_in(&path, "info", &["--host", "127.0.0.1", "--port", "0"]).unwrap();
    let log = gh.log();
    let line = log
        .lines()
        .find(|l| l.contains("key_alias was shared"))
        .unwrap_or_else(|| panic!("no report in the log:\n{log}"));
    assert!(
        line.contains("shared") && line.contains("count=2"),
        "{line}"
    );
    let kept = admin_get(&gh, "/key/list?key_alias=shared&return_full_object=true").await;
    assert_eq!(kept["total_count"], 1);
    assert_eq!(kept["keys"][0]["key_name"], "sk-...0001");
    let renamed = format!("shared-dup-{}", "02".repeat(4));
    let moved = admin_get(&gh, &format!("/key/list?key_alias={renamed}")).await;
    assert_eq!(moved["total_count"], 1);
}
