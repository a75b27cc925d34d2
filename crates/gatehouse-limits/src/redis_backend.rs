//! Redis counting: one Lua script per operation (admit; settle/release), so an admit is one
//! atomic round-trip, exact across replicas. Time comes from the Redis server (`TIME`), so
//! replicas with skewed clocks agree on windows and lease expiries.
//!
//! Money is exact below 2^53 pico-dollars (about 9 000 dollars) per counter; above that,
//! Lua's doubles make the remaining-budget computation conservative by a few nano-dollars
//! (never over-reserving). Stored counters are always exact (`HINCRBY`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use crate::types::RedisUrl;
use crate::{
    Admit, BudgetFallback, Grant, Hold, LimitsError, PARALLEL_RETRY_AFTER, RedisOptions, Refusal,
    Scope, Ticket, budget_ttl_ms, clamp_pico, retry_after_ms,
};

/// Checks rpm, tpm, parallel and budgets, then counts all of them, or nothing.
///
/// KEYS: rpm hashes (nr), tpm hashes (nt), parallel ZSETs (np), then per budget its hash
/// and its reservation ZSET. ARGV: nr, nt, np, nb, lease id, parallel lease ms,
/// reservation lease ms, cost_min, cost_max, rpm limits, tpm limits, parallel limits, then
/// per budget: max, seed spend, TTL ms.
/// Reply: `{0, reserved, remaining requests or -1, remaining tokens or -1}`, or
/// `{1|2|3|4 (rpm|tpm|parallel|budget), index of the refusing scope, ms to next window}`.
const ADMIT_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minute = math.floor(now / 60000)
local to_next = (minute + 1) * 60000 - now
local nr, nt, np, nb = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lease = ARGV[5]
local par_ms, res_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
local cost_min, cost_max = tonumber(ARGV[8]), tonumber(ARGV[9])
local k, a = 1, 10
local rem_req, rem_tok = -1, -1
local rpm_n = {}
for i = 1, nr do
  local v = redis.call('HMGET', KEYS[k], 'w', 'n')
  local n = 0
  if tonumber(v[1]) == minute then n = tonumber(v[2]) or 0 end
  local lim = tonumber(ARGV[a])
  if n >= lim then return {1, i - 1, to_next} end
  rpm_n[i] = n
  if rem_req < 0 or lim - n - 1 < rem_req then rem_req = lim - n - 1 end
  k, a = k + 1, a + 1
end
for i = 1, nt do
  local v = redis.call('HMGET', KEYS[k], 'w', 'n')
  local n = 0
  if tonumber(v[1]) == minute then n = tonumber(v[2]) or 0 end
  local lim = tonumber(ARGV[a])
  if n >= lim then return {2, i - 1, to_next} end
  if rem_tok < 0 or lim - n < rem_tok then rem_tok = lim - n end
  k, a = k + 1, a + 1
end
for i = 1, np do
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
  if redis.call('ZCARD', KEYS[k]) >= tonumber(ARGV[a]) then return {3, i - 1, 0} end
  k, a = k + 1, a + 1
end
local bk, ba = k, a
local least, least_i = nil, 0
for i = 1, nb do
  local h, z = KEYS[k], KEYS[k + 1]
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(gone) do
    local amt = redis.call('HGET', h, 'r:' .. id)
    if amt then
      if amt ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. amt) end
      redis.call('HDEL', h, 'r:' .. id)
    end
    redis.call('ZREM', z, id)
  end
  local v = redis.call('HMGET', h, 'spend', 'reserved')
  local spend, held = tonumber(v[1]), tonumber(v[2]) or 0
  local seed = tonumber(ARGV[a + 1])
  if spend == nil or spend < seed then
    redis.call('HSET', h, 'spend', ARGV[a + 1])
    redis.call('PEXPIRE', h, ARGV[a + 2])
    spend = seed
  end
  local m = tonumber(ARGV[a])
  local left = m - spend - held
  local big = math.max(m, spend, held)
  if big >= 9007199254740992 then left = left - math.ceil(big / 1125899906842624) end
  if least == nil or left < least then least, least_i = left, i end
  k, a = k + 2, a + 3
end
local r = cost_max
if nb > 0 then
  if least < r then r = math.floor(least) end
  if least <= 0 or r < cost_min then return {4, least_i - 1, 0} end
end
k = 1
for i = 1, nr do
  redis.call('HSET', KEYS[k], 'w', minute, 'n', rpm_n[i] + 1)
  redis.call('PEXPIRE', KEYS[k], 120000)
  k = k + 1
end
k = k + nt
for i = 1, np do
  redis.call('ZADD', KEYS[k], now + par_ms, lease)
  redis.call('PEXPIRE', KEYS[k], par_ms + 60000)
  k = k + 1
end
local rs = string.format('%.0f', r)
k, a = bk, ba
for i = 1, nb do
  local h, z = KEYS[k], KEYS[k + 1]
  if rs ~= '0' then redis.call('HINCRBY', h, 'reserved', rs) end
  redis.call('HSET', h, 'r:' .. lease, rs)
  redis.call('ZADD', z, now + res_ms, lease)
  redis.call('PEXPIRE', h, ARGV[a + 2])
  redis.call('PEXPIRE', z, ARGV[a + 2])
  k, a = k + 2, a + 3
end
return {0, rs, rem_req, rem_tok}
";

/// Hands back what one admission held.
///
/// KEYS: tpm hashes (nt), parallel ZSETs (np), then per budget its hash and reservation
/// ZSET. ARGV: nt, np, nb, lease id, tokens, actual cost, retry flag, then per budget its
/// TTL ms. Tokens go to the window current now. A budget's reservation (if still there) is
/// released and `actual` added to its spend; on a retry (`1`), a missing reservation means
/// an earlier attempt already ran, so spend is not added twice.
const SETTLE_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minute = math.floor(now / 60000)
local nt, np, nb = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, tokens, actual, retry = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local k, a = 1, 8
for i = 1, nt do
  if tokens ~= '0' then
    if tonumber(redis.call('HGET', KEYS[k], 'w')) == minute then
      redis.call('HINCRBY', KEYS[k], 'n', tokens)
    else
      redis.call('HSET', KEYS[k], 'w', minute, 'n', tokens)
    end
    redis.call('PEXPIRE', KEYS[k], 120000)
  end
  k = k + 1
end
for i = 1, np do
  redis.call('ZREM', KEYS[k], lease)
  k = k + 1
end
for i = 1, nb do
  local h, z = KEYS[k], KEYS[k + 1]
  local amt = redis.call('HGET', h, 'r:' .. lease)
  if amt then
    if amt ~= '0' then redis.call('HINCRBY', h, 'reserved', '-' .. amt) end
    redis.call('HDEL', h, 'r:' .. lease)
    redis.call('ZREM', z, lease)
  end
  if actual ~= '0' and (amt or retry ~= '1') then
    redis.call('HINCRBY', h, 'spend', actual)
    redis.call('PEXPIRE', h, ARGV[a])
  end
  k, a = k + 2, a + 1
end
return 1
";

/// Result of one Redis call.
pub(crate) enum RedisOutcome {
    /// Redis answered.
    Done(Result<(Grant, String), Refusal>),
    /// Redis failed or timed out; count locally. Carries the lease id used, since a
    /// timed-out script may still have run.
    Failed(String),
}

pub(crate) struct RedisBackend {
    client: redis::Client,
    redacted: String,
    conn: OnceLock<ConnectionManager>,
    admit_script: Script,
    settle_script: Script,
    opts: RedisOptions,
    down: AtomicBool,
    /// Monotonic ms (since `start`) before which Redis is not tried while down.
    open_until: AtomicU64,
    start: Instant,
    instance: String,
    seq: AtomicU64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

impl RedisBackend {
    pub(crate) fn new(url: RedisUrl, opts: RedisOptions) -> Result<Self, LimitsError> {
        let redacted = url.redacted().to_owned();
        let client = redis::Client::open(url.info)
            .map_err(|_| LimitsError::InvalidRedisUrl("not a usable Redis address"))?;
        let instance = {
            use std::hash::BuildHasher;
            let seed = std::collections::hash_map::RandomState::new()
                .hash_one((std::process::id(), crate::now_ms()));
            format!("{:08x}", seed as u32)
        };
        Ok(Self {
            client,
            redacted,
            conn: OnceLock::new(),
            admit_script: Script::new(ADMIT_LUA),
            settle_script: Script::new(SETTLE_LUA),
            opts,
            down: AtomicBool::new(false),
            open_until: AtomicU64::new(0),
            start: Instant::now(),
            instance,
            seq: AtomicU64::new(0),
        })
    }

    fn mono_ms(&self) -> u64 {
        millis(self.start.elapsed())
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    pub(crate) fn budget_fallback(&self) -> BudgetFallback {
        self.opts.budget_fallback
    }

    pub(crate) fn max_pending_settles(&self) -> usize {
        self.opts.max_pending_settles
    }

    pub(crate) fn circuit_open_for(&self) -> Duration {
        self.opts.circuit_open_for
    }

    /// How long after admission a failed settle may still be retried: while both leases
    /// certainly hold (a minute of margin).
    pub(crate) fn retry_window_ms(&self) -> u64 {
        millis(self.opts.parallel_lease.min(self.opts.reservation_lease)).saturating_sub(60_000)
    }

    /// Whether to call Redis now: always while it is up; while down, one caller per
    /// circuit period gets to probe it.
    pub(crate) fn should_try(&self) -> bool {
        if !self.is_down() {
            return true;
        }
        let now = self.mono_ms();
        let until = self.open_until.load(Ordering::Acquire);
        now >= until
            && self
                .open_until
                .compare_exchange(
                    until,
                    now.saturating_add(millis(self.opts.circuit_open_for)),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    /// Settles are sent only while Redis is up; otherwise they are queued for retry.
    pub(crate) fn should_try_settle(&self) -> bool {
        !self.is_down()
    }

    fn failed(&self, err: Option<&redis::RedisError>) {
        self.open_until.store(
            self.mono_ms()
                .saturating_add(millis(self.opts.circuit_open_for)),
            Ordering::Release,
        );
        if !self.down.swap(true, Ordering::AcqRel) {
            let budgets = match self.opts.budget_fallback {
                BudgetFallback::Refuse => "refusing requests that a budget applies to",
                BudgetFallback::Local => "counting budgets locally from the database's spend",
            };
            match err {
                Some(e) => tracing::warn!(
                    redis = %self.redacted,
                    error_kind = ?e.kind(),
                    error_code = e.code().unwrap_or(""),
                    "Redis unavailable: counting rate limits locally and {budgets} until it is back"
                ),
                None => tracing::warn!(
                    redis = %self.redacted,
                    timeout_ms = millis(self.opts.timeout),
                    "Redis timed out: counting rate limits locally and {budgets} until it is back"
                ),
            }
        }
    }

    fn succeeded(&self) {
        if self.down.load(Ordering::Acquire) && self.down.swap(false, Ordering::AcqRel) {
            tracing::info!(redis = %self.redacted, "Redis reachable again: counting in Redis");
        }
    }

    fn conn(&self) -> Option<ConnectionManager> {
        if let Some(c) = self.conn.get() {
            return Some(c.clone());
        }
        let connect_timeout = self.opts.timeout.max(Duration::from_secs(1));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None)
            .set_number_of_retries(0)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
            Ok(m) => {
                let _ = self.conn.set(m);
                self.conn.get().cloned()
            }
            Err(e) => {
                self.failed(Some(&e));
                None
            }
        }
    }

    /// Run a prepared script, bounded by the timeout; records health.
    async fn run(&self, inv: &redis::ScriptInvocation<'_>) -> Option<Value> {
        let mut conn = self.conn()?;
        match tokio::time::timeout(self.opts.timeout, inv.invoke_async::<Value>(&mut conn)).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Some(v)
            }
            Ok(Err(e)) => {
                self.failed(Some(&e));
                None
            }
            Err(_) => {
                self.failed(None);
                None
            }
        }
    }

    /// Check that Redis answers (used at start so `mode()` is right early).
    pub(crate) async fn probe(&self) {
        let Some(mut conn) = self.conn() else { return };
        let ping = redis::cmd("PING");
        match tokio::time::timeout(self.opts.timeout, ping.query_async::<Value>(&mut conn)).await {
            Ok(Ok(_)) => self.succeeded(),
            Ok(Err(e)) => self.failed(Some(&e)),
            Err(_) => self.failed(None),
        }
    }

    fn key(&self, kind: &str, scope: &Scope) -> String {
        let p = &self.opts.key_prefix;
        let mut k = String::with_capacity(p.len() + kind.len() + scope.as_str().len());
        k.push_str(p);
        k.push_str(kind);
        k.push_str(scope.as_str());
        k
    }

    fn budget_keys(&self, scope: &Scope, period: u64) -> (String, String) {
        let p = &self.opts.key_prefix;
        (
            format!("{p}b:{scope}:{period}"),
            format!("{p}bx:{scope}:{period}"),
        )
    }

    pub(crate) async fn admit(&self, req: &Admit<'_>) -> RedisOutcome {
        // Lease ids are unique even if request ids repeat; bounded in length.
        let rid = match req.request_id.char_indices().nth(64) {
            Some((i, _)) => &req.request_id[..i],
            None => req.request_id,
        };
        let lease_id = format!(
            "{rid}/{}{:x}",
            self.instance,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let cost_min = clamp_pico(req.cost_min_pico);
        let cost_max = clamp_pico(req.cost_max_pico).max(cost_min);
        let mut inv = self.admit_script.prepare_invoke();
        inv.arg(req.rpm.len())
            .arg(req.tpm.len())
            .arg(req.parallel.len())
            .arg(req.budgets.len())
            .arg(&lease_id)
            .arg(millis(self.opts.parallel_lease))
            .arg(millis(self.opts.reservation_lease))
            .arg(cost_min)
            .arg(cost_max);
        for l in req.rpm {
            inv.key(self.key("r:", l.scope)).arg(l.limit);
        }
        for l in req.tpm {
            inv.key(self.key("t:", l.scope)).arg(l.limit);
        }
        for l in req.parallel {
            inv.key(self.key("p:", l.scope)).arg(l.limit);
        }
        for b in req.budgets {
            let (h, z) = self.budget_keys(b.scope, b.period);
            inv.key(h)
                .key(z)
                .arg(clamp_pico(b.max_pico))
                .arg(clamp_pico(b.seed_spend_pico))
                .arg(budget_ttl_ms(b));
        }
        let Some(reply) = self.run(&inv).await else {
            return RedisOutcome::Failed(lease_id);
        };
        match parse_admit(req, &reply) {
            Some(Ok(grant)) => RedisOutcome::Done(Ok((grant, lease_id))),
            Some(Err(refusal)) => RedisOutcome::Done(Err(refusal)),
            None => {
                tracing::warn!("unexpected reply from the Redis admit script; counting locally");
                RedisOutcome::Failed(lease_id)
            }
        }
    }

    /// Settle or release in Redis; `false` when Redis failed (the caller may retry).
    pub(crate) async fn settle(&self, t: &Ticket, actual: i64, tokens: u64, retry: bool) -> bool {
        let mut nt = 0usize;
        let mut np = 0usize;
        let mut nb = 0usize;
        for h in &t.holds {
            match h {
                Hold::Tpm(_) => nt += 1,
                Hold::Parallel(_) => np += 1,
                Hold::Budget { .. } => nb += 1,
            }
        }
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
        let mut inv = self.settle_script.prepare_invoke();
        inv.arg(nt)
            .arg(np)
            .arg(nb)
            .arg(&t.lease_id)
            .arg(tokens)
            .arg(clamp_pico(actual))
            .arg(if retry { 1 } else { 0 });
        for h in &t.holds {
            if let Hold::Tpm(s) = h {
                inv.key(self.key("t:", s));
            }
        }
        for h in &t.holds {
            if let Hold::Parallel(s) = h {
                inv.key(self.key("p:", s));
            }
        }
        for h in &t.holds {
            if let Hold::Budget {
                scope,
                period,
                ttl_ms,
            } = h
            {
                let (hk, zk) = self.budget_keys(scope, *period);
                inv.key(hk).key(zk).arg(*ttl_ms);
            }
        }
        self.run(&inv).await.is_some()
    }
}

fn parse_admit(req: &Admit<'_>, reply: &Value) -> Option<Result<Grant, Refusal>> {
    let Value::Array(items) = reply else {
        return None;
    };
    let status = int(items.first()?)?;
    let idx = usize::try_from(int(items.get(1)?)?).ok();
    let ms = u64::try_from(int(items.get(2)?)?).unwrap_or(0);
    Some(match status {
        0 => {
            let reserved = int(items.get(1)?)?;
            let rem_tok = int(items.get(3)?)?;
            Ok(Grant {
                reserved_pico: reserved,
                remaining_requests: u64::try_from(int(items.get(2)?)?).ok(),
                remaining_tokens: u64::try_from(rem_tok).ok(),
            })
        }
        1 => {
            let l = req.rpm.get(idx?)?;
            Err(Refusal::Rpm {
                scope: l.scope.clone(),
                limit: l.limit,
                retry_after: retry_after_ms(ms),
            })
        }
        2 => {
            let l = req.tpm.get(idx?)?;
            Err(Refusal::Tpm {
                scope: l.scope.clone(),
                limit: l.limit,
                retry_after: retry_after_ms(ms),
            })
        }
        3 => {
            let l = req.parallel.get(idx?)?;
            Err(Refusal::Parallel {
                scope: l.scope.clone(),
                limit: l.limit,
                retry_after: PARALLEL_RETRY_AFTER,
            })
        }
        4 => {
            let b = req.budgets.get(idx?)?;
            Err(Refusal::Budget {
                scope: b.scope.clone(),
                max_pico: clamp_pico(b.max_pico),
            })
        }
        _ => return None,
    })
}
