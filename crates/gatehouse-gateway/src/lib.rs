//! The gateway: the HTTP server and the request pipeline behind it.
//!
//! - [`server`]: listener, connection timeouts, graceful shutdown, the loopback rule.
//! - [`routes`]: the HTTP surface (OpenAI-compatible and health endpoints).
//! - [`proxy`]: the pipeline for proxied calls (auth → body → validate → route → upstream).
//! - [`routing`]: model name → deployment (weighted shuffle, retries prefer untried).
//! - [`upstream`]: the pooled rustls HTTP client and the retry policy.
//! - [`google_auth`]: OAuth2 access tokens for Vertex AI (service-account JWT, cached).
//! - [`stream`]: chunk-by-chunk forwarding of streamed responses.
//! - [`auth`]: where a client key is read from.
//! - [`keys`]: who is calling (master key or virtual key), from an in-memory key cache.
//! - [`accounting`]: rate limits and budget reservations before the call, cost and spend after.
//! - [`admin`]: the LiteLLM-compatible admin API.
//! - [`error`]: every client-visible error and its status, in one place.

pub mod accounting;
pub mod admin;
pub mod auth;
pub mod error;
pub mod google_auth;
pub mod keys;
pub mod proxy;
pub mod routes;
pub mod routing;
pub mod server;
pub mod stream;
pub mod upstream;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gatehouse_config::Config;
use gatehouse_limits::{BudgetFallback, Limiter, RedisOptions, RedisUrl};
use gatehouse_store::{FeedCursor, SpendWriter, Store, StoreOptions, WriterConfig};
use sha2::{Digest, Sha256};

use crate::accounting::Accounts;
use crate::keys::KeyCache;
use crate::routing::ModelRouter;
use crate::upstream::UpstreamClient;

pub use server::{ExposureError, check_exposure, serve};

/// Request limits applied before a body is parsed.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// The same, in MB, for messages.
    pub max_body_mb: f64,
    /// Time a client has to send its body.
    pub body_timeout: Duration,
}

/// Everything a request needs, built once from config and shared by all requests.
#[derive(Debug)]
pub struct Gateway {
    /// Model name → deployments.
    pub router: ModelRouter,
    /// Keys, counters, spend.
    pub accounts: Accounts,
    /// `/model/info`, built once.
    pub model_info: Bytes,
    /// The upstream client.
    pub upstream: UpstreamClient,
    /// Body limits.
    pub limits: Limits,
    draining: AtomicBool,
}

/// Why a gateway could not be built from a (valid) config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A deployment could not be turned into an upstream.
    #[error("{0}")]
    Deployment(String),
    /// TLS could not be set up.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The store could not be opened.
    #[error("cannot open the database: {0}")]
    Store(#[from] gatehouse_store::StoreError),
    /// The Redis settings are unusable.
    #[error("redis: {0}")]
    Redis(#[from] gatehouse_limits::LimitsError),
}

/// Shuts the spend writer down (waiting for requests still settling, then flushing, both
/// within `timeout`); records it could not write — the database is down — are saved to a
/// file in `config_dir`, which [`open_accounts`] writes at the next start.
pub async fn close_accounts(accounts: &Accounts, timeout: Duration, config_dir: &Path) {
    let Err(unflushed) = accounts.spend.shutdown(timeout).await else {
        return;
    };
    match gatehouse_store::write_spill(config_dir, &unflushed, accounting::now_ms()) {
        Ok(path) => tracing::warn!(
            records = unflushed.len(),
            path = %path.display(),
            "the database is unreachable: spend records saved to a file, written at the next start"
        ),
        Err(e) => tracing::error!(
            records = unflushed.len(),
            error = %e,
            "spend records could not be written to the database nor saved to a file"
        ),
    }
}

/// The SQLite file used when the config names no database: beside the config file.
pub const DEFAULT_SQLITE_FILE: &str = "gatehouse.db";

/// Opens the store (running migrations), the limiter and the spend writer for `config`.
/// `config_dir` is where the default SQLite file goes.
pub async fn open_accounts(config: &Config, config_dir: &Path) -> Result<Accounts, BuildError> {
    let url = match &config.database_url {
        Some(u) => u.expose().to_owned(),
        None => format!(
            "sqlite://{}",
            config_dir.join(DEFAULT_SQLITE_FILE).display()
        ),
    };
    let store = Store::connect(&url, StoreOptions::default()).await?;
    // Spend that a previous run could not write before it exited (database down through its
    // whole shutdown) is written now; each batch at most once.
    match gatehouse_store::replay_spills(&store, config_dir).await {
        (done, None) if done.files > 0 => tracing::info!(
            files = done.files,
            records = done.records,
            "wrote spend records left over from an earlier shutdown"
        ),
        (_, None) => {}
        (done, Some(e)) => tracing::error!(
            error = %e,
            files_written = done.files,
            "could not write spend records left over from an earlier shutdown; the file stays for the next start"
        ),
    }
    if config.redis.is_none() && store.backend() == gatehouse_store::Backend::Postgres {
        tracing::warn!(
            "PostgreSQL without Redis: rate limits and budgets are counted by each replica on its own; \
             with several replicas set router_settings.redis_url so that they hold exactly"
        );
    }
    let limiter = match &config.redis {
        Some(r) => Limiter::with_redis_options(
            RedisUrl::parse(r.url.expose())?,
            RedisOptions {
                timeout: config.gatehouse.redis_timeout,
                budget_fallback: match config.gatehouse.budget_fallback {
                    gatehouse_config::BudgetFallback::Refuse => BudgetFallback::Refuse,
                    gatehouse_config::BudgetFallback::Local => BudgetFallback::Local,
                },
                key_prefix: config.gatehouse.redis_key_prefix.clone(),
                ..RedisOptions::default()
            },
        )?,
        None => Limiter::local(),
    };
    let spend = Arc::new(SpendWriter::spawn(
        Arc::new(store.clone()),
        WriterConfig::default(),
    ));
    let master = config
        .master_key
        .as_ref()
        .map(|k| Sha256::digest(k.expose().as_bytes()).into());
    let keys = Arc::new(KeyCache::new(
        master,
        store.clone(),
        config.gatehouse.key_cache_ttl,
        config.gatehouse.key_cache_stale_ttl,
    ));
    Ok(Accounts {
        store,
        keys,
        limiter,
        spend,
    })
}

impl Gateway {
    /// Builds the gateway from a validated config and its opened stores.
    pub fn new(config: &Config, accounts: Accounts) -> Result<Self, BuildError> {
        let router = ModelRouter::new(&config.deployments).map_err(BuildError::Deployment)?;
        Ok(Self {
            model_info: router.model_info_json(&config.deployments),
            router,
            accounts,
            upstream: UpstreamClient::new(&config.gatehouse)?,
            limits: Limits {
                max_body_bytes: usize::try_from(config.max_request_size_bytes)
                    .unwrap_or(usize::MAX),
                max_body_mb: config.max_request_size_bytes as f64 / (1024.0 * 1024.0),
                body_timeout: config.gatehouse.client_body_timeout,
            },
            draining: AtomicBool::new(false),
        })
    }

    /// True once shutdown has begun: readiness fails and new proxied requests get 503.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Starts draining.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}

/// Starts the background work: following the store's change feed (key cache invalidation
/// across replicas), resetting budgets whose period is over, pruning old change events.
pub fn spawn_background(gw: &Arc<Gateway>, poll: Duration) -> tokio::task::JoinHandle<()> {
    let gw = Arc::clone(gw);
    tokio::spawn(async move {
        let accounts = &gw.accounts;
        // Follows the feed with a gap-aware cursor: on PostgreSQL an event can commit after
        // one with a higher seq has been read; the cursor asks for skipped numbers again.
        let mut cursor = match FeedCursor::start(&accounts.store).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the change feed yet");
                None
            }
        };
        let mut ticks: u64 = 0;
        let mut failing = false;
        loop {
            tokio::time::sleep(poll).await;
            ticks += 1;
            match &mut cursor {
                None => {
                    if let Ok(c) = FeedCursor::start(&accounts.store).await {
                        // We missed changes while the store was away: start clean.
                        accounts.keys.forget_all();
                        cursor = Some(c);
                    }
                }
                Some(c) => match c.poll(&accounts.store, 1000).await {
                    Ok(events) => {
                        if failing {
                            tracing::info!("change feed readable again");
                            failing = false;
                        }
                        for e in &events {
                            accounts.keys.apply_event(e.kind.as_str(), &e.id);
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "cannot read the change feed; cached keys are kept");
                            failing = true;
                        }
                    }
                },
            }
            // Every ~5 s: budgets whose period ended.
            if ticks.is_multiple_of(20) {
                match accounts.store.reset_due_budgets(accounting::now_ms()).await {
                    Ok(reset) => {
                        for (kind, id) in reset {
                            accounts.keys.apply_event(kind.as_str(), &id);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "budget reset skipped"),
                }
            }
            // Every ~10 min: change events older than a day.
            if ticks.is_multiple_of(2400) {
                let _ = accounts
                    .store
                    .prune_events(accounting::now_ms() - 86_400_000)
                    .await;
            }
        }
    })
}
