//! OpenAI `chat.completion.chunk` SSE stream → Anthropic Messages SSE stream.

use crate::WireFormat;
use crate::errors::{UpstreamFailure, classify_stream_error};
use crate::sse::{SseEvent, SseReader};

use serde_json::{Value, json};

use super::response::{InboundUsage, usage};
use super::{message_id, stop_reason};
use crate::anthropic::reported_model;

/// The content block currently open in the Anthropic stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Open {
    /// A `thinking` block; the signature (if the upstream sent one) is emitted at its end.
    /// `key` is the upstream's `thinking_blocks` index, when it gave one.
    Thinking {
        index: u64,
        key: Option<u64>,
        signature: String,
    },
    Text {
        index: u64,
    },
    /// A `tool_use` block for `calls[call]`.
    Tool {
        index: u64,
        call: usize,
    },
}

impl Open {
    fn index(&self) -> u64 {
        match self {
            Open::Thinking { index, .. } | Open::Text { index } | Open::Tool { index, .. } => {
                *index
            }
        }
    }
}

/// Where a streamed tool call is in the Anthropic stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// Not started yet: another tool block is open, so its argument pieces wait in `pending`.
    Waiting,
    /// Its `tool_use` block is the open one.
    Open,
    /// Its block was stopped.
    Closed,
}

/// One OpenAI tool call of the stream.
#[derive(Debug)]
struct Call {
    /// The OpenAI `tool_calls[].index`.
    openai_index: u64,
    id: String,
    name: String,
    /// Argument pieces received while the call was waiting.
    pending: String,
    state: CallState,
    /// Tracks whether the arguments sent so far form a complete JSON value.
    end: JsonEnd,
}

/// A streaming check that some JSON text is complete: true once the top-level object or
/// array closes (string-aware). Never true for a bare scalar or malformed text — those
/// calls simply stay open until the stream moves on.
#[derive(Debug, Default, Clone, Copy)]
struct JsonEnd {
    depth: u32,
    in_string: bool,
    escaped: bool,
    done: bool,
    invalid: bool,
}

impl JsonEnd {
    fn feed(&mut self, text: &str) {
        for b in text.bytes() {
            if self.done || self.invalid {
                return;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' if self.depth > 0 => self.in_string = true,
                b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    self.done = self.depth == 0;
                }
                b' ' | b'\n' | b'\r' | b'\t' => {}
                _ if self.depth > 0 => {}
                _ => self.invalid = true,
            }
        }
    }
}

/// Incremental translator: OpenAI SSE bytes (`chat.completion.chunk` frames, `[DONE]`) →
/// Anthropic SSE bytes (`event: X\ndata: {...}\n\n`).
///
/// The first chunk produces `message_start` (usage 0: OpenAI reports usage at the end) and a
/// `ping`; its `model` is that chunk's `model` (the model the upstream reports), or the
/// fallback model when the chunk names none. Reasoning deltas (`reasoning_content`, `reasoning`, LiteLLM `thinking_blocks`)
/// become a `thinking` block (a `signature_delta` at its end when a signature came), content
/// deltas a `text` block, each tool call a `tool_use` block (`input_json_delta` fragments).
/// One block is open at a time, and every block gets all its deltas before its
/// `content_block_stop`; indices count from 0. OpenAI lets the argument deltas of several
/// tool calls interleave (by `index`): a call's block stays open until its arguments form a
/// complete JSON value and another call has something to say; pieces of the calls that are
/// not open meanwhile wait, and are sent when their block opens (at the latest before the
/// message ends). A new `thinking_blocks` index starts a new thinking block (as does
/// reasoning after a signature, when the upstream gives no index). `[DONE]` (or
/// [`finish`](Self::finish) after a `finish_reason`) closes the open block and sends
/// `message_delta` (stop reason, usage from the usage chunk) and `message_stop`.
///
/// Input may be split at any byte; `\n` / `\r\n` line endings and comments are handled. An
/// upstream `data: {"error": …}`, malformed data or a stream that ends before a
/// `finish_reason` sets [`error`](Self::error); nothing more is emitted and the caller ends
/// the client stream with an Anthropic `event: error`.
#[derive(Debug)]
pub struct ChatStreamToMessages {
    model: String,
    sse: SseReader,
    started: bool,
    open: Option<Open>,
    next_index: u64,
    /// The tool calls, in the order they appeared.
    calls: Vec<Call>,
    finish_reason: Option<String>,
    usage: Option<InboundUsage>,
    done: bool,
    error: Option<String>,
    /// The upstream's error event, classified ([`crate::errors::classify_stream_error`]).
    failure: Option<UpstreamFailure>,
}

impl ChatStreamToMessages {
    /// A translator for one response; `fallback_model` goes into `message_start` when the
    /// upstream's first chunk names no model.
    pub fn new(fallback_model: &str) -> Self {
        Self {
            model: fallback_model.to_owned(),
            sse: SseReader::default(),
            started: false,
            open: None,
            next_index: 0,
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
            done: false,
            error: None,
            failure: None,
        }
    }

    /// Feeds raw upstream bytes; returns the complete Anthropic events to forward now.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.stopped() {
            let (events, err) = self.sse.push(bytes);
            self.dispatch_all(events, err, &mut out);
        }
        out
    }

    /// Upstream ended: closes the open block and sends `message_delta` + `message_stop` if
    /// not yet sent. A stream that ends before any `finish_reason` or `[DONE]` sets
    /// [`error`](Self::error) instead.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.stopped() {
            return out;
        }
        let (events, err) = self.sse.finish();
        self.dispatch_all(events, err, &mut out);
        if !self.stopped() {
            if self.finish_reason.is_some() {
                self.end(&mut out);
            } else {
                self.error = Some("upstream stream ended before the response was complete".into());
            }
        }
        out
    }

    /// The upstream error message (an error frame, malformed data, or an early end).
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

    fn dispatch(&mut self, SseEvent { data, .. }: SseEvent, out: &mut Vec<u8>) {
        if data.trim() == "[DONE]" {
            self.end(out);
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            self.error = Some("malformed chunk from upstream".into());
            return;
        };
        if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.as_str())
                .unwrap_or("upstream error");
            self.error = Some(message.to_owned());
            self.failure = Some(classify_stream_error(
                WireFormat::OpenAi,
                None,
                data.as_bytes(),
            ));
            return;
        }
        self.chunk(&v, out);
    }

    fn chunk(&mut self, v: &Value, out: &mut Vec<u8>) {
        let id = v.get("id").and_then(Value::as_str).unwrap_or("");
        if !self.started
            && let Some(model) = reported_model(v)
        {
            model.clone_into(&mut self.model);
        }
        self.begin(id, out);
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(Some(u)));
        }
        let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return;
        };
        if let Some(delta) = choice.get("delta") {
            self.delta(delta, out);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    fn delta(&mut self, delta: &Value, out: &mut Vec<u8>) {
        let blocks: &[Value] = delta
            .get("thinking_blocks")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let reasoning = ["reasoning_content", "reasoning"]
            .iter()
            .find_map(|k| delta.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty());
        if let Some(reasoning) = reasoning {
            // The thinking_blocks index of the same text, if the chunk carries it.
            let key = blocks
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) == Some("thinking"))
                .and_then(|b| b.get("index"))
                .and_then(Value::as_u64);
            self.thinking(reasoning, key, out);
        }
        for block in blocks {
            let get = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or("");
            let key = block.get("index").and_then(Value::as_u64);
            match get("type") {
                "thinking" => {
                    // LiteLLM repeats the text of reasoning_content here.
                    if reasoning.is_none() && !get("thinking").is_empty() {
                        self.thinking(get("thinking"), key, out);
                    }
                    if !get("signature").is_empty() {
                        self.thinking("", key, out);
                        if let Some(Open::Thinking { signature, .. }) = &mut self.open {
                            signature.push_str(get("signature"));
                        }
                    }
                }
                "redacted_thinking" => {
                    let block = json!({ "type": "redacted_thinking", "data": get("data") });
                    self.flush_tools(out);
                    let index = self.start_block(block, out);
                    emit(
                        out,
                        &json!({ "type": "content_block_stop", "index": index }),
                    );
                }
                _ => {}
            }
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            if !matches!(self.open, Some(Open::Text { .. })) {
                self.flush_tools(out);
                let index = self.start_block(json!({ "type": "text", "text": "" }), out);
                self.open = Some(Open::Text { index });
            }
            self.block_delta(json!({ "type": "text_delta", "text": text }), out);
        }
        for (position, call) in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            self.tool_call(call, position as u64, out);
        }
    }

    fn tool_call(&mut self, call: &Value, position: u64, out: &mut Vec<u8>) {
        let openai_index = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position);
        let function = call.get("function");
        let get = |key: &str| {
            function
                .and_then(|f| f.get(key))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let k = match self
            .calls
            .iter()
            .position(|c| c.openai_index == openai_index)
        {
            Some(k) => k,
            None => {
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("toolu_{openai_index}"), str::to_owned);
                self.calls.push(Call {
                    openai_index,
                    id,
                    name: get("name").to_owned(),
                    pending: String::new(),
                    state: CallState::Waiting,
                    end: JsonEnd::default(),
                });
                self.calls.len() - 1
            }
        };
        let partial = get("arguments");
        let Some(c) = self.calls.get_mut(k) else {
            return;
        };
        match c.state {
            CallState::Waiting => c.pending.push_str(partial),
            CallState::Open => {
                if !partial.is_empty() {
                    c.end.feed(partial);
                    self.block_delta(
                        json!({ "type": "input_json_delta", "partial_json": partial }),
                        out,
                    );
                }
            }
            // After its JSON was complete and another call went on: nothing valid is left
            // to add (whitespace at most).
            CallState::Closed => {}
        }
        self.advance_tools(out);
    }

    /// Opens the next waiting tool call when no tool block is open, or when the open one's
    /// arguments are complete.
    fn advance_tools(&mut self, out: &mut Vec<u8>) {
        loop {
            if let Some(Open::Tool { call, .. }) = &self.open
                && !self.calls.get(*call).is_some_and(|c| c.end.done)
            {
                return;
            }
            let Some(k) = self
                .calls
                .iter()
                .position(|c| c.state == CallState::Waiting)
            else {
                return;
            };
            self.open_tool(k, out);
        }
    }

    /// Closes the open block and starts the `tool_use` block of `calls[k]`, with the
    /// argument pieces it collected while waiting.
    fn open_tool(&mut self, k: usize, out: &mut Vec<u8>) {
        let Some(c) = self.calls.get_mut(k) else {
            return;
        };
        c.state = CallState::Open;
        let block = json!({ "type": "tool_use", "id": c.id, "name": c.name, "input": {} });
        let pending = std::mem::take(&mut c.pending);
        c.end.feed(&pending);
        let index = self.start_block(block, out);
        self.open = Some(Open::Tool { index, call: k });
        if !pending.is_empty() {
            self.block_delta(
                json!({ "type": "input_json_delta", "partial_json": pending }),
                out,
            );
        }
    }

    /// Sends every tool call still waiting (each block whole), leaving the last one open.
    fn flush_tools(&mut self, out: &mut Vec<u8>) {
        while let Some(k) = self
            .calls
            .iter()
            .position(|c| c.state == CallState::Waiting)
        {
            self.open_tool(k, out);
        }
    }

    /// Continues the open thinking block, or starts one: when none is open, when `key` (the
    /// upstream's thinking block index) differs from the open block's, or — when either has
    /// no index — once the open block got its signature (a signature ends a block: back-to-
    /// back blocks are never merged, nor their signatures concatenated).
    fn thinking(&mut self, text: &str, key: Option<u64>, out: &mut Vec<u8>) {
        let same = match &self.open {
            Some(Open::Thinking {
                key: open_key,
                signature,
                ..
            }) => match (key, open_key) {
                (Some(key), Some(open_key)) => key == *open_key,
                _ => signature.is_empty(),
            },
            _ => false,
        };
        if !same {
            self.flush_tools(out);
            let block = json!({ "type": "thinking", "thinking": "", "signature": "" });
            let index = self.start_block(block, out);
            self.open = Some(Open::Thinking {
                index,
                key,
                signature: String::new(),
            });
        } else if let Some(Open::Thinking { key: open_key, .. }) = &mut self.open
            && open_key.is_none()
        {
            *open_key = key;
        }
        if !text.is_empty() {
            self.block_delta(json!({ "type": "thinking_delta", "thinking": text }), out);
        }
    }

    /// `message_start` and a `ping`, once.
    fn begin(&mut self, upstream_id: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        emit(
            out,
            &json!({ "type": "message_start", "message": {
                "id": message_id(upstream_id),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": { "input_tokens": 0, "output_tokens": 0 },
            }}),
        );
        emit(out, &json!({ "type": "ping" }));
    }

    /// Closes the open block and starts `block`; returns its index (the caller sets `open`).
    fn start_block(&mut self, block: Value, out: &mut Vec<u8>) -> u64 {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        emit(
            out,
            &json!({ "type": "content_block_start", "index": index, "content_block": block }),
        );
        index
    }

    fn block_delta(&self, delta: Value, out: &mut Vec<u8>) {
        if let Some(open) = &self.open {
            emit(
                out,
                &json!({ "type": "content_block_delta", "index": open.index(), "delta": delta }),
            );
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if let Open::Tool { call, .. } = &open
            && let Some(c) = self.calls.get_mut(*call)
        {
            c.state = CallState::Closed;
        }
        if let Open::Thinking {
            index, signature, ..
        } = &open
            && !signature.is_empty()
        {
            let delta = json!({ "type": "signature_delta", "signature": signature });
            emit(
                out,
                &json!({ "type": "content_block_delta", "index": index, "delta": delta }),
            );
        }
        emit(
            out,
            &json!({ "type": "content_block_stop", "index": open.index() }),
        );
    }

    /// Closes the open block, then `message_delta` and `message_stop`.
    fn end(&mut self, out: &mut Vec<u8>) {
        self.begin("", out);
        self.flush_tools(out);
        self.close(out);
        let stop = stop_reason(self.finish_reason.as_deref(), !self.calls.is_empty());
        let usage = match self.usage {
            Some(u) => u.to_anthropic(),
            None => json!({ "output_tokens": 0 }),
        };
        emit(
            out,
            &json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop, "stop_sequence": null },
                "usage": usage,
            }),
        );
        emit(out, &json!({ "type": "message_stop" }));
        self.done = true;
    }
}

/// `event: <type>\ndata: <json>\n\n`.
fn emit(out: &mut Vec<u8>, event: &Value) {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(event.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
