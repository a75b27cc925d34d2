//! Token counting for when an upstream reports no usage.
//!
//! Uses tiktoken's `o200k_base` vocabulary (GPT-4o, GPT-4.1, o-series, GPT-5),
//! shipped inside the `tiktoken-rs` crate, so nothing is downloaded. The
//! tokenizer is built **lazily, once**, on first use: it costs a few tens of MB
//! of memory and tens of milliseconds, so a gateway whose upstreams all report
//! usage never pays for it. For non-OpenAI models the counts are estimates.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// Tokens added for every chat message (OpenAI's documented counting for
/// current chat models: `<|start|>{role}\n{content}<|end|>\n`).
pub const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra tokens for a message's `name` field.
pub const TOKENS_PER_NAME: u64 = 1;
/// Tokens that prime every reply (`<|start|>assistant<|message|>`).
pub const REPLY_PRIMING_TOKENS: u64 = 3;
/// Fixed allowance for one image (or other non-text part) in an OpenAI chat
/// request: 765 tokens, what a 1024×1024 image costs at high detail on GPT-4o
/// (85 base + 4 tiles × 170).
pub const IMAGE_TOKEN_ALLOWANCE: u64 = 765;
/// Fixed allowance for one image or document block in an Anthropic request:
/// about 1,600 tokens, Anthropic's figure for an image at the 1.15-megapixel
/// size limit before downscaling.
pub const ANTHROPIC_IMAGE_TOKEN_ALLOWANCE: u64 = 1_600;

/// Text is tokenized in pieces of at most this many bytes, so that one huge
/// run of whitespace cannot make the tokenizer's regex backtrack without end.
const SEGMENT_BYTES: usize = 4 * 1024;

static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();

fn tokenizer() -> Option<&'static CoreBPE> {
    O200K
        .get_or_init(|| {
            catch_unwind(tiktoken_rs::o200k_base)
                .ok()
                .and_then(Result::ok)
        })
        .as_ref()
}

/// True once the tokenizer has been built (by a call to a counting function).
pub fn tokenizer_loaded() -> bool {
    O200K.get().is_some()
}

/// A rough count for when the tokenizer is unavailable: one token per four
/// bytes, rounded up.
fn bytes_estimate(len: usize) -> u64 {
    (len as u64).div_ceil(4)
}

/// The largest char boundary of `s` at or below `at`.
fn floor_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut i = at;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Cuts `s` into pieces of at most [`SEGMENT_BYTES`], preferring to cut just
/// before whitespace so words stay whole.
fn segments(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = floor_boundary(rest, SEGMENT_BYTES);
        if cut < rest.len() {
            // Back up to a whitespace boundary within the last quarter, if any.
            let window_start = floor_boundary(rest, cut - cut / 4);
            if let Some(ws) = rest[window_start..cut].rfind(char::is_whitespace)
                && window_start + ws > 0
            {
                cut = window_start + ws;
            }
            if cut == 0 {
                // A single char longer than a segment cannot happen (chars are
                // at most 4 bytes), but never loop forever.
                cut = rest.len();
            }
        }
        let (head, tail) = rest.split_at(cut);
        rest = tail;
        Some(head)
    })
}

/// The number of `o200k_base` tokens in `text` (no special tokens).
///
/// Builds the tokenizer on first use. Never panics: should the tokenizer be
/// unavailable or fail on some input, that part is estimated at one token per
/// four bytes.
pub fn count_tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let Some(bpe) = tokenizer() else {
        return bytes_estimate(text.len());
    };
    segments(text)
        .map(|seg| {
            catch_unwind(AssertUnwindSafe(|| bpe.encode_ordinary(seg).len() as u64))
                .unwrap_or_else(|_| bytes_estimate(seg.len()))
        })
        .sum()
}

fn count_str(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_str).map_or(0, count_tokens)
}

/// Counts the JSON text of a value (tool definitions, tool arguments given as
/// objects): an estimate of what the provider renders into the prompt.
fn count_json(v: &Value) -> u64 {
    match v {
        Value::Null => 0,
        Value::String(s) => count_tokens(s),
        other => count_tokens(&other.to_string()),
    }
}

/// Estimates the input tokens of an OpenAI chat completion request body.
///
/// Per message: [`TOKENS_PER_MESSAGE`] + the tokens of its `role`, its text
/// content (a string, or the `text` of each content part), `name` (+
/// [`TOKENS_PER_NAME`]), `tool_call_id`, and the name and arguments of each tool
/// call; each non-text content part (image, audio, file) counts as
/// [`IMAGE_TOKEN_ALLOWANCE`]. Then [`REPLY_PRIMING_TOKENS`], plus the JSON text of
/// `tools` / `functions` if present. A body without `messages` is counted by
/// its `prompt` (legacy completions) like [`count_embedding_input`]. Exact for
/// plain text with OpenAI's `o200k` models; an estimate otherwise.
pub fn count_chat_input(body: &Value) -> u64 {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return body.get("prompt").map_or(0, count_embedding_input);
    };
    let mut total: u64 = 0;
    for msg in messages {
        total = total.saturating_add(TOKENS_PER_MESSAGE);
        total = total.saturating_add(count_str(msg.get("role")));
        if let Some(name) = msg.get("name").and_then(Value::as_str) {
            total = total.saturating_add(TOKENS_PER_NAME + count_tokens(name));
        }
        total = total.saturating_add(count_str(msg.get("tool_call_id")));
        total = total.saturating_add(count_str(msg.get("refusal")));
        match msg.get("content") {
            Some(Value::String(s)) => total = total.saturating_add(count_tokens(s)),
            Some(Value::Array(parts)) => {
                for part in parts {
                    let n = match part.get("type").and_then(Value::as_str) {
                        Some("text") | Some("input_text") => count_str(part.get("text")),
                        Some("refusal") => count_str(part.get("refusal")),
                        _ => IMAGE_TOKEN_ALLOWANCE,
                    };
                    total = total.saturating_add(n);
                }
            }
            _ => {}
        }
        if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                if let Some(f) = call.get("function") {
                    total = total.saturating_add(count_str(f.get("name")));
                    total = total.saturating_add(f.get("arguments").map_or(0, count_json));
                }
            }
        }
        if let Some(f) = msg.get("function_call") {
            total = total.saturating_add(count_str(f.get("name")));
            total = total.saturating_add(f.get("arguments").map_or(0, count_json));
        }
    }
    total = total.saturating_add(REPLY_PRIMING_TOKENS);
    for key in ["tools", "functions"] {
        if let Some(v) = body.get(key) {
            total = total.saturating_add(count_json(v));
        }
    }
    total
}

/// Counts the tokens of an embeddings `input` value (or a legacy `prompt`): a
/// string, an array of strings, an array of token ids (counted one each), or an
/// array of token-id arrays.
pub fn count_embedding_input(input: &Value) -> u64 {
    match input {
        Value::String(s) => count_tokens(s),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => count_tokens(s),
                Value::Number(_) => 1,
                Value::Array(ids) => ids.len() as u64,
                _ => 0,
            })
            .fold(0u64, u64::saturating_add),
        _ => 0,
    }
}

/// Counts one Anthropic content value: a string or an array of blocks.
fn count_anthropic_content(content: &Value) -> u64 {
    match content {
        Value::String(s) => count_tokens(s),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => count_str(b.get("text")),
                Some("thinking") => count_str(b.get("thinking")),
                Some("redacted_thinking") => count_str(b.get("data")),
                Some("tool_use") | Some("server_tool_use") => {
                    count_str(b.get("name")) + b.get("input").map_or(0, count_json)
                }
                Some("tool_result") => b.get("content").map_or(0, count_anthropic_content),
                _ => ANTHROPIC_IMAGE_TOKEN_ALLOWANCE,
            })
            .fold(0u64, u64::saturating_add),
        _ => 0,
    }
}

/// Estimates the input tokens of an Anthropic Messages request body with the
/// `o200k` tokenizer (Claude's own tokenizer is not public, so this is an
/// estimate): `system`, each message's content blocks plus
/// [`TOKENS_PER_MESSAGE`], images and documents at
/// [`ANTHROPIC_IMAGE_TOKEN_ALLOWANCE`], and the JSON text of `tools`.
pub fn count_anthropic_input(body: &Value) -> u64 {
    let mut total = body.get("system").map_or(0, count_anthropic_content);
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for msg in messages {
            total = total.saturating_add(TOKENS_PER_MESSAGE);
            total = total.saturating_add(msg.get("content").map_or(0, count_anthropic_content));
        }
    }
    if let Some(tools) = body.get("tools") {
        total = total.saturating_add(count_json(tools));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_strings() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("hello world"), 2);
        // The OpenAI cookbook's example sentence is 6 tokens in o200k_base... we
        // pin what the shipped vocabulary says, to notice a vocabulary change.
        assert_eq!(count_tokens("tiktoken is great!"), 6);
        assert!(tokenizer_loaded());
    }

    #[test]
    fn segmenting_keeps_counts_close() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(2_000);
        // 10 tokens per sentence plus the trailing space; cutting segments just
        // before whitespace costs nothing here.
        assert_eq!(count_tokens(&text), 20_001);
        let bpe = tokenizer().unwrap();
        assert_eq!(bpe.encode_ordinary(&text).len(), 20_001);
        for seg in segments(&text) {
            assert!(seg.len() <= SEGMENT_BYTES);
        }
        assert_eq!(segments(&text).map(str::len).sum::<usize>(), text.len());
    }

    #[test]
    fn pathological_inputs_do_not_panic() {
        let spaces = " ".repeat(200_000);
        assert!(count_tokens(&spaces) > 0);
        let mixed = " \n\t".repeat(50_000) + "x";
        assert!(count_tokens(&mixed) > 0);
        let multibyte = "é🎉中".repeat(20_000);
        assert!(count_tokens(&multibyte) > 0);
        assert_eq!(
            segments(&multibyte).map(str::len).sum::<usize>(),
            multibyte.len()
        );
    }

    #[test]
    fn chat_input() {
        let body = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "name": "bob", "content": [
                    {"type": "text", "text": "hello world"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ]}
            ]
        });
        let expected = TOKENS_PER_MESSAGE
            + count_tokens("system")
            + count_tokens("You are a helpful assistant.")
            + TOKENS_PER_MESSAGE
            + count_tokens("user")
            + TOKENS_PER_NAME
            + count_tokens("bob")
            + count_tokens("hello world")
            + IMAGE_TOKEN_ALLOWANCE
            + REPLY_PRIMING_TOKENS;
        assert_eq!(count_chat_input(&body), expected);
        // Plain "hello world" user message, as in OpenAI's cookbook: 3 + 1 + 2 + 3.
        let simple = json!({"messages": [{"role": "user", "content": "hello world"}]});
        assert_eq!(count_chat_input(&simple), 9);
        assert_eq!(count_chat_input(&json!({})), 0);
        assert_eq!(count_chat_input(&json!({"messages": "nope"})), 0);
        assert_eq!(count_chat_input(&json!({"prompt": "hello world"})), 2);
    }

    #[test]
    fn embedding_input() {
        assert_eq!(count_embedding_input(&json!("hello world")), 2);
        assert_eq!(
            count_embedding_input(&json!(["hello world", "hello world"])),
            4
        );
        assert_eq!(count_embedding_input(&json!([1, 2, 3])), 3);
        assert_eq!(count_embedding_input(&json!([[1, 2], [3]])), 3);
        assert_eq!(count_embedding_input(&json!(null)), 0);
    }

    #[test]
    fn anthropic_input() {
        let body = json!({
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": "hello world"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                    {"type": "image", "source": {"type": "base64", "data": "AAAA"}}
                ]}
            ]
        });
        let expected = count_tokens("Be brief.")
            + 3 * TOKENS_PER_MESSAGE
            + count_tokens("hello world")
            + count_tokens("get_weather")
            + count_tokens(r#"{"city":"Paris"}"#)
            + count_tokens("sunny")
            + ANTHROPIC_IMAGE_TOKEN_ALLOWANCE;
        assert_eq!(count_anthropic_input(&body), expected);
    }
}
