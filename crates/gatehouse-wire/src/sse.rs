//! Server-sent events framing, as OpenAI streams use it.

use bytes::Bytes;

use crate::ErrorBody;

/// An SSE event carrying an OpenAI error envelope: `data: {"error": {...}}\n\n`.
///
/// The OpenAI SDKs raise an `APIError` when a stream yields it. `needs_separator` says the
/// stream was cut inside an event, so a blank line must first close that partial event.
pub fn error_event(error: &ErrorBody<'_>, needs_separator: bool) -> Bytes {
    let json = error.to_json();
    let mut out = Vec::with_capacity(json.len() + 10);
    if needs_separator {
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Tracks whether the bytes forwarded so far end on an event boundary (a blank line), so an
/// error event appended after a cut stays a well-formed event of its own.
#[derive(Debug, Clone, Copy)]
pub struct BoundaryTracker {
    tail: [u8; 4],
}

impl Default for BoundaryTracker {
    fn default() -> Self {
        Self { tail: *b"\r\n\r\n" }
    }
}

impl BoundaryTracker {
    /// Records a chunk that was forwarded.
    pub fn observe(&mut self, chunk: &[u8]) {
        if chunk.len() >= 4 {
            self.tail.copy_from_slice(&chunk[chunk.len() - 4..]);
        } else {
            for &b in chunk {
                self.tail.rotate_left(1);
                self.tail[3] = b;
            }
        }
    }

    /// True when the stream so far ends exactly on an event boundary.
    pub fn at_boundary(&self) -> bool {
        self.tail.ends_with(b"\n\n") || self.tail.ends_with(b"\r\r") || &self.tail == b"\r\n\r\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> ErrorBody<'static> {
        ErrorBody {
            message: "upstream failed",
            kind: "upstream_error",
            param: None,
            code: "502",
        }
    }

    #[test]
    fn error_event_is_one_data_line() {
        let e = error_event(&err(), false);
        assert!(e.starts_with(b"data: {\"error\":"));
        assert!(e.ends_with(b"}\n\n"));
        assert!(error_event(&err(), true).starts_with(b"\n\ndata: "));
    }

    #[test]
    fn tracks_boundaries_across_chunks() {
        let mut t = BoundaryTracker::default();
        assert!(t.at_boundary());
        t.observe(b"data: {\"a\":1}");
        assert!(!t.at_boundary());
        t.observe(b"\n");
        assert!(!t.at_boundary());
        t.observe(b"\n");
        assert!(t.at_boundary());
        t.observe(b"data: x\n\ndata: y\n");
        assert!(!t.at_boundary());
        t.observe(b"data: z\r\n\r\n");
        assert!(t.at_boundary());
    }
}
