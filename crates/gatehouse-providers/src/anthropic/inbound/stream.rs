//! OpenAI `chat.completion.chunk` SSE stream → Anthropic Messages SSE stream.

use crate::sse::{SseEvent, SseReader};
use std::collections::HashMap;

use serde_json::{Value, json};

use super::response::{InboundUsage, usage};
use super::{message_id, stop_reason};
use crate::anthropic::reported_model;

/// The content block currently open in the Anthropic stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Open {
    /// A `thinking` block; the signature (if the upstream sent one) is emitted at its end.
    Thinking {
        index: u64,
        signature: String,
    },
    Text {
        index: u64,
    },
    /// A `tool_use` block.
    Tool {
        index: u64,
    },
}

impl Open {
    fn index(&self) -> u64 {
        match self {
            Open::Thinking { index, .. } | Open::Text { index } | Open::Tool { index } => *index,
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
/// One block is open at a time; indices count from 0. `[DONE]` (or [`finish`](Self::finish)
/// after a `finish_reason`) closes the open block and sends `message_delta` (stop reason,
/// usage from the usage chunk) and `message_stop`.
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
    /// OpenAI tool call index → Anthropic block index.
    tools: HashMap<u64, u64>,
    finish_reason: Option<String>,
    usage: Option<InboundUsage>,
    done: bool,
    error: Option<String>,
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
            tools: HashMap::new(),
            finish_reason: None,
            usage: None,
            done: false,
            error: None,
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
        let reasoning = ["reasoning_content", "reasoning"]
            .iter()
            .find_map(|k| delta.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty());
        if let Some(reasoning) = reasoning {
            self.thinking(reasoning, out);
        }
        for block in delta
            .get("thinking_blocks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let get = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or("");
            match get("type") {
                "thinking" => {
                    // LiteLLM repeats the text of reasoning_content here.
                    if reasoning.is_none() && !get("thinking").is_empty() {
                        self.thinking(get("thinking"), out);
                    }
                    if !get("signature").is_empty() {
                        if !matches!(self.open, Some(Open::Thinking { .. })) {
                            self.thinking("", out);
                        }
                        if let Some(Open::Thinking { signature, .. }) = &mut self.open {
                            signature.push_str(get("signature"));
                        }
                    }
                }
                "redacted_thinking" => {
                    let block = json!({ "type": "redacted_thinking", "data": get("data") });
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
        let call_index = call
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
        let index = match self.tools.get(&call_index) {
            Some(&index) => index,
            None => {
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("toolu_{call_index}"), str::to_owned);
                let block =
                    json!({ "type": "tool_use", "id": id, "name": get("name"), "input": {} });
                let index = self.start_block(block, out);
                self.open = Some(Open::Tool { index });
                self.tools.insert(call_index, index);
                index
            }
        };
        let partial = get("arguments");
        if !partial.is_empty() {
            // A fragment for an earlier call after another started goes to its own index.
            let delta = json!({ "type": "input_json_delta", "partial_json": partial });
            emit(
                out,
                &json!({ "type": "content_block_delta", "index": index, "delta": delta }),
            );
        }
    }

    fn thinking(&mut self, text: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Thinking { .. })) {
            let block = json!({ "type": "thinking", "thinking": "", "signature": "" });
            let index = self.start_block(block, out);
            self.open = Some(Open::Thinking {
                index,
                signature: String::new(),
            });
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
        if let Open::Thinking { index, signature } = &open
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
        self.close(out);
        let stop = stop_reason(self.finish_reason.as_deref(), !self.tools.is_empty());
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
