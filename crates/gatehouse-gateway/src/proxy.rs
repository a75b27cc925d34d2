//! The request pipeline for proxied calls:
//! auth → read body (bounded) → validate → route → upstream (with retries) → respond.
//!
//! Retries happen only before anything has been sent to the client: once an upstream
//! answers 2xx, its response is committed, and a later failure ends a stream with an SSE
//! error event instead.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gatehouse_config::Secret;
use gatehouse_providers::anthropic::{self, inbound};
use gatehouse_providers::errors::{self, FailureKind, UpstreamFailure};
use gatehouse_providers::{Operation, WireFormat};
use gatehouse_providers::{bedrock, gemini, vertex};
use gatehouse_wire::{
    ChatRequest, EmbeddingsRequest, JsonObject, MessagesRequest, RequestError, json_string,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};

use crate::Gateway;
use crate::accounting::{self, ClientFormat, Meter, RESPONSE_COST, RequestShape};
use crate::error::{ApiError, cap, close_unread};
use crate::google_auth::TokenError;
use crate::keys::Caller;
use crate::routing::{Tried, Upstream, scrub_key};
use crate::stream::{ErrorStyle, ForwardBody, StreamSource, Translation};
use crate::upstream::{SendError, backoff, retry_after, retry_plan};

/// Largest non-streamed upstream response body we read.
const MAX_UPSTREAM_BODY: usize = 128 * 1024 * 1024;
/// Largest upstream error body we read (only its message is used).
const MAX_UPSTREAM_ERROR_BODY: usize = 64 * 1024;
/// Longest `retry-after` we wait out inside one client request.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

static CALL_ID: HeaderName = HeaderName::from_static("x-litellm-call-id");
static MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
static DURATION_MS: HeaderName = HeaderName::from_static("x-litellm-response-duration-ms");
static ATTEMPTED_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");

/// A new call id for a request that arrived at `arrived_ms`: a UUIDv7 (time-ordered). Not a
/// secret, so a fast non-cryptographic generator does.
fn new_call_id(arrived_ms: i64) -> String {
    // UUIDv7 layout: unix ms, then random. The spend row's `started_at` is the same
    // millisecond, which is how `/spend/logs?request_id=` finds a row through the time index.
    let ms = u64::try_from(arrived_ms).unwrap_or(0);
    let mut random = [0u8; 10];
    random.copy_from_slice(&fastrand::u128(..).to_le_bytes()[..10]);
    uuid::Builder::from_unix_timestamp_millis(ms, &random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    handle(gw, req, Operation::ChatCompletions).await
}

/// `POST /v1/embeddings`.
pub async fn embeddings(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    handle(gw, req, Operation::Embeddings).await
}

/// `POST /v1/messages`: the Anthropic-compatible endpoint.
pub async fn messages(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    handle(gw, req, Operation::Messages).await
}

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    handle(gw, req, Operation::CountTokens).await
}

/// The client's wire format, for error bodies.
fn error_style(op: Operation) -> ErrorStyle {
    match op {
        Operation::ChatCompletions | Operation::Embeddings => ErrorStyle::OpenAi,
        Operation::Messages | Operation::CountTokens => ErrorStyle::Anthropic,
    }
}

/// Renders an error in the client's wire format (same headers either way).
fn render_error(e: ApiError, style: ErrorStyle) -> Response {
    match style {
        ErrorStyle::OpenAi => e.into_response(),
        ErrorStyle::Anthropic => {
            let status = e.anthropic_status();
            let body = inbound::error_body(inbound::error_kind(status.as_u16()), &e.to_string());
            let (mut parts, _) = e.into_response().into_parts();
            parts.status = status;
            Response::from_parts(parts, Body::from(body))
        }
    }
}

async fn handle(gw: Arc<Gateway>, req: Request, op: Operation) -> Response {
    let started = Instant::now();
    let arrived_ms = accounting::now_ms();
    let call_id = new_call_id(arrived_ms);
    let version = req.version();
    let mut res = match proxy(&gw, req, op, &call_id, started, arrived_ms).await {
        Ok(res) => res,
        Err(e) => {
            tracing::debug!(call_id = %call_id, status = e.status().as_u16(), kind = e.kind(), "request refused");
            let unread = e.may_leave_body_unread();
            let mut res = render_error(e, error_style(op));
            if unread {
                close_unread(&mut res, version);
            }
            res
        }
    };
    if let Ok(v) = HeaderValue::from_str(&call_id) {
        res.headers_mut().insert(CALL_ID.clone(), v);
    }
    res
}

/// Reads the whole request body, refusing (413) before reading when `content-length` is over
/// the limit, and as soon as the limit is crossed otherwise.
async fn read_body(gw: &Gateway, req: Request) -> Result<Bytes, ApiError> {
    let limit = gw.limits.max_body_bytes;
    let too_large = || ApiError::BodyTooLarge {
        limit_mb: gw.limits.max_body_mb,
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), limit);
    match tokio::time::timeout(gw.limits.body_timeout, body.collect()).await {
        Err(_) => Err(ApiError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(ApiError::BodyUnreadable),
    }
}

fn bad_request(e: RequestError) -> ApiError {
    ApiError::BadRequest {
        message: e.message,
        param: e.param,
    }
}

/// What the handler needs from a parsed body, whatever the operation.
struct Parsed<'a> {
    body: JsonObject<'a>,
    model: Cow<'a, str>,
    stream: bool,
    include_usage: bool,
    /// Embeddings asked as base64 (`encoding_format: "base64"`), for translated answers.
    base64: bool,
    dropped: Vec<&'static str>,
    /// Lower the output limit to this (a budget can pay for no more).
    max_tokens_cap: Option<u64>,
    /// Spend is accounted: a streamed OpenAI upstream is asked for usage even when the
    /// client did not ask (the extra chunk is not forwarded).
    metered: bool,
}

impl Parsed<'_> {
    /// The client's `max_completion_tokens`, else `max_tokens`.
    fn requested_max_tokens(&self) -> Option<u64> {
        self.body
            .get("max_completion_tokens")
            .or_else(|| self.body.get("max_tokens"))
            .and_then(|v| v.get().parse::<u64>().ok())
    }

    /// Completions the request asks for (`n`, or `best_of` when larger; at least 1): each
    /// may produce `max_tokens` of output.
    fn completions(&self, op: Operation) -> u64 {
        if op != Operation::ChatCompletions {
            return 1;
        }
        let count = |field| {
            self.body
                .get(field)
                .and_then(|v| v.get().parse::<u64>().ok())
                .unwrap_or(1)
        };
        count("n").max(count("best_of")).max(1)
    }

    /// The output-limit field to set on the upstream request, and its value.
    fn cap_override(&self, op: Operation, up: &Upstream) -> Option<(&'static str, String)> {
        let cap = self.max_tokens_cap?;
        let field = match op {
            Operation::Messages => "max_tokens",
            Operation::Embeddings | Operation::CountTokens => return None,
            Operation::ChatCompletions => {
                if self.body.get("max_completion_tokens").is_some() {
                    "max_completion_tokens"
                } else if self.body.get("max_tokens").is_some()
                    || up.wire != WireFormat::OpenAi
                    || !matches!(up.provider, "openai" | "azure")
                {
                    "max_tokens"
                } else {
                    // OpenAI's reasoning models refuse `max_tokens`.
                    "max_completion_tokens"
                }
            }
        };
        Some((field, cap.to_string()))
    }
}

/// Seconds since the Unix epoch, for translated responses' `created`.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The parsed body as a JSON value, for translators, with the output limit lowered when a
/// budget requires it.
fn as_value(
    parsed: &Parsed<'_>,
    cap: Option<&(&'static str, String)>,
) -> Result<serde_json::Value, ApiError> {
    let overrides: Vec<(&str, &str)> = cap.iter().map(|(k, v)| (*k, v.as_str())).collect();
    serde_json::from_slice(&parsed.body.to_vec_with(&overrides)).map_err(|e| ApiError::BadRequest {
        message: format!("request body is not valid JSON: {e}"),
        param: None,
    })
}

fn translate_error(e: anthropic::TranslateError) -> ApiError {
    ApiError::BadRequest {
        message: e.message,
        param: e.param,
    }
}

/// An OpenAI chat request (as JSON) in the deployment's wire format.
fn chat_to_provider(
    chat: &serde_json::Value,
    up: &Upstream,
    stream: bool,
) -> Result<Vec<u8>, ApiError> {
    match up.wire {
        WireFormat::OpenAi => serde_json::to_vec(chat).map_err(|e| ApiError::BadRequest {
            message: format!("could not encode the request: {e}"),
            param: None,
        }),
        WireFormat::Anthropic => {
            let body = anthropic::chat_request_to_messages(chat, &up.upstream_model, stream)
                .map_err(translate_error)?;
            if up.vertex_anthropic {
                vertex::anthropic_body(&body).map_err(translate_error)
            } else {
                Ok(body)
            }
        }
        WireFormat::Gemini => gemini::chat_request_to_generate(chat).map_err(translate_error),
        WireFormat::Bedrock => {
            bedrock::chat_request_to_converse(chat, &up.upstream_model).map_err(translate_error)
        }
    }
}

/// For a Messages request passed through natively whose `max_tokens` a budget lowered: its
/// `thinking` fitted under the new limit (Anthropic refuses `budget_tokens` ≥ `max_tokens`),
/// or disabled when no budget of at least 1,024 tokens fits. `None`: leave it as sent.
fn fitted_thinking(parsed: &Parsed<'_>, op: Operation) -> Option<String> {
    let cap = parsed.max_tokens_cap?;
    if op != Operation::Messages {
        return None;
    }
    let sent: serde_json::Value = serde_json::from_str(parsed.body.get("thinking")?.get()).ok()?;
    let fitted = anthropic::fit_thinking(sent.clone(), cap)
        .unwrap_or_else(|| serde_json::json!({"type": "disabled"}));
    (fitted != sent).then(|| fitted.to_string())
}

/// The upstream request body for a deployment: passed through with `model` replaced when
/// the client and the deployment speak the same format, translated otherwise (an Anthropic
/// request for a Gemini or Bedrock model goes through the OpenAI shape).
fn upstream_body(parsed: &Parsed<'_>, up: &Upstream, op: Operation) -> Result<Bytes, ApiError> {
    let cap = parsed.cap_override(op, up);
    let thinking = fitted_thinking(parsed, op);
    let usage_options = usage_stream_options(parsed, op);
    let passthrough = || {
        let mut overrides = vec![("model", up.model_json.as_str())];
        if let Some((k, v)) = &cap {
            overrides.push((k, v.as_str()));
        }
        if let Some(v) = &thinking {
            overrides.push(("thinking", v.as_str()));
        }
        if let Some(v) = &usage_options {
            overrides.push(("stream_options", v.as_str()));
        }
        Bytes::from(parsed.body.to_vec_with(&overrides))
    };
    let as_value = |parsed: &Parsed<'_>| as_value(parsed, cap.as_ref());
    match (op, up.wire) {
        // Claude on Vertex AI: the client's Messages body, `model` moved to the URL and the
        // version into the body; token counting keeps `model` (Vertex's count-tokens
        // endpoint is shared by all Claude models).
        (Operation::Messages | Operation::CountTokens, WireFormat::Anthropic)
            if up.vertex_anthropic =>
        {
            let version = json_string(vertex::ANTHROPIC_VERSION);
            let mut overrides = vec![("anthropic_version", version.as_str())];
            if op == Operation::CountTokens {
                overrides.push(("model", up.model_json.as_str()));
            }
            if let Some((k, v)) = &cap {
                overrides.push((k, v.as_str()));
            }
            if let Some(v) = &thinking {
                overrides.push(("thinking", v.as_str()));
            }
            let without = if op == Operation::Messages {
                Some("model")
            } else {
                None
            };
            Ok(Bytes::from(object_with(&parsed.body, &overrides, without)))
        }
        (Operation::ChatCompletions | Operation::Embeddings, WireFormat::OpenAi)
        | (Operation::Messages | Operation::CountTokens, WireFormat::Anthropic) => {
            Ok(passthrough())
        }
        (Operation::ChatCompletions, _) => {
            chat_to_provider(&as_value(parsed)?, up, parsed.stream).map(Bytes::from)
        }
        (Operation::Messages, _) => {
            // A chat request translated again keeps what the next translator reads
            // (Anthropic's `thinking`, `cache_control`); an OpenAI-compatible one does not.
            let target = match up.wire {
                WireFormat::OpenAi => inbound::ChatTarget::OpenAiCompatible,
                _ => inbound::ChatTarget::Translated,
            };
            let chat = inbound::messages_request_to_chat_for(
                &as_value(parsed)?,
                &up.upstream_model,
                parsed.stream,
                target,
            )
            .map_err(translate_error)?;
            if up.wire == WireFormat::OpenAi {
                return Ok(Bytes::from(chat));
            }
            let chat: serde_json::Value =
                serde_json::from_slice(&chat).map_err(|e| ApiError::BadRequest {
                    message: format!("could not translate the request: {e}"),
                    param: None,
                })?;
            chat_to_provider(&chat, up, parsed.stream).map(Bytes::from)
        }
        (Operation::Embeddings, WireFormat::Gemini) => {
            gemini::embeddings_request_to_batch(&as_value(parsed)?, &up.upstream_model)
                .map(Bytes::from)
                .map_err(translate_error)
        }
        (Operation::Embeddings, WireFormat::Anthropic | WireFormat::Bedrock)
        | (Operation::CountTokens, _) => Err(unsupported(&parsed.model)),
    }
}

/// `body` serialized again with `overrides` (key, raw JSON) replacing or adding values and
/// the key `without` left out; other values are copied byte for byte.
fn object_with(
    body: &JsonObject<'_>,
    overrides: &[(&str, &str)],
    without: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    let write = |out: &mut Vec<u8>, key: &str, raw: &str| {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(json_string(key).as_bytes());
        out.push(b':');
        out.extend_from_slice(raw.as_bytes());
    };
    for key in body.keys() {
        if Some(key) == without || overrides.iter().any(|(k, _)| *k == key) {
            continue;
        }
        if let Some(raw) = body.get(key) {
            write(&mut out, key, raw.get());
        }
    }
    for (key, raw) in overrides {
        write(&mut out, key, raw);
    }
    out.push(b'}');
    out
}

/// `stream_options` asking for usage, when spend is accounted on a chat stream whose client
/// did not ask for it; the client's other stream options are kept.
fn usage_stream_options(parsed: &Parsed<'_>, op: Operation) -> Option<String> {
    if op != Operation::ChatCompletions || !parsed.stream || !parsed.metered || parsed.include_usage
    {
        return None;
    }
    let mut opts = parsed
        .body
        .get("stream_options")
        .and_then(|v| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(v.get()).ok()
        })
        .unwrap_or_default();
    opts.insert("include_usage".into(), serde_json::Value::Bool(true));
    Some(serde_json::Value::Object(opts).to_string())
}

/// Anthropic request headers a client may set for a native Anthropic upstream: they select
/// API behaviour, never the destination or the credentials.
const ANTHROPIC_CLIENT_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("anthropic-version"),
    HeaderName::from_static("anthropic-beta"),
];

/// Every value of a request header, comma-joined (`anthropic-beta: a` and `anthropic-beta: b`
/// → `a,b`, which Anthropic accepts as one list); `None` when absent.
fn joined_header(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut joined = first.as_bytes().to_vec();
    for v in values {
        joined.push(b',');
        joined.extend_from_slice(v.as_bytes());
    }
    HeaderValue::from_bytes(&joined).ok()
}

fn unsupported(model: &str) -> ApiError {
    ApiError::BadRequest {
        message: format!(
            "model={} does not support this endpoint (its provider has no such API)",
            cap(model)
        ),
        param: Some("model".into()),
    }
}

async fn proxy(
    gw: &Gateway,
    req: Request,
    op: Operation,
    call_id: &str,
    started: Instant,
    arrived_ms: i64,
) -> Result<Response, ApiError> {
    if gw.is_draining() {
        return Err(ApiError::ShuttingDown);
    }
    let caller = match gw.accounts.keys.verify(req.headers()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(call_id, reason = e.kind(), path = %req.uri().path(), "authentication failed");
            return Err(e);
        }
    };
    if let Caller::Key(k) = &caller
        && let Err(e) = k.check_usable(accounting::now_ms())
    {
        tracing::warn!(call_id, reason = e.kind(), key = %k.key.key_name, "key refused");
        return Err(e);
    }
    let anthropic_headers: Vec<(HeaderName, HeaderValue)> = match op {
        Operation::Messages | Operation::CountTokens => ANTHROPIC_CLIENT_HEADERS
            .iter()
            .filter_map(|name| Some((name.clone(), joined_header(req.headers(), name)?)))
            .collect(),
        Operation::ChatCompletions | Operation::Embeddings => Vec::new(),
    };
    let vertex_headers: Vec<(HeaderName, HeaderValue)> = anthropic_headers
        .iter()
        .filter(|(name, _)| name != "anthropic-version")
        .cloned()
        .collect();
    let bytes = read_body(gw, req).await?;
    let mut parsed = match op {
        Operation::ChatCompletions => {
            let r = ChatRequest::parse(&bytes).map_err(bad_request)?;
            Parsed {
                body: r.body,
                model: r.model,
                stream: r.stream,
                include_usage: r.include_usage,
                base64: false,
                dropped: r.dropped,
                max_tokens_cap: None,
                metered: false,
            }
        }
        Operation::Embeddings => {
            let r = EmbeddingsRequest::parse(&bytes).map_err(bad_request)?;
            let base64 = r
                .body
                .get("encoding_format")
                .is_some_and(|v| v.get() == "\"base64\"");
            Parsed {
                body: r.body,
                model: r.model,
                stream: false,
                include_usage: false,
                base64,
                dropped: r.dropped,
                max_tokens_cap: None,
                metered: false,
            }
        }
        Operation::Messages | Operation::CountTokens => {
            let r = if op == Operation::Messages {
                MessagesRequest::parse(&bytes)
            } else {
                MessagesRequest::parse_for_count(&bytes)
            }
            .map_err(bad_request)?;
            Parsed {
                body: r.body,
                model: r.model,
                stream: r.stream && op == Operation::Messages,
                include_usage: false,
                base64: false,
                dropped: r.dropped,
                max_tokens_cap: None,
                metered: false,
            }
        }
    };
    if !parsed.dropped.is_empty() {
        tracing::warn!(call_id, fields = ?parsed.dropped, "request tried to set upstream connection fields; dropped");
    }
    if let Caller::Key(k) = &caller
        && !k.allows_model(&parsed.model)
    {
        return Err(ApiError::ModelNotAllowed {
            model: cap(&parsed.model),
            allowed: cap(&k.allowed_models()),
        });
    }
    let group = gw
        .router
        .group(&parsed.model)
        .ok_or_else(|| ApiError::UnknownModel {
            model: cap(&parsed.model),
        })?;
    let mut meter: Option<Meter> = None;
    if op != Operation::CountTokens {
        let plan = accounting::admit(
            &gw.accounts,
            &caller,
            RequestShape {
                model: &parsed.model,
                body: &bytes,
                max_tokens: parsed.requested_max_tokens(),
                completions: parsed.completions(op),
                has_output: op != Operation::Embeddings,
                call_id,
                started_ms: arrived_ms,
                client: match op {
                    Operation::Messages | Operation::CountTokens => ClientFormat::Anthropic,
                    Operation::ChatCompletions | Operation::Embeddings => ClientFormat::OpenAi,
                },
            },
            &group.reserve_price,
        )
        .await?;
        parsed.max_tokens_cap = plan.max_tokens_cap;
        parsed.metered = plan.meter.is_some();
        meter = plan.meter;
    }

    let mut tried = Tried::default();
    let mut attempt: u32 = 0;
    let mut max_retries = None;
    loop {
        let Some((index, up)) = group.pick(tried) else {
            return Err(ApiError::UnknownModel {
                model: cap(&parsed.model),
            });
        };
        tried.mark(index);
        // A deployment at its own rpm/tpm is skipped for another; when all are, 429.
        let mut deployment_admission = None;
        if let Some(limits) = &up.limits {
            match accounting::admit_deployment(&gw.accounts.limiter, limits, call_id).await {
                Ok(adm) => deployment_admission = Some(adm),
                Err(e) if group.all_tried(tried) => return Err(e),
                Err(_) => continue,
            }
        }
        if let Some(m) = &mut meter {
            m.set_deployment_admission(deployment_admission);
        }
        let retries = *max_retries.get_or_insert(up.max_retries);
        let Some(uri) = up.endpoints.uri(op, parsed.stream) else {
            if op == Operation::CountTokens {
                // No counting API upstream: answer with gatehouse's estimate.
                let n = inbound::estimate_input_tokens(&as_value(&parsed, None)?);
                let mut res = Response::new(Body::from(format!("{{\"input_tokens\":{n}}}")));
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                gateway_headers(res.headers_mut(), up, started, attempt);
                return Ok(res);
            }
            return Err(unsupported(&parsed.model));
        };
        let client_headers: &[(HeaderName, HeaderValue)] = match up.wire {
            // Vertex takes the version in the body; `anthropic-beta` is kept.
            WireFormat::Anthropic if up.vertex_anthropic => &vertex_headers,
            WireFormat::Anthropic => &anthropic_headers,
            WireFormat::OpenAi | WireFormat::Gemini | WireFormat::Bedrock => &[],
        };
        let timeout = if parsed.stream {
            up.stream_timeout
        } else {
            up.timeout
        };
        let can_retry = attempt < retries;

        let bedrock_family = match (op, up.wire) {
            (Operation::Embeddings, WireFormat::Bedrock) => {
                bedrock::embed_family(&up.upstream_model)
            }
            _ => None,
        };
        // From the send until the answer is known, the attempt may be billed.
        let sending = |meter: &mut Option<Meter>| {
            if let Some(m) = meter {
                m.sending(up.id.to_str().unwrap_or_default(), up.price);
            }
        };
        let sent = if let Some(family) = bedrock_family {
            let reqs = bedrock::embeddings_request_to_invoke(&as_value(&parsed, None)?, family)
                .map_err(translate_error)?;
            sending(&mut meter);
            match send_all(gw, up, uri, reqs.bodies, timeout).await {
                Ok(answers) => {
                    let out = bedrock::invoke_responses_to_embeddings(
                        &answers,
                        family,
                        &up.upstream_model,
                        parsed.base64,
                        reqs.estimated_tokens,
                    )
                    .map_err(|e| {
                        tracing::warn!(call_id, error = %e.message, "untranslatable upstream response");
                        ApiError::UpstreamFailed(
                            "The upstream provider sent a response gatehouse could not read."
                                .into(),
                        )
                    })?;
                    let metered = meter.take().map(|m| {
                        let mut h = HeaderMap::new();
                        m.headers(&mut h);
                        (m.finish_body(&out), h)
                    });
                    let mut res = Response::new(Body::from(out));
                    res.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    gateway_headers(res.headers_mut(), up, started, attempt);
                    if let Some((cost, h)) = metered {
                        res.headers_mut().extend(h);
                        if let Ok(v) = HeaderValue::from_str(&cost.as_usd().to_string()) {
                            res.headers_mut().insert(RESPONSE_COST.clone(), v);
                        }
                    }
                    return Ok(res);
                }
                Err(failure) => failure,
            }
        } else {
            let body = upstream_body(&parsed, up, op)?;
            sending(&mut meter);
            gw.upstream
                .send(up, uri, body, parsed.stream, timeout, client_headers)
                .await
        };
        let failure = match sent {
            Ok(res) if res.status().is_success() => {
                let ctx = RespondCtx {
                    op,
                    up,
                    fallback_model: &up.upstream_model,
                    stream: parsed.stream,
                    include_usage: parsed.include_usage,
                    base64: parsed.base64,
                    timeout,
                    call_id,
                    started,
                    attempt,
                };
                return respond(res, ctx, meter.take()).await;
            }
            Ok(res) => {
                if let Some(m) = &mut meter {
                    m.answered();
                }
                let wait = retry_after(res.headers());
                let failure = read_failure(res, up).await;
                match retry_plan(&failure, wait, MAX_RETRY_AFTER) {
                    Some(wait) if can_retry => {
                        tracing::debug!(
                            call_id,
                            status = failure.status,
                            code = failure.code.as_deref().unwrap_or(""),
                            attempt,
                            "upstream error; retrying"
                        );
                        Some(wait)
                    }
                    _ => {
                        let wait = wait.or(failure.retry_delay);
                        let source = FailureSource {
                            key: up.key.as_ref(),
                            model_id: up.id.to_str().unwrap_or_default(),
                            call_id,
                            mid_stream: false,
                        };
                        return Err(upstream_error(failure, &source, wait));
                    }
                }
            }
            Err(e) => {
                if let SendError::Token(TokenError::Refused { status, code }) = &e {
                    // Only the OAuth2 error code: the description is the endpoint's free text.
                    tracing::error!(
                        call_id,
                        status,
                        code = code.as_deref().unwrap_or(""),
                        model_id = up.id.to_str().unwrap_or_default(),
                        "the token endpoint refused the deployment's service account"
                    );
                } else {
                    tracing::warn!(call_id, error = %e, attempt, "upstream request failed");
                }
                if let Some(m) = &mut meter {
                    match e {
                        // Sent, outcome unknown: the provider may bill its input.
                        SendError::Timeout => m.lost(504),
                        SendError::Transport => m.lost(502),
                        SendError::Connect | SendError::Signing | SendError::Token(_) => {
                            m.answered();
                        }
                    }
                }
                let retryable = match &e {
                    SendError::Signing => false,
                    SendError::Token(t) => t.retryable(),
                    SendError::Timeout | SendError::Connect | SendError::Transport => true,
                };
                if can_retry && retryable {
                    Some(None)
                } else {
                    return Err(match e {
                        SendError::Timeout => ApiError::UpstreamTimeout,
                        SendError::Signing => ApiError::UpstreamFailed(
                            "Could not sign the request for the upstream provider.".into(),
                        ),
                        SendError::Connect | SendError::Transport => ApiError::UpstreamFailed(
                            "Could not reach the upstream provider.".into(),
                        ),
                        // As for a provider's 401/403: a gateway failure, its text not relayed.
                        SendError::Token(TokenError::Refused { .. }) => ApiError::UpstreamFailed(
                            "The upstream provider refused the gateway's credentials for this model (Google service account).".into(),
                        ),
                        SendError::Token(e) => ApiError::UpstreamFailed(format!(
                            "Could not get an access token for the upstream provider (Google service account): {e}."
                        )),
                    });
                }
            }
        };
        if let Some(wait) = failure {
            let delay = wait.unwrap_or_else(|| backoff(attempt));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// How many `InvokeModel` calls one embeddings request may have in flight (Titan embeds
/// one text per call).
const EMBED_CONCURRENCY: usize = 8;

/// Sends each body to `uri`, at most [`EMBED_CONCURRENCY`] at a time, and returns the
/// answers in order. The first failure (a non-2xx answer or a transport error) fails the
/// whole request; the calls still in flight are dropped.
async fn send_all(
    gw: &Gateway,
    up: &Upstream,
    uri: &http::Uri,
    bodies: Vec<Vec<u8>>,
    timeout: Duration,
) -> Result<Vec<Bytes>, Result<http::Response<hyper::body::Incoming>, SendError>> {
    use futures_util::StreamExt;
    let mut answers = futures_util::stream::iter(bodies.into_iter().map(|body| async move {
        match gw
            .upstream
            .send(up, uri, Bytes::from(body), false, timeout, &[])
            .await
        {
            Ok(res) if res.status().is_success() => tokio::time::timeout(
                timeout,
                Limited::new(res.into_body(), MAX_UPSTREAM_BODY).collect(),
            )
            .await
            .map_err(|_| Err(SendError::Timeout))?
            .map(|c| c.to_bytes())
            .map_err(|_| Err(SendError::Transport)),
            Ok(res) => Err(Ok(res)),
            Err(e) => Err(Err(e)),
        }
    }))
    .buffered(EMBED_CONCURRENCY);
    let mut out = Vec::new();
    while let Some(answer) = answers.next().await {
        out.push(answer?);
    }
    Ok(out)
}

static AMZN_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// Reads a non-2xx upstream answer (its body bounded in size and time) and classifies it in
/// the deployment's wire format: what failed, whether to retry, what the client may read.
async fn read_failure(
    res: http::Response<hyper::body::Incoming>,
    up: &Upstream,
) -> UpstreamFailure {
    let status = res.status().as_u16();
    let error_type = res
        .headers()
        .get(&AMZN_ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = tokio::time::timeout(
        Duration::from_secs(5),
        Limited::new(res.into_body(), MAX_UPSTREAM_ERROR_BODY).collect(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|b| b.to_bytes())
    .unwrap_or_default();
    errors::classify(up.wire, status, error_type.as_deref(), &body)
}

/// Where an upstream failure came from, to report it.
pub(crate) struct FailureSource<'a> {
    /// The deployment's key, scrubbed from anything relayed.
    pub key: Option<&'a Secret>,
    /// The deployment's `model_info.id`, for logs.
    pub model_id: &'a str,
    /// The request's call id, for logs.
    pub call_id: &'a str,
    /// The failure arrived inside a stream the upstream had answered 2xx (an error event).
    pub mid_stream: bool,
}

/// Turns a final upstream failure (an error answer, or an error event inside a stream) into
/// our error. Rejected requests are relayed with the upstream's status and message (scrubbed
/// of URLs and key-shaped strings, then of the deployment's key, then capped); a refusal of
/// *our* credentials or account is a gateway failure (502), logged with the provider's error
/// code, its message not relayed.
pub(crate) fn upstream_error(
    failure: UpstreamFailure,
    source: &FailureSource<'_>,
    wait: Option<Duration>,
) -> ApiError {
    let UpstreamFailure {
        kind,
        status,
        message,
        param,
        code,
        ..
    } = failure;
    let FailureSource {
        key,
        model_id,
        call_id,
        mid_stream,
    } = *source;
    let code = code.as_deref().unwrap_or("");
    let message = message.map(|m| cap(&scrub_key(key, &m)));
    match kind {
        FailureKind::Credentials => {
            tracing::error!(
                call_id,
                status,
                code,
                model_id,
                mid_stream,
                "upstream refused the configured credentials"
            );
            ApiError::UpstreamFailed(
                "The upstream provider refused the gateway's credentials for this model.".into(),
            )
        }
        FailureKind::Account => {
            tracing::error!(
                call_id,
                status,
                code,
                model_id,
                mid_stream,
                "upstream refused the deployment's account (billing, quota or spend limit)"
            );
            ApiError::UpstreamFailed(
                "The upstream provider refused the gateway's account for this model (billing, quota or spend limit).".into(),
            )
        }
        FailureKind::RateLimited => ApiError::UpstreamRateLimited {
            retry_after: Some(wait.map_or(1, |w| w.as_secs().max(1))),
        },
        FailureKind::Overloaded => ApiError::UpstreamOverloaded {
            retry_after: wait.map(|w| w.as_secs().max(1)),
        },
        FailureKind::Timeout => ApiError::UpstreamTimeout,
        FailureKind::Rejected => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            ApiError::UpstreamRejected {
                status,
                message: message.unwrap_or_else(|| {
                    format!("The upstream provider rejected the request ({status}).")
                }),
                param: param.map(|p| cap(&scrub_key(key, &p))),
            }
        }
        // A stream's error event has no status of its own.
        FailureKind::ServerError if mid_stream => ApiError::UpstreamFailed(match message {
            Some(m) => format!("The upstream provider's stream failed: {m}"),
            None => "The upstream provider's stream failed.".to_owned(),
        }),
        FailureKind::ServerError => ApiError::UpstreamFailed(match message {
            Some(m) => format!("The upstream provider failed ({status}): {m}"),
            None => format!("The upstream provider failed ({status})."),
        }),
    }
}

fn gateway_headers(h: &mut HeaderMap, up: &Upstream, started: Instant, attempt: u32) {
    h.insert(MODEL_ID.clone(), up.id.clone());
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("{ms:.3}")) {
        h.insert(DURATION_MS.clone(), v);
    }
    h.insert(ATTEMPTED_RETRIES.clone(), HeaderValue::from(attempt));
}

/// What `respond` needs besides the upstream response.
struct RespondCtx<'a> {
    op: Operation,
    up: &'a Upstream,
    /// The `model` of a translated answer when the provider's names none (Bedrock never
    /// does): the deployment's upstream model, as LiteLLM reports it.
    fallback_model: &'a str,
    stream: bool,
    include_usage: bool,
    base64: bool,
    timeout: Duration,
    call_id: &'a str,
    started: Instant,
    attempt: u32,
}

async fn respond(
    res: http::Response<hyper::body::Incoming>,
    ctx: RespondCtx<'_>,
    mut meter: Option<Meter>,
) -> Result<Response, ApiError> {
    let RespondCtx {
        op,
        up,
        fallback_model,
        stream,
        include_usage,
        base64,
        timeout,
        call_id,
        started,
        attempt,
    } = ctx;
    let client_wire = match op {
        Operation::ChatCompletions | Operation::Embeddings => WireFormat::OpenAi,
        Operation::Messages | Operation::CountTokens => WireFormat::Anthropic,
    };
    let same_wire = client_wire == up.wire;
    let mut rate_headers = HeaderMap::new();
    if let Some(m) = &meter {
        m.headers(&mut rate_headers);
    }
    let mut cost = None;
    let content_type = if same_wire {
        res.headers().get(header::CONTENT_TYPE).cloned()
    } else {
        None
    };
    let metered = meter.is_some();
    let body = if stream {
        let created = unix_now();
        // Usage is always read (and, if the client did not ask for it, not forwarded).
        let strip_usage = metered && !include_usage && client_wire == WireFormat::OpenAi;
        let include_usage = include_usage || metered;
        // Anthropic clients on a Gemini/Bedrock model get provider -> OpenAI -> Anthropic.
        let to_openai =
            |include_usage: bool| match up.wire {
                WireFormat::OpenAi => None,
                WireFormat::Anthropic => Some(Translation::AnthropicToOpenAi(
                    anthropic::StreamTranslator::new(fallback_model, created, include_usage),
                )),
                WireFormat::Gemini => Some(Translation::GeminiToOpenAi(
                    gemini::StreamTranslator::new(fallback_model, created, include_usage),
                )),
                WireFormat::Bedrock => Some(Translation::BedrockToOpenAi(
                    bedrock::StreamTranslator::new(fallback_model, created, include_usage),
                )),
            };
        let translator = match (client_wire, up.wire) {
            (WireFormat::Anthropic, WireFormat::Anthropic) | (_, WireFormat::OpenAi)
                if client_wire == up.wire =>
            {
                None
            }
            (WireFormat::Anthropic, WireFormat::OpenAi) => Some(Translation::OpenAiToAnthropic(
                inbound::ChatStreamToMessages::new(fallback_model),
            )),
            (WireFormat::Anthropic, _) => to_openai(true).map(|first| {
                Translation::Chain(
                    Box::new(first),
                    inbound::ChatStreamToMessages::new(fallback_model),
                )
            }),
            _ => to_openai(include_usage),
        };
        // A translated stream's error events are reported like error answers (scrubbed of
        // the deployment's key); a passed-through stream is the client's own format already.
        let source = translator.is_some().then(|| StreamSource {
            key: up.key.clone(),
            model_id: up.id.clone(),
        });
        let mut body = ForwardBody::new(
            res.into_body(),
            timeout,
            call_id.to_owned(),
            translator,
            error_style(op),
        )
        .metered(meter.take())
        .strip_usage_chunks(strip_usage);
        if let Some(source) = source {
            body = body.from_deployment(source);
        }
        Body::new(body)
    } else {
        let remaining = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        // The upstream answered 2xx: from here a failure still leaves its work billed.
        let lost = |meter: &mut Option<Meter>, status: u16| {
            if let Some(m) = meter {
                m.lost(status);
            }
        };
        let collected = match tokio::time::timeout(
            remaining,
            Limited::new(res.into_body(), MAX_UPSTREAM_BODY).collect(),
        )
        .await
        {
            Ok(Ok(c)) => c.to_bytes(),
            Ok(Err(_)) => {
                lost(&mut meter, 502);
                return Err(ApiError::UpstreamFailed(
                    "The upstream provider's response was cut off.".into(),
                ));
            }
            Err(_) => {
                lost(&mut meter, 504);
                return Err(ApiError::UpstreamTimeout);
            }
        };
        let created = unix_now();
        let to_openai = |body: &[u8]| -> Option<Result<Vec<u8>, anthropic::TranslateError>> {
            match (op, up.wire) {
                (_, WireFormat::OpenAi) => None,
                (Operation::Embeddings, WireFormat::Gemini) => Some(
                    gemini::batch_response_to_embeddings(body, fallback_model, base64),
                ),
                (_, WireFormat::Anthropic) => Some(anthropic::messages_response_to_chat(
                    body,
                    fallback_model,
                    created,
                )),
                (_, WireFormat::Gemini) => Some(gemini::generate_response_to_chat(
                    body,
                    fallback_model,
                    created,
                )),
                (_, WireFormat::Bedrock) => Some(bedrock::converse_response_to_chat(
                    body,
                    fallback_model,
                    created,
                )),
            }
        };
        let translated = if client_wire == up.wire {
            None
        } else if client_wire == WireFormat::Anthropic {
            // Provider -> OpenAI (unless it already is) -> Anthropic.
            match to_openai(&collected) {
                None => Some(inbound::chat_response_to_message(
                    &collected,
                    fallback_model,
                )),
                Some(Ok(chat)) => Some(inbound::chat_response_to_message(&chat, fallback_model)),
                Some(Err(e)) => Some(Err(e)),
            }
        } else {
            to_openai(&collected)
        };
        let answer = match translated {
            None => collected,
            Some(Ok(bytes)) => Bytes::from(bytes),
            Some(Err(e)) => {
                tracing::warn!(call_id, error = %e.message, "untranslatable upstream response");
                lost(&mut meter, 502);
                return Err(ApiError::UpstreamFailed(
                    "The upstream provider sent a response gatehouse could not read.".into(),
                ));
            }
        };
        if let Some(m) = meter.take() {
            cost = Some(m.finish_body(&answer));
        }
        Body::from(answer)
    };
    let mut out = Response::new(body);
    *out.status_mut() = StatusCode::OK;
    let h = out.headers_mut();
    let default_type = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    h.insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static(default_type)),
    );
    if stream {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
    }
    gateway_headers(h, up, started, attempt);
    h.extend(rate_headers);
    if let Some(c) = cost
        && let Ok(v) = HeaderValue::from_str(&format!("{}", c.as_usd()))
    {
        h.insert(RESPONSE_COST.clone(), v);
    }
    tracing::debug!(call_id, attempt, stream, "upstream answered");
    Ok(out)
}
