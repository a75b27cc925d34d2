//! Writing OpenAI `chat.completion.chunk` SSE frames, for every translator whose upstream
//! streams a single choice (Anthropic, Bedrock).

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

fn write_frame(out: &mut Vec<u8>, chunk: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(chunk.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
