//! Gemini `streamGenerateContent?alt=sse` stream → OpenAI `chat.completion.chunk` SSE stream.

use crate::WireFormat;
use crate::errors::{UpstreamFailure, classify_stream_error};
use crate::sse::{SseEvent, SseReader};
use serde_json::{Value, json};

use super::ids::{digest_hex, id_seed, tool_call_id};
use super::{completion_id, finish_reason, function_call, model_version, usage_to_openai};

/// Per-candidate state.
#[derive(Debug, Default, Clone)]
struct Choice {
    index: u64,
    /// Function calls emitted so far (the next tool call index).
    calls: usize,
    /// A chunk (with the role) was sent.
    started: bool,
    finished: bool,
}

/// Incremental translator for a Gemini SSE stream (`data: {GenerateContentResponse}`
/// frames) → OpenAI SSE bytes (`data: {chunk}\n\n` frames, ending with `data: [DONE]\n\n`).
///
/// Frames may be split across [`push`](Self::push) calls at any byte; `\n` and `\r\n` line
/// endings and comments are handled. Gemini has no end event: the stream is complete when
/// upstream closes it after a `finishReason` (or a blocked prompt). Each `functionCall`
/// part becomes one complete tool call delta (Gemini does not split arguments), its
/// `thoughtSignature` encoded in the id as in the non-streamed answer. The latest
/// `usageMetadata` wins. Each chunk names the model of the frame it comes from
/// (`modelVersion`; the latest one seen when a frame has none, the fallback model before
/// any). After an `{"error": …}` frame, a malformed frame or a stream that
/// ends without a `finishReason`, [`error`](Self::error) returns the message and the
/// translator emits nothing more.
#[derive(Debug)]
pub struct StreamTranslator {
    model: String,
    created: u64,
    include_usage: bool,
    sse: SseReader,
    id: Option<String>,
    /// The seed of the tool call ids (from the first frame).
    seed: String,
    choices: Vec<Choice>,
    usage: Option<Value>,
    finished: bool,
    done: bool,
    error: Option<String>,
    /// The upstream's error event, classified ([`crate::errors::classify_stream_error`]).
    failure: Option<UpstreamFailure>,
}

impl StreamTranslator {
    /// A translator for one response. `include_usage` is the client's
    /// `stream_options.include_usage`: a final usage chunk with `choices: []`, and
    /// `usage: null` on every other chunk. `fallback_model` is the chunks' `model` until
    /// Gemini reports one (`modelVersion`).
    pub fn new(fallback_model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            model: fallback_model.to_owned(),
            created,
            include_usage,
            sse: SseReader::default(),
            id: None,
            seed: String::new(),
            choices: Vec::new(),
            usage: None,
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

    /// Upstream ended: returns anything left (the usage chunk and `[DONE]`). A stream that
    /// ends before any `finishReason` sets [`error`](Self::error) instead.
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
                self.error = Some("upstream stream ended before the response was complete".into());
            }
        }
        out
    }

    /// The message of an upstream error frame (or of a broken stream), so the caller can end
    /// the client stream with an error event.
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
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            self.error = Some("malformed event from upstream".into());
            return;
        };
        if let Some(error) = v.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            self.error = Some(message.to_owned());
            self.failure = Some(classify_stream_error(
                WireFormat::Gemini,
                None,
                data.as_bytes(),
            ));
            return;
        }
        if self.id.is_none() {
            self.id = Some(completion_id(&v));
            let created = self.created;
            self.seed = id_seed(&v, || format!("{created}:{}", digest_hex(data.as_bytes())));
        }
        if let Some(model) = model_version(&v) {
            model.clone_into(&mut self.model);
        }
        if let Some(usage) = v.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        let candidates = v
            .get("candidates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, candidate) in candidates.iter().enumerate() {
            let index = candidate
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64);
            self.candidate(candidate, index, out);
        }
        let blocked = v
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some();
        if candidates.is_empty() && blocked {
            let slot = self.slot(0);
            if let Some(c) = self.choices.get_mut(slot) {
                c.finished = true;
            }
            self.finished = true;
            self.chunk(0, json!({}), Some("content_filter"), out);
        }
    }

    fn slot(&mut self, index: u64) -> usize {
        match self.choices.iter().position(|c| c.index == index) {
            Some(slot) => slot,
            None => {
                self.choices.push(Choice {
                    index,
                    ..Choice::default()
                });
                self.choices.len() - 1
            }
        }
    }

    fn candidate(&mut self, candidate: &Value, index: u64, out: &mut Vec<u8>) {
        let slot = self.slot(index);
        if self.choices.get(slot).is_some_and(|c| c.finished) {
            return;
        }
        let parts = candidate
            .get("content")
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for part in parts {
            if let Some(call) = part.get("functionCall") {
                let (name, arguments) = function_call(call);
                let Some(c) = self.choices.get_mut(slot) else {
                    return;
                };
                let k = c.calls;
                c.calls += 1;
                let signature = part.get("thoughtSignature").and_then(Value::as_str);
                let delta = json!({
                    "tool_calls": [{
                        "index": k,
                        "id": tool_call_id(&self.seed, index, k, signature),
                        "type": "function",
                        "function": { "name": name, "arguments": arguments },
                    }],
                });
                self.chunk(index, delta, None, out);
            } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                if text.is_empty() {
                    continue;
                }
                let delta = if part.get("thought").and_then(Value::as_bool) == Some(true) {
                    json!({ "reasoning_content": text })
                } else {
                    json!({ "content": text })
                };
                self.chunk(index, delta, None, out);
            }
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            let Some(c) = self.choices.get_mut(slot) else {
                return;
            };
            c.finished = true;
            let called = c.calls > 0;
            self.finished = true;
            self.chunk(
                index,
                json!({}),
                Some(finish_reason(Some(reason), called)),
                out,
            );
        }
    }

    fn chunk(&mut self, index: u64, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        // The first chunk of each choice carries the role.
        let delta = match delta {
            Value::Object(mut d) if !self.started(index) => {
                d.insert("role".into(), "assistant".into());
                Value::Object(d)
            }
            other => other,
        };
        let mut chunk = self.envelope();
        chunk.insert(
            "choices".into(),
            json!([{ "index": index, "delta": delta, "finish_reason": finish, "logprobs": null }]),
        );
        if self.include_usage {
            chunk.insert("usage".into(), Value::Null);
        }
        write_frame(out, &Value::Object(chunk));
    }

    /// Whether choice `index` already had a chunk (marks it as started).
    fn started(&mut self, index: u64) -> bool {
        let slot = self.slot(index);
        match self.choices.get_mut(slot) {
            Some(c) => std::mem::replace(&mut c.started, true),
            None => true,
        }
    }

    fn envelope(&self) -> serde_json::Map<String, Value> {
        let mut chunk = serde_json::Map::new();
        let id = self.id.as_deref().unwrap_or("chatcmpl-gemini");
        chunk.insert("id".into(), Value::String(id.to_owned()));
        chunk.insert("object".into(), "chat.completion.chunk".into());
        chunk.insert("created".into(), self.created.into());
        chunk.insert("model".into(), Value::String(self.model.clone()));
        chunk.insert("system_fingerprint".into(), Value::Null);
        chunk
    }

    /// The usage chunk (if asked for) and `[DONE]`.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            let mut chunk = self.envelope();
            chunk.insert("choices".into(), json!([]));
            chunk.insert("usage".into(), usage_to_openai(self.usage.as_ref()));
            write_frame(out, &Value::Object(chunk));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }
}

fn write_frame(out: &mut Vec<u8>, chunk: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(chunk.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
