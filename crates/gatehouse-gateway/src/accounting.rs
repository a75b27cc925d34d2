//! Per-request accounting: admission (rate limits and budget reservation) before the upstream
//! call, and settlement (real cost, spend record) after it.
//!
//! Budgets are never exceeded: before sending, the most a request can cost is reserved in
//! every budget that applies (key, user, team) — its input, bounded above by its size in
//! bytes (a byte-level tokenizer never makes more tokens than bytes), at the highest input
//! price of the model's deployments, plus its output at the output price. The output is
//! `max_tokens` when the client sent it, else the model's known output limit, else
//! [`ASSUMED_MAX_OUTPUT`]. When the remaining budget cannot pay for all of it, the
//! reservation is what is left and `max_tokens` on the upstream request is lowered to what
//! that pays for; when it cannot pay the input and one output token, the request is refused.
//! A request asking for several completions (`n`, `best_of`) reserves its output ceiling
//! once per completion, and the lowered `max_tokens` (a per-completion limit) is what the
//! remaining budget pays for divided among them.
//!
//! The real cost is settled when the answer is complete; the unused rest is released, all
//! of it when the request fails (dropping the admission releases it).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use gatehouse_limits::{Admission, Admit, Budget, Limit, Limiter, Refusal, Scope};
use gatehouse_pricing::{ModelPrice, Money, StreamUsage, Usage};
use gatehouse_providers::sse::SseReader;
use gatehouse_store::{SpendRecord, SpendWriter, Store};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::ApiError;
use crate::keys::{Caller, KeyCache, KeyContext};

/// Output text kept per stream for counting when the upstream reports no usage (it almost
/// always does: OpenAI-compatible upstreams are asked for it); beyond this, bytes / 4.
const STREAM_TEXT_KEPT: usize = 16 * 1024;

/// Output tokens assumed for a request without `max_tokens` on a model whose output limit
/// is unknown, when a budget applies: `max_tokens` is set to at most this.
pub const ASSUMED_MAX_OUTPUT: u64 = 32_768;

static REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
static REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
static LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
static LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
/// `x-litellm-response-cost`: USD, on non-streamed answers.
pub static RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");

/// The stateful side of the gateway: store, key cache, counters and the spend writer.
#[derive(Debug)]
pub struct Accounts {
    /// Keys, users, teams, spend.
    pub store: Store,
    /// Verified keys.
    pub keys: Arc<KeyCache>,
    /// Rate limits and budget reservations.
    pub limiter: Limiter,
    /// Batched spend records.
    pub spend: Arc<SpendWriter>,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The client's wire format, for reading usage out of what it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFormat {
    /// OpenAI chat completions or embeddings.
    OpenAi,
    /// Anthropic messages.
    Anthropic,
}

/// What admission decided for one request.
#[derive(Debug)]
pub struct Plan {
    /// Lower `max_tokens` on the upstream request to this.
    pub max_tokens_cap: Option<u64>,
    /// Settles the request when it is done.
    pub meter: Option<Meter>,
}

/// What the request looks like to accounting.
#[derive(Debug, Clone, Copy)]
pub struct RequestShape<'a> {
    /// Public model name.
    pub model: &'a str,
    /// Body size in bytes: an upper bound on its input tokens.
    pub body_bytes: u64,
    /// The client's `max_completion_tokens` / `max_tokens` (per completion).
    pub max_tokens: Option<u64>,
    /// Completions generated (`n`, or `best_of` when larger; at least 1): each may use
    /// `max_tokens`.
    pub completions: u64,
    /// Embeddings have no output.
    pub has_output: bool,
    /// Call id.
    pub call_id: &'a str,
    /// When the request arrived (unix ms).
    pub started_ms: i64,
    /// Client format.
    pub client: ClientFormat,
}

fn refusal_error(r: Refusal) -> ApiError {
    let secs = |d: Duration| d.as_secs().max(1);
    match r {
        Refusal::Rpm {
            scope,
            limit,
            retry_after,
        } => ApiError::RateLimited {
            message: format!("{limit} requests per minute for {}", public_scope(&scope)),
            retry_after: secs(retry_after),
        },
        Refusal::Tpm {
            scope,
            limit,
            retry_after,
        } => ApiError::RateLimited {
            message: format!("{limit} tokens per minute for {}", public_scope(&scope)),
            retry_after: secs(retry_after),
        },
        Refusal::Parallel {
            scope,
            limit,
            retry_after,
        } => ApiError::RateLimited {
            message: format!("{limit} parallel requests for {}", public_scope(&scope)),
            retry_after: secs(retry_after),
        },
        Refusal::Budget { scope, .. } => ApiError::BudgetExceeded(format!(
            "the budget of {} cannot pay for this request",
            public_scope(&scope)
        )),
        Refusal::Unavailable { retry_after } => ApiError::BudgetsUnavailable {
            retry_after: secs(retry_after),
        },
    }
}

/// Admits a request on a deployment with its own `rpm`/`tpm` (LiteLLM's router limits).
/// `Err` means the deployment is at its limit: try another one.
pub async fn admit_deployment(
    limiter: &Limiter,
    limits: &crate::routing::DeploymentLimits,
    call_id: &str,
) -> Result<Admission, ApiError> {
    let rpm: Vec<Limit<'_>> = limits
        .rpm
        .map(|l| Limit {
            scope: &limits.scope,
            limit: l,
        })
        .into_iter()
        .collect();
    let tpm: Vec<Limit<'_>> = limits
        .tpm
        .map(|l| Limit {
            scope: &limits.scope,
            limit: l,
        })
        .into_iter()
        .collect();
    limiter
        .admit(&Admit {
            request_id: call_id,
            rpm: &rpm,
            tpm: &tpm,
            parallel: &[],
            budgets: &[],
            cost_min_pico: 0,
            cost_max_pico: 0,
        })
        .await
        .map_err(refusal_error)
}

/// A scope as it may be shown to the caller: keys by their short form, never the hash.
fn public_scope(scope: &Scope) -> String {
    let s = scope.as_str();
    match s.strip_prefix("key:") {
        Some(_) => "this key".to_owned(),
        None => s.replacen(':', " ", 1),
    }
}

/// Admits a request of `caller` for a model group priced at most `price` (the highest of
/// its deployments' prices). `Err` is the refusal to send.
pub async fn admit(
    accounts: &Accounts,
    caller: &Caller,
    shape: RequestShape<'_>,
    price: &ModelPrice,
) -> Result<Plan, ApiError> {
    let key = match caller {
        Caller::Open => {
            return Ok(Plan {
                max_tokens_cap: None,
                meter: None,
            });
        }
        Caller::Master => None,
        Caller::Key(k) => Some(k.clone()),
    };
    if accounts.spend.is_full() {
        return Err(ApiError::AccountingBackedUp);
    }
    let mut meter = Meter {
        limiter: accounts.limiter.clone(),
        spend: accounts.spend.clone(),
        admission: None,
        record: SpendRecord {
            request_id: shape.call_id.to_owned(),
            token_hash: key.as_ref().map(|k| k.token_hash),
            user_id: key.as_ref().and_then(|k| k.key.user_id.clone()),
            team_id: key.as_ref().and_then(|k| k.key.team_id.clone()),
            model: shape.model.to_owned(),
            deployment_id: String::new(),
            started_at: shape.started_ms,
            ended_at: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            spend: 0,
            status: 200,
        },
        price: ModelPrice::default(),
        client: shape.client,
        fallback_input_tokens: shape.body_bytes / 4,
        stream: None,
        limits: (None, None),
        deployment: None,
        done: false,
    };
    let Some(k) = key else {
        return Ok(Plan {
            max_tokens_cap: None,
            meter: Some(meter),
        });
    };
    let (rpm, tpm, parallel) = limits_of(&k);
    let budgets = budgets_of(&k);
    let input_tokens = shape.body_bytes;
    let input_cost = price.max_input_price().cost(input_tokens);
    let completions = shape.completions.max(1);
    let (cost_min, cost_max, out_ceiling) = if budgets.is_empty() || !shape.has_output {
        (input_cost, input_cost, None)
    } else {
        // Per completion; every completion may use all of it.
        let ceiling = shape
            .max_tokens
            .or(price.max_output_tokens)
            .unwrap_or(ASSUMED_MAX_OUTPUT);
        (
            input_cost.saturating_add(price.output.cost(completions)),
            input_cost.saturating_add(price.output.cost(ceiling.saturating_mul(completions))),
            Some(ceiling),
        )
    };
    let rpm_l: Vec<Limit<'_>> = rpm
        .iter()
        .map(|(s, l)| Limit {
            scope: s,
            limit: *l,
        })
        .collect();
    let tpm_l: Vec<Limit<'_>> = tpm
        .iter()
        .map(|(s, l)| Limit {
            scope: s,
            limit: *l,
        })
        .collect();
    let par_l: Vec<Limit<'_>> = parallel
        .iter()
        .map(|(s, l)| Limit {
            scope: s,
            limit: *l,
        })
        .collect();
    let budget_l: Vec<Budget<'_>> = budgets
        .iter()
        .map(|b| Budget {
            scope: &b.scope,
            max_pico: b.max,
            period: b.period,
            seed_spend_pico: b.seed,
            period_length: b.length,
        })
        .collect();
    let admission = accounts
        .limiter
        .admit(&Admit {
            request_id: shape.call_id,
            rpm: &rpm_l,
            tpm: &tpm_l,
            parallel: &par_l,
            budgets: &budget_l,
            cost_min_pico: cost_min.pico(),
            cost_max_pico: cost_max.pico(),
        })
        .await
        .map_err(|r| {
            tracing::info!(call_id = shape.call_id, refusal = %r, "request refused by limits");
            refusal_error(r)
        })?;
    let mut cap = None;
    if let Some(ceiling) = out_ceiling
        && !price.output.is_free()
    {
        let reserved = Money::from_pico(admission.reserved_pico());
        // Shared by the completions: each gets an equal part.
        let affordable =
            price.output_tokens_affordable(reserved.saturating_sub(input_cost)) / completions;
        if affordable == 0 {
            return Err(ApiError::BudgetExceeded(
                "the remaining budget cannot pay for any output".into(),
            ));
        }
        if affordable < ceiling || shape.max_tokens.is_none() {
            cap = Some(affordable.min(ceiling));
        }
    }
    meter.limits = (
        rpm.iter().map(|(_, l)| *l).min(),
        tpm.iter().map(|(_, l)| *l).min(),
    );
    meter.admission = Some(admission);
    Ok(Plan {
        max_tokens_cap: cap,
        meter: Some(meter),
    })
}

type Limits = Vec<(Scope, u64)>;

fn limits_of(k: &KeyContext) -> (Limits, Limits, Limits) {
    let mut rpm = Vec::new();
    let mut tpm = Vec::new();
    let mut parallel = Vec::new();
    let mut add = |scope: &Scope, r: Option<u64>, t: Option<u64>, p: Option<u64>| {
        if let Some(l) = r {
            rpm.push((scope.clone(), l));
        }
        if let Some(l) = t {
            tpm.push((scope.clone(), l));
        }
        if let Some(l) = p {
            parallel.push((scope.clone(), l));
        }
    };
    add(
        &k.key_scope,
        k.key.rpm_limit,
        k.key.tpm_limit,
        k.key.max_parallel_requests,
    );
    if let (Some(s), Some(t)) = (&k.team_scope, &k.team) {
        add(s, t.rpm_limit, t.tpm_limit, t.max_parallel_requests);
    }
    if let (Some(s), Some(u)) = (&k.user_scope, &k.user) {
        add(s, u.rpm_limit, u.tpm_limit, u.max_parallel_requests);
    }
    (rpm, tpm, parallel)
}

struct BudgetSpec {
    scope: Scope,
    max: i64,
    period: u64,
    seed: i64,
    length: Option<Duration>,
}

fn budget_spec(
    scope: &Scope,
    max: Option<i64>,
    spend: i64,
    duration: Option<&str>,
    reset_at: Option<i64>,
) -> Option<BudgetSpec> {
    let max = max?;
    let length = duration
        .and_then(gatehouse_store::parse_duration)
        .map(|d| match d {
            gatehouse_store::BudgetDuration::Fixed(d) => d,
            gatehouse_store::BudgetDuration::Months(n) => {
                Duration::from_secs(31 * 86_400 * u64::from(n))
            }
        });
    Some(BudgetSpec {
        scope: scope.clone(),
        max,
        period: reset_at.map_or(0, |r| u64::try_from(r).unwrap_or(0)),
        seed: spend,
        length,
    })
}

fn budgets_of(k: &KeyContext) -> Vec<BudgetSpec> {
    let mut out = Vec::new();
    out.extend(budget_spec(
        &k.key_scope,
        k.key.max_budget,
        k.key.spend,
        k.key.budget_duration.as_deref(),
        k.key.budget_reset_at,
    ));
    if let (Some(s), Some(u)) = (&k.user_scope, &k.user) {
        out.extend(budget_spec(
            s,
            u.max_budget,
            u.spend,
            u.budget_duration.as_deref(),
            u.budget_reset_at,
        ));
    }
    if let (Some(s), Some(t)) = (&k.team_scope, &k.team) {
        out.extend(budget_spec(
            s,
            t.max_budget,
            t.spend,
            t.budget_duration.as_deref(),
            t.budget_reset_at,
        ));
    }
    out
}

/// Settles one request: reads its usage, prices it, settles its admission and writes its
/// spend record. Dropped without [`Meter::finish`] (the client went away, the stream broke),
/// it settles with what it saw.
pub struct Meter {
    limiter: Limiter,
    spend: Arc<SpendWriter>,
    admission: Option<Admission>,
    record: SpendRecord,
    price: ModelPrice,
    client: ClientFormat,
    fallback_input_tokens: u64,
    stream: Option<(SseReader, StreamUsage)>,
    /// Smallest rpm and tpm limits, for the `x-ratelimit-limit-*` headers.
    limits: (Option<u64>, Option<u64>),
    /// The answering deployment's own admission (its `rpm`/`tpm`), settled with the tokens.
    deployment: Option<Admission>,
    done: bool,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("request_id", &self.record.request_id)
            .field("admission", &self.admission)
            .finish_non_exhaustive()
    }
}

impl Meter {
    /// The deployment that answers, and its price.
    pub fn set_deployment(&mut self, id: &str, price: ModelPrice) {
        id.clone_into(&mut self.record.deployment_id);
        self.price = price;
    }

    /// The answering deployment's own admission, to settle with this request's tokens.
    pub fn set_deployment_admission(&mut self, adm: Option<Admission>) {
        self.deployment = adm;
    }

    /// Adds `x-ratelimit-*` headers.
    pub fn headers(&self, h: &mut HeaderMap) {
        let Some(adm) = &self.admission else {
            return;
        };
        if let Some(n) = adm.remaining_requests() {
            h.insert(REMAINING_REQUESTS.clone(), HeaderValue::from(n));
        }
        if let Some(n) = adm.remaining_tokens() {
            h.insert(REMAINING_TOKENS.clone(), HeaderValue::from(n));
        }
        if let Some(n) = self.limits.0 {
            h.insert(LIMIT_REQUESTS.clone(), HeaderValue::from(n));
        }
        if let Some(n) = self.limits.1 {
            h.insert(LIMIT_TOKENS.clone(), HeaderValue::from(n));
        }
    }

    /// Settles a non-streamed answer from its body (in the client's format); returns its cost.
    pub fn finish_body(mut self, body: &[u8]) -> Money {
        let usage = match self.client {
            ClientFormat::OpenAi => gatehouse_pricing::usage_from_openai_body(body),
            ClientFormat::Anthropic => gatehouse_pricing::usage_from_anthropic_body(body),
        };
        let usage = usage.unwrap_or_else(|| self.estimate_from_body(body));
        self.settle(usage)
    }

    /// Counts tokens when the upstream reported none.
    fn estimate_from_body(&self, body: &[u8]) -> Usage {
        let mut tap = StreamUsage::new();
        match self.client {
            ClientFormat::OpenAi => {
                // A whole chat completion: its message content counts like a stream's deltas.
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
                    && let Some(choices) = v.get("choices").and_then(|c| c.as_array())
                {
                    for c in choices {
                        if let Some(m) = c.get("message") {
                            let delta = serde_json::json!({"choices": [{"delta": m}]});
                            tap.feed_openai_chunk(delta.to_string().as_bytes());
                        }
                    }
                }
            }
            ClientFormat::Anthropic => {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
                    && let Some(content) = v.get("content").and_then(|c| c.as_array())
                {
                    for block in content {
                        if let Some(text) = block.get("text").and_then(|t| t.as_str()) {
                            let ev = serde_json::json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": text}});
                            tap.feed_anthropic_event(ev.to_string().as_bytes());
                        }
                    }
                }
            }
        }
        tap.finish(self.fallback_input_tokens)
    }

    /// Feeds one frame of a streamed answer (in the client's format).
    pub fn observe(&mut self, bytes: &[u8]) {
        let (reader, tap) = self.stream.get_or_insert_with(|| {
            (
                SseReader::default(),
                StreamUsage::with_text_limit(STREAM_TEXT_KEPT),
            )
        });
        let (events, _) = reader.push(bytes);
        for ev in events {
            match self.client {
                ClientFormat::OpenAi => tap.feed_openai_chunk(ev.data.as_bytes()),
                ClientFormat::Anthropic => tap.feed_anthropic_event(ev.data.as_bytes()),
            }
        }
    }

    /// Settles a streamed answer with what was observed.
    pub fn finish_stream(mut self) {
        let usage = self.stream_usage();
        self.settle(usage);
    }

    fn stream_usage(&mut self) -> Usage {
        match self.stream.take() {
            Some((_, tap)) => tap.finish(self.fallback_input_tokens),
            None => Usage {
                input_tokens: self.fallback_input_tokens,
                ..Usage::default()
            },
        }
    }

    fn settle(&mut self, usage: Usage) -> Money {
        self.done = true;
        let cost = self.price.cost(&usage);
        let tokens = usage.total_tokens();
        self.record.ended_at = now_ms();
        self.record.prompt_tokens = i64::try_from(usage.input_tokens).unwrap_or(i64::MAX);
        self.record.completion_tokens = i64::try_from(usage.output_tokens).unwrap_or(i64::MAX);
        self.record.cached_tokens = i64::try_from(usage.cached_input_tokens).unwrap_or(i64::MAX);
        self.record.spend = cost.pico();
        let key = self.admission.take();
        let deployment = self.deployment.take();
        if key.is_some() || deployment.is_some() {
            let limiter = self.limiter.clone();
            let settle = async move {
                if let Some(adm) = key {
                    limiter.settle(adm, cost.pico(), tokens).await;
                }
                if let Some(adm) = deployment {
                    limiter.settle(adm, 0, tokens).await;
                }
            };
            // In-process counters settle at once; only a Redis round trip needs a task.
            let mut settle = Box::pin(settle);
            if (&mut settle).now_or_never().is_none() {
                tokio::spawn(settle);
            }
        }
        let record = std::mem::replace(
            &mut self.record,
            SpendRecord {
                request_id: String::new(),
                token_hash: None,
                user_id: None,
                team_id: None,
                model: String::new(),
                deployment_id: String::new(),
                started_at: 0,
                ended_at: 0,
                prompt_tokens: 0,
                completion_tokens: 0,
                cached_tokens: 0,
                spend: 0,
                status: 0,
            },
        );
        // Admitted while the buffer had room: never refused for lack of it.
        if let Err(e) = self.spend.record_admitted(record) {
            tracing::error!(error = %e, "spend record could not be buffered");
        }
        cost
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.stream.is_some() {
            let usage = self.stream_usage();
            self.settle(usage);
        }
        // Never answered: the admission is dropped, which releases it in full.
    }
}
