//! gatehouse's configuration: the LiteLLM proxy `config.yaml`, read as-is, plus a strictly
//! parsed `gatehouse:` section.
//!
//! Loading happens in two steps (raw YAML tree, then a validated [`Config`]) so that the
//! runtime types never carry "not filled yet" options, and so that *every* problem in a file
//! is reported by its path in one go, not just the first.

mod known;
mod load;
mod secret;

use std::time::Duration;

pub use gatehouse_providers::{Endpoints, Provider};
pub use load::{LoadError, load_file, load_str};
pub use secret::Secret;

/// Default per-request upstream timeout when no `timeout` is configured anywhere.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(600);
/// Default number of retries when none is configured.
pub const DEFAULT_NUM_RETRIES: u32 = 2;
/// Default `general_settings.max_request_size_mb`.
pub const DEFAULT_MAX_REQUEST_SIZE_MB: f64 = 32.0;

/// A validated configuration, ready to serve.
#[derive(Debug)]
pub struct Config {
    /// Every served deployment, in `model_list` order.
    pub deployments: Vec<Deployment>,
    /// The client-facing master key (`general_settings.master_key` or `LITELLM_MASTER_KEY`).
    pub master_key: Option<Secret>,
    /// Largest request body accepted, in bytes.
    pub max_request_size_bytes: u64,
    /// gatehouse's own settings.
    pub gatehouse: GatehouseSettings,
    /// Where keys, users, teams and spend live: `general_settings.database_url` (or the
    /// `DATABASE_URL` environment variable). `None` means an SQLite file beside the config.
    pub database_url: Option<Secret>,
    /// Shared counters for rate limits and budgets across replicas, from `router_settings`.
    pub redis: Option<RedisSettings>,
}

/// Where the shared Redis is: `router_settings.redis_url`, or `redis_host` / `redis_port` /
/// `redis_password` (assembled into a URL).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]`; may carry a password, hence a secret.
    pub url: Secret,
}

/// One `model_list` entry that gatehouse serves.
#[derive(Debug)]
pub struct Deployment {
    /// Stable identifier: `model_info.id`, else a hash of the entry (sent as `x-litellm-model-id`).
    pub id: String,
    /// The public name clients ask for (`model_name`).
    pub model_name: String,
    /// The provider behind it.
    pub provider: Provider,
    /// The model name sent upstream (the part of `litellm_params.model` after the prefix).
    pub upstream_model: String,
    /// Fixed upstream URLs, built from config only.
    pub endpoints: Endpoints,
    /// The provider key, if any.
    pub api_key: Option<Secret>,
    /// Upstream timeout for non-streaming requests.
    pub timeout: Duration,
    /// Upstream timeout for streaming requests: to the first byte, and between chunks.
    pub stream_timeout: Duration,
    /// Retries after a retryable failure.
    pub max_retries: u32,
    /// Relative share of traffic among deployments with the same `model_name`.
    pub weight: f64,
    /// Requests per minute this deployment may take (enforced later; parsed and validated now).
    pub rpm: Option<u64>,
    /// Tokens per minute this deployment may take.
    pub tpm: Option<u64>,
    /// Priority group; lower is tried first.
    pub order: Option<u64>,
    /// USD per input token.
    pub input_cost_per_token: Option<f64>,
    /// USD per output token.
    pub output_cost_per_token: Option<f64>,
    /// `model_info`, as given (free-form metadata).
    pub model_info: serde_json::Map<String, serde_json::Value>,
    /// Region and credentials, for `bedrock/` deployments.
    pub aws: Option<AwsAuth>,
    /// Project, location and service account, for `vertex_ai/` deployments.
    pub vertex: Option<VertexAuth>,
}

/// Where a Vertex AI deployment lives and the service account it authenticates as.
#[derive(Debug, Clone)]
pub struct VertexAuth {
    /// `vertex_project` (or `VERTEXAI_PROJECT`, or the key file's `project_id`).
    pub project: String,
    /// `vertex_location` (or `VERTEXAI_LOCATION`; default `us-central1`).
    pub location: String,
    /// The service account (`Debug` prints `***` for its key; the key is zeroized on drop).
    pub account: gatehouse_providers::vertex::ServiceAccount,
}

/// AWS region and credentials for SigV4-signed Bedrock calls.
#[derive(Debug, Clone)]
pub struct AwsAuth {
    /// `aws_region_name`.
    pub region: String,
    /// `aws_access_key_id` (an identifier, not a secret).
    pub access_key_id: String,
    /// `aws_secret_access_key`.
    pub secret_access_key: Secret,
    /// `aws_session_token`, for temporary credentials.
    pub session_token: Option<Secret>,
}

/// The `gatehouse:` section: gatehouse's own settings, parsed strictly.
#[derive(Debug, Clone, PartialEq)]
pub struct GatehouseSettings {
    /// Time a client has to send its request headers (also closes idle keep-alive connections).
    pub client_header_timeout: Duration,
    /// Time a client has to send its whole request body.
    pub client_body_timeout: Duration,
    /// Time to open a TCP (and TLS) connection to an upstream.
    pub upstream_connect_timeout: Duration,
    /// Idle upstream connections are kept this long in the pool.
    pub upstream_pool_idle_timeout: Duration,
    /// On SIGTERM, in-flight requests and streams get this long to finish.
    pub shutdown_timeout: Duration,
    /// A verified virtual key is re-read from the database after this long.
    pub key_cache_ttl: Duration,
    /// While the database is unreachable, keys verified within this window keep working.
    pub key_cache_stale_ttl: Duration,
    /// Longest wait for one Redis call before counting locally instead.
    pub redis_timeout: Duration,
    /// Prefix of every Redis key gatehouse writes (default `gatehouse:`), so that separate
    /// deployments (or test runs) can share one Redis.
    pub redis_key_prefix: String,
    /// How often other replicas' key, user and team changes are picked up.
    pub invalidation_poll_interval: Duration,
    /// What requests that a budget applies to get while Redis is configured but unreachable.
    pub budget_fallback: BudgetFallback,
}

/// `gatehouse.budget_fallback`: budgets while the shared counters (Redis) are unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BudgetFallback {
    /// `refuse` (default): 503 for requests that a budget applies to (budgets fail closed);
    /// rate limits are counted per replica, requests without budgets keep working.
    #[default]
    Refuse,
    /// `local`: count budgets per replica from the database's spend (each replica may then
    /// spend what is left of a budget).
    Local,
}

impl Default for GatehouseSettings {
    fn default() -> Self {
        Self {
            client_header_timeout: Duration::from_secs(30),
            client_body_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_pool_idle_timeout: Duration::from_secs(90),
            shutdown_timeout: Duration::from_secs(30),
            key_cache_ttl: Duration::from_secs(60),
            key_cache_stale_ttl: Duration::from_secs(600),
            redis_timeout: Duration::from_millis(100),
            redis_key_prefix: "gatehouse:".to_owned(),
            invalidation_poll_interval: Duration::from_millis(250),
            budget_fallback: BudgetFallback::Refuse,
        }
    }
}

/// One problem found in a config file, by its path (`model_list[2].litellm_params.rpm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a dotted path with list indices.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A LiteLLM setting that gatehouse read but does not act on; reported once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Where.
    pub path: String,
    /// Why, when there is more to say than "not implemented".
    pub note: Option<String>,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.note {
            Some(note) => write!(f, "ignored: {} ({note})", self.path),
            None => write!(f, "ignored: {}", self.path),
        }
    }
}

/// A loaded config and what in it was ignored.
#[derive(Debug)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Settings LiteLLM knows that gatehouse does not implement, by path.
    pub ignored: Vec<Ignored>,
}
