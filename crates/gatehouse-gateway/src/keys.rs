//! Who is calling: the master key, or a virtual key with its user and team, verified from an
//! in-memory cache so that the hot path never waits on the database.
//!
//! Cache rules (also in README, "Degradation"):
//! - a key read from the store is served from memory; after `key_cache_ttl` the next request
//!   still uses the cached entry and starts one background refresh;
//! - changes made on any replica reach every replica's cache through the store's change feed
//!   (polled every `invalidation_poll_interval`), and changes made here drop the entry at once;
//! - while the store is unreachable, entries refreshed within `key_cache_stale_ttl` keep
//!   working; a key that is not cached gets 503 (not 401), because we cannot tell;
//! - unknown keys are remembered for a few seconds so a flood of bad keys cannot turn into a
//!   flood of database reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use gatehouse_limits::Scope;
use gatehouse_store::{KeyRecord, Store, TeamRecord, UserRecord};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// How long an unknown key is remembered as unknown.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// At most this many unknown keys are remembered.
const NEGATIVE_MAX: usize = 10_000;
/// A store read on the request path waits at most this long.
const STORE_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed store read, reads on the request path wait at most this long (instead of
/// [`STORE_READ_TIMEOUT`]) until one succeeds, so an outage costs uncached keys little time.
const STORE_DOWN_READ_TIMEOUT: Duration = Duration::from_millis(200);

/// The LiteLLM role that may call the admin API.
pub const PROXY_ADMIN: &str = "proxy_admin";

/// SHA-256 of a raw key: what the store keeps and what LiteLLM calls the key's `token`.
pub fn hash_key(raw: &str) -> [u8; 32] {
    Sha256::digest(raw.as_bytes()).into()
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses 64 hex digits into a digest.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// A verified caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No master key is configured (loopback only): no accounting, no admin API.
    Open,
    /// The master key.
    Master,
    /// A virtual key.
    Key(Arc<KeyContext>),
}

impl Caller {
    /// True when this caller may use the admin API.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Master => true,
            Caller::Open => false,
            Caller::Key(k) => k.is_admin,
        }
    }
}

/// A virtual key as the hot path needs it: its record, its user's and team's, and the
/// counter scopes precomputed.
#[derive(Debug)]
pub struct KeyContext {
    /// The key's digest.
    pub token_hash: [u8; 32],
    /// The key.
    pub key: KeyRecord,
    /// Its user, if it has one.
    pub user: Option<UserRecord>,
    /// Its team, if it has one.
    pub team: Option<TeamRecord>,
    /// `key:<hex>`, the counter scope of the key.
    pub key_scope: Scope,
    /// `user:<id>`.
    pub user_scope: Option<Scope>,
    /// `team:<id>`.
    pub team_scope: Option<Scope>,
    /// The key's user has the `proxy_admin` role.
    pub is_admin: bool,
}

impl KeyContext {
    pub(crate) fn new(key: KeyRecord, user: Option<UserRecord>, team: Option<TeamRecord>) -> Self {
        let is_admin = user.as_ref().is_some_and(|u| u.user_role == PROXY_ADMIN);
        Self {
            token_hash: key.token_hash,
            key_scope: Scope::new(format!("key:{}", hex(&key.token_hash))),
            user_scope: key
                .user_id
                .as_ref()
                .map(|u| Scope::new(format!("user:{u}"))),
            team_scope: key
                .team_id
                .as_ref()
                .map(|t| Scope::new(format!("team:{t}"))),
            key,
            user,
            team,
            is_admin,
        }
    }

    /// Refuses blocked and expired keys (and keys of blocked teams).
    pub fn check_usable(&self, now_ms: i64) -> Result<(), ApiError> {
        if self.key.blocked || self.team.as_ref().is_some_and(|t| t.blocked) {
            return Err(ApiError::KeyBlocked);
        }
        if self.key.expires_at.is_some_and(|at| at <= now_ms) {
            return Err(ApiError::KeyExpired);
        }
        Ok(())
    }

    /// True when the key may use `model`, as LiteLLM decides: the key's list, and its team's
    /// for a team key or its user's for a personal key (no `team_id`), must each allow it.
    /// An empty list allows all; a user list holding `no-default-models` allows none.
    pub fn allows_model(&self, model: &str) -> bool {
        allowed(&self.key.models, model)
            && self.team.as_ref().is_none_or(|t| allowed(&t.models, model))
            && (self.key.team_id.is_some()
                || self.user.as_ref().is_none_or(|u| {
                    !u.models.iter().any(|m| m == NO_DEFAULT_MODELS) && allowed(&u.models, model)
                }))
    }

    /// The allowed list, for error messages: the first non-empty one of the key's, its
    /// team's (team key) or its user's (personal key).
    pub fn allowed_models(&self) -> String {
        let owner = if self.key.team_id.is_some() {
            self.team.as_ref().map(|t| &t.models)
        } else {
            self.user.as_ref().map(|u| &u.models)
        };
        let list = match owner {
            Some(l) if self.key.models.is_empty() => l,
            _ => &self.key.models,
        };
        format!("{list:?}")
    }
}

/// LiteLLM's user model entry that allows no model on personal keys (team keys only).
const NO_DEFAULT_MODELS: &str = "no-default-models";

fn allowed(list: &[String], model: &str) -> bool {
    list.is_empty()
        || list
            .iter()
            .any(|m| m == model || m == "all-proxy-models" || m == "*")
}

#[derive(Debug)]
struct Entry {
    ctx: Arc<KeyContext>,
    /// Last successful read from the store.
    fetched: Instant,
    /// A background refresh is running.
    refreshing: Arc<AtomicBool>,
}

/// Verifies client keys: the master key by constant-time digest comparison, virtual keys
/// through the cache described in the module docs.
#[derive(Debug)]
pub struct KeyCache {
    master_key_hash: Option<[u8; 32]>,
    store: Store,
    ttl: Duration,
    stale_ttl: Duration,
    entries: RwLock<HashMap<[u8; 32], Entry>>,
    unknown: RwLock<HashMap<[u8; 32], Instant>>,
    /// The last store read failed (cleared by the next one that succeeds).
    store_down: AtomicBool,
}

impl KeyCache {
    /// A cache in front of `store`.
    pub fn new(
        master_key_hash: Option<[u8; 32]>,
        store: Store,
        ttl: Duration,
        stale_ttl: Duration,
    ) -> Self {
        Self {
            master_key_hash,
            store,
            ttl,
            stale_ttl,
            entries: RwLock::new(HashMap::new()),
            unknown: RwLock::new(HashMap::new()),
            store_down: AtomicBool::new(false),
        }
    }

    /// True when a key is required (a master key is configured).
    pub fn enabled(&self) -> bool {
        self.master_key_hash.is_some()
    }

    /// Verifies the key presented in `headers`.
    pub async fn verify(self: &Arc<Self>, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
        let Some(master) = &self.master_key_hash else {
            return Ok(Caller::Open);
        };
        let presented = crate::auth::presented_key(headers).ok_or(ApiError::MissingKey)?;
        let digest = hash_key(presented);
        if bool::from(digest.ct_eq(master)) {
            return Ok(Caller::Master);
        }
        self.lookup(digest).await.map(Caller::Key)
    }

    /// A virtual key by digest: from memory when possible.
    pub async fn lookup(self: &Arc<Self>, digest: [u8; 32]) -> Result<Arc<KeyContext>, ApiError> {
        let now = Instant::now();
        let cached = self.entries.read().ok().and_then(|m| {
            m.get(&digest)
                .map(|e| (e.ctx.clone(), e.fetched, e.refreshing.clone()))
        });
        if let Some((ctx, fetched, refreshing)) = cached {
            let age = now.saturating_duration_since(fetched);
            if age < self.ttl {
                return Ok(ctx);
            }
            if age < self.stale_ttl {
                if !refreshing.swap(true, Ordering::AcqRel) {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let _ = this.fetch(digest).await;
                        refreshing.store(false, Ordering::Release);
                    });
                }
                return Ok(ctx);
            }
            // Too old to trust without the store: read it now.
        }
        if self
            .unknown
            .read()
            .ok()
            .and_then(|m| m.get(&digest).copied())
            .is_some_and(|at| now.saturating_duration_since(at) < NEGATIVE_TTL)
        {
            return Err(ApiError::InvalidKey);
        }
        match self.fetch(digest).await {
            Ok(Some(ctx)) => Ok(ctx),
            Ok(None) => Err(ApiError::InvalidKey),
            Err(()) => Err(ApiError::StoreUnavailable),
        }
    }

    /// Reads a key (and its user and team) from the store into the cache. `Ok(None)`: no such
    /// key; `Err`: the store could not be read.
    async fn fetch(&self, digest: [u8; 32]) -> Result<Option<Arc<KeyContext>>, ()> {
        let read = async {
            let Some(key) = self.store.key_by_hash(&digest).await? else {
                return Ok(None);
            };
            let user = match &key.user_id {
                Some(id) => self.store.user(id).await?,
                None => None,
            };
            let team = match &key.team_id {
                Some(id) => self.store.team(id).await?,
                None => None,
            };
            Ok::<_, gatehouse_store::StoreError>(Some(KeyContext::new(key, user, team)))
        };
        let limit = if self.store_down.load(Ordering::Relaxed) {
            STORE_DOWN_READ_TIMEOUT
        } else {
            STORE_READ_TIMEOUT
        };
        let result = tokio::time::timeout(limit, read).await;
        self.store_down
            .store(!matches!(result, Ok(Ok(_))), Ordering::Relaxed);
        match result {
            Ok(Ok(Some(ctx))) => {
                let ctx = Arc::new(ctx);
                if let Ok(mut m) = self.entries.write() {
                    m.insert(
                        digest,
                        Entry {
                            ctx: ctx.clone(),
                            fetched: Instant::now(),
                            refreshing: Arc::new(AtomicBool::new(false)),
                        },
                    );
                }
                Ok(Some(ctx))
            }
            Ok(Ok(None)) => {
                self.forget(&digest);
                if let Ok(mut m) = self.unknown.write() {
                    if m.len() >= NEGATIVE_MAX {
                        let now = Instant::now();
                        m.retain(|_, at| now.saturating_duration_since(*at) < NEGATIVE_TTL);
                        if m.len() >= NEGATIVE_MAX {
                            m.clear();
                        }
                    }
                    m.insert(digest, Instant::now());
                }
                Ok(None)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "key store read failed");
                Err(())
            }
            Err(_) => {
                tracing::warn!("key store read timed out");
                Err(())
            }
        }
    }

    /// Re-reads the cached keys `matches` selects, in the background: each is replaced by
    /// what the store holds now, or dropped if it is gone or the store cannot be read. Until
    /// the read completes the old entry serves (a change lands within one store read).
    fn refresh_where(self: &Arc<Self>, matches: impl Fn(&KeyContext) -> bool) {
        let digests: Vec<[u8; 32]> = self.entries.read().map_or_else(
            |_| Vec::new(),
            |m| {
                m.iter()
                    .filter(|(_, e)| matches(&e.ctx))
                    .map(|(d, _)| *d)
                    .collect()
            },
        );
        for digest in digests {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                if this.fetch(digest).await.is_err() {
                    this.forget(&digest);
                }
            });
        }
    }

    /// Drops one key from the cache (it changed, here or on another replica).
    pub fn forget(&self, digest: &[u8; 32]) {
        if let Ok(mut m) = self.entries.write() {
            m.remove(digest);
        }
        if let Ok(mut m) = self.unknown.write() {
            m.remove(digest);
        }
    }

    /// Drops every key of a user or team (its limits, budget or models changed).
    pub fn forget_owner(&self, kind: &str, id: &str) {
        if let Ok(mut m) = self.entries.write() {
            m.retain(|_, e| match kind {
                "user" => e.ctx.key.user_id.as_deref() != Some(id),
                "team" => e.ctx.key.team_id.as_deref() != Some(id),
                _ => true,
            });
        }
    }

    /// Drops everything (the change feed could not be followed).
    pub fn forget_all(&self) {
        if let Ok(mut m) = self.entries.write() {
            m.clear();
        }
    }

    /// Applies one change-feed event: cached keys it concerns are re-read from the store
    /// (not just dropped, so that a key created and used just before a store outage keeps
    /// working through it), and an unknown-key memory of it is cleared.
    pub fn apply_event(self: &Arc<Self>, kind: &str, id: &str) {
        match kind {
            "key" => {
                if let Some(d) = parse_hex32(id) {
                    if let Ok(mut m) = self.unknown.write() {
                        m.remove(&d);
                    }
                    self.refresh_where(|k| k.token_hash == d);
                }
            }
            "user" => self.refresh_where(|k| k.key.user_id.as_deref() == Some(id)),
            "team" => self.refresh_where(|k| k.key.team_id.as_deref() == Some(id)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d = hash_key("sk-test");
        assert_eq!(parse_hex32(&hex(&d)), Some(d));
        assert_eq!(parse_hex32("zz"), None);
        assert_eq!(parse_hex32(&"g".repeat(64)), None);
    }

    #[test]
    fn model_lists() {
        assert!(allowed(&[], "x"));
        assert!(allowed(&["x".into()], "x"));
        assert!(!allowed(&["x".into()], "y"));
        assert!(allowed(&["all-proxy-models".into()], "y"));
    }
}
