//! The stores an end-to-end test runs the binary on: the default embedded SQLite file, or
//! the shared PostgreSQL (`GATEHOUSE_TEST_POSTGRES_URL`, in a fresh random schema dropped
//! afterwards) with the shared Redis (`GATEHOUSE_TEST_REDIS_URL`, under a random key prefix
//! deleted afterwards), as several replicas would use them.
//!
//! A test that needs a service or tool this machine lacks calls [`skip`]: with
//! `GATEHOUSE_REQUIRE_STORES` set (`.ci/run` sets it) that is a failure, so CI can never pass
//! by skipping; without it the test passes after printing a `SKIPPED` line that the test
//! harness does not swallow.

use std::future::Future;
use std::io::Write;

use super::{Gatehouse, MASTER_KEY};

/// What gatehouse logs when a Redis call failed or timed out and it counted locally.
pub const LOCAL_FALLBACK: &str = "counting rate limits and budgets locally";

/// Whether every store test must run (`GATEHOUSE_REQUIRE_STORES` set, and not to `0`).
pub fn required() -> bool {
    std::env::var("GATEHOUSE_REQUIRE_STORES").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `test` cannot run because `missing`: fails under `GATEHOUSE_REQUIRE_STORES`, otherwise
/// says SKIPPED on stderr (written directly, so it shows even when the test passes).
pub fn skip(test: &str, missing: &str) {
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

fn env_url(test: &str, var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            skip(test, &format!("{var} is not set"));
            None
        }
    }
}

/// `GATEHOUSE_TEST_POSTGRES_URL`, or `None` after [`skip`].
pub fn postgres_url(test: &str) -> Option<String> {
    env_url(test, "GATEHOUSE_TEST_POSTGRES_URL")
}

/// `GATEHOUSE_TEST_REDIS_URL`, or `None` after [`skip`].
pub fn redis_url(test: &str) -> Option<String> {
    env_url(test, "GATEHOUSE_TEST_REDIS_URL")
}

/// A fresh PostgreSQL schema with the migrations applied, for one test.
#[derive(Debug, Clone)]
pub struct PgSchema {
    base: String,
    pub name: String,
}

impl PgSchema {
    pub async fn create(base: &str) -> PgSchema {
        let name = format!("gh_e2e_{:016x}", fastrand::u64(..));
        let opts = gatehouse_store::StoreOptions {
            pg_schema: Some(name.clone()),
            ..Default::default()
        };
        // Creates the schema and runs the migrations in it.
        let store = gatehouse_store::Store::connect(base, opts)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot set up a schema in GATEHOUSE_TEST_POSTGRES_URL's database: {e}")
            });
        store.close().await;
        PgSchema {
            base: base.to_owned(),
            name,
        }
    }

    /// The database URL with this schema first on the search path: what gatehouse gets.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.base, self.name)
    }

    pub async fn drop_it(&self) {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&self.base).await {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .execute(&mut c)
                .await;
            let _ = c.close().await;
        }
    }
}

/// A random Redis key prefix in the shared Redis, for one test.
#[derive(Debug, Clone)]
pub struct RedisSpace {
    pub url: String,
    pub prefix: String,
}

impl RedisSpace {
    pub fn new(url: &str) -> RedisSpace {
        RedisSpace {
            url: url.to_owned(),
            prefix: format!("gatehouse-e2e:{:016x}:", fastrand::u64(..)),
        }
    }

    /// The `gatehouse:` section lines for this Redis: gatehouse's keys under this prefix,
    /// and a `redis_timeout` of 2 s instead of 100 ms. These tests are about counting in
    /// Redis while it is up; on a loaded 2-core CI machine a burst of 200 requests can keep
    /// a debug-build gateway from reading Redis's answer within 100 ms, and the call is then
    /// counted locally (what degradation.rs tests on purpose). [`LOCAL_FALLBACK`] in a log
    /// shows that happened.
    pub fn gatehouse_settings(&self) -> String {
        format!(
            "  redis_key_prefix: \"{}\"\n  redis_timeout: 2\n",
            self.prefix
        )
    }

    /// The keys gatehouse wrote under this prefix.
    pub async fn keys(&self) -> Vec<String> {
        let mut c = self.connect().await;
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut c)
            .await
            .unwrap_or_default()
    }

    pub async fn cleanup(&self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let mut c = self.connect().await;
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut c).await;
        }
    }

    async fn connect(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap_or_else(|e| panic!("GATEHOUSE_TEST_REDIS_URL: {e}"))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot reach GATEHOUSE_TEST_REDIS_URL: {e}"))
    }
}

/// Where a test's gatehouse keeps its state.
#[derive(Debug, Clone)]
pub enum Stores {
    /// The default: an SQLite file beside the config.
    Sqlite,
    /// The shared PostgreSQL and Redis, as replicas use them.
    Shared { pg: PgSchema, redis: RedisSpace },
}

impl Stores {
    /// A fresh schema and key prefix, or `None` after [`skip`] when the services are not
    /// configured.
    pub async fn shared(test: &str) -> Option<Stores> {
        let pg = postgres_url(test)?;
        let redis = redis_url(test)?;
        Some(Stores::Shared {
            pg: PgSchema::create(&pg).await,
            redis: RedisSpace::new(&redis),
        })
    }

    /// The config's `general_settings` (master key, database), `router_settings` (Redis)
    /// and `gatehouse` (key prefix, then `gatehouse_extra`) sections.
    pub fn settings(&self, gatehouse_extra: &str) -> String {
        match self {
            Stores::Sqlite => format!(
                "general_settings:\n  master_key: {MASTER_KEY}\ngatehouse:\n{gatehouse_extra}"
            ),
            Stores::Shared { pg, redis } => format!(
                "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n\
                 router_settings:\n  redis_url: \"{}\"\ngatehouse:\n{}{gatehouse_extra}",
                pg.url(),
                redis.url,
                redis.gatehouse_settings()
            ),
        }
    }

    /// When `gh` has Redis: asserts that it counted there (its counters are under this
    /// test's prefix) and throughout (it never fell back to local counting).
    pub async fn assert_counted_in_redis(&self, gh: &Gatehouse) {
        if let Stores::Shared { redis, .. } = self {
            assert!(
                !gh.log().contains(LOCAL_FALLBACK),
                "gatehouse fell back to local counting, so this did not test Redis:\n{}",
                super::warnings(gh)
            );
            assert!(
                !redis.keys().await.is_empty(),
                "no counter under {} in Redis",
                redis.prefix
            );
        }
    }

    /// Drops the schema and deletes the Redis keys.
    pub async fn cleanup(&self) {
        if let Stores::Shared { pg, redis } = self {
            pg.drop_it().await;
            redis.cleanup().await;
        }
    }
}

/// Runs `scenario` on `stores` (nothing when `None`: skipped), cleaning up afterwards, also
/// when it panics.
pub async fn run<F, Fut>(stores: Option<Stores>, scenario: F)
where
    F: FnOnce(Stores) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(stores) = stores else { return };
    let result = tokio::spawn(scenario(stores.clone())).await;
    stores.cleanup().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// For each scenario `async fn name(stores: Stores)` in scope, tests `name::sqlite` and
/// `name::postgres_redis` running the same body on both store setups.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::common::stores::{Stores, run};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Some(Stores::Sqlite), super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                let test = concat!(module_path!(), "::postgres_redis");
                run(Stores::shared(test).await, super::$name).await;
            }
        }
    )*};
}
