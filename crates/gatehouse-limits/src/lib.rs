//! Admission control for the request hot path: rate limits (requests and tokens per
//! minute), concurrent-request limits and budget reservations.
//!
//! One [`Limiter::admit`] call per request decides whether it may go upstream, and one
//! [`Limiter::settle`] (success) or [`Limiter::release`] (failure) call hands back what it
//! held. With Redis configured ([`Limiter::with_redis`]) every admit is one atomic Lua
//! script, so limits are exact across any number of replicas; without it
//! ([`Limiter::local`]) the same rules are enforced by in-process counters.
//!
//! # Semantics
//!
//! * **All or nothing.** Every check of one admit (rpm, tpm, parallel, budgets) is made
//!   first, atomically; when any refuses, nothing is counted.
//! * **rpm / tpm** use fixed one-minute windows (window id = unix minute, taken from the
//!   Redis server's clock in Redis mode so replicas with skewed clocks still agree). A
//!   request is admitted while `requests this minute < rpm` (it then counts) and while
//!   `tokens this minute < tpm`; tokens are added at settle time to the window current *at
//!   settle time*. `retry_after` is the time to the next window rounded up to whole seconds
//!   (at least 1 s). Fixed windows allow a *boundary burst*: up to `2 × limit` requests can
//!   pass within a short span straddling a minute boundary (the end of one window and the
//!   start of the next); over any aligned minute the limit is exact.
//! * **parallel** counts requests in flight. In Redis each slot is a lease (a ZSET member
//!   scored by its expiry, [`RedisOptions::parallel_lease`], 15 min by default; expired
//!   members are swept inside the script) so a crashed replica cannot leak slots forever.
//! * **Budgets**, per (scope, period): a `spend` counter and a `reserved` counter. Admit
//!   reserves `r = min(cost_max, min over budgets of (max - spend - reserved))` in every
//!   budget, and refuses when a budget has nothing left or `r < cost_min`. Settle does
//!   `reserved -= r; spend += actual` (actual may exceed `r`: spend is truth, and the next
//!   admit then refuses). A counter starts at the database's figure
//!   ([`Budget::seed_spend_pico`]) and never goes below it: `spend = max(spend, seed)` on
//!   every admit, which also heals spend that bypassed Redis during an outage. In Redis each
//!   reservation also has its own expiry ([`RedisOptions::reservation_lease`], 15 min) so a
//!   reservation whose request was never settled (crashed replica) is returned by the next
//!   admit after that time; budget keys expire `2 × period` (35 days when the period length
//!   is unknown) after their last use.
//! * An [`Admission`] remembers where it was admitted (Redis or local); settle and release
//!   go to the same place. An admission dropped without settle/release is released (from
//!   a spawned task when it was admitted in Redis), so cancelled requests free their slots.
//!
//! # Degradation (Redis unreachable)
//!
//! Every Redis call is bounded by [`RedisOptions::timeout`] (100 ms by default). On an error
//! or timeout the call falls back to the local counters, a warning is logged once per
//! outage (an info line when Redis is back), and a circuit opens: for
//! [`RedisOptions::circuit_open_for`] (2 s) requests go straight to local counting without
//! paying the timeout, then a single request probes Redis again. While degraded, limits are
//! enforced per replica (each replica allows the full limit). Budgets fail closed: admits
//! that carry budgets are refused ([`Refusal::Unavailable`], [`BudgetFallback::Refuse`], the
//! default), because per-replica counting would let each of N replicas spend what is left of
//! a budget; with [`BudgetFallback::Local`] they are counted per replica instead, starting
//! from the database's spend (`seed_spend_pico`). A settle/release of a
//! Redis admission that cannot reach Redis is retried in the background for up to the
//! lease time (bounded number of pending retries; a retry never adds spend twice); after
//! that the lease and reservation expiries return what it held. An admit that timed out
//! may still have run in Redis: its lease id is released in the background the same way
//! (its rpm count stays: such a request is counted twice, never zero times).
//! [`Limiter::with_redis`] never fails because Redis is down: it starts degraded and keeps
//! trying.
//!
//! Passwords in Redis URLs are never printed: [`RedisUrl`]'s `Debug`/`Display` show `***`,
//! and errors and logs never include the URL's secret.
//!
//! # Redis keys (prefix `gatehouse:` by default, see [`RedisOptions::key_prefix`])
//!
//! * `{p}r:{scope}` hash `{w: minute, n: requests}` (TTL 120 s)
//! * `{p}t:{scope}` hash `{w: minute, n: tokens}` (TTL 120 s)
//! * `{p}p:{scope}` ZSET of lease ids scored by lease expiry (ms)
//! * `{p}b:{scope}:{period}` hash `{spend, reserved, r:{lease id}: amount}`
//! * `{p}bx:{scope}:{period}` ZSET of lease ids scored by reservation expiry (ms)
//!
//! Keys of different scopes are touched by one script, so Redis Cluster needs a prefix
//! with a hash tag (e.g. `{gatehouse}:`) to keep them in one slot.

mod local;
mod redis_backend;
mod types;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use types::{Budget, Limit, LimitsError, RedisUrl, Refusal, Scope};

use local::LocalCounters;
use redis_backend::{RedisBackend, RedisOutcome};

/// Default lease of a parallel-request slot and of a budget reservation in Redis.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15 * 60);
/// Default bound on one Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
/// TTL of a budget counter when its period length is unknown.
pub const DEFAULT_BUDGET_TTL: Duration = Duration::from_secs(35 * 24 * 3600);
/// Upper bound of any money amount handled (about 4.6 million dollars in pico-dollars);
/// larger values are clamped to it.
pub const MAX_PICO: i64 = 1 << 62;

/// Retry-after given with a [`Refusal::Parallel`].
pub const PARALLEL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How admits carrying budgets are treated while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BudgetFallback {
    /// Refuse admits that carry budgets with [`Refusal::Unavailable`] (fail closed; the
    /// default).
    #[default]
    Refuse,
    /// Count budgets in process, starting from the database's spend: each replica may then
    /// spend what is left of a budget.
    Local,
}

/// Options of a Redis-backed [`Limiter`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Bound on each Redis call (default 100 ms); on expiry the call is counted locally.
    pub timeout: Duration,
    /// Prefix of every key (default `gatehouse:`); tests use a random one.
    pub key_prefix: String,
    /// Lease of a parallel-request slot (default 15 min).
    pub parallel_lease: Duration,
    /// Lease of a budget reservation (default 15 min).
    pub reservation_lease: Duration,
    /// How long Redis is skipped after a failure before it is probed again (default 2 s).
    pub circuit_open_for: Duration,
    /// Budgets while Redis is unreachable (default: refuse).
    pub budget_fallback: BudgetFallback,
    /// Most settle/release calls waiting to be retried in Redis at once (default 10 000).
    pub max_pending_settles: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            key_prefix: "gatehouse:".to_owned(),
            parallel_lease: DEFAULT_LEASE,
            reservation_lease: DEFAULT_LEASE,
            circuit_open_for: Duration::from_secs(2),
            budget_fallback: BudgetFallback::Refuse,
            max_pending_settles: 10_000,
        }
    }
}

/// Where counting currently happens, for health checks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In-process counters only (no Redis configured).
    Local,
    /// Redis configured and reachable: limits exact across replicas.
    Redis,
    /// Redis configured but unreachable: counting locally until it is back.
    RedisDegraded,
}

/// Where an [`Admission`] was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In this process's counters.
    Local,
    /// In Redis.
    Redis,
}

/// One request to admit. All slices may be empty.
#[derive(Debug, Clone, Copy)]
pub struct Admit<'a> {
    /// The request's id (e.g. `x-litellm-call-id`); used in Redis lease ids and logs.
    pub request_id: &'a str,
    /// Requests per minute, per scope. Scopes within one list should be distinct.
    pub rpm: &'a [Limit<'a>],
    /// Tokens per minute: admitted while the tokens used this minute are below the limit.
    pub tpm: &'a [Limit<'a>],
    /// Requests in flight at once.
    pub parallel: &'a [Limit<'a>],
    /// Budgets to reserve in.
    pub budgets: &'a [Budget<'a>],
    /// The least this request costs (its input); must be reservable in every budget.
    pub cost_min_pico: i64,
    /// The most this request can cost; the reservation is `min(cost_max, smallest
    /// remaining budget)`, at least `cost_min`.
    pub cost_max_pico: i64,
}

/// What one scope holds for an admission, to be handed back at settle/release.
#[derive(Debug, Clone)]
pub(crate) enum Hold {
    Tpm(Scope),
    Parallel(Scope),
    Budget {
        scope: Scope,
        period: u64,
        ttl_ms: u64,
    },
}

#[derive(Debug)]
pub(crate) struct Ticket {
    limiter: Arc<Inner>,
    place: Place,
    holds: Vec<Hold>,
    /// Redis lease id (empty for local admissions).
    lease_id: String,
    /// Unix ms when admitted (bounds background settle retries).
    admitted_ms: u64,
}

/// An admitted request. Hand it back with [`Limiter::settle`] or [`Limiter::release`];
/// dropping it releases it.
pub struct Admission {
    reserved_pico: i64,
    remaining_requests: Option<u64>,
    remaining_tokens: Option<u64>,
    place: Place,
    ticket: Option<Ticket>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("reserved_pico", &self.reserved_pico)
            .field("remaining_requests", &self.remaining_requests)
            .field("remaining_tokens", &self.remaining_tokens)
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Pico-dollars reserved in every budget. With no budgets this is `cost_max_pico`
    /// (nothing clamps it). The gateway derives the upstream `max_tokens` from it.
    pub fn reserved_pico(&self) -> i64 {
        self.reserved_pico
    }
    /// Requests left this minute after this one: the minimum over rpm scopes (`None`
    /// without rpm limits). For `x-ratelimit-remaining-requests`.
    pub fn remaining_requests(&self) -> Option<u64> {
        self.remaining_requests
    }
    /// Tokens left this minute (before this request's tokens): the minimum over tpm
    /// scopes (`None` without tpm limits). For `x-ratelimit-remaining-tokens`.
    pub fn remaining_tokens(&self) -> Option<u64> {
        self.remaining_tokens
    }
    /// Where this request was counted.
    pub fn place(&self) -> Place {
        self.place
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let limiter = Arc::clone(&ticket.limiter);
            limiter.finish_detached(ticket, self.reserved_pico);
        }
    }
}

/// Admission control: local counters plus, optionally, Redis. Cheap to clone (shared).
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    local: LocalCounters,
    redis: Option<RedisBackend>,
    pending_settles: AtomicUsize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Whole seconds (at least one) until the next one-minute window.
pub(crate) fn retry_after_ms(ms_to_next: u64) -> Duration {
    Duration::from_secs(ms_to_next.div_ceil(1000).max(1))
}

/// Clamp a money amount into `0..=MAX_PICO`.
pub(crate) fn clamp_pico(v: i64) -> i64 {
    v.clamp(0, MAX_PICO)
}

/// Budget TTL in ms: twice the period, or [`DEFAULT_BUDGET_TTL`], at least one hour.
pub(crate) fn budget_ttl_ms(b: &Budget<'_>) -> u64 {
    let ttl = match b.period_length {
        Some(len) => len.saturating_mul(2),
        None => DEFAULT_BUDGET_TTL,
    };
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .max(3_600_000)
}

impl Limiter {
    /// A limiter with in-process counters only.
    pub fn local() -> Self {
        Self {
            inner: Arc::new(Inner {
                local: LocalCounters::new(),
                redis: None,
                pending_settles: AtomicUsize::new(0),
            }),
        }
    }

    /// A limiter counting in Redis, each call bounded by `timeout` (see [`DEFAULT_TIMEOUT`]);
    /// other options at their defaults (budgets refused while Redis is unreachable).
    ///
    /// Never fails because Redis is down: it then counts locally (with a warning) and keeps
    /// trying. When called inside a Tokio runtime it probes Redis in the background at once,
    /// so [`Limiter::mode`] reflects reachability early.
    pub fn with_redis(url: RedisUrl, timeout: Duration) -> Result<Self, LimitsError> {
        Self::with_redis_options(
            url,
            RedisOptions {
                timeout,
                ..RedisOptions::default()
            },
        )
    }

    /// As [`Limiter::with_redis`], with all options.
    pub fn with_redis_options(url: RedisUrl, options: RedisOptions) -> Result<Self, LimitsError> {
        let backend = RedisBackend::new(url, options)?;
        let limiter = Self {
            inner: Arc::new(Inner {
                local: LocalCounters::new(),
                redis: Some(backend),
                pending_settles: AtomicUsize::new(0),
            }),
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = Arc::clone(&limiter.inner);
            handle.spawn(async move {
                if let Some(r) = &inner.redis {
                    r.probe().await;
                }
            });
        }
        Ok(limiter)
    }

    /// Where counting happens now.
    pub fn mode(&self) -> Mode {
        match &self.inner.redis {
            None => Mode::Local,
            Some(r) if r.is_down() => Mode::RedisDegraded,
            Some(_) => Mode::Redis,
        }
    }

    /// Admit one request: all checks at once, all or nothing.
    ///
    /// An admit without any limit or budget touches nothing (no Redis round-trip) and
    /// reserves `cost_max_pico`.
    pub async fn admit(&self, req: &Admit<'_>) -> Result<Admission, Refusal> {
        let inner = &self.inner;
        if req.rpm.is_empty()
            && req.tpm.is_empty()
            && req.parallel.is_empty()
            && req.budgets.is_empty()
        {
            return Ok(Admission {
                reserved_pico: clamp_pico(req.cost_max_pico).max(clamp_pico(req.cost_min_pico)),
                remaining_requests: None,
                remaining_tokens: None,
                place: Place::Local,
                ticket: None,
            });
        }
        if let Some(r) = &inner.redis {
            if r.should_try() {
                match r.admit(req).await {
                    RedisOutcome::Done(Ok((grant, lease_id))) => {
                        return Ok(self.admission(req, Place::Redis, lease_id, grant));
                    }
                    RedisOutcome::Done(Err(refusal)) => return Err(refusal),
                    RedisOutcome::Failed(lease_id) => self.undo_later(req, lease_id),
                }
            }
            if r.budget_fallback() == BudgetFallback::Refuse && !req.budgets.is_empty() {
                // Budgets fail closed: nothing changes before the next probe of Redis.
                return Err(Refusal::Unavailable {
                    retry_after: r.circuit_open_for(),
                });
            }
        }
        let grant = inner.local.admit(req, now_ms())?;
        Ok(self.admission(req, Place::Local, String::new(), grant))
    }

    /// A failed (e.g. timed-out) admit script may still have run in Redis: queue a release
    /// of its lease id (parallel slots, budget reservation) for when Redis answers again.
    /// A release of a lease that was never taken changes nothing.
    fn undo_later(&self, req: &Admit<'_>, lease_id: String) {
        if req.parallel.is_empty() && req.budgets.is_empty() {
            return;
        }
        let mut holds = holds_of(req);
        holds.retain(|h| !matches!(h, Hold::Tpm(_)));
        let ticket = Ticket {
            limiter: Arc::clone(&self.inner),
            place: Place::Redis,
            holds,
            lease_id,
            admitted_ms: now_ms(),
        };
        self.inner.retry_later(ticket, 0, 0);
    }

    fn admission(&self, req: &Admit<'_>, place: Place, lease_id: String, g: Grant) -> Admission {
        let holds = holds_of(req);
        Admission {
            reserved_pico: g.reserved_pico,
            remaining_requests: g.remaining_requests,
            remaining_tokens: g.remaining_tokens,
            place,
            ticket: Some(Ticket {
                limiter: Arc::clone(&self.inner),
                place,
                holds,
                lease_id,
                admitted_ms: now_ms(),
            }),
        }
    }

    /// The request finished: record `actual_cost_pico` as spend in its budgets (even above
    /// the reservation), release the rest of the reservation, add `tokens` to its tpm
    /// windows and free its parallel slots.
    pub async fn settle(&self, mut adm: Admission, actual_cost_pico: i64, tokens: u64) {
        if let Some(ticket) = adm.ticket.take() {
            self.inner
                .finish(
                    ticket,
                    adm.reserved_pico,
                    clamp_pico(actual_cost_pico),
                    tokens,
                )
                .await;
        }
    }

    /// The request failed: release the whole reservation and free its parallel slots.
    pub async fn release(&self, mut adm: Admission) {
        if let Some(ticket) = adm.ticket.take() {
            self.inner.finish(ticket, adm.reserved_pico, 0, 0).await;
        }
    }

    /// Settle/release calls currently waiting to be retried in Redis.
    pub fn pending_settles(&self) -> usize {
        self.inner.pending_settles.load(Ordering::Relaxed)
    }

    /// Number of scopes currently held by the local counters (for metrics and tests).
    pub fn local_scopes(&self) -> usize {
        self.inner.local.len()
    }
}

/// What an admission holds until settle/release, in order: tpm, parallel, budgets.
pub(crate) fn holds_of(req: &Admit<'_>) -> Vec<Hold> {
    let n = req.tpm.len() + req.parallel.len() + req.budgets.len();
    let mut holds = Vec::with_capacity(n);
    holds.extend(req.tpm.iter().map(|l| Hold::Tpm(l.scope.clone())));
    holds.extend(req.parallel.iter().map(|l| Hold::Parallel(l.scope.clone())));
    holds.extend(req.budgets.iter().map(|b| Hold::Budget {
        scope: b.scope.clone(),
        period: b.period,
        ttl_ms: budget_ttl_ms(b),
    }));
    holds
}

/// What an admit granted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    pub reserved_pico: i64,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
}

impl Inner {
    async fn finish(self: &Arc<Self>, ticket: Ticket, reserved: i64, actual: i64, tokens: u64) {
        match ticket.place {
            Place::Local => {
                self.local
                    .settle(&ticket.holds, reserved, actual, tokens, now_ms());
            }
            Place::Redis => {
                let Some(r) = &self.redis else { return };
                if r.should_try_settle() && r.settle(&ticket, actual, tokens, false).await {
                    return;
                }
                self.retry_later(ticket, actual, tokens);
            }
        }
    }

    /// Release from `Drop`: synchronous for local admissions, a spawned task for Redis.
    fn finish_detached(self: Arc<Self>, ticket: Ticket, reserved: i64) {
        match ticket.place {
            Place::Local => self.local.settle(&ticket.holds, reserved, 0, 0, now_ms()),
            Place::Redis => match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(async move { self.finish(ticket, reserved, 0, 0).await });
                }
                Err(_) => tracing::debug!(
                    "admission dropped outside a runtime; its Redis lease will expire"
                ),
            },
        }
    }

    /// Retry a Redis settle in the background until it succeeds or the leases run out.
    fn retry_later(self: &Arc<Self>, ticket: Ticket, actual: i64, tokens: u64) {
        let Some(r) = &self.redis else { return };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let max = r.max_pending_settles();
        if self.pending_settles.fetch_add(1, Ordering::Relaxed) >= max {
            self.pending_settles.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!("too many pending Redis settles; this one is left to lease expiry");
            return;
        }
        let deadline = ticket.admitted_ms.saturating_add(r.retry_window_ms());
        let pause = r.circuit_open_for();
        let inner = Arc::clone(self);
        handle.spawn(async move {
            let mut attempts = 0u32;
            while now_ms() < deadline && attempts < 10_000 {
                tokio::time::sleep(pause).await;
                attempts += 1;
                let Some(r) = &inner.redis else { break };
                if !r.should_try() {
                    continue;
                }
                if r.settle(&ticket, actual, tokens, true).await {
                    break;
                }
            }
            inner.pending_settles.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

#[cfg(test)]
mod tests;
