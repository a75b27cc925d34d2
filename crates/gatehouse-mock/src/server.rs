//! Accept loop, routing and request recording.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::anthropic::{self, Op};
use crate::body::MockBody;
use crate::state::MockState;
use crate::{MockOptions, RecordedRequest, chat, embeddings, reply};

/// `GET /v1/models`, prebuilt.
const MODELS: &[u8] = br#"{"object":"list","data":[{"id":"mock-model","object":"model","created":1700000000,"owned_by":"mock"}]}"#;

/// Path of the control endpoint (`GET` lists recorded requests, `DELETE` clears).
const CONTROL_REQUESTS: &str = "/_mock/requests";

struct Ctx {
    state: Arc<MockState>,
    record: bool,
}

/// Serves the mock on an already-bound listener until the future is dropped;
/// dropping it also closes every open connection. Each connection speaks
/// HTTP/1.1 (keep-alive) or HTTP/2 (prior knowledge). `state` holds the request
/// log and counters; keep a clone to read [`MockState::requests`].
///
/// Accept errors (e.g. out of file descriptors) are retried after a short
/// pause, so this only returns if it is dropped.
pub async fn serve(
    listener: TcpListener,
    opts: MockOptions,
    state: Arc<MockState>,
) -> io::Result<()> {
    let ctx = Arc::new(Ctx {
        state,
        record: opts.record,
    });
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Small SSE frames must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let ctx = Arc::clone(&ctx);
                    let builder = Arc::clone(&builder);
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let ctx = Arc::clone(&ctx);
                            async move { Ok::<_, Infallible>(handle(req, &ctx).await) }
                        });
                        // Connection errors (client went away, aborted stream) are normal here.
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                Err(e) => {
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Where a request goes.
#[derive(Debug, PartialEq)]
enum Route<'a> {
    Chat(Option<&'a str>),
    Embeddings(Option<&'a str>),
    /// Anthropic's Messages API.
    Messages(Op),
    /// Bedrock Runtime `converse` (`true`: `converse-stream`).
    Bedrock(bool),
    /// Bedrock Runtime `invoke` (embedding models), with the (encoded) model id.
    BedrockInvoke(&'a str),
    /// Google's Gemini API: the `{model}:{method}` after `/v1beta/models/`.
    Gemini(&'a str),
    /// Vertex AI: the `{model}:{method}` after `/v1/projects/{p}/locations/{l}/publishers/google/models/`.
    Vertex(&'a str),
    /// Claude on Vertex AI: the `{model}:{method}` after `…/publishers/anthropic/models/`.
    VertexAnthropic(&'a str),
    /// The OAuth2 token endpoint (`POST /token`).
    Token,
    Models,
    NotFound,
}

fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let post = method == Method::POST;
    match path {
        "/v1/chat/completions" | "/chat/completions" if post => Route::Chat(None),
        "/v1/embeddings" | "/embeddings" if post => Route::Embeddings(None),
        "/v1/messages" if post => Route::Messages(Op::Create),
        "/v1/messages/count_tokens" if post => Route::Messages(Op::CountTokens),
        "/v1/models" | "/models" if method == Method::GET => Route::Models,
        "/token" if post => Route::Token,
        _ if post && path.starts_with("/v1/projects/") => {
            match crate::vertex::publisher_model_method(path) {
                Some(("google", rest)) => Route::Vertex(rest),
                Some(("anthropic", rest)) => Route::VertexAnthropic(rest),
                _ => Route::NotFound,
            }
        }
        _ if post && path.starts_with(crate::gemini::PATH_PREFIX) => {
            Route::Gemini(path.get(crate::gemini::PATH_PREFIX.len()..).unwrap_or(""))
        }
        _ if post && path.starts_with("/model/") => match path.rsplit_once('/') {
            Some((m, "converse")) if m.len() > "/model/".len() => Route::Bedrock(false),
            Some((m, "converse-stream")) if m.len() > "/model/".len() => Route::Bedrock(true),
            Some((m, "invoke")) if m.len() > "/model/".len() => {
                Route::BedrockInvoke(m.get("/model/".len()..).unwrap_or(""))
            }
            _ => Route::NotFound,
        },
        _ if post => {
            let Some((deployment, op)) = path
                .strip_prefix("/openai/deployments/")
                .and_then(|rest| rest.split_once('/'))
                .filter(|(d, _)| !d.is_empty())
            else {
                return Route::NotFound;
            };
            match op {
                "chat/completions" => Route::Chat(Some(deployment)),
                "embeddings" => Route::Embeddings(Some(deployment)),
                _ => Route::NotFound,
            }
        }
        _ => Route::NotFound,
    }
}

/// True if the query has a non-empty `api-version`.
fn has_api_version(query: Option<&str>) -> bool {
    query.unwrap_or("").split('&').any(|kv| {
        kv.strip_prefix("api-version=")
            .is_some_and(|v| !v.is_empty())
    })
}

async fn handle(req: Request<Incoming>, ctx: &Ctx) -> Response<MockBody> {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == CONTROL_REQUESTS {
        return control(&parts.method, ctx);
    }
    let id = ctx.state.next_id();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return reply::bad_request(&format!("could not read the request body: {e}"), None, id);
        }
    };
    if ctx.record {
        ctx.state.record(recorded(&parts, &bytes));
    }
    let path = parts.uri.path();
    let route = route(&parts.method, path);
    if !matches!(route, Route::Token | Route::Models | Route::NotFound)
        && let Some(resp) = raw_error(&bytes, id, &ctx.state)
    {
        return resp;
    }
    match route {
        Route::Chat(deployment) | Route::Embeddings(deployment)
            if deployment.is_some() && !has_api_version(parts.uri.query()) =>
        {
            reply::bad_request(
                "Missing required query parameter 'api-version'",
                Some("api-version"),
                id,
            )
        }
        Route::Chat(deployment) => chat::handle(&bytes, deployment, id, &ctx.state).await,
        Route::Embeddings(deployment) => {
            embeddings::handle(&bytes, deployment, id, &ctx.state).await
        }
        Route::Messages(op) => anthropic::handle(op, &parts.headers, &bytes, id, &ctx.state).await,
        Route::Bedrock(stream) => {
            crate::bedrock::handle(stream, &parts, &bytes, id, &ctx.state).await
        }
        Route::BedrockInvoke(model) => {
            crate::bedrock::invoke(model, &parts, &bytes, id, &ctx.state)
        }
        Route::Gemini(rest) => {
            let query = parts.uri.query();
            let api = crate::gemini::Api::Gemini;
            crate::gemini::handle(api, rest, query, &parts.headers, &bytes, id, &ctx.state).await
        }
        Route::Vertex(rest) => {
            if let Some(resp) = crate::vertex::check_bearer(&parts.headers, id, &ctx.state) {
                return resp;
            }
            let api = crate::gemini::Api::Vertex;
            let query = parts.uri.query();
            crate::gemini::handle(api, rest, query, &parts.headers, &bytes, id, &ctx.state).await
        }
        Route::VertexAnthropic(rest) => {
            if let Some(resp) = crate::vertex::check_bearer(&parts.headers, id, &ctx.state) {
                return resp;
            }
            anthropic::handle_vertex(rest, &bytes, id, &ctx.state).await
        }
        Route::Token => crate::vertex::token(&parts.headers, &bytes, id, &ctx.state),
        Route::Models => reply::json_bytes(Bytes::from_static(MODELS), id),
        Route::NotFound => reply::not_found(parts.method.as_str(), path, id),
    }
}

/// `mock.raw_error`: a provider's error answer exactly as given, whatever the route's wire
/// format (`mock.status` answers in the route's own shape). Read from the body's `mock`, or,
/// for Bedrock, `additionalModelRequestFields.mock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawError {
    /// The HTTP status (any, 100..=999).
    status: u16,
    /// The body: a string is sent as it is, anything else as JSON.
    #[serde(default)]
    body: serde_json::Value,
    /// Extra response headers (`x-amzn-errortype`, `retry-after`, …).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Fail only the first `fail_times` requests carrying `key` (default: every one).
    fail_times: Option<u32>,
    /// The `fail_times` counter key (default `""`).
    #[serde(default)]
    key: String,
}

/// The scripted raw error for this request, if it has one and it is due; a malformed
/// `raw_error` is a 400 naming the problem.
fn raw_error(body: &[u8], id: u64, state: &MockState) -> Option<Response<MockBody>> {
    const NEEDLE: &[u8] = b"\"raw_error\"";
    // Cheap test first: most requests script nothing.
    if !body.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let script = v
        .get("mock")
        .or_else(|| v.get("additionalModelRequestFields")?.get("mock"))?
        .get("raw_error")?;
    let raw: RawError = match serde_json::from_value(script.clone()) {
        Ok(r) => r,
        Err(e) => {
            return Some(reply::bad_request(
                &format!("mock.raw_error: {e}"),
                None,
                id,
            ));
        }
    };
    let Ok(status) = StatusCode::from_u16(raw.status) else {
        return Some(reply::bad_request(
            "mock.raw_error.status is not an HTTP status code",
            None,
            id,
        ));
    };
    if let Some(times) = raw.fail_times
        && !state.should_fail(&raw.key, times)
    {
        return None;
    }
    let bytes = match raw.body {
        serde_json::Value::String(s) => s.into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let mut resp = reply::response(status, reply::JSON, MockBody::full(bytes), id);
    for (name, value) in raw.headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::try_from(name.as_str()),
            http::HeaderValue::try_from(value.as_str()),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    Some(resp)
}

/// `GET /_mock/requests` lists, `DELETE` clears. Control calls are not recorded
/// and do not advance the request counter (their `x-request-id` is `req-mock-0`).
fn control(method: &Method, ctx: &Ctx) -> Response<MockBody> {
    let id = 0;
    match *method {
        Method::GET => reply::json(&ctx.state.requests(), id),
        Method::DELETE => reply::json(&serde_json::json!({ "cleared": ctx.state.clear() }), id),
        _ => reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} is not supported on {CONTROL_REQUESTS}"),
            "invalid_request_error",
            None,
            id,
        ),
    }
}

fn recorded(parts: &Parts, body: &Bytes) -> RecordedRequest {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    // HTTP/2 carries the host in the `:authority` pseudo-header.
    if let Some(authority) = parts.uri.authority() {
        headers
            .entry("host".to_owned())
            .or_insert_with(|| authority.to_string());
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let body = serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()));
    RecordedRequest {
        method: parts.method.to_string(),
        path,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let post = Method::POST;
        assert_eq!(route(&post, "/v1/chat/completions"), Route::Chat(None));
        assert_eq!(route(&post, "/chat/completions"), Route::Chat(None));
        assert_eq!(
            route(&post, "/openai/deployments/gpt4o/chat/completions"),
            Route::Chat(Some("gpt4o"))
        );
        assert_eq!(route(&post, "/v1/embeddings"), Route::Embeddings(None));
        assert_eq!(
            route(&post, "/openai/deployments/emb/embeddings"),
            Route::Embeddings(Some("emb"))
        );
        assert_eq!(route(&post, "/v1/messages"), Route::Messages(Op::Create));
        assert_eq!(
            route(&post, "/v1/messages/count_tokens"),
            Route::Messages(Op::CountTokens)
        );
        assert_eq!(route(&Method::GET, "/v1/messages"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/v1/models"), Route::Models);
        assert_eq!(route(&Method::GET, "/models"), Route::Models);
        assert_eq!(route(&Method::GET, "/v1/chat/completions"), Route::NotFound);
        assert_eq!(
            route(&post, "/openai/deployments//chat/completions"),
            Route::NotFound
        );
        assert_eq!(
            route(&post, "/openai/deployments/x/completions"),
            Route::NotFound
        );
        assert_eq!(route(&post, "/v2/chat/completions"), Route::NotFound);
        assert_eq!(
            route(
                &post,
                "/v1/projects/p/locations/us-central1/publishers/google/models/g:generateContent"
            ),
            Route::Vertex("g:generateContent")
        );
        assert_eq!(
            route(
                &post,
                "/v1/projects/p/locations/l/publishers/anthropic/models/c:rawPredict"
            ),
            Route::VertexAnthropic("c:rawPredict")
        );
        assert_eq!(
            route(
                &post,
                "/v1/projects/p/locations/l/publishers/meta/models/llama:rawPredict"
            ),
            Route::NotFound
        );
        assert_eq!(route(&post, "/token"), Route::Token);
    }

    #[test]
    fn raw_errors() {
        let state = MockState::new();
        let body = |v: serde_json::Value| v.to_string().into_bytes();
        assert!(
            raw_error(
                &body(serde_json::json!({"mock": {"status": 500}})),
                1,
                &state
            )
            .is_none()
        );
        let r = raw_error(
            &body(serde_json::json!({"mock": {"raw_error": {"status": 403,
                "body": {"message": "The security token included in the request is invalid."},
                "headers": {"x-amzn-errortype": "UnrecognizedClientException"}}}})),
            1,
            &state,
        )
        .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers()["x-amzn-errortype"],
            "UnrecognizedClientException"
        );
        match r.body() {
            MockBody::Full(Some(b)) => assert_eq!(
                &b[..],
                br#"{"message":"The security token included in the request is invalid."}"#
            ),
            other => panic!("{other:?}"),
        }
        // Bedrock carries unknown fields in additionalModelRequestFields; strings go raw.
        let r = raw_error(
            &body(serde_json::json!({"additionalModelRequestFields": {"mock": {"raw_error": {"status": 502, "body": "<html>"}}}})),
            1,
            &state,
        )
        .unwrap();
        assert_eq!(r.status(), 502);
        assert!(matches!(r.body(), MockBody::Full(Some(b)) if &b[..] == b"<html>"));
        // fail_times counts per key.
        let once = body(
            serde_json::json!({"mock": {"raw_error": {"status": 429, "fail_times": 1, "key": "raw-once"}}}),
        );
        assert!(raw_error(&once, 1, &state).is_some());
        assert!(raw_error(&once, 1, &state).is_none());
        // Malformed scripts are refused, by name.
        let bad = raw_error(
            &body(serde_json::json!({"mock": {"raw_error": {"status": 42}}})),
            1,
            &state,
        )
        .unwrap();
        assert_eq!(bad.status(), 400);
        let bad = raw_error(
            &body(serde_json::json!({"mock": {"raw_error": {"stat": 400}}})),
            1,
            &state,
        )
        .unwrap();
        assert_eq!(bad.status(), 400);
    }

    #[test]
    fn api_version() {
        assert!(has_api_version(Some("api-version=2024-10-21")));
        assert!(has_api_version(Some("a=b&api-version=1")));
        assert!(!has_api_version(Some("api-version=")));
        assert!(!has_api_version(Some("xapi-version=1")));
        assert!(!has_api_version(None));
    }

    #[test]
    fn models_body_is_valid() {
        let v: serde_json::Value = serde_json::from_slice(MODELS).unwrap();
        assert_eq!(v["data"][0]["id"], "mock-model");
    }

    #[test]
    fn records_headers_and_body() {
        let req = Request::builder()
            .method("POST")
            .uri("http://127.0.0.1:1/v1/embeddings?x=1")
            .header("Authorization", "Bearer k")
            .header("x-multi", "a")
            .header("x-multi", "b")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let r = recorded(&parts, &Bytes::from_static(br#"{"a":1}"#));
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/embeddings?x=1");
        assert_eq!(r.headers["authorization"], "Bearer k");
        assert_eq!(r.headers["x-multi"], "a, b");
        assert_eq!(r.headers["host"], "127.0.0.1:1");
        assert_eq!(r.body, serde_json::json!({"a": 1}));
        let r = recorded(&parts, &Bytes::from_static(b"not json"));
        assert_eq!(r.body, serde_json::json!("not json"));
    }
}
