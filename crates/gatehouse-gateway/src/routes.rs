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
use crate::keys::Caller;
use crate::{admin, proxy};

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
        .route("/key/generate", post(admin::key_generate))
        .route("/key/update", post(admin::key_update))
        .route("/key/delete", post(admin::key_delete))
        .route("/key/info", get(admin::key_info))
        .route("/key/list", get(admin::key_list))
        .route("/key/regenerate", post(admin::key_regenerate))
        .route("/key/{key}/regenerate", post(admin::key_regenerate))
        .route("/key/block", post(admin::key_block))
        .route("/key/unblock", post(admin::key_unblock))
        .route("/user/new", post(admin::user_new))
        .route("/user/info", get(admin::user_info))
        .route("/team/new", post(admin::team_new))
        .route("/team/info", get(admin::team_info))
        .route("/spend/logs", get(admin::spend_logs))
        .route("/spend/logs/ui", get(admin::spend_logs_ui))
        .route("/global/spend", get(admin::global_spend))
        .route("/model/info", get(admin::model_info))
        .route("/v1/model/info", get(admin::model_info))
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
    match gw.accounts.keys.verify(req.headers()).await {
        Err(e) => {
            tracing::warn!(
                reason = e.kind(),
                path = "/v1/models",
                "authentication failed"
            );
            e.into_response()
        }
        Ok(Caller::Key(k)) => {
            if let Err(e) = k.check_usable(crate::accounting::now_ms()) {
                return e.into_response();
            }
            json(
                StatusCode::OK,
                gw.router.models_json_filtered(|m| k.allows_model(m)),
            )
        }
        Ok(Caller::Open | Caller::Master) => json(StatusCode::OK, gw.router.models_json()),
    }
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
