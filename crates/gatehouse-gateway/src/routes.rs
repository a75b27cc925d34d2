//! The HTTP surface: which path goes to which handler.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;

use crate::Gateway;
use crate::error::{ApiError, cap};
use crate::proxy;

/// The router for a gateway.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(proxy::chat_completions))
        .route("/chat/completions", post(proxy::chat_completions))
        .route("/v1/messages", post(proxy::messages))
        .route("/v1/messages/count_tokens", post(proxy::count_tokens))
        .route("/v1/embeddings", post(proxy::embeddings))
        .route("/embeddings", post(proxy::embeddings))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/health/liveliness", get(liveliness))
        .route("/health/liveness", get(liveliness))
        .route("/health/readiness", get(readiness))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gw)
}

fn json(status: StatusCode, body: Bytes) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `GET /v1/models`: the configured model names.
async fn models(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    if let Err(e) = gw.auth.check(req.headers()) {
        tracing::warn!(
            reason = e.kind(),
            path = "/v1/models",
            "authentication failed"
        );
        return e.into_response();
    }
    json(StatusCode::OK, gw.router.models_json())
}

/// `GET /health/liveliness`: the process is up (LiteLLM's spelling and answer).
async fn liveliness() -> Response {
    json(StatusCode::OK, Bytes::from_static(b"\"I'm alive!\""))
}

/// `GET /health/readiness`: ready to take traffic; 503 while draining for shutdown.
async fn readiness(State(gw): State<Arc<Gateway>>) -> Response {
    if gw.is_draining() {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(br#"{"status":"draining"}"#),
        );
    }
    let body = concat!(
        r#"{"status":"healthy","db":"Not connected","cache":null,"litellm_version":null,"gatehouse_version":""#,
        env!("CARGO_PKG_VERSION"),
        r#""}"#
    );
    json(StatusCode::OK, Bytes::from_static(body.as_bytes()))
}

async fn not_found(req: Request) -> Response {
    ApiError::NotFound {
        path: cap(req.uri().path()),
    }
    .into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}
