//! From YAML text to a validated [`Config`], collecting every problem by path.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use gatehouse_providers::{
    AuthStyle, Provider, ProviderLookup, WireFormat, bedrock, build_endpoints,
    build_vertex_endpoints, lookup_provider, vertex,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::known;
use crate::{
    AwsAuth, BudgetFallback, Config, DEFAULT_MAX_REQUEST_SIZE_MB, DEFAULT_NUM_RETRIES,
    DEFAULT_UPSTREAM_TIMEOUT, Deployment, GatehouseSettings, Ignored, Loaded, Problem,
    RedisSettings, Secret, VertexAuth,
};

/// Why a config could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file was read; these are all the problems in it.
    Invalid(Vec<Problem>),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read config: {e}"),
            LoadError::Invalid(problems) => {
                write!(f, "{} problem(s) in config", problems.len())?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads and validates a config file, resolving `os.environ/NAME` from the process environment.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(LoadError::Io)?;
    load_str(&text, &|name| std::env::var(name).ok()).map_err(LoadError::Invalid)
}

/// Validates config text. `env` looks up environment variables (the process's, in production).
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, Vec<Problem>> {
    let root: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![Problem {
                path: String::new(),
                message: format!("not valid YAML: {e}"),
            }]);
        }
    };
    let mut w = Walker {
        env,
        overlay: HashMap::new(),
        problems: Vec::new(),
        ignored: Vec::new(),
    };
    let config = w.root(&root);
    if w.problems.is_empty() {
        Ok(Loaded {
            config,
            ignored: w.ignored,
        })
    } else {
        Err(w.problems)
    }
}

struct Walker<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    /// `environment_variables` from the file; they win over the process environment, as in LiteLLM.
    overlay: HashMap<String, String>,
    problems: Vec<Problem>,
    ignored: Vec<Ignored>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A resolved scalar: `os.environ/NAME` replaced by the variable's value.
enum Scalar<'v> {
    Borrowed(&'v Value),
    Env(String),
}

impl Walker<'_> {
    fn problem(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn ignore(&mut self, path: String) {
        let note = known::PLUGIN_CODE
            .contains(&path.as_str())
            .then(|| "gatehouse never loads plug-in code".to_owned());
        self.ignored.push(Ignored { path, note });
    }

    fn env_var(&self, name: &str) -> Option<String> {
        self.overlay.get(name).cloned().or_else(|| (self.env)(name))
    }

    /// Resolves `os.environ/NAME`; a missing variable is a problem.
    fn scalar<'v>(&mut self, path: &str, v: &'v Value) -> Option<Scalar<'v>> {
        if let Value::String(s) = v
            && let Some(name) = s.strip_prefix("os.environ/")
        {
            return match self.env_var(name) {
                Some(val) => Some(Scalar::Env(val)),
                None => {
                    self.problem(path, format!("environment variable {name} is not set"));
                    None
                }
            };
        }
        Some(Scalar::Borrowed(v))
    }

    fn string(&mut self, path: &str, v: &Value) -> Option<String> {
        match self.scalar(path, v)? {
            Scalar::Env(s) => Some(s),
            Scalar::Borrowed(Value::String(s)) => Some(s.clone()),
            Scalar::Borrowed(other) => {
                self.problem(
                    path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn number(&mut self, path: &str, v: &Value) -> Option<f64> {
        let n = match self.scalar(path, v)? {
            Scalar::Env(s) => s.trim().parse::<f64>().ok(),
            Scalar::Borrowed(Value::Number(n)) => n.as_f64(),
            Scalar::Borrowed(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Scalar::Borrowed(_) => None,
        };
        match n {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.problem(path, format!("expected a number, found {}", describe(v)));
                None
            }
        }
    }

    fn positive(&mut self, path: &str, v: &Value) -> Option<f64> {
        let n = self.number(path, v)?;
        if n > 0.0 {
            Some(n)
        } else {
            self.problem(path, format!("expected a number greater than 0, found {n}"));
            None
        }
    }

    fn non_negative(&mut self, path: &str, v: &Value) -> Option<f64> {
        let n = self.number(path, v)?;
        if n >= 0.0 {
            Some(n)
        } else {
            self.problem(path, format!("expected a number of at least 0, found {n}"));
            None
        }
    }

    fn whole(&mut self, path: &str, v: &Value) -> Option<u64> {
        let n = self.number(path, v)?;
        if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 {
            Some(n as u64)
        } else {
            self.problem(
                path,
                format!("expected a whole number of at least 0, found {n}"),
            );
            None
        }
    }

    fn seconds(&mut self, path: &str, v: &Value) -> Option<Duration> {
        let n = self.positive(path, v)?;
        if n > 86_400.0 * 7.0 {
            self.problem(path, "expected seconds, at most one week");
            return None;
        }
        Some(Duration::from_secs_f64(n))
    }

    fn mapping<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                self.problem(
                    path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// Reports keys that are neither implemented (`used`) nor LiteLLM-known (`known`).
    fn check_keys(&mut self, path: &str, m: &Map<String, Value>, used: &[&str], known: &[&str]) {
        for k in m.keys() {
            if used.contains(&k.as_str()) {
                continue;
            }
            let p = join(path, k);
            if known.contains(&k.as_str()) {
                self.ignore(p);
            } else {
                self.problem(&p, "unknown key");
            }
        }
    }

    fn root(&mut self, root: &Value) -> Config {
        let empty = Map::new();
        let top = match root {
            Value::Null => &empty,
            Value::Object(m) => m,
            other => {
                self.problem(
                    "",
                    format!(
                        "expected a mapping at the top level, found {}",
                        type_name(other)
                    ),
                );
                &empty
            }
        };
        const TOP: &[&str] = &[
            "model_list",
            "router_settings",
            "litellm_settings",
            "general_settings",
            "environment_variables",
            "gatehouse",
        ];
        self.check_keys("", top, TOP, known::TOP_LEVEL);

        // environment_variables first: os.environ/ lookups anywhere else may use them.
        if let Some(vars) = top
            .get("environment_variables")
            .and_then(|v| self.mapping("environment_variables", v))
        {
            for (k, v) in vars {
                let p = join("environment_variables", k);
                let val = match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    other => {
                        self.problem(&p, format!("expected a string, found {}", type_name(other)));
                        None
                    }
                };
                if let Some(val) = val {
                    self.overlay.insert(k.clone(), val);
                }
            }
        }

        let mut defaults = Defaults::default();
        let mut redis = None;
        if let Some(ls) = top
            .get("litellm_settings")
            .and_then(|v| self.mapping("litellm_settings", v))
        {
            self.check_keys(
                "litellm_settings",
                ls,
                &["request_timeout", "num_retries"],
                known::LITELLM_SETTINGS,
            );
            if let Some(v) = ls.get("request_timeout") {
                defaults.request_timeout = self.seconds("litellm_settings.request_timeout", v);
            }
            if let Some(v) = ls.get("num_retries") {
                defaults.litellm_num_retries = self
                    .whole("litellm_settings.num_retries", v)
                    .map(|n| n as u32);
            }
        }
        if let Some(rs) = top
            .get("router_settings")
            .and_then(|v| self.mapping("router_settings", v))
        {
            self.check_keys(
                "router_settings",
                rs,
                &[
                    "num_retries",
                    "timeout",
                    "routing_strategy",
                    "redis_url",
                    "redis_host",
                    "redis_port",
                    "redis_password",
                ],
                known::ROUTER_SETTINGS,
            );
            redis = self.redis(rs);
            if let Some(v) = rs.get("num_retries") {
                defaults.router_num_retries = self
                    .whole("router_settings.num_retries", v)
                    .map(|n| n as u32);
            }
            if let Some(v) = rs.get("timeout") {
                defaults.router_timeout = self.seconds("router_settings.timeout", v);
            }
            if let Some(v) = rs.get("routing_strategy")
                && let Some(s) = self.string("router_settings.routing_strategy", v)
                && s != "simple-shuffle"
            {
                self.ignored.push(Ignored {
                    path: "router_settings.routing_strategy".into(),
                    note: Some(format!(
                        "{s} is not implemented; gatehouse uses simple-shuffle"
                    )),
                });
            }
        }

        let mut master_key = None;
        let mut max_request_mb = DEFAULT_MAX_REQUEST_SIZE_MB;
        let mut database_url = None;

        if let Some(gs) = top
            .get("general_settings")
            .and_then(|v| self.mapping("general_settings", v))
        {
            self.check_keys(
                "general_settings",
                gs,
                &["master_key", "max_request_size_mb", "database_url"],
                known::GENERAL_SETTINGS,
            );
            if let Some(v) = gs.get("database_url") {
                database_url = self
                    .string("general_settings.database_url", v)
                    .map(Secret::new);
            }

            if let Some(v) = gs.get("master_key") {
                master_key = self
                    .string("general_settings.master_key", v)
                    .map(Secret::new);
            }
            if let Some(v) = gs.get("max_request_size_mb") {
                max_request_mb = self
                    .positive("general_settings.max_request_size_mb", v)
                    .unwrap_or(max_request_mb);
            }
        }
        if master_key.is_none() {
            master_key = self.env_var("LITELLM_MASTER_KEY").map(Secret::new);
        }
        if database_url.is_none() {
            database_url = self.env_var("DATABASE_URL").map(Secret::new);
        }
        if let Some(url) = &database_url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                self.problem(
                    "general_settings.database_url",
                    "expected sqlite:<path>, postgres://… or postgresql://…",
                );
            }
        }
        if let Some(k) = &master_key
            && k.expose().trim().is_empty()
        {
            self.problem("general_settings.master_key", "must not be empty");
        }

        let gatehouse = match top.get("gatehouse") {
            Some(v) => self.gatehouse(v),
            None => GatehouseSettings::default(),
        };

        let mut deployments = Vec::new();
        match top.get("model_list") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (i, entry) in list.iter().enumerate() {
                    if let Some(d) = self.deployment(i, entry, &defaults) {
                        deployments.push(d);
                    }
                }
            }
            Some(other) => self.problem(
                "model_list",
                format!("expected a list, found {}", type_name(other)),
            ),
        }

        Config {
            deployments,
            master_key,
            max_request_size_bytes: (max_request_mb * 1024.0 * 1024.0) as u64,
            gatehouse,
            database_url,
            redis,
        }
    }

    /// `router_settings.redis_url`, or a URL assembled from `redis_host`/`redis_port`/`redis_password`.
    fn redis(&mut self, rs: &Map<String, Value>) -> Option<RedisSettings> {
        if let Some(v) = rs.get("redis_url") {
            for k in ["redis_host", "redis_port", "redis_password"] {
                if rs.contains_key(k) {
                    self.problem(
                        &join("router_settings", k),
                        "give either redis_url or redis_host/redis_port/redis_password, not both",
                    );
                }
            }
            let url = self.string("router_settings.redis_url", v)?;
            if url.starts_with("rediss://") {
                self.problem(
                    "router_settings.redis_url",
                    "rediss:// (TLS) is not supported yet; use redis:// on a trusted network",
                );
                return None;
            }
            if !url.starts_with("redis://") {
                self.problem("router_settings.redis_url", "expected redis://…");
                return None;
            }
            return Some(RedisSettings {
                url: Secret::new(url),
            });
        }
        let host = match rs.get("redis_host") {
            Some(v) => self.string("router_settings.redis_host", v)?,
            None => {
                for k in ["redis_port", "redis_password"] {
                    if rs.contains_key(k) {
                        self.problem(&join("router_settings", k), "redis_host is missing");
                    }
                }
                return None;
            }
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            self.problem(
                "router_settings.redis_host",
                "expected a host name or address",
            );
            return None;
        }
        let port = match rs.get("redis_port") {
            Some(v) => match self.whole("router_settings.redis_port", v)? {
                p @ 1..=65535 => p,
                _ => {
                    self.problem("router_settings.redis_port", "expected a port number");
                    return None;
                }
            },
            None => 6379,
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        let url = match rs.get("redis_password") {
            Some(v) => {
                let password = self.string("router_settings.redis_password", v)?;
                format!("redis://:{}@{host}:{port}", percent_encode(&password))
            }
            None => format!("redis://{host}:{port}"),
        };
        Some(RedisSettings {
            url: Secret::new(url),
        })
    }

    fn gatehouse(&mut self, v: &Value) -> GatehouseSettings {
        let mut s = GatehouseSettings::default();
        let Some(m) = self.mapping("gatehouse", v) else {
            return s;
        };
        for (k, v) in m {
            let p = join("gatehouse", k);
            if k == "budget_fallback" {
                match self.string(&p, v).as_deref() {
                    Some("refuse") => s.budget_fallback = BudgetFallback::Refuse,
                    Some("local") => s.budget_fallback = BudgetFallback::Local,
                    Some(_) => self.problem(&p, "expected `refuse` or `local`"),
                    None => {}
                }
                continue;
            }
            if k == "redis_key_prefix" {
                if let Some(prefix) = self.string(&p, v) {
                    if prefix.is_empty()
                        || prefix.len() > 64
                        || !prefix.chars().all(|c| c.is_ascii_graphic())
                    {
                        self.problem(&p, "expected 1 to 64 printable ASCII characters, no spaces");
                    } else {
                        s.redis_key_prefix = prefix;
                    }
                }
                continue;
            }
            let slot = match k.as_str() {
                "client_header_timeout" => &mut s.client_header_timeout,
                "client_body_timeout" => &mut s.client_body_timeout,
                "upstream_connect_timeout" => &mut s.upstream_connect_timeout,
                "upstream_pool_idle_timeout" => &mut s.upstream_pool_idle_timeout,
                "shutdown_timeout" => &mut s.shutdown_timeout,
                "key_cache_ttl" => &mut s.key_cache_ttl,
                "key_cache_stale_ttl" => &mut s.key_cache_stale_ttl,
                "redis_timeout" => &mut s.redis_timeout,
                "invalidation_poll_interval" => &mut s.invalidation_poll_interval,
                _ => {
                    self.problem(
                        &p,
                        "unknown key (gatehouse's own section is parsed strictly)",
                    );
                    continue;
                }
            };
            if let Some(d) = self.seconds(&p, v) {
                *slot = d;
            }
        }
        s
    }

    fn deployment(&mut self, i: usize, entry: &Value, defaults: &Defaults) -> Option<Deployment> {
        let path = format!("model_list[{i}]");
        let m = match entry {
            Value::Object(m) => m,
            other => {
                self.problem(
                    &path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                return None;
            }
        };
        self.check_keys(
            &path,
            m,
            &["model_name", "litellm_params", "model_info"],
            &[],
        );
        let model_name = match m.get("model_name") {
            Some(v) => self.string(&join(&path, "model_name"), v),
            None => {
                self.problem(
                    &join(&path, "model_name"),
                    "missing (the name clients ask for)",
                );
                None
            }
        };
        if let Some(name) = &model_name
            && name.trim().is_empty()
        {
            self.problem(&join(&path, "model_name"), "must not be empty");
        }
        let model_info = match m.get("model_info") {
            None | Some(Value::Null) => Map::new(),
            Some(v) => self
                .mapping(&join(&path, "model_info"), v)
                .cloned()
                .unwrap_or_default(),
        };
        let pp = join(&path, "litellm_params");
        let Some(params) = m.get("litellm_params") else {
            self.problem(&pp, "missing (needs at least `model: provider/name`)");
            return None;
        };
        let params = self.mapping(&pp, params)?;
        const USED: &[&str] = &[
            "model",
            "api_base",
            "base_url",
            "api_key",
            "api_version",
            "rpm",
            "tpm",
            "timeout",
            "stream_timeout",
            "max_retries",
            "weight",
            "order",
            "input_cost_per_token",
            "output_cost_per_token",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "aws_region_name",
            "aws_bedrock_runtime_endpoint",
            "vertex_project",
            "vertex_location",
            "vertex_credentials",
        ];
        self.check_keys(&pp, params, USED, known::LITELLM_PARAMS);

        let model_path = join(&pp, "model");
        let full_model = match params.get("model") {
            Some(v) => self.string(&model_path, v),
            None => {
                self.problem(
                    &model_path,
                    "missing (expected provider/model, e.g. openai/gpt-4o)",
                );
                None
            }
        };
        let get = |key: &str| params.get(key).map(|v| (join(&pp, key), v));
        let api_base = match get("api_base").or_else(|| get("base_url")) {
            Some((p, v)) => self.string(&p, v).map(|s| (p, s)),
            None => None,
        };
        let api_key = match get("api_key") {
            Some((p, v)) => self.string(&p, v).map(Secret::new),
            None => None,
        };
        let api_version = match get("api_version") {
            Some((p, v)) => self.string(&p, v),
            None => None,
        };
        let opt_secs =
            |w: &mut Self, key: &str| params.get(key).and_then(|v| w.seconds(&join(&pp, key), v));
        let timeout = opt_secs(self, "timeout");
        let stream_timeout = opt_secs(self, "stream_timeout");
        let opt_whole =
            |w: &mut Self, key: &str| params.get(key).and_then(|v| w.whole(&join(&pp, key), v));
        let max_retries = opt_whole(self, "max_retries").map(|n| n as u32);
        let rpm = opt_whole(self, "rpm");
        let tpm = opt_whole(self, "tpm");
        let order = opt_whole(self, "order");
        let weight = params
            .get("weight")
            .and_then(|v| self.positive(&join(&pp, "weight"), v))
            .unwrap_or(1.0);
        let opt_cost = |w: &mut Self, key: &str| {
            params
                .get(key)
                .and_then(|v| w.non_negative(&join(&pp, key), v))
        };
        let input_cost_per_token = opt_cost(self, "input_cost_per_token");
        let output_cost_per_token = opt_cost(self, "output_cost_per_token");

        let full_model = full_model?;
        let (lookup, upstream_model) = lookup_provider(&full_model);
        let provider = match lookup {
            ProviderLookup::Served(p) => p,
            ProviderLookup::NotYetSupported(prefix) => {
                self.ignored.push(Ignored {
                    path,
                    note: Some(format!(
                        "provider {prefix}/ is not served yet; this deployment is skipped"
                    )),
                });
                return None;
            }
            ProviderLookup::Unknown => {
                self.problem(
                    &model_path,
                    format!("unknown provider prefix in {full_model:?} (expected e.g. openai/, azure/, anthropic/, hosted_vllm/, ollama/)"),
                );
                return None;
            }
        };
        if upstream_model.is_empty() {
            self.problem(&model_path, "has no model name after the provider prefix");
            return None;
        }
        // LiteLLM's bedrock/ route prefixes (converse/, invoke/, llama/, …) and ARNs.
        let upstream_model = if provider.wire == WireFormat::Bedrock {
            match bedrock::model_route(upstream_model) {
                bedrock::ModelRoute::Served { id, note } => {
                    if let Some(note) = note {
                        self.ignored.push(Ignored {
                            path: model_path.clone(),
                            note: Some(note.into()),
                        });
                    }
                    id
                }
                bedrock::ModelRoute::NotServed(note) => {
                    self.ignored.push(Ignored {
                        path,
                        note: Some(note),
                    });
                    return None;
                }
                bedrock::ModelRoute::Invalid(message) => {
                    self.problem(&model_path, message);
                    return None;
                }
            }
        } else {
            upstream_model
        };

        let aws = if provider.wire == WireFormat::Bedrock {
            let aws = self.aws(&pp, params)?;
            if let Some(region) = bedrock::arn_region(upstream_model)
                && region != aws.region
            {
                self.problem(
                    &model_path,
                    format!(
                        "the ARN is in {region} but aws_region_name is {}: Bedrock must be called (and requests signed) in the ARN's region",
                        aws.region
                    ),
                );
                return None;
            }
            Some(aws)
        } else {
            None
        };
        // Claude on Vertex AI speaks Anthropic's Messages format at Anthropic's publisher
        // endpoints; Gemini models speak generateContent.
        let provider = if provider.auth == AuthStyle::GoogleOAuth
            && vertex::is_anthropic_model(upstream_model)
        {
            Provider {
                wire: WireFormat::Anthropic,
                ..provider
            }
        } else {
            provider
        };
        let vertex = if provider.auth == AuthStyle::GoogleOAuth {
            Some(self.vertex(&pp, params)?)
        } else {
            None
        };
        let api_base = api_base.or_else(|| {
            let v = vertex.as_ref()?;
            Some((
                join(&pp, "vertex_location"),
                vertex::vertex_root(&v.location),
            ))
        });
        let api_base = api_base.or_else(|| {
            let aws = aws.as_ref()?;
            let endpoint = params
                .get("aws_bedrock_runtime_endpoint")
                .and_then(|v| self.string(&join(&pp, "aws_bedrock_runtime_endpoint"), v));
            Some((
                join(&pp, "aws_bedrock_runtime_endpoint"),
                endpoint.unwrap_or_else(|| {
                    format!("https://bedrock-runtime.{}.amazonaws.com", aws.region)
                }),
            ))
        });
        let (base_path, base) = match api_base {
            Some((p, b)) => (p, b),
            None => {
                let from_env = provider.base_env.and_then(|n| self.env_var(n));
                match from_env.or_else(|| provider.default_api_base.map(str::to_owned)) {
                    Some(b) => (join(&pp, "api_base"), b),
                    None => {
                        self.problem(
                            &join(&pp, "api_base"),
                            format!("required for {}/ deployments", provider.prefix),
                        );
                        return None;
                    }
                }
            }
        };
        let api_key = api_key.or_else(|| {
            provider
                .key_env
                .and_then(|n| self.env_var(n))
                .map(Secret::new)
        });
        let built = match &vertex {
            Some(v) => build_vertex_endpoints(
                &base,
                &v.project,
                &v.location,
                upstream_model,
                provider.wire,
            ),
            None => build_endpoints(&provider, &base, api_version.as_deref(), upstream_model),
        };
        let endpoints = match built {
            Ok(e) => e,
            Err(e) => {
                self.problem(&base_path, e.to_string());
                return None;
            }
        };
        let model_name = model_name?;

        let id = match model_info.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                let mut h = Sha256::new();
                h.update(i.to_le_bytes());
                h.update(model_name.as_bytes());
                h.update([0]);
                h.update(full_model.as_bytes());
                h.update([0]);
                h.update(endpoints.chat_completions.to_string().as_bytes());
                h.finalize()
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
        };

        let timeout = timeout
            .or(defaults.router_timeout)
            .or(defaults.request_timeout)
            .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT);
        Some(Deployment {
            id,
            model_name,
            provider,
            upstream_model: upstream_model.to_owned(),
            endpoints,
            api_key,
            timeout,
            stream_timeout: stream_timeout.unwrap_or(timeout),
            max_retries: max_retries
                .or(defaults.router_num_retries)
                .or(defaults.litellm_num_retries)
                .unwrap_or(DEFAULT_NUM_RETRIES),
            weight,
            rpm,
            tpm,
            order,
            input_cost_per_token,
            output_cost_per_token,
            model_info,
            aws,
            vertex,
        })
    }

    /// Project, location and service account of a Vertex AI deployment: `litellm_params`,
    /// then LiteLLM's environment variables (`VERTEXAI_PROJECT`, `VERTEXAI_LOCATION`,
    /// `GOOGLE_APPLICATION_CREDENTIALS`). `vertex_credentials` is a path to a service-account
    /// JSON key, or the JSON itself. (No metadata-server or gcloud lookup: gatehouse makes no
    /// connection the config does not name.)
    fn vertex(&mut self, pp: &str, params: &Map<String, Value>) -> Option<VertexAuth> {
        let cred_path = join(pp, "vertex_credentials");
        let read = |w: &mut Self, file: &str, from: &str| -> Option<Zeroizing<String>> {
            match std::fs::read_to_string(file) {
                Ok(t) => Some(Zeroizing::new(t)),
                Err(e) => {
                    w.problem(
                        &cred_path,
                        format!("could not read the service-account file {file:?}{from}: {e}"),
                    );
                    None
                }
            }
        };
        let text = match params.get("vertex_credentials") {
            Some(Value::Object(m)) => Zeroizing::new(Value::Object(m.clone()).to_string()),
            Some(v) => {
                let s = Zeroizing::new(self.string(&cred_path, v)?);
                if s.trim_start().starts_with('{') {
                    s
                } else {
                    read(self, s.trim(), "")?
                }
            }
            None => match self.env_var("GOOGLE_APPLICATION_CREDENTIALS") {
                Some(file) => read(self, &file, " (GOOGLE_APPLICATION_CREDENTIALS)")?,
                None => {
                    self.problem(
                        &cred_path,
                        "required for vertex_ai/ deployments: a service-account JSON key file, or its content (or GOOGLE_APPLICATION_CREDENTIALS)",
                    );
                    return None;
                }
            },
        };
        let account = match vertex::ServiceAccount::from_json(&text) {
            Ok(a) => a,
            Err(e) => {
                self.problem(&cred_path, e);
                return None;
            }
        };
        let mut get = |key: &str, env: &str| -> Option<String> {
            match params.get(key) {
                Some(v) => self.string(&join(pp, key), v),
                None => self.env_var(env),
            }
        };
        let project = get("vertex_project", "VERTEXAI_PROJECT").or(account.project_id.clone());
        let location = get("vertex_location", "VERTEXAI_LOCATION")
            .unwrap_or_else(|| vertex::DEFAULT_LOCATION.to_owned());
        let Some(project) = project else {
            self.problem(
                &join(pp, "vertex_project"),
                "required for vertex_ai/ deployments (or VERTEXAI_PROJECT, or project_id in the key file)",
            );
            return None;
        };
        let mut ok = true;
        for (key, value) in [("vertex_project", &project), ("vertex_location", &location)] {
            if !vertex::is_safe_id(value) {
                self.problem(
                    &join(pp, key),
                    format!("{value:?} may only hold letters, digits, '-', '_' and '.'"),
                );
                ok = false;
            }
        }
        ok.then_some(VertexAuth {
            project,
            location,
            account,
        })
    }

    /// Region and credentials of a Bedrock deployment: `litellm_params`, then the usual AWS
    /// environment variables. (No instance-role or profile lookup: gatehouse makes no
    /// connection the config does not name.)
    fn aws(&mut self, pp: &str, params: &Map<String, Value>) -> Option<AwsAuth> {
        let mut get = |key: &str, envs: &[&str]| -> Option<String> {
            match params.get(key) {
                Some(v) => self.string(&join(pp, key), v),
                None => envs.iter().find_map(|e| self.env_var(e)),
            }
        };
        let region = get(
            "aws_region_name",
            &["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"],
        );
        let key_id = get("aws_access_key_id", &["AWS_ACCESS_KEY_ID"]);
        let secret = get("aws_secret_access_key", &["AWS_SECRET_ACCESS_KEY"]);
        let token = get("aws_session_token", &["AWS_SESSION_TOKEN"]);
        let Some(region) = region else {
            self.problem(
                &join(pp, "aws_region_name"),
                "required for bedrock/ deployments (or AWS_REGION)",
            );
            return None;
        };
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            self.problem(
                &join(pp, "aws_region_name"),
                format!("not an AWS region: {region:?}"),
            );
            return None;
        }
        let (Some(access_key_id), Some(secret)) = (key_id, secret) else {
            self.problem(
                &join(pp, "aws_access_key_id"),
                "bedrock/ deployments need aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
            );
            return None;
        };
        Some(AwsAuth {
            region,
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token: token.map(Secret::new),
        })
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.starts_with("os.environ/") => format!("{s} (not a number)"),
        Value::String(s) => format!("{s:?}"),
        other => type_name(other).to_owned(),
    }
}

#[derive(Default)]
struct Defaults {
    request_timeout: Option<Duration>,
    router_timeout: Option<Duration>,
    router_num_retries: Option<u32>,
    litellm_num_retries: Option<u32>,
}

#[cfg(test)]
mod tests;

/// Percent-encodes a URL userinfo component (RFC 3986 unreserved characters pass).
fn percent_encode(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
