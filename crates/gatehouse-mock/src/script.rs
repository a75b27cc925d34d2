//! The `mock` object a request may carry to script the reply.

use std::time::Duration;

use http::{Response, StatusCode};
use serde::Deserialize;

use crate::body::MockBody;
use crate::reply;
use crate::state::MockState;

/// Per-request scripting, read from the body's `mock` field. All optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MockScript {
    /// Reply with this HTTP status (≥ 400) and an OpenAI error body.
    pub status: Option<u16>,
    /// Fail only the first `fail_times` requests carrying `key` (status default 500).
    pub fail_times: Option<u32>,
    /// The `fail_times` counter key (default `""`).
    pub key: Option<String>,
    /// `retry-after` header value on error replies.
    pub retry_after: Option<String>,
    /// Wait this long before sending response headers.
    pub delay_ms: Option<u64>,
    /// Number of content (or tool-argument) chunks in a stream (default 3).
    pub chunks: Option<u32>,
    /// Delay between stream frames (also before the first content chunk).
    pub chunk_delay_ms: Option<u64>,
    /// Break the stream after this many frames.
    pub fail_after_chunks: Option<u32>,
    /// Reply text override.
    pub content: Option<String>,
    /// The model the reply reports instead of the requested one (OpenAI, Anthropic and
    /// Gemini replies), as providers report a dated version of an alias.
    pub model: Option<String>,
    /// Call the first two tools when `parallel_tool_calls` allows it.
    pub parallel: Option<bool>,
    /// Usage number overrides.
    pub usage: Option<UsageOverride>,
    /// Streams (Anthropic, Gemini, Bedrock): send the provider's error event after the first
    /// content delta and end the stream there.
    pub stream_error: Option<bool>,
    /// With `stream_error`: that event's message instead of the provider's default.
    pub stream_error_message: Option<String>,
    /// With `stream_error` (Anthropic and Bedrock): the error's type (Anthropic `error.type`,
    /// Bedrock `:exception-type`) instead of the default.
    pub stream_error_type: Option<String>,
}

/// What the script decides before the reply is built.
#[derive(Debug, PartialEq)]
pub(crate) enum Scripted {
    /// Reply normally.
    Proceed,
    /// Reply with this (≥ 400) error status.
    Fail(StatusCode),
    /// `mock.status` is not an HTTP status code.
    BadStatus,
}

/// Overrides for the reported token counts.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UsageOverride {
    #[serde(alias = "input_tokens")]
    pub prompt_tokens: Option<u64>,
    #[serde(alias = "output_tokens")]
    pub completion_tokens: Option<u64>,
}

impl MockScript {
    /// The message of the scripted mid-stream error (`default` unless
    /// `stream_error_message` says otherwise); `None` when no error is scripted.
    pub(crate) fn stream_error_text<'a>(&'a self, default: &'a str) -> Option<&'a str> {
        (self.stream_error == Some(true))
            .then(|| self.stream_error_message.as_deref().unwrap_or(default))
    }

    /// The type and message of the scripted mid-stream error (defaults unless
    /// `stream_error_type` / `stream_error_message` say otherwise); `None` when none is.
    pub(crate) fn stream_error_event<'a>(
        &'a self,
        default_type: &'a str,
        default_message: &'a str,
    ) -> Option<(&'a str, &'a str)> {
        let message = self.stream_error_text(default_message)?;
        Some((
            self.stream_error_type.as_deref().unwrap_or(default_type),
            message,
        ))
    }

    /// Applies `delay_ms`, then the scripted error if this request should get
    /// one (counting `fail_times`). `Err` is the response to send instead of the
    /// normal reply.
    pub(crate) async fn before_reply(
        &self,
        state: &MockState,
        id: u64,
    ) -> Result<(), Response<MockBody>> {
        match self.check(state).await {
            Scripted::Proceed => Ok(()),
            Scripted::Fail(status) => Err(reply::scripted_error(
                status,
                self.retry_after.as_deref(),
                id,
            )),
            Scripted::BadStatus => Err(reply::bad_request(
                "mock.status is not an HTTP status code",
                Some("mock.status"),
                id,
            )),
        }
    }

    /// Applies `delay_ms`, then decides whether this request fails (counting
    /// `fail_times`), independent of the wire format of the error.
    pub(crate) async fn check(&self, state: &MockState) -> Scripted {
        if let Some(ms) = self.delay_ms.filter(|&ms| ms > 0) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let Ok(status) = self.status.map(StatusCode::from_u16).transpose() else {
            return Scripted::BadStatus;
        };
        let failing = match self.fail_times {
            Some(times) => state.should_fail(self.key.as_deref().unwrap_or(""), times),
            None => status.is_some(),
        };
        let status = status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A success status scripts nothing.
        if failing && status.as_u16() >= 400 {
            Scripted::Fail(status)
        } else {
            Scripted::Proceed
        }
    }

    /// Stream content-chunk count (at least 1).
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.unwrap_or(3).max(1) as usize
    }

    /// Delay between stream frames.
    pub(crate) fn chunk_delay(&self) -> Duration {
        Duration::from_millis(self.chunk_delay_ms.unwrap_or(0))
    }

    /// Prompt token count, overridden if scripted.
    pub(crate) fn prompt_tokens(&self, computed: u64) -> u64 {
        self.usage
            .as_ref()
            .and_then(|u| u.prompt_tokens)
            .unwrap_or(computed)
    }

    /// Completion token count, overridden if scripted.
    pub(crate) fn completion_tokens(&self, computed: u64) -> u64 {
        self.usage
            .as_ref()
            .and_then(|u| u.completion_tokens)
            .unwrap_or(computed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(v: serde_json::Value) -> MockScript {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn no_script_no_error() {
        let s = MockState::new();
        assert!(MockScript::default().before_reply(&s, 1).await.is_ok());
    }

    #[tokio::test]
    async fn status_always_fails() {
        let s = MockState::new();
        let m = script(serde_json::json!({"status": 503, "retry_after": "1"}));
        for _ in 0..3 {
            let r = m.before_reply(&s, 1).await.unwrap_err();
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers()["retry-after"], "1");
        }
    }

    #[tokio::test]
    async fn fail_times_then_succeed() {
        let s = MockState::new();
        let m = script(serde_json::json!({"fail_times": 2, "key": "k"}));
        assert_eq!(m.before_reply(&s, 1).await.unwrap_err().status(), 500);
        assert_eq!(m.before_reply(&s, 1).await.unwrap_err().status(), 500);
        assert!(m.before_reply(&s, 1).await.is_ok());
        let other = script(serde_json::json!({"fail_times": 1, "key": "other", "status": 429}));
        assert_eq!(other.before_reply(&s, 1).await.unwrap_err().status(), 429);
    }

    #[tokio::test]
    async fn odd_statuses() {
        let s = MockState::new();
        assert!(
            script(serde_json::json!({"status": 200}))
                .before_reply(&s, 1)
                .await
                .is_ok()
        );
        let r = script(serde_json::json!({"status": 42}))
            .before_reply(&s, 1)
            .await
            .unwrap_err();
        assert_eq!(r.status(), 400);
    }

    #[test]
    fn overrides() {
        let m = script(serde_json::json!({"usage": {"prompt_tokens": 7}, "chunks": 0}));
        let a = script(serde_json::json!({"usage": {"input_tokens": 3, "output_tokens": 4}}));
        assert_eq!((a.prompt_tokens(1), a.completion_tokens(1)), (3, 4));
        assert_eq!(m.prompt_tokens(1), 7);
        assert_eq!(m.completion_tokens(5), 5);
        assert_eq!(m.chunk_count(), 1);
        assert_eq!(MockScript::default().chunk_count(), 3);
    }
}
