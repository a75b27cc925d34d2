//! `gatehouse-mock`: runs the mock OpenAI-compatible provider as a process.
//!
//! ```text
//! gatehouse-mock [--host 127.0.0.1] [--port 0] [--no-record] [--aws-credentials ID:SECRET[:TOKEN]]...
//! ```
//!
//! Once bound it prints exactly one line, `listening addr=IP:PORT`, to stdout,
//! then serves until SIGTERM or SIGINT, on which it exits with status 0.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use gatehouse_mock::{AwsTestCredentials, MockOptions, MockState, serve};

const USAGE: &str = "\
gatehouse-mock: a mock LLM provider speaking OpenAI's wire format (tests and benchmarks only)

Usage: gatehouse-mock [--host 127.0.0.1] [--port 0] [--no-record] [--aws-credentials ID:SECRET[:TOKEN]]...

Options:
  --host HOST    loopback address to bind (127.0.0.1, ::1 or localhost) [default: 127.0.0.1]
  --port PORT    port to bind, 0 for any free port [default: 0]
  --no-record    do not record requests (GET /_mock/requests stays empty)
  --aws-credentials ID:SECRET[:TOKEN]
                 test credentials Bedrock requests must be SigV4-signed with (repeatable;
                 without any, Bedrock routes refuse every request)
  -h, --help     print this help

Prints `listening addr=IP:PORT` once bound; stops on SIGTERM or SIGINT.
";

/// Parsed command line.
#[derive(Debug, PartialEq)]
struct Args {
    host: IpAddr,
    port: u16,
    record: bool,
    aws: Vec<AwsTestCredentials>,
}

/// Parses the arguments (without the program name); `Ok(None)` asks for help.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        record: true,
        aws: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--host" => parsed.host = parse_host(&value("--host")?)?,
            "--port" => {
                let v = value("--port")?;
                parsed.port = v.parse().map_err(|_| format!("invalid port: {v}"))?;
            }
            "--no-record" => parsed.record = false,
            "--aws-credentials" => {
                let v = value("--aws-credentials")?;
                let creds = AwsTestCredentials::parse(&v).ok_or(
                    "--aws-credentials takes ACCESS_KEY_ID:SECRET or ACCESS_KEY_ID:SECRET:SESSION_TOKEN",
                )?;
                parsed.aws.push(creds);
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(parsed))
}

/// A loopback IP (or `localhost`); anything else is refused.
fn parse_host(host: &str) -> Result<IpAddr, String> {
    let ip = if host == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| format!("invalid host: {host} (give a loopback IP address)"))?
    };
    if ip.is_loopback() {
        Ok(ip)
    } else {
        Err(format!(
            "refusing to bind non-loopback host {host}: the mock is for local tests only"
        ))
    }
}

/// Waits for SIGTERM or SIGINT. Handlers are installed by [`Signals::new`], so
/// a signal arriving before [`Signals::wait`] is not lost.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn wait(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run(args: Args) -> io::Result<()> {
    let mut signals = Signals::new()?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port)).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening addr={addr}")?;
        out.flush()?;
    }
    let opts = MockOptions {
        record: args.record,
    };
    let state = Arc::new(MockState::new());
    for creds in args.aws {
        state.accept_aws_credentials(creds);
    }
    tokio::select! {
        served = serve(listener, opts, state) => served,
        () = signals.wait() => Ok(()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            let mut out = io::stdout().lock();
            let _ = out.write_all(USAGE.as_bytes());
            let _ = out.flush();
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("gatehouse-mock: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-mock: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(
            parse(&[]).unwrap().unwrap(),
            Args {
                host: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 0,
                record: true,
                aws: Vec::new(),
            }
        );
    }

    #[test]
    fn flags() {
        let a = parse(&["--host", "::1", "--port=8080", "--no-record"])
            .unwrap()
            .unwrap();
        assert_eq!(a.host, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(a.port, 8080);
        assert!(!a.record);
        assert_eq!(
            parse(&["--host=localhost"]).unwrap().unwrap().host,
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            parse(&["--host", "127.0.0.2"]).unwrap().unwrap().host,
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
        assert!(parse(&["--help"]).unwrap().is_none());
        let a = parse(&[
            "--aws-credentials",
            "AKIDEXAMPLE:wJalr/K7+KEY",
            "--aws-credentials=AKID2:s:tok/en==",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.aws.len(), 2);
        assert_eq!(a.aws[0].secret_access_key, "wJalr/K7+KEY");
        assert_eq!(a.aws[0].session_token, None);
        assert_eq!(a.aws[1].session_token.as_deref(), Some("tok/en=="));
        assert!(parse(&["--aws-credentials", "AKID"]).is_err());
    }

    #[test]
    fn refusals() {
        assert!(
            parse(&["--host", "0.0.0.0"])
                .unwrap_err()
                .contains("non-loopback")
        );
        assert!(parse(&["--host", "10.1.2.3"]).is_err());
        assert!(parse(&["--host", "example.com"]).is_err());
        assert!(parse(&["--port", "70000"]).is_err());
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
