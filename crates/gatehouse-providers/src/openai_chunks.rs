//! Writing OpenAI `chat.completion.chunk` SSE frames, for every translator whose upstream
//! streams a single choice (Anthropic, Bedrock), and the LiteLLM-shaped thinking deltas
//! both stream Claude's reasoning as.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::json_mode::JsonStream;

/// Frames one streamed completion: the role chunk once, delta chunks (`usage: null` on each
/// when the client asked for usage), then the usage chunk and `[DONE]`.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    /// The completion id on every chunk (a translator may set it once the upstream names it).
    pub(crate) id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    /// Turns the emulated `response_format` tool call back into content.
    json: JsonStream,
}

impl ChunkWriter {
    pub(crate) fn new(id: String, model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            id,
            model: model.to_owned(),
            created,
            include_usage,
            started: false,
            json: JsonStream::default(),
        }
    }

    /// The `model` of the chunks written from now on (the model the upstream reports).
    pub(crate) fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }

    /// The first chunk: the assistant role (once).
    pub(crate) fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.frame(json!({ "role": "assistant", "content": "" }), None, out);
        }
    }

    /// A delta chunk (after the role chunk, if not sent yet). Deltas of the tool call that
    /// emulates `response_format` are sent as content ([`JsonStream`]).
    pub(crate) fn chunk(&mut self, mut delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        self.start(out);
        if !self.json.rewrite(&mut delta) && finish.is_none() {
            return;
        }
        let finish = self.json.finish(finish);
        self.frame(delta, finish, out);
    }

    /// The usage chunk (if the client asked for it) and `data: [DONE]`.
    pub(crate) fn end(&self, usage: Value, out: &mut Vec<u8>) {
        if self.include_usage {
            let mut chunk = self.envelope();
            chunk.insert("choices".into(), json!([]));
            chunk.insert("usage".into(), usage);
            write_frame(out, &Value::Object(chunk));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn frame(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        let mut chunk = self.envelope();
        chunk.insert(
            "choices".into(),
            json!([{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }]),
        );
        if self.include_usage {
            chunk.insert("usage".into(), Value::Null);
        }
        write_frame(out, &Value::Object(chunk));
    }

    fn envelope(&self) -> Map<String, Value> {
        let mut chunk = Map::new();
        chunk.insert("id".into(), Value::String(self.id.clone()));
        chunk.insert("object".into(), "chat.completion.chunk".into());
        chunk.insert("created".into(), self.created.into());
        chunk.insert("model".into(), Value::String(self.model.clone()));
        chunk.insert("system_fingerprint".into(), Value::Null);
        chunk
    }
}

/// Numbers a streamed message's thinking blocks for LiteLLM's `thinking_blocks[].index`: the
/// upstream's content block index → the block's position among the message's thinking
/// blocks, in order of first appearance.
///
/// Deltas without an upstream index (Anthropic and Bedrock always send one) count as one
/// block of their own: its text pieces and signature still accumulate into one entry, and a
/// later indexed block gets a new number instead of merging into it.
#[derive(Debug, Default)]
pub(crate) struct ThinkingIndex(HashMap<Option<u64>, usize>);

impl ThinkingIndex {
    /// The `thinking_blocks` index of the block at upstream index `upstream` (a new one for
    /// a block not seen yet).
    pub(crate) fn of(&mut self, upstream: Option<u64>) -> usize {
        let next = self.0.len();
        *self.0.entry(upstream).or_insert(next)
    }
}

/// A piece of thinking text: `reasoning_content` (what most OpenAI clients show) and the same
/// text in LiteLLM's `thinking_blocks`, with the block's `index` so that clients which merge
/// list deltas by index (as the OpenAI SDKs' stream helpers do for `tool_calls`) rebuild
/// `{type, thinking, signature}` whole, ready to send back.
pub(crate) fn thinking_delta(index: usize, text: &str) -> Value {
    json!({
        "reasoning_content": text,
        "thinking_blocks": [{ "index": index, "type": "thinking", "thinking": text }],
    })
}

/// A thinking block's signature: a `thinking_blocks` entry with it (and an empty text).
pub(crate) fn signature_delta(index: usize, signature: &str) -> Value {
    json!({
        "thinking_blocks": [{
            "index": index,
            "type": "thinking",
            "thinking": "",
            "signature": signature,
        }],
    })
}

/// A redacted thinking block: one `thinking_blocks` entry with its `data`.
pub(crate) fn redacted_delta(index: usize, data: &str) -> Value {
    json!({
        "thinking_blocks": [{ "index": index, "type": "redacted_thinking", "data": data }],
    })
}

fn write_frame(out: &mut Vec<u8>, chunk: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(chunk.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
