//! Command-line interface (clap conventions; `gatehouse --help`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// gatehouse: a self-hosted AI gateway, a drop-in replacement for the LiteLLM proxy.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log format; the level comes from RUST_LOG (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// The LiteLLM-format config file.
        #[arg(long, short = 'c')]
        config: PathBuf,
        /// Address to listen on. Anything but loopback requires a master key.
        #[arg(long, default_value = "0.0.0.0")]
        host: String,
        /// Port to listen on (0 picks a free one; the log line `listening addr=…` says which).
        #[arg(long, default_value_t = 4000)]
        port: u16,
    },
    /// Validate a config file and print every problem by its path.
    Check {
        /// The LiteLLM-format config file.
        #[arg(long, short = 'c')]
        config: PathBuf,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
