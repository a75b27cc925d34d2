//! In-process counters: the whole state when no Redis is configured, the fallback when it
//! is unreachable. Same semantics as the Redis scripts.
//!
//! Scopes live in `SHARDS` maps behind `std::sync::Mutex`es. One admit locks every shard
//! its scopes fall in, in ascending order (no deadlock), checks everything, then counts
//! everything, so it is atomic and all-or-nothing. Nothing awaits while a lock is held.
//! A shard sweeps idle scopes (stale windows, no slot in flight, no live budget) at most
//! once a minute when it is locked, so memory is bounded by the live scopes.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::types::PassThroughBuild;
use crate::{Admit, Grant, Hold, MAX_PICO, PARALLEL_RETRY_AFTER, Refusal, Scope};
use crate::{budget_ttl_ms, clamp_pico, retry_after_ms};

const SHARDS: usize = 32;
const SWEEP_EVERY_MS: u64 = 60_000;

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Scope, Entry, PassThroughBuild>,
    next_sweep_ms: u64,
}

#[derive(Debug, Default)]
struct Entry {
    rpm_w: u64,
    rpm_n: u64,
    tpm_w: u64,
    tpm_n: u64,
    parallel: u64,
    budgets: Vec<Cell>,
}

#[derive(Debug)]
struct Cell {
    period: u64,
    spend: i64,
    reserved: i64,
    ttl_ms: u64,
    touched_ms: u64,
}

impl Entry {
    fn rpm(&self, minute: u64) -> u64 {
        if self.rpm_w == minute { self.rpm_n } else { 0 }
    }
    fn tpm(&self, minute: u64) -> u64 {
        if self.tpm_w == minute { self.tpm_n } else { 0 }
    }
    fn cell(&self, period: u64) -> Option<&Cell> {
        self.budgets.iter().find(|c| c.period == period)
    }
    fn idle(&mut self, minute: u64, now: u64) -> bool {
        self.budgets
            .retain(|c| c.reserved > 0 || now < c.touched_ms.saturating_add(c.ttl_ms));
        self.parallel == 0
            && self.rpm_w != minute
            && self.tpm_w != minute
            && self.budgets.is_empty()
    }
}

/// The in-process counters.
#[derive(Debug)]
pub(crate) struct LocalCounters {
    shards: [Mutex<Shard>; SHARDS],
}

fn shard_of(scope: &Scope) -> usize {
    // Middle bits: the map itself uses the low bits (index) and the top bits (tags).
    ((scope.hash64() >> 32) as usize) % SHARDS
}

/// The locked shards of one operation.
struct Locked<'a> {
    guards: [Option<MutexGuard<'a, Shard>>; SHARDS],
}

impl Locked<'_> {
    fn get(&self, scope: &Scope) -> Option<&Entry> {
        self.guards[shard_of(scope)]
            .as_ref()
            .and_then(|g| g.map.get(scope))
    }
    fn entry(&mut self, scope: &Scope) -> Option<&mut Entry> {
        let shard = self.guards[shard_of(scope)].as_mut()?;
        if !shard.map.contains_key(scope) {
            shard.map.insert(scope.clone(), Entry::default());
        }
        shard.map.get_mut(scope)
    }
    fn sweep(&mut self, now: u64) {
        let minute = now / 60_000;
        for shard in self.guards.iter_mut().flatten() {
            if now >= shard.next_sweep_ms {
                shard.next_sweep_ms = now + SWEEP_EVERY_MS;
                shard.map.retain(|_, e| !e.idle(minute, now));
            }
        }
    }
}

impl LocalCounters {
    pub(crate) fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
        }
    }

    fn lock(&self, mask: u32) -> Locked<'_> {
        let mut guards: [Option<MutexGuard<'_, Shard>>; SHARDS] = std::array::from_fn(|_| None);
        for (i, slot) in guards.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                // A poisoned lock only means another thread panicked while holding it;
                // counters are plain integers and stay usable.
                *slot = Some(self.shards[i].lock().unwrap_or_else(|e| e.into_inner()));
            }
        }
        Locked { guards }
    }

    /// Number of scopes held.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }

    /// Sweep every shard now (tests).
    #[cfg(test)]
    pub(crate) fn sweep_all(&self, now: u64) {
        let mut l = self.lock(u32::MAX);
        for s in l.guards.iter_mut().flatten() {
            s.next_sweep_ms = 0;
        }
        l.sweep(now);
    }

    pub(crate) fn admit(&self, req: &Admit<'_>, now: u64) -> Result<Grant, Refusal> {
        let minute = now / 60_000;
        let to_next = 60_000 - now % 60_000;
        let mut mask = 0u32;
        for l in req.rpm.iter().chain(req.tpm).chain(req.parallel) {
            mask |= 1 << shard_of(l.scope);
        }
        for b in req.budgets {
            mask |= 1 << shard_of(b.scope);
        }
        let mut locked = self.lock(mask);

        // Check everything first.
        let mut remaining_requests: Option<u64> = None;
        for l in req.rpm {
            let n = locked.get(l.scope).map_or(0, |e| e.rpm(minute));
            if n >= l.limit {
                return Err(Refusal::Rpm {
                    scope: l.scope.clone(),
                    limit: l.limit,
                    retry_after: retry_after_ms(to_next),
                });
            }
            let left = l.limit - n - 1;
            remaining_requests = Some(remaining_requests.map_or(left, |r| r.min(left)));
        }
        let mut remaining_tokens: Option<u64> = None;
        for l in req.tpm {
            let n = locked.get(l.scope).map_or(0, |e| e.tpm(minute));
            if n >= l.limit {
                return Err(Refusal::Tpm {
                    scope: l.scope.clone(),
                    limit: l.limit,
                    retry_after: retry_after_ms(to_next),
                });
            }
            let left = l.limit - n;
            remaining_tokens = Some(remaining_tokens.map_or(left, |r| r.min(left)));
        }
        for l in req.parallel {
            let n = locked.get(l.scope).map_or(0, |e| e.parallel);
            if n >= l.limit {
                return Err(Refusal::Parallel {
                    scope: l.scope.clone(),
                    limit: l.limit,
                    retry_after: PARALLEL_RETRY_AFTER,
                });
            }
        }
        let cost_min = clamp_pico(req.cost_min_pico);
        let cost_max = clamp_pico(req.cost_max_pico).max(cost_min);
        let mut reserved = cost_max;
        if let Some(first) = req.budgets.first() {
            let mut least = (i64::MAX, first);
            for b in req.budgets {
                let seed = clamp_pico(b.seed_spend_pico);
                let (spend, held) = locked
                    .get(b.scope)
                    .and_then(|e| e.cell(b.period))
                    .map_or((seed, 0), |c| (c.spend.max(seed), c.reserved));
                let left = clamp_pico(b.max_pico)
                    .saturating_sub(spend)
                    .saturating_sub(held);
                if left < least.0 {
                    least = (left, b);
                }
            }
            reserved = cost_max.min(least.0);
            if least.0 <= 0 || reserved < cost_min {
                return Err(Refusal::Budget {
                    scope: least.1.scope.clone(),
                    max_pico: clamp_pico(least.1.max_pico),
                });
            }
        }

        // Then count everything.
        for l in req.rpm {
            if let Some(e) = locked.entry(l.scope) {
                e.rpm_n = e.rpm(minute) + 1;
                e.rpm_w = minute;
            }
        }
        for l in req.parallel {
            if let Some(e) = locked.entry(l.scope) {
                e.parallel += 1;
            }
        }
        for b in req.budgets {
            let seed = clamp_pico(b.seed_spend_pico);
            let ttl_ms = budget_ttl_ms(b);
            if let Some(e) = locked.entry(b.scope) {
                match e.budgets.iter_mut().find(|c| c.period == b.period) {
                    Some(c) => {
                        c.spend = c.spend.max(seed);
                        c.reserved = c.reserved.saturating_add(reserved).min(MAX_PICO);
                        c.touched_ms = now;
                    }
                    None => e.budgets.push(Cell {
                        period: b.period,
                        spend: seed,
                        reserved,
                        ttl_ms,
                        touched_ms: now,
                    }),
                }
            }
        }
        locked.sweep(now);
        Ok(Grant {
            reserved_pico: reserved,
            remaining_requests,
            remaining_tokens,
        })
    }

    /// Hand back what an admission held: `reserved` leaves every budget's reservation,
    /// `actual` is added to its spend, `tokens` to its tpm windows, parallel slots free.
    pub(crate) fn settle(&self, holds: &[Hold], reserved: i64, actual: i64, tokens: u64, now: u64) {
        if holds.is_empty() {
            return;
        }
        let minute = now / 60_000;
        let mut mask = 0u32;
        for h in holds {
            let scope = match h {
                Hold::Tpm(s) | Hold::Parallel(s) | Hold::Budget { scope: s, .. } => s,
            };
            mask |= 1 << shard_of(scope);
        }
        let mut locked = self.lock(mask);
        for h in holds {
            match h {
                Hold::Tpm(scope) => {
                    if tokens > 0
                        && let Some(e) = locked.entry(scope)
                    {
                        e.tpm_n = e.tpm(minute).saturating_add(tokens);
                        e.tpm_w = minute;
                    }
                }
                Hold::Parallel(scope) => {
                    if let Some(e) = locked.entry(scope) {
                        e.parallel = e.parallel.saturating_sub(1);
                    }
                }
                Hold::Budget {
                    scope,
                    period,
                    ttl_ms,
                } => {
                    if let Some(e) = locked.entry(scope) {
                        match e.budgets.iter_mut().find(|c| c.period == *period) {
                            Some(c) => {
                                c.reserved = c.reserved.saturating_sub(reserved).max(0);
                                c.spend = c.spend.saturating_add(actual);
                                c.touched_ms = now;
                            }
                            None if actual > 0 => e.budgets.push(Cell {
                                period: *period,
                                spend: actual,
                                reserved: 0,
                                ttl_ms: *ttl_ms,
                                touched_ms: now,
                            }),
                            None => {}
                        }
                    }
                }
            }
        }
        locked.sweep(now);
    }
}
