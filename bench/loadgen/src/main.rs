//! `gatehouse-loadgen`: a small, bounded HTTP/1.1 load generator for the bench harness.
//!
//! C workers, each with its own keep-alive connection, share a budget of W warm-up and
//! N measured requests and stop early after T seconds. Each worker drives its connection
//! and its requests in a single task (no cross-task wake-ups per request), records the
//! latency of every successful request (full body read) in a preallocated `Vec<u32>` of
//! microseconds, and the results are sorted once at the end.
//!
//! Output: one JSON object on stdout, see [`Summary::to_json`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
usage: gatehouse-loadgen --url URL [options]
  --url URL            http://host:port/path (plain HTTP/1.1 only)
  --method M           HTTP method (default POST if a body is given, else GET)
  --body JSON|@FILE    request body, inline or read from FILE
  --header 'k: v'      extra request header (repeatable)
  --concurrency C      workers, one keep-alive connection each (default 1)
  --requests N         measured requests across all workers (default 1000)
  --max-seconds T      stop the measured phase after T seconds (default 10)
  --warmup W           unmeasured warm-up requests before measuring (default 0)
  --timeout-ms MS      per-request timeout, counted as an error (default 10000)
  --threads K          runtime threads (default: CPUs this process may run on)
  --stream             also record time to first content chunk of an SSE response
                       (the body itself must ask for a stream, e.g. \"stream\": true)
prints one JSON object: requests, errors, seconds, rps, p50_us, p90_us, p99_us, max_us,
mean_us (and ttfc_p50_us, ttfc_p90_us, ttfc_p99_us with --stream)";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    url: String,
    method: Option<String>,
    body: Option<String>,
    headers: Vec<(String, String)>,
    concurrency: usize,
    requests: u64,
    max_seconds: f64,
    warmup: u64,
    timeout_ms: u64,
    threads: Option<usize>,
    stream: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            url: String::new(),
            method: None,
            body: None,
            headers: Vec::new(),
            concurrency: 1,
            requests: 1000,
            max_seconds: 10.0,
            warmup: 0,
            timeout_ms: 10_000,
            threads: None,
            stream: false,
        }
    }
}

/// What the command line asked for: a run, or the usage text.
#[derive(Debug, PartialEq)]
enum Command {
    Run(Args),
    Help,
}

fn parse_num<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| format!("{flag}: not a valid number: {value:?}"))
}

fn parse_args<I: IntoIterator<Item = String>>(argv: I) -> Result<Command, String> {
    let mut args = Args::default();
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(Command::Help);
        }
        if flag == "--stream" {
            args.stream = true;
            continue;
        }
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--method" => args.method = Some(value()?),
            "--body" => args.body = Some(value()?),
            "--header" | "-H" => {
                let v = value()?;
                let (k, val) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--header: expected 'name: value', got {v:?}"))?;
                let k = k.trim();
                if k.is_empty() {
                    return Err(format!("--header: empty name in {v:?}"));
                }
                args.headers.push((k.to_owned(), val.trim().to_owned()));
            }
            "--concurrency" | "-c" => args.concurrency = parse_num(&flag, &value()?)?,
            "--requests" | "-n" => args.requests = parse_num(&flag, &value()?)?,
            "--max-seconds" => args.max_seconds = parse_num(&flag, &value()?)?,
            "--warmup" => args.warmup = parse_num(&flag, &value()?)?,
            "--timeout-ms" => args.timeout_ms = parse_num(&flag, &value()?)?,
            "--threads" => args.threads = Some(parse_num(&flag, &value()?)?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.url.is_empty() {
        return Err("--url is required".to_owned());
    }
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".to_owned());
    }
    if !(args.max_seconds.is_finite() && args.max_seconds > 0.0) {
        return Err("--max-seconds must be a positive number".to_owned());
    }
    if args.timeout_ms == 0 {
        return Err("--timeout-ms must be at least 1".to_owned());
    }
    if args.threads == Some(0) {
        return Err("--threads must be at least 1".to_owned());
    }
    Ok(Command::Run(args))
}

/// Everything a worker needs to build a request, shared read-only.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    stream: bool,
    timeout: Duration,
}

impl Target {
    fn from_args(args: &Args) -> Result<Self, String> {
        let parsed: Uri = args
            .url
            .parse()
            .map_err(|e| format!("--url {:?}: {e}", args.url))?;
        if parsed.scheme_str() != Some("http") {
            return Err(format!("--url {:?}: only http:// is supported", args.url));
        }
        let authority = parsed
            .authority()
            .ok_or_else(|| format!("--url {:?}: no host", args.url))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| format!("--url {:?}: cannot resolve: {e}", args.url))?
            .next()
            .ok_or_else(|| format!("--url {:?}: host has no address", args.url))?;
        let path = parsed
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let uri: Uri = path
            .parse()
            .map_err(|e| format!("--url {:?}: {e}", args.url))?;

        let body = match &args.body {
            None => Bytes::new(),
            Some(b) => match b.strip_prefix('@') {
                Some(file) => {
                    Bytes::from(std::fs::read(file).map_err(|e| format!("--body @{file}: {e}"))?)
                }
                None => Bytes::from(b.clone().into_bytes()),
            },
        };
        let method = match &args.method {
            Some(m) => Method::from_bytes(m.as_bytes()).map_err(|e| format!("--method: {e}"))?,
            None if args.body.is_some() => Method::POST,
            None => Method::GET,
        };

        let mut headers = HeaderMap::new();
        let host_value = HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("--url host header: {e}"))?;
        headers.insert(HOST, host_value);
        if args.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (k, v) in &args.headers {
            let name =
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("--header {k:?}: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("--header {k:?}: {e}"))?;
            headers.insert(name, value);
        }
        Ok(Self {
            addr,
            method,
            uri,
            headers,
            body,
            stream: args.stream,
            timeout: Duration::from_millis(args.timeout_ms),
        })
    }

    fn request(&self) -> Result<Request<Full<Bytes>>, BoxError> {
        let mut req = Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone())
            .body(Full::new(self.body.clone()))?;
        *req.headers_mut() = self.headers.clone();
        Ok(req)
    }
}

/// Per-worker results; merged at the end.
#[derive(Debug, Default)]
struct Record {
    latency_us: Vec<u32>,
    ttfc_us: Vec<u32>,
    errors: u64,
    incomplete: u64,
    error_kinds: BTreeMap<String, u64>,
}

impl Record {
    fn with_capacity(n: usize, stream: bool) -> Self {
        Self {
            latency_us: Vec::with_capacity(n),
            ttfc_us: if stream {
                Vec::with_capacity(n)
            } else {
                Vec::new()
            },
            ..Self::default()
        }
    }

    fn error(&mut self, kind: String) {
        self.errors += 1;
        *self.error_kinds.entry(kind).or_insert(0) += 1;
    }

    fn merge(&mut self, other: Self) {
        self.latency_us.extend_from_slice(&other.latency_us);
        self.ttfc_us.extend_from_slice(&other.ttfc_us);
        self.errors += other.errors;
        self.incomplete += other.incomplete;
        for (k, v) in other.error_kinds {
            *self.error_kinds.entry(k).or_insert(0) += v;
        }
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// True if an SSE body chunk carries a `data:` frame with a non-empty `"content"` string
/// (an OpenAI chat delta with text), i.e. the first token has arrived.
fn has_content(chunk: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\"";
    let mut rest = chunk;
    while let Some(i) = find(rest, KEY) {
        let mut after = &rest[i + KEY.len()..];
        while let [b' ' | b'\t', tail @ ..] = after {
            after = tail;
        }
        if let [b':', tail @ ..] = after {
            let mut v = tail;
            while let [b' ' | b'\t', t @ ..] = v {
                v = t;
            }
            if let [b'"', c, ..] = v
                && *c != b'"'
            {
                return true;
            }
        }
        rest = &rest[i + KEY.len()..];
    }
    false
}

/// True if the chunk holds an SSE `data:` frame other than the `[DONE]` terminator.
fn has_data_frame(chunk: &[u8]) -> bool {
    let mut rest = chunk;
    while let Some(i) = find(rest, b"data:") {
        let after = rest[i + 5..].trim_ascii_start();
        if !after.starts_with(b"[DONE]") {
            return true;
        }
        rest = &rest[i + 5..];
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Outcome of one request on a live connection.
enum Outcome {
    /// 2xx, body fully read: total latency and (streaming) time to first content.
    Ok {
        total: Duration,
        ttfc: Option<Duration>,
    },
    /// Non-2xx status, body fully read; the connection is still usable.
    Status(u16),
}

async fn connect(
    addr: SocketAddr,
) -> Result<
    (
        http1::SendRequest<Full<Bytes>>,
        http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
    ),
    BoxError,
> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
    Ok((sender, conn))
}

async fn read_body(
    mut body: Incoming,
    start: Instant,
    stream: bool,
) -> Result<Option<Duration>, BoxError> {
    let mut first_content: Option<Duration> = None;
    let mut first_data: Option<Duration> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if stream
            && first_content.is_none()
            && let Some(data) = frame.data_ref()
        {
            let now = start.elapsed();
            if has_content(data) {
                first_content = Some(now);
            } else if first_data.is_none() && has_data_frame(data) {
                first_data = Some(now);
            }
        }
    }
    Ok(first_content.or(first_data))
}

async fn one_request(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    target: &Target,
) -> Result<Outcome, BoxError> {
    sender.ready().await?;
    let req = target.request()?;
    let start = Instant::now();
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let ttfc = read_body(resp.into_body(), start, target.stream).await?;
    let total = start.elapsed();
    if status.is_success() {
        Ok(Outcome::Ok { total, ttfc })
    } else {
        Ok(Outcome::Status(status.as_u16()))
    }
}

/// Shared request budget: each attempt (including failed connects) takes one ticket, so
/// every loop is bounded by count as well as by its deadline.
#[derive(Debug)]
struct Budget {
    taken: AtomicU64,
    limit: u64,
}

impl Budget {
    fn new(limit: u64) -> Self {
        Self {
            taken: AtomicU64::new(0),
            limit,
        }
    }
    fn take(&self) -> bool {
        self.taken.fetch_add(1, Ordering::Relaxed) < self.limit
    }
}

/// A worker's connection state: the request handle and the connection future it drives.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: std::pin::Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

/// Run requests until the budget or the deadline runs out. Records into `rec` if given.
async fn run_phase(
    target: &Target,
    slot: &mut Option<Conn>,
    budget: &Budget,
    deadline: Instant,
    mut rec: Option<&mut Record>,
) {
    while Instant::now() < deadline && budget.take() {
        let mut c = match slot.take() {
            Some(c) => c,
            None => {
                let connected = tokio::time::timeout_at(deadline.into(), connect(target.addr))
                    .await
                    .map_err(BoxError::from)
                    .and_then(|r| r);
                match connected {
                    Ok((sender, conn)) => Conn {
                        sender,
                        conn: Box::pin(conn),
                    },
                    Err(e) => {
                        if let Some(r) = rec.as_deref_mut() {
                            r.error(format!("connect: {e}"));
                        }
                        // Don't spin on a refused port; the budget still bounds this loop.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
            }
        };
        let req_deadline = std::cmp::min(deadline, Instant::now() + target.timeout);
        let result = {
            let Conn { sender, conn } = &mut c;
            tokio::select! {
                biased;
                r = tokio::time::timeout_at(req_deadline.into(), one_request(sender, target)) => {
                    match r {
                        Ok(Ok(o)) => Ok(o),
                        Ok(Err(e)) => Err(format!("io: {e}")),
                        Err(_) if req_deadline == deadline => Err(String::new()),
                        Err(_) => Err("timeout".to_owned()),
                    }
                }
                r = conn.as_mut() => Err(match r {
                    Ok(()) => "io: connection closed".to_owned(),
                    Err(e) => format!("io: {e}"),
                }),
            }
        };
        match result {
            Ok(Outcome::Ok { total, ttfc }) => {
                if let Some(r) = rec.as_deref_mut() {
                    r.latency_us.push(micros(total));
                    if target.stream {
                        r.ttfc_us.push(micros(ttfc.unwrap_or(total)));
                    }
                }
                *slot = Some(c);
            }
            Ok(Outcome::Status(code)) => {
                if let Some(r) = rec.as_deref_mut() {
                    r.error(format!("status {code}"));
                }
                *slot = Some(c);
            }
            Err(kind) => {
                // The connection is in an unknown state: drop it, reconnect next time.
                if let Some(r) = rec.as_deref_mut() {
                    if kind.is_empty() {
                        r.incomplete += 1;
                    } else {
                        r.error(kind);
                    }
                }
            }
        }
    }
}

/// Final numbers.
#[derive(Debug, PartialEq)]
struct Summary {
    requests: u64,
    errors: u64,
    incomplete: u64,
    seconds: f64,
    p50: u32,
    p90: u32,
    p99: u32,
    max: u32,
    mean: f64,
    ttfc: Option<(u32, u32, u32)>,
    error_kinds: BTreeMap<String, u64>,
}

/// Nearest-rank percentile of a sorted slice (`p` in 0..=100); 0 for an empty slice.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let rank = (p / 100.0 * n as f64).ceil() as usize;
    let idx = rank.clamp(1, n) - 1;
    sorted[idx]
}

fn summarize(mut rec: Record, seconds: f64, stream: bool) -> Summary {
    rec.latency_us.sort_unstable();
    rec.ttfc_us.sort_unstable();
    let lat = &rec.latency_us;
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / lat.len() as f64
    };
    let ttfc = stream.then(|| {
        (
            percentile(&rec.ttfc_us, 50.0),
            percentile(&rec.ttfc_us, 90.0),
            percentile(&rec.ttfc_us, 99.0),
        )
    });
    Summary {
        requests: lat.len() as u64,
        errors: rec.errors,
        incomplete: rec.incomplete,
        seconds,
        p50: percentile(lat, 50.0),
        p90: percentile(lat, 90.0),
        p99: percentile(lat, 99.0),
        max: lat.last().copied().unwrap_or(0),
        mean,
        ttfc,
        error_kinds: rec.error_kinds,
    }
}

impl Summary {
    fn to_json(&self) -> serde_json::Value {
        let rps = if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        };
        let mut v = serde_json::json!({
            "requests": self.requests,
            "errors": self.errors,
            "incomplete": self.incomplete,
            "seconds": (self.seconds * 1e6).round() / 1e6,
            "rps": (rps * 10.0).round() / 10.0,
            "p50_us": self.p50,
            "p90_us": self.p90,
            "p99_us": self.p99,
            "max_us": self.max,
            "mean_us": (self.mean * 10.0).round() / 10.0,
        });
        if let (Some((t50, t90, t99)), Some(obj)) = (self.ttfc, v.as_object_mut()) {
            obj.insert("ttfc_p50_us".into(), t50.into());
            obj.insert("ttfc_p90_us".into(), t90.into());
            obj.insert("ttfc_p99_us".into(), t99.into());
        }
        if !self.error_kinds.is_empty()
            && let Some(obj) = v.as_object_mut()
        {
            obj.insert(
                "error_kinds".into(),
                serde_json::to_value(&self.error_kinds).unwrap_or_default(),
            );
        }
        v
    }
}

async fn run(args: Args) -> Result<Summary, BoxError> {
    let target = Arc::new(Target::from_args(&args)?);
    let c = args.concurrency;
    let limit = Duration::from_secs_f64(args.max_seconds);
    let warm_budget = Arc::new(Budget::new(args.warmup));
    let budget = Arc::new(Budget::new(args.requests));
    // Workers + main: everyone waits until all warm-ups are done before measuring.
    let barrier = Arc::new(Barrier::new(c + 1));
    let per_worker = usize::try_from(args.requests / c as u64)
        .unwrap_or(usize::MAX)
        .saturating_mul(2)
        .saturating_add(16)
        .min(usize::try_from(args.requests).unwrap_or(usize::MAX));

    let mut tasks = Vec::with_capacity(c);
    for _ in 0..c {
        let target = Arc::clone(&target);
        let warm_budget = Arc::clone(&warm_budget);
        let budget = Arc::clone(&budget);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let mut slot: Option<Conn> = None;
            let mut rec = Record::with_capacity(per_worker, target.stream);
            let warm_deadline = Instant::now() + limit;
            run_phase(&target, &mut slot, &warm_budget, warm_deadline, None).await;
            barrier.wait().await;
            let deadline = Instant::now() + limit;
            run_phase(&target, &mut slot, &budget, deadline, Some(&mut rec)).await;
            rec
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut total = Record::with_capacity(
        usize::try_from(args.requests).unwrap_or(0).min(1 << 24),
        target.stream,
    );
    for t in tasks {
        match t.await {
            Ok(rec) => total.merge(rec),
            Err(e) => total.error(format!("worker: {e}")),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(summarize(total, seconds, target.stream))
}

fn main() -> std::process::ExitCode {
    let cmd = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatehouse-loadgen: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let args = match cmd {
        Command::Help => {
            let _ = writeln!(std::io::stdout().lock(), "{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Command::Run(a) => a,
    };
    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse-loadgen: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(summary) => {
            let _ = writeln!(std::io::stdout().lock(), "{}", summary.to_json());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatehouse-loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        // 10 samples: p50 is the 5th, p99 the 10th.
        let w = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(percentile(&w, 50.0), 50);
        assert_eq!(percentile(&w, 99.0), 100);
    }

    #[test]
    fn summary_sorts_and_averages() {
        let rec = Record {
            latency_us: vec![300, 100, 200, 400],
            errors: 2,
            ..Record::default()
        };
        let s = summarize(rec, 2.0, false);
        assert_eq!(s.requests, 4);
        assert_eq!(s.errors, 2);
        assert_eq!((s.p50, s.p99, s.max), (200, 400, 400));
        assert!((s.mean - 250.0).abs() < 1e-9);
        let j = s.to_json();
        assert_eq!(j["rps"], 2.0);
        assert!(j.get("ttfc_p50_us").is_none());
    }

    #[test]
    fn parses_all_flags() {
        let cmd = parse_args(argv(&[
            "--url",
            "http://127.0.0.1:9/v1/chat/completions",
            "--body",
            "{\"a\":1}",
            "--header",
            "Authorization: Bearer sk-x:y",
            "-H",
            "x-test:1",
            "--concurrency=16",
            "--requests",
            "5000",
            "--max-seconds",
            "2.5",
            "--warmup",
            "100",
            "--stream",
        ]));
        let Ok(Command::Run(a)) = cmd else {
            unreachable!("unexpected parse result: {cmd:?}");
        };
        assert_eq!(a.url, "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(a.body.as_deref(), Some("{\"a\":1}"));
        assert_eq!(
            a.headers,
            vec![
                ("Authorization".to_owned(), "Bearer sk-x:y".to_owned()),
                ("x-test".to_owned(), "1".to_owned()),
            ]
        );
        assert_eq!(a.concurrency, 16);
        assert_eq!(a.requests, 5000);
        assert!((a.max_seconds - 2.5).abs() < 1e-12);
        assert_eq!(a.warmup, 100);
        assert!(a.stream);
    }

    #[test]
    fn rejects_bad_args() {
        assert!(parse_args(argv(&[])).is_err());
        assert!(parse_args(argv(&["--url", "http://x", "--concurrency", "0"])).is_err());
        assert!(parse_args(argv(&["--url", "http://x", "--requests", "many"])).is_err());
        assert!(parse_args(argv(&["--url", "http://x", "--max-seconds", "-1"])).is_err());
        assert!(parse_args(argv(&["--url", "http://x", "--header", "nocolon"])).is_err());
        assert!(parse_args(argv(&["--url", "http://x", "--bogus"])).is_err());
        assert!(parse_args(argv(&["--url"])).is_err());
        assert_eq!(parse_args(argv(&["--help"])), Ok(Command::Help));
    }

    #[test]
    fn target_builds_request() {
        let args = Args {
            url: "http://127.0.0.1:8080/v1/x?y=1".to_owned(),
            body: Some("{}".to_owned()),
            headers: vec![("authorization".to_owned(), "Bearer k".to_owned())],
            ..Args::default()
        };
        let t = Target::from_args(&args);
        let Ok(t) = t else {
            unreachable!("target: {t:?}");
        };
        assert_eq!(t.addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(t.method, Method::POST);
        assert_eq!(t.uri, "/v1/x?y=1");
        assert_eq!(t.headers[HOST], "127.0.0.1:8080");
        assert_eq!(t.headers[CONTENT_TYPE], "application/json");
        let bad = Args {
            url: "https://127.0.0.1/".to_owned(),
            ..Args::default()
        };
        assert!(Target::from_args(&bad).is_err());
    }

    #[test]
    fn detects_sse_content() {
        let role =
            b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
        let text = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        let spaced = b"data: {\"delta\": {\"content\" : \"x\"}}\n\n";
        assert!(!has_content(role));
        assert!(has_data_frame(role));
        assert!(has_content(text));
        assert!(has_content(spaced));
        assert!(!has_data_frame(b"data: [DONE]\n\n"));
        assert!(!has_content(b"data: [DONE]\n\n"));
        let mut both = role.to_vec();
        both.extend_from_slice(text);
        assert!(has_content(&both));
    }
}
