//! Two gatehouse processes sharing PostgreSQL and Redis, as replicas behind a load balancer:
//! rate limits are exact across both, and a key deleted on one is refused by the other
//! within a second. Skipped (with a note) unless `GATEHOUSE_TEST_POSTGRES_URL` and
//! `GATEHOUSE_TEST_REDIS_URL` are set; `.ci/run` always sets both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Gatehouse, MASTER_KEY, UPSTREAM_KEY, chat_body, get, post};
use gatehouse_mock::MockServer;
use serde_json::json;

/// A fresh PostgreSQL schema for one test, dropped at the end.
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    async fn create(base: &str) -> Schema {
        let name = format!("gh_e2e_{:016x}", fastrand::u64(..));
        let opts = gatehouse_store::StoreOptions {
            pg_schema: Some(name.clone()),
            ..Default::default()
        };
        // Creates the schema and runs the migrations in it.
        let store = gatehouse_store::Store::connect(base, opts).await.unwrap();
        store.close().await;
        Schema {
            base: base.to_owned(),
            name,
        }
    }

    /// The database URL with this schema first on the search path.
    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.base, self.name)
    }

    async fn drop_it(self) {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&self.base).await {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .execute(&mut c)
                .await;
        }
    }
}

fn env_urls() -> Option<(String, String)> {
    let pg = std::env::var("GATEHOUSE_TEST_POSTGRES_URL").ok()?;
    let redis = std::env::var("GATEHOUSE_TEST_REDIS_URL").ok()?;
    Some((pg, redis))
}

fn config(base: &str, db: &str, redis: &str) -> String {
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
  database_url: "{db}"
router_settings:
  redis_url: {redis}
"#
    )
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[tokio::test]
async fn replicas_share_limits_keys_and_spend() {
    let Some((pg, redis)) = env_urls() else {
        eprintln!("skipped: GATEHOUSE_TEST_POSTGRES_URL / GATEHOUSE_TEST_REDIS_URL not set");
        return;
    };
    let schema = Schema::create(&pg).await;
    let mock = MockServer::start().await.unwrap();
    let cfg = config(&mock.base_url(), &schema.url(), &redis);
    let a = Gatehouse::start(&cfg, "info");
    let b = Gatehouse::start(&cfg, "info");
    assert!(a.log().contains("Redis"), "{}", a.log());

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
    drop((a, b));
    schema.drop_it().await;
}
