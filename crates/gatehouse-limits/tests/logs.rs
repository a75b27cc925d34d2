//! Log lines of a Redis outage: once per outage, never the password. Its own test binary,
//! so no other test's threads race on tracing's global callsite state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gatehouse_limits::*;

#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn capture() -> (LogBuf, tracing::subscriber::DefaultGuard) {
    let buf = LogBuf::default();
    let w = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || w.clone())
        .finish();
    (buf, tracing::subscriber::set_default(sub))
}

/// One warning per outage, one info when Redis is back, never the password.
/// (current-thread runtime: the thread-local log capture sees every task)
#[tokio::test]
async fn logs_once_per_outage_without_password() {
    let (logs, _guard) = capture();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let l = Limiter::with_redis_options(
        RedisUrl::parse(&format!("redis://admin:pw-secret-1@127.0.0.1:{closed}/0")).unwrap(),
        RedisOptions {
            timeout: Duration::from_millis(100),
            circuit_open_for: Duration::from_millis(50),
            ..RedisOptions::default()
        },
    )
    .unwrap();
    let s = Scope::new("key:log");
    let par = [Limit {
        scope: &s,
        limit: 5,
    }];
    for _ in 0..20 {
        let a = l.admit(&req(&[], &par, &[])).await.unwrap();
        l.settle(a, 0, 0).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = logs.text();
    assert_eq!(text.matches("Redis unavailable").count(), 1, "{text}");
    assert!(!text.contains("pw-secret-1"), "{text}");
    assert!(text.contains("admin:***@127.0.0.1"), "{text}");

    let Some(url) = url() else { return };
    let p = prefix();
    let proxy = Proxy::start(redis_addr(&url)).await;
    let l = Limiter::with_redis_options(
        RedisUrl::from_parts("127.0.0.1", proxy.port, None, None, 0).unwrap(),
        RedisOptions {
            timeout: Duration::from_millis(150),
            circuit_open_for: Duration::from_millis(100),
            ..options(&p)
        },
    )
    .unwrap();
    let before = logs.text().len();
    let mut places = Vec::new();
    for phase in [true, false, true, false, true] {
        proxy.set(phase);
        let mut last = None;
        for _ in 0..40 {
            let a = l.admit(&req(&[], &par, &[])).await.unwrap();
            last = Some(a.place());
            l.release(a).await;
            if phase && last == Some(Place::Redis) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        places.push(last);
    }
    assert_eq!(
        places,
        [
            Some(Place::Redis),
            Some(Place::Local),
            Some(Place::Redis),
            Some(Place::Local),
            Some(Place::Redis)
        ]
    );
    let text = logs.text()[before..].to_owned();
    assert_eq!(
        text.matches("Redis unavailable").count() + text.matches("Redis timed out").count(),
        2,
        "{text}"
    );
    assert_eq!(text.matches("Redis reachable again").count(), 2, "{text}");
    cleanup(&url, &p).await;
}
