//! Anthropic Messages SSE stream → OpenAI `chat.completion.chunk` SSE stream.

use crate::WireFormat;
use crate::errors::{UpstreamFailure, classify_stream_error};
use crate::openai_chunks::{
    ChunkWriter, ThinkingIndex, redacted_delta, signature_delta, thinking_delta,
};
use crate::sse::{SseEvent, SseReader};
use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Usage, finish_reason, reported_model};

/// Incremental translator for an Anthropic SSE stream → OpenAI SSE bytes
/// (`data: {chunk}\n\n` frames, ending with `data: [DONE]\n\n`).
///
/// Thinking is streamed in LiteLLM's shape: each `thinking_delta` becomes
/// `reasoning_content` plus a `thinking_blocks` entry with the same text, the
/// `signature_delta` a `thinking_blocks` entry with the signature (and empty text), a
/// `redacted_thinking` block one entry with its `data`; every entry carries `index`, the
/// block's position among the message's thinking blocks, so that accumulating the deltas by
/// index (concatenating strings) yields the blocks to replay.
///
/// Events may be split across [`push`](Self::push) calls at any byte; `\n` and `\r\n` line
/// endings, comments and `ping` events are handled. After an Anthropic `error` event, a
/// malformed event or a truncated stream, [`error`](Self::error) returns the message and the
/// translator emits nothing more: the caller ends the client stream with an error event.
#[derive(Debug)]
pub struct StreamTranslator {
    w: ChunkWriter,
    sse: SseReader,
    /// Anthropic content block index → OpenAI tool call index.
    tools: HashMap<u64, usize>,
    /// Anthropic content block index → index among the message's `thinking_blocks`.
    thinking: ThinkingIndex,
    usage: Usage,
    finished: bool,
    done: bool,
    error: Option<String>,
    /// The upstream's error event, classified ([`crate::errors::classify_stream_error`]).
    failure: Option<UpstreamFailure>,
}

impl StreamTranslator {
    /// A translator for one response. `include_usage` is the client's
    /// `stream_options.include_usage`: a final usage chunk with `choices: []`, and
    /// `usage: null` on every other chunk. Chunks carry the model Anthropic reports in
    /// `message_start` (`message.model`), or `fallback_model` when it names none.
    pub fn new(fallback_model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            w: ChunkWriter::new(String::new(), fallback_model, created, include_usage),
            sse: SseReader::default(),
            tools: HashMap::new(),
            thinking: ThinkingIndex::default(),
            usage: Usage::default(),
            finished: false,
            done: false,
            error: None,
            failure: None,
        }
    }

    /// Feeds raw upstream bytes; returns the OpenAI SSE bytes to forward now (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.stopped() {
            let (events, err) = self.sse.push(bytes);
            self.dispatch_all(events, err, &mut out);
        }
        out
    }

    /// Upstream ended: returns anything left. A stream that ends before Anthropic finished
    /// the message (no `message_delta`) sets [`error`](Self::error) instead.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.stopped() {
            return out;
        }
        let (events, err) = self.sse.finish();
        self.dispatch_all(events, err, &mut out);
        if !self.stopped() {
            if self.finished {
                self.end(&mut out);
            } else {
                self.error = Some("upstream stream ended before the message was complete".into());
            }
        }
        out
    }

    /// The message of an Anthropic `event: error` (or of a broken stream), so the caller can
    /// end the client stream with an error event.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// When [`error`](Self::error) comes from an error event of the upstream (not a broken
    /// stream): that event classified — what failed, and its scrubbed message — so the
    /// caller can tell the client what kind of failure it was.
    pub fn failure(&self) -> Option<&UpstreamFailure> {
        self.failure.as_ref()
    }

    fn stopped(&self) -> bool {
        self.done || self.error.is_some()
    }

    /// Translates events in order, stopping at the first that ends the stream; then records
    /// a reading error, if any.
    fn dispatch_all(&mut self, events: Vec<SseEvent>, err: Option<&str>, out: &mut Vec<u8>) {
        for event in events {
            if self.stopped() {
                return;
            }
            self.dispatch(event, out);
        }
        if let Some(e) = err
            && !self.stopped()
        {
            self.error = Some(e.to_owned());
        }
    }

    fn dispatch(&mut self, SseEvent { event, data }: SseEvent, out: &mut Vec<u8>) {
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            self.error = Some("malformed event from upstream".into());
            return;
        };
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(&event);
        match kind {
            "message_start" => {
                let message = v.get("message");
                if let Some(id) = message.and_then(|m| m.get("id")).and_then(Value::as_str) {
                    id.clone_into(&mut self.w.id);
                }
                if let Some(u) = message.and_then(|m| m.get("usage")) {
                    self.usage.update(u);
                }
                if let Some(model) = message.and_then(reported_model) {
                    self.w.set_model(model);
                }
                self.w.start(out);
            }
            "content_block_start" => self.block_start(&v, out),
            "content_block_delta" => self.block_delta(&v, out),
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.usage.update(u);
                }
                let stop = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str);
                self.finished = true;
                self.w.chunk(json!({}), Some(finish_reason(stop)), out);
            }
            "message_stop" => {
                if !self.finished {
                    self.finished = true;
                    self.w.chunk(json!({}), Some("stop"), out);
                }
                self.end(out);
            }
            "error" => {
                let message = v
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error");
                self.error = Some(message.to_owned());
                self.failure = Some(classify_stream_error(
                    WireFormat::Anthropic,
                    None,
                    data.as_bytes(),
                ));
            }
            // ping, content_block_stop, and event types added later.
            _ => {}
        }
    }

    fn block_start(&mut self, v: &Value, out: &mut Vec<u8>) {
        let Some(block) = v.get("content_block") else {
            return;
        };
        let index = v.get("index").and_then(Value::as_u64);
        let get = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or("");
        match get("type") {
            "text" if !get("text").is_empty() => {
                self.w.chunk(json!({ "content": get("text") }), None, out);
            }
            "thinking" => {
                let k = self.thinking.of(index);
                if !get("thinking").is_empty() {
                    self.w.chunk(thinking_delta(k, get("thinking")), None, out);
                }
            }
            "redacted_thinking" => {
                let k = self.thinking.of(index);
                self.w.chunk(redacted_delta(k, get("data")), None, out);
            }
            "tool_use" => {
                let k = self.tools.len();
                if let Some(index) = index {
                    self.tools.insert(index, k);
                }
                let delta = json!({
                    "tool_calls": [{
                        "index": k,
                        "id": get("id"),
                        "type": "function",
                        "function": { "name": get("name"), "arguments": "" },
                    }],
                });
                self.w.chunk(delta, None, out);
            }
            _ => {}
        }
    }

    fn block_delta(&mut self, v: &Value, out: &mut Vec<u8>) {
        let Some(delta) = v.get("delta") else {
            return;
        };
        let index = v.get("index").and_then(Value::as_u64);
        let get = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or("");
        let converted = match get("type") {
            "text_delta" => json!({ "content": get("text") }),
            "thinking_delta" => thinking_delta(self.thinking.of(index), get("thinking")),
            "signature_delta" => signature_delta(self.thinking.of(index), get("signature")),
            "input_json_delta" => {
                let partial = get("partial_json");
                let Some(&k) = index.and_then(|i| self.tools.get(&i)) else {
                    return;
                };
                if partial.is_empty() {
                    return;
                }
                json!({ "tool_calls": [{ "index": k, "function": { "arguments": partial } }] })
            }
            // citations_delta and later additions have no OpenAI counterpart.
            _ => return,
        };
        self.w.chunk(converted, None, out);
    }

    /// The usage chunk (if asked for) and `[DONE]`.
    fn end(&mut self, out: &mut Vec<u8>) {
        self.w.end(self.usage.to_openai(), out);
        self.done = true;
    }
}
