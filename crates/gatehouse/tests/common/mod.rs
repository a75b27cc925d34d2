//! Shared harness for tests that run the real `gatehouse` binary on an ephemeral loopback
//! port against the in-process mock upstream.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod stores;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const MASTER_KEY: &str = "sk-master-e2e-7f3a9c1d5e";
pub const UPSTREAM_KEY: &str = "sk-upstream-e2e-b4d2e8f6a0";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory for one test.
pub fn scratch_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gatehouse-e2e-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `gatehouse serve`, killed on drop; its whole stderr is kept.
pub struct Gatehouse {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

/// A standard config: one OpenAI-compatible model `gpt-mock` → `openai/mock-gpt` at `base`.
pub fn config_for(base: &str, extra: &str) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-mock
    litellm_params:
      model: openai/mock-gpt
      api_base: {base}
      api_key: {UPSTREAM_KEY}
      timeout: 2
      max_retries: 2
general_settings:
  master_key: {MASTER_KEY}
  max_request_size_mb: 1
gatehouse:
  client_header_timeout: 1
  client_body_timeout: 1
  shutdown_timeout: 10
{extra}"#
    )
}

impl Gatehouse {
    /// Starts the binary with `config` at `RUST_LOG` (default `info`).
    pub fn start(config: &str, rust_log: &str) -> Gatehouse {
        Self::start_with_args(config, rust_log, &["--host", "127.0.0.1", "--port", "0"])
            .expect("gatehouse did not start")
    }

    /// Starts the binary with extra `serve` args; returns the log if it exits before listening.
    pub fn start_with_args(
        config: &str,
        rust_log: &str,
        args: &[&str],
    ) -> Result<Gatehouse, String> {
        let dir = scratch_dir();
        let path = dir.join("config.yaml");
        std::fs::write(&path, config).unwrap();
        Self::start_in(&path, rust_log, args)
    }

    /// Starts the binary on an existing config file (its directory holds the SQLite file).
    pub fn start_in(
        path: &std::path::Path,
        rust_log: &str,
        args: &[&str],
    ) -> Result<Gatehouse, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .arg("serve")
            .arg("--config")
            .arg(path)
            .args(args)
            .env("RUST_LOG", rust_log)
            .env_remove("LITELLM_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening addr=").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Ok(Gatehouse {
                child,
                addr: addr.parse().unwrap(),
                log,
            }),
            Err(_) => {
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                Err(log.lock().unwrap().clone())
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The WARN and ERROR lines of a gatehouse's log (for failure messages).
pub fn warnings(gh: &Gatehouse) -> String {
    gh.log()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the OpenAI error envelope with this status.
    pub fn assert_error(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        let v = self.json();
        let e = &v["error"];
        assert!(e["message"].is_string(), "{v}");
        assert!(e["type"].is_string(), "{v}");
        assert_eq!(e["code"], status.to_string(), "{v}");
        e.clone()
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// POSTs `body` with the master key (unless `headers` brings its own auth).
pub async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let res = send(Method::POST, url, headers, body.into()).await;
    let (parts, body) = res.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .expect("body timed out")
        .expect("body failed")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let res = send(Method::GET, url, headers, Bytes::new()).await;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> http::Response<hyper::body::Incoming> {
    let mut req = Request::builder().method(method).uri(url);
    let has_auth = headers.iter().any(|(k, _)| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "authorization" | "x-api-key" | "x-litellm-api-key" | "api-key" | "no-auth"
        )
    });
    if !has_auth {
        req = req.header("authorization", format!("Bearer {MASTER_KEY}"));
    }
    for (k, v) in headers {
        if *k != "no-auth" {
            req = req.header(*k, *v);
        }
    }
    let req = req
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), client().request(req))
        .await
        .expect("request timed out")
        .expect("request failed")
}

/// A minimal chat body.
pub fn chat_body(model: &str, extra: serde_json::Value) -> String {
    let mut v = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "hello there"}],
    });
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            obj.insert(k.clone(), val.clone());
        }
    }
    v.to_string()
}

/// Starts a streamed chat completion for `gpt-mock` with `extra` body fields; asserts 200.
pub async fn start_stream(
    gh: &Gatehouse,
    extra: serde_json::Value,
) -> http::Response<hyper::body::Incoming> {
    let mut extra = extra;
    if let Some(o) = extra.as_object_mut() {
        o.insert("stream".into(), serde_json::Value::Bool(true));
    }
    let res = send(
        Method::POST,
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("gpt-mock", extra).into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    res
}

/// The concatenated text of streamed chunks.
pub fn chunks_text(chunks: &[(Duration, Bytes)]) -> String {
    chunks
        .iter()
        .map(|(_, c)| String::from_utf8_lossy(c))
        .collect()
}

/// Streams a response, returning each body chunk with the time it arrived.
pub async fn stream_chunks(
    res: http::Response<hyper::body::Incoming>,
    limit: Duration,
) -> Vec<(Duration, Bytes)> {
    let start = Instant::now();
    let mut body = res.into_body();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => panic!("stream did not end within {limit:?}"),
            Ok(None) => break,
            Ok(Some(Err(e))) => panic!("stream broke: {e}"),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.push((start.elapsed(), data));
                }
            }
        }
    }
    out
}

/// What a burst of concurrent budgeted requests got.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub ok: usize,
    pub refused: usize,
    /// The sum of the answered requests' `x-litellm-response-cost`, in USD.
    pub charged: f64,
}

/// Sends `n` chat requests at once with `key` and `body`, spread round-robin over
/// `replicas`. Every answer must be 200 or 429 with `type: budget_exceeded`.
pub async fn budget_burst(replicas: &[&Gatehouse], key: &str, body: &str, n: usize) -> Burst {
    let auth = format!("Bearer {key}");
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = replicas[i % replicas.len()].url("/v1/chat/completions");
        let (auth, body) = (auth.clone(), body.to_owned());
        tasks.push(tokio::spawn(async move {
            post(&url, &[("authorization", &auth)], body).await
        }));
    }
    let mut burst = Burst {
        ok: 0,
        refused: 0,
        charged: 0.0,
    };
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => {
                burst.ok += 1;
                burst.charged += r.headers["x-litellm-response-cost"]
                    .to_str()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap();
            }
            429 => {
                assert_eq!(r.json()["error"]["type"], "budget_exceeded", "{}", r.text());
                burst.refused += 1;
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert_eq!(burst.ok + burst.refused, n);
    burst
}

/// Waits (at most 3 s) until `gh`'s `/key/info` spend for `key` and its `/spend/logs` rows
/// account for every answer of `burst` (spend = the sum of the answers' costs, one row per
/// answer), and returns that recorded spend.
pub async fn recorded_spend(gh: &Gatehouse, key: &str, burst: &Burst) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let info = get(&gh.url(&format!("/key/info?key={key}")), &[]).await;
        assert_eq!(info.status, 200, "{}", info.text());
        let spend = info.json()["info"]["spend"].as_f64().unwrap();
        let logs = get(&gh.url(&format!("/spend/logs?api_key={key}")), &[]).await;
        assert_eq!(logs.status, 200, "{}", logs.text());
        let logs = logs.json();
        let rows = logs.as_array().unwrap();
        let logged: f64 = rows.iter().map(|r| r["spend"].as_f64().unwrap()).sum();
        if rows.len() == burst.ok
            && (spend - burst.charged).abs() < 1e-9
            && (logged - burst.charged).abs() < 1e-9
        {
            return spend;
        }
        assert!(
            Instant::now() < deadline,
            "after 3 s: /key/info spend {spend}, {} spend rows summing to {logged}; the \
             answers: {burst:?}\n{}",
            rows.len(),
            warnings(gh)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
