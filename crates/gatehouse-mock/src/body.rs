//! The response body: either a complete buffer or a paced SSE stream.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// The error a stream ends with when scripted to break (`fail_after_chunks`);
/// hyper then aborts the transfer (HTTP/1: connection closed mid-body, HTTP/2:
/// stream reset).
#[derive(Debug)]
pub(crate) struct StreamAborted;

impl fmt::Display for StreamAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mock stream aborted (fail_after_chunks)")
    }
}

impl std::error::Error for StreamAborted {}

/// A response body.
#[derive(Debug)]
pub(crate) enum MockBody {
    /// A complete body (`None` once sent, or when empty).
    Full(Option<Bytes>),
    /// Prebuilt SSE frames, each yielded as its own data frame.
    Stream(Box<SseStream>),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        MockBody::Full((!bytes.is_empty()).then_some(bytes))
    }
}

/// SSE frames with optional pacing and a scripted break.
///
/// Every frame but the first is preceded by `delay`; while it waits the body is
/// pending, so hyper flushes what it has and each frame reaches the socket as
/// its own write. Without a delay, ready frames may be coalesced into one write.
#[derive(Debug)]
pub(crate) struct SseStream {
    frames: VecDeque<Bytes>,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    sent: u32,
    fail_after: Option<u32>,
    flushed_before_fail: bool,
}

impl SseStream {
    pub(crate) fn new(frames: VecDeque<Bytes>, delay: Duration, fail_after: Option<u32>) -> Self {
        SseStream {
            frames,
            delay,
            sleep: None,
            sent: 0,
            fail_after,
            flushed_before_fail: false,
        }
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamAborted>>> {
        if let Some(limit) = self.fail_after
            && self.sent >= limit
        {
            if !self.flushed_before_fail {
                // Yield once so hyper flushes the frames sent so far; an error
                // frame makes it drop whatever is still buffered.
                self.flushed_before_fail = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.fail_after = None;
            self.frames.clear();
            return Poll::Ready(Some(Err(StreamAborted)));
        }
        if self.frames.is_empty() {
            return Poll::Ready(None);
        }
        if self.sent > 0 && !self.delay.is_zero() {
            let delay = self.delay;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        match self.frames.pop_front() {
            Some(frame) => {
                self.sent += 1;
                Poll::Ready(Some(Ok(Frame::data(frame))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end(&self) -> bool {
        self.frames.is_empty() && self.fail_after.is_none()
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = StreamAborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamAborted>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(stream) => stream.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(bytes) => bytes.is_none(),
            MockBody::Stream(stream) => stream.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn frames(n: usize) -> VecDeque<Bytes> {
        (0..n).map(|i| Bytes::from(format!("f{i}"))).collect()
    }

    #[tokio::test]
    async fn full_body() {
        let b = MockBody::full("abc");
        assert_eq!(b.size_hint().exact(), Some(3));
        assert_eq!(b.collect().await.unwrap().to_bytes(), "abc");
        assert!(MockBody::full("").is_end_stream());
    }

    #[tokio::test]
    async fn stream_yields_frames_in_order() {
        let b = MockBody::Stream(Box::new(SseStream::new(frames(3), Duration::ZERO, None)));
        assert_eq!(b.collect().await.unwrap().to_bytes(), "f0f1f2");
    }

    #[tokio::test]
    async fn stream_breaks_after_n() {
        let mut b = MockBody::Stream(Box::new(SseStream::new(frames(5), Duration::ZERO, Some(2))));
        let mut got = Vec::new();
        let err = loop {
            match b.frame().await {
                Some(Ok(f)) => got.push(f.into_data().unwrap()),
                Some(Err(e)) => break e,
                None => panic!("stream ended without error"),
            }
        };
        assert_eq!(got, vec![Bytes::from("f0"), Bytes::from("f1")]);
        assert!(err.to_string().contains("aborted"));
    }

    #[tokio::test]
    async fn stream_is_paced() {
        let start = std::time::Instant::now();
        let b = MockBody::Stream(Box::new(SseStream::new(
            frames(4),
            Duration::from_millis(20),
            None,
        )));
        b.collect().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(60));
    }
}
