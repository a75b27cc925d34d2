//! [`StreamUsage`]: a tap on a streamed response that finds its usage.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::{Usage, count_tokens};

/// The most output text a [`StreamUsage`] keeps for fallback counting: 1 MiB.
pub const DEFAULT_STREAM_TEXT_LIMIT: usize = 1024 * 1024;

/// A tap on one streamed response, fed with the `data:` payload of each SSE
/// event in the format the **client** receives, that works out the request's
/// [`Usage`] when the stream ends.
///
/// Reported usage (OpenAI's final chunk with `usage`, Anthropic's
/// `message_start` / `message_delta` usage) wins. Until it arrives the tap also
/// keeps the streamed output text — `delta.content`, `reasoning_content` and
/// tool-call `arguments` (OpenAI); text, thinking and tool-input JSON deltas
/// (Anthropic) — so that [`StreamUsage::finish`] can count it with the
/// tokenizer if no usage ever comes. At most [`DEFAULT_STREAM_TEXT_LIMIT`]
/// bytes of text are kept (configurable with [`StreamUsage::with_text_limit`]);
/// text beyond that is counted at one token per four bytes.
///
/// Cheap per chunk: events are parsed into small borrowed structs (no
/// `serde_json::Value` tree except for the `usage` object itself), and chunks
/// that cannot carry usage or text (e.g. `ping`, `content_block_stop`,
/// `[DONE]`) are skipped by a substring check before any parsing. Malformed
/// input is ignored; nothing here panics.
#[derive(Debug, Clone)]
pub struct StreamUsage {
    /// Usage reported by an OpenAI chunk (the last one wins).
    openai: Option<Usage>,
    /// Usage from Anthropic's `message_start`.
    anthropic_start: Option<Usage>,
    /// Cumulative usage fields from Anthropic's latest `message_delta`.
    anthropic_delta: Option<Value>,
    /// Output text kept for fallback counting.
    text: String,
    /// Output bytes seen beyond `text_limit`.
    overflow_bytes: u64,
    /// Output bytes seen in total.
    output_bytes: u64,
    /// Maximum bytes kept in `text`.
    text_limit: usize,
}

impl Default for StreamUsage {
    fn default() -> Self {
        StreamUsage::new()
    }
}

/// True when `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[derive(Deserialize)]
struct OpenAiChunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<OpenAiChoice<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct OpenAiChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<OpenAiDelta<'a>>,
}

#[derive(Deserialize)]
struct OpenAiDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<OpenAiToolCall<'a>>>,
}

#[derive(Deserialize)]
struct OpenAiToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<OpenAiFunction<'a>>,
}

#[derive(Deserialize)]
struct OpenAiFunction<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AnthropicEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    message: Option<AnthropicMessage>,
    #[serde(default, borrow)]
    delta: Option<AnthropicDelta<'a>>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct AnthropicMessage {
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct AnthropicDelta<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
}

impl StreamUsage {
    /// A tap that keeps up to [`DEFAULT_STREAM_TEXT_LIMIT`] bytes of text.
    pub fn new() -> StreamUsage {
        StreamUsage::with_text_limit(DEFAULT_STREAM_TEXT_LIMIT)
    }

    /// A tap that keeps up to `limit` bytes of output text for fallback
    /// counting (0 keeps none and estimates every byte at 1/4 token).
    pub fn with_text_limit(limit: usize) -> StreamUsage {
        StreamUsage {
            openai: None,
            anthropic_start: None,
            anthropic_delta: None,
            text: String::new(),
            overflow_bytes: 0,
            output_bytes: 0,
            text_limit: limit,
        }
    }

    /// True once the stream has reported usage of its own.
    pub fn has_reported_usage(&self) -> bool {
        self.openai.is_some() || self.anthropic_start.is_some() || self.anthropic_delta.is_some()
    }

    /// Bytes of output text seen so far (content, reasoning, tool arguments).
    pub fn output_bytes(&self) -> u64 {
        self.output_bytes
    }

    fn push_text(&mut self, s: &str) {
        self.output_bytes = self.output_bytes.saturating_add(s.len() as u64);
        let room = self.text_limit.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return;
        }
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&s[..cut]);
        self.overflow_bytes = self.overflow_bytes.saturating_add((s.len() - cut) as u64);
    }

    /// Feeds the `data:` payload of one OpenAI chat-completion chunk (without
    /// the `data: ` prefix; `[DONE]` and garbage are ignored).
    pub fn feed_openai_chunk(&mut self, data: &[u8]) {
        let has_usage = contains(data, b"\"usage\"");
        if !has_usage
            && !contains(data, b"\"content\"")
            && !contains(data, b"\"arguments\"")
            && !contains(data, b"\"reasoning_content\"")
            && !contains(data, b"\"refusal\"")
        {
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<OpenAiChunk<'_>>(data) else {
            return;
        };
        if let Some(u) = chunk.usage.as_ref().filter(|u| u.is_object()) {
            self.openai = Some(Usage::from_openai(u));
        }
        for choice in chunk.choices.unwrap_or_default() {
            let Some(delta) = choice.delta else { continue };
            for s in [&delta.content, &delta.reasoning_content, &delta.refusal]
                .into_iter()
                .flatten()
            {
                self.push_text(s);
            }
            for call in delta.tool_calls.unwrap_or_default() {
                if let Some(f) = call.function {
                    for s in [&f.name, &f.arguments].into_iter().flatten() {
                        self.push_text(s);
                    }
                }
            }
        }
    }

    /// Feeds the `data:` payload of one Anthropic Messages stream event.
    ///
    /// `message_start.message.usage` gives the input (and an initial output
    /// count); `message_delta.usage` carries **cumulative** counts, so the
    /// latest wins field by field; `content_block_delta` text, thinking and
    /// `partial_json` deltas are kept for fallback counting.
    pub fn feed_anthropic_event(&mut self, data: &[u8]) {
        if !contains(data, b"\"usage\"") && !contains(data, b"_delta\"") {
            return;
        }
        let Ok(event) = serde_json::from_slice::<AnthropicEvent<'_>>(data) else {
            return;
        };
        match event.kind.as_ref() {
            "message_start" => {
                if let Some(u) = event.message.and_then(|m| m.usage).filter(Value::is_object) {
                    self.anthropic_start = Some(Usage::from_anthropic(&u));
                }
            }
            "message_delta" => {
                if let Some(Value::Object(fields)) = event.usage {
                    let merged = match self.anthropic_delta.take() {
                        Some(Value::Object(mut prev)) => {
                            prev.extend(fields);
                            prev
                        }
                        _ => fields,
                    };
                    self.anthropic_delta = Some(Value::Object(merged));
                }
            }
            "content_block_delta" => {
                if let Some(d) = event.delta {
                    for s in [&d.text, &d.thinking, &d.partial_json]
                        .into_iter()
                        .flatten()
                    {
                        self.push_text(s);
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts the output text kept so far (tokenizer) plus the bytes beyond the
    /// limit (one token per four bytes).
    fn counted_output(&self) -> u64 {
        count_tokens(&self.text).saturating_add(self.overflow_bytes.div_ceil(4))
    }

    /// The usage of the whole stream.
    ///
    /// - OpenAI usage reported: that usage.
    /// - Anthropic: input and cache counts from `message_start`, overridden by
    ///   any counts in the last `message_delta`; output from `message_delta`.
    ///   If the stream ended before any `message_delta` (cut off), the output is
    ///   the larger of `message_start`'s count and the counted text.
    /// - Nothing reported: input is `fallback_input_tokens` (the caller's count
    ///   of the request, e.g. [`crate::count_chat_input`]) and output is the
    ///   counted text.
    ///
    /// The tokenizer is only touched (and built, the first time) when output
    /// has to be counted.
    pub fn finish(self, fallback_input_tokens: u64) -> Usage {
        if let Some(u) = self.openai {
            return u;
        }
        if self.anthropic_start.is_some() || self.anthropic_delta.is_some() {
            let start = self.anthropic_start.unwrap_or_default();
            let Some(delta) = self.anthropic_delta.as_ref() else {
                let counted = self.counted_output();
                let input = if start.input_tokens == 0 {
                    fallback_input_tokens
                } else {
                    start.input_tokens
                };
                return Usage {
                    input_tokens: input,
                    output_tokens: start.output_tokens.max(counted),
                    ..start
                };
            };
            let has = |k: &str| delta.get(k).and_then(Value::as_u64).is_some();
            let d = Usage::from_anthropic(delta);
            let cached = if has("cache_read_input_tokens") {
                d.cached_input_tokens
            } else {
                start.cached_input_tokens
            };
            let created = if has("cache_creation_input_tokens") {
                d.cache_creation_tokens
            } else {
                start.cache_creation_tokens
            };
            let uncached = if has("input_tokens") {
                delta
                    .get("input_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            } else {
                start
                    .input_tokens
                    .saturating_sub(start.cached_input_tokens)
                    .saturating_sub(start.cache_creation_tokens)
            };
            let mut input = uncached.saturating_add(cached).saturating_add(created);
            if input == 0 {
                input = fallback_input_tokens;
            }
            let output = if has("output_tokens") {
                d.output_tokens
            } else {
                start.output_tokens.max(self.counted_output())
            };
            return Usage {
                input_tokens: input,
                cached_input_tokens: cached,
                cache_creation_tokens: created,
                output_tokens: output,
                reasoning_tokens: 0,
            };
        }
        Usage {
            input_tokens: fallback_input_tokens,
            output_tokens: self.counted_output(),
            ..Usage::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OpenAI stream as the docs show it, with `stream_options.include_usage`.
    const OPENAI_WITH_USAGE: &[&str] = &[
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":" world!"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":310,"total_tokens":1510,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":256,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}"#,
        "[DONE]",
    ];

    /// A tool-call stream without usage.
    const OPENAI_TOOL_CALL: &[&str] = &[
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"location\":"}}]},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" \"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ];

    /// An Anthropic stream as the Messages streaming docs show it.
    const ANTHROPIC_BASIC: &[&str] = &[
        r#"{"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-20250514", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}"#,
        r#"{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}"#,
        r#"{"type": "ping"}"#,
        r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}"#,
        r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}"#,
        r#"{"type": "content_block_stop", "index": 0}"#,
        r#"{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}"#,
        r#"{"type": "message_stop"}"#,
    ];

    /// Anthropic with prompt caching, thinking and a tool call; the final
    /// `message_delta` repeats cumulative input counts as newer API versions do.
    const ANTHROPIC_CACHED_TOOLS: &[&str] = &[
        r#"{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":2000,"cache_read_input_tokens":5000,"output_tokens":1},"content":[],"stop_reason":null}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me look up the weather."}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\"}"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":10,"cache_creation_input_tokens":2000,"cache_read_input_tokens":5000,"output_tokens":89}}"#,
        r#"{"type":"message_stop"}"#,
    ];

    fn feed_openai(events: &[&str]) -> StreamUsage {
        let mut tap = StreamUsage::new();
        for e in events {
            tap.feed_openai_chunk(e.as_bytes());
        }
        tap
    }

    fn feed_anthropic(events: &[&str]) -> StreamUsage {
        let mut tap = StreamUsage::new();
        for e in events {
            tap.feed_anthropic_event(e.as_bytes());
        }
        tap
    }

    #[test]
    fn openai_reported_usage_wins() {
        let tap = feed_openai(OPENAI_WITH_USAGE);
        assert!(tap.has_reported_usage());
        assert_eq!(tap.output_bytes(), "Hello world!".len() as u64);
        assert_eq!(
            tap.finish(7),
            Usage {
                input_tokens: 1200,
                cached_input_tokens: 1024,
                cache_creation_tokens: 0,
                output_tokens: 310,
                reasoning_tokens: 256,
            }
        );
    }

    #[test]
    fn openai_without_usage_counts_text() {
        let no_usage: Vec<&str> = OPENAI_WITH_USAGE[..4].to_vec();
        let tap = feed_openai(&no_usage);
        assert!(!tap.has_reported_usage());
        assert_eq!(
            tap.finish(42),
            Usage {
                input_tokens: 42,
                output_tokens: count_tokens("Hello world!"),
                ..Usage::default()
            }
        );
        let tap = feed_openai(OPENAI_TOOL_CALL);
        assert_eq!(
            tap.finish(5).output_tokens,
            count_tokens("get_weather{\"location\": \"Paris\"}")
        );
    }

    #[test]
    fn openai_reasoning_content_is_counted() {
        let mut tap = StreamUsage::new();
        tap.feed_openai_chunk(
            br#"{"choices":[{"index":0,"delta":{"reasoning_content":"Think step by step."}}]}"#,
        );
        tap.feed_openai_chunk(br#"{"choices":[{"index":0,"delta":{"content":" Answer: 4"}}]}"#);
        assert_eq!(
            tap.finish(0).output_tokens,
            count_tokens("Think step by step. Answer: 4")
        );
    }

    #[test]
    fn anthropic_basic_stream() {
        let tap = feed_anthropic(ANTHROPIC_BASIC);
        assert_eq!(tap.output_bytes(), "Hello!".len() as u64);
        assert_eq!(
            tap.finish(999),
            Usage {
                input_tokens: 25,
                output_tokens: 15,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn anthropic_cached_thinking_tool_stream() {
        let tap = feed_anthropic(ANTHROPIC_CACHED_TOOLS);
        // thinking text and tool JSON are kept; the signature is not output text.
        assert_eq!(
            tap.output_bytes(),
            ("Let me look up the weather.".len() + "{\"location\": \"San Francisco, CA\"}".len())
                as u64
        );
        assert_eq!(
            tap.finish(0),
            Usage {
                input_tokens: 7010,
                cached_input_tokens: 5000,
                cache_creation_tokens: 2000,
                output_tokens: 89,
                reasoning_tokens: 0,
            }
        );
    }

    #[test]
    fn anthropic_cut_off_stream_counts_text() {
        // Stream ends before message_delta: input from message_start, output
        // counted from the text seen.
        let tap = feed_anthropic(&ANTHROPIC_BASIC[..5]);
        assert_eq!(
            tap.finish(0),
            Usage {
                input_tokens: 25,
                output_tokens: count_tokens("Hello!").max(1),
                ..Usage::default()
            }
        );
        // Only deltas, no message_start: fallback input.
        let tap = feed_anthropic(&ANTHROPIC_BASIC[3..5]);
        assert!(!tap.has_reported_usage());
        assert_eq!(
            tap.finish(30),
            Usage {
                input_tokens: 30,
                output_tokens: count_tokens("Hello!"),
                ..Usage::default()
            }
        );
    }

    #[test]
    fn anthropic_deltas_are_cumulative() {
        let mut tap = feed_anthropic(&ANTHROPIC_BASIC[..1]);
        tap.feed_anthropic_event(
            br#"{"type":"message_delta","delta":{},"usage":{"output_tokens":5}}"#,
        );
        tap.feed_anthropic_event(
            br#"{"type":"message_delta","delta":{},"usage":{"output_tokens":9}}"#,
        );
        assert_eq!(tap.finish(0).output_tokens, 9);
    }

    #[test]
    fn text_limit_bounds_memory() {
        let mut tap = StreamUsage::with_text_limit(10);
        // 25 bytes: "ééééé" (10 bytes) + 15 ASCII; the cut lands on a char boundary.
        tap.feed_openai_chunk(
            r#"{"choices":[{"delta":{"content":"aéééééaaaaaaaaaaaaaa"}}]}"#.as_bytes(),
        );
        assert_eq!(tap.text.len(), 9);
        assert_eq!(tap.overflow_bytes, 25 - 9);
        assert_eq!(tap.output_bytes(), 25);
        let kept = tap.text.clone();
        assert_eq!(tap.finish(0).output_tokens, count_tokens(&kept) + 4);

        let mut none = StreamUsage::with_text_limit(0);
        none.feed_anthropic_event(
            br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"12345678"}}"#,
        );
        assert_eq!(none.finish(0).output_tokens, 2);
    }

    #[test]
    fn cheap_precheck_skips_irrelevant_events() {
        let mut tap = StreamUsage::new();
        for e in [
            &br#"{"type": "ping"}"#[..],
            br#"{"type": "content_block_stop", "index": 0}"#,
            br#"{"type": "message_stop"}"#,
            b"[DONE]",
        ] {
            tap.feed_anthropic_event(e);
            tap.feed_openai_chunk(e);
        }
        assert!(!tap.has_reported_usage());
        assert_eq!(tap.output_bytes(), 0);
        assert!(contains(b"abc\"usage\"", b"\"usage\""));
        assert!(!contains(b"", b"x"));
        assert!(!contains(b"abc", b""));
        // A long stream is linear work: 20,000 chunks, each parsed once.
        let mut tap = StreamUsage::new();
        for _ in 0..20_000 {
            tap.feed_openai_chunk(OPENAI_WITH_USAGE[1].as_bytes());
        }
        assert_eq!(tap.output_bytes(), 5 * 20_000);
    }

    /// A tiny fixed-seed xorshift generator, so the garbage test is repeatable.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let seeds: Vec<&str> = OPENAI_WITH_USAGE
            .iter()
            .chain(OPENAI_TOOL_CALL)
            .chain(ANTHROPIC_BASIC)
            .chain(ANTHROPIC_CACHED_TOOLS)
            .copied()
            .collect();
        const ALPHABET: &[u8] =
            b"{}[]\":,0123456789-.eE truefalsnul\\u\"usage\"_delta\"\xff\xc3\xa9";
        for round in 0..3_000 {
            let mut data: Vec<u8> = if round % 3 == 0 {
                // Pure noise from a JSON-ish alphabet.
                (0..rng.below(200))
                    .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                    .collect()
            } else {
                seeds[rng.below(seeds.len())].as_bytes().to_vec()
            };
            // Mutate: flip, insert, delete, truncate.
            for _ in 0..rng.below(8) {
                if data.is_empty() {
                    break;
                }
                let at = rng.below(data.len());
                match rng.below(4) {
                    0 => data[at] = (rng.next() & 0xff) as u8,
                    1 => data.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                    2 => {
                        data.remove(at);
                    }
                    _ => data.truncate(at),
                }
            }
            let mut a = StreamUsage::with_text_limit(rng.below(64));
            let mut b = StreamUsage::new();
            a.feed_openai_chunk(&data);
            a.feed_anthropic_event(&data);
            b.feed_anthropic_event(&data);
            b.feed_openai_chunk(&data);
            let _ = a.finish(rng.next());
            let _ = b.finish(u64::MAX);
            let _ = crate::usage_from_openai_body(&data);
            let _ = crate::usage_from_anthropic_body(&data);
            if let Ok(v) = serde_json::from_slice::<Value>(&data) {
                let _ = crate::count_chat_input(&v);
                let _ = crate::count_anthropic_input(&v);
                let _ = Usage::from_openai(&v);
                let _ = Usage::from_anthropic(&v);
            }
            let _ = crate::count_tokens(&String::from_utf8_lossy(&data));
            let text = String::from_utf8_lossy(&data);
            let _ = crate::TokenPrice::parse_per_million(&text);
            let _ = crate::TokenPrice::parse_per_token(&text);
        }
    }
}
