//! Upstream error answers, read in the deployment's wire format: what failed (the request,
//! the gateway's credentials or account, capacity, the provider), whether another attempt
//! may help, and the message a client may see.
//!
//! Pure: status, `x-amzn-errortype` and body in, [`UpstreamFailure`] out. Each provider's
//! own parser reads its body ([`crate::anthropic::error_message`],
//! [`crate::gemini::error_message`], [`crate::bedrock::error_message`] /
//! [`crate::bedrock::error_type`]); the provider's error code decides before the HTTP
//! status, which only decides when there is no code we know.
//!
//! | provider | signal | kind |
//! |---|---|---|
//! | Anthropic | `error.type`: `invalid_request_error` / `not_found_error` / `request_too_large` | rejected (400 / 404 / 413) |
//! | | `authentication_error`, `permission_error` | credentials |
//! | | `billing_error`; `rate_limit_error` with `error.details.error_code: enforced_spend_limit_reached` | account |
//! | | `rate_limit_error` · `overloaded_error` (529) · `api_error` · `timeout_error` | rate limited · overloaded · server error · timeout |
//! | Gemini, Vertex AI | `error.details[].reason` `API_KEY_*`, `ACCESS_TOKEN_*`, `CREDENTIALS_MISSING`, `SERVICE_DISABLED`, … (Gemini answers an invalid key with 400 `INVALID_ARGUMENT` + `API_KEY_INVALID`) | credentials |
//! | | `BILLING_DISABLED`; `error.status` `FAILED_PRECONDITION` (billing / free tier) | account |
//! | | `INVALID_ARGUMENT`, `OUT_OF_RANGE` · `NOT_FOUND` · `ABORTED`, `ALREADY_EXISTS` | rejected (400 · 404 · 409, retried) |
//! | | `UNAUTHENTICATED`, `PERMISSION_DENIED` | credentials |
//! | | `RESOURCE_EXHAUSTED` (its `RetryInfo.retryDelay` honoured) · `UNAVAILABLE` · `DEADLINE_EXCEEDED` · `INTERNAL`, `UNKNOWN`, `CANCELLED`, `DATA_LOSS` | rate limited · overloaded · timeout · server error |
//! | Bedrock | `x-amzn-errortype` (or the body's `__type`): `ValidationException` · `ResourceNotFoundException` | rejected (400 · 404) |
//! | | `AccessDeniedException`, `UnrecognizedClientException`, `ExpiredTokenException`, `InvalidSignatureException`, `IncompleteSignature`, `MissingAuthenticationToken`, … | credentials |
//! | | `ThrottlingException`, `ServiceQuotaExceededException` · `ModelNotReadyException`, `ServiceUnavailableException` · `ModelTimeoutException` · `InternalServerException`, `ModelStreamErrorException` | rate limited · overloaded · timeout · server error |
//! | | `ModelErrorException` | server error, not retried (the model failed on this input) |
//! | OpenAI-compatible | `error.code` / `error.type` `insufficient_quota` | account |
//! | every provider, no known code | 401/403/407 credentials · 402 account · 408 timeout · 429 rate limited · other 4xx rejected (409 retried) · 504 timeout · 529 overloaded · other 5xx server error | |
//!
//! Rate limits, overload, server errors, timeouts and conflicts are retryable; the rest are
//! not. Messages are scrubbed of URLs, `key=` parameters and strings shaped like Google API
//! keys, AWS access key ids and bearer tokens (a Google error can quote the request URL,
//! key included); the gateway also removes the deployment's own key.

use std::time::Duration;

use serde_json::Value;

use crate::WireFormat;
use crate::{anthropic, bedrock, gemini};

/// What an upstream error answer means for the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The request is at fault (invalid, unknown model, too large): relayed with
    /// [`UpstreamFailure::status`] and the upstream's message.
    Rejected,
    /// The provider refused the deployment's credentials (invalid, expired, not permitted):
    /// a gateway failure, and the upstream's message is not relayed.
    Credentials,
    /// The provider refused the deployment's account (billing, exhausted quota, spend
    /// limit): a gateway failure, not retried, the upstream's message not relayed.
    Account,
    /// The provider rate-limited the deployment.
    RateLimited,
    /// The provider is overloaded, or the model is not ready.
    Overloaded,
    /// The provider or the model failed.
    ServerError,
    /// The provider timed out.
    Timeout,
}

/// A classified upstream error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamFailure {
    /// What failed.
    pub kind: FailureKind,
    /// The upstream's HTTP status; for [`FailureKind::Rejected`], the 4xx to relay (never
    /// 401, 402, 403, 407, 408 or 429).
    pub status: u16,
    /// The upstream's message, scrubbed ([`scrub`]); `None` if it had none.
    pub message: Option<String>,
    /// The request field the upstream named (OpenAI-compatible `error.param`).
    pub param: Option<String>,
    /// The provider's error code, for logs (`overloaded_error`, `API_KEY_INVALID`,
    /// `ThrottlingException`): at most 64 of `[A-Za-z0-9_.-]`.
    pub code: Option<String>,
    /// Another attempt may succeed.
    pub retryable: bool,
    /// How long the provider asked to wait (Google's `RetryInfo.retryDelay`), when its
    /// headers do not say.
    pub retry_delay: Option<Duration>,
}

/// Classifies a non-2xx upstream answer: its HTTP `status`, its `x-amzn-errortype` header if
/// any (Bedrock), and its body (possibly truncated or not JSON), read as `wire`.
pub fn classify(
    wire: WireFormat,
    status: u16,
    amzn_error_type: Option<&str>,
    body: &[u8],
) -> UpstreamFailure {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let v = json.as_ref();
    let mut f = match wire {
        WireFormat::OpenAi => openai(status, v),
        WireFormat::Anthropic => from_anthropic(status, body, v),
        WireFormat::Gemini => from_google(status, body, v),
        WireFormat::Bedrock => from_bedrock(status, amzn_error_type, body, v),
    };
    f.message = f.message.map(|m| scrub(m.trim())).filter(|m| !m.is_empty());
    f.param = f.param.map(|p| scrub(&p)).filter(|p| !p.is_empty());
    f.code = f.code.as_deref().and_then(sanitize_code);
    f
}

/// Classifies an error that arrived inside a stream the upstream had already answered 2xx:
/// the event's JSON (Anthropic's `event: error` data, a Gemini or OpenAI-compatible
/// `{"error": …}` chunk) or, for Bedrock, a ConverseStream exception's `:exception-type`
/// (lowerCamelCase there: `throttlingException`) and payload. Read as [`classify`] reads an
/// error answer, with the status the event names (a `rate_limit_error`, `overloaded_error`
/// or `timeout_error` type, Gemini's `error.code`, an OpenAI-compatible `error.code` that is
/// a status), else 500; the status only decides when the event names no kind we know. The
/// message is scrubbed as [`classify`] scrubs it.
pub fn classify_stream_error(
    wire: WireFormat,
    exception_type: Option<&str>,
    payload: &[u8],
) -> UpstreamFailure {
    let v: Option<Value> = serde_json::from_slice(payload).ok();
    let status = v.as_ref().and_then(stream_status).unwrap_or(500);
    match (wire, exception_type) {
        (WireFormat::Bedrock, Some(t)) => {
            let mut name = String::with_capacity(t.len());
            let mut chars = t.chars();
            if let Some(first) = chars.next() {
                name.push(first.to_ascii_uppercase());
                name.extend(chars);
            }
            classify(wire, status, Some(&name), payload)
        }
        _ => classify(wire, status, None, payload),
    }
}

/// The HTTP status an in-stream error event names, if any: by its `type` when that is one of
/// the capacity kinds (an OpenAI-compatible gateway such as LiteLLM or gatehouse says
/// `overloaded_error` with code 503), else by a `code` that is a 4xx or 5xx.
fn stream_status(v: &Value) -> Option<u16> {
    let error = v.get("error").or_else(|| v.get(0)?.get("error"))?;
    let by_type = match error.get("type").and_then(Value::as_str) {
        Some("rate_limit_error" | "rate_limit_exceeded") => Some(429),
        Some("overloaded_error") => Some(529),
        Some("timeout_error") => Some(504),
        _ => None,
    };
    let code = error.get("code");
    by_type.or_else(|| {
        code.and_then(Value::as_u64)
            .or_else(|| code?.as_str()?.parse().ok())
            .and_then(|n| u16::try_from(n).ok())
            .filter(|s| (400..=599).contains(s))
    })
}

/// The kind an HTTP status means when the body names no code we know.
fn by_status(status: u16) -> FailureKind {
    match status {
        401 | 403 | 407 => FailureKind::Credentials,
        402 => FailureKind::Account,
        408 | 504 => FailureKind::Timeout,
        429 => FailureKind::RateLimited,
        529 => FailureKind::Overloaded,
        400..=499 => FailureKind::Rejected,
        _ => FailureKind::ServerError,
    }
}

/// A failure of `kind`, retryable by kind (conflicts and 5xx-class failures are; a server
/// error outside 5xx, such as a stray 3xx, is not).
fn failure(kind: FailureKind, status: u16) -> UpstreamFailure {
    let retryable = match kind {
        FailureKind::Rejected => status == 409,
        FailureKind::Credentials | FailureKind::Account => false,
        FailureKind::RateLimited | FailureKind::Overloaded | FailureKind::Timeout => true,
        FailureKind::ServerError => (500..=599).contains(&status),
    };
    UpstreamFailure {
        kind,
        status: if kind == FailureKind::Rejected {
            rejected_status(status)
        } else {
            status
        },
        message: None,
        param: None,
        code: None,
        retryable,
        retry_delay: None,
    }
}

/// The 4xx relayed for a rejected request: the upstream's own, unless it is one that means
/// something else to our clients (or not a 4xx at all), then 400.
fn rejected_status(status: u16) -> u16 {
    match status {
        401 | 402 | 403 | 407 | 408 | 429 => 400,
        400..=499 => status,
        _ => 400,
    }
}

/// A rejection with a fixed status (a provider code that says which).
fn rejected(status: u16) -> UpstreamFailure {
    let mut f = failure(FailureKind::Rejected, status);
    f.status = status;
    f
}

/// The message of an OpenAI-shaped (or loosely similar) error body: `error.message`,
/// `error` as a string (Ollama), or a top-level `message` (vLLM).
fn generic_message(v: Option<&Value>) -> Option<String> {
    let v = v?;
    let error = v.get("error");
    error
        .and_then(|e| e.get("message"))
        .or_else(|| error.filter(|e| e.is_string()))
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn openai(status: u16, v: Option<&Value>) -> UpstreamFailure {
    let error = v.and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("code").or_else(|| field("type"));
    let kind = match code.as_deref() {
        Some("insufficient_quota") => FailureKind::Account,
        _ => by_status(status),
    };
    let mut f = failure(kind, status);
    f.message = generic_message(v);
    f.param = field("param");
    f.code = code;
    f
}

fn from_anthropic(status: u16, body: &[u8], v: Option<&Value>) -> UpstreamFailure {
    let Some((message, kind)) = anthropic::error_message(body) else {
        let mut f = failure(by_status(status), status);
        f.message = generic_message(v);
        return f;
    };
    let spend_limit = v
        .and_then(|v| v.pointer("/error/details/error_code"))
        .and_then(Value::as_str)
        == Some("enforced_spend_limit_reached");
    let mut f = match kind.as_str() {
        "invalid_request_error" => failure(FailureKind::Rejected, status),
        "not_found_error" => rejected(404),
        "request_too_large" => rejected(413),
        "authentication_error" | "permission_error" => failure(FailureKind::Credentials, status),
        "billing_error" => failure(FailureKind::Account, status),
        "rate_limit_error" if spend_limit => failure(FailureKind::Account, status),
        "rate_limit_error" => failure(FailureKind::RateLimited, status),
        "overloaded_error" => failure(FailureKind::Overloaded, status),
        "timeout_error" => failure(FailureKind::Timeout, status),
        "api_error" => {
            let mut f = failure(FailureKind::ServerError, status);
            f.retryable = true;
            f
        }
        _ => failure(by_status(status), status),
    };
    f.message = Some(message);
    f.code = Some(if spend_limit {
        "enforced_spend_limit_reached".to_owned()
    } else {
        kind
    });
    f
}

/// `google.rpc.ErrorInfo.reason`s that mean the deployment's key or token was refused.
fn google_credential_reason(reason: &str) -> bool {
    reason.starts_with("API_KEY_")
        || reason.starts_with("ACCESS_TOKEN_")
        || matches!(
            reason,
            "CREDENTIALS_MISSING"
                | "SERVICE_DISABLED"
                | "CONSUMER_INVALID"
                | "CONSUMER_SUSPENDED"
                | "USER_PROJECT_DENIED"
                | "IAM_PERMISSION_DENIED"
                | "PERMISSION_DENIED"
        )
}

/// A `google.protobuf.Duration` in its JSON form (`"37s"`, `"0.5s"`).
fn google_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

fn from_google(status: u16, body: &[u8], v: Option<&Value>) -> UpstreamFailure {
    let Some((message, code)) = gemini::error_message(body) else {
        let mut f = failure(by_status(status), status);
        f.message = generic_message(v);
        return f;
    };
    // streamGenerateContent without alt=sse answers a JSON array.
    let details = v
        .and_then(|v| v.get("error").or_else(|| v.get(0)?.get("error")))
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let reason = details
        .iter()
        .find_map(|d| d.get("reason").and_then(Value::as_str));
    let retry_delay = details
        .iter()
        .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
        .and_then(google_duration);
    let mut f = match (reason, code.as_str()) {
        (Some(r), _) if google_credential_reason(r) => failure(FailureKind::Credentials, status),
        (Some("BILLING_DISABLED"), _) | (_, "FAILED_PRECONDITION") => {
            failure(FailureKind::Account, status)
        }
        (_, "INVALID_ARGUMENT" | "OUT_OF_RANGE") => failure(FailureKind::Rejected, status),
        (_, "NOT_FOUND") => rejected(404),
        (_, "ABORTED" | "ALREADY_EXISTS") => rejected(409),
        (_, "UNAUTHENTICATED" | "PERMISSION_DENIED") => failure(FailureKind::Credentials, status),
        (_, "RESOURCE_EXHAUSTED") => failure(FailureKind::RateLimited, status),
        (_, "UNAVAILABLE") => failure(FailureKind::Overloaded, status),
        (_, "DEADLINE_EXCEEDED") => failure(FailureKind::Timeout, status),
        (_, "INTERNAL" | "UNKNOWN" | "CANCELLED" | "DATA_LOSS") => {
            let mut f = failure(FailureKind::ServerError, status);
            f.retryable = true;
            f
        }
        _ => failure(by_status(status), status),
    };
    f.message = Some(message);
    f.code = Some(reason.map_or(code, str::to_owned));
    f.retry_delay = retry_delay;
    f
}

fn from_bedrock(
    status: u16,
    header: Option<&str>,
    body: &[u8],
    v: Option<&Value>,
) -> UpstreamFailure {
    // The header is authoritative; some answers carry the type in the body instead
    // (`"__type": "com.amazon.coral.service#UnrecognizedClientException"`).
    let kind_name = header.map(bedrock::error_type).or_else(|| {
        let t = v?.get("__type")?.as_str()?;
        Some(bedrock::error_type(t.rsplit('#').next().unwrap_or(t)))
    });
    let mut f = match kind_name.unwrap_or("") {
        "ValidationException" | "SerializationException" => failure(FailureKind::Rejected, status),
        "ResourceNotFoundException" => rejected(404),
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException"
        | "NotAuthorized"
        | "RequestExpired" => failure(FailureKind::Credentials, status),
        "OptInRequired" | "FTUFormNotFilled" => failure(FailureKind::Account, status),
        "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException" => {
            failure(FailureKind::RateLimited, status)
        }
        "ModelNotReadyException" | "ServiceUnavailableException" | "ServiceUnavailable" => {
            failure(FailureKind::Overloaded, status)
        }
        "ModelTimeoutException" => failure(FailureKind::Timeout, status),
        "InternalServerException" | "InternalFailure" | "ModelStreamErrorException" => {
            let mut f = failure(FailureKind::ServerError, status);
            f.retryable = true;
            f
        }
        "ModelErrorException" => {
            let mut f = failure(FailureKind::ServerError, status);
            f.retryable = false;
            f
        }
        _ => failure(by_status(status), status),
    };
    f.message = bedrock::error_message(body).or_else(|| generic_message(v));
    f.code = kind_name.filter(|k| !k.is_empty()).map(str::to_owned);
    f
}

/// A provider error code fit for a log field: `[A-Za-z0-9_.-]`, at most 64 characters.
pub(crate) fn sanitize_code(code: &str) -> Option<String> {
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(64)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

/// `text` with every URL replaced by `[url]`, every `key=` parameter's value, and every
/// string shaped like a Google API key (`AIza…`), an AWS access key id (`AKIA…`/`ASIA…`) or
/// a bearer token replaced by `***`. Upstream URLs carry our endpoints and, from a
/// misconfigured or URL-keyed upstream, our key; neither may reach a client.
pub fn scrub(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        // Every pattern starts with an ASCII byte, so `i` is a char boundary on a match, and
        // every match ends at an ASCII byte or at the end.
        if let Some((end, replacement)) = secret_at(b, i) {
            out.push_str(text.get(copied..i).unwrap_or_default());
            out.push_str(replacement);
            i = end;
            copied = end;
        } else {
            i += 1;
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

/// The end of a secret-looking run starting at `i`, and what replaces it.
fn secret_at(b: &[u8], i: usize) -> Option<(usize, &'static str)> {
    let rest = b.get(i..)?;
    let first = *rest.first()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let prev_is_word = i > 0 && b.get(i - 1).is_some_and(|p| p.is_ascii_alphanumeric());
    if starts_with_ci(rest, b"https://") || starts_with_ci(rest, b"http://") {
        let mut end = i + run_len(rest, |c| {
            !c.is_ascii_whitespace() && !b"\"'<>`".contains(&c)
        });
        // Sentence punctuation after a URL stays.
        while end > i && b.get(end - 1).is_some_and(|c| b".,;:!?)]}".contains(c)) {
            end -= 1;
        }
        return Some((end, "[url]"));
    }
    if !prev_is_word && starts_with_ci(rest, b"key=") {
        let value = rest.get(4..).unwrap_or_default();
        let len = run_len(value, |c| {
            !c.is_ascii_whitespace() && !b"&\"'<>`,;)]}".contains(&c)
        });
        if len > 0 {
            return Some((i + 4 + len, "key=***"));
        }
    }
    if !prev_is_word && starts_with_ci(rest, b"bearer ") {
        let value = rest.get(7..).unwrap_or_default();
        let len = run_len(value, |c| {
            c.is_ascii_alphanumeric() || b"-._~+/=".contains(&c)
        });
        if len > 0 {
            return Some((i + 7 + len, "Bearer ***"));
        }
    }
    if rest.starts_with(b"AIza") {
        let len = run_len(rest.get(4..).unwrap_or_default(), |c| {
            c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
        });
        if len >= 30 {
            return Some((i + 4 + len, "***"));
        }
    }
    if !prev_is_word && (rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA")) {
        let len = run_len(rest.get(4..).unwrap_or_default(), |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit()
        });
        if len >= 12 {
            return Some((i + 4 + len, "***"));
        }
    }
    None
}

fn starts_with_ci(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// How many leading bytes of `b` satisfy `keep`.
fn run_len(b: &[u8], keep: impl Fn(u8) -> bool) -> usize {
    b.iter().take_while(|&&c| keep(c)).count()
}

#[cfg(test)]
mod tests;
