//! gatehouse's persistent state: virtual keys, users, teams, spend logs and a change feed.
//!
//! # Backends
//! [`Store::connect`] takes `sqlite://path` (the default deployment: one file, created if
//! missing, WAL journal, `busy_timeout`, foreign keys on) or `postgres://…` /
//! `postgresql://…` (several replicas sharing one database). Versioned migrations run at
//! start-up (see [Migrations](#migrations)). This crate is **not** on the request hot path:
//! the gateway caches keys in memory, invalidates them from the change feed, and writes spend
//! in batches through [`SpendWriter`].
//!
//! # Units
//! * **Money** is `i64` pico-USD (1 USD = 1e12) everywhere: budgets, spend, totals.
//! * **Times** are unix milliseconds (`i64`).
//! * **Key hashes** are 32-byte SHA-256 digests of the raw key (`[u8; 32]`); the raw key is
//!   never stored. In the change feed a key is named by the lowercase hex of its hash
//!   ([`hash_hex`]).
//!
//! # Tables
//! | table | content |
//! |---|---|
//! | `gatehouse_migrations(version, name, applied_at)` | applied schema migrations |
//! | `gatehouse_keys` | virtual keys, primary key `token_hash` (BLOB / BYTEA); `key_alias` unique (NULLs allowed) |
//! | `gatehouse_users` | users, primary key `user_id` |
//! | `gatehouse_teams` | teams, primary key `team_id` |
//! | `gatehouse_team_members(team_id, user_id, added_at, role)` | team membership; `role` is LiteLLM's `admin` or `user` |
//! | `gatehouse_events(seq, kind, id, at)` | the change feed |
//! | `gatehouse_models(id, model, deployment_id)` | dictionary of (public model, deployment) pairs referenced by spend rows |
//! | `gatehouse_spend_logs` | one compact row per request; indexed by (token_hash, started_at), (user_id, started_at), (team_id, started_at), (started_at); a `request_id` (a UUIDv7) is found through the time index |
//! | `gatehouse_spend_batches(batch_id, written_at)` | ids of the spend batches written (each batch is written at most once); pruned after 7 days |
//!
//! `models` and `metadata` columns hold JSON text. `spend` on keys, users and teams is only
//! ever changed by [`Store::insert_spend`] (which adds the spend of the log rows it inserts,
//! in the same transaction, once per batch id) and by [`Store::reset_due_budgets`]; the whole-record
//! `update_*` methods never overwrite it, so a concurrent admin update cannot lose spend.
//!
//! # Change feed contract
//! Every write to a key, user or team (insert, update, block/unblock, delete, regenerate,
//! membership change, budget reset) inserts, **in the same transaction**, a row
//! `(seq, kind, id, at)` into `gatehouse_events`, where `kind` is `key`, `user` or `team` and
//! `id` the hex key hash or the user/team id. A replica that caches these records polls
//! [`Store::events_since`] and drops the cached entries named by the events it sees.
//!
//! Readers must tolerate gaps: on PostgreSQL `seq` is assigned when a row is inserted, not
//! when its transaction commits, so an event with a *lower* seq can become visible after one
//! with a higher seq. [`FeedCursor`] handles this: it remembers every sequence number it
//! skipped over and asks for it again ([`Store::events_at`]) on each poll until it appears
//! or is older than [`DEFAULT_GAP_TTL`] (a gap may be permanent: a rolled-back transaction).
//! Readers should still treat cache entries as valid for a bounded time. Invalidation is
//! idempotent, so reading an event twice is harmless. Old events are removed with
//! [`Store::prune_events`].
//!
//! # Migrations
//! Migrations are `(version, name, sqlite_sql, postgres_sql)` constants applied in order, each
//! in its own transaction that also records it in `gatehouse_migrations`; connecting twice is
//! a no-op the second time. On PostgreSQL the runner holds `pg_advisory_lock` while migrating,
//! so replicas starting together do not race; on SQLite the transaction is `BEGIN IMMEDIATE`.
//! A migration that rewrites data first logs, at `warn`, what it is about to change (migration
//! 2 renames keys whose `key_alias` another, older key has: `<alias>-dup-<8 hex digits of the
//! token>`). The current version is [`SCHEMA_VERSION`].
//!
//! # Errors
//! Every fallible call returns [`StoreError`]. Its messages never contain the database
//! password (the connection URL is never included, and connection errors are scrubbed).

mod duration;
mod feed;
mod records;
mod spill;
mod sql;
mod store;
mod writer;

pub use duration::{BudgetDuration, parse_duration};
pub use feed::{DEFAULT_GAP_TTL, FeedCursor, MAX_GAPS};
pub use records::{
    Backend, EntityKind, Event, KeyFilter, KeyRecord, SpendDay, SpendGroup, SpendGroupBy,
    SpendQuery, SpendRecord, SpendTotals, StoreError, TeamRecord, UserRecord, hash_hex,
    parse_hash_hex,
};
pub use spill::{Replayed, SpillError, replay_spills, write_spill};
pub use sql::SCHEMA_VERSION;
pub use store::{Store, StoreOptions, new_batch_id};
pub use writer::{
    RecordError, SpendBatch, SpendSink, SpendTicket, SpendWriter, Unflushed, WriterConfig,
};
