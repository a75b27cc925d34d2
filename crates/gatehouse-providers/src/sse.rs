//! Reading server-sent events from an upstream, split at any byte: complete events out,
//! the partial rest kept for the next chunk. Shared by every SSE-consuming translator.

/// Longest line we buffer while waiting for its end.
const MAX_LINE: usize = 16 * 1024 * 1024;
/// Largest event we assemble (its `data:` lines joined): many short lines must not add up
/// to what one long line may not be.
const MAX_EVENT: usize = 16 * 1024 * 1024;

/// One complete event: its `event:` name (empty if none) and its `data:` lines joined by `\n`.
#[derive(Debug)]
pub struct SseEvent {
    /// The `event:` name (empty if none).
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// Incremental SSE parser (`\n` or `\r\n` line ends, `:` comments, multi-line data).
///
/// Linear in what arrives: each byte is searched for a line end once (the partial line's
/// searched length is remembered), and a partial line is moved only when a push completes
/// a line before it (then it holds only that push's bytes).
#[derive(Debug, Default)]
pub struct SseReader {
    /// Bytes after the last complete line.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no line end.
    scanned: usize,
    event: String,
    data: String,
    has_data: bool,
}

impl SseReader {
    /// The complete events in what has arrived so far, and an error (invalid UTF-8, a line
    /// over 16 MiB, an event over 16 MiB) if reading stopped at one; events before the error
    /// are still returned.
    pub fn push(&mut self, bytes: &[u8]) -> (Vec<SseEvent>, Option<&'static str>) {
        let mut events = Vec::new();
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut from = self.scanned.min(buf.len());
        self.scanned = 0;
        while let Some(pos) = buf
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        {
            let end = from + pos;
            let line = buf.get(start..end).unwrap_or_default();
            start = end + 1;
            from = start;
            if let Err(e) = self.line(line, &mut events) {
                return (events, Some(e));
            }
        }
        if buf.len() - start > MAX_LINE {
            return (events, Some("upstream stream line too long"));
        }
        buf.drain(..start);
        self.scanned = buf.len();
        self.buf = buf;
        (events, None)
    }

    /// The upstream ended: the last event, if it was not closed by a blank line.
    pub fn finish(&mut self) -> (Vec<SseEvent>, Option<&'static str>) {
        let mut events = Vec::new();
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        if !rest.is_empty()
            && let Err(e) = self.line(&rest, &mut events)
        {
            return (events, Some(e));
        }
        self.dispatch(&mut events);
        (events, None)
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) -> Result<(), &'static str> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        if line.first() == Some(&b':') {
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(p) => {
                let value = line.get(p + 1..).unwrap_or_default();
                (
                    line.get(..p).unwrap_or_default(),
                    value.strip_prefix(b" ").unwrap_or(value),
                )
            }
            None => (line, &[][..]),
        };
        if name != b"data" && name != b"event" {
            return Ok(());
        }
        let value = std::str::from_utf8(value).map_err(|_| "upstream stream is not valid UTF-8")?;
        if name == b"event" {
            value.clone_into(&mut self.event);
        } else {
            if self.data.len() + value.len() + 1 > MAX_EVENT {
                return Err("upstream stream event too large");
            }
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if std::mem::replace(&mut self.has_data, false) {
            events.push(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(event, data)` of every event in `chunks`, fed in order, then the end.
    fn read(chunks: &[&[u8]]) -> (Vec<(String, String)>, Option<&'static str>) {
        let mut r = SseReader::default();
        let mut out = Vec::new();
        for c in chunks {
            let (events, err) = r.push(c);
            out.extend(events.into_iter().map(|e| (e.event, e.data)));
            if err.is_some() {
                return (out, err);
            }
        }
        let (events, err) = r.finish();
        out.extend(events.into_iter().map(|e| (e.event, e.data)));
        (out, err)
    }

    const FRAMES: &[u8] = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: ping comment\n\ndata: line one\ndata: line two\n\nevent: x\nid: 7\nretry: 10\ndata\n\ndata: \xc3\xa9t\xc3\xa9\n\ndata: tail";

    fn expected() -> Vec<(String, String)> {
        [
            ("message_start", "{\"a\":1}"),
            ("", "line one\nline two"),
            ("x", ""),
            ("", "\u{e9}t\u{e9}"),
            ("", "tail"),
        ]
        .iter()
        .map(|(e, d)| ((*e).to_owned(), (*d).to_owned()))
        .collect()
    }

    #[test]
    fn whole_and_byte_by_byte_agree() {
        assert_eq!(read(&[FRAMES]), (expected(), None));
        let bytes: Vec<&[u8]> = FRAMES.chunks(1).collect();
        assert_eq!(read(&bytes), (expected(), None));
        for size in [2, 3, 5, 7, 64] {
            let chunks: Vec<&[u8]> = FRAMES.chunks(size).collect();
            assert_eq!(read(&chunks), (expected(), None), "chunks of {size}");
        }
    }

    #[test]
    fn invalid_utf8_is_an_error_after_the_good_events() {
        let (events, err) = read(&[b"data: ok\n\ndata: \xff\n\n"]);
        assert_eq!(events, vec![(String::new(), "ok".to_owned())]);
        assert_eq!(err, Some("upstream stream is not valid UTF-8"));
    }

    /// Many short `data:` lines may not assemble an event larger than one line may be.
    #[test]
    fn oversize_event_is_refused() {
        let line = format!("data: {}\n", "x".repeat(1024 * 1024 - 1));
        let mut r = SseReader::default();
        let mut err = None;
        for _ in 0..17 {
            let (events, e) = r.push(line.as_bytes());
            assert!(events.is_empty());
            if e.is_some() {
                err = e;
                break;
            }
        }
        assert_eq!(err, Some("upstream stream event too large"));
        // Just under the cap is fine.
        let mut r = SseReader::default();
        for _ in 0..15 {
            assert_eq!(r.push(line.as_bytes()).1, None);
        }
        let (events, err) = r.push(b"\n");
        assert_eq!(err, None);
        assert_eq!(events.len(), 1);
        assert_eq!(events.first().unwrap().data.len(), 15 * 1024 * 1024 - 1);
    }

    #[test]
    fn overlong_line_is_refused() {
        let mut r = SseReader::default();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut err = None;
        for _ in 0..17 {
            if let (_, Some(e)) = r.push(&chunk) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some("upstream stream line too long"));
    }

    /// A long line arriving in small pieces costs time in proportion to its length. The
    /// previous reader rescanned and copied the whole partial line on each piece (about
    /// 34 GB of work for this input: over three minutes in a debug build, against half a
    /// second now); the bound only catches that regression, it measures nothing.
    #[test]
    fn a_long_line_in_small_pieces_is_linear() {
        let started = std::time::Instant::now();
        let mut r = SseReader::default();
        let data = vec![b'y'; 1024 * 1024];
        assert_eq!(r.push(b"data: ").1, None);
        for piece in data.chunks(16) {
            let (events, err) = r.push(piece);
            assert!(events.is_empty() && err.is_none());
        }
        let (events, err) = r.push(b"\n\n");
        assert_eq!(err, None);
        assert_eq!(events.first().map(|e| e.data.len()), Some(1024 * 1024));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
