//! ConverseStream (AWS event-stream frames) → OpenAI `chat.completion.chunk` SSE stream.

use crate::WireFormat;
use crate::errors::{UpstreamFailure, classify_stream_error};
use crate::openai_chunks::{
    ChunkWriter, ThinkingIndex, redacted_delta, signature_delta, thinking_delta,
};
use std::collections::HashMap;

use serde_json::{Value, json};

use super::eventstream::{EventStreamDecoder, Message};
use super::{finish_reason, usage};
use crate::anthropic::Usage;

/// Incremental translator for a ConverseStream response body → OpenAI SSE bytes
/// (`data: {chunk}\n\n` frames, ending with `data: [DONE]\n\n`).
///
/// Frames may be split across [`push`](Self::push) calls at any byte. Events (named by the
/// `:event-type` header): `messageStart` → the role chunk; `contentBlockStart` with a
/// `toolUse` start → a tool call chunk with id and name; `contentBlockDelta` → `content`,
/// tool `arguments` fragments or reasoning (below); `messageStop` → the finish chunk;
/// `metadata` → the usage chunk (when `include_usage`) and `[DONE]`. A stream that ends
/// after `messageStop` without `metadata` still ends with `[DONE]`.
///
/// Reasoning is streamed in LiteLLM's shape, as [`crate::anthropic::StreamTranslator`]
/// streams Anthropic's thinking: a `reasoningContent.text` delta becomes `reasoning_content`
/// plus a `thinking_blocks` entry with the same text, a `signature` delta a `thinking_blocks`
/// entry with the signature (and empty text), a `redactedContent` delta a `redacted_thinking`
/// entry with its `data`. Every entry carries `index`, the block's position among the
/// message's reasoning blocks (by `contentBlockIndex`), so that clients which merge list
/// deltas by index — the OpenAI SDKs' stream helpers refuse list entries without one —
/// rebuild each block whole (text and signature), ready to send back.
///
/// An `exception` (or `error`) message, a bad frame (length, CRC), a malformed payload or
/// a stream that ends before `messageStop` sets [`error`](Self::error); the translator then
/// emits nothing more and the caller ends the client stream with an error event.
#[derive(Debug)]
pub struct StreamTranslator {
    w: ChunkWriter,
    decoder: EventStreamDecoder,
    /// Bedrock `contentBlockIndex` → OpenAI tool call index.
    tools: HashMap<u64, usize>,
    /// Bedrock `contentBlockIndex` → index among the message's `thinking_blocks`.
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
    /// `usage: null` on every other chunk. Chunk ids are `chatcmpl-bedrock-<created>`; their
    /// `model` is `model` (ConverseStream names no model: the gateway passes the
    /// deployment's upstream model id).
    pub fn new(model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            w: ChunkWriter::new(
                format!("chatcmpl-bedrock-{created}"),
                model,
                created,
                include_usage,
            ),
            decoder: EventStreamDecoder::new(),
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
        if self.stopped() {
            return out;
        }
        match self.decoder.push(bytes) {
            Ok(messages) => {
                for message in messages {
                    self.message(&message, &mut out);
                    if self.stopped() {
                        break;
                    }
                }
            }
            Err(e) => self.error = Some(e.to_string()),
        }
        out
    }

    /// Upstream ended: returns anything left. A stream that ends before `messageStop` (or
    /// mid-frame) sets [`error`](Self::error) instead.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.stopped() {
            return out;
        }
        if self.finished && self.decoder.is_empty() {
            self.end(&mut out);
        } else {
            self.error = Some("upstream stream ended before the message was complete".into());
        }
        out
    }

    /// The message of an upstream exception (or of a broken stream).
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

    fn message(&mut self, message: &Message, out: &mut Vec<u8>) {
        let payload: Value = if message.payload.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&message.payload) {
                Ok(v) => v,
                Err(_) => {
                    self.error = Some("malformed event from upstream".into());
                    return;
                }
            }
        };
        match message.header(":message-type").unwrap_or("event") {
            "event" => {}
            "exception" => {
                let kind = message.header(":exception-type").unwrap_or("exception");
                let text = payload
                    .get("message")
                    .or_else(|| payload.get("Message"))
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error");
                self.error = Some(format!("{kind}: {text}"));
                self.failure = Some(classify_stream_error(
                    WireFormat::Bedrock,
                    Some(kind),
                    &message.payload,
                ));
                return;
            }
            _ => {
                let code = message.header(":error-code").unwrap_or("error");
                let text = message.header(":error-message").unwrap_or("upstream error");
                self.error = Some(format!("{code}: {text}"));
                self.failure = Some(classify_stream_error(
                    WireFormat::Bedrock,
                    Some(code),
                    json!({ "message": text }).to_string().as_bytes(),
                ));
                return;
            }
        }
        match message.header(":event-type").unwrap_or("") {
            "messageStart" => self.w.start(out),
            "contentBlockStart" => self.block_start(&payload, out),
            "contentBlockDelta" => self.block_delta(&payload, out),
            "messageStop" => {
                let stop = payload.get("stopReason").and_then(Value::as_str);
                self.finished = true;
                self.w.chunk(json!({}), Some(finish_reason(stop)), out);
            }
            "metadata" => {
                if let Some(u) = payload.get("usage") {
                    self.usage = usage(u);
                }
                if self.finished {
                    self.end(out);
                }
            }
            // contentBlockStop and event types added later.
            _ => {}
        }
    }

    fn block_start(&mut self, v: &Value, out: &mut Vec<u8>) {
        let Some(tool) = v.get("start").and_then(|s| s.get("toolUse")) else {
            return;
        };
        let get = |key: &str| tool.get(key).and_then(Value::as_str).unwrap_or("");
        let k = self.tools.len();
        if let Some(index) = v.get("contentBlockIndex").and_then(Value::as_u64) {
            self.tools.insert(index, k);
        }
        let delta = json!({
            "tool_calls": [{
                "index": k,
                "id": get("toolUseId"),
                "type": "function",
                "function": { "name": get("name"), "arguments": "" },
            }],
        });
        self.w.chunk(delta, None, out);
    }

    fn block_delta(&mut self, v: &Value, out: &mut Vec<u8>) {
        let Some(delta) = v.get("delta") else {
            return;
        };
        let converted = if let Some(text) = delta.get("text").and_then(Value::as_str) {
            if text.is_empty() {
                return;
            }
            json!({ "content": text })
        } else if let Some(tool) = delta.get("toolUse") {
            let partial = tool.get("input").and_then(Value::as_str).unwrap_or("");
            let index = v.get("contentBlockIndex").and_then(Value::as_u64);
            let Some(&k) = index.and_then(|i| self.tools.get(&i)) else {
                return;
            };
            if partial.is_empty() {
                return;
            }
            json!({ "tool_calls": [{ "index": k, "function": { "arguments": partial } }] })
        } else if let Some(r) = delta.get("reasoningContent") {
            let get = |key: &str| r.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
            let index = v.get("contentBlockIndex").and_then(Value::as_u64);
            if let Some(text) = get("text") {
                thinking_delta(self.thinking.of(index), text)
            } else if let Some(signature) = get("signature") {
                signature_delta(self.thinking.of(index), signature)
            } else if let Some(data) = get("redactedContent") {
                redacted_delta(self.thinking.of(index), data)
            } else {
                return;
            }
        } else {
            // citations and later additions: no OpenAI counterpart.
            return;
        };
        self.w.chunk(converted, None, out);
    }

    /// The usage chunk (if asked for) and `[DONE]`.
    fn end(&mut self, out: &mut Vec<u8>) {
        self.w.end(self.usage.to_openai(), out);
        self.done = true;
    }
}
