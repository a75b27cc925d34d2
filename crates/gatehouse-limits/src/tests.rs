#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::local::LocalCounters;
use crate::*;

/// The start of a unix minute (in 2026).
const T0: u64 = 29_666_667 * 60_000;

fn admit<'a>(rpm: &'a [Limit<'a>], tpm: &'a [Limit<'a>], parallel: &'a [Limit<'a>]) -> Admit<'a> {
    Admit {
        request_id: "req",
        rpm,
        tpm,
        parallel,
        budgets: &[],
        cost_min_pico: 0,
        cost_max_pico: 0,
    }
}

fn budget(scope: &Scope, max: i64) -> Budget<'_> {
    Budget {
        scope,
        max_pico: max,
        period: 1,
        seed_spend_pico: 0,
        period_length: None,
    }
}

fn costs<'a>(budgets: &'a [Budget<'a>], min: i64, max: i64) -> Admit<'a> {
    Admit {
        request_id: "req",
        rpm: &[],
        tpm: &[],
        parallel: &[],
        budgets,
        cost_min_pico: min,
        cost_max_pico: max,
    }
}

#[test]
fn rpm_fixed_window_and_retry_after() {
    let c = LocalCounters::new();
    let s = Scope::new("key:a");
    let rpm = [Limit {
        scope: &s,
        limit: 3,
    }];
    let req = admit(&rpm, &[], &[]);
    for left in [2, 1, 0] {
        let g = c.admit(&req, T0 + 1_000).unwrap();
        assert_eq!(g.remaining_requests, Some(left));
        assert_eq!(g.remaining_tokens, None);
    }
    match c.admit(&req, T0 + 59_500) {
        Err(Refusal::Rpm {
            scope,
            limit,
            retry_after,
        }) => {
            assert_eq!(scope, s);
            assert_eq!(limit, 3);
            assert_eq!(retry_after, Duration::from_secs(1)); // 0.5 s rounded up
        }
        other => panic!("{other:?}"),
    }
    match c.admit(&req, T0 + 1) {
        Err(r) => assert_eq!(r.retry_after(), Some(Duration::from_secs(60))),
        Ok(_) => panic!("admitted"),
    }
    match c.admit(&req, T0 + 30_200) {
        Err(r) => assert_eq!(r.retry_after(), Some(Duration::from_secs(30))),
        Ok(_) => panic!("admitted"),
    }
    // The next window starts from zero (boundary burst: 3 more right away).
    for _ in 0..3 {
        c.admit(&req, T0 + 60_000).unwrap();
    }
    assert!(c.admit(&req, T0 + 60_001).is_err());
}

#[test]
fn tpm_admits_while_below_and_adds_at_settle() {
    let c = LocalCounters::new();
    let s = Scope::new("deployment:x");
    let tpm = [Limit {
        scope: &s,
        limit: 100,
    }];
    let req = admit(&[], &tpm, &[]);
    let holds = holds_of(&req);
    let g = c.admit(&req, T0).unwrap();
    assert_eq!(g.remaining_tokens, Some(100));
    c.settle(&holds, 0, 0, 60, T0 + 10);
    let g = c.admit(&req, T0 + 20).unwrap();
    assert_eq!(g.remaining_tokens, Some(40));
    c.settle(&holds, 0, 0, 50, T0 + 30);
    match c.admit(&req, T0 + 40) {
        Err(Refusal::Tpm { limit: 100, .. }) => {}
        other => panic!("{other:?}"),
    }
    // Tokens settled in the next minute count there.
    c.admit(&req, T0 + 60_000).unwrap();
    c.settle(&holds, 0, 0, 100, T0 + 60_100);
    assert!(c.admit(&req, T0 + 60_200).is_err());
    assert!(c.admit(&req, T0 + 120_000).is_ok());
}

#[test]
fn refusal_counts_nothing() {
    let c = LocalCounters::new();
    let a = Scope::new("key:a");
    let b = Scope::new("team:b");
    let p = Scope::new("key:p");
    let bud = Scope::new("key:bud");
    // Exhaust team b.
    let only_b = [Limit {
        scope: &b,
        limit: 1,
    }];
    c.admit(&admit(&only_b, &[], &[]), T0).unwrap();
    // a + b: refused by b; a must not count.
    let both = [
        Limit {
            scope: &a,
            limit: 2,
        },
        Limit {
            scope: &b,
            limit: 1,
        },
    ];
    let par = [Limit {
        scope: &p,
        limit: 1,
    }];
    for _ in 0..5 {
        match c.admit(&admit(&both, &[], &par), T0 + 1) {
            Err(Refusal::Rpm { scope, .. }) => assert_eq!(scope, b),
            other => panic!("{other:?}"),
        }
    }
    // A budget refusal counts nothing either.
    let budgets = [budget(&bud, 10)];
    let only_a = [Limit {
        scope: &a,
        limit: 2,
    }];
    let req = Admit {
        rpm: &only_a,
        parallel: &par,
        ..costs(&budgets, 11, 11)
    };
    assert!(matches!(
        c.admit(&req, T0 + 2),
        Err(Refusal::Budget { max_pico: 10, .. })
    ));
    // a still has both requests, p its slot, the budget all of its money.
    let g = c.admit(&admit(&only_a, &[], &par), T0 + 3).unwrap();
    assert_eq!(g.remaining_requests, Some(1));
    let g = c.admit(&costs(&budgets, 10, 10), T0 + 4).unwrap();
    assert_eq!(g.reserved_pico, 10);
}

#[tokio::test]
async fn parallel_slots() {
    let l = Limiter::local();
    let s = Scope::new("key:p");
    let par = [Limit {
        scope: &s,
        limit: 2,
    }];
    let req = admit(&[], &[], &par);
    let a1 = l.admit(&req).await.unwrap();
    let a2 = l.admit(&req).await.unwrap();
    match l.admit(&req).await {
        Err(Refusal::Parallel {
            retry_after, limit, ..
        }) => {
            assert_eq!(retry_after, Duration::from_secs(1));
            assert_eq!(limit, 2);
        }
        other => panic!("{other:?}"),
    }
    l.release(a1).await;
    let a3 = l.admit(&req).await.unwrap();
    l.settle(a2, 0, 10).await;
    // Dropping an admission frees its slot too.
    drop(a3);
    let _b1 = l.admit(&req).await.unwrap();
    let _b2 = l.admit(&req).await.unwrap();
    assert!(l.admit(&req).await.is_err());
    assert_eq!(l.mode(), Mode::Local);
}

#[tokio::test]
async fn budget_reserve_clamp_settle_release() {
    let l = Limiter::local();
    let s = Scope::new("key:b");
    let budgets = [budget(&s, 1_000)];
    // Full reservation of cost_max.
    let a1 = l.admit(&costs(&budgets, 100, 600)).await.unwrap();
    assert_eq!(a1.reserved_pico(), 600);
    assert_eq!(a1.place(), Place::Local);
    // Clamped to what is left.
    let a2 = l.admit(&costs(&budgets, 100, 600)).await.unwrap();
    assert_eq!(a2.reserved_pico(), 400);
    // Nothing left.
    assert!(matches!(
        l.admit(&costs(&budgets, 0, 600)).await,
        Err(Refusal::Budget { .. })
    ));
    // Settle a1 at 200: 400 returns.
    l.settle(a1, 200, 0).await;
    // cost_min above what is left: refused though something is left.
    assert!(l.admit(&costs(&budgets, 401, 500)).await.is_err());
    let a3 = l.admit(&costs(&budgets, 100, 1_000)).await.unwrap();
    assert_eq!(a3.reserved_pico(), 400);
    // Release gives everything back.
    l.release(a3).await;
    l.release(a2).await;
    let a4 = l.admit(&costs(&budgets, 0, 10_000)).await.unwrap();
    assert_eq!(a4.reserved_pico(), 800);
    l.settle(a4, 800, 0).await;
    assert!(l.admit(&costs(&budgets, 0, 1)).await.is_err());
}

#[tokio::test]
async fn budget_over_report_is_recorded() {
    let l = Limiter::local();
    let s = Scope::new("key:o");
    let budgets = [budget(&s, 1_000)];
    let a = l.admit(&costs(&budgets, 10, 500)).await.unwrap();
    assert_eq!(a.reserved_pico(), 500);
    l.settle(a, 1_500, 0).await; // over the reservation and the budget
    assert!(matches!(
        l.admit(&costs(&budgets, 0, 0)).await,
        Err(Refusal::Budget { .. })
    ));
}

#[tokio::test]
async fn budget_smallest_wins_seed_and_periods() {
    let l = Limiter::local();
    let key = Scope::new("key:k");
    let team = Scope::new("team:t");
    let budgets = [
        Budget {
            seed_spend_pico: 700,
            ..budget(&key, 1_000)
        },
        budget(&team, 5_000),
    ];
    let a = l.admit(&costs(&budgets, 1, 10_000)).await.unwrap();
    assert_eq!(a.reserved_pico(), 300); // key: 1000 - 700 seed
    l.settle(a, 100, 0).await;
    // The team was charged too: 5000 - 100.
    let team_only = [budget(&team, 5_000)];
    let b = l.admit(&costs(&team_only, 1, 10_000)).await.unwrap();
    assert_eq!(b.reserved_pico(), 4_900);
    l.release(b).await;
    // A larger seed (the database saw more spend) raises the counter; a smaller one does not lower it.
    let seeded = [Budget {
        seed_spend_pico: 950,
        ..budget(&key, 1_000)
    }];
    let c = l.admit(&costs(&seeded, 1, 10_000)).await.unwrap();
    assert_eq!(c.reserved_pico(), 50);
    l.release(c).await;
    let low_seed = [Budget {
        seed_spend_pico: 0,
        ..budget(&key, 1_000)
    }];
    let c = l.admit(&costs(&low_seed, 1, 10_000)).await.unwrap();
    assert_eq!(c.reserved_pico(), 50);
    l.release(c).await;
    // A new period starts from zero.
    let next = [Budget {
        period: 2,
        ..budget(&key, 1_000)
    }];
    let d = l.admit(&costs(&next, 1, 10_000)).await.unwrap();
    assert_eq!(d.reserved_pico(), 1_000);
}

#[tokio::test]
async fn no_budget_reserves_cost_max_and_negative_costs_clamp() {
    let l = Limiter::local();
    let a = l.admit(&costs(&[], 5, 50)).await.unwrap();
    assert_eq!(a.reserved_pico(), 50);
    let b = l.admit(&costs(&[], 80, 50)).await.unwrap();
    assert_eq!(b.reserved_pico(), 80); // cost_max raised to cost_min
    let c = l.admit(&costs(&[], -5, -1)).await.unwrap();
    assert_eq!(c.reserved_pico(), 0);
}

#[test]
fn sweep_drops_idle_scopes() {
    let c = LocalCounters::new();
    let scopes: Vec<Scope> = (0..500).map(|i| Scope::new(format!("key:{i}"))).collect();
    for s in &scopes {
        let rpm = [Limit {
            scope: s,
            limit: 10,
        }];
        c.admit(&admit(&rpm, &[], &[]), T0).unwrap();
    }
    assert_eq!(c.len(), 500);
    // Same minute: nothing is idle.
    c.sweep_all(T0 + 1_000);
    assert_eq!(c.len(), 500);
    // One scope holds a slot, one a live budget.
    let held = Scope::new("key:held");
    let par = [Limit {
        scope: &held,
        limit: 1,
    }];
    c.admit(&admit(&[], &[], &par), T0).unwrap();
    let bud = Scope::new("key:bud");
    let budgets = [budget(&bud, 100)];
    let holds = holds_of(&costs(&budgets, 1, 10));
    c.admit(&costs(&budgets, 1, 10), T0).unwrap();
    c.settle(&holds, 10, 3, 0, T0 + 5);
    c.sweep_all(T0 + 120_000);
    assert_eq!(c.len(), 2);
    // The budget counter outlives its TTL (35 days) only while it has a reservation.
    c.sweep_all(T0 + DEFAULT_BUDGET_TTL.as_millis() as u64 + 10);
    assert_eq!(c.len(), 1);
    // Windows are swept as part of normal traffic, too (once a minute per shard).
    let rpm = [Limit {
        scope: &scopes[0],
        limit: 10,
    }];
    c.admit(&admit(&rpm, &[], &[]), T0 + 10 * 60_000).unwrap();
    assert!(c.len() <= 2 + 500);
}

#[test]
fn sweep_runs_during_traffic() {
    let c = LocalCounters::new();
    let mut now = T0;
    // 100 minutes, 200 fresh scopes a minute: memory stays bounded by live scopes.
    let mut max_len = 0;
    for minute in 0..100u64 {
        for i in 0..200u64 {
            let s = Scope::new(format!("key:{minute}:{i}"));
            let rpm = [Limit {
                scope: &s,
                limit: 5,
            }];
            c.admit(&admit(&rpm, &[], &[]), now).unwrap();
        }
        max_len = max_len.max(c.len());
        now += 60_000;
    }
    assert!(max_len <= 3 * 200 + 50, "{max_len}");
}

#[test]
fn concurrent_local_rpm_is_exact() {
    let l = LocalCounters::new();
    let s = Scope::new("key:c");
    let t = Scope::new("team:c");
    let admitted = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                let rpm = [
                    Limit {
                        scope: &s,
                        limit: 50,
                    },
                    Limit {
                        scope: &t,
                        limit: 1_000,
                    },
                ];
                for _ in 0..100 {
                    if l.admit(&admit(&rpm, &[], &[]), T0 + 5).is_ok() {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(admitted.into_inner(), 50);
    // team counted exactly the admitted ones
    let rpm = [Limit {
        scope: &t,
        limit: 1_000,
    }];
    let g = l.admit(&admit(&rpm, &[], &[]), T0 + 6).unwrap();
    assert_eq!(g.remaining_requests, Some(1_000 - 51));
}

/// A rough cost figure for the hot path (no timing assertion: benches measure).
#[tokio::test]
async fn sanity_cost_loop() {
    let l = Limiter::local();
    let key = Scope::new("key:0123456789abcdef");
    let team = Scope::new("team:t");
    let dep = Scope::new("deployment:d");
    let rpm = [
        Limit {
            scope: &key,
            limit: u64::MAX,
        },
        Limit {
            scope: &dep,
            limit: u64::MAX,
        },
    ];
    let tpm = [Limit {
        scope: &key,
        limit: u64::MAX,
    }];
    let par = [Limit {
        scope: &key,
        limit: 1_000,
    }];
    let budgets = [budget(&key, MAX_PICO), budget(&team, MAX_PICO)];
    let req = Admit {
        request_id: "r",
        rpm: &rpm,
        tpm: &tpm,
        parallel: &par,
        budgets: &budgets,
        cost_min_pico: 1,
        cost_max_pico: 1_000,
    };
    let n = 20_000u32;
    let start = Instant::now();
    for _ in 0..n {
        let a = l.admit(&req).await.unwrap();
        l.settle(a, 10, 10).await;
    }
    let per = start.elapsed() / n;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!("local admit+settle: {per:?} per request ({build} build)");
}

#[test]
fn redis_url_never_shows_password() {
    let u = RedisUrl::parse("redis://user:s3cr3t-pass@127.0.0.1:6380/2").unwrap();
    for s in [format!("{u:?}"), format!("{u}"), u.redacted().to_owned()] {
        assert!(!s.contains("s3cr3t"), "{s}");
        assert!(s.contains("***"), "{s}");
        assert!(s.contains("127.0.0.1:6380"), "{s}");
    }
    let u = RedisUrl::parse("redis://:only-pass@localhost/0").unwrap();
    assert!(!format!("{u:?}").contains("only-pass"));
    let u = RedisUrl::from_parts("redis.internal", 6379, None, Some("p@ss:word"), 0).unwrap();
    assert_eq!(u.redacted(), "redis://:***@redis.internal:6379/0");
    let u = RedisUrl::parse("redis://127.0.0.1:6379").unwrap();
    assert_eq!(u.redacted(), "redis://127.0.0.1:6379/0");
    for bad in [
        "http://user:hunter2@host",
        "redis://user:hunter2@[::1",
        "",
        "rediss://u:hunter2@h",
    ] {
        let e = RedisUrl::parse(bad).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
    let l = Limiter::with_redis(
        RedisUrl::parse("redis://u:hunter2@127.0.0.1:1/0").unwrap(),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert!(!format!("{l:?}").contains("hunter2"));
}

#[test]
fn refusal_messages() {
    let s = Scope::new("key:abc");
    let r = Refusal::Budget {
        scope: s.clone(),
        max_pico: 5,
    };
    assert_eq!(r.to_string(), "budget exceeded for key:abc");
    assert_eq!(r.retry_after(), None);
    let r = Refusal::Rpm {
        scope: s,
        limit: 5,
        retry_after: Duration::from_secs(3),
    };
    assert!(r.to_string().contains("5 requests per minute"));
}

#[tokio::test]
async fn types_and_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Limiter>();
    send_sync::<Scope>();
    send_sync::<Refusal>();
    let l = Limiter::with_redis(
        RedisUrl::parse("redis://127.0.0.1:1").unwrap(),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    let s = Scope::new("key:s");
    let par = [Limit {
        scope: &s,
        limit: 1,
    }];
    let r = admit(&[], &[], &par);
    let fut = l.admit(&r);
    send(&fut);
    let a = fut.await.unwrap();
    send(&a);
    let fut = l.settle(a, 0, 0);
    send(&fut);
    fut.await;
    let a = l.admit(&r).await.unwrap();
    let fut = l.release(a);
    send(&fut);
    fut.await;
}
