//! Every client-visible failure, mapped to a status and an OpenAI-format body in one place.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gatehouse_wire::ErrorBody;
use http::{HeaderValue, StatusCode, header};

/// An error the gateway answers with. Bodies never carry internal details or secrets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No key in any of the accepted headers.
    #[error(
        "Authentication Error, no API key passed in. Send it as `Authorization: Bearer <key>`."
    )]
    MissingKey,
    /// A key that is not valid.
    #[error("Authentication Error, invalid API key.")]
    InvalidKey,
    /// The body is larger than `max_request_size_mb`.
    #[error("Request body too large: the limit is {limit_mb} MB.")]
    BodyTooLarge {
        /// The limit, in MB, for the message.
        limit_mb: f64,
    },
    /// The client did not send its body in time.
    #[error("Timed out reading the request body.")]
    BodyTimeout,
    /// The body could not be read (the client went away or sent a broken transfer).
    #[error("Could not read the request body.")]
    BodyUnreadable,
    /// A malformed or invalid request.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The offending field.
        param: Option<String>,
    },
    /// The requested model is not configured.
    #[error(
        "Invalid model name passed in model={model}. Call /v1/models to view available models."
    )]
    UnknownModel {
        /// The name the client asked for (already length-capped).
        model: String,
    },
    /// No route.
    #[error("Not found: {path}")]
    NotFound {
        /// The path asked for (length-capped).
        path: String,
    },
    /// Route exists, method does not.
    #[error("Method not allowed.")]
    MethodNotAllowed,
    /// The upstream answered with a client error about the request; relayed with its message.
    #[error("{message}")]
    UpstreamRejected {
        /// The upstream's status: a 4xx other than 401, 402, 403, 407, 408 and 429, which
        /// mean our credentials, our account, a timeout or a rate limit instead.
        status: StatusCode,
        /// The upstream's message, scrubbed of our credentials.
        message: String,
        /// The upstream's `param`, if it named one.
        param: Option<String>,
    },
    /// The upstream rate-limited us and retries did not help.
    #[error("The upstream provider is rate limiting requests; retry later.")]
    UpstreamRateLimited {
        /// `retry-after` to pass on, in whole seconds.
        retry_after: Option<u64>,
    },
    /// The upstream is overloaded (Anthropic's 529 `overloaded_error`, Gemini's `UNAVAILABLE`,
    /// Bedrock's `ServiceUnavailableException` / `ModelNotReadyException`) and retries did not
    /// help: 503 here, 529 `overloaded_error` to Anthropic clients (which retry on it).
    #[error("The upstream provider is overloaded; retry later.")]
    UpstreamOverloaded {
        /// `retry-after` to pass on, in whole seconds.
        retry_after: Option<u64>,
    },
    /// The upstream failed (5xx, refused our credentials, bad response, connection failure).
    #[error("{0}")]
    UpstreamFailed(String),
    /// The upstream did not answer in time.
    #[error("The upstream provider did not respond in time.")]
    UpstreamTimeout,
    /// The gateway is shutting down.
    #[error("The gateway is shutting down; retry on another replica.")]
    ShuttingDown,
    /// The key is blocked (`/key/block`), or its team is.
    #[error("Authentication Error, this API key is blocked.")]
    KeyBlocked,
    /// The key's `duration` has run out.
    #[error("Authentication Error, this API key has expired.")]
    KeyExpired,
    /// The key (or its team) may not use this model.
    #[error(
        "Authentication Error, API key not allowed to access model. This key can only access models={allowed}. Tried to access {model}."
    )]
    ModelNotAllowed {
        /// The model asked for (length-capped).
        model: String,
        /// The allowed list, for the message.
        allowed: String,
    },
    /// A virtual key tried an admin route, or the admin API is off (no master key).
    #[error("{0}")]
    Forbidden(String),
    /// A rate limit of the key, team or deployment.
    #[error("Rate limit exceeded: {message}")]
    RateLimited {
        /// Which limit.
        message: String,
        /// Seconds until it may be retried.
        retry_after: u64,
    },
    /// The key's, user's or team's budget cannot pay for the request.
    #[error("Budget has been exceeded: {0}")]
    BudgetExceeded(String),
    /// The key store is unreachable and this key is not in the recent-key cache.
    #[error("The key store is unavailable; retry shortly.")]
    StoreUnavailable,
    /// Redis (the shared budget counters) is unreachable and `budget_fallback` is `refuse`:
    /// a request that a budget applies to cannot be checked against it.
    #[error(
        "Budgets cannot be checked right now (the shared counter store is unreachable), so requests with a budget are refused; retry shortly."
    )]
    BudgetsUnavailable {
        /// Seconds until the counters are tried again.
        retry_after: u64,
    },
    /// Spend records cannot be buffered (store down for long); refuse rather than lose them.
    #[error("Spend accounting is backed up; retry shortly.")]
    AccountingBackedUp,
    /// Something on gatehouse's side failed; details are in the log, not here.
    #[error("Internal error: {0}")]
    Internal(&'static str),
}

impl ApiError {
    /// The HTTP status. One exhaustive match: a new variant forces a decision here.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingKey
            | ApiError::InvalidKey
            | ApiError::KeyBlocked
            | ApiError::KeyExpired
            | ApiError::ModelNotAllowed { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } | ApiError::BudgetExceeded(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::StoreUnavailable
            | ApiError::AccountingBackedUp
            | ApiError::BudgetsUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyUnreadable
            | ApiError::BadRequest { .. }
            | ApiError::UnknownModel { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UpstreamRejected { status, .. } => *status,
            ApiError::UpstreamRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UpstreamOverloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UpstreamFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `type` field of the body; also the low-cardinality label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::MissingKey
            | ApiError::InvalidKey
            | ApiError::KeyBlocked
            | ApiError::KeyExpired
            | ApiError::Forbidden(_) => "auth_error",
            ApiError::ModelNotAllowed { .. } => "key_model_access_denied",
            ApiError::RateLimited { .. } => "rate_limit_error",
            ApiError::BudgetExceeded(_) => "budget_exceeded",
            ApiError::StoreUnavailable
            | ApiError::AccountingBackedUp
            | ApiError::BudgetsUnavailable { .. } => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
            ApiError::BodyTooLarge { .. }
            | ApiError::BodyTimeout
            | ApiError::BodyUnreadable
            | ApiError::BadRequest { .. }
            | ApiError::UnknownModel { .. }
            | ApiError::MethodNotAllowed => "invalid_request_error",
            ApiError::NotFound { .. } => "not_found_error",
            ApiError::UpstreamRejected { status, .. } => match status.as_u16() {
                404 => "not_found_error",
                _ => "invalid_request_error",
            },
            ApiError::UpstreamRateLimited { .. } => "rate_limit_error",
            ApiError::UpstreamOverloaded { .. } => "overloaded_error",
            ApiError::UpstreamFailed(_) => "upstream_error",
            ApiError::UpstreamTimeout => "timeout_error",
            ApiError::ShuttingDown => "service_unavailable",
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { param, .. } | ApiError::UpstreamRejected { param, .. } => {
                param.as_deref()
            }
            ApiError::UnknownModel { .. } | ApiError::ModelNotAllowed { .. } => Some("model"),
            _ => None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Bytes {
        let message = self.to_string();
        let status = self.status();
        ErrorBody {
            message: &message,
            kind: self.kind(),
            param: self.param(),
            code: status.as_str(),
        }
        .to_json()
        .into()
    }
}

impl ApiError {
    /// The status an Anthropic client is told: [`status`](Self::status), except 529 for an
    /// overloaded upstream — Anthropic's own status, on which Anthropic clients retry
    /// (OpenAI clients get 503).
    pub fn anthropic_status(&self) -> StatusCode {
        match self {
            ApiError::UpstreamOverloaded { .. } => StatusCode::from_u16(ANTHROPIC_OVERLOADED)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            _ => self.status(),
        }
    }

    /// `true` for refusals that can be answered before the request body is read (auth,
    /// key state, draining, body limits). See [`close_unread`].
    pub fn may_leave_body_unread(&self) -> bool {
        matches!(
            self,
            ApiError::MissingKey
                | ApiError::InvalidKey
                | ApiError::KeyBlocked
                | ApiError::KeyExpired
                | ApiError::Forbidden(_)
                | ApiError::StoreUnavailable
                | ApiError::ShuttingDown
                | ApiError::BodyTooLarge { .. }
                | ApiError::BodyTimeout
                | ApiError::BodyUnreadable
        )
    }
}

/// Anthropic's status for an overloaded API.
const ANTHROPIC_OVERLOADED: u16 = 529;

static CONNECTION_CLOSE: HeaderValue = HeaderValue::from_static("close");

/// Marks an HTTP/1 answer sent before its request body was read with `connection: close`.
/// hyper cannot reuse such a connection (the unread body is still on the wire) and closes
/// it after the answer; without the header a keep-alive client may already have sent its
/// next request on it and sees "server disconnected" instead of an answer.
pub fn close_unread(res: &mut Response, version: http::Version) {
    if version < http::Version::HTTP_2 {
        res.headers_mut()
            .insert(header::CONNECTION, CONNECTION_CLOSE.clone());
    }
}

/// Caps a client-supplied string before it is echoed in an error message or a log line.
pub(crate) fn cap(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status(), self.body()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let ApiError::UpstreamRateLimited {
            retry_after: Some(secs),
        }
        | ApiError::UpstreamOverloaded {
            retry_after: Some(secs),
        }
        | ApiError::RateLimited {
            retry_after: secs, ..
        }
        | ApiError::BudgetsUnavailable { retry_after: secs } = self
        {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_openai_envelope_with_code_as_string() {
        let e = ApiError::BadRequest {
            message: "`messages` must not be empty".into(),
            param: Some("messages".into()),
        };
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "400");
        assert_eq!(v["error"]["param"], "messages");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn caps_long_input() {
        let long = "é".repeat(300);
        assert!(cap(&long).chars().count() <= 101);
    }
}
