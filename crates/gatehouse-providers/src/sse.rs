//! Reading server-sent events from an upstream, split at any byte: complete events out,
//! the partial rest kept for the next chunk. Shared by every SSE-consuming translator.

/// Longest line we buffer while waiting for its end.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// One complete event: its `event:` name (empty if none) and its `data:` lines joined by `\n`.
#[derive(Debug)]
pub struct SseEvent {
    /// The `event:` name (empty if none).
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// Incremental SSE parser (`\n` or `\r\n` line ends, `:` comments, multi-line data).
#[derive(Debug, Default)]
pub struct SseReader {
    /// Bytes after the last complete line.
    buf: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseReader {
    /// The complete events in what has arrived so far, and an error (invalid UTF-8, a line
    /// over 16 MiB) if reading stopped at one; events before the error are still returned.
    pub fn push(&mut self, bytes: &[u8]) -> (Vec<SseEvent>, Option<&'static str>) {
        let mut events = Vec::new();
        self.buf.extend_from_slice(bytes);
        let buf = std::mem::take(&mut self.buf);
        let mut rest = &buf[..];
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(pos);
            rest = tail.get(1..).unwrap_or_default();
            if let Err(e) = self.line(line, &mut events) {
                return (events, Some(e));
            }
        }
        if rest.len() > MAX_LINE {
            return (events, Some("upstream stream line too long"));
        }
        self.buf = rest.to_vec();
        (events, None)
    }

    /// The upstream ended: the last event, if it was not closed by a blank line.
    pub fn finish(&mut self) -> (Vec<SseEvent>, Option<&'static str>) {
        let mut events = Vec::new();
        let rest = std::mem::take(&mut self.buf);
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
