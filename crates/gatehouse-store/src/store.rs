//! The [`Store`]: connection, migrations and every query.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row};

use crate::duration::{civil_from_days, parse_duration};
use crate::records::{
    Backend, EntityKind, Event, KeyFilter, KeyRecord, SpendDay, SpendGroup, SpendGroupBy,
    SpendQuery, SpendRecord, SpendTotals, StoreError, TeamRecord, UserRecord, hash_hex,
};
use crate::sql::{self, Dialect, MIGRATIONS};

/// Connection options for [`Store::connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Time allowed to open the first connection, and to acquire a pooled connection later.
    /// Default 5 s.
    pub connect_timeout: Duration,
    /// Maximum pooled connections. Default: 5 for PostgreSQL, 4 for SQLite (one writer at a
    /// time anyway; extra connections serve concurrent readers).
    pub max_connections: Option<u32>,
    /// SQLite `busy_timeout`: how long a writer waits for the file lock. Default 5 s.
    pub sqlite_busy_timeout: Duration,
    /// PostgreSQL `statement_timeout`, so that no call hangs on a stuck server. Default 30 s.
    pub statement_timeout: Option<Duration>,
    /// PostgreSQL only: create this schema if missing and put it first on `search_path` for
    /// every connection. Meant for tests (one random schema per test). Must match
    /// `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    pub pg_schema: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            connect_timeout: Duration::from_secs(5),
            max_connections: None,
            sqlite_busy_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
            pg_schema: None,
        }
    }
}

#[derive(Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    /// (model, deployment_id) → gatehouse_models.id. Only ids known to be committed.
    models: Mutex<HashMap<(String, String), i64>>,
    /// When old spend batch ids were last pruned (unix ms; 0: not yet).
    last_batch_prune: AtomicI64,
}

/// Handle to the database. Cheap to clone; all clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Runs `$body` once per backend with `$pool` bound to the concrete pool and `$d` to the
/// dialect, so every query is written once and type-checked against both drivers.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $d:ident| $body:expr) => {
        match &$store.inner.pool {
            Pool::Sqlite($pool) => {
                #[allow(unused_variables)]
                let $d: &Dialect = &sql::SQLITE;
                $body
            }
            Pool::Postgres($pool) => {
                #[allow(unused_variables)]
                let $d: &Dialect = &sql::POSTGRES;
                $body
            }
        }
    };
}

/// Runs `KEY_UPDATE` for `$key` inside the transaction `$tx` (every column an admin may
/// change; never `spend`).
macro_rules! key_update {
    ($tx:expr, $key:expr, $models:expr, $metadata:expr, $reset_at:expr, $now:expr) => {
        sqlx::query(sql::KEY_UPDATE)
            .bind($key.token_hash.to_vec())
            .bind(&$key.key_name)
            .bind(&$key.key_alias)
            .bind(&$key.user_id)
            .bind(&$key.team_id)
            .bind(&$models)
            .bind($key.max_budget)
            .bind(&$key.budget_duration)
            .bind($reset_at)
            .bind(limit_to_db($key.rpm_limit))
            .bind(limit_to_db($key.tpm_limit))
            .bind(limit_to_db($key.max_parallel_requests))
            .bind(&$metadata)
            .bind($key.expires_at)
            .bind($key.blocked)
            .bind($now)
            .execute(&mut *$tx)
    };
}

/// Inserts one change-feed row inside the transaction `$tx`.
macro_rules! emit {
    ($tx:expr, $kind:expr, $id:expr, $now:expr) => {
        sqlx::query(sql::EVENT_INSERT)
            .bind($kind.as_str())
            .bind($id)
            .bind($now)
            .execute(&mut *$tx)
            .await?
    };
}

/// Column access shared by both drivers' rows.
trait RowExt {
    fn i64(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn i32(&self, col: &str) -> Result<i32, StoreError>;
    fn string(&self, col: &str) -> Result<String, StoreError>;
    fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn boolean(&self, col: &str) -> Result<bool, StoreError>;
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn i64(&self, col: &str) -> Result<i64, StoreError> {
                Ok(self.try_get::<i64, _>(col)?)
            }
            fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError> {
                Ok(self.try_get::<Option<i64>, _>(col)?)
            }
            fn i32(&self, col: &str) -> Result<i32, StoreError> {
                Ok(self.try_get::<i32, _>(col)?)
            }
            fn string(&self, col: &str) -> Result<String, StoreError> {
                Ok(self.try_get::<String, _>(col)?)
            }
            fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError> {
                Ok(self.try_get::<Option<String>, _>(col)?)
            }
            fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(self.try_get::<Option<Vec<u8>>, _>(col)?)
            }
            fn boolean(&self, col: &str) -> Result<bool, StoreError> {
                Ok(self.try_get::<bool, _>(col)?)
            }
        }
    };
}
impl_row_ext!(SqliteRow);
impl_row_ext!(PgRow);

fn hash_from(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("token hash of {} bytes", bytes.len())))
}

fn models_from(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("models: {e}")))
}

fn metadata_from(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("metadata: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn limit_to_db(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn limit_from_db(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

fn key_from_row<R: RowExt>(r: &R) -> Result<KeyRecord, StoreError> {
    let hash = r
        .opt_bytes("token_hash")?
        .ok_or_else(|| StoreError::Corrupt("null token hash".into()))?;
    Ok(KeyRecord {
        token_hash: hash_from(hash)?,
        key_name: r.string("key_name")?,
        key_alias: r.opt_string("key_alias")?,
        user_id: r.opt_string("user_id")?,
        team_id: r.opt_string("team_id")?,
        models: models_from(&r.string("models")?)?,
        max_budget: r.opt_i64("max_budget")?,
        spend: r.i64("spend")?,
        budget_duration: r.opt_string("budget_duration")?,
        budget_reset_at: r.opt_i64("budget_reset_at")?,
        rpm_limit: limit_from_db(r.opt_i64("rpm_limit")?),
        tpm_limit: limit_from_db(r.opt_i64("tpm_limit")?),
        max_parallel_requests: limit_from_db(r.opt_i64("max_parallel_requests")?),
        metadata: metadata_from(&r.string("metadata")?)?,
        expires_at: r.opt_i64("expires_at")?,
        blocked: r.boolean("blocked")?,
        created_at: r.i64("created_at")?,
        updated_at: r.i64("updated_at")?,
    })
}

fn user_from_row<R: RowExt>(r: &R) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        user_id: r.string("user_id")?,
        user_email: r.opt_string("user_email")?,
        user_alias: r.opt_string("user_alias")?,
        user_role: r.string("user_role")?,
        models: models_from(&r.string("models")?)?,
        max_budget: r.opt_i64("max_budget")?,
        spend: r.i64("spend")?,
        budget_duration: r.opt_string("budget_duration")?,
        budget_reset_at: r.opt_i64("budget_reset_at")?,
        rpm_limit: limit_from_db(r.opt_i64("rpm_limit")?),
        tpm_limit: limit_from_db(r.opt_i64("tpm_limit")?),
        max_parallel_requests: limit_from_db(r.opt_i64("max_parallel_requests")?),
        metadata: metadata_from(&r.string("metadata")?)?,
        created_at: r.i64("created_at")?,
    })
}

fn team_from_row<R: RowExt>(
    r: &R,
    members: Vec<String>,
    admins: Vec<String>,
) -> Result<TeamRecord, StoreError> {
    Ok(TeamRecord {
        team_id: r.string("team_id")?,
        team_alias: r.opt_string("team_alias")?,
        models: models_from(&r.string("models")?)?,
        max_budget: r.opt_i64("max_budget")?,
        spend: r.i64("spend")?,
        budget_duration: r.opt_string("budget_duration")?,
        budget_reset_at: r.opt_i64("budget_reset_at")?,
        rpm_limit: limit_from_db(r.opt_i64("rpm_limit")?),
        tpm_limit: limit_from_db(r.opt_i64("tpm_limit")?),
        max_parallel_requests: limit_from_db(r.opt_i64("max_parallel_requests")?),
        members,
        admins,
        metadata: metadata_from(&r.string("metadata")?)?,
        blocked: r.boolean("blocked")?,
        created_at: r.i64("created_at")?,
    })
}

fn spend_from_row<R: RowExt>(r: &R) -> Result<SpendRecord, StoreError> {
    Ok(SpendRecord {
        request_id: r.string("request_id")?,
        token_hash: r.opt_bytes("token_hash")?.map(hash_from).transpose()?,
        user_id: r.opt_string("user_id")?,
        team_id: r.opt_string("team_id")?,
        model: r.string("model")?,
        deployment_id: r.string("deployment_id")?,
        started_at: r.i64("started_at")?,
        ended_at: r.i64("ended_at")?,
        prompt_tokens: r.i64("prompt_tokens")?,
        completion_tokens: r.i64("completion_tokens")?,
        cached_tokens: r.i64("cached_tokens")?,
        spend: r.i64("spend")?,
        status: r.i32("status")?,
    })
}

fn totals_from_row<R: RowExt>(r: &R) -> Result<SpendTotals, StoreError> {
    Ok(SpendTotals {
        spend: r.i64("total_spend")?,
        prompt_tokens: r.i64("total_prompt_tokens")?,
        completion_tokens: r.i64("total_completion_tokens")?,
        requests: r.i64("total_requests")?,
    })
}

/// Current time in unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The `budget_reset_at` to store: the given one, or one period after `from_ms` when a
/// duration is set but no reset time. Rejects unparsable durations.
fn reset_at_for(
    duration: Option<&str>,
    reset_at: Option<i64>,
    from_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let Some(text) = duration else {
        return Ok(reset_at);
    };
    let d = parse_duration(text)
        .ok_or_else(|| StoreError::Invalid(format!("budget_duration {text:?}")))?;
    match reset_at {
        Some(at) => Ok(Some(at)),
        None => Ok(d.add_to(from_ms)),
    }
}

fn conflict_or(e: sqlx::Error, kind: EntityKind, id: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { kind, id: id() }
        }
        _ => StoreError::Database(e),
    }
}

/// Like [`conflict_or`] for writes to `gatehouse_keys`, telling a taken `key_alias` (the unique
/// index `gatehouse_keys_key_alias`) from a taken hash.
fn key_conflict_or(e: sqlx::Error, key: &KeyRecord, hex: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
        && (db.constraint().is_some_and(|c| c.contains("key_alias"))
            || db.message().contains("key_alias"))
    {
        return StoreError::AliasTaken {
            alias: key.key_alias.clone().unwrap_or_default(),
        };
    }
    conflict_or(e, EntityKind::Key, || hex.to_owned())
}

/// The number of rows or groups a spend query returns: `q.limit`, 1000 by default, at most
/// 100 000.
fn row_limit(q: &SpendQuery) -> i64 {
    i64::from(q.limit.unwrap_or(1000).min(100_000))
}

/// Appends the `WHERE` clauses of a [`SpendQuery`] (rows aliased `s`).
fn push_spend_filters<'a, DB>(qb: &mut QueryBuilder<'a, DB>, q: &SpendQuery)
where
    DB: sqlx::Database,
    Vec<u8>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(h) = &q.token_hash {
        qb.push(" AND s.token_hash = ").push_bind(h.to_vec());
    }
    if let Some(u) = &q.user_id {
        qb.push(" AND s.user_id = ").push_bind(u.clone());
    }
    if let Some(t) = &q.team_id {
        qb.push(" AND s.team_id = ").push_bind(t.clone());
    }
    if let Some(r) = &q.request_id {
        qb.push(" AND s.request_id = ").push_bind(r.clone());
        // Request ids are UUIDv7: their arrival time bounds `started_at`, so the time index
        // finds the row (there is no index on `request_id`).
        if let Some(ms) = uuid_v7_ms(r) {
            qb.push(" AND s.started_at >= ")
                .push_bind(ms.saturating_sub(REQUEST_ID_SLACK_BEFORE_MS));
            qb.push(" AND s.started_at <= ")
                .push_bind(ms.saturating_add(REQUEST_ID_SLACK_AFTER_MS));
        }
    }
    if let Some(s) = q.start_ms {
        qb.push(" AND s.started_at >= ").push_bind(s);
    }
    if let Some(e) = q.end_ms {
        qb.push(" AND s.started_at < ").push_bind(e);
    }
}

/// How far before its request id's time a spend row's `started_at` may lie (clock steps).
const REQUEST_ID_SLACK_BEFORE_MS: i64 = 60_000;
/// How far after: rows written before `started_at` became the arrival time recorded when the
/// body had been read, which a slow client can delay.
const REQUEST_ID_SLACK_AFTER_MS: i64 = 3_600_000;

/// The Unix milliseconds of a UUIDv7 (hyphenated or not); `None` for anything else.
fn uuid_v7_ms(id: &str) -> Option<i64> {
    let u = uuid::Uuid::try_parse(id).ok()?;
    if u.get_version_num() != 7 {
        return None;
    }
    let b = u.as_bytes();
    let ms = b
        .get(..6)?
        .iter()
        .fold(0i64, |acc, &x| (acc << 8) | i64::from(x));
    Some(ms)
}

/// Appends the `WHERE` clauses of a [`KeyFilter`].
fn push_key_filters<'a, DB>(qb: &mut QueryBuilder<'a, DB>, f: &KeyFilter)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(u) = &f.user_id {
        qb.push(" AND user_id = ").push_bind(u.clone());
    }
    if let Some(t) = &f.team_id {
        qb.push(" AND team_id = ").push_bind(t.clone());
    }
    if let Some(a) = &f.key_alias {
        qb.push(" AND key_alias = ").push_bind(a.clone());
    }
}

/// One change-feed row.
fn event_from_row(r: &impl RowExt) -> Result<Event, StoreError> {
    let kind = r.string("kind")?;
    Ok(Event {
        seq: r.i64("seq")?,
        kind: EntityKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("event kind {kind:?}")))?,
        id: r.string("id")?,
        at: r.i64("at")?,
    })
}

/// A query builder whose database type is taken from `pool`.
fn builder<DB: sqlx::Database>(_pool: &sqlx::Pool<DB>, init: &str) -> QueryBuilder<'static, DB> {
    QueryBuilder::new(init.to_owned())
}

/// Removes the password of `url` from `message`, if it occurs there.
fn scrub(message: String, url: &str) -> String {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return message;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return message;
    };
    match userinfo.split_once(':') {
        Some((_, pw)) if !pw.is_empty() => message.replace(pw, "***"),
        _ => message,
    }
}

fn valid_schema_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// The stored team role of an admin member; every other member's is `user`.
const ROLE_ADMIN: &str = "admin";

fn member_role(admin: bool) -> &'static str {
    if admin { ROLE_ADMIN } else { "user" }
}

/// Rows per multi-row spend insert (12 parameters each, well under both drivers' limits).
const SPEND_CHUNK: usize = 200;

/// How long written spend batch ids are remembered: far longer than any retry of a batch
/// (a batch is retried while the writer lives, and its id dies with the process).
const BATCH_ID_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// How often old batch ids are pruned (inside a spend insert's transaction).
const BATCH_PRUNE_EVERY_MS: i64 = 3600 * 1000;

/// A fresh spend batch id for [`Store::insert_spend`]: a random UUID, unique across replicas.
pub fn new_batch_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Defines the migration runner for one dialect (a concrete connection type keeps the
/// future `Send`).
macro_rules! migration_runner {
    ($name:ident, $conn:ty, $dialect:expr, $field:ident) => {
        /// Applies the migrations up to and including `until`.
        async fn $name(conn: &mut $conn, until: i64) -> Result<(), StoreError> {
            let d: &Dialect = &$dialect;
            sqlx::query(d.create_migrations_table)
                .execute(&mut *conn)
                .await?;
            let found: i64 = sqlx::query_scalar(sql::MIGRATION_LATEST)
                .fetch_one(&mut *conn)
                .await?;
            if found > sql::SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    found,
                    known: sql::SCHEMA_VERSION,
                });
            }
            for m in MIGRATIONS.iter().filter(|m| m.version <= until) {
                let fail = |source| StoreError::Migration {
                    version: m.version,
                    name: m.name,
                    source,
                };
                let mut tx = conn.begin_with(d.begin).await.map_err(fail)?;
                let applied: i64 = sqlx::query_scalar(sql::MIGRATION_APPLIED)
                    .bind(m.version)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(fail)?;
                if applied > 0 {
                    continue;
                }
                if let Some((query, what)) = m.report {
                    let rows = sqlx::query(query).fetch_all(&mut *tx).await.map_err(fail)?;
                    for row in &rows {
                        let subject: String = row.try_get("subject").map_err(fail)?;
                        let count: i64 = row.try_get("n").map_err(fail)?;
                        tracing::warn!(
                            version = m.version,
                            migration = m.name,
                            subject = %subject,
                            count,
                            "{what}"
                        );
                    }
                }
                // One statement at a time (migrations hold no `;` inside literals); sqlx's
                // multi-statement `raw_sql` future is not `Send`.
                for stmt in m.$field.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    sqlx::query(stmt).execute(&mut *tx).await.map_err(fail)?;
                }
                sqlx::query(sql::MIGRATION_RECORD)
                    .bind(m.version)
                    .bind(m.name)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                tx.commit().await.map_err(fail)?;
                tracing::info!(
                    version = m.version,
                    name = m.name,
                    "applied database migration"
                );
            }
            Ok(())
        }
    };
}
migration_runner!(migrate_sqlite, sqlx::SqliteConnection, sql::SQLITE, sqlite);
migration_runner!(
    migrate_postgres,
    sqlx::PgConnection,
    sql::POSTGRES,
    postgres
);

impl Store {
    /// Opens (creating if needed) the database at `url` and runs pending migrations.
    ///
    /// `url` is `sqlite://path` (also `sqlite:path`, `sqlite::memory:`) or `postgres://…` /
    /// `postgresql://…`. Errors never repeat the URL or its password.
    pub async fn connect(url: &str, opts: StoreOptions) -> Result<Store, StoreError> {
        Self::connect_until(url, opts, i64::MAX).await
    }

    /// Like [`Store::connect`], but applies only the migrations up to `version`. For tests
    /// of later migrations against data written under an older schema.
    #[doc(hidden)]
    pub async fn connect_at_version(
        url: &str,
        opts: StoreOptions,
        version: i64,
    ) -> Result<Store, StoreError> {
        Self::connect_until(url, opts, version).await
    }

    async fn connect_until(url: &str, opts: StoreOptions, until: i64) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            Pool::Sqlite(Self::connect_sqlite(url, &opts).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(
                Self::connect_postgres(url, &opts)
                    .await
                    .map_err(|e| match e {
                        StoreError::Connect(m) => StoreError::Connect(scrub(m, url)),
                        StoreError::InvalidUrl(m) => StoreError::InvalidUrl(scrub(m, url)),
                        other => other,
                    })?,
            )
        } else {
            return Err(StoreError::InvalidUrl(
                "expected sqlite://, postgres:// or postgresql://".into(),
            ));
        };
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                models: Mutex::new(HashMap::new()),
                last_batch_prune: AtomicI64::new(0),
            }),
        };
        store.migrate_until(until).await?;
        Ok(store)
    }

    async fn connect_sqlite(url: &str, opts: &StoreOptions) -> Result<SqlitePool, StoreError> {
        let co = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let co = co
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(opts.sqlite_busy_timeout);
        let co = if memory {
            co
        } else {
            let path = co.get_filename().to_path_buf();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Connect(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            co.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        let mut po = SqlitePoolOptions::new().acquire_timeout(opts.connect_timeout);
        po = if memory {
            // Every connection to :memory: is a separate database: keep exactly one, forever.
            po.max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            po.max_connections(opts.max_connections.unwrap_or(4).max(1))
        };
        // Several processes opening a new file at once race to switch it to WAL, and SQLite
        // answers that with SQLITE_BUSY at once (no busy handler for a journal-mode change):
        // try again, within the connect timeout.
        let connect = async {
            let mut pause = Duration::from_millis(10);
            loop {
                match po.clone().connect_with(co.clone()).await {
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("5") => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(200));
                    }
                    other => return other,
                }
            }
        };
        tokio::time::timeout(opts.connect_timeout, connect)
            .await
            .map_err(|_| StoreError::Connect("timed out".into()))?
            .map_err(|e| StoreError::Connect(e.to_string()))
    }

    async fn connect_postgres(url: &str, opts: &StoreOptions) -> Result<PgPool, StoreError> {
        let mut co =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let timeout = opts.connect_timeout;
        let mut startup: Vec<(&str, String)> = Vec::new();
        if let Some(st) = opts.statement_timeout {
            startup.push(("statement_timeout", st.as_millis().to_string()));
        }
        if let Some(schema) = &opts.pg_schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::InvalidUrl(format!(
                    "invalid schema name {schema:?}"
                )));
            }
            let create = async {
                let mut conn = sqlx::PgConnection::connect_with(&co).await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(sql::PG_MIGRATION_LOCK)
                    .execute(&mut conn)
                    .await?;
                let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .execute(&mut conn)
                    .await;
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(sql::PG_MIGRATION_LOCK)
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
                created.map(|_| ())
            };
            tokio::time::timeout(timeout, create)
                .await
                .map_err(|_| StoreError::Connect("timed out".into()))?
                .map_err(|e: sqlx::Error| StoreError::Connect(e.to_string()))?;
            startup.push(("search_path", schema.clone()));
        }
        if !startup.is_empty() {
            co = co.options(startup);
        }
        let po = PgPoolOptions::new()
            .max_connections(opts.max_connections.unwrap_or(5).max(1))
            .acquire_timeout(timeout)
            .idle_timeout(Some(Duration::from_secs(600)));
        tokio::time::timeout(timeout, po.connect_with(co))
            .await
            .map_err(|_| StoreError::Connect("timed out".into()))?
            .map_err(|e| StoreError::Connect(e.to_string()))
    }

    /// Applies every migration up to `until` not yet recorded in `gatehouse_migrations`. On
    /// PostgreSQL the
    /// session holds `pg_advisory_lock` meanwhile, so concurrent start-ups apply each
    /// migration once.
    async fn migrate_until(&self, until: i64) -> Result<(), StoreError> {
        match &self.inner.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                migrate_sqlite(&mut conn, until).await
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(sql::PG_MIGRATION_LOCK)
                    .execute(&mut *conn)
                    .await?;
                let result = migrate_postgres(&mut conn, until).await;
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(sql::PG_MIGRATION_LOCK)
                    .execute(&mut *conn)
                    .await;
                if unlocked.is_err() {
                    // Closing the session releases the lock.
                    conn.close_on_drop();
                }
                result
            }
        }
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match self.inner.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// A cheap round-trip (`SELECT 1`), for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool, d| {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    /// Closes every pooled connection; later calls fail with a database error.
    pub async fn close(&self) {
        match &self.inner.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// The highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        on_pool!(self, |pool, d| {
            Ok(sqlx::query_scalar::<_, i64>(sql::MIGRATION_LATEST)
                .fetch_one(pool)
                .await?)
        })
    }

    // -----------------------------------------------------------------------------------------
    // Keys
    // -----------------------------------------------------------------------------------------

    /// Inserts a new key and returns it as stored (`created_at`/`updated_at` filled in when 0,
    /// `budget_reset_at` computed when a `budget_duration` is set without one).
    /// [`StoreError::Conflict`] if the hash exists, else [`StoreError::AliasTaken`] if another
    /// key has its `key_alias`.
    pub async fn insert_key(&self, key: &KeyRecord) -> Result<KeyRecord, StoreError> {
        match self.insert_key_once(key).await {
            // Which unique index a database reports first is its choice: a taken hash wins.
            Err(StoreError::AliasTaken { alias })
                if self.key_by_hash(&key.token_hash).await?.is_none() =>
            {
                Err(StoreError::AliasTaken { alias })
            }
            Err(StoreError::AliasTaken { .. }) => Err(StoreError::Conflict {
                kind: EntityKind::Key,
                id: hash_hex(&key.token_hash),
            }),
            other => other,
        }
    }

    async fn insert_key_once(&self, key: &KeyRecord) -> Result<KeyRecord, StoreError> {
        let now = now_ms();
        let mut k = key.clone();
        if k.created_at == 0 {
            k.created_at = now;
        }
        k.updated_at = now;
        k.budget_reset_at = reset_at_for(k.budget_duration.as_deref(), k.budget_reset_at, now)?;
        let models = to_json(&k.models)?;
        let metadata = to_json(&k.metadata)?;
        let hex = hash_hex(&k.token_hash);
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::KEY_INSERT)
                .bind(k.token_hash.to_vec())
                .bind(&k.key_name)
                .bind(&k.key_alias)
                .bind(&k.user_id)
                .bind(&k.team_id)
                .bind(&models)
                .bind(k.max_budget)
                .bind(k.spend)
                .bind(&k.budget_duration)
                .bind(k.budget_reset_at)
                .bind(limit_to_db(k.rpm_limit))
                .bind(limit_to_db(k.tpm_limit))
                .bind(limit_to_db(k.max_parallel_requests))
                .bind(&metadata)
                .bind(k.expires_at)
                .bind(k.blocked)
                .bind(k.created_at)
                .bind(k.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| key_conflict_or(e, &k, &hex))?;
            emit!(tx, EntityKind::Key, &hex, now);
            tx.commit().await?;
            Ok(k)
        })
    }

    /// The key with this hash, if any.
    pub async fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<KeyRecord>, StoreError> {
        on_pool!(self, |pool, d| {
            sqlx::query(sql::KEY_BY_HASH)
                .bind(hash.to_vec())
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(key_from_row)
                .transpose()
        })
    }

    /// The key that has this `key_alias`, if any (aliases are unique).
    pub async fn key_by_alias(&self, alias: &str) -> Result<Option<[u8; 32]>, StoreError> {
        on_pool!(self, |pool, d| {
            sqlx::query_scalar::<_, Vec<u8>>(sql::KEY_BY_ALIAS)
                .bind(alias)
                .fetch_optional(pool)
                .await?
                .map(hash_from)
                .transpose()
        })
    }

    /// Replaces every field of the key named by `key.token_hash` except `spend` and
    /// `created_at`; sets `updated_at` to now. A `budget_duration` without a
    /// `budget_reset_at` schedules the next reset one period from now.
    /// [`StoreError::NotFound`] if there is no such key, [`StoreError::AliasTaken`] if
    /// another key has its `key_alias`.
    pub async fn update_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let now = now_ms();
        let reset_at = reset_at_for(key.budget_duration.as_deref(), key.budget_reset_at, now)?;
        let models = to_json(&key.models)?;
        let metadata = to_json(&key.metadata)?;
        let hex = hash_hex(&key.token_hash);
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let done = key_update!(tx, key, models, metadata, reset_at, now)
                .await
                .map_err(|e| key_conflict_or(e, key, &hex))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: EntityKind::Key,
                    id: hex,
                });
            }
            emit!(tx, EntityKind::Key, &hex, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Blocks or unblocks a key. [`StoreError::NotFound`] if there is no such key.
    pub async fn set_key_blocked(&self, hash: &[u8; 32], blocked: bool) -> Result<(), StoreError> {
        let now = now_ms();
        let hex = hash_hex(hash);
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let done = sqlx::query(sql::KEY_SET_BLOCKED)
                .bind(hash.to_vec())
                .bind(blocked)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: EntityKind::Key,
                    id: hex,
                });
            }
            emit!(tx, EntityKind::Key, &hex, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes these keys (missing ones are ignored) and returns how many were deleted.
    /// Their spend logs are kept.
    pub async fn delete_keys(&self, hashes: &[[u8; 32]]) -> Result<u64, StoreError> {
        self.delete_keys_in(hashes, None).await
    }

    /// Deletes these keys, in one transaction, only if that deletes `wanted` keys; otherwise
    /// deletes nothing. Returns how many of them existed (a key named twice counts once): the
    /// number deleted when that is `wanted`, and nothing was deleted when it is not. A caller
    /// that also counts in `wanted` names it knows to name no key (an alias nobody has) gets
    /// the count of those that exist and deletes nothing.
    pub async fn delete_keys_all_or_none(
        &self,
        hashes: &[[u8; 32]],
        wanted: usize,
    ) -> Result<u64, StoreError> {
        self.delete_keys_in(hashes, Some(wanted)).await
    }

    /// Deletes these keys in one transaction and returns how many existed; with `expect`,
    /// commits only when that many were deleted. A hash given twice is deleted once.
    async fn delete_keys_in(
        &self,
        hashes: &[[u8; 32]],
        expect: Option<usize>,
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let mut deleted = 0u64;
            for h in hashes {
                let gone = sqlx::query(sql::KEY_DELETE)
                    .bind(h.to_vec())
                    .fetch_optional(&mut *tx)
                    .await?;
                if gone.is_some() {
                    deleted += 1;
                    emit!(tx, EntityKind::Key, hash_hex(h), now);
                }
            }
            if expect.is_none_or(|n| usize::try_from(deleted).ok() == Some(n)) {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(deleted)
        })
    }

    /// Gives the key `old` the hash and display name of `new` and every other field of `new`
    /// except `spend` and `created_at` (as [`Store::update_key`]), in one transaction: a
    /// regeneration that also changes settings. Emits events for both hashes.
    /// [`StoreError::NotFound`] if `old` does not exist, [`StoreError::Conflict`] if
    /// `new.token_hash` does, [`StoreError::AliasTaken`] if another key has its alias.
    pub async fn regenerate_key_with(
        &self,
        old: &[u8; 32],
        new: &KeyRecord,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let reset_at = reset_at_for(new.budget_duration.as_deref(), new.budget_reset_at, now)?;
        let models = to_json(&new.models)?;
        let metadata = to_json(&new.metadata)?;
        let (old_hex, new_hex) = (hash_hex(old), hash_hex(&new.token_hash));
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let done = sqlx::query(sql::KEY_REGENERATE)
                .bind(old.to_vec())
                .bind(new.token_hash.to_vec())
                .bind(&new.key_name)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, EntityKind::Key, || new_hex.clone()))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: EntityKind::Key,
                    id: old_hex,
                });
            }
            key_update!(tx, new, models, metadata, reset_at, now)
                .await
                .map_err(|e| key_conflict_or(e, new, &new_hex))?;
            emit!(tx, EntityKind::Key, &old_hex, now);
            emit!(tx, EntityKind::Key, &new_hex, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// One page of keys matching `filter`, oldest first, and the total number matching.
    /// `page` starts at 1 (0 is treated as 1); `page_size` is clamped to 1..=1000.
    pub async fn list_keys(
        &self,
        filter: &KeyFilter,
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<KeyRecord>, u64), StoreError> {
        let size = i64::from(page_size.clamp(1, 1000));
        let offset = i64::from(page.max(1) - 1) * size;
        on_pool!(self, |pool, d| {
            let mut count = builder(
                pool,
                "SELECT CAST(COUNT(*) AS BIGINT) FROM gatehouse_keys WHERE 1 = 1",
            );
            push_key_filters(&mut count, filter);
            let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
            let mut q = builder(
                pool,
                &format!(
                    "SELECT {} FROM gatehouse_keys WHERE 1 = 1",
                    sql::KEY_COLUMNS
                ),
            );
            push_key_filters(&mut q, filter);
            q.push(" ORDER BY created_at, token_hash LIMIT ")
                .push_bind(size)
                .push(" OFFSET ")
                .push_bind(offset);
            let rows = q.build().fetch_all(pool).await?;
            let keys = rows
                .iter()
                .map(key_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((keys, u64::try_from(total).unwrap_or(0)))
        })
    }

    // -----------------------------------------------------------------------------------------
    // Users
    // -----------------------------------------------------------------------------------------

    /// Inserts a new user and returns it as stored. [`StoreError::Conflict`] if the id exists.
    pub async fn insert_user(&self, user: &UserRecord) -> Result<UserRecord, StoreError> {
        let now = now_ms();
        let mut u = user.clone();
        if u.created_at == 0 {
            u.created_at = now;
        }
        u.budget_reset_at = reset_at_for(u.budget_duration.as_deref(), u.budget_reset_at, now)?;
        let models = to_json(&u.models)?;
        let metadata = to_json(&u.metadata)?;
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::USER_INSERT)
                .bind(&u.user_id)
                .bind(&u.user_email)
                .bind(&u.user_role)
                .bind(&models)
                .bind(u.max_budget)
                .bind(u.spend)
                .bind(&u.budget_duration)
                .bind(u.budget_reset_at)
                .bind(limit_to_db(u.rpm_limit))
                .bind(limit_to_db(u.tpm_limit))
                .bind(limit_to_db(u.max_parallel_requests))
                .bind(&metadata)
                .bind(u.created_at)
                .bind(now)
                .bind(&u.user_alias)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, EntityKind::User, || u.user_id.clone()))?;
            emit!(tx, EntityKind::User, &u.user_id, now);
            tx.commit().await?;
            Ok(u)
        })
    }

    /// The user with this id, if any.
    pub async fn user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        on_pool!(self, |pool, d| {
            sqlx::query(sql::USER_BY_ID)
                .bind(user_id)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(user_from_row)
                .transpose()
        })
    }

    /// Replaces every field of the user except `spend` and `created_at`.
    /// [`StoreError::NotFound`] if there is no such user.
    pub async fn update_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let now = now_ms();
        let reset_at = reset_at_for(user.budget_duration.as_deref(), user.budget_reset_at, now)?;
        let models = to_json(&user.models)?;
        let metadata = to_json(&user.metadata)?;
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let done = sqlx::query(sql::USER_UPDATE)
                .bind(&user.user_id)
                .bind(&user.user_email)
                .bind(&user.user_role)
                .bind(&models)
                .bind(user.max_budget)
                .bind(&user.budget_duration)
                .bind(reset_at)
                .bind(limit_to_db(user.rpm_limit))
                .bind(limit_to_db(user.tpm_limit))
                .bind(limit_to_db(user.max_parallel_requests))
                .bind(&metadata)
                .bind(now)
                .bind(&user.user_alias)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: EntityKind::User,
                    id: user.user_id.clone(),
                });
            }
            emit!(tx, EntityKind::User, &user.user_id, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every key owned by this user, oldest first.
    pub async fn keys_of_user(&self, user_id: &str) -> Result<Vec<KeyRecord>, StoreError> {
        on_pool!(self, |pool, d| {
            sqlx::query(sql::KEYS_OF_USER)
                .bind(user_id)
                .fetch_all(pool)
                .await?
                .iter()
                .map(key_from_row)
                .collect()
        })
    }

    /// Ids of the teams this user is a member of, in the order they were joined.
    pub async fn teams_of_user(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        on_pool!(self, |pool, d| {
            Ok(sqlx::query_scalar::<_, String>(sql::TEAMS_OF_USER)
                .bind(user_id)
                .fetch_all(pool)
                .await?)
        })
    }

    // -----------------------------------------------------------------------------------------
    // Teams
    // -----------------------------------------------------------------------------------------

    /// Inserts a new team with its members and returns it as stored.
    /// [`StoreError::Conflict`] if the id exists.
    pub async fn insert_team(&self, team: &TeamRecord) -> Result<TeamRecord, StoreError> {
        let now = now_ms();
        let mut t = team.clone();
        if t.created_at == 0 {
            t.created_at = now;
        }
        t.budget_reset_at = reset_at_for(t.budget_duration.as_deref(), t.budget_reset_at, now)?;
        let mut seen = HashSet::new();
        t.members.retain(|m| seen.insert(m.clone()));
        // Admins are members, each named once: a member leaves `seen` as an admin is kept.
        t.admins.retain(|a| seen.remove(a));
        let models = to_json(&t.models)?;
        let metadata = to_json(&t.metadata)?;
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::TEAM_INSERT)
                .bind(&t.team_id)
                .bind(&t.team_alias)
                .bind(&models)
                .bind(t.max_budget)
                .bind(t.spend)
                .bind(&t.budget_duration)
                .bind(t.budget_reset_at)
                .bind(limit_to_db(t.rpm_limit))
                .bind(limit_to_db(t.tpm_limit))
                .bind(limit_to_db(t.max_parallel_requests))
                .bind(&metadata)
                .bind(t.blocked)
                .bind(t.created_at)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, EntityKind::Team, || t.team_id.clone()))?;
            for (i, m) in t.members.iter().enumerate() {
                // Distinct added_at values keep the given order.
                sqlx::query(sql::TEAM_MEMBER_ADD)
                    .bind(&t.team_id)
                    .bind(m)
                    .bind(now + i64::try_from(i).unwrap_or(0))
                    .bind(member_role(t.admins.contains(m)))
                    .execute(&mut *tx)
                    .await?;
            }
            emit!(tx, EntityKind::Team, &t.team_id, now);
            tx.commit().await?;
            Ok(t)
        })
    }

    /// The team with this id (members included), if any.
    pub async fn team(&self, team_id: &str) -> Result<Option<TeamRecord>, StoreError> {
        on_pool!(self, |pool, d| {
            let Some(row) = sqlx::query(sql::TEAM_BY_ID)
                .bind(team_id)
                .fetch_optional(pool)
                .await?
            else {
                return Ok(None);
            };
            let rows = sqlx::query(sql::TEAM_MEMBERS)
                .bind(team_id)
                .fetch_all(pool)
                .await?;
            let mut members = Vec::with_capacity(rows.len());
            let mut admins = Vec::new();
            for r in &rows {
                let user = r.string("user_id")?;
                if r.string("role")? == ROLE_ADMIN {
                    admins.push(user.clone());
                }
                members.push(user);
            }
            team_from_row(&row, members, admins).map(Some)
        })
    }

    /// Replaces every field of the team except `spend`, `created_at` and `members` (use
    /// [`Store::add_team_member`] / [`Store::remove_team_member`]).
    /// [`StoreError::NotFound`] if there is no such team.
    pub async fn update_team(&self, team: &TeamRecord) -> Result<(), StoreError> {
        let now = now_ms();
        let reset_at = reset_at_for(team.budget_duration.as_deref(), team.budget_reset_at, now)?;
        let models = to_json(&team.models)?;
        let metadata = to_json(&team.metadata)?;
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let done = sqlx::query(sql::TEAM_UPDATE)
                .bind(&team.team_id)
                .bind(&team.team_alias)
                .bind(&models)
                .bind(team.max_budget)
                .bind(&team.budget_duration)
                .bind(reset_at)
                .bind(limit_to_db(team.rpm_limit))
                .bind(limit_to_db(team.tpm_limit))
                .bind(limit_to_db(team.max_parallel_requests))
                .bind(&metadata)
                .bind(team.blocked)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: EntityKind::Team,
                    id: team.team_id.clone(),
                });
            }
            emit!(tx, EntityKind::Team, &team.team_id, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Adds a member with the team role `user`; returns `false` if they already were one.
    /// [`StoreError::NotFound`] if there is no such team.
    pub async fn add_team_member(&self, team_id: &str, user_id: &str) -> Result<bool, StoreError> {
        self.change_member(team_id, user_id, Some(false)).await
    }

    /// Adds a member with the team role `admin` (when `admin`) or `user`; returns `false`
    /// (and leaves their role alone) if they already were one.
    /// [`StoreError::NotFound`] if there is no such team.
    pub async fn add_team_member_with_role(
        &self,
        team_id: &str,
        user_id: &str,
        admin: bool,
    ) -> Result<bool, StoreError> {
        self.change_member(team_id, user_id, Some(admin)).await
    }

    /// Removes a member; returns `false` if they were not one.
    /// [`StoreError::NotFound`] if there is no such team.
    pub async fn remove_team_member(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        self.change_member(team_id, user_id, None).await
    }

    /// Adds (`Some(admin)`) or removes (`None`) a member.
    async fn change_member(
        &self,
        team_id: &str,
        user_id: &str,
        add: Option<bool>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let touched = sqlx::query(sql::TEAM_TOUCH)
                .bind(team_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    kind: EntityKind::Team,
                    id: team_id.to_owned(),
                });
            }
            let q = if let Some(admin) = add {
                sqlx::query(sql::TEAM_MEMBER_APPEND)
                    .bind(team_id)
                    .bind(user_id)
                    .bind(now)
                    .bind(member_role(admin))
            } else {
                sqlx::query(sql::TEAM_MEMBER_REMOVE)
                    .bind(team_id)
                    .bind(user_id)
            };
            let changed = q.execute(&mut *tx).await?.rows_affected() > 0;
            if changed {
                emit!(tx, EntityKind::Team, team_id, now);
                tx.commit().await?;
            }
            Ok(changed)
        })
    }

    // -----------------------------------------------------------------------------------------
    // Change feed
    // -----------------------------------------------------------------------------------------

    /// The highest event sequence number (0 when there are none). A replica starting up
    /// reads this first and then follows [`Store::events_since`].
    pub async fn latest_event_seq(&self) -> Result<i64, StoreError> {
        on_pool!(self, |pool, d| {
            Ok(sqlx::query_scalar::<_, i64>(sql::EVENT_LATEST)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Up to `limit` events with `seq > after`, in seq order. See the crate docs: re-read a
    /// window below your last seq and de-duplicate, because commit order is not seq order on
    /// PostgreSQL.
    pub async fn events_since(&self, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        on_pool!(self, |pool, d| {
            let rows = sqlx::query(sql::EVENTS_SINCE)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
            rows.iter().map(event_from_row).collect()
        })
    }

    /// The events among `seqs` that exist now (committed), in seq order. Used to re-check
    /// sequence numbers that were missing when later ones were read (see [`crate::FeedCursor`]).
    pub async fn events_at(&self, seqs: &[i64]) -> Result<Vec<Event>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        on_pool!(self, |pool, d| {
            let mut qb = builder(pool, sql::EVENTS_AT_PREFIX);
            let mut list = qb.separated(", ");
            for s in seqs {
                list.push_bind(*s);
            }
            qb.push(") ORDER BY seq");
            // One shape per list length: not worth a slot in the statement cache.
            qb.build()
                .persistent(false)
                .fetch_all(pool)
                .await?
                .iter()
                .map(event_from_row)
                .collect()
        })
    }

    /// Deletes events older than `older_than_ms` (unix ms); returns how many.
    pub async fn prune_events(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        on_pool!(self, |pool, d| {
            Ok(sqlx::query(sql::EVENTS_PRUNE)
                .bind(older_than_ms)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }

    // -----------------------------------------------------------------------------------------
    // Spend
    // -----------------------------------------------------------------------------------------

    /// The `gatehouse_models` id of each distinct (model, deployment) pair, creating missing
    /// ones. Runs outside the spend transaction (auto-commit), so the cache only ever holds
    /// committed ids.
    async fn model_refs(
        &self,
        records: &[SpendRecord],
    ) -> Result<HashMap<(String, String), i64>, StoreError> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self
                .inner
                .models
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for r in records {
                let k = (r.model.clone(), r.deployment_id.clone());
                if out.contains_key(&k) {
                    continue;
                }
                match cache.get(&k) {
                    Some(id) => {
                        out.insert(k, *id);
                    }
                    None => {
                        out.insert(k.clone(), 0);
                        missing.push(k);
                    }
                }
            }
        }
        for (model, deployment) in missing {
            let id: i64 = on_pool!(self, |pool, d| {
                sqlx::query(sql::MODEL_INSERT)
                    .bind(&model)
                    .bind(&deployment)
                    .execute(pool)
                    .await?;
                sqlx::query_scalar::<_, i64>(sql::MODEL_ID)
                    .bind(&model)
                    .bind(&deployment)
                    .fetch_one(pool)
                    .await?
            });
            self.inner
                .models
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert((model.clone(), deployment.clone()), id);
            out.insert((model, deployment), id);
        }
        Ok(out)
    }

    /// Inserts a batch of spend rows and adds their spend to the keys, users and teams they
    /// name, in one transaction, at most once per `batch_id`: a batch whose id was written
    /// before is skipped (returns 0), so retrying a batch whose commit succeeded but whose
    /// acknowledgement was lost never double-counts. Give every batch a fresh id (see
    /// [`new_batch_id`]) and retry a batch only with its own id. Returns the number of rows
    /// inserted.
    pub async fn insert_spend(
        &self,
        batch_id: &str,
        records: &[SpendRecord],
    ) -> Result<usize, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let refs = self.model_refs(records).await?;
        let now = now_ms();
        let prune = self.batch_prune_due(now);
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let claimed = sqlx::query(sql::SPEND_BATCH_CLAIM)
                .bind(batch_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(0);
            }
            for chunk in records.chunks(SPEND_CHUNK) {
                let mut qb = builder(pool, d.spend_insert);
                qb.push_values(chunk, |mut row, r| {
                    let model_ref = refs
                        .get(&(r.model.clone(), r.deployment_id.clone()))
                        .copied()
                        .unwrap_or(0);
                    row.push_bind(r.request_id.clone())
                        .push_bind(r.token_hash.map(|h| h.to_vec()))
                        .push_bind(r.user_id.clone())
                        .push_bind(r.team_id.clone())
                        .push_bind(model_ref)
                        .push_bind(r.started_at)
                        .push_bind(r.ended_at)
                        .push_bind(r.prompt_tokens)
                        .push_bind(r.completion_tokens)
                        .push_bind(r.cached_tokens)
                        .push_bind(r.spend)
                        .push_bind(r.status);
                });
                // Only full chunks keep their prepared statement: a statement per remainder
                // size would fill sqlx's statement cache with up to 100 large statements
                // (tens of MiB) over time.
                qb.build()
                    .persistent(chunk.len() == SPEND_CHUNK)
                    .execute(&mut *tx)
                    .await?;
            }
            // Aggregate per id; BTreeMaps give every writer the same lock order (no deadlocks
            // between replicas on PostgreSQL).
            let mut by_key: BTreeMap<[u8; 32], i64> = BTreeMap::new();
            let mut by_user: BTreeMap<&str, i64> = BTreeMap::new();
            let mut by_team: BTreeMap<&str, i64> = BTreeMap::new();
            for r in records.iter().filter(|r| r.spend != 0) {
                if let Some(h) = r.token_hash {
                    *by_key.entry(h).or_default() += r.spend;
                }
                if let Some(u) = &r.user_id {
                    *by_user.entry(u.as_str()).or_default() += r.spend;
                }
                if let Some(t) = &r.team_id {
                    *by_team.entry(t.as_str()).or_default() += r.spend;
                }
            }
            for (h, amount) in &by_key {
                sqlx::query(sql::KEY_ADD_SPEND)
                    .bind(h.to_vec())
                    .bind(*amount)
                    .execute(&mut *tx)
                    .await?;
            }
            for (u, amount) in &by_user {
                sqlx::query(sql::USER_ADD_SPEND)
                    .bind(*u)
                    .bind(*amount)
                    .execute(&mut *tx)
                    .await?;
            }
            for (t, amount) in &by_team {
                sqlx::query(sql::TEAM_ADD_SPEND)
                    .bind(*t)
                    .bind(*amount)
                    .execute(&mut *tx)
                    .await?;
            }
            if prune {
                sqlx::query(sql::SPEND_BATCH_PRUNE)
                    .bind(now.saturating_sub(BATCH_ID_RETENTION_MS))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(records.len())
        })
    }

    /// `true` at most once per [`BATCH_PRUNE_EVERY_MS`]: time to forget old batch ids.
    fn batch_prune_due(&self, now: i64) -> bool {
        let last = self.inner.last_batch_prune.load(Ordering::Relaxed);
        now.saturating_sub(last) >= BATCH_PRUNE_EVERY_MS
            && self
                .inner
                .last_batch_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Spend rows matching `q`, newest first, at most `q.limit` (default 1000).
    pub async fn spend_logs(&self, q: &SpendQuery) -> Result<Vec<SpendRecord>, StoreError> {
        self.spend_rows(q, row_limit(q), 0).await
    }

    /// Spend rows matching `q`, newest first: `limit` rows (1..=1000) after skipping `offset`.
    /// `q.limit` is ignored. For paging (`/spend/logs/ui`); pair with
    /// [`Store::spend_totals`] for the total count.
    pub async fn spend_logs_page(
        &self,
        q: &SpendQuery,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<SpendRecord>, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.spend_rows(q, limit, offset).await
    }

    /// Spend rows matching `q`, newest first: `limit` rows after skipping `offset`.
    async fn spend_rows(
        &self,
        q: &SpendQuery,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SpendRecord>, StoreError> {
        on_pool!(self, |pool, d| {
            let mut qb = builder(pool, sql::SPEND_SELECT);
            push_spend_filters(&mut qb, q);
            qb.push(" ORDER BY s.started_at DESC, s.id DESC LIMIT ")
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(offset);
            qb.build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(spend_from_row)
                .collect()
        })
    }

    /// Spend of the rows matching `q`, summed per (UTC day, key, user, deployment), by day
    /// then key, user and model; at most `q.limit` groups (default 1000, at most 100 000).
    /// The filters use the same indexes as [`Store::spend_logs`].
    pub async fn spend_by_day(&self, q: &SpendQuery) -> Result<Vec<SpendDay>, StoreError> {
        let limit = row_limit(q);
        on_pool!(self, |pool, d| {
            let mut qb = builder(pool, sql::SPEND_BY_DAY);
            push_spend_filters(&mut qb, q);
            qb.push(sql::SPEND_BY_DAY_GROUP).push_bind(limit);
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    Ok(SpendDay {
                        day: r.i64("day")?,
                        token_hash: r.opt_bytes("token_hash")?.map(hash_from).transpose()?,
                        user_id: r.opt_string("user_id")?,
                        model: r.string("model")?,
                        deployment_id: r.string("deployment_id")?,
                        spend: r.i64("total_spend")?,
                    })
                })
                .collect()
        })
    }

    /// Totals over the spend rows matching `q` (`limit` ignored).
    pub async fn spend_totals(&self, q: &SpendQuery) -> Result<SpendTotals, StoreError> {
        on_pool!(self, |pool, d| {
            let mut qb = builder(pool, sql::SPEND_TOTALS);
            push_spend_filters(&mut qb, q);
            let row = qb.build().fetch_one(pool).await?;
            totals_from_row(&row)
        })
    }

    /// Total spend (pico-USD) of requests started in `start_ms <= started_at < end_ms`.
    pub async fn global_spend(&self, start_ms: i64, end_ms: i64) -> Result<i64, StoreError> {
        on_pool!(self, |pool, d| {
            Ok(sqlx::query_scalar::<_, i64>(sql::GLOBAL_SPEND)
                .bind(start_ms)
                .bind(end_ms)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Totals of the rows matching `q`, grouped by key, user, team, model or UTC day,
    /// highest spend first, at most `q.limit` groups (default 1000).
    pub async fn spend_grouped(
        &self,
        by: SpendGroupBy,
        q: &SpendQuery,
    ) -> Result<Vec<SpendGroup>, StoreError> {
        let expr = match by {
            SpendGroupBy::Key => "s.token_hash",
            SpendGroupBy::User => "s.user_id",
            SpendGroupBy::Team => "s.team_id",
            SpendGroupBy::Model => "m.model",
            SpendGroupBy::Day => "(s.started_at / 86400000)",
        };
        let limit = row_limit(q);
        let head = format!(
            "SELECT {expr} AS grp, \
             CAST(COALESCE(SUM(s.spend), 0) AS BIGINT) AS total_spend, \
             CAST(COALESCE(SUM(s.prompt_tokens), 0) AS BIGINT) AS total_prompt_tokens, \
             CAST(COALESCE(SUM(s.completion_tokens), 0) AS BIGINT) AS total_completion_tokens, \
             CAST(COUNT(*) AS BIGINT) AS total_requests \
             FROM gatehouse_spend_logs s JOIN gatehouse_models m ON m.id = s.model_ref \
             WHERE 1 = 1"
        );
        on_pool!(self, |pool, d| {
            let mut qb = builder(pool, &head);
            push_spend_filters(&mut qb, q);
            qb.push(format!(
                " GROUP BY {expr} ORDER BY total_spend DESC, grp LIMIT "
            ))
            .push_bind(limit);
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let group = match by {
                        SpendGroupBy::Key => r
                            .opt_bytes("grp")?
                            .map(hash_from)
                            .transpose()?
                            .map(|h| hash_hex(&h)),
                        SpendGroupBy::User | SpendGroupBy::Team | SpendGroupBy::Model => {
                            r.opt_string("grp")?
                        }
                        SpendGroupBy::Day => r.opt_i64("grp")?.map(|day| {
                            let (y, m, d) = civil_from_days(day);
                            format!("{y:04}-{m:02}-{d:02}")
                        }),
                    };
                    Ok(SpendGroup {
                        group,
                        totals: totals_from_row(r)?,
                    })
                })
                .collect()
        })
    }

    // -----------------------------------------------------------------------------------------
    // Budget resets
    // -----------------------------------------------------------------------------------------

    /// For every key, user and team whose `budget_reset_at <= now_ms`: sets spend to 0 and
    /// moves `budget_reset_at` to the first period boundary after `now_ms` (aligned to the
    /// previous reset time; cleared when the duration is gone or unparsable), emitting a
    /// change event. Safe to run on several replicas at once (compare-and-set on
    /// `budget_reset_at`): each record is reset once. Returns what was reset.
    pub async fn reset_due_budgets(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(EntityKind, String)>, StoreError> {
        let tables = [
            (EntityKind::Key, sql::KEYS_DUE, sql::KEY_RESET),
            (EntityKind::User, sql::USERS_DUE, sql::USER_RESET),
            (EntityKind::Team, sql::TEAMS_DUE, sql::TEAM_RESET),
        ];
        let mut reset = Vec::new();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            for (kind, due_sql, reset_sql) in tables {
                let rows = sqlx::query(due_sql)
                    .bind(now_ms)
                    .fetch_all(&mut *tx)
                    .await?;
                for row in rows {
                    let (id_bind, id_text) = if kind == EntityKind::Key {
                        let raw = row.try_get::<Vec<u8>, _>(0).map_err(StoreError::Database)?;
                        let h = hash_from(raw)?;
                        (IdBind::Hash(h.to_vec()), hash_hex(&h))
                    } else {
                        let id: String = row.try_get(0)?;
                        (IdBind::Text(id.clone()), id)
                    };
                    let duration: Option<String> = row.try_get(1)?;
                    let prev: i64 = row.try_get(2)?;
                    let next = duration
                        .as_deref()
                        .and_then(parse_duration)
                        .and_then(|dur| dur.next_after(prev, now_ms));
                    let q = sqlx::query(reset_sql);
                    let q = match id_bind {
                        IdBind::Hash(h) => q.bind(h),
                        IdBind::Text(t) => q.bind(t),
                    };
                    let done = q.bind(prev).bind(next).execute(&mut *tx).await?;
                    if done.rows_affected() > 0 {
                        emit!(tx, kind, &id_text, now_ms);
                        reset.push((kind, id_text));
                    }
                }
            }
            tx.commit().await?;
            Ok(reset)
        })
    }
}

/// The primary key of a row being reset: a key hash or a user/team id.
enum IdBind {
    Hash(Vec<u8>),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_password() {
        let url = "postgres://alice:s3cr3t@db.example:5432/gh";
        assert_eq!(scrub("failed for s3cr3t".into(), url), "failed for ***");
        assert_eq!(scrub("plain".into(), "postgres://alice@db/x"), "plain");
    }

    #[test]
    fn schema_names() {
        assert!(valid_schema_name("gh_test_1"));
        assert!(!valid_schema_name("1abc"));
        assert!(!valid_schema_name("a\"; DROP"));
        assert!(!valid_schema_name(""));
    }

    #[test]
    fn reset_time_on_insert() {
        assert_eq!(reset_at_for(None, None, 1_000).ok().flatten(), None);
        assert_eq!(reset_at_for(None, Some(7), 1_000).ok().flatten(), Some(7));
        assert_eq!(
            reset_at_for(Some("1h"), None, 1_000).ok().flatten(),
            Some(3_601_000)
        );
        assert_eq!(
            reset_at_for(Some("1h"), Some(5), 1_000).ok().flatten(),
            Some(5)
        );
        assert!(reset_at_for(Some("soon"), None, 1_000).is_err());
    }

    #[test]
    fn uuid_v7_carries_its_millisecond() {
        let ms = 1_780_000_000_123u64;
        let id = uuid::Builder::from_unix_timestamp_millis(ms, &[7; 10])
            .into_uuid()
            .hyphenated()
            .to_string();
        assert_eq!(uuid_v7_ms(&id), Some(1_780_000_000_123));
        assert_eq!(uuid_v7_ms(&id.replace('-', "")), Some(1_780_000_000_123));
        assert_eq!(uuid_v7_ms(&uuid::Uuid::new_v4().to_string()), None);
        for bad in [
            "",
            "r1",
            "not-a-uuid",
            "ffffffff-ffff-7fff-bfff-ffffffffffffff",
        ] {
            assert_eq!(uuid_v7_ms(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod send_check {
    //! Compile-time check that the public futures can be spawned (sqlx has futures that are
    //! not `Send`, e.g. multi-statement `raw_sql`).
    use super::*;
    fn assert_send<T: Send>(_: T) {}
    #[allow(dead_code)]
    fn futures_are_send(s: Store, k: KeyRecord) {
        assert_send(Store::connect("x", StoreOptions::default()));
        assert_send(s.migrate_until(i64::MAX));
        assert_send(s.schema_version());
        assert_send(s.insert_key(&k));
        assert_send(s.key_by_hash(&[0; 32]));
        assert_send(s.close());
        assert_send(s.list_keys(&KeyFilter::default(), 1, 1));
        assert_send(s.insert_spend("b", &[]));
        assert_send(s.spend_grouped(SpendGroupBy::Day, &SpendQuery::default()));
        assert_send(s.reset_due_budgets(0));
        assert_send(s.team("t"));
        assert_send(s.add_team_member("t", "u"));
        assert_send(s.events_since(0, 1));
    }
}
