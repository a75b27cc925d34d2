//! The `gatehouse` binary: command line, logging, and wiring. The logic lives in the
//! library crates (`gatehouse-config`, `gatehouse-gateway`, …).

mod cli;

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use gatehouse_config::{LoadError, Loaded, load_file};
use gatehouse_gateway::{
    Gateway, check_exposure, close_accounts, open_accounts, serve, spawn_background,
};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Serve { config, host, port } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the async runtime");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run_serve(&config, &host, port))
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn report_load_error(path: &Path, e: &LoadError) {
    match e {
        LoadError::Io(err) => {
            tracing::error!(config = %path.display(), error = %err, "cannot read config")
        }
        LoadError::Invalid(problems) => {
            for p in problems {
                tracing::error!(config = %path.display(), "{p}");
            }
            tracing::error!(config = %path.display(), count = problems.len(), "config is invalid");
        }
    }
}

fn report_ignored(loaded: &Loaded) {
    for i in &loaded.ignored {
        tracing::warn!("{i}");
    }
}

/// `gatehouse check`: every problem by path on stderr; a summary on stdout; non-zero on problems.
fn check(path: &Path) -> ExitCode {
    match load_file(path) {
        Ok(loaded) => {
            let mut out = std::io::stdout().lock();
            for i in &loaded.ignored {
                let _ = writeln!(out, "{i}");
            }
            let models: std::collections::BTreeSet<&str> = loaded
                .config
                .deployments
                .iter()
                .map(|d| d.model_name.as_str())
                .collect();
            let _ = writeln!(
                out,
                "ok: {} deployment(s) serving {} model name(s)",
                loaded.config.deployments.len(),
                models.len()
            );
            ExitCode::SUCCESS
        }
        Err(LoadError::Invalid(problems)) => {
            let mut err = std::io::stderr().lock();
            for p in &problems {
                let _ = writeln!(err, "error: {p}");
            }
            let _ = writeln!(err, "{}: {} problem(s)", path.display(), problems.len());
            ExitCode::FAILURE
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve --host {host}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("--host {host} resolves to no address"))
}

async fn run_serve(config_path: &Path, host: &str, port: u16) -> ExitCode {
    let loaded = match load_file(config_path) {
        Ok(l) => l,
        Err(e) => {
            report_load_error(config_path, &e);
            return ExitCode::FAILURE;
        }
    };
    report_ignored(&loaded);
    let config = loaded.config;
    let config_dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let accounts = match open_accounts(&config, config_dir).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        database = ?accounts.store.backend(),
        counters = ?accounts.limiter.mode(),
        "state opened"
    );
    let gateway = match Gateway::new(&config, accounts) {
        Ok(g) => Arc::new(g),
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    if config.master_key.is_none() {
        tracing::warn!("no master key: every client on this host can use the configured models");
    }
    let addr = match resolve(host, port).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = check_exposure(addr, &gateway) {
        tracing::error!("{e}");
        return ExitCode::FAILURE;
    }
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        addr = %local,
        deployments = config.deployments.len(),
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );
    let background = spawn_background(&gateway, config.gatehouse.invalidation_poll_interval);
    let served = serve(
        listener,
        Arc::clone(&gateway),
        &config.gatehouse,
        shutdown_signal(),
    )
    .await;
    background.abort();
    // Every spend record of a finished request is written before the process exits.
    // Every spend record of a finished request is written before the process exits, or kept
    // in a file beside the config for the next start when the database is down.
    close_accounts(
        &gateway.accounts,
        config.gatehouse.shutdown_timeout,
        config_dir,
    )
    .await;
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
