//! AWS event-stream framing (`application/vnd.amazon.eventstream`), as used by Bedrock's
//! `ConverseStream`.
//!
//! A message is: total length (u32 BE), headers length (u32 BE), prelude CRC32 (of the first
//! 8 bytes), headers, payload, message CRC32 (of everything before it). A header is a name
//! length (u8), the name, a value type (u8) and the value; type 7 (string) and 6 (bytes)
//! carry a u16 BE length.

/// Bytes in the prelude (two lengths and the prelude CRC).
const PRELUDE: usize = 12;
/// Smallest message: prelude + message CRC.
const MIN_MESSAGE: usize = PRELUDE + 4;
/// Largest message accepted (AWS limits payloads to 16 MiB, headers to 128 KiB).
const MAX_MESSAGE: usize = 16 * 1024 * 1024 + 128 * 1024 + MIN_MESSAGE;

/// One decoded message: its string-typed headers (others are skipped) and payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A malformed stream: the decoder stops at the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStreamError(pub String);

impl std::fmt::Display for EventStreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed event stream: {}", self.0)
    }
}

impl std::error::Error for EventStreamError {}

/// Incremental decoder: messages may be split across [`push`](Self::push) calls at any
/// byte. After an error every later push returns the same error.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: Vec<u8>,
    failed: Option<EventStreamError>,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns every message completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Message>, EventStreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let rest = self.buf.get(start..).unwrap_or_default();
            match decode_one(rest) {
                Ok(Some((message, used))) => {
                    out.push(message);
                    start += used;
                }
                Ok(None) => break,
                Err(e) => {
                    self.buf.clear();
                    self.failed = Some(e.clone());
                    return Err(e);
                }
            }
        }
        self.buf.drain(..start);
        Ok(out)
    }

    /// True when no partial message is buffered (a clean end of stream).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

fn err(msg: impl Into<String>) -> EventStreamError {
    EventStreamError(msg.into())
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(u16::from_be_bytes(s))
}

/// One message from the start of `b`: `None` if incomplete, else it and its length.
fn decode_one(b: &[u8]) -> Result<Option<(Message, usize)>, EventStreamError> {
    let (Some(total), Some(headers_len), Some(prelude_crc)) =
        (u32_at(b, 0), u32_at(b, 4), u32_at(b, 8))
    else {
        return Ok(None);
    };
    let prelude = b.get(..8).unwrap_or_default();
    if crc32fast::hash(prelude) != prelude_crc {
        return Err(err("prelude CRC mismatch"));
    }
    let total = total as usize;
    let headers_len = headers_len as usize;
    if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&total) || headers_len > total - MIN_MESSAGE {
        return Err(err(format!(
            "bad lengths (total {total}, headers {headers_len})"
        )));
    }
    if b.len() < total {
        return Ok(None);
    }
    let body = b.get(..total - 4).unwrap_or_default();
    let message_crc = u32_at(b, total - 4).unwrap_or(0);
    if crc32fast::hash(body) != message_crc {
        return Err(err("message CRC mismatch"));
    }
    let header_bytes = b.get(PRELUDE..PRELUDE + headers_len).unwrap_or_default();
    let headers = decode_headers(header_bytes)?;
    let payload = b
        .get(PRELUDE + headers_len..total - 4)
        .unwrap_or_default()
        .to_vec();
    Ok(Some((Message { headers, payload }, total)))
}

fn decode_headers(b: &[u8]) -> Result<Vec<(String, String)>, EventStreamError> {
    let truncated = || err("truncated header");
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let name_len = usize::from(*b.get(i).ok_or_else(truncated)?);
        let name = b.get(i + 1..i + 1 + name_len).ok_or_else(truncated)?;
        let name = std::str::from_utf8(name).map_err(|_| err("header name is not UTF-8"))?;
        i += 1 + name_len;
        let kind = *b.get(i).ok_or_else(truncated)?;
        i += 1;
        let size = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => 2 + usize::from(u16_at(b, i).ok_or_else(truncated)?),
            other => return Err(err(format!("unknown header type {other}"))),
        };
        let value = b.get(i..i + size).ok_or_else(truncated)?;
        if kind == 7 {
            let text = std::str::from_utf8(value.get(2..).unwrap_or_default())
                .map_err(|_| err("header value is not UTF-8"))?;
            out.push((name.to_owned(), text.to_owned()));
        }
        i += size;
    }
    Ok(out)
}

/// Encodes one message with string headers (the mock and tests use this). Header names
/// longer than 255 bytes and values longer than 65535 bytes are truncated.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hdr = Vec::new();
    for (name, value) in headers {
        let name = name.as_bytes();
        let name = name.get(..name.len().min(255)).unwrap_or_default();
        let value = value.as_bytes();
        let value = value.get(..value.len().min(65_535)).unwrap_or_default();
        hdr.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        hdr.extend_from_slice(name);
        hdr.push(7);
        hdr.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        hdr.extend_from_slice(value);
    }
    let total = MIN_MESSAGE + hdr.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(hdr.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}
