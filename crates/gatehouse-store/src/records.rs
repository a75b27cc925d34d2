//! Records, queries and errors exchanged with the store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which backend a [`Store`](crate::Store) talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The kind of record a change-feed [`Event`] (or a budget reset) refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    /// A virtual key; the id is the lowercase hex of its SHA-256 hash.
    Key,
    /// A user; the id is the `user_id`.
    User,
    /// A team; the id is the `team_id`.
    Team,
}

impl EntityKind {
    /// The string stored in `gatehouse_events.kind`: `key`, `user` or `team`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Key => "key",
            EntityKind::User => "user",
            EntityKind::Team => "team",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "key" => Some(EntityKind::Key),
            "user" => Some(EntityKind::User),
            "team" => Some(EntityKind::Team),
            _ => None,
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A virtual key. Only the SHA-256 hash of the raw key is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// SHA-256 of the raw key; the primary key.
    pub token_hash: [u8; 32],
    /// Display form of the key, e.g. `sk-...abcd`.
    pub key_name: String,
    /// Optional human alias (`key_alias`).
    pub key_alias: Option<String>,
    /// Owning user, if any.
    pub user_id: Option<String>,
    /// Owning team, if any.
    pub team_id: Option<String>,
    /// Models this key may call; empty means all.
    pub models: Vec<String>,
    /// Budget in pico-USD.
    pub max_budget: Option<i64>,
    /// Spend so far in pico-USD (maintained by the store; ignored by [`Store::update_key`](crate::Store::update_key)).
    pub spend: i64,
    /// LiteLLM budget duration (`30s`, `24h`, `7d`, `1mo` …), see [`parse_duration`](crate::parse_duration).
    pub budget_duration: Option<String>,
    /// When spend next resets to 0 (unix ms). Computed on insert/update when a
    /// `budget_duration` is set and this is `None`.
    pub budget_reset_at: Option<i64>,
    /// Requests per minute.
    pub rpm_limit: Option<u64>,
    /// Tokens per minute.
    pub tpm_limit: Option<u64>,
    /// Concurrent requests.
    pub max_parallel_requests: Option<u64>,
    /// Free-form JSON metadata.
    pub metadata: serde_json::Value,
    /// Expiry (unix ms); `None` never expires.
    pub expires_at: Option<i64>,
    /// Blocked keys are refused.
    pub blocked: bool,
    /// Creation time (unix ms); `0` on insert means "now".
    pub created_at: i64,
    /// Last update time (unix ms); set by the store on every write.
    pub updated_at: i64,
}

impl KeyRecord {
    /// A key with the given hash and display name and every other field empty.
    pub fn new(token_hash: [u8; 32], key_name: impl Into<String>) -> Self {
        KeyRecord {
            token_hash,
            key_name: key_name.into(),
            key_alias: None,
            user_id: None,
            team_id: None,
            models: Vec::new(),
            max_budget: None,
            spend: 0,
            budget_duration: None,
            budget_reset_at: None,
            rpm_limit: None,
            tpm_limit: None,
            max_parallel_requests: None,
            metadata: serde_json::Value::Object(serde_json::Map::new()),
            expires_at: None,
            blocked: false,
            created_at: 0,
            updated_at: 0,
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The primary key.
    pub user_id: String,
    /// E-mail address, if known.
    pub user_email: Option<String>,
    /// Optional human alias (`user_alias`).
    pub user_alias: Option<String>,
    /// LiteLLM role: `proxy_admin`, `proxy_admin_viewer`, `internal_user`, …
    pub user_role: String,
    /// Models this user may call; empty means all.
    pub models: Vec<String>,
    /// Budget in pico-USD.
    pub max_budget: Option<i64>,
    /// Spend so far in pico-USD (maintained by the store).
    pub spend: i64,
    /// LiteLLM budget duration.
    pub budget_duration: Option<String>,
    /// When spend next resets (unix ms).
    pub budget_reset_at: Option<i64>,
    /// Requests per minute.
    pub rpm_limit: Option<u64>,
    /// Tokens per minute.
    pub tpm_limit: Option<u64>,
    /// Concurrent requests.
    pub max_parallel_requests: Option<u64>,
    /// Free-form JSON metadata.
    pub metadata: serde_json::Value,
    /// Creation time (unix ms); `0` on insert means "now".
    pub created_at: i64,
}

impl UserRecord {
    /// A user with the given id and role and every other field empty.
    pub fn new(user_id: impl Into<String>, user_role: impl Into<String>) -> Self {
        UserRecord {
            user_id: user_id.into(),
            user_email: None,
            user_alias: None,
            user_role: user_role.into(),
            models: Vec::new(),
            max_budget: None,
            spend: 0,
            budget_duration: None,
            budget_reset_at: None,
            rpm_limit: None,
            tpm_limit: None,
            max_parallel_requests: None,
            metadata: serde_json::Value::Object(serde_json::Map::new()),
            created_at: 0,
        }
    }
}

/// A team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRecord {
    /// The primary key.
    pub team_id: String,
    /// Optional human alias.
    pub team_alias: Option<String>,
    /// Models this team may call; empty means all.
    pub models: Vec<String>,
    /// Budget in pico-USD.
    pub max_budget: Option<i64>,
    /// Spend so far in pico-USD (maintained by the store).
    pub spend: i64,
    /// LiteLLM budget duration.
    pub budget_duration: Option<String>,
    /// When spend next resets (unix ms).
    pub budget_reset_at: Option<i64>,
    /// Requests per minute.
    pub rpm_limit: Option<u64>,
    /// Tokens per minute.
    pub tpm_limit: Option<u64>,
    /// Concurrent requests.
    pub max_parallel_requests: Option<u64>,
    /// Member user ids, in the order they were added.
    pub members: Vec<String>,
    /// The members (a subset of `members`) whose team role is `admin`; every other member
    /// has the role `user` (LiteLLM's `members_with_roles`).
    pub admins: Vec<String>,
    /// Free-form JSON metadata.
    pub metadata: serde_json::Value,
    /// Blocked teams' keys are refused.
    pub blocked: bool,
    /// Creation time (unix ms); `0` on insert means "now".
    pub created_at: i64,
}

impl TeamRecord {
    /// A team with the given id and every other field empty.
    pub fn new(team_id: impl Into<String>) -> Self {
        TeamRecord {
            team_id: team_id.into(),
            team_alias: None,
            models: Vec::new(),
            max_budget: None,
            spend: 0,
            budget_duration: None,
            budget_reset_at: None,
            rpm_limit: None,
            tpm_limit: None,
            max_parallel_requests: None,
            members: Vec::new(),
            admins: Vec::new(),
            metadata: serde_json::Value::Object(serde_json::Map::new()),
            blocked: false,
            created_at: 0,
        }
    }
}

/// One row of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number (increasing, but see the crate docs on commit order).
    pub seq: i64,
    /// What changed.
    pub kind: EntityKind,
    /// Hex key hash, or user/team id.
    pub id: String,
    /// When (unix ms).
    pub at: i64,
}

/// Filter for [`Store::list_keys`](crate::Store::list_keys); `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Only keys of this user.
    pub user_id: Option<String>,
    /// Only keys of this team.
    pub team_id: Option<String>,
    /// Only keys with this alias.
    pub key_alias: Option<String>,
}

/// One request's spend, as written by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendRecord {
    /// Unique request id (the `x-litellm-call-id`, a UUID); inserting it twice is a no-op.
    pub request_id: String,
    /// Hash of the virtual key used, if any.
    pub token_hash: Option<[u8; 32]>,
    /// User charged, if any.
    pub user_id: Option<String>,
    /// Team charged, if any.
    pub team_id: Option<String>,
    /// Public model name.
    pub model: String,
    /// Deployment id (`x-litellm-model-id`).
    pub deployment_id: String,
    /// Request start (unix ms).
    pub started_at: i64,
    /// Request end (unix ms).
    pub ended_at: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Cached prompt tokens (a subset of `prompt_tokens`).
    pub cached_tokens: i64,
    /// Cost in pico-USD.
    pub spend: i64,
    /// HTTP status returned to the client.
    pub status: i32,
}

/// Filter for the spend log queries; `None` fields match everything. Times are a half-open
/// range on `started_at`: `start_ms <= started_at < end_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendQuery {
    /// Only this key.
    pub token_hash: Option<[u8; 32]>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this team.
    pub team_id: Option<String>,
    /// Only this request.
    pub request_id: Option<String>,
    /// Inclusive lower bound on `started_at`.
    pub start_ms: Option<i64>,
    /// Exclusive upper bound on `started_at`.
    pub end_ms: Option<i64>,
    /// At most this many rows, or groups for the per-day and grouped aggregates (default
    /// 1000, at most 100 000); the totals ignore it.
    pub limit: Option<u32>,
}

/// Aggregates over the spend rows matching a [`SpendQuery`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendTotals {
    /// Total spend, pico-USD.
    pub spend: i64,
    /// Total prompt tokens.
    pub prompt_tokens: i64,
    /// Total completion tokens.
    pub completion_tokens: i64,
    /// Number of requests.
    pub requests: i64,
}

/// How [`Store::spend_grouped`](crate::Store::spend_grouped) groups rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGroupBy {
    /// By key; the group is the hex key hash.
    Key,
    /// By user id.
    User,
    /// By team id.
    Team,
    /// By public model name.
    Model,
    /// By UTC day of `started_at`; the group is `YYYY-MM-DD`.
    Day,
}

/// One group of [`Store::spend_grouped`](crate::Store::spend_grouped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendGroup {
    /// The group (see [`SpendGroupBy`]); `None` for rows without a key/user/team.
    pub group: Option<String>,
    /// Totals of the group.
    pub totals: SpendTotals,
}

/// Spend of one (UTC day, key, user, deployment) combination, from
/// [`Store::spend_by_day`](crate::Store::spend_by_day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendDay {
    /// The UTC day of `started_at`, in days since 1970-01-01.
    pub day: i64,
    /// The key, if any.
    pub token_hash: Option<[u8; 32]>,
    /// The user, if any.
    pub user_id: Option<String>,
    /// Public model name.
    pub model: String,
    /// Deployment id.
    pub deployment_id: String,
    /// Total spend, pico-USD.
    pub spend: i64,
}

/// Errors of the store. Messages never contain the database password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be used (the URL itself is not repeated).
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database could not be reached at start-up.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A schema migration failed.
    #[error("database migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// The underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// The database was migrated by a newer gatehouse than this one: running on it could
    /// write what that version no longer reads (or misread what it writes).
    #[error(
        "the database schema is at version {found}, newer than this gatehouse knows ({known}): \
         upgrade gatehouse, or point it at another database"
    )]
    SchemaTooNew {
        /// The highest version recorded in `gatehouse_migrations`.
        found: i64,
        /// [`crate::SCHEMA_VERSION`].
        known: i64,
    },
    /// A database call failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The record does not exist.
    #[error("{kind} not found: {id}")]
    NotFound {
        /// What was looked for.
        kind: EntityKind,
        /// Its id (hex hash for keys).
        id: String,
    },
    /// A record with that id already exists.
    #[error("{kind} already exists: {id}")]
    Conflict {
        /// What collided.
        kind: EntityKind,
        /// Its id (hex hash for keys).
        id: String,
    },
    /// Another key already has this `key_alias` (aliases are unique).
    #[error("key alias already in use: {alias}")]
    AliasTaken {
        /// The alias.
        alias: String,
    },
    /// A value given to the store is invalid (e.g. an unparsable `budget_duration`).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// `true` when the error is a temporary database problem (connection lost, pool
    /// timeout, …) rather than a bad request; the spend writer retries either way.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
            ) | StoreError::Connect(_)
        )
    }
}

/// Lowercase hex of a key hash: the id of a key in the change feed.
pub fn hash_hex(hash: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses 64 hex digits (either case) into a key hash.
pub fn parse_hash_hex(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(bytes[2 * i])? << 4) | nibble(bytes[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let mut h = [0u8; 32];
        for (i, b) in h.iter_mut().enumerate() {
            *b = (i * 37) as u8;
        }
        let s = hash_hex(&h);
        assert_eq!(s.len(), 64);
        assert_eq!(&s[..4], "0025");
        assert_eq!(parse_hash_hex(&s), Some(h));
        assert_eq!(parse_hash_hex(&s.to_uppercase()), Some(h));
        assert_eq!(parse_hash_hex("zz"), None);
        assert_eq!(parse_hash_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn kinds_round_trip() {
        for k in [EntityKind::Key, EntityKind::User, EntityKind::Team] {
            assert_eq!(EntityKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EntityKind::parse("x"), None);
    }
}
