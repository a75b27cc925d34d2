//! Test databases: a temporary SQLite file, and a fresh random PostgreSQL schema (in
//! `GATEHOUSE_TEST_POSTGRES_URL`'s database) dropped afterwards. Without that variable the
//! PostgreSQL runs print SKIPPED, or fail when `GATEHOUSE_REQUIRE_STORES` is set.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;

use gatehouse_store::{KeyRecord, SpendRecord, Store, StoreOptions};
use sqlx::Connection;

/// Whether every store test must run (`GATEHOUSE_REQUIRE_STORES` set, and not to `0`).
pub fn required() -> bool {
    std::env::var("GATEHOUSE_REQUIRE_STORES").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The running test cannot run because `missing`: under `GATEHOUSE_REQUIRE_STORES` (which
/// `.ci/run` sets) that is a failure; otherwise it prints SKIPPED, written straight to stderr
/// so that the test harness's capture does not hide it.
pub fn skip(missing: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    assert!(
        !required(),
        "{test}: {missing}, and GATEHOUSE_REQUIRE_STORES is set (as .ci/run sets it): this test \
         must run, not skip"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {missing} (with GATEHOUSE_REQUIRE_STORES=1 this is a failure)"
    );
}

/// One test database.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub url: String,
    pub opts: StoreOptions,
    sqlite_dir: Option<PathBuf>,
    pg_schema: Option<String>,
}

fn random_name(prefix: &str) -> String {
    let mut s = String::from(prefix);
    for _ in 0..12 {
        s.push(fastrand::alphanumeric().to_ascii_lowercase());
    }
    s
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(random_name("gatehouse-store-test-"));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("state.db").display());
        TestDb {
            url,
            opts: StoreOptions::default(),
            sqlite_dir: Some(dir),
            pg_schema: None,
        }
    }

    /// `None` when `GATEHOUSE_TEST_POSTGRES_URL` is not set.
    pub fn postgres() -> Option<TestDb> {
        let url = std::env::var("GATEHOUSE_TEST_POSTGRES_URL").ok()?;
        if url.is_empty() {
            return None;
        }
        let schema = random_name("gh_test_");
        let opts = StoreOptions {
            pg_schema: Some(schema.clone()),
            ..StoreOptions::default()
        };
        Some(TestDb {
            url,
            opts,
            sqlite_dir: None,
            pg_schema: Some(schema),
        })
    }

    pub async fn connect(&self) -> Store {
        Store::connect(&self.url, self.opts.clone()).await.unwrap()
    }

    /// `true` for the PostgreSQL variant of a test.
    #[allow(dead_code)]
    pub fn is_postgres(&self) -> bool {
        self.pg_schema.is_some()
    }

    /// Runs one SQL statement outside the store (in the test's schema on PostgreSQL), e.g. to
    /// write rows the way an older version did.
    #[allow(dead_code)]
    pub async fn raw(&self, statement: &str) {
        if let Some(schema) = &self.pg_schema {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query(&format!("SET search_path TO \"{schema}\""))
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        }
    }

    pub async fn cleanup(&self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(schema) = &self.pg_schema {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await
                .unwrap();
            let _ = conn.close().await;
        }
    }
}

/// Runs `scenario` against `db`, cleaning up even when it panics.
pub async fn run_on<F, Fut>(db: Option<TestDb>, scenario: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = db else {
        skip("GATEHOUSE_TEST_POSTGRES_URL is not set");
        return;
    };
    let result = tokio::spawn(scenario(db.clone())).await;
    db.cleanup().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Generates `sqlite` and `postgres` tests running the same scenario.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_on(Some($crate::common::TestDb::sqlite()), super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run_on($crate::common::TestDb::postgres(), super::$name).await;
            }
        }
    };
}

pub fn hash(n: u8) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0] = n;
    h[31] = n.wrapping_mul(7);
    h
}

pub fn key(n: u8) -> KeyRecord {
    KeyRecord::new(hash(n), format!("sk-...{n:04}"))
}

pub fn spend(
    request_id: &str,
    key: Option<u8>,
    user: Option<&str>,
    team: Option<&str>,
    pico: i64,
) -> SpendRecord {
    SpendRecord {
        request_id: request_id.to_owned(),
        token_hash: key.map(hash),
        user_id: user.map(str::to_owned),
        team_id: team.map(str::to_owned),
        model: "gpt-4o".to_owned(),
        deployment_id: "dep-1".to_owned(),
        started_at: 1_700_000_000_000,
        ended_at: 1_700_000_000_500,
        prompt_tokens: 10,
        completion_tokens: 20,
        cached_tokens: 0,
        spend: pico,
        status: 200,
    }
}
