//! Building HTTP responses: JSON, SSE and OpenAI-format errors.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::body::MockBody;

pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// A response with `content-type` and `x-request-id: req-mock-<id>`.
pub(crate) fn response(
    status: StatusCode,
    content_type: HeaderValue,
    body: MockBody,
    id: u64,
) -> Response<MockBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::try_from(format!("req-mock-{id}")) {
        headers.insert(X_REQUEST_ID, v);
    }
    resp
}

/// A 200 JSON response from already-serialised bytes.
pub(crate) fn json_bytes(bytes: impl Into<Bytes>, id: u64) -> Response<MockBody> {
    response(StatusCode::OK, JSON, MockBody::full(bytes), id)
}

/// A 200 JSON response serialising `value` (500 if that fails).
pub(crate) fn json<T: Serialize>(value: &T, id: u64) -> Response<MockBody> {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(bytes, id),
        Err(e) => internal_error(&e, id),
    }
}

/// A 200 `text/event-stream` response.
pub(crate) fn event_stream(body: MockBody, id: u64) -> Response<MockBody> {
    let mut resp = response(StatusCode::OK, EVENT_STREAM, body, id);
    resp.headers_mut().insert(CACHE_CONTROL, NO_CACHE);
    resp
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorObject<'a>,
}

/// OpenAI's `Error` object.
#[derive(Serialize)]
struct ErrorObject<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// An OpenAI-format error: `{"error":{"message","type","param","code":null}}`.
pub(crate) fn error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    id: u64,
) -> Response<MockBody> {
    let body = ErrorBody {
        error: ErrorObject {
            message,
            kind,
            param,
            code: None,
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
        br#"{"error":{"message":"mock error","type":"server_error","param":null,"code":null}}"#
            .to_vec()
    });
    response(status, JSON, MockBody::full(bytes), id)
}

/// 400 `invalid_request_error`.
pub(crate) fn bad_request(message: &str, param: Option<&str>, id: u64) -> Response<MockBody> {
    error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        id,
    )
}

/// 400 for a body that is not the JSON we expect.
pub(crate) fn unparsable(err: &serde_json::Error, id: u64) -> Response<MockBody> {
    bad_request(
        &format!("We could not parse the JSON body of your request: {err}"),
        None,
        id,
    )
}

/// 404 in OpenAI's format.
pub(crate) fn not_found(method: &str, path: &str, id: u64) -> Response<MockBody> {
    error(
        StatusCode::NOT_FOUND,
        &format!("Invalid URL ({method} {path})"),
        "invalid_request_error",
        None,
        id,
    )
}

/// 500 for a failure inside the mock itself.
pub(crate) fn internal_error(err: &dyn std::fmt::Display, id: u64) -> Response<MockBody> {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("mock internal error: {err}"),
        "server_error",
        None,
        id,
    )
}

/// OpenAI's error `type` for an HTTP status.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    }
}

/// The reply to a scripted failure: `mock error <status>`, plus `retry-after`.
pub(crate) fn scripted_error(
    status: StatusCode,
    retry_after: Option<&str>,
    id: u64,
) -> Response<MockBody> {
    let mut resp = error(
        status,
        &format!("mock error {}", status.as_u16()),
        error_type(status),
        None,
        id,
    );
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(resp: Response<MockBody>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn error_types() {
        let t = |s: u16| error_type(StatusCode::from_u16(s).unwrap());
        assert_eq!(t(400), "invalid_request_error");
        assert_eq!(t(401), "authentication_error");
        assert_eq!(t(403), "permission_error");
        assert_eq!(t(404), "not_found_error");
        assert_eq!(t(429), "rate_limit_error");
        assert_eq!(t(500), "server_error");
        assert_eq!(t(503), "server_error");
        assert_eq!(t(409), "invalid_request_error");
    }

    #[tokio::test]
    async fn scripted_error_shape() {
        let resp = scripted_error(StatusCode::TOO_MANY_REQUESTS, Some("2"), 7);
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "2");
        assert_eq!(resp.headers()["x-request-id"], "req-mock-7");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(
            body_json(resp).await,
            serde_json::json!({"error": {"message": "mock error 429", "type": "rate_limit_error", "param": null, "code": null}})
        );
    }

    #[tokio::test]
    async fn bad_request_param() {
        let v = body_json(bad_request("missing", Some("model"), 1)).await;
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
}
