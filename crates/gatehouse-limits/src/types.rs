//! Public value types: scopes, limits, budgets, refusals, errors and the Redis URL.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::IntoConnectionInfo;

/// A counting scope such as `key:<hash>`, `team:<id>` or `deployment:<id>`.
///
/// Cheap to clone (shared); its hash is computed once, so build it once per key, team or
/// deployment (e.g. in the key cache) and reuse it on every request.
#[derive(Clone)]
pub struct Scope(Arc<ScopeInner>);

struct ScopeInner {
    name: Box<str>,
    hash: u64,
}

fn scope_hasher() -> &'static std::collections::hash_map::RandomState {
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    STATE.get_or_init(std::collections::hash_map::RandomState::new)
}

impl Scope {
    /// A scope with this name.
    pub fn new(name: impl Into<Box<str>>) -> Self {
        let name = name.into();
        let hash = scope_hasher().hash_one(&*name);
        Self(Arc::new(ScopeInner { name, hash }))
    }

    /// The scope's name.
    pub fn as_str(&self) -> &str {
        &self.0.name
    }

    pub(crate) fn hash64(&self) -> u64 {
        self.0.hash
    }
}

impl From<&str> for Scope {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Scope {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash && self.0.name == other.0.name)
    }
}

impl Eq for Scope {}

impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0.name, f)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.name)
    }
}

/// A per-minute (rpm, tpm) or concurrency (parallel) limit on one scope.
#[derive(Debug, Clone, Copy)]
pub struct Limit<'a> {
    /// What is counted.
    pub scope: &'a Scope,
    /// The limit (requests or tokens per minute, or requests in flight).
    pub limit: u64,
}

/// A budget on one scope for its current period.
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    /// Whose budget (e.g. `key:<hash>`, `team:<id>`, `user:<id>`).
    pub scope: &'a Scope,
    /// The budget, in pico-dollars (clamped to `0..=MAX_PICO`).
    pub max_pico: i64,
    /// An id of the current budget period (e.g. its start in unix ms); a new period starts
    /// from zero (or from its seed).
    pub period: u64,
    /// The spend the database knows for this period. The counter never goes below it.
    pub seed_spend_pico: i64,
    /// The period's length (`budget_duration`), for the counters' expiry; `None` when the
    /// budget never resets (the counters then expire 35 days after their last use).
    pub period_length: Option<Duration>,
}

/// Why a request was not admitted. Nothing was counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Requests per minute exhausted for `scope`.
    #[error("rate limit exceeded: {limit} requests per minute for {scope}")]
    Rpm {
        /// The exhausted scope.
        scope: Scope,
        /// Its limit.
        limit: u64,
        /// Time to the next window, whole seconds, at least 1 s.
        retry_after: Duration,
    },
    /// Tokens per minute exhausted for `scope`.
    #[error("rate limit exceeded: {limit} tokens per minute for {scope}")]
    Tpm {
        /// The exhausted scope.
        scope: Scope,
        /// Its limit.
        limit: u64,
        /// Time to the next window, whole seconds, at least 1 s.
        retry_after: Duration,
    },
    /// Too many requests in flight for `scope`.
    #[error("rate limit exceeded: {limit} parallel requests for {scope}")]
    Parallel {
        /// The exhausted scope.
        scope: Scope,
        /// Its limit.
        limit: u64,
        /// Always one second.
        retry_after: Duration,
    },
    /// The budget of `scope` cannot pay for this request's minimum cost.
    #[error("budget exceeded for {scope}")]
    Budget {
        /// The exhausted budget's scope.
        scope: Scope,
        /// The budget, in pico-dollars.
        max_pico: i64,
    },
    /// Redis is unreachable and [`crate::BudgetFallback::Refuse`] is set.
    #[error("budget counters unavailable")]
    Unavailable {
        /// A suggested wait.
        retry_after: Duration,
    },
}

impl Refusal {
    /// The `retry-after` to send, when there is one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Rpm { retry_after, .. }
            | Self::Tpm { retry_after, .. }
            | Self::Parallel { retry_after, .. }
            | Self::Unavailable { retry_after } => Some(*retry_after),
            Self::Budget { .. } => None,
        }
    }
}

/// Errors building a [`crate::Limiter`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// The Redis URL could not be parsed (the URL itself is never echoed).
    #[error("invalid Redis URL: {0}")]
    InvalidRedisUrl(&'static str),
}

/// A Redis address. `Debug` and `Display` print the password as `***`.
#[derive(Clone)]
pub struct RedisUrl {
    pub(crate) info: redis::ConnectionInfo,
    redacted: String,
}

impl RedisUrl {
    /// Parse `redis://[user][:password@]host[:port][/db]` (also `redis+unix://`).
    pub fn parse(url: &str) -> Result<Self, LimitsError> {
        if !(url.starts_with("redis://") || url.starts_with("redis+unix://")) {
            return Err(LimitsError::InvalidRedisUrl(
                "expected a redis:// or redis+unix:// URL (TLS is not supported)",
            ));
        }
        let info = url
            .into_connection_info()
            .map_err(|_| LimitsError::InvalidRedisUrl("not a valid Redis URL"))?;
        Ok(Self::from_info(info))
    }

    /// Build from parts, as LiteLLM's `redis_host`, `redis_port`, `redis_password`.
    pub fn from_parts(
        host: &str,
        port: u16,
        username: Option<&str>,
        password: Option<&str>,
        db: i64,
    ) -> Result<Self, LimitsError> {
        if host.is_empty() {
            return Err(LimitsError::InvalidRedisUrl("empty Redis host"));
        }
        let mut settings = redis::RedisConnectionInfo::default().set_db(db);
        if let Some(u) = username.filter(|u| !u.is_empty()) {
            settings = settings.set_username(u);
        }
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            settings = settings.set_password(p);
        }
        let info = redis::ConnectionAddr::Tcp(host.to_owned(), port)
            .into_connection_info()
            .map_err(|_| LimitsError::InvalidRedisUrl("not a valid Redis address"))?
            .set_redis_settings(settings);
        Ok(Self::from_info(info))
    }

    fn from_info(info: redis::ConnectionInfo) -> Self {
        let s = info.redis_settings();
        let auth = match (s.username(), s.password()) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".to_owned(),
            (Some(u), None) => format!("{u}@"),
            (None, None) => String::new(),
        };
        let redacted = match info.addr() {
            redis::ConnectionAddr::Unix(path) => {
                format!("redis+unix://{auth}{}?db={}", path.display(), s.db())
            }
            addr => format!("redis://{auth}{addr}/{}", s.db()),
        };
        Self { info, redacted }
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisUrl({})", self.redacted)
    }
}

impl std::fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl std::str::FromStr for RedisUrl {
    type Err = LimitsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A hasher for maps keyed by [`Scope`]: passes its precomputed hash through.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThroughBuild;

impl BuildHasher for PassThroughBuild {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}
