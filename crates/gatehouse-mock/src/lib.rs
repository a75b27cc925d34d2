//! `gatehouse-mock`: a mock LLM provider that speaks OpenAI's wire format (and
//! Anthropic's Messages API).
//!
//! It answers `POST /v1/chat/completions` (plain and streamed, with tool calls),
//! `POST /v1/embeddings` and `GET /v1/models` — plus the un-prefixed and Azure
//! (`/openai/deployments/{d}/…?api-version=…`) spellings of the first two — with
//! deterministic replies, so gateway tests can assert on exact content.
//!
//! Behaviour can be scripted per request with a `mock` object in the JSON body
//! (the gateway passes unknown fields through). All fields are optional:
//!
//! | field | effect |
//! |---|---|
//! | `status` | reply with this HTTP status and an OpenAI error body (`mock error <status>`) |
//! | `fail_times`, `key` | only the first `fail_times` requests carrying `key` (default `""`) fail (status default 500) |
//! | `retry_after` | `retry-after` header on error replies |
//! | `delay_ms` | wait before sending response headers |
//! | `chunks`, `chunk_delay_ms` | streamed content pieces (default 3) and the delay between frames; with a delay each frame is its own socket write |
//! | `fail_after_chunks` | break the stream (abort the transfer) after this many frames |
//! | `content` | reply text override |
//! | `model` | the model the reply reports (OpenAI and Anthropic `model`, Gemini `modelVersion`) instead of the requested one, as providers report a dated version of an alias |
//! | `parallel` | call the first two tools (unless `parallel_tool_calls` is false) |
//! | `usage` | `{prompt_tokens, completion_tokens}` overrides (Anthropic: also spelled `input_tokens`, `output_tokens`, plus `cache_creation_input_tokens`, `cache_read_input_tokens`); reported completion tokens never exceed the request's `max_tokens` (chat: times its `n`) |
//! | `redacted_thinking` | Anthropic and Bedrock, with `thinking` enabled: a `redacted_thinking` block (Bedrock: `redactedContent`) after the thinking |
//! | `thinking_blocks` | Bedrock, with `thinking` enabled: this many signed reasoning blocks (default 1) |
//! | `stream_error` | Anthropic, Gemini and Bedrock streams: the provider's error event right after the first content delta (Anthropic `overloaded_error`, Gemini 503 `UNAVAILABLE`, Bedrock `throttlingException`), then the body ends cleanly |
//! | `stream_error_message` | with `stream_error`: that event's message instead of the default |
//! | `stream_error_type` | with `stream_error`, Anthropic and Bedrock: the error's `error.type` / `:exception-type` instead of the default |
//! | `raw_error` | `{status, body, headers, fail_times, key}`: answer with exactly this status, body (a string as is, else JSON) and headers, whatever the route's wire format — a provider's real error answer (Bedrock: also read from `additionalModelRequestFields.mock`); `fail_times`/`key` as above |
//!
//! Default replies: chat answers `"Hello from mock: " + <last user message text>`
//! (or calls the first tool, with placeholder arguments for its required
//! parameters, when `tools` are given; or `"Hello from mock: tool said …"` after a
//! tool result); embeddings are unit vectors hashed from the input (8 dimensions
//! unless `dimensions` is given; base64 of little-endian `f32` with
//! `encoding_format: "base64"`). Azure paths require `?api-version=` and use the
//! deployment as the model when the body has none.
//!
//! ## Anthropic Messages API
//!
//! `POST /v1/messages` speaks Anthropic's wire format. It requires non-empty
//! `x-api-key` (else 401 `authentication_error`) and `anthropic-version` (else
//! 400) headers, and a body with a `model` string, an integer `max_tokens` and a
//! non-empty `messages` array of `user`/`assistant` messages (else 400
//! `invalid_request_error`). Errors, scripted ones included, have Anthropic's
//! shape `{"type":"error","error":{"type","message"},"request_id"}` with the
//! type following the status (400 `invalid_request_error`, 401
//! `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
//! `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 504
//! `timeout_error`, 529 `overloaded_error`, other 5xx `api_error`, other 4xx
//! `invalid_request_error`); responses also carry `request-id: req_mock_<n>`.
//!
//! The reply (`msg_mock_<n>`) holds a `text` block `"Hello from mock: " + <last
//! user message text>` (`"… tool said <results>"` when that message holds
//! `tool_result` blocks), or — with `tools`, unless `tool_choice.type` is
//! `"none"` — a `tool_use` block (`toolu_mock_<n>`) for the first tool (or the
//! one `tool_choice` names; the first two with `mock.parallel` unless
//! `disable_parallel_tool_use`) with placeholder input for its required
//! properties, `stop_reason: "tool_use"`. `thinking: {"type":"enabled"}` puts a
//! `thinking` block (`"Mock thinking."`, signature `sig_mock_<n>_<hash of n and the
//! text>`) first, and with `mock.redacted_thinking` a `redacted_thinking` block
//! (`data: redacted_mock_<n>_<hash>`) after it. With thinking enabled the request is
//! checked as Anthropic does (400 `invalid_request_error` otherwise): `budget_tokens` at
//! least 1024 and below `max_tokens`, every `thinking`
//! block must carry the mock's signature for its text, every `redacted_thinking` block
//! data the mock issued, the last assistant message must start with one of them when it
//! calls tools, and `tool_choice` must not force a tool. Usage counts words:
//! `input_tokens` over `system` and all message text and tool results, less a prompt
//! cache prefix — `tools`, `system` and messages up to the last block with
//! `cache_control` — reported as `cache_creation_input_tokens` the first time the server
//! sees it and `cache_read_input_tokens` after (no minimum length); `output_tokens` over
//! the reply blocks. With `stream: true` the events are `message_start` (with the usage
//! so far, cache counts included), `ping`, per block `content_block_start` / deltas
//! (`text_delta` and `input_json_delta` split in `mock.chunks` pieces;
//! `thinking_delta` then `signature_delta`; a `redacted_thinking` block whole in its
//! start event) / `content_block_stop`, then `message_delta` and `message_stop`;
//! `chunk_delay_ms` and `fail_after_chunks` count every event frame. `POST /v1/messages/count_tokens` (no `max_tokens`
//! needed) answers `{"input_tokens": N}` with the same count.
//!
//! ## Vertex AI
//!
//! `POST /token` is an OAuth2 token endpoint for the committed test-only service account
//! (`testdata/vertex-test-sa.json`): it verifies the JWT bearer assertion's RS256 signature
//! and claims and issues `ya29.mock-<n>` tokens. `POST /v1/projects/{p}/locations/{l}/
//! publishers/google/models/{m}:generateContent` (and `:streamGenerateContent?alt=sse`)
//! require `Authorization: Bearer` with an issued token, then answer like the Gemini routes
//! (every content must carry a `role`). Claude on Vertex —
//! `…/publishers/anthropic/models/{m}:rawPredict`, `:streamRawPredict` and
//! `…/models/count-tokens:rawPredict` — takes the same bearer token and answers like the
//! Anthropic routes, for a body with `"anthropic_version": "vertex-2023-10-16"` and no
//! `model` (except for `count-tokens`). See `vertex.rs`.
//!
//! ## Amazon Bedrock
//!
//! `POST /model/{id}/converse`, `/converse-stream` (AWS event-stream frames) and `/invoke`
//! (Titan and Cohere embeddings) verify each request's SigV4 signature against the test
//! credentials given with [`MockServer::accept_aws_credentials`] (or `--aws-credentials`),
//! and check thinking budgets, reasoning signatures, cache points and document blocks as
//! Claude on Bedrock does. See `bedrock.rs`.
//!
//! Two ways to use it:
//! - in-process, from Rust tests: [`MockServer::start`] binds `127.0.0.1:0` and
//!   serves on the current tokio runtime until the [`MockServer`] is dropped;
//! - as the `gatehouse-mock` binary (Python SDK tests, the bench harness), which
//!   prints `listening addr=IP:PORT` once bound.
//!
//! Every request (except the `/_mock/…` control endpoints) is recorded — bounded
//! to the last 1000 — and can be read back with [`MockServer::requests`] or
//! `GET /_mock/requests` (`DELETE` clears).
//!
//! The server is built directly on hyper (HTTP/1.1 keep-alive and HTTP/2 prior
//! knowledge) and keeps per-request work small: static bodies are prebuilt and
//! responses are serialised straight from borrowed structs.

mod anthropic;
mod bedrock;
mod body;
mod chat;
mod embeddings;
mod encode;
mod gemini;
mod reply;
mod script;
mod server;
mod state;
mod vertex;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use bedrock::AwsTestCredentials;
pub use server::serve;
pub use state::MockState;

/// Options for a mock server.
#[derive(Debug, Clone, Default)]
pub struct MockOptions {
    /// Record every request (readable with [`MockServer::requests`] and
    /// `GET /_mock/requests`). [`MockServer::start`] turns this on; the
    /// `Default` is off.
    pub record: bool,
}

/// One request as the mock received it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path plus `?query` if any.
    pub path: String,
    /// Headers by lowercase name; repeated headers are joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON if it parses, else a JSON string of its (lossy UTF-8) text.
    pub body: serde_json::Value,
}

/// A mock provider running on the current tokio runtime. Dropping it stops the
/// server and closes its connections.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<MockState>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MockServer {
    /// Binds `127.0.0.1:0` and spawns the server on the current tokio runtime,
    /// recording requests.
    pub async fn start() -> std::io::Result<MockServer> {
        Self::start_with(MockOptions { record: true }).await
    }

    /// Binds `127.0.0.1:0` and spawns the server with the given options.
    pub async fn start_with(opts: MockOptions) -> std::io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(MockState::new());
        let task = tokio::spawn(serve(listener, opts, Arc::clone(&state)));
        Ok(MockServer { addr, state, task })
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far (bounded: the last 1000), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        self.state.clear();
    }

    /// Accepts Bedrock requests SigV4-signed with these credentials (the ones the test
    /// config gives the gateway). Without any, Bedrock routes refuse every request.
    pub fn accept_aws_credentials(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) {
        self.state.accept_aws_credentials(AwsTestCredentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            session_token: session_token.map(str::to_owned),
        });
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
