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
//! The real cost is settled when the answer is complete; the unused rest is released. A
//! request that fails before anything was sent upstream, or whose upstream answered with an
//! error, releases all of it. A request that was sent and whose outcome is unknown — the
//! upstream timed out or the connection broke after sending, or the client went away while
//! waiting — may still be billed by the provider: it is settled at its input cost (counted
//! with the tokenizer from the request body, or the reservation's input bound for bodies
//! over [`KEEP_BODY_MAX`]) and its spend record carries status 504, 502 or 499.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use gatehouse_limits::{Admission, Admit, Budget, Limit, Limiter, Refusal, Scope};
use gatehouse_pricing::{ModelPrice, Money, StreamUsage, Usage};
use gatehouse_providers::sse::SseReader;
use gatehouse_store::{SpendRecord, SpendTicket, SpendWriter, Store};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::ApiError;
use crate::keys::{Caller, KeyCache, KeyContext};

/// Output text kept per stream for counting when the upstream reports no usage (it almost
/// always does: OpenAI-compatible upstreams are asked for it); beyond this, bytes / 4.
const STREAM_TEXT_KEPT: usize = 16 * 1024;

/// Output tokens assumed for a request without `max_tokens` on a model whose output limit
/// is unknown, when a budget applies: `max_tokens` is set to at most this.
pub const ASSUMED_MAX_OUTPUT: u64 = 32_768;

/// Request bodies up to this size are kept (a reference, not a copy) until the request is
/// settled, to count their input tokens if the upstream reports none; larger ones are
/// settled at the reservation's input bound (one token per byte) in that case.
pub const KEEP_BODY_MAX: usize = 1024 * 1024;

/// When a stream or an abandoned request must have its input counted, bodies up to this
/// size are counted inline and larger ones on a blocking thread, so that a runtime worker
/// is not held up by the tokenizer for long. (A non-streamed answer without usage is
/// counted inline whatever its size, as its output always was: its cost is a header.)
const INLINE_COUNT_MAX: usize = 16 * 1024;

/// Spend-record status of a request abandoned by its client while waiting (nginx's 499).
pub const STATUS_CLIENT_GONE: i32 = 499;

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
    /// The request body: its size is an upper bound on its input tokens, and it is counted
    /// with the tokenizer when the upstream reports no usage.
    pub body: &'a bytes::Bytes,
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
    let body_bytes = shape.body.len() as u64;
    let mut meter = Meter {
        settle: Some(Settle {
            limiter: accounts.limiter.clone(),
            spend: accounts.spend.ticket(),
            admission: None,
            deployment: None,
            price: ModelPrice::default(),
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
        }),
        client: shape.client,
        request: if shape.body.len() <= KEEP_BODY_MAX {
            shape.body.clone()
        } else {
            bytes::Bytes::new()
        },
        input_bound: body_bytes,
        stream: None,
        limits: (None, None),
        in_flight: false,
        lost_attempts: 0,
        lost_price_pico: 0,
        abandon_status: STATUS_CLIENT_GONE,
    };
    let Some(k) = key else {
        return Ok(Plan {
            max_tokens_cap: None,
            meter: Some(meter),
        });
    };
    let (rpm, tpm, parallel) = limits_of(&k);
    let budgets = budgets_of(&k);
    let input_cost = price.max_input_price().cost(body_bytes);
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
    if let Some(s) = &mut meter.settle {
        s.admission = Some(admission);
    }
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

/// What settling a request needs, taken out of its [`Meter`] when it is settled (so that a
/// settlement can move to a blocking thread when the input must be counted).
struct Settle {
    limiter: Limiter,
    /// The record's place in the spend writer (held until the record is queued).
    spend: SpendTicket,
    /// The key's admission (limits, budget reservation).
    admission: Option<Admission>,
    /// The answering deployment's own admission (its `rpm`/`tpm`), settled with the tokens.
    deployment: Option<Admission>,
    record: SpendRecord,
    /// The answering (or last tried) deployment's price.
    price: ModelPrice,
}

/// Input tokens of attempts whose outcome is unknown, priced at their deployments' prices.
#[derive(Debug, Clone, Copy, Default)]
struct Lost {
    attempts: u32,
    /// Sum of the attempts' input prices, pico-USD per token.
    price_pico: i64,
}

impl Settle {
    /// Prices `usage` (plus `lost` attempts' input of `lost_input` tokens each), settles the
    /// admissions and queues the spend record with `status`. Returns the cost.
    fn run(mut self, usage: Usage, lost: Lost, lost_input: u64, status: i32) -> Money {
        let extra_tokens = lost_input.saturating_mul(u64::from(lost.attempts));
        let cost = self
            .price
            .cost(&usage)
            .saturating_add(Money::from_pico(lost.price_pico).mul_tokens(lost_input));
        let tokens = usage.total_tokens().saturating_add(extra_tokens);
        let input = usage.input_tokens.saturating_add(extra_tokens);
        self.record.ended_at = now_ms();
        self.record.prompt_tokens = i64::try_from(input).unwrap_or(i64::MAX);
        self.record.completion_tokens = i64::try_from(usage.output_tokens).unwrap_or(i64::MAX);
        self.record.cached_tokens = i64::try_from(usage.cached_input_tokens).unwrap_or(i64::MAX);
        self.record.spend = cost.pico();
        self.record.status = status;
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
                match tokio::runtime::Handle::try_current() {
                    Ok(h) => drop(h.spawn(settle)),
                    // Dropping it drops the admissions, which release what they hold.
                    Err(_) => tracing::debug!("settled outside a runtime; reservation released"),
                }
            }
        }
        // Admitted while the buffer had room: never refused for lack of it.
        if let Err(e) = self.spend.record(self.record) {
            tracing::error!(error = %e, "spend record could not be buffered");
        }
        cost
    }
}

/// Settles one request: reads its usage, prices it, settles its admission and writes its
/// spend record. Dropped without [`Meter::finish_body`] / [`Meter::finish_stream`] (the client
/// went away, the stream broke, the upstream timed out), it settles with what it saw: a
/// stream's observed usage, or the input of attempts that were sent and never answered;
/// a request never sent releases everything.
pub struct Meter {
    /// Taken when settled.
    settle: Option<Settle>,
    client: ClientFormat,
    /// The request body (a reference; empty when over [`KEEP_BODY_MAX`]), counted only when
    /// the upstream reports no input usage.
    request: bytes::Bytes,
    /// The reservation's input bound: the body's size in bytes.
    input_bound: u64,
    stream: Option<(SseReader, StreamUsage)>,
    /// Smallest rpm and tpm limits, for the `x-ratelimit-limit-*` headers.
    limits: (Option<u64>, Option<u64>),
    /// An attempt has been sent and its answer is not known yet.
    in_flight: bool,
    /// Attempts sent whose outcome stayed unknown (timed out, cut off).
    lost_attempts: u32,
    lost_price_pico: i64,
    /// Spend-record status if the request ends without an answer.
    abandon_status: i32,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settle = self.settle.as_ref();
        f.debug_struct("Meter")
            .field("request_id", &settle.map(|s| s.record.request_id.as_str()))
            .field("admission", &settle.map(|s| &s.admission))
            .field("in_flight", &self.in_flight)
            .field("lost_attempts", &self.lost_attempts)
            .finish_non_exhaustive()
    }
}

/// Counts the input tokens of a request body in the client's format; `None` when it cannot
/// be read (the caller then uses the reservation's bound).
fn count_input(client: ClientFormat, body: &[u8]) -> Option<u64> {
    if body.is_empty() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(match client {
        ClientFormat::Anthropic => gatehouse_pricing::count_anthropic_input(&v),
        ClientFormat::OpenAi => match v.get("input") {
            // Embeddings.
            Some(input) if v.get("messages").is_none() => {
                gatehouse_pricing::count_embedding_input(input)
            }
            _ => gatehouse_pricing::count_chat_input(&v),
        },
    })
}

impl Meter {
    /// The answering deployment's own admission, to settle with this request's tokens.
    pub fn set_deployment_admission(&mut self, adm: Option<Admission>) {
        if let Some(s) = &mut self.settle {
            s.deployment = adm;
        }
    }

    /// An attempt is about to be sent to deployment `id` at `price` (the record names it):
    /// from now until its answer is known ([`Meter::answered`], [`Meter::lost`]) or the
    /// request is settled, it may be billed.
    pub fn sending(&mut self, id: &str, price: ModelPrice) {
        if let Some(s) = &mut self.settle {
            id.clone_into(&mut s.record.deployment_id);
            s.price = price;
        }
        self.in_flight = true;
        self.abandon_status = STATUS_CLIENT_GONE;
    }

    /// The upstream answered with an error: this attempt is not billed.
    pub fn answered(&mut self) {
        self.in_flight = false;
    }

    /// The attempt in flight ended without an answer after it may have reached the
    /// upstream (timeout, broken connection, response cut off): its input is billed unless
    /// a later attempt is. `status` is what the client is told (504, 502). An attempt that
    /// never left (connect error) should be [`Meter::answered`] instead.
    pub fn lost(&mut self, status: u16) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        self.lost_attempts = self.lost_attempts.saturating_add(1);
        if let Some(s) = &self.settle {
            self.lost_price_pico = self
                .lost_price_pico
                .saturating_add(s.price.input.pico_per_token());
        }
        self.abandon_status = i32::from(status);
    }

    fn lost_totals(&self) -> Lost {
        Lost {
            attempts: self.lost_attempts,
            price_pico: self.lost_price_pico,
        }
    }

    /// The input tokens to bill when the upstream reported none: the tokenizer's count of
    /// the body, else the reservation's bound.
    fn counted_input(&self) -> u64 {
        count_input(self.client, &self.request).unwrap_or(self.input_bound)
    }

    /// Adds `x-ratelimit-*` headers.
    pub fn headers(&self, h: &mut HeaderMap) {
        let Some(adm) = self.settle.as_ref().and_then(|s| s.admission.as_ref()) else {
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
        let mut usage = usage.unwrap_or_else(|| self.estimate_from_body(body));
        let lost = self.lost_totals();
        let needs_count = usage.input_tokens == 0 || lost.attempts > 0;
        let input = if needs_count { self.counted_input() } else { 0 };
        if usage.input_tokens == 0 {
            usage.input_tokens = input;
        }
        self.in_flight = false;
        match self.settle.take() {
            Some(s) => s.run(usage, lost, input, 200),
            None => Money::ZERO,
        }
    }

    /// Counts output tokens when the upstream reported none (input is left at 0).
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
        tap.finish(0)
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
        self.settle_observed(200, true);
    }

    /// Settles with the usage observed so far, plus the input of lost attempts. `answered`:
    /// an answer (a stream) was received, whose input is billed too (counted when the
    /// upstream reported none). Counting uses the tokenizer — on a blocking thread for
    /// larger bodies.
    fn settle_observed(&mut self, status: i32, answered: bool) {
        self.in_flight = false;
        let Some(settle) = self.settle.take() else {
            return;
        };
        // Output counted now (at most STREAM_TEXT_KEPT bytes of text); input 0 = not reported.
        let usage = match self.stream.take() {
            Some((_, tap)) => tap.finish(0),
            None => Usage::default(),
        };
        let lost = self.lost_totals();
        let fill = answered && usage.input_tokens == 0;
        if !fill && lost.attempts == 0 {
            settle.run(usage, lost, 0, status);
            return;
        }
        let client = self.client;
        let request = std::mem::take(&mut self.request);
        let inline = request.len() <= INLINE_COUNT_MAX;
        let bound = self.input_bound;
        let finish = move || {
            let input = count_input(client, &request).unwrap_or(bound);
            let mut usage = usage;
            if fill {
                usage.input_tokens = input;
            }
            settle.run(usage, lost, input, status);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if !inline => drop(h.spawn_blocking(finish)),
            _ => finish(),
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.settle.is_none() {
            return;
        }
        if self.stream.is_some() {
            // A stream the client stopped reading: what it saw, plus its input.
            self.settle_observed(STATUS_CLIENT_GONE, true);
            return;
        }
        if self.in_flight {
            // The client went away while the upstream was working on its request.
            self.lost(499);
        }
        if self.lost_attempts > 0 {
            let status = self.abandon_status;
            self.settle_observed(status, false);
        }
        // Never sent, or answered with an error: the admission is dropped with the rest of
        // the settlement, which releases it in full.
    }
}

#[cfg(test)]
mod tests;
