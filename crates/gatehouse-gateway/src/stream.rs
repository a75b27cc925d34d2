//! Forwarding a streamed upstream body: each chunk passes through as it arrives, and a
//! failure mid-stream ends the stream with an SSE error event instead of a silent cut.
//!
//! On a translated stream, an error event of the upstream is reported as an error answer
//! before the stream would be: classified in the provider's format (its kind decides the
//! event's `type` and `code` — rate limited, overloaded, rejected, …), its message scrubbed
//! of URLs, key-shaped strings and the deployment's key, and not relayed at all when it
//! refuses our credentials or account.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use gatehouse_config::Secret;
use gatehouse_providers::anthropic::StreamTranslator;
use gatehouse_providers::anthropic::inbound::{self, ChatStreamToMessages};
use gatehouse_providers::errors::{self, UpstreamFailure};
use gatehouse_providers::{bedrock, gemini};
use gatehouse_wire::ErrorBody;
use gatehouse_wire::sse::{BoundaryTracker, error_event};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::accounting::Meter;
use crate::error::{ApiError, cap};
use crate::proxy::{FailureSource, upstream_error};
use crate::routing::scrub_key;
use gatehouse_providers::sse::SseReader;

/// True for an OpenAI chunk that only carries usage: `"choices": []` and a `usage` object.
fn is_usage_only_chunk(data: &str) -> bool {
    if !data.contains("\"usage\"") {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Chunk {
        choices: Option<Vec<serde::de::IgnoredAny>>,
        usage: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Chunk>(data)
        .is_ok_and(|c| c.usage.is_some() && c.choices.is_some_and(|c| c.is_empty()))
}

/// Turns one wire format's stream events into another's.
#[derive(Debug)]
pub enum Translation {
    /// Anthropic upstream, OpenAI client (`/v1/chat/completions` on an `anthropic/` model).
    AnthropicToOpenAi(StreamTranslator),
    /// OpenAI upstream, Anthropic client (`/v1/messages` on an OpenAI-compatible model).
    OpenAiToAnthropic(ChatStreamToMessages),
    /// Gemini upstream, OpenAI client.
    GeminiToOpenAi(gemini::StreamTranslator),
    /// Bedrock upstream (AWS event-stream frames), OpenAI client.
    BedrockToOpenAi(bedrock::StreamTranslator),
    /// Two steps through the OpenAI shape (Anthropic client on a Gemini or Bedrock model).
    Chain(Box<Translation>, ChatStreamToMessages),
}

impl Translation {
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Translation::AnthropicToOpenAi(t) => t.push(bytes),
            Translation::OpenAiToAnthropic(t) => t.push(bytes),
            Translation::GeminiToOpenAi(t) => t.push(bytes),
            Translation::BedrockToOpenAi(t) => t.push(bytes),
            Translation::Chain(first, second) => {
                let mid = first.push(bytes);
                if mid.is_empty() {
                    Vec::new()
                } else {
                    second.push(&mid)
                }
            }
        }
    }

    fn finish(&mut self) -> Vec<u8> {
        match self {
            Translation::AnthropicToOpenAi(t) => t.finish(),
            Translation::OpenAiToAnthropic(t) => t.finish(),
            Translation::GeminiToOpenAi(t) => t.finish(),
            Translation::BedrockToOpenAi(t) => t.finish(),
            Translation::Chain(first, second) => {
                let mid = first.finish();
                let mut out = if mid.is_empty() {
                    Vec::new()
                } else {
                    second.push(&mid)
                };
                out.extend(second.finish());
                out
            }
        }
    }

    fn error(&self) -> Option<&str> {
        match self {
            Translation::AnthropicToOpenAi(t) => t.error(),
            Translation::OpenAiToAnthropic(t) => t.error(),
            Translation::GeminiToOpenAi(t) => t.error(),
            Translation::BedrockToOpenAi(t) => t.error(),
            Translation::Chain(first, second) => first.error().or_else(|| second.error()),
        }
    }

    /// The upstream's error event behind [`error`](Self::error), classified; `None` for a
    /// broken stream (malformed, cut short).
    fn failure(&self) -> Option<&UpstreamFailure> {
        match self {
            Translation::AnthropicToOpenAi(t) => t.failure(),
            Translation::OpenAiToAnthropic(t) => t.failure(),
            Translation::GeminiToOpenAi(t) => t.failure(),
            Translation::BedrockToOpenAi(t) => t.failure(),
            Translation::Chain(first, second) => match first.error() {
                Some(_) => first.failure(),
                None => second.failure(),
            },
        }
    }
}

/// The deployment a translated stream comes from: what reporting its error events needs.
#[derive(Debug)]
pub struct StreamSource {
    /// Its key, scrubbed from any upstream message relayed.
    pub key: Option<Secret>,
    /// Its `model_info.id`, for logs.
    pub model_id: http::HeaderValue,
}

/// Which client wire format a final error event is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `data: {"error": {...}}` (the OpenAI SDKs raise `APIError`).
    OpenAi,
    /// `event: error` with `{"type":"error","error":{...}}` (the Anthropic SDKs raise).
    Anthropic,
}

/// A response body that relays an upstream SSE body frame by frame. No buffering: each
/// upstream data frame becomes one downstream frame — translated first when the upstream
/// speaks another wire format (only complete events are emitted; a partial one waits for
/// its end). If the upstream errors, or sends nothing for `idle_timeout`, one
/// `data: {"error": …}` event is sent and the stream ends.
#[derive(Debug)]
pub struct ForwardBody {
    upstream: Incoming,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    boundary: BoundaryTracker,
    done: bool,
    call_id: String,
    translator: Option<Translation>,
    style: ErrorStyle,
    /// An error event to send after the frame being returned.
    pending: Option<Bytes>,
    /// Reads usage out of what the client is sent; settles when the stream ends or is dropped.
    meter: Option<Meter>,
    /// Drops the usage-only chunk gatehouse asked the upstream for when the client did not
    /// (`stream_options.include_usage`); the meter sees it first.
    strip_usage: Option<SseReader>,
    /// The deployment, for a translated stream's error events.
    source: Option<StreamSource>,
}

impl ForwardBody {
    /// Wraps an upstream body; `translator` turns the upstream's events into the client's
    /// format, and `style` says which format a final error event takes.
    pub fn new(
        upstream: Incoming,
        idle_timeout: Duration,
        call_id: String,
        translator: Option<Translation>,
        style: ErrorStyle,
    ) -> Self {
        Self {
            upstream,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            boundary: BoundaryTracker::default(),
            done: false,
            call_id,
            translator,
            style,
            pending: None,
            meter: None,
            strip_usage: None,
            source: None,
        }
    }

    /// Names the deployment the stream comes from, so that an upstream error event is
    /// scrubbed of its key and logged with its id.
    pub fn from_deployment(mut self, source: StreamSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Removes OpenAI usage-only chunks (`"choices": []` with `usage`) from what the client
    /// is sent, after the meter has read them.
    pub fn strip_usage_chunks(mut self, strip: bool) -> Self {
        self.strip_usage = strip.then(SseReader::default);
        self
    }

    /// Passes `data` on, without usage-only chunks when stripping. `None`: nothing to send.
    fn strip(&mut self, data: Bytes, last: bool) -> Option<Bytes> {
        let Some(reader) = self.strip_usage.as_mut() else {
            return Some(data);
        };
        let (mut events, _) = reader.push(&data);
        if last {
            events.extend(reader.finish().0);
        }
        let mut out = Vec::with_capacity(data.len());
        for ev in events {
            if is_usage_only_chunk(&ev.data) {
                continue;
            }
            if !ev.event.is_empty() {
                out.extend_from_slice(b"event: ");
                out.extend_from_slice(ev.event.as_bytes());
                out.push(b'\n');
            }
            for line in ev.data.split('\n') {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            out.push(b'\n');
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// Accounts for the stream with `meter` (if any).
    pub fn metered(mut self, meter: Option<Meter>) -> Self {
        self.meter = meter;
        self
    }

    fn observe(&mut self, data: &[u8]) {
        if let Some(m) = &mut self.meter {
            m.observe(data);
        }
    }

    fn settle(&mut self) {
        if let Some(m) = self.meter.take() {
            m.finish_stream();
        }
    }

    fn fail(
        &mut self,
        message: &str,
        kind: &str,
        code: &str,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(self.error_frame(message, kind, code)))))
    }

    /// The final error event; the stream ends after it.
    fn error_frame(&mut self, message: &str, kind: &str, code: &str) -> Bytes {
        self.done = true;
        let needs_separator = !self.boundary.at_boundary();
        match self.style {
            ErrorStyle::OpenAi => error_event(
                &ErrorBody {
                    message,
                    kind,
                    param: None,
                    code,
                },
                needs_separator,
            ),
            ErrorStyle::Anthropic => {
                let kind = inbound::error_kind(code.parse::<u16>().unwrap_or(502));
                let body = inbound::error_body(kind, message);
                let mut out = Vec::with_capacity(body.len() + 24);
                if needs_separator {
                    out.extend_from_slice(b"\n\n");
                }
                out.extend_from_slice(b"event: error\ndata: ");
                out.extend_from_slice(&body);
                out.extend_from_slice(b"\n\n");
                Bytes::from(out)
            }
        }
    }

    /// Runs a data frame through the translator, if any. `None`: nothing to send yet.
    fn translate(&mut self, data: Bytes) -> Option<Bytes> {
        let Some(t) = self.translator.as_mut() else {
            return Some(data);
        };
        let out = t.push(&data);
        self.checked(out)
    }

    /// The translator's output, followed (via `pending`) by an error event if the translator
    /// saw the upstream fail: an `error` event, a malformed event, or an early end.
    fn checked(&mut self, out: Vec<u8>) -> Option<Bytes> {
        let failed = self
            .translator
            .as_ref()
            .and_then(|t| Some((t.error()?.to_owned(), t.failure().cloned())));
        if let Some((message, failure)) = failed {
            let error = self.stream_error(&message, failure);
            if !out.is_empty() {
                self.boundary.observe(&out);
            }
            let status = match self.style {
                ErrorStyle::OpenAi => error.status(),
                ErrorStyle::Anthropic => error.anthropic_status(),
            };
            let event = self.error_frame(&error.to_string(), error.kind(), status.as_str());
            if out.is_empty() {
                return Some(event);
            }
            self.pending = Some(event);
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// What the client is told of a translated stream's failure: an upstream error event as
    /// an error answer would be (its kind, its message scrubbed or withheld), anything else
    /// (a malformed or cut-short stream) as a 502, scrubbed all the same.
    fn stream_error(&self, message: &str, failure: Option<UpstreamFailure>) -> ApiError {
        let key = self.source.as_ref().and_then(|s| s.key.as_ref());
        let model_id = self
            .source
            .as_ref()
            .and_then(|s| s.model_id.to_str().ok())
            .unwrap_or_default();
        match failure {
            Some(failure) => {
                tracing::warn!(
                    call_id = %self.call_id,
                    model_id,
                    kind = ?failure.kind,
                    code = failure.code.as_deref().unwrap_or(""),
                    "upstream sent an error mid-stream (translated stream)"
                );
                let source = FailureSource {
                    key,
                    model_id,
                    call_id: &self.call_id,
                    mid_stream: true,
                };
                upstream_error(failure, &source, None)
            }
            None => {
                tracing::warn!(call_id = %self.call_id, model_id, "upstream stream broke (translated stream)");
                ApiError::UpstreamFailed(format!(
                    "The upstream provider's stream failed: {}",
                    cap(&scrub_key(key, &errors::scrub(message)))
                ))
            }
        }
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.take() {
                return Poll::Ready(Some(Ok(Frame::data(event))));
            }
            if this.done {
                this.settle();
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers: nothing to forward
                    };
                    if data.is_empty() {
                        continue;
                    }
                    let deadline = Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                    let Some(data) = this.translate(data) else {
                        continue;
                    };
                    this.observe(&data);
                    let Some(data) = this.strip(data, false) else {
                        continue;
                    };
                    this.boundary.observe(&data);
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(call_id = %this.call_id, error = %e, "upstream stream failed mid-way");
                    return this.fail(
                        "The upstream provider's stream failed before it was complete.",
                        "upstream_error",
                        "502",
                    );
                }
                Poll::Ready(None) => {
                    let rest = this.translator.as_mut().map(Translation::finish);
                    let last = rest.and_then(|rest| this.checked(rest));
                    this.done = true;
                    if let Some(bytes) = &last {
                        this.observe(bytes);
                    }
                    let last = match last {
                        Some(bytes) => this.strip(bytes, true),
                        None if this.strip_usage.is_some() => this.strip(Bytes::new(), true),
                        None => None,
                    };
                    return match last {
                        Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                        None => {
                            this.settle();
                            Poll::Ready(None)
                        }
                    };
                }
                Poll::Pending => {
                    ready!(this.idle.as_mut().poll(cx));
                    tracing::warn!(call_id = %this.call_id, "upstream stream idle for too long");
                    return this.fail(
                        "The upstream provider stopped sending before the stream was complete.",
                        "timeout_error",
                        "504",
                    );
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
