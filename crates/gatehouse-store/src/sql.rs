//! All SQL of the crate, in one place.
//!
//! The schema (DDL) differs between SQLite and PostgreSQL and is written out twice, once per
//! dialect, in [`MIGRATIONS`]. The statements that read and write data are portable: both
//! dialects accept numbered parameters (`$1`, `$2`, …; sqlx binds them by number on SQLite
//! too), `ON CONFLICT … DO NOTHING`, `RETURNING`, `TRUE`/`FALSE` and `CAST(… AS BIGINT)`, so
//! each of them is written once. The few places where the dialects differ go through
//! [`Dialect`].

/// One schema migration: applied once, in order of `version`, each in its own transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Strictly increasing version number; recorded in `gatehouse_migrations`.
    pub version: i64,
    /// Short human-readable name, recorded alongside the version.
    pub name: &'static str,
    /// The migration for SQLite (`;`-separated statements; no `;` inside literals).
    pub sqlite: &'static str,
    /// The migration for PostgreSQL (`;`-separated statements; no `;` inside literals).
    pub postgres: &'static str,
    /// A portable query run just before the migration, in its transaction, whose rows
    /// `(subject TEXT, count BIGINT)` describe data the migration is about to change; each is
    /// logged at `warn` so that an operator learns what happened to their data.
    pub report: Option<(&'static str, &'static str)>,
}

/// Per-dialect statements that cannot be shared.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// Statement that opens a write transaction. SQLite uses `BEGIN IMMEDIATE` so that a
    /// transaction that reads before it writes takes the write lock up front (a deferred
    /// transaction that upgrades later fails with `SQLITE_BUSY` instead of waiting).
    pub begin: &'static str,
    /// Creates the migration bookkeeping table.
    pub create_migrations_table: &'static str,
    /// Prefix of the multi-row spend insert; the `VALUES` tuples are appended by a query
    /// builder. SQLite's `OR FAIL` spares it a statement journal (a copy of every page the
    /// statement touches, kept to undo a half-done multi-row insert): the whole transaction
    /// is rolled back on any error anyway.
    pub spend_insert: &'static str,
}

pub(crate) const SQLITE: Dialect = Dialect {
    begin: "BEGIN IMMEDIATE",
    spend_insert: "INSERT OR FAIL INTO gatehouse_spend_logs (request_id, token_hash, user_id, \
        team_id, model_ref, started_at, ended_at, prompt_tokens, completion_tokens, \
        cached_tokens, spend, status) ",
    create_migrations_table: "CREATE TABLE IF NOT EXISTS gatehouse_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT    NOT NULL,
        applied_at INTEGER NOT NULL
    )",
};

pub(crate) const POSTGRES: Dialect = Dialect {
    begin: "BEGIN",
    spend_insert: "INSERT INTO gatehouse_spend_logs (request_id, token_hash, user_id, team_id, \
        model_ref, started_at, ended_at, prompt_tokens, completion_tokens, cached_tokens, \
        spend, status) ",
    create_migrations_table: "CREATE TABLE IF NOT EXISTS gatehouse_migrations (
        version    BIGINT PRIMARY KEY,
        name       TEXT   NOT NULL,
        applied_at BIGINT NOT NULL
    )",
};

/// Key of the PostgreSQL advisory lock held while migrating ("gatehous" in ASCII).
pub(crate) const PG_MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573;

/// The schema, oldest first. Never edit a released migration: append a new one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sqlite: r#"
CREATE TABLE gatehouse_keys (
    token_hash            BLOB    PRIMARY KEY,
    key_name              TEXT    NOT NULL,
    key_alias             TEXT,
    user_id               TEXT,
    team_id               TEXT,
    models                TEXT    NOT NULL DEFAULT '[]',
    max_budget            INTEGER,
    spend                 INTEGER NOT NULL DEFAULT 0,
    budget_duration       TEXT,
    budget_reset_at       INTEGER,
    rpm_limit             INTEGER,
    tpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    metadata              TEXT    NOT NULL DEFAULT '{}',
    expires_at            INTEGER,
    blocked               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX gatehouse_keys_user_id ON gatehouse_keys (user_id);
CREATE INDEX gatehouse_keys_team_id ON gatehouse_keys (team_id);
CREATE INDEX gatehouse_keys_key_alias ON gatehouse_keys (key_alias);
CREATE INDEX gatehouse_keys_budget_reset_at ON gatehouse_keys (budget_reset_at);

CREATE TABLE gatehouse_users (
    user_id               TEXT    PRIMARY KEY,
    user_email            TEXT,
    user_role             TEXT    NOT NULL,
    models                TEXT    NOT NULL DEFAULT '[]',
    max_budget            INTEGER,
    spend                 INTEGER NOT NULL DEFAULT 0,
    budget_duration       TEXT,
    budget_reset_at       INTEGER,
    rpm_limit             INTEGER,
    tpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    metadata              TEXT    NOT NULL DEFAULT '{}',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX gatehouse_users_budget_reset_at ON gatehouse_users (budget_reset_at);

CREATE TABLE gatehouse_teams (
    team_id               TEXT    PRIMARY KEY,
    team_alias            TEXT,
    models                TEXT    NOT NULL DEFAULT '[]',
    max_budget            INTEGER,
    spend                 INTEGER NOT NULL DEFAULT 0,
    budget_duration       TEXT,
    budget_reset_at       INTEGER,
    rpm_limit             INTEGER,
    tpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    metadata              TEXT    NOT NULL DEFAULT '{}',
    blocked               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX gatehouse_teams_budget_reset_at ON gatehouse_teams (budget_reset_at);

CREATE TABLE gatehouse_team_members (
    team_id  TEXT    NOT NULL REFERENCES gatehouse_teams (team_id) ON DELETE CASCADE,
    user_id  TEXT    NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX gatehouse_team_members_user_id ON gatehouse_team_members (user_id);

CREATE TABLE gatehouse_events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT    NOT NULL,
    id   TEXT    NOT NULL,
    at   INTEGER NOT NULL
);
CREATE INDEX gatehouse_events_at ON gatehouse_events (at);

CREATE TABLE gatehouse_models (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    model         TEXT    NOT NULL,
    deployment_id TEXT    NOT NULL,
    UNIQUE (model, deployment_id)
);

CREATE TABLE gatehouse_spend_logs (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT    NOT NULL UNIQUE,
    token_hash        BLOB,
    user_id           TEXT,
    team_id           TEXT,
    model_ref         INTEGER NOT NULL REFERENCES gatehouse_models (id),
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    spend             INTEGER NOT NULL,
    status            INTEGER NOT NULL
);
CREATE INDEX gatehouse_spend_logs_key_time ON gatehouse_spend_logs (token_hash, started_at);
CREATE INDEX gatehouse_spend_logs_user_time ON gatehouse_spend_logs (user_id, started_at);
CREATE INDEX gatehouse_spend_logs_team_time ON gatehouse_spend_logs (team_id, started_at);
CREATE INDEX gatehouse_spend_logs_time ON gatehouse_spend_logs (started_at);
"#,
        postgres: r#"
CREATE TABLE gatehouse_keys (
    token_hash            BYTEA   PRIMARY KEY,
    key_name              TEXT    NOT NULL,
    key_alias             TEXT,
    user_id               TEXT,
    team_id               TEXT,
    models                TEXT    NOT NULL DEFAULT '[]',
    max_budget            BIGINT,
    spend                 BIGINT  NOT NULL DEFAULT 0,
    budget_duration       TEXT,
    budget_reset_at       BIGINT,
    rpm_limit             BIGINT,
    tpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    metadata              TEXT    NOT NULL DEFAULT '{}',
    expires_at            BIGINT,
    blocked               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);
CREATE INDEX gatehouse_keys_user_id ON gatehouse_keys (user_id);
CREATE INDEX gatehouse_keys_team_id ON gatehouse_keys (team_id);
CREATE INDEX gatehouse_keys_key_alias ON gatehouse_keys (key_alias);
CREATE INDEX gatehouse_keys_budget_reset_at ON gatehouse_keys (budget_reset_at);

CREATE TABLE gatehouse_users (
    user_id               TEXT    PRIMARY KEY,
    user_email            TEXT,
    user_role             TEXT    NOT NULL,
    models                TEXT    NOT NULL DEFAULT '[]',
    max_budget            BIGINT,
    spend                 BIGINT  NOT NULL DEFAULT 0,
    budget_duration       TEXT,
    budget_reset_at       BIGINT,
    rpm_limit             BIGINT,
    tpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    metadata              TEXT    NOT NULL DEFAULT '{}',
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);
CREATE INDEX gatehouse_users_budget_reset_at ON gatehouse_users (budget_reset_at);

CREATE TABLE gatehouse_teams (
    team_id               TEXT    PRIMARY KEY,
    team_alias            TEXT,
    models                TEXT    NOT NULL DEFAULT '[]',
    max_budget            BIGINT,
    spend                 BIGINT  NOT NULL DEFAULT 0,
    budget_duration       TEXT,
    budget_reset_at       BIGINT,
    rpm_limit             BIGINT,
    tpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    metadata              TEXT    NOT NULL DEFAULT '{}',
    blocked               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);
CREATE INDEX gatehouse_teams_budget_reset_at ON gatehouse_teams (budget_reset_at);

CREATE TABLE gatehouse_team_members (
    team_id  TEXT   NOT NULL REFERENCES gatehouse_teams (team_id) ON DELETE CASCADE,
    user_id  TEXT   NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX gatehouse_team_members_user_id ON gatehouse_team_members (user_id);

CREATE TABLE gatehouse_events (
    seq  BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT   NOT NULL,
    id   TEXT   NOT NULL,
    at   BIGINT NOT NULL
);
CREATE INDEX gatehouse_events_at ON gatehouse_events (at);

CREATE TABLE gatehouse_models (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model         TEXT   NOT NULL,
    deployment_id TEXT   NOT NULL,
    UNIQUE (model, deployment_id)
);

CREATE TABLE gatehouse_spend_logs (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    request_id        TEXT    NOT NULL UNIQUE,
    token_hash        BYTEA,
    user_id           TEXT,
    team_id           TEXT,
    model_ref         BIGINT  NOT NULL REFERENCES gatehouse_models (id),
    started_at        BIGINT  NOT NULL,
    ended_at          BIGINT  NOT NULL,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    cached_tokens     BIGINT  NOT NULL,
    spend             BIGINT  NOT NULL,
    status            INTEGER NOT NULL
);
CREATE INDEX gatehouse_spend_logs_key_time ON gatehouse_spend_logs (token_hash, started_at);
CREATE INDEX gatehouse_spend_logs_user_time ON gatehouse_spend_logs (user_id, started_at);
CREATE INDEX gatehouse_spend_logs_team_time ON gatehouse_spend_logs (team_id, started_at);
CREATE INDEX gatehouse_spend_logs_time ON gatehouse_spend_logs (started_at);
"#,
        report: None,
    },
    // LiteLLM requires key aliases to be unique (`_enforce_unique_key_alias`). Keys created
    // before this migration may share one: the oldest key (by `created_at`, then hash) keeps
    // it, every other gets `<alias>-dup-<first 8 hex digits of its token>`, and the report
    // below logs each alias concerned. Should a renamed alias itself be taken, creating the
    // unique index fails and start-up stops with that error.
    Migration {
        version: 2,
        name: "unique key aliases",
        sqlite: r#"
UPDATE gatehouse_keys SET key_alias = key_alias || '-dup-' || lower(substr(hex(token_hash), 1, 8))
WHERE key_alias IS NOT NULL AND EXISTS (
    SELECT 1 FROM gatehouse_keys o
    WHERE o.key_alias = gatehouse_keys.key_alias
      AND (o.created_at < gatehouse_keys.created_at
           OR (o.created_at = gatehouse_keys.created_at AND o.token_hash < gatehouse_keys.token_hash))
);
DROP INDEX gatehouse_keys_key_alias;
CREATE UNIQUE INDEX gatehouse_keys_key_alias ON gatehouse_keys (key_alias);
"#,
        postgres: r#"
UPDATE gatehouse_keys SET key_alias = key_alias || '-dup-' || encode(substring(token_hash from 1 for 4), 'hex')
WHERE key_alias IS NOT NULL AND EXISTS (
    SELECT 1 FROM gatehouse_keys o
    WHERE o.key_alias = gatehouse_keys.key_alias
      AND (o.created_at < gatehouse_keys.created_at
           OR (o.created_at = gatehouse_keys.created_at AND o.token_hash < gatehouse_keys.token_hash))
);
DROP INDEX gatehouse_keys_key_alias;
CREATE UNIQUE INDEX gatehouse_keys_key_alias ON gatehouse_keys (key_alias);
"#,
        report: Some((
            "SELECT key_alias AS subject, CAST(COUNT(*) AS BIGINT) AS n FROM gatehouse_keys \
             WHERE key_alias IS NOT NULL GROUP BY key_alias HAVING COUNT(*) > 1 \
             ORDER BY key_alias LIMIT 1000",
            "key_alias was shared by several keys: the oldest keeps it, the others are renamed \
             to <alias>-dup-<first 8 hex digits of their token>",
        )),
    },
    // `user_alias` on users (LiteLLM's /user/new field) and a LiteLLM team role (`admin` or
    // `user`) per team member.
    Migration {
        version: 3,
        name: "user alias and team member roles",
        sqlite: r#"
ALTER TABLE gatehouse_users ADD COLUMN user_alias TEXT;
ALTER TABLE gatehouse_team_members ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
"#,
        postgres: r#"
ALTER TABLE gatehouse_users ADD COLUMN user_alias TEXT;
ALTER TABLE gatehouse_team_members ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
"#,
        report: None,
    },
    // Spend batches are written at most once by their batch id (one row per batch in
    // `gatehouse_spend_batches`), instead of row by row through a unique `request_id` with
    // `RETURNING`: the unique index cost a B-tree insert per row, and `RETURNING` sent every
    // row back through sqlx's SQLite worker thread, together about two thirds of the CPU a
    // spend row cost. `request_id` lookups use the time index instead (request ids are
    // UUIDv7, which carry their arrival time). SQLite cannot drop a column's UNIQUE, so the
    // table is rebuilt — without the foreign key on `model_ref`, whose immediate check made
    // every multi-row insert keep a statement journal (`model_ref` is only ever an id the
    // store has just read or inserted in `gatehouse_models`). On PostgreSQL the unique
    // constraint on `request_id` stays for now: replicas of the previous version, still
    // running during a rolling upgrade, insert with `ON CONFLICT (request_id)`, which needs
    // it (and its cost is the database server's, not the gateway's). A later migration may
    // drop it once no such replica can be left.
    Migration {
        version: 4,
        name: "spend batches written once by batch id",
        sqlite: r#"
CREATE TABLE gatehouse_spend_batches (
    batch_id   TEXT    PRIMARY KEY,
    written_at INTEGER NOT NULL
);
CREATE INDEX gatehouse_spend_batches_written_at ON gatehouse_spend_batches (written_at);
CREATE TABLE gatehouse_spend_logs_v4 (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT    NOT NULL,
    token_hash        BLOB,
    user_id           TEXT,
    team_id           TEXT,
    model_ref         INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    spend             INTEGER NOT NULL,
    status            INTEGER NOT NULL
);
INSERT INTO gatehouse_spend_logs_v4 (id, request_id, token_hash, user_id, team_id, model_ref,
    started_at, ended_at, prompt_tokens, completion_tokens, cached_tokens, spend, status)
SELECT id, request_id, token_hash, user_id, team_id, model_ref, started_at, ended_at,
    prompt_tokens, completion_tokens, cached_tokens, spend, status FROM gatehouse_spend_logs;
DROP TABLE gatehouse_spend_logs;
ALTER TABLE gatehouse_spend_logs_v4 RENAME TO gatehouse_spend_logs;
CREATE INDEX gatehouse_spend_logs_key_time ON gatehouse_spend_logs (token_hash, started_at);
CREATE INDEX gatehouse_spend_logs_user_time ON gatehouse_spend_logs (user_id, started_at);
CREATE INDEX gatehouse_spend_logs_team_time ON gatehouse_spend_logs (team_id, started_at);
CREATE INDEX gatehouse_spend_logs_time ON gatehouse_spend_logs (started_at);
"#,
        postgres: r#"
CREATE TABLE gatehouse_spend_batches (
    batch_id   TEXT   PRIMARY KEY,
    written_at BIGINT NOT NULL
);
CREATE INDEX gatehouse_spend_batches_written_at ON gatehouse_spend_batches (written_at);
"#,
        report: None,
    },
];

/// The schema version a store has once every migration ran (the last migration's version).
pub const SCHEMA_VERSION: i64 = match MIGRATIONS.last() {
    Some(m) => m.version,
    None => 0,
};

// ---------------------------------------------------------------------------------------------
// Migrations bookkeeping
// ---------------------------------------------------------------------------------------------

pub(crate) const MIGRATION_APPLIED: &str =
    "SELECT COUNT(*) FROM gatehouse_migrations WHERE version = $1";
pub(crate) const MIGRATION_LATEST: &str =
    "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM gatehouse_migrations";
pub(crate) const MIGRATION_RECORD: &str =
    "INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES ($1, $2, $3)";

// ---------------------------------------------------------------------------------------------
// Change feed
// ---------------------------------------------------------------------------------------------

pub(crate) const EVENT_INSERT: &str =
    "INSERT INTO gatehouse_events (kind, id, at) VALUES ($1, $2, $3)";
pub(crate) const EVENT_LATEST: &str =
    "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM gatehouse_events";
pub(crate) const EVENTS_SINCE: &str =
    "SELECT seq, kind, id, at FROM gatehouse_events WHERE seq > $1 ORDER BY seq LIMIT $2";
/// Followed by a comma-separated list of binds and `)`.
pub(crate) const EVENTS_AT_PREFIX: &str =
    "SELECT seq, kind, id, at FROM gatehouse_events WHERE seq IN (";
pub(crate) const EVENTS_PRUNE: &str = "DELETE FROM gatehouse_events WHERE at < $1";

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

pub(crate) const KEY_COLUMNS: &str = "token_hash, key_name, key_alias, user_id, team_id, models, \
     max_budget, spend, budget_duration, budget_reset_at, rpm_limit, tpm_limit, \
     max_parallel_requests, metadata, expires_at, blocked, created_at, updated_at";

pub(crate) const KEY_INSERT: &str = "INSERT INTO gatehouse_keys (token_hash, key_name, key_alias, \
     user_id, team_id, models, max_budget, spend, budget_duration, budget_reset_at, rpm_limit, \
     tpm_limit, max_parallel_requests, metadata, expires_at, blocked, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

pub(crate) const KEY_BY_HASH: &str = "SELECT token_hash, key_name, key_alias, user_id, team_id, \
     models, max_budget, spend, budget_duration, budget_reset_at, rpm_limit, tpm_limit, \
     max_parallel_requests, metadata, expires_at, blocked, created_at, updated_at \
     FROM gatehouse_keys WHERE token_hash = $1";

/// Whole-record update; deliberately leaves `spend` (owned by the spend writer) and
/// `created_at` alone.
pub(crate) const KEY_UPDATE: &str = "UPDATE gatehouse_keys SET key_name = $2, key_alias = $3, \
     user_id = $4, team_id = $5, models = $6, max_budget = $7, budget_duration = $8, \
     budget_reset_at = $9, rpm_limit = $10, tpm_limit = $11, max_parallel_requests = $12, \
     metadata = $13, expires_at = $14, blocked = $15, updated_at = $16 WHERE token_hash = $1";

pub(crate) const KEY_SET_BLOCKED: &str =
    "UPDATE gatehouse_keys SET blocked = $2, updated_at = $3 WHERE token_hash = $1";

pub(crate) const KEY_DELETE: &str =
    "DELETE FROM gatehouse_keys WHERE token_hash = $1 RETURNING token_hash";

pub(crate) const KEY_REGENERATE: &str = "UPDATE gatehouse_keys SET token_hash = $2, key_name = $3, \
     updated_at = $4 WHERE token_hash = $1";

pub(crate) const KEYS_OF_USER: &str = "SELECT token_hash, key_name, key_alias, user_id, team_id, \
     models, max_budget, spend, budget_duration, budget_reset_at, rpm_limit, tpm_limit, \
     max_parallel_requests, metadata, expires_at, blocked, created_at, updated_at \
     FROM gatehouse_keys WHERE user_id = $1 ORDER BY created_at, token_hash";

pub(crate) const KEY_BY_ALIAS: &str = "SELECT token_hash FROM gatehouse_keys WHERE key_alias = $1";

pub(crate) const KEY_ADD_SPEND: &str =
    "UPDATE gatehouse_keys SET spend = spend + $2 WHERE token_hash = $1";

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

pub(crate) const USER_INSERT: &str = "INSERT INTO gatehouse_users (user_id, user_email, user_role, \
     models, max_budget, spend, budget_duration, budget_reset_at, rpm_limit, tpm_limit, \
     max_parallel_requests, metadata, created_at, updated_at, user_alias) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

pub(crate) const USER_BY_ID: &str = "SELECT user_id, user_email, user_alias, user_role, models, \
     max_budget, spend, budget_duration, budget_reset_at, rpm_limit, tpm_limit, \
     max_parallel_requests, metadata, created_at FROM gatehouse_users WHERE user_id = $1";

/// Whole-record update; leaves `spend` and `created_at` alone.
pub(crate) const USER_UPDATE: &str = "UPDATE gatehouse_users SET user_email = $2, user_role = $3, \
     models = $4, max_budget = $5, budget_duration = $6, budget_reset_at = $7, rpm_limit = $8, \
     tpm_limit = $9, max_parallel_requests = $10, metadata = $11, updated_at = $12, \
     user_alias = $13 WHERE user_id = $1";

pub(crate) const USER_ADD_SPEND: &str =
    "UPDATE gatehouse_users SET spend = spend + $2 WHERE user_id = $1";

// ---------------------------------------------------------------------------------------------
// Teams
// ---------------------------------------------------------------------------------------------

pub(crate) const TEAM_INSERT: &str = "INSERT INTO gatehouse_teams (team_id, team_alias, models, \
     max_budget, spend, budget_duration, budget_reset_at, rpm_limit, tpm_limit, \
     max_parallel_requests, metadata, blocked, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

pub(crate) const TEAM_BY_ID: &str = "SELECT team_id, team_alias, models, max_budget, spend, \
     budget_duration, budget_reset_at, rpm_limit, tpm_limit, max_parallel_requests, metadata, \
     blocked, created_at FROM gatehouse_teams WHERE team_id = $1";

/// Whole-record update (members excluded); leaves `spend` and `created_at` alone.
pub(crate) const TEAM_UPDATE: &str = "UPDATE gatehouse_teams SET team_alias = $2, models = $3, \
     max_budget = $4, budget_duration = $5, budget_reset_at = $6, rpm_limit = $7, \
     tpm_limit = $8, max_parallel_requests = $9, metadata = $10, blocked = $11, \
     updated_at = $12 WHERE team_id = $1";

pub(crate) const TEAM_TOUCH: &str = "UPDATE gatehouse_teams SET updated_at = $2 WHERE team_id = $1";

pub(crate) const TEAM_MEMBERS: &str = "SELECT user_id, role FROM gatehouse_team_members \
     WHERE team_id = $1 ORDER BY added_at, user_id";

pub(crate) const TEAM_MEMBER_ADD: &str = "INSERT INTO gatehouse_team_members (team_id, user_id, \
     added_at, role) VALUES ($1, $2, $3, $4) ON CONFLICT (team_id, user_id) DO NOTHING";

/// Adds a member after the team's current ones: `added_at` (which orders members) is `$3`,
/// or one past the latest member's when that is not earlier — `insert_team` gives its
/// members consecutive values from its own `now`, which a member added in the same
/// millisecond would otherwise sort before.
pub(crate) const TEAM_MEMBER_APPEND: &str = "INSERT INTO gatehouse_team_members (team_id, \
     user_id, added_at, role) \
     SELECT $1, $2, CASE WHEN m.last IS NULL OR m.last < $3 THEN $3 ELSE m.last + 1 END, $4 \
     FROM (SELECT MAX(added_at) AS last FROM gatehouse_team_members WHERE team_id = $1) m \
     WHERE true ON CONFLICT (team_id, user_id) DO NOTHING";

pub(crate) const TEAM_MEMBER_REMOVE: &str =
    "DELETE FROM gatehouse_team_members WHERE team_id = $1 AND user_id = $2";

pub(crate) const TEAMS_OF_USER: &str =
    "SELECT team_id FROM gatehouse_team_members WHERE user_id = $1 ORDER BY added_at, team_id";

pub(crate) const TEAM_ADD_SPEND: &str =
    "UPDATE gatehouse_teams SET spend = spend + $2 WHERE team_id = $1";

// ---------------------------------------------------------------------------------------------
// Spend
// ---------------------------------------------------------------------------------------------

pub(crate) const MODEL_INSERT: &str = "INSERT INTO gatehouse_models (model, deployment_id) \
     VALUES ($1, $2) ON CONFLICT (model, deployment_id) DO NOTHING";
pub(crate) const MODEL_ID: &str =
    "SELECT id FROM gatehouse_models WHERE model = $1 AND deployment_id = $2";

/// Claims a spend batch id; no row changed means the batch was written before.
pub(crate) const SPEND_BATCH_CLAIM: &str = "INSERT INTO gatehouse_spend_batches (batch_id, written_at) \
     VALUES ($1, $2) ON CONFLICT (batch_id) DO NOTHING";
/// Forgets batch ids older than a cutoff (a batch is retried for as long as the writer lives,
/// so ids are kept far longer than any retry can take).
pub(crate) const SPEND_BATCH_PRUNE: &str =
    "DELETE FROM gatehouse_spend_batches WHERE written_at < $1";

/// Prefix of the spend log query; `WHERE` clauses are appended by a query builder.
pub(crate) const SPEND_SELECT: &str = "SELECT s.request_id, s.token_hash, s.user_id, s.team_id, \
     m.model, m.deployment_id, s.started_at, s.ended_at, s.prompt_tokens, s.completion_tokens, \
     s.cached_tokens, s.spend, s.status \
     FROM gatehouse_spend_logs s JOIN gatehouse_models m ON m.id = s.model_ref WHERE 1 = 1";

/// Prefix of the spend aggregation; `WHERE` clauses are appended by a query builder.
pub(crate) const SPEND_TOTALS: &str = "SELECT \
     CAST(COALESCE(SUM(s.spend), 0) AS BIGINT) AS total_spend, \
     CAST(COALESCE(SUM(s.prompt_tokens), 0) AS BIGINT) AS total_prompt_tokens, \
     CAST(COALESCE(SUM(s.completion_tokens), 0) AS BIGINT) AS total_completion_tokens, \
     CAST(COUNT(*) AS BIGINT) AS total_requests FROM gatehouse_spend_logs s WHERE 1 = 1";

/// Prefix of the per-day spend summary (`/spend/logs` with `summarize`); `WHERE` clauses are
/// appended by a query builder, then [`SPEND_BY_DAY_GROUP`] and the limit.
pub(crate) const SPEND_BY_DAY: &str = "SELECT CAST(s.started_at / 86400000 AS BIGINT) AS day, \
     s.token_hash, s.user_id, m.model, m.deployment_id, \
     CAST(COALESCE(SUM(s.spend), 0) AS BIGINT) AS total_spend \
     FROM gatehouse_spend_logs s JOIN gatehouse_models m ON m.id = s.model_ref WHERE 1 = 1";
pub(crate) const SPEND_BY_DAY_GROUP: &str = " GROUP BY CAST(s.started_at / 86400000 AS BIGINT), \
     s.token_hash, s.user_id, m.model, m.deployment_id \
     ORDER BY day, m.model, m.deployment_id LIMIT ";

pub(crate) const GLOBAL_SPEND: &str = "SELECT CAST(COALESCE(SUM(spend), 0) AS BIGINT) \
     FROM gatehouse_spend_logs WHERE started_at >= $1 AND started_at < $2";

// ---------------------------------------------------------------------------------------------
// Budget resets
// ---------------------------------------------------------------------------------------------

pub(crate) const KEYS_DUE: &str = "SELECT token_hash, budget_duration, budget_reset_at \
     FROM gatehouse_keys WHERE budget_reset_at IS NOT NULL AND budget_reset_at <= $1";
pub(crate) const USERS_DUE: &str = "SELECT user_id, budget_duration, budget_reset_at \
     FROM gatehouse_users WHERE budget_reset_at IS NOT NULL AND budget_reset_at <= $1";
pub(crate) const TEAMS_DUE: &str = "SELECT team_id, budget_duration, budget_reset_at \
     FROM gatehouse_teams WHERE budget_reset_at IS NOT NULL AND budget_reset_at <= $1";

/// Compare-and-set on `budget_reset_at` so that two replicas resetting at once reset once.
pub(crate) const KEY_RESET: &str = "UPDATE gatehouse_keys SET spend = 0, budget_reset_at = $3 \
     WHERE token_hash = $1 AND budget_reset_at = $2";
pub(crate) const USER_RESET: &str = "UPDATE gatehouse_users SET spend = 0, budget_reset_at = $3 \
     WHERE user_id = $1 AND budget_reset_at = $2";
pub(crate) const TEAM_RESET: &str = "UPDATE gatehouse_teams SET spend = 0, budget_reset_at = $3 \
     WHERE team_id = $1 AND budget_reset_at = $2";
