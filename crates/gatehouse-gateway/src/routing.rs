//! Model routing: from the public `model` name to one of its deployments.
//!
//! Simple weighted shuffle, as LiteLLM's default `simple-shuffle`: among the deployments of
//! the lowest `order` not yet tried for this request, pick at random in proportion to
//! `weight`. Retries prefer deployments not tried yet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatehouse_config::{Deployment, Secret};
use gatehouse_limits::Scope;
use gatehouse_pricing::{ModelPrice, PriceTable};
use gatehouse_providers::{AuthStyle, Endpoints, WireFormat, anthropic, bedrock};
use gatehouse_wire::json_string;
use http::{HeaderName, HeaderValue};

use crate::google_auth::GoogleAuth;

/// One deployment, ready for the hot path: URLs parsed, auth header built, model name
/// pre-encoded as JSON.
#[derive(Debug)]
pub struct Upstream {
    /// `x-litellm-model-id`.
    pub id: HeaderValue,
    /// The upstream model as a JSON string literal, spliced into forwarded bodies.
    pub model_json: String,
    /// The upstream model name.
    pub upstream_model: String,
    /// What the provider speaks.
    pub wire: WireFormat,
    /// Claude on Vertex AI: Anthropic's Messages format, but with no `model` in the body (it
    /// is in the URL) and `anthropic_version` in the body instead of the header.
    pub vertex_anthropic: bool,
    /// Fixed headers the provider needs besides the credential (`anthropic-version`).
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
    /// Fixed URLs.
    pub endpoints: Endpoints,
    /// The credential header, marked sensitive (never logged, never HPACK-indexed).
    pub auth: Option<(HeaderName, HeaderValue)>,
    /// The raw key, only to scrub it from upstream error messages.
    pub key: Option<Secret>,
    /// Region and credentials for SigV4 signing (Bedrock).
    pub aws: Option<AwsSigner>,
    /// The service account's token source (Vertex AI).
    pub google: Option<Arc<GoogleAuth>>,
    /// Non-streaming timeout.
    pub timeout: Duration,
    /// Streaming timeout: to first byte and between chunks.
    pub stream_timeout: Duration,
    /// Retries after this deployment fails.
    pub max_retries: u32,
    /// What its tokens cost (free when neither the config nor the price table knows).
    pub price: ModelPrice,
    /// The provider prefix (`openai`, `azure`, …).
    pub provider: &'static str,
    /// `rpm` / `tpm` of the deployment (requests and tokens per minute it may take), and the
    /// counter scope they are kept under.
    pub limits: Option<DeploymentLimits>,
    weight: f64,
    order: u64,
}

impl Upstream {
    fn new(d: &Deployment) -> Result<Self, String> {
        let id = HeaderValue::from_str(&d.id).map_err(|_| {
            format!(
                "model_info.id of {} is not a valid header value",
                d.model_name
            )
        })?;
        let auth = match &d.api_key {
            Some(key) if !key.is_empty() => {
                let (name, value) = match d.provider.auth {
                    AuthStyle::Bearer => (
                        http::header::AUTHORIZATION,
                        HeaderValue::from_str(&format!("Bearer {}", key.expose())),
                    ),
                    AuthStyle::ApiKeyHeader => (
                        HeaderName::from_static("api-key"),
                        HeaderValue::from_str(key.expose()),
                    ),
                    AuthStyle::XApiKey => (
                        HeaderName::from_static("x-api-key"),
                        HeaderValue::from_str(key.expose()),
                    ),
                    AuthStyle::GoogApiKey => (
                        HeaderName::from_static("x-goog-api-key"),
                        HeaderValue::from_str(key.expose()),
                    ),
                    AuthStyle::AwsSigV4 => {
                        return Err(format!(
                            "{}: bedrock/ deployments are signed with AWS credentials; api_key is not used",
                            d.model_name
                        ));
                    }
                    AuthStyle::GoogleOAuth => {
                        return Err(format!(
                            "{}: vertex_ai/ deployments authenticate with vertex_credentials (a service account); api_key is not used",
                            d.model_name
                        ));
                    }
                };
                let mut value = value.map_err(|_| {
                    format!(
                        "the api_key of {} holds characters a header cannot carry",
                        d.model_name
                    )
                })?;
                value.set_sensitive(true);
                Some((name, value))
            }
            _ => None,
        };
        let aws = d.aws.as_ref().map(|a| AwsSigner {
            region: a.region.clone(),
            credentials: bedrock::Credentials {
                access_key_id: a.access_key_id.clone(),
                secret_access_key: a.secret_access_key.expose().to_owned(),
                session_token: a.session_token.as_ref().map(|t| t.expose().to_owned()),
            },
        });
        let google = match &d.vertex {
            Some(v) => Some(Arc::new(GoogleAuth::new(v.account.clone())?)),
            None => None,
        };
        let vertex_anthropic =
            d.provider.wire == WireFormat::Anthropic && d.provider.auth == AuthStyle::GoogleOAuth;
        let extra_headers = match d.provider.wire {
            WireFormat::OpenAi | WireFormat::Gemini | WireFormat::Bedrock => Vec::new(),
            WireFormat::Anthropic if vertex_anthropic => Vec::new(),
            WireFormat::Anthropic => vec![(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(anthropic::ANTHROPIC_VERSION),
            )],
        };
        Ok(Self {
            id,
            model_json: json_string(&d.upstream_model),
            upstream_model: d.upstream_model.clone(),
            wire: d.provider.wire,
            vertex_anthropic,
            extra_headers,
            endpoints: d.endpoints.clone(),
            auth,
            key: d.api_key.clone(),
            aws,
            google,
            timeout: d.timeout,
            stream_timeout: d.stream_timeout,
            max_retries: d.max_retries,
            price: deployment_price(d),
            provider: d.provider.prefix,
            limits: (d.rpm.is_some() || d.tpm.is_some()).then(|| DeploymentLimits {
                rpm: d.rpm,
                tpm: d.tpm,
                scope: Scope::new(format!("deployment:{}", d.id)),
            }),
            weight: d.weight,
            order: d.order.unwrap_or(u64::MAX),
        })
    }
}

/// Replaces every occurrence of `key` (a deployment's raw key) in `text` with `***`.
pub fn scrub_key(key: Option<&Secret>, text: &str) -> String {
    match key {
        Some(k) if k.expose().len() >= 4 && text.contains(k.expose()) => {
            text.replace(k.expose(), "***")
        }
        _ => text.to_owned(),
    }
}

/// A deployment's prices: `input_cost_per_token`/`output_cost_per_token` from the config,
/// else the built-in price table (by `model_info.base_model` when given, as LiteLLM does for
/// Azure deployment names), else free, with a warning at start-up.
fn deployment_price(d: &Deployment) -> ModelPrice {
    let base = d
        .model_info
        .get("base_model")
        .and_then(|v| v.as_str())
        .unwrap_or(&d.upstream_model);
    // Claude on Vertex AI (`claude-sonnet-4@20250514`) is priced as Anthropic's model.
    let (provider, base) =
        if d.provider.wire == WireFormat::Anthropic && d.provider.auth == AuthStyle::GoogleOAuth {
            ("anthropic", base.split('@').next().unwrap_or(base))
        } else {
            (d.provider.prefix, base)
        };
    let table = PriceTable::builtin()
        .map_err(|e| tracing::error!(error = %e, "the built-in price table is unusable"))
        .ok()
        .and_then(|t| t.lookup(provider, base).copied());
    if d.input_cost_per_token.is_some() || d.output_cost_per_token.is_some() {
        match ModelPrice::from_usd_per_token(
            d.input_cost_per_token.unwrap_or(0.0),
            d.output_cost_per_token.unwrap_or(0.0),
        ) {
            Ok(mut p) => {
                p.max_output_tokens = table.and_then(|t| t.max_output_tokens);
                return p;
            }
            Err(e) => {
                tracing::warn!(model = %d.model_name, error = %e, "unusable cost per token; using the price table");
            }
        }
    }
    match table {
        Some(p) => p,
        None => {
            tracing::warn!(
                model = %d.model_name,
                upstream = %base,
                "no price known (set input_cost_per_token/output_cost_per_token): its spend counts as 0"
            );
            ModelPrice::default()
        }
    }
}

/// The most any deployment of a group can charge per token: what budgets reserve with.
fn reserve_price(ups: &[Upstream]) -> ModelPrice {
    let mut p = ModelPrice::default();
    let mut max_out = Some(0u64);
    for u in ups {
        p.input = p.input.max(u.price.max_input_price());
        p.output = p.output.max(u.price.output);
        max_out = match (max_out, u.price.max_output_tokens) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    p.max_output_tokens = max_out.filter(|n| *n > 0);
    p
}

/// A deployment's own rate limits (LiteLLM's `rpm` / `tpm` in `litellm_params`).
#[derive(Debug)]
pub struct DeploymentLimits {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// `deployment:<id>`.
    pub scope: Scope,
}

/// What a SigV4-signed deployment signs with.
#[derive(Debug)]
pub struct AwsSigner {
    /// The AWS region.
    pub region: String,
    /// The credentials (their `Debug` prints `***`).
    pub credentials: bedrock::Credentials,
}

/// The deployments behind one public model name.
#[derive(Debug)]
pub struct ModelGroup {
    upstreams: Vec<Upstream>,
    /// The highest prices among the deployments, for budget reservations.
    pub reserve_price: ModelPrice,
}

/// Which deployments of a group a request has tried (bit i = deployment i; groups larger
/// than 64 deployments simply allow repeats beyond the 64th).
#[derive(Debug, Default, Clone, Copy)]
pub struct Tried(u64);

impl Tried {
    /// Marks deployment `i` tried.
    pub fn mark(&mut self, i: usize) {
        if i < 64 {
            self.0 |= 1 << i;
        }
    }

    fn has(self, i: usize) -> bool {
        i < 64 && self.0 & (1 << i) != 0
    }
}

impl ModelGroup {
    /// Picks a deployment, preferring those not in `tried`. `None` only for an empty group.
    pub fn pick(&self, tried: Tried) -> Option<(usize, &Upstream)> {
        let any_untried = (0..self.upstreams.len()).any(|i| !tried.has(i));
        let eligible = |i: usize| !any_untried || !tried.has(i);
        let best = self
            .upstreams
            .iter()
            .enumerate()
            .filter(|(i, _)| eligible(*i))
            .map(|(_, u)| u.order)
            .min()?;
        let tier = || {
            self.upstreams
                .iter()
                .enumerate()
                .filter(move |(i, u)| eligible(*i) && u.order == best)
        };
        let total: f64 = tier().map(|(_, u)| u.weight).sum();
        let mut x = fastrand::f64() * total;
        let mut chosen = None;
        for (i, u) in tier() {
            chosen = Some((i, u));
            if x < u.weight {
                break;
            }
            x -= u.weight;
        }
        chosen
    }

    /// True when every deployment of the group is in `tried`.
    pub fn all_tried(&self, tried: Tried) -> bool {
        (0..self.upstreams.len()).all(|i| tried.has(i))
    }

    /// How many deployments the group has.
    pub fn len(&self) -> usize {
        self.upstreams.len()
    }

    /// True when the group is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.upstreams.is_empty()
    }
}

/// Every model group, by public name, plus the prebuilt `/v1/models` answer.
#[derive(Debug)]
pub struct ModelRouter {
    groups: HashMap<Box<str>, ModelGroup>,
    models_json: Bytes,
}

impl ModelRouter {
    /// Builds the router from validated deployments.
    pub fn new(deployments: &[Deployment]) -> Result<Self, String> {
        let mut groups: HashMap<Box<str>, ModelGroup> = HashMap::new();
        let mut names: Vec<&str> = Vec::new();
        for d in deployments {
            let up = Upstream::new(d)?;
            groups
                .entry(d.model_name.as_str().into())
                .or_insert_with(|| {
                    names.push(&d.model_name);
                    ModelGroup {
                        upstreams: Vec::new(),
                        reserve_price: ModelPrice::default(),
                    }
                })
                .upstreams
                .push(up);
        }
        for g in groups.values_mut() {
            g.reserve_price = reserve_price(&g.upstreams);
        }
        let data: Vec<serde_json::Value> = names
            .iter()
            .map(|n| {
                serde_json::json!({"id": n, "object": "model", "created": 1677610602, "owned_by": "openai"})
            })
            .collect();
        let models_json = serde_json::to_vec(&serde_json::json!({"data": data, "object": "list"}))
            .map_err(|e| e.to_string())?
            .into();
        Ok(Self {
            groups,
            models_json,
        })
    }

    /// The group for a public model name.
    pub fn group(&self, model: &str) -> Option<&ModelGroup> {
        self.groups.get(model)
    }

    /// The upstream model (without its provider prefix) and the provider prefix of the
    /// deployment `id` of the public model `model`, while the config still has it.
    pub fn deployment_model(&self, model: &str, id: &str) -> Option<(&str, &'static str)> {
        self.groups
            .get(model)?
            .upstreams
            .iter()
            .find(|u| u.id == id)
            .map(|u| (u.upstream_model.as_str(), u.provider))
    }

    /// The `GET /v1/models` body.
    pub fn models_json(&self) -> Bytes {
        self.models_json.clone()
    }

    /// The `GET /v1/models` body with only the names `keep` allows (for virtual keys).
    pub fn models_json_filtered(&self, keep: impl Fn(&str) -> bool) -> Bytes {
        let mut v: serde_json::Value =
            serde_json::from_slice(&self.models_json).unwrap_or_default();
        if let Some(list) = v.get_mut("data").and_then(|d| d.as_array_mut()) {
            list.retain(|m| m.get("id").and_then(|i| i.as_str()).is_some_and(&keep));
        }
        Bytes::from(v.to_string())
    }

    /// The `GET /model/info` body: every deployment with its provider, upstream model and
    /// prices, and the config's `model_info`; never a credential or an `api_base`.
    pub fn model_info_json(&self, deployments: &[Deployment]) -> Bytes {
        let data: Vec<serde_json::Value> = deployments
            .iter()
            .map(|d| {
                let price = self
                    .groups
                    .get(d.model_name.as_str())
                    .and_then(|g| g.upstreams.iter().find(|u| u.id == d.id.as_str()))
                    .map(|u| u.price)
                    .unwrap_or_default();
                let mut info = d.model_info.clone();
                info.insert("id".into(), d.id.clone().into());
                info.insert(
                    "input_cost_per_token".into(),
                    serde_json::json!(price.input.per_token().as_usd()),
                );
                info.insert(
                    "output_cost_per_token".into(),
                    serde_json::json!(price.output.per_token().as_usd()),
                );
                if let Some(n) = price.max_output_tokens {
                    info.insert("max_output_tokens".into(), n.into());
                }
                serde_json::json!({
                    "model_name": d.model_name,
                    "litellm_params": {
                        "model": format!("{}/{}", d.provider.prefix, d.upstream_model),
                        "custom_llm_provider": d.provider.prefix,
                    },
                    "model_info": info,
                })
            })
            .collect();
        Bytes::from(serde_json::json!({ "data": data }).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(yaml: &str) -> ModelRouter {
        let loaded = gatehouse_config::load_str(yaml, &|_| None).unwrap();
        ModelRouter::new(&loaded.config.deployments).unwrap()
    }

    #[test]
    fn weighted_shuffle_follows_weights() {
        let r = router(
            r#"
model_list:
  - model_name: m
    litellm_params: { model: openai/a, api_base: "http://127.0.0.1:1/v1", weight: 9 }
  - model_name: m
    litellm_params: { model: openai/b, api_base: "http://127.0.0.1:2/v1", weight: 1 }
"#,
        );
        let g = r.group("m").unwrap();
        let mut counts = [0u32; 2];
        fastrand::seed(7);
        for _ in 0..10_000 {
            counts[g.pick(Tried::default()).unwrap().0] += 1;
        }
        assert!((8_700..9_300).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn retries_prefer_untried_and_order_comes_first() {
        let r = router(
            r#"
model_list:
  - model_name: m
    litellm_params: { model: openai/a, api_base: "http://127.0.0.1:1/v1", order: 2 }
  - model_name: m
    litellm_params: { model: openai/b, api_base: "http://127.0.0.1:2/v1", order: 1 }
"#,
        );
        let g = r.group("m").unwrap();
        for _ in 0..100 {
            assert_eq!(g.pick(Tried::default()).unwrap().0, 1);
        }
        let mut tried = Tried::default();
        tried.mark(1);
        assert_eq!(g.pick(tried).unwrap().0, 0);
        tried.mark(0);
        assert_eq!(g.pick(tried).unwrap().0, 1);
    }

    /// Claude on Vertex AI: no `anthropic-version` header (the body carries Vertex's
    /// version), no static credential (the service account's token is fetched per
    /// request), Anthropic's prices.
    #[test]
    fn claude_on_vertex_upstream() {
        let sa = include_str!("../../gatehouse-mock/testdata/vertex-test-sa.json");
        let yaml = r#"
model_list:
  - model_name: cv
    litellm_params: { model: "vertex_ai/claude-sonnet-4@20250514", vertex_credentials: os.environ/SA, vertex_location: us-east5 }
  - model_name: gv
    litellm_params: { model: vertex_ai/gemini-2.5-pro, vertex_credentials: os.environ/SA }
  - model_name: direct
    litellm_params: { model: anthropic/claude-sonnet-4-20250514, api_key: sk-ant-x }
"#;
        let env = |name: &str| (name == "SA").then(|| sa.to_owned());
        let loaded = gatehouse_config::load_str(yaml, &env).unwrap();
        let r = ModelRouter::new(&loaded.config.deployments).unwrap();
        let pick = |m: &str| r.group(m).unwrap().pick(Tried::default()).unwrap().1;
        let cv = pick("cv");
        assert!(cv.vertex_anthropic);
        assert_eq!(cv.wire, WireFormat::Anthropic);
        assert!(cv.extra_headers.is_empty());
        assert!(cv.auth.is_none() && cv.google.is_some());
        let direct = pick("direct");
        assert!(!direct.vertex_anthropic);
        assert_eq!(direct.extra_headers[0].0, "anthropic-version");
        assert_eq!(
            cv.price, direct.price,
            "priced as Anthropic's claude-sonnet-4"
        );
        assert!(cv.price.input.per_token().as_usd() > 0.0);
        assert!(!pick("gv").vertex_anthropic);
    }

    #[test]
    fn auth_header_is_sensitive_and_models_list_is_names() {
        let r = router(
            r#"
model_list:
  - model_name: m
    litellm_params: { model: openai/a, api_base: "http://127.0.0.1:1/v1", api_key: sk-x }
  - model_name: az
    litellm_params: { model: azure/dep, api_base: "https://r.example", api_key: az-x }
"#,
        );
        let (_, up) = r.group("m").unwrap().pick(Tried::default()).unwrap();
        let (name, value) = up.auth.as_ref().unwrap();
        assert_eq!(name, "authorization");
        assert!(value.is_sensitive());
        assert_eq!(format!("{value:?}"), "Sensitive");
        let (_, az) = r.group("az").unwrap().pick(Tried::default()).unwrap();
        assert_eq!(az.auth.as_ref().unwrap().0, "api-key");
        assert_eq!(
            scrub_key(up.key.as_ref(), "bad key sk-x here"),
            "bad key *** here"
        );
        let v: serde_json::Value = serde_json::from_slice(&r.models_json()).unwrap();
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["m", "az"]);
    }
}
