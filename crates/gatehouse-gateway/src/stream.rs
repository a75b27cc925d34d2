//! Forwarding a streamed upstream body: each chunk passes through as it arrives, and a
//! failure mid-stream ends the stream with an SSE error event instead of a silent cut.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use gatehouse_wire::ErrorBody;
use gatehouse_wire::sse::{BoundaryTracker, error_event};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// A response body that relays an upstream SSE body frame by frame. No buffering: each
/// upstream data frame becomes one downstream frame. If the upstream errors, or sends
/// nothing for `idle_timeout`, one `data: {"error": …}` event is sent and the stream ends.
#[derive(Debug)]
pub struct ForwardBody {
    upstream: Incoming,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    boundary: BoundaryTracker,
    done: bool,
    call_id: String,
}

impl ForwardBody {
    /// Wraps an upstream body.
    pub fn new(upstream: Incoming, idle_timeout: Duration, call_id: String) -> Self {
        Self {
            upstream,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            boundary: BoundaryTracker::default(),
            done: false,
            call_id,
        }
    }

    fn fail(
        &mut self,
        message: &str,
        kind: &str,
        code: &str,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.done = true;
        let event = error_event(
            &ErrorBody {
                message,
                kind,
                param: None,
                code,
            },
            !self.boundary.at_boundary(),
        );
        Poll::Ready(Some(Ok(Frame::data(event))))
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
            if this.done {
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
                    this.boundary.observe(&data);
                    let deadline = Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
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
                    this.done = true;
                    return Poll::Ready(None);
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
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
