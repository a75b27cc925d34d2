//! Helpers shared by the Redis integration tests. Without `GATEHOUSE_TEST_REDIS_URL` they
//! print SKIPPED, or fail when `GATEHOUSE_REQUIRE_STORES` is set.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatehouse_limits::*;
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Whether every store test must run (`GATEHOUSE_REQUIRE_STORES` set, and not to `0`).
pub fn required() -> bool {
    std::env::var("GATEHOUSE_REQUIRE_STORES").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The running test cannot run because `missing`: under `GATEHOUSE_REQUIRE_STORES` (which
/// `.ci/run` sets) that is a failure; otherwise it prints SKIPPED, written straight to stderr
/// so that the test harness's capture does not hide it.
pub fn skip(missing: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    assert!(
        !required(),
        "{test}: {missing}, and GATEHOUSE_REQUIRE_STORES is set (as .ci/run sets it): this test \
         must run, not skip"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {missing} (with GATEHOUSE_REQUIRE_STORES=1 this is a failure)"
    );
}

/// `GATEHOUSE_TEST_REDIS_URL`, or `None` after [`skip`].
pub fn url() -> Option<String> {
    match std::env::var("GATEHOUSE_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            skip("GATEHOUSE_TEST_REDIS_URL is not set");
            None
        }
    }
}

pub fn prefix() -> String {
    format!("gatehouse-test:{:016x}:", fastrand::u64(..))
}

pub fn options(prefix: &str) -> RedisOptions {
    RedisOptions {
        key_prefix: prefix.to_owned(),
        timeout: Duration::from_millis(500),
        ..RedisOptions::default()
    }
}

pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

pub async fn cleanup(url: &str, prefix: &str) {
    let mut c = raw(url).await;
    let keys: Vec<String> = c.keys(format!("{prefix}*")).await.unwrap();
    if !keys.is_empty() {
        let _: () = c.del(keys).await.unwrap();
    }
}

pub fn req<'a>(
    rpm: &'a [Limit<'a>],
    parallel: &'a [Limit<'a>],
    budgets: &'a [Budget<'a>],
) -> Admit<'a> {
    Admit {
        request_id: "req-1",
        rpm,
        tpm: &[],
        parallel,
        budgets,
        cost_min_pico: 0,
        cost_max_pico: 0,
    }
}

/// A TCP proxy in front of Redis that can be cut and restored.
pub struct Proxy {
    pub port: u16,
    on: watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (on, rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut rx = rx.clone();
                if !*rx.borrow() {
                    continue; // refused: dropped at once
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut out) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = rx.wait_for(|on| !*on) => {}
                    }
                });
            }
        });
        Self { port, on }
    }
    pub fn set(&self, on: bool) {
        let _ = self.on.send(on);
    }
}

pub fn redis_addr(url: &str) -> String {
    let rest = url.trim_start_matches("redis://");
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

pub fn budget(scope: &Scope, max: i64) -> Budget<'_> {
    Budget {
        scope,
        max_pico: max,
        period: 7,
        seed_spend_pico: 0,
        period_length: Some(Duration::from_secs(3600)),
    }
}

/// Wait until Redis's clock is a few seconds away from a minute boundary, so a burst of
/// admits falls in one window.
pub async fn away_from_minute_boundary(url: &str) {
    let mut c = raw(url).await;
    for _ in 0..10 {
        let (s, _us): (u64, u64) = redis::cmd("TIME").query_async(&mut c).await.unwrap();
        let into = s % 60;
        if (2..55).contains(&into) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn timed(l: &Limiter, r: &Admit<'_>) -> (Result<Admission, Refusal>, Duration) {
    let t = Instant::now();
    let out = l.admit(r).await;
    (out, t.elapsed())
}

/// A TCP proxy in front of Redis whose replies can be delayed (a slow Redis).
pub struct SlowProxy {
    pub port: u16,
    delay_ms: Arc<AtomicU64>,
}

impl SlowProxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = Arc::clone(&delay_ms);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let target = target.clone();
                let delay = Arc::clone(&delay);
                tokio::spawn(async move {
                    let Ok(out) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut ci, mut co) = inbound.into_split();
                    let (mut si, mut so) = out.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut ci, &mut so).await;
                    });
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match si.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let d = delay.load(Ordering::Relaxed);
                        if d > 0 {
                            tokio::time::sleep(Duration::from_millis(d)).await;
                        }
                        if co.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        Self { port, delay_ms }
    }
    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::Relaxed);
    }
}
