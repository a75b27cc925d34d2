//! [`Usage`]: the token counts of one request, and their extraction from
//! OpenAI and Anthropic usage objects and response bodies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The token counts of one request, provider-neutral.
///
/// `input_tokens` is **all** input, including tokens read from and written to
/// the prompt cache; `cached_input_tokens` and `cache_creation_tokens` are parts
/// of it. `output_tokens` is all output, **including** `reasoning_tokens`
/// (which is informational).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// All input tokens, cached and cache writes included.
    pub input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cached_input_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_tokens: u64,
    /// All output tokens, reasoning included.
    pub output_tokens: u64,
    /// Output tokens spent on reasoning (part of `output_tokens`).
    pub reasoning_tokens: u64,
}

/// Reads a token count: a non-negative integer, or 0 for anything else.
fn count(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0)
}

/// Reads `obj[outer][inner]` as a token count.
fn nested(obj: &Value, outer: &str, inner: &str) -> u64 {
    count(obj.get(outer).and_then(|o| o.get(inner)))
}

impl Usage {
    /// Total tokens, input plus output (for `tpm` limits).
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// True when no token was counted at all.
    pub fn is_empty(&self) -> bool {
        self.input_tokens == 0 && self.output_tokens == 0
    }

    /// Reads an OpenAI `usage` object.
    ///
    /// Chat Completions shape: `prompt_tokens` (all input),
    /// `completion_tokens` (all output, reasoning included),
    /// `prompt_tokens_details.cached_tokens`,
    /// `completion_tokens_details.reasoning_tokens`, and LiteLLM's extension
    /// `cache_creation_input_tokens` (Anthropic cache writes, already counted
    /// in `prompt_tokens`). The Responses API shape (`input_tokens`,
    /// `output_tokens`, `input_tokens_details.cached_tokens`,
    /// `output_tokens_details.reasoning_tokens`) is read when `prompt_tokens`
    /// is absent. Missing or malformed fields count as 0; anything that is not
    /// an object gives an empty usage.
    pub fn from_openai(usage: &Value) -> Usage {
        let chat = usage.get("prompt_tokens").is_some() || usage.get("completion_tokens").is_some();
        let (input, output, cached, reasoning) = if chat {
            (
                count(usage.get("prompt_tokens")),
                count(usage.get("completion_tokens")),
                nested(usage, "prompt_tokens_details", "cached_tokens"),
                nested(usage, "completion_tokens_details", "reasoning_tokens"),
            )
        } else {
            (
                count(usage.get("input_tokens")),
                count(usage.get("output_tokens")),
                nested(usage, "input_tokens_details", "cached_tokens"),
                nested(usage, "output_tokens_details", "reasoning_tokens"),
            )
        };
        // LiteLLM also mirrors cache reads in `cache_read_input_tokens`; use it
        // when the OpenAI detail is absent.
        let cached = if cached == 0 {
            count(usage.get("cache_read_input_tokens"))
        } else {
            cached
        };
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            cache_creation_tokens: count(usage.get("cache_creation_input_tokens")),
            output_tokens: output,
            reasoning_tokens: reasoning,
        }
    }

    /// Reads an Anthropic `usage` object: `input_tokens` (which excludes cache
    /// reads and writes) + `cache_read_input_tokens` +
    /// `cache_creation_input_tokens` make the input total; `output_tokens`
    /// (thinking included) the output. Missing or malformed fields count as 0.
    pub fn from_anthropic(usage: &Value) -> Usage {
        let uncached = count(usage.get("input_tokens"));
        let read = count(usage.get("cache_read_input_tokens"));
        let write = count(usage.get("cache_creation_input_tokens"));
        Usage {
            input_tokens: uncached.saturating_add(read).saturating_add(write),
            cached_input_tokens: read,
            cache_creation_tokens: write,
            output_tokens: count(usage.get("output_tokens")),
            reasoning_tokens: 0,
        }
    }
}

/// A response body of which only `usage` is kept; serde skips the rest
/// (choices, content) without building it.
#[derive(Deserialize)]
struct UsageOnly {
    #[serde(default)]
    usage: Option<Value>,
}

fn usage_field(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<UsageOnly>(body)
        .ok()?
        .usage
        .filter(Value::is_object)
}

/// The usage of a whole (non-streamed) OpenAI response body (chat completion,
/// embedding or Responses API object); `None` when the body is not JSON or has
/// no `usage` object.
pub fn usage_from_openai_body(body: &[u8]) -> Option<Usage> {
    usage_field(body).map(|u| Usage::from_openai(&u))
}

/// The usage of a whole (non-streamed) Anthropic Messages response body;
/// `None` when the body is not JSON or has no `usage` object.
pub fn usage_from_anthropic_body(body: &[u8]) -> Option<Usage> {
    usage_field(body).map(|u| Usage::from_anthropic(&u))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_shapes() {
        let cases: Vec<(&str, Value, Usage)> = vec![
            (
                "chat with cache and reasoning",
                json!({
                    "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0,
                        "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
                }),
                Usage {
                    input_tokens: 2006,
                    cached_input_tokens: 1920,
                    cache_creation_tokens: 0,
                    output_tokens: 300,
                    reasoning_tokens: 256,
                },
            ),
            (
                "LiteLLM translation of Anthropic cache writes",
                json!({
                    "prompt_tokens": 7010, "completion_tokens": 200,
                    "prompt_tokens_details": {"cached_tokens": 5000},
                    "cache_creation_input_tokens": 2000,
                    "cache_read_input_tokens": 5000
                }),
                Usage {
                    input_tokens: 7010,
                    cached_input_tokens: 5000,
                    cache_creation_tokens: 2000,
                    output_tokens: 200,
                    reasoning_tokens: 0,
                },
            ),
            (
                "embeddings",
                json!({"prompt_tokens": 8, "total_tokens": 8}),
                Usage {
                    input_tokens: 8,
                    ..Usage::default()
                },
            ),
            (
                "responses API",
                json!({
                    "input_tokens": 328, "input_tokens_details": {"cached_tokens": 128},
                    "output_tokens": 52, "output_tokens_details": {"reasoning_tokens": 10},
                    "total_tokens": 380
                }),
                Usage {
                    input_tokens: 328,
                    cached_input_tokens: 128,
                    cache_creation_tokens: 0,
                    output_tokens: 52,
                    reasoning_tokens: 10,
                },
            ),
            (
                "garbage values count as zero",
                json!({"prompt_tokens": -3, "completion_tokens": "7",
                       "prompt_tokens_details": null, "completion_tokens_details": [1]}),
                Usage::default(),
            ),
            ("not an object", json!([1, 2, 3]), Usage::default()),
            ("null", Value::Null, Usage::default()),
        ];
        for (name, v, want) in cases {
            assert_eq!(Usage::from_openai(&v), want, "{name}");
        }
    }

    #[test]
    fn anthropic_shapes() {
        let v = json!({
            "input_tokens": 10, "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 5000, "output_tokens": 200,
            "service_tier": "standard"
        });
        assert_eq!(
            Usage::from_anthropic(&v),
            Usage {
                input_tokens: 7010,
                cached_input_tokens: 5000,
                cache_creation_tokens: 2000,
                output_tokens: 200,
                reasoning_tokens: 0,
            }
        );
        assert_eq!(
            Usage::from_anthropic(&json!({"input_tokens": 25, "output_tokens": 1})),
            Usage {
                input_tokens: 25,
                output_tokens: 1,
                ..Usage::default()
            }
        );
        assert_eq!(Usage::from_anthropic(&json!("x")), Usage::default());
    }

    #[test]
    fn bodies() {
        let openai = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,
            "model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant",
            "content":"Hello! \"usage\" inside text","refusal":null},"finish_reason":"stop"}],
            "usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,
            "prompt_tokens_details":{"cached_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp"}"#;
        assert_eq!(
            usage_from_openai_body(openai),
            Some(Usage {
                input_tokens: 19,
                output_tokens: 10,
                ..Usage::default()
            })
        );
        let anthropic = br#"{"id":"msg_1","type":"message","role":"assistant",
            "content":[{"type":"text","text":"Hi"}],"model":"claude-sonnet-4-20250514",
            "stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":12,"cache_creation_input_tokens":0,
            "cache_read_input_tokens":100,"output_tokens":6}}"#;
        assert_eq!(
            usage_from_anthropic_body(anthropic),
            Some(Usage {
                input_tokens: 112,
                cached_input_tokens: 100,
                output_tokens: 6,
                ..Usage::default()
            })
        );
        for bad in [
            &b""[..],
            b"not json",
            b"[]",
            b"{\"usage\":null}",
            b"{\"usage\":5}",
            b"{}",
        ] {
            assert_eq!(usage_from_openai_body(bad), None);
            assert_eq!(usage_from_anthropic_body(bad), None);
        }
    }
}
