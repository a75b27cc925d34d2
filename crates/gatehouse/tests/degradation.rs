//! Degradation when a store is down (PRODUCT.md invariant 7; issue 4, "Degradation"):
//!
//! - PostgreSQL unreachable: keys verified recently keep working, keys that are not cached get
//!   503 (not 401), spend records wait in a bounded buffer and are flushed on recovery, none
//!   lost. Tested against a throwaway PostgreSQL cluster of our own (`initdb` into a scratch
//!   folder, started on a free loopback port), never the machine's shared service.
//! - Redis unreachable (closed port, or a server that never answers): every Redis call is
//!   bounded by `redis_timeout`, then counting is local with a warning; no request hangs and
//!   rate limits still hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::stores::{RedisSpace, redis_url, skip};
use common::{Gatehouse, MASTER_KEY, UPSTREAM_KEY, chat_body, get, post};
use gatehouse_mock::MockServer;
use serde_json::{Value, json};

/// $1 per 1M input tokens, $2 per 1M output tokens.
const INPUT_COST: f64 = 0.000_001;
const OUTPUT_COST: f64 = 0.000_002;
/// Scripted usage of every request: 1000 × $1/M + 500 × $2/M = $0.002.
const PROMPT_TOKENS: u64 = 1000;
const COMPLETION_TOKENS: u64 = 500;
const COST_PER_REQUEST: f64 = 0.002;

fn config(base: &str, extra: &str) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-mock
    litellm_params:
      model: openai/mock-gpt
      api_base: {base}
      api_key: {UPSTREAM_KEY}
      input_cost_per_token: {INPUT_COST}
      output_cost_per_token: {OUTPUT_COST}
{extra}"#
    )
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

async fn admin_post(gh: &Gatehouse, path: &str, body: Value) -> Value {
    let r = post(&gh.url(path), &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

async fn admin_get(gh: &Gatehouse, path: &str) -> common::Reply {
    get(&gh.url(path), &[]).await
}

/// A chat request with `key`, timed; fails the test if it takes longer than `bound`.
async fn timed_chat(gh: &Gatehouse, key: &str, extra: Value, bound: Duration) -> common::Reply {
    let auth = bearer(key);
    let started = Instant::now();
    let r = tokio::time::timeout(
        bound,
        post(
            &gh.url("/v1/chat/completions"),
            &[("authorization", &auth)],
            chat_body("gpt-mock", extra),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("request did not complete within {bound:?}"));
    let took = started.elapsed();
    assert!(took < bound, "request took {took:?} (bound {bound:?})");
    r
}

fn priced_usage() -> Value {
    json!({"mock": {"usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}}})
}

/// Usage of a budgeted request: 100 × $1/M + 500 × $2/M = $0.0011, sent with
/// `max_tokens: 500` so its reservation (body bytes at the input price + 500 output tokens)
/// covers it.
const SMALL_COST: f64 = 0.0011;

fn small_usage() -> Value {
    json!({"max_tokens": 500, "mock": {"usage": {"prompt_tokens": 100, "completion_tokens": 500}}})
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------
// A throwaway PostgreSQL cluster.
// ---------------------------------------------------------------------------------------

/// Where `initdb` and `pg_ctl` are: the first directory on `PATH` that has both, else the
/// newest `/usr/lib/postgresql/*/bin` that does (Debian installs them only there).
fn postgres_bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_tools(d))
    {
        return Some(dir);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|b| has_tools(b))
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `runuser` from `PATH`, else from `/usr/sbin` or `/sbin` (often not on a user's `PATH`).
fn runuser() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("runuser"))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser"]
                .map(PathBuf::from)
                .into_iter()
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

/// Whether `runuser -u postgres` can run a program (user `postgres` exists, `runuser` too).
fn can_run_as_postgres() -> bool {
    Command::new(runuser())
        .args(["-u", "postgres", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A PostgreSQL cluster in a scratch folder on a free loopback port, with password
/// authentication for user `postgres`. Stopped (immediately) and deleted on drop, also when
/// the test panics.
struct ThrowawayPostgres {
    bin: PathBuf,
    /// Owned by `postgres`: holds `data/`, the socket, the log and the password file.
    dir: PathBuf,
    port: u16,
    password: String,
    /// Run the PostgreSQL tools as user `postgres` (initdb refuses root).
    as_postgres: bool,
}

impl ThrowawayPostgres {
    /// `None` after [`skip`] when the PostgreSQL server tools are not installed (or, as root,
    /// cannot be run as user `postgres`); under `GATEHOUSE_REQUIRE_STORES` that fails instead.
    fn start(test: &str) -> Option<ThrowawayPostgres> {
        let Some(bin) = postgres_bin_dir() else {
            skip(
                test,
                "no initdb and pg_ctl on PATH nor in /usr/lib/postgresql/*/bin (install the \
                 PostgreSQL server package)",
            );
            return None;
        };
        let as_postgres = running_as_root();
        if as_postgres && !can_run_as_postgres() {
            skip(
                test,
                "running as root, where initdb refuses to run, and `runuser -u postgres` \
                 does not work (no user postgres?)",
            );
            return None;
        }
        let dir = common::scratch_dir().join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let password = format!("pgsecret{nanos:08x}{}", std::process::id());
        std::fs::write(dir.join("pwfile"), format!("{password}\n")).unwrap();
        let pg = ThrowawayPostgres {
            bin,
            dir,
            port: free_port(),
            password,
            as_postgres,
        };
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()
                .unwrap();
            assert!(st.success(), "chown of {} failed", pg.dir.display());
        }
        let data = pg.data();
        let pwfile = pg.dir.join("pwfile");
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--pwfile",
                path_str(&pwfile),
                "--no-sync",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
            ],
        );
        pg.pg_ctl_start();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`.
    fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// Runs one of the PostgreSQL tools (as user `postgres` when we are root); panics with
    /// its output when it fails.
    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new(runuser());
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let data = self.data();
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", mode, "-w", "-t", "60", "stop"],
        );
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        // Whatever state it is in: stop it if it runs, then delete everything.
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let mut cmd = if self.as_postgres {
            let mut c = Command::new(runuser());
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("scratch paths are UTF-8")
}

/// Polls `/key/info` and `/spend/logs` for `key` until they show `rows` spend records and
/// `expected` USD, or `limit` passes. Returns the request ids.
async fn wait_for_spend(
    gh: &Gatehouse,
    key: &str,
    rows: usize,
    expected: f64,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let logs = admin_get(gh, &format!("/spend/logs?api_key={key}")).await;
        let info = admin_get(gh, &format!("/key/info?key={key}")).await;
        let mut last = format!(
            "spend/logs {} {}; key/info {} {}",
            logs.status,
            logs.text().chars().take(300).collect::<String>(),
            info.status,
            info.text().chars().take(300).collect::<String>()
        );
        if logs.status == 200 && info.status == 200 {
            let logs = logs.json();
            let rows_now = logs.as_array().map_or(0, Vec::len);
            let spend = info.json()["info"]["spend"].as_f64().unwrap_or(-1.0);
            if rows_now == rows && (spend - expected).abs() < 1e-9 {
                return logs
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["request_id"].as_str().unwrap().to_owned())
                    .collect();
            }
            last = format!("{rows_now} rows (want {rows}), spend {spend} (want {expected})");
        }
        assert!(
            Instant::now() < deadline,
            "spend not complete after {limit:?}: {last}\ngatehouse log:\n{}",
            gh.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_keeps_cached_keys_and_loses_no_spend() {
    const N: usize = 20;
    const M: usize = 15;
    let bound = Duration::from_secs(5);
    let test_started = Instant::now();

    let Some(pg) = ThrowawayPostgres::start("postgres_outage_keeps_cached_keys_and_loses_no_spend")
    else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    // A 1 s cache TTL, so that during the outage key A is past its TTL (its background
    // refresh fails) but well within key_cache_stale_ttl.
    let extra = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: {}\n\
         gatehouse:\n  key_cache_ttl: 1\n  key_cache_stale_ttl: 600\n",
        pg.url()
    );
    let gh = Gatehouse::start(&config(&mock.base_url(), &extra), "info");

    let a = admin_post(&gh, "/key/generate", json!({"key_alias": "a"})).await;
    let key_a = a["key"].as_str().unwrap().to_owned();
    let b = admin_post(&gh, "/key/generate", json!({"key_alias": "b"})).await;
    let key_b = b["key"].as_str().unwrap().to_owned();
    // C has a budget for exactly 3 small requests (see `small_usage`), plus a margin that
    // covers the reservation's over-estimate of the input (one token per body byte, ~150)
    // but not the input of a 4th request, which is refused outright.
    let c = admin_post(
        &gh,
        "/key/generate",
        json!({"key_alias": "c", "max_budget": 3.0 * SMALL_COST + 0.000_1}),
    )
    .await;
    let key_c = c["key"].as_str().unwrap().to_owned();
    let r = timed_chat(&gh, &key_c, small_usage(), bound).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // N priced requests with A while PostgreSQL is up (the first one caches A).
    let mut ids = HashSet::new();
    for _ in 0..N {
        let r = timed_chat(&gh, &key_a, priced_usage(), bound).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let cost: f64 = r.headers["x-litellm-response-cost"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((cost - COST_PER_REQUEST).abs() < 1e-12, "{cost}");
        ids.insert(r.headers["x-litellm-call-id"].to_str().unwrap().to_owned());
    }

    // PostgreSQL goes away.
    pg.pg_ctl_stop("fast");
    let outage_started = Instant::now();
    // Past key_cache_ttl: A is now served stale (its refresh cannot reach the store).
    tokio::time::sleep(Duration::from_millis(1200)).await;

    for i in 0..M {
        let r = timed_chat(&gh, &key_a, priced_usage(), bound).await;
        assert_eq!(
            r.status,
            200,
            "request {i} with cached key A during the outage: {}\nlog:\n{}",
            r.text(),
            gh.log()
        );
        ids.insert(r.headers["x-litellm-call-id"].to_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), N + M, "call ids are distinct");

    // Budgets still hold while the store is down (counted in process from the cached key):
    // C pays for two more requests, then is refused — never let through unmetered.
    for i in 0..2 {
        let r = timed_chat(&gh, &key_c, small_usage(), bound).await;
        assert_eq!(r.status, 200, "budget key request {i}: {}", r.text());
    }
    let e = timed_chat(&gh, &key_c, small_usage(), bound)
        .await
        .assert_error(429);
    assert_eq!(e["type"], "budget_exceeded", "{e}");

    // B was never used, so it is not cached: the gateway cannot tell, so 503, not 401.
    let t = Instant::now();
    let r = timed_chat(&gh, &key_b, json!({}), bound).await;
    eprintln!(
        "uncached key B during the outage answered in {:?}",
        t.elapsed()
    );
    let e = r.assert_error(503);
    assert_eq!(e["type"], "service_unavailable", "{e}");
    // An unknown (garbage) key is just as unknowable while the store is down: 503 too.
    let garbage = "sk-garbage-0000000000000000000000";
    let t = Instant::now();
    let r = timed_chat(&gh, garbage, json!({}), bound).await;
    eprintln!(
        "garbage key during the outage answered in {:?}",
        t.elapsed()
    );
    r.assert_error(503);
    let readiness = get(&gh.url("/health/readiness"), &[]).await;
    eprintln!(
        "readiness during the outage: {} {}",
        readiness.status,
        readiness.text()
    );
    // Keep the outage longer than the store's connect timeout (5 s), so the spend writer's
    // flush fails (and says so) instead of merely waiting for a connection.
    let min_outage = Duration::from_secs(6);
    if let Some(rest) = min_outage.checked_sub(outage_started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let outage = outage_started.elapsed();

    // PostgreSQL comes back: every buffered record is flushed, exactly once.
    pg.pg_ctl_start();
    let recovered = Instant::now();
    let logged = wait_for_spend(
        &gh,
        &key_a,
        N + M,
        (N + M) as f64 * COST_PER_REQUEST,
        Duration::from_secs(20),
    )
    .await;
    let flushed_after = recovered.elapsed();
    let logged_set: HashSet<String> = logged.iter().cloned().collect();
    assert_eq!(logged.len(), logged_set.len(), "duplicate request ids");
    assert_eq!(
        logged_set, ids,
        "spend log request ids != answered call ids"
    );

    // C's three requests are all recorded, within its budget.
    let c_ids = wait_for_spend(&gh, &key_c, 3, 3.0 * SMALL_COST, Duration::from_secs(5)).await;
    assert_eq!(c_ids.iter().collect::<HashSet<_>>().len(), 3);

    // Global spend agrees, and the store answers as before.
    let global = admin_get(&gh, "/global/spend").await;
    assert_eq!(global.status, 200, "{}", global.text());
    let g = global.json()["spend"].as_f64().unwrap();
    let want = (N + M) as f64 * COST_PER_REQUEST + 3.0 * SMALL_COST;
    assert!((g - want).abs() < 1e-9, "global spend {g}, want {want}");
    // B is a valid key after all, and the garbage key is refused as unknown.
    let r = timed_chat(&gh, &key_b, json!({}), bound).await;
    assert_eq!(r.status, 200, "{}", r.text());
    timed_chat(&gh, garbage, json!({}), bound)
        .await
        .assert_error(401);

    // The outage was logged, without the database password.
    let log = gh.log();
    assert!(
        log.contains("cannot write spend records"),
        "no spend-writer warning:\n{log}"
    );
    assert!(
        log.contains("WARN"),
        "no warning-level line about the outage:\n{log}"
    );
    assert!(
        !log.contains(&pg.password),
        "the database password is in the log:\n{log}"
    );
    assert!(
        !log.contains(UPSTREAM_KEY) && !log.contains(MASTER_KEY),
        "a credential is in the log"
    );
    eprintln!(
        "postgres outage: {outage:?} with {M} requests served; spend flushed {flushed_after:?} \
         after restart; test took {:?}",
        test_started.elapsed()
    );
    if std::env::var_os("GATEHOUSE_TEST_SHOW_LOG").is_some() {
        eprintln!("gatehouse log:\n{log}");
    }
    drop(gh);
    drop(pg);
}

/// A key verified right after it was created is "verified recently" and must survive an
/// outage like any other. The key's own creation event reaches the change-feed poller up to
/// `invalidation_poll_interval` after the key was first used; the poller re-reads the cached
/// key from the store (it no longer drops it), so when PostgreSQL then goes down the key is
/// still served from the cache, not refused with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_used_right_after_creation_survives_an_outage() {
    let bound = Duration::from_secs(5);
    let Some(pg) = ThrowawayPostgres::start("key_used_right_after_creation_survives_an_outage")
    else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    let extra = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: {}\n",
        pg.url()
    );
    let gh = Gatehouse::start(&config(&mock.base_url(), &extra), "info");
    let k = admin_post(&gh, "/key/generate", json!({})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let r = timed_chat(&gh, &key, json!({}), bound).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A few poll intervals: the change feed applies the creation event.
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.pg_ctl_stop("fast");
    let r = timed_chat(&gh, &key, json!({}), bound).await;
    assert_eq!(
        r.status,
        200,
        "a key verified 1 s ago was refused during the outage: {}\n{}",
        r.text(),
        gh.log()
    );
}

/// Shut down while PostgreSQL is down: the spend records the gateway could not write are
/// saved to a file beside the config, and written — once — when it starts again with the
/// database back; the file is then gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_held_at_a_shutdown_during_an_outage_is_written_at_the_next_start() {
    const N: usize = 4;
    let bound = Duration::from_secs(5);
    let Some(pg) = ThrowawayPostgres::start(
        "spend_held_at_a_shutdown_during_an_outage_is_written_at_the_next_start",
    ) else {
        return;
    };
    let mock = MockServer::start().await.unwrap();
    let extra = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: {}\n\
         gatehouse:\n  shutdown_timeout: 2\n",
        pg.url()
    );
    let dir = common::scratch_dir();
    let path = dir.join("config.yaml");
    std::fs::write(&path, config(&mock.base_url(), &extra)).unwrap();
    let args = ["--host", "127.0.0.1", "--port", "0"];
    let mut gh = Gatehouse::start_in(&path, "info", &args).unwrap();
    let k = admin_post(&gh, "/key/generate", json!({})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    // The key is cached; then the database goes away and N priced requests are served.
    assert_eq!(
        timed_chat(&gh, &key, priced_usage(), bound).await.status,
        200
    );
    wait_for_spend(&gh, &key, 1, COST_PER_REQUEST, Duration::from_secs(5)).await;
    pg.pg_ctl_stop("fast");
    for _ in 0..N {
        let r = timed_chat(&gh, &key, priced_usage(), bound).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    gh.terminate();
    let exit = tokio::task::spawn_blocking(move || {
        let s = gh.wait_exit(Duration::from_secs(20));
        (s, gh.log())
    })
    .await
    .unwrap();
    assert!(exit.0.expect("did not exit").success(), "{}", exit.1);
    let spills: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("gatehouse-unwritten-spend-")
        })
        .collect();
    assert_eq!(spills.len(), 1, "one spill file; log:\n{}", exit.1);
    assert!(
        exit.1.contains("spend records saved to a file"),
        "{}",
        exit.1
    );

    // The database is back: the next start writes the file, and removes it.
    pg.pg_ctl_start();
    let gh = Gatehouse::start_in(&path, "info", &args).unwrap();
    wait_for_spend(
        &gh,
        &key,
        N + 1,
        (N + 1) as f64 * COST_PER_REQUEST,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        gh.log()
            .contains("wrote spend records left over from an earlier shutdown"),
        "{}",
        gh.log()
    );
    assert!(!spills[0].path().exists(), "the spill file is removed");
}

// ---------------------------------------------------------------------------------------
// Redis unreachable.
// ---------------------------------------------------------------------------------------

/// 8 requests on a key with `rpm_limit: 5` through a gateway whose Redis is `redis_url`:
/// exactly 5 × 200 then 429 with `retry-after`, none slower than 2 s, a warning about Redis
/// in the log, readiness still 200.
async fn rpm_holds_without_redis(redis_url: &str, expect_in_log: &str) {
    let bound = Duration::from_secs(2);
    let mock = MockServer::start().await.unwrap();
    let extra = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\nrouter_settings:\n  redis_url: {redis_url}\n\
         gatehouse:\n  redis_timeout: 0.1\n"
    );
    let gh = Gatehouse::start(&config(&mock.base_url(), &extra), "info");
    let started = Instant::now();
    let k = admin_post(&gh, "/key/generate", json!({"rpm_limit": 5})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = timed_chat(&gh, &key, json!({}), bound).await;
        statuses.push(r.status.as_u16());
        if i < 5 {
            assert_eq!(
                r.status,
                200,
                "request {i}: {}\nlog:\n{}",
                r.text(),
                gh.log()
            );
        } else {
            let e = r.assert_error(429);
            assert_eq!(e["type"], "rate_limit_error", "{e}");
            let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "retry-after {wait}");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let readiness = get(&gh.url("/health/readiness"), &[]).await;
    assert_eq!(readiness.status, 200, "{}", readiness.text());
    // A second key is counted independently, also locally.
    let k2 = admin_post(&gh, "/key/generate", json!({"rpm_limit": 1})).await;
    let key2 = k2["key"].as_str().unwrap().to_owned();
    assert_eq!(timed_chat(&gh, &key2, json!({}), bound).await.status, 200);
    timed_chat(&gh, &key2, json!({}), bound)
        .await
        .assert_error(429);

    let log = gh.log();
    assert!(
        log.contains("WARN") && log.contains(expect_in_log),
        "no warning about Redis ({expect_in_log:?}):\n{log}"
    );
    eprintln!("redis {redis_url}: {statuses:?} in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_counts_locally_without_hanging() {
    // Nothing listens there: connections are refused at once.
    let port = free_port();
    rpm_holds_without_redis(&format!("redis://127.0.0.1:{port}"), "Redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_never_answers_times_out_and_counts_locally() {
    // A "Redis" that accepts connections and never says a word: only the timeout saves us.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let held2 = held.clone();
    let accept = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            held2.lock().unwrap().push(sock);
        }
    });
    rpm_holds_without_redis(&format!("redis://127.0.0.1:{port}"), "Redis").await;
    accept.abort();
}

// ---------------------------------------------------------------------------------------
// A real Redis (GATEHOUSE_TEST_REDIS_URL) that goes away and comes back.
// ---------------------------------------------------------------------------------------

/// A loopback TCP proxy to a real Redis that can be cut (every connection closed, new ones
/// closed at once) and restored.
struct FlakyProxy {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FlakyProxy {
    async fn start(upstream: String) -> FlakyProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        FlakyProxy {
            port,
            up,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::Release);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_counts_survive_flaky_redis() {
    let Some(redis) = redis_url("redis_counts_survive_flaky_redis") else {
        return;
    };
    let space = RedisSpace::new(&redis);
    // redis://[user:pass@]host:port[/db] → host:port, and the same URL through the proxy.
    let rest = redis
        .strip_prefix("redis://")
        .expect("GATEHOUSE_TEST_REDIS_URL is redis://…");
    let (auth, hostpath) = match rest.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h),
        None => (String::new(), rest),
    };
    let (hostport, db) = match hostpath.split_once('/') {
        Some((h, d)) => (h.to_owned(), format!("/{d}")),
        None => (hostpath.to_owned(), String::new()),
    };
    let proxy = FlakyProxy::start(hostport).await;
    let url = format!("redis://{auth}127.0.0.1:{}{db}", proxy.port);

    // Rate-limit windows are calendar minutes: keep the whole run inside one.
    let sec = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if sec > 35 {
        tokio::time::sleep(Duration::from_secs(61 - sec)).await;
    }

    let bound = Duration::from_secs(2);
    let mock = MockServer::start().await.unwrap();
    let extra = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\nrouter_settings:\n  redis_url: {url}\n\
         gatehouse:\n  redis_timeout: 0.1\n  redis_key_prefix: \"{}\"\n",
        space.prefix
    );
    let gh = Gatehouse::start(&config(&mock.base_url(), &extra), "info");
    let k = admin_post(&gh, "/key/generate", json!({"rpm_limit": 6})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let k = admin_post(&gh, "/key/generate", json!({"rpm_limit": 1000})).await;
    let prober = k["key"].as_str().unwrap().to_owned();

    // Up: three requests counted in Redis.
    for want in ["5", "4", "3"] {
        let r = timed_chat(&gh, &key, json!({}), bound).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.headers["x-ratelimit-remaining-requests"], want);
    }
    assert!(
        !gh.log().contains("counting rate limits locally"),
        "Redis was not used while up:\n{}",
        gh.log()
    );

    // Cut: requests go on, counted locally, none hangs.
    proxy.cut();
    for _ in 0..3 {
        let r = timed_chat(&gh, &key, json!({}), bound).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let log = gh.log();
    assert!(
        log.contains("WARN") && log.contains("counting rate limits locally"),
        "no warning about Redis:\n{log}"
    );

    // Restored: within a few seconds (circuit 2 s) counting is back in Redis.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gh.log().contains("Redis reachable again") {
        assert!(
            Instant::now() < deadline,
            "Redis not used again:\n{}",
            gh.log()
        );
        let r = timed_chat(&gh, &prober, json!({}), bound).await;
        assert_eq!(r.status, 200, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Redis still holds the three requests made before the cut: three more, then 429.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            timed_chat(&gh, &key, json!({}), bound)
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429], "log:\n{}", gh.log());
    let readiness = get(&gh.url("/health/readiness"), &[]).await;
    assert_eq!(readiness.status, 200);
    // The counts were in Redis, under this test's prefix.
    assert!(
        !space.keys().await.is_empty(),
        "no key under {} in Redis",
        space.prefix
    );
    drop(gh);
    space.cleanup().await;
}
