//! Against a real Redis (`GATEHOUSE_TEST_REDIS_URL`; without it these print SKIPPED, or fail
//! when `GATEHOUSE_REQUIRE_STORES` is set).
//! Each test uses its own random key prefix and deletes its keys at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

mod common;

use common::*;
use gatehouse_limits::*;
use redis::AsyncCommands;

fn limiter(url: &str, prefix: &str) -> Limiter {
    Limiter::with_redis_options(RedisUrl::parse(url).unwrap(), options(prefix)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rpm_exact_across_two_limiters() {
    let Some(url) = url() else { return };
    let p = prefix();
    away_from_minute_boundary(&url).await;
    let a = limiter(&url, &p);
    let b = limiter(&url, &p);
    let scope = Scope::new("key:shared");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            let rpm = [Limit {
                scope: &scope,
                limit: 50,
            }];
            match l.admit(&req(&rpm, &[], &[])).await {
                Ok(adm) => {
                    assert_eq!(adm.place(), Place::Redis);
                    l.settle(adm, 0, 0).await;
                    true
                }
                Err(Refusal::Rpm { retry_after, .. }) => {
                    assert!(retry_after >= Duration::from_secs(1));
                    assert!(retry_after <= Duration::from_secs(60));
                    false
                }
                Err(other) => panic!("{other:?}"),
            }
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap()
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 50);
    assert_eq!(a.mode(), Mode::Redis);
    assert_eq!(b.mode(), Mode::Redis);
    cleanup(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_never_exceeded_under_200_concurrent_reservations() {
    let Some(url) = url() else { return };
    let p = prefix();
    let limiters = [limiter(&url, &p), limiter(&url, &p)];
    let scope = Scope::new("team:budget");
    let max = 10_000i64;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let l = limiters[i % 2].clone();
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            let budgets = [budget(&scope, max)];
            let r = Admit {
                cost_min_pico: 100,
                cost_max_pico: 300,
                ..req(&[], &[], &budgets)
            };
            match l.admit(&r).await {
                Ok(adm) => {
                    let reserved = adm.reserved_pico();
                    assert!((100..=300).contains(&reserved), "{reserved}");
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..20))).await;
                    // Spend at most what was reserved.
                    let actual = fastrand::i64(0..=reserved);
                    l.settle(adm, actual, 10).await;
                    (reserved, actual)
                }
                Err(Refusal::Budget { max_pico, .. }) => {
                    assert_eq!(max_pico, max);
                    (0, 0)
                }
                Err(other) => panic!("{other:?}"),
            }
        }));
    }
    let mut spent = 0;
    let mut admitted = 0;
    for t in tasks {
        let (reserved, actual) = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
        if reserved > 0 {
            admitted += 1;
        }
        spent += actual;
    }
    assert!(admitted >= 33, "{admitted}");
    let mut c = raw(&url).await;
    let key = format!("{p}b:team:budget:7");
    let (spend, reserved): (i64, i64) = redis::cmd("HMGET")
        .arg(&key)
        .arg("spend")
        .arg("reserved")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(spend, spent);
    assert!(spend <= max);
    assert_eq!(reserved, 0);
    let ttl: i64 = c.pttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= 7_200_000, "{ttl}");
    let zlen: i64 = c.zcard(format!("{p}bx:team:budget:7")).await.unwrap();
    assert_eq!(zlen, 0);
    cleanup(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_exact_and_released() {
    let Some(url) = url() else { return };
    let p = prefix();
    let limiters = [limiter(&url, &p), limiter(&url, &p)];
    let scope = Scope::new("key:par");
    let try_all = |n: usize| {
        let mut tasks = Vec::new();
        for i in 0..n {
            let l = limiters[i % 2].clone();
            let scope = scope.clone();
            tasks.push(tokio::spawn(async move {
                let par = [Limit {
                    scope: &scope,
                    limit: 5,
                }];
                l.admit(&req(&[], &par, &[])).await.ok().map(|a| (l, a))
            }));
        }
        tasks
    };
    let mut held = Vec::new();
    for t in try_all(60) {
        if let Some(x) = t.await.unwrap() {
            held.push(x);
        }
    }
    assert_eq!(held.len(), 5);
    for (l, a) in held.drain(..) {
        l.release(a).await;
    }
    for t in try_all(60) {
        if let Some(x) = t.await.unwrap() {
            held.push(x);
        }
    }
    assert_eq!(held.len(), 5);
    // Dropped admissions are released too (from a spawned task).
    drop(held);
    let mut c = raw(&url).await;
    let key = format!("{p}p:key:par");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = c.zcard(&key).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} slots still held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cleanup(&url, &p).await;
}

#[tokio::test]
async fn settle_and_release_bookkeeping() {
    let Some(url) = url() else { return };
    let p = prefix();
    away_from_minute_boundary(&url).await;
    let l = limiter(&url, &p);
    let key = Scope::new("key:k");
    let team = Scope::new("team:t");
    let rpm = [Limit {
        scope: &key,
        limit: 10,
    }];
    let tpm = [Limit {
        scope: &key,
        limit: 1_000,
    }];
    let par = [Limit {
        scope: &key,
        limit: 2,
    }];
    let budgets = [
        Budget {
            seed_spend_pico: 400,
            ..budget(&key, 1_000)
        },
        budget(&team, 5_000),
    ];
    let r = Admit {
        request_id: "call-1",
        rpm: &rpm,
        tpm: &tpm,
        parallel: &par,
        budgets: &budgets,
        cost_min_pico: 50,
        cost_max_pico: 900,
    };
    let mut c = raw(&url).await;
    let bkey = format!("{p}b:key:k:7");
    let tkey = format!("{p}b:team:t:7");

    let a1 = l.admit(&r).await.unwrap();
    assert_eq!(a1.place(), Place::Redis);
    assert_eq!(a1.reserved_pico(), 600); // 1000 - 400 seed
    assert_eq!(a1.remaining_requests(), Some(9));
    assert_eq!(a1.remaining_tokens(), Some(1_000));
    let reserved: i64 = c.hget(&bkey, "reserved").await.unwrap();
    assert_eq!(reserved, 600);
    let team_reserved: i64 = c.hget(&tkey, "reserved").await.unwrap();
    assert_eq!(team_reserved, 600);
    let slots: i64 = c.zcard(format!("{p}p:key:k")).await.unwrap();
    assert_eq!(slots, 1);

    // Key budget exhausted by the reservation: refused, nothing counted.
    match l.admit(&r).await {
        Err(Refusal::Budget { scope, .. }) => assert_eq!(scope, key),
        other => panic!("{other:?}"),
    }
    let slots: i64 = c.zcard(format!("{p}p:key:k")).await.unwrap();
    assert_eq!(slots, 1);

    // Settle: spend recorded, rest released, tokens added, slot freed.
    l.settle(a1, 250, 120).await;
    let (spend, reserved): (i64, i64) = redis::cmd("HMGET")
        .arg(&bkey)
        .arg("spend")
        .arg("reserved")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((spend, reserved), (650, 0));
    let team_spend: i64 = c.hget(&tkey, "spend").await.unwrap();
    assert_eq!(team_spend, 250);
    let fields: Vec<String> = c.hkeys(&bkey).await.unwrap();
    assert_eq!(fields.len(), 2, "{fields:?}"); // spend, reserved: no reservation left
    let slots: i64 = c.zcard(format!("{p}p:key:k")).await.unwrap();
    assert_eq!(slots, 0);
    let tokens: i64 = c.hget(format!("{p}t:key:k"), "n").await.unwrap();
    assert_eq!(tokens, 120);

    // Release gives the whole reservation back and records no spend.
    let a2 = l.admit(&r).await.unwrap();
    assert_eq!(a2.reserved_pico(), 350);
    assert_eq!(a2.remaining_requests(), Some(8));
    assert_eq!(a2.remaining_tokens(), Some(880));
    l.release(a2).await;
    let (spend, reserved): (i64, i64) = redis::cmd("HMGET")
        .arg(&bkey)
        .arg("spend")
        .arg("reserved")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((spend, reserved), (650, 0));

    // Over-report: recorded, then refused.
    let a3 = l.admit(&r).await.unwrap();
    l.settle(a3, 2_000, 0).await;
    let spend: i64 = c.hget(&bkey, "spend").await.unwrap();
    assert_eq!(spend, 2_650);
    assert!(matches!(l.admit(&r).await, Err(Refusal::Budget { .. })));
    cleanup(&url, &p).await;
}

#[tokio::test]
async fn big_amounts_stay_conservative() {
    let Some(url) = url() else { return };
    let p = prefix();
    let l = limiter(&url, &p);
    let s = Scope::new("team:rich");
    let max = 1i64 << 60;
    let budgets = [Budget {
        seed_spend_pico: max - 1_000_000,
        ..budget(&s, max)
    }];
    let r = Admit {
        cost_min_pico: 1,
        cost_max_pico: 1 << 61,
        ..req(&[], &[], &budgets)
    };
    let a = l.admit(&r).await.unwrap();
    let got = a.reserved_pico();
    assert!((1_000_000 - 8_192..=1_000_000).contains(&got), "{got}");
    l.settle(a, got, 0).await;
    let spend: String = redis::cmd("HGET")
        .arg(format!("{p}b:team:rich:7"))
        .arg("spend")
        .query_async(&mut raw(&url).await)
        .await
        .unwrap();
    assert_eq!(spend.parse::<i64>().unwrap(), max - 1_000_000 + got);
    cleanup(&url, &p).await;
}

#[tokio::test]
async fn leases_expire_when_never_settled() {
    let Some(url) = url() else { return };
    let p = prefix();
    let l = Limiter::with_redis_options(
        RedisUrl::parse(&url).unwrap(),
        RedisOptions {
            parallel_lease: Duration::from_millis(600),
            reservation_lease: Duration::from_millis(600),
            ..options(&p)
        },
    )
    .unwrap();
    let s = Scope::new("key:crash");
    let par = [Limit {
        scope: &s,
        limit: 1,
    }];
    let budgets = [budget(&s, 1_000)];
    let r = Admit {
        cost_min_pico: 1_000,
        cost_max_pico: 1_000,
        ..req(&[], &par, &budgets)
    };
    let a = l.admit(&r).await.unwrap();
    // A crashed replica: never settled, never dropped.
    std::mem::forget(a);
    assert!(l.admit(&r).await.is_err());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let a = l.admit(&r).await.unwrap();
    assert_eq!(a.reserved_pico(), 1_000);
    l.release(a).await;
    cleanup(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_falls_back_within_timeout() {
    // A closed loopback port (connection refused) and a port that accepts but never answers.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let timeout = Duration::from_millis(100);
    let margin = Duration::from_millis(250);
    for port in [closed, silent_port] {
        let l = Limiter::with_redis_options(
            RedisUrl::parse(&format!("redis://:pw@127.0.0.1:{port}/0")).unwrap(),
            RedisOptions {
                timeout,
                key_prefix: prefix(),
                budget_fallback: BudgetFallback::Local,
                ..RedisOptions::default()
            },
        )
        .unwrap();
        let s = Scope::new("key:down");
        let rpm = [Limit {
            scope: &s,
            limit: 3,
        }];
        let par = [Limit {
            scope: &s,
            limit: 100,
        }];
        let budgets = [budget(&s, 1_000)];
        let r = Admit {
            cost_min_pico: 10,
            cost_max_pico: 100,
            ..req(&rpm, &par, &budgets)
        };
        let started = Instant::now();
        let mut admitted = 0;
        let mut held = Vec::new();
        for _ in 0..6 {
            let (out, took) = timed(&l, &r).await;
            assert!(took <= timeout + margin, "port {port}: took {took:?}");
            if let Ok(a) = out {
                assert_eq!(a.place(), Place::Local);
                admitted += 1;
                held.push(a);
            }
        }
        assert_eq!(admitted, 3, "local counting took over");
        assert_eq!(l.mode(), Mode::RedisDegraded);
        for a in held {
            let t = Instant::now();
            l.settle(a, 5, 1).await;
            assert!(t.elapsed() <= timeout + margin);
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    drop(silent);
}

/// Budgets fail closed by default (PRODUCT.md invariant 7): while Redis is unreachable an
/// admit carrying a budget is refused, also after the circuit opened, while rate limits are
/// still counted (locally) and admits without budgets pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_fail_closed_by_default() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let l = Limiter::with_redis(
        RedisUrl::parse(&format!("redis://127.0.0.1:{closed}")).unwrap(),
        Duration::from_millis(100),
    )
    .unwrap();
    let s = Scope::new("key:fc");
    let budgets = [budget(&s, 1_000)];
    for _ in 0..3 {
        match l.admit(&req(&[], &[], &budgets)).await {
            Err(Refusal::Unavailable { retry_after }) => {
                assert!(retry_after >= Duration::from_secs(1));
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert_eq!(l.mode(), Mode::RedisDegraded);
    // Rate limits keep counting, locally.
    let rpm = [Limit {
        scope: &s,
        limit: 2,
    }];
    assert_eq!(
        l.admit(&req(&rpm, &[], &[])).await.unwrap().place(),
        Place::Local
    );
    assert!(l.admit(&req(&rpm, &[], &[])).await.is_ok());
    assert!(matches!(
        l.admit(&req(&rpm, &[], &[])).await,
        Err(Refusal::Rpm { .. })
    ));
    // Without limits or budgets: nothing to count.
    assert!(l.admit(&req(&[], &[], &[])).await.is_ok());
}

/// `BudgetFallback::Local`: budgets are counted per replica, from the database's spend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_counted_locally_when_asked() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let l = Limiter::with_redis_options(
        RedisUrl::parse(&format!("redis://127.0.0.1:{closed}")).unwrap(),
        RedisOptions {
            timeout: Duration::from_millis(100),
            budget_fallback: BudgetFallback::Local,
            ..RedisOptions::default()
        },
    )
    .unwrap();
    let s = Scope::new("key:fl");
    let budgets = [Budget {
        seed_spend_pico: 600,
        ..budget(&s, 1_000)
    }];
    let r = Admit {
        cost_min_pico: 300,
        cost_max_pico: 300,
        ..req(&[], &[], &budgets)
    };
    let a = l.admit(&r).await.unwrap();
    assert_eq!(a.place(), Place::Local);
    assert_eq!(a.reserved_pico(), 300);
    // 600 spent + 300 held: 100 left, less than the 300 this needs.
    assert!(matches!(l.admit(&r).await, Err(Refusal::Budget { .. })));
    l.release(a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_and_recovery() {
    let Some(url) = url() else { return };
    let p = prefix();
    let proxy = Proxy::start(redis_addr(&url)).await;
    let db = url
        .rsplit('/')
        .next()
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(0);
    let via = RedisUrl::from_parts("127.0.0.1", proxy.port, None, None, db).unwrap();
    let opts = RedisOptions {
        timeout: Duration::from_millis(150),
        circuit_open_for: Duration::from_millis(300),
        ..options(&p)
    };
    let l = Limiter::with_redis_options(via, opts).unwrap();
    let s = Scope::new("key:flaky");
    let par = [Limit {
        scope: &s,
        limit: 100,
    }];
    let r = req(&[], &par, &[]);

    // Up: counted in Redis.
    let before = l.admit(&r).await.unwrap();
    assert_eq!(before.place(), Place::Redis);
    assert_eq!(l.mode(), Mode::Redis);

    // Cut: every call bounded, local counting.
    proxy.set(false);
    let mut local = 0;
    for _ in 0..20 {
        let (out, took) = timed(&l, &r).await;
        assert!(took <= Duration::from_millis(150 + 250), "took {took:?}");
        if out.unwrap().place() == Place::Local {
            local += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(local >= 19, "{local}");
    assert_eq!(l.mode(), Mode::RedisDegraded);
    // Settling the Redis admission now cannot reach Redis: it is retried later.
    let t = Instant::now();
    l.settle(before, 0, 0).await;
    assert!(t.elapsed() <= Duration::from_millis(400));
    // (plus the background releases of the admits that failed while probing)
    assert!(l.pending_settles() >= 1);

    // Restore: back to Redis within a few circuit periods.
    proxy.set(true);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = l.admit(&r).await.unwrap();
        if a.place() == Place::Redis {
            l.release(a).await;
            break;
        }
        assert!(Instant::now() < deadline, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(l.mode(), Mode::Redis);
    // The pending settle went through: no slot left in Redis.
    let mut c = raw(&url).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n: i64 = c.zcard(format!("{p}p:key:flaky")).await.unwrap();
        if n == 0 && l.pending_settles() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} slots left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cleanup(&url, &p).await;
}

/// An admit that times out may still have run in Redis: its slot and reservation are
/// handed back in the background once Redis answers in time again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_admit_is_undone() {
    let Some(url) = url() else { return };
    let p = prefix();
    let proxy = SlowProxy::start(redis_addr(&url)).await;
    let db = url
        .rsplit('/')
        .next()
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(0);
    let l = Limiter::with_redis_options(
        RedisUrl::from_parts("127.0.0.1", proxy.port, None, None, db).unwrap(),
        RedisOptions {
            timeout: Duration::from_millis(100),
            circuit_open_for: Duration::from_millis(200),
            budget_fallback: BudgetFallback::Local,
            ..options(&p)
        },
    )
    .unwrap();
    let s = Scope::new("key:slow");
    let par = [Limit {
        scope: &s,
        limit: 10,
    }];
    let budgets = [budget(&s, 1_000)];
    let r = Admit {
        cost_min_pico: 100,
        cost_max_pico: 100,
        ..req(&[], &par, &budgets)
    };
    // Warm the connection and the script cache.
    let a = l.admit(&r).await.unwrap();
    assert_eq!(a.place(), Place::Redis);
    l.release(a).await;

    proxy.set_delay(Duration::from_millis(400));
    let (out, took) = timed(&l, &r).await;
    assert!(took <= Duration::from_millis(100 + 250), "took {took:?}");
    assert_eq!(out.unwrap().place(), Place::Local);
    let mut c = raw(&url).await;
    // The script did run: a slot and a reservation are held in Redis.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let slots: i64 = c.zcard(format!("{p}p:key:slow")).await.unwrap();
    assert_eq!(slots, 1);
    assert!(l.pending_settles() >= 1);

    proxy.set_delay(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let slots: i64 = c.zcard(format!("{p}p:key:slow")).await.unwrap();
        let reserved: Option<i64> = c
            .hget(format!("{p}b:key:slow:7"), "reserved")
            .await
            .unwrap();
        if slots == 0 && reserved == Some(0) && l.pending_settles() == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots {slots}, reserved {reserved:?}, pending {}",
            l.pending_settles()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cleanup(&url, &p).await;
}
