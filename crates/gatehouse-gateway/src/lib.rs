//! The gateway: the HTTP server and the request pipeline behind it.
//!
//! - [`server`]: listener, connection timeouts, graceful shutdown, the loopback rule.
//! - [`routes`]: the HTTP surface (OpenAI-compatible and health endpoints).
//! - [`proxy`]: the pipeline for proxied calls (auth → body → validate → route → upstream).
//! - [`routing`]: model name → deployment (weighted shuffle, retries prefer untried).
//! - [`upstream`]: the pooled rustls HTTP client and the retry policy.
//! - [`google_auth`]: OAuth2 access tokens for Vertex AI (service-account JWT, cached).
//! - [`stream`]: chunk-by-chunk forwarding of streamed responses.
//! - [`auth`]: client keys.
//! - [`error`]: every client-visible error and its status, in one place.

pub mod auth;
pub mod error;
pub mod google_auth;
pub mod proxy;
pub mod routes;
pub mod routing;
pub mod server;
pub mod stream;
pub mod upstream;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gatehouse_config::Config;

use crate::auth::Authenticator;
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
    /// Client key verification.
    pub auth: Authenticator,
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
}

impl Gateway {
    /// Builds the gateway from a validated config.
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        Ok(Self {
            router: ModelRouter::new(&config.deployments).map_err(BuildError::Deployment)?,
            auth: Authenticator::new(config.master_key.as_ref()),
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
