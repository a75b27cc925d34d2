//! Fixtures follow the examples of the Gemini API reference (generateContent, function
//! calling, streamGenerateContent with `alt=sse`, batchEmbedContents).

use serde_json::{Value, json};

use super::*;
use crate::gemini::ids::{self, MAX_SIGNATURE_LEN, SIGNATURE_SEPARATOR, signature_from_id};

fn translate(openai: Value) -> Value {
    let bytes = chat_request_to_generate(&openai).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn translate_err(openai: Value) -> TranslateError {
    chat_request_to_generate(&openai).unwrap_err()
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather",
        "description": "Get the current weather in a given location",
        "strict": true,
        "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "additionalProperties": false,
            "properties": {"location": {"type": "string"},
                           "strict": {"type": "object", "additionalProperties": false, "properties": {"on": {"type": "boolean"}}}},
            "required": ["location"]}}})
}

#[test]
fn requests() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "minimal",
            json!({"model": "m", "messages": [{"role": "user", "content": "Write a story about a magic backpack."}]}),
            json!({"contents": [{"role": "user", "parts": [{"text": "Write a story about a magic backpack."}]}]}),
        ),
        (
            "system and developer hoisted; roles; consecutive merged",
            json!({"model": "m", "messages": [
                {"role": "system", "content": "You are a cat."},
                {"role": "user", "content": "Hello"},
                {"role": "developer", "content": [{"type": "text", "text": "Your name is Neko."}]},
                {"role": "user", "content": [{"type": "text", "text": "there"}]},
                {"role": "assistant", "content": "Great to meet you."},
                {"role": "assistant", "content": [{"type": "text", "text": "What would you like?"}, {"type": "refusal", "refusal": "x"}]},
                {"role": "user", "content": "I have two dogs."}]}),
            json!({"systemInstruction": {"parts": [{"text": "You are a cat."}, {"text": "Your name is Neko."}]},
                   "contents": [
                {"role": "user", "parts": [{"text": "Hello"}, {"text": "there"}]},
                {"role": "model", "parts": [{"text": "Great to meet you."}, {"text": "What would you like?"}]},
                {"role": "user", "parts": [{"text": "I have two dogs."}]}]}),
        ),
        (
            "images: data URL inline, https fileData with guessed type",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Tell me about this instrument"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/organ.webp?x=1"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/organ"}}]}]}),
            json!({"contents": [{"role": "user", "parts": [
                {"text": "Tell me about this instrument"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/organ.webp?x=1"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/organ"}}]}]}),
        ),
        (
            "tools cleaned, tool_choice auto, generation config",
            json!({"model": "m", "messages": [{"role": "user", "content": "Weather in Boston?"}],
                   "tools": [weather_tool(), {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}],
                   "tool_choice": "auto", "temperature": 0.9, "top_p": 0.5, "max_tokens": 5, "max_completion_tokens": 800,
                   "stop": "Title", "n": 2, "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.2,
                   "logit_bias": {"1": 2}, "user": "u", "metadata": {"a": "b"}, "store": true,
                   "stream": true, "stream_options": {"include_usage": true}, "parallel_tool_calls": false,
                   "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]}),
            json!({"contents": [{"role": "user", "parts": [{"text": "Weather in Boston?"}]}],
                   "tools": [{"functionDeclarations": [
                       {"name": "get_weather", "description": "Get the current weather in a given location",
                        "parameters": {"type": "object",
                            "properties": {"location": {"type": "string"}, "strict": {"type": "object", "properties": {"on": {"type": "boolean"}}}},
                            "required": ["location"]}},
                       {"name": "get_time"}]}],
                   "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
                   "generationConfig": {"temperature": 0.9, "topP": 0.5, "maxOutputTokens": 800,
                       "stopSequences": ["Title"], "candidateCount": 2, "seed": 7,
                       "presencePenalty": 0.1, "frequencyPenalty": 0.2},
                   "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]}),
        ),
        (
            "tool round trip: functionCall, functionResponse by tool_call_id (JSON object and text)",
            json!({"model": "m", "messages": [
                {"role": "user", "content": "Weather in SF and NYC?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 15}"},
                {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "noon"}]}],
                   "tools": [weather_tool()], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
            json!({"contents": [
                {"role": "user", "parts": [{"text": "Weather in SF and NYC?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"location": "San Francisco"}}},
                    {"functionCall": {"name": "get_time", "args": {}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 15}}},
                    {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}]}],
                   "tools": [{"functionDeclarations": [
                       {"name": "get_weather", "description": "Get the current weather in a given location",
                        "parameters": {"type": "object",
                            "properties": {"location": {"type": "string"}, "strict": {"type": "object", "properties": {"on": {"type": "boolean"}}}},
                            "required": ["location"]}}]}],
                   "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}}),
        ),
        (
            "tool_choice none / required; tool_choice without tools dropped",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ),
        (
            "json_object",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}, "stop": ["a", "b"]}),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                   "generationConfig": {"responseMimeType": "application/json", "stopSequences": ["a", "b"]}}),
        ),
        (
            "json_schema cleaned; reasoning_effort medium",
            json!({"model": "m", "messages": [{"role": "user", "content": "List cookies"}], "reasoning_effort": "medium",
                   "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true, "schema":
                       {"type": "array", "items": {"type": "object", "additionalProperties": false,
                        "properties": {"recipe_name": {"type": "string"}}, "required": ["recipe_name"]}}}}}),
            json!({"contents": [{"role": "user", "parts": [{"text": "List cookies"}]}],
                   "generationConfig": {"responseMimeType": "application/json",
                       "responseSchema": {"type": "array", "items": {"type": "object",
                           "properties": {"recipe_name": {"type": "string"}}, "required": ["recipe_name"]}},
                       "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": true}}}),
        ),
        (
            "reasoning_effort low / high / none",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "none", "top_k": 3}),
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                   "generationConfig": {"topK": 3, "thinkingConfig": {"thinkingBudget": 0}}}),
        ),
    ];
    for (name, input, want) in cases {
        assert_eq!(translate(input), want, "{name}");
    }
    for (effort, budget) in [("low", 1024), ("minimal", 1024), ("high", 24576)] {
        let got = translate(
            json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort}),
        );
        assert_eq!(
            got["generationConfig"]["thinkingConfig"]["thinkingBudget"],
            budget
        );
    }
    for (choice, mode) in [("none", "NONE"), ("required", "ANY")] {
        let got = translate(json!({"messages": [{"role": "user", "content": "x"}],
            "tools": [weather_tool()], "tool_choice": choice}));
        assert_eq!(
            got["toolConfig"],
            json!({"functionCallingConfig": {"mode": mode}})
        );
    }
}

#[test]
fn refused_requests() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"messages": [{"role": "user", "content": "x"}], "logprobs": true}),
            "logprobs",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}),
            "top_logprobs",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "n": 0}),
            "n",
        ),
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "function", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "[1]"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}),
            "reasoning_effort",
        ),
    ];
    for (input, param) in cases {
        let err = translate_err(input.clone());
        assert_eq!(err.param.as_deref(), Some(param), "{input}");
    }
}

fn chat(body: Value) -> Value {
    let bytes = generate_response_to_chat(body.to_string().as_bytes(), "gemini-pub", 1700).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The id seed of a response without `responseId`, as `chat` (created 1700) computes it.
fn fallback_seed(body: &Value) -> String {
    format!("x:1700:{}", ids::digest_hex(body.to_string().as_bytes()))
}

#[test]
fn responses() {
    let fc_body = json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "get_weather", "args": {"location": "Boston"}}},
            {"functionCall": {"name": "get_time"}}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4}});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "text with thoughts and usage",
            json!({"candidates": [{"content": {"parts": [
                    {"text": "Thinking about cats.", "thought": true},
                    {"text": "Once upon "}, {"text": "a time"}], "role": "model"},
                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 5, "thoughtsTokenCount": 3,
                                  "totalTokenCount": 16, "cachedContentTokenCount": 2},
                "modelVersion": "gemini-2.5-flash", "responseId": "abc123"}),
            json!({"id": "chatcmpl-abc123", "object": "chat.completion", "created": 1700, "model": "gemini-2.5-flash",
                   "system_fingerprint": null,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Once upon a time", "refusal": null,
                                "reasoning_content": "Thinking about cats."}, "finish_reason": "stop", "logprobs": null}],
                   "usage": {"prompt_tokens": 8, "completion_tokens": 8, "total_tokens": 16,
                             "prompt_tokens_details": {"cached_tokens": 2},
                             "completion_tokens_details": {"reasoning_tokens": 3}}}),
        ),
        (
            "function calls",
            fc_body.clone(),
            json!({"id": "chatcmpl-gemini", "object": "chat.completion", "created": 1700, "model": "gemini-pub",
                   "system_fingerprint": null,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                       "tool_calls": [
                           {"id": ids::tool_call_id(&fallback_seed(&fc_body), 0, 0, None), "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Boston\"}"}},
                           {"id": ids::tool_call_id(&fallback_seed(&fc_body), 0, 1, None), "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
                       "finish_reason": "tool_calls", "logprobs": null}],
                   "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}}),
        ),
        (
            "prompt blocked",
            json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
                   "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}),
            json!({"id": "chatcmpl-gemini", "object": "chat.completion", "created": 1700, "model": "gemini-pub",
                   "system_fingerprint": null,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null},
                       "finish_reason": "content_filter", "logprobs": null}],
                   "usage": {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}}),
        ),
    ];
    for (name, input, want) in cases {
        assert_eq!(chat(input), want, "{name}");
    }
    // Finish reasons, two candidates.
    for (reason, want) in [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("LANGUAGE", "stop"),
        ("OTHER", "stop"),
    ] {
        let got = chat(json!({"candidates": [
            {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
            {"finishReason": reason, "index": 1}]}));
        assert_eq!(got["choices"][1]["finish_reason"], want, "{reason}");
        assert_eq!(got["choices"][1]["index"], 1);
        assert_eq!(got["choices"][1]["message"]["content"], Value::Null);
        assert_eq!(got["choices"][0]["message"]["content"], "a");
    }
    for bad in [&b"nope"[..], b"{}", b"[]"] {
        assert!(generate_response_to_chat(bad, "m", 0).is_err());
    }
}

/// Gemini SSE, as `streamGenerateContent?alt=sse` sends it (CRLF framing).
fn sse(frames: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(format!("data: {f}\r\n\r\n").as_bytes());
    }
    out
}

fn run(input: &[u8], include_usage: bool, byte_by_byte: bool) -> (String, Option<String>) {
    let mut t = StreamTranslator::new("gemini-pub", 1700, include_usage);
    let mut out = Vec::new();
    if byte_by_byte {
        for b in input {
            out.extend(t.push(std::slice::from_ref(b)));
        }
    } else {
        out.extend(t.push(input));
    }
    out.extend(t.finish());
    (
        String::from_utf8(out).unwrap(),
        t.error().map(str::to_owned),
    )
}

fn chunks(out: &str) -> Vec<Value> {
    assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
    out.split("\n\n")
        .filter(|f| !f.is_empty() && *f != "data: [DONE]")
        .map(|f| serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap())
        .collect()
}

#[test]
fn stream_text_thoughts_usage() {
    let input = sse(&[
        json!({"candidates": [{"content": {"parts": [{"text": "Hmm.", "thought": true}], "role": "model"}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-2.5-flash", "responseId": "r1"}),
        json!({"candidates": [{"content": {"parts": [{"text": "Once upon"}], "role": "model"}, "index": 0}],
               "modelVersion": "gemini-2.5-flash", "responseId": "r1"}),
        json!({"candidates": [{"content": {"parts": [{"text": " a time"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 2, "totalTokenCount": 15},
               "modelVersion": "gemini-2.5-flash", "responseId": "r1"}),
    ]);
    let (whole, err) = run(&input, true, false);
    assert_eq!(err, None);
    let (split, _) = run(&input, true, true);
    assert_eq!(whole, split);
    let c = chunks(&whole);
    let deltas: Vec<&Value> = c.iter().map(|c| &c["choices"][0]["delta"]).collect();
    assert_eq!(c.len(), 5);
    assert_eq!(
        *deltas[0],
        json!({"role": "assistant", "reasoning_content": "Hmm."})
    );
    assert_eq!(*deltas[1], json!({"content": "Once upon"}));
    assert_eq!(*deltas[2], json!({"content": " a time"}));
    assert_eq!(c[3]["choices"][0]["finish_reason"], "stop");
    for chunk in &c[..4] {
        assert_eq!(chunk["id"], "chatcmpl-r1");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gemini-2.5-flash", "Gemini's modelVersion");
        assert_eq!(chunk["usage"], Value::Null);
    }
    assert_eq!(c[4]["choices"], json!([]));
    assert_eq!(
        c[4]["usage"],
        json!({"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15,
               "prompt_tokens_details": {"cached_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 2}})
    );

    // Without include_usage: no usage chunk, no usage field; LF framing works too.
    let lf = String::from_utf8(input.clone())
        .unwrap()
        .replace("\r\n", "\n");
    let (out, err) = run(lf.as_bytes(), false, true);
    assert_eq!(err, None);
    let c = chunks(&out);
    assert_eq!(c.len(), 4);
    assert!(c.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn stream_tool_calls() {
    let input = sse(&[json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "get_weather", "args": {"location": "Boston"}}},
            {"functionCall": {"name": "get_time", "args": {}}}], "role": "model"},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}})]);
    let (whole, err) = run(&input, false, false);
    assert_eq!(err, None);
    assert_eq!(whole, run(&input, false, true).0);
    let c = chunks(&whole);
    assert_eq!(c.len(), 3);
    let frame = String::from_utf8(input.clone()).unwrap();
    let data = frame.trim_end().strip_prefix("data: ").unwrap();
    let seed = format!("x:1700:{}", ids::digest_hex(data.as_bytes()));
    assert_eq!(
        c[0]["choices"][0]["delta"],
        json!({"role": "assistant", "tool_calls": [{"index": 0, "id": ids::tool_call_id(&seed, 0, 0, None), "type": "function",
               "function": {"name": "get_weather", "arguments": "{\"location\":\"Boston\"}"}}]})
    );
    assert_eq!(
        c[1]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 1, "id": ids::tool_call_id(&seed, 0, 1, None), "type": "function",
               "function": {"name": "get_time", "arguments": "{}"}}]})
    );
    assert_eq!(c[2]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(c[0]["id"], "chatcmpl-gemini");
}

#[test]
fn stream_safety_and_blocked_prompt() {
    let input = sse(&[
        json!({"candidates": [{"content": {"parts": [{"text": "I"}], "role": "model"}, "index": 0}]}),
        json!({"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": []}]}),
    ]);
    let (out, err) = run(&input, false, true);
    assert_eq!(err, None);
    let c = chunks(&out);
    assert_eq!(
        c.last().unwrap()["choices"][0]["finish_reason"],
        "content_filter"
    );

    let input = sse(&[
        json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 3}}),
    ]);
    let (out, err) = run(&input, true, false);
    assert_eq!(err, None);
    let c = chunks(&out);
    assert_eq!(
        c[0]["choices"][0],
        json!({"index": 0, "delta": {"role": "assistant"}, "finish_reason": "content_filter", "logprobs": null})
    );
    assert_eq!(c[1]["usage"]["prompt_tokens"], 3);
}

#[test]
fn stream_errors() {
    // An error frame mid-stream.
    let mut input = sse(&[
        json!({"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}]}),
    ]);
    input.extend(sse(&[
        json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
    ]));
    let (out, err) = run(&input, false, true);
    assert_eq!(err.as_deref(), Some("The model is overloaded."));
    assert!(!out.contains("[DONE]"));
    assert!(out.contains("\"Hi\""));

    // Truncated: no finishReason.
    let input = sse(&[
        json!({"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": 0}]}),
    ]);
    let (out, err) = run(&input, false, false);
    assert!(err.unwrap().contains("ended before"));
    assert!(!out.contains("[DONE]"));

    // Malformed JSON.
    let (_, err) = run(b"data: {nope\r\n\r\n", false, false);
    assert_eq!(err.as_deref(), Some("malformed event from upstream"));

    // Last frame without a trailing blank line still counts.
    let input = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"MAX_TOKENS\"}]}";
    let (out, err) = run(input, false, false);
    assert_eq!(err, None);
    assert_eq!(chunks(&out)[1]["choices"][0]["finish_reason"], "length");
}

#[test]
fn embeddings_requests() {
    let got: Value = serde_json::from_slice(
        &embeddings_request_to_batch(
            &json!({"model": "pub", "input": ["What is life?", "How?"], "dimensions": 256,
                    "encoding_format": "base64", "user": "u"}),
            "gemini-embedding-001",
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is life?"}]}, "outputDimensionality": 256},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "How?"}]}, "outputDimensionality": 256}]})
    );
    let got: Value = serde_json::from_slice(
        &embeddings_request_to_batch(&json!({"input": "hi"}), "models/text-embedding-004").unwrap(),
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "hi"}]}}]})
    );
    for (bad, param) in [
        (json!({"input": [1, 2]}), "input[0]"),
        (json!({"input": []}), "input"),
        (json!({"input": "x", "dimensions": 0}), "dimensions"),
    ] {
        let err = embeddings_request_to_batch(&bad, "m").unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param));
    }
}

#[test]
fn embeddings_responses() {
    let body =
        json!({"embeddings": [{"values": [1.0, -2.0, 0.5]}, {"values": [0.25]}]}).to_string();
    let floats: Value = serde_json::from_slice(
        &batch_response_to_embeddings(body.as_bytes(), "text-embedding-004", false).unwrap(),
    )
    .unwrap();
    assert_eq!(
        floats,
        json!({"object": "list", "model": "text-embedding-004", "usage": {"prompt_tokens": 0, "total_tokens": 0},
               "data": [{"object": "embedding", "index": 0, "embedding": [1.0, -2.0, 0.5]},
                        {"object": "embedding", "index": 1, "embedding": [0.25]}]})
    );
    let b64: Value = serde_json::from_slice(
        &batch_response_to_embeddings(body.as_bytes(), "text-embedding-004", true).unwrap(),
    )
    .unwrap();
    // 1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0, 0.5 = 00 00 00 3f; 0.25 = 00 00 80 3e.
    assert_eq!(b64["data"][0]["embedding"], "AACAPwAAAMAAAAA/");
    assert_eq!(b64["data"][1]["embedding"], "AACAPg==");
    assert!(batch_response_to_embeddings(b"{}", "text-embedding-004", false).is_err());
}

#[test]
fn base64_known_vectors() {
    for (input, want) in [
        (&b""[..], ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg=="),
        (b"foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_encode(input), want);
    }
}

#[test]
fn error_messages() {
    let body =
        br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#;
    assert_eq!(
        error_message(body),
        Some(("API key not valid.".into(), "INVALID_ARGUMENT".into()))
    );
    let body = br#"[{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}]"#;
    assert_eq!(
        error_message(body),
        Some(("Quota".into(), "RESOURCE_EXHAUSTED".into()))
    );
    assert_eq!(error_message(b"nope"), None);
}

/// The answer names the model Gemini reports (`modelVersion`, on the body and on each stream
/// chunk); the name passed in (the deployment's upstream model) only when Gemini names none.
#[test]
fn response_model_is_gemini_model_version() {
    let text = |model: Option<&str>| {
        let mut v = json!({"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"},
            "finishReason": "STOP", "index": 0}], "responseId": "r2"});
        if let Some(m) = model {
            v["modelVersion"] = json!(m);
        }
        v
    };
    assert_eq!(
        chat(text(Some("gemini-2.0-flash-001")))["model"],
        "gemini-2.0-flash-001"
    );
    assert_eq!(chat(text(None))["model"], "gemini-pub", "fallback");
    assert_eq!(chat(text(Some("")))["model"], "gemini-pub", "fallback");

    // Streamed: each chunk carries its frame's modelVersion (the latest seen when a frame
    // has none), the usage chunk included; the fallback only before Gemini names one.
    let first = json!({"candidates": [{"content": {"parts": [{"text": "a"}], "role": "model"}, "index": 0}]});
    let second = json!({"candidates": [{"content": {"parts": [{"text": "b"}], "role": "model"}, "index": 0}],
        "modelVersion": "gemini-2.5-pro"});
    let third = json!({"candidates": [{"content": {"parts": [{"text": "c"}], "role": "model"}, "index": 0}]});
    let (out, err) = run(
        &sse(&[first, second, third, text(Some("gemini-2.5-pro-002"))]),
        true,
        false,
    );
    assert_eq!(err, None);
    let models: Vec<Value> = chunks(&out)
        .into_iter()
        .map(|c| c["model"].clone())
        .collect();
    assert_eq!(
        models,
        [
            "gemini-pub",
            "gemini-2.5-pro",
            "gemini-2.5-pro",
            "gemini-2.5-pro-002",
            "gemini-2.5-pro-002",
            "gemini-2.5-pro-002",
        ]
        .map(|m| json!(m))
    );
}

/// A signature as Gemini sends it: standard base64 with `+`, `/` and padding.
const SIG: &str = "CiQB0e2Kb+/Yk3w9zq==";

fn signed_calls(response_id: &str) -> Value {
    // Parallel calls: Gemini signs only the first functionCall part of the response.
    json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": SIG},
            {"functionCall": {"name": "get_weather", "args": {"location": "London"}}}]},
        "finishReason": "STOP", "index": 0}],
        "modelVersion": "gemini-3-pro-preview", "responseId": response_id})
}

#[test]
fn tool_call_ids_are_unique_per_response_and_carry_signatures() {
    let first = chat(signed_calls("resp-1"));
    let calls = first["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    let ids: Vec<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let (stem, encoded) = ids[0].split_once(SIGNATURE_SEPARATOR).unwrap();
    assert!(stem.starts_with("call_") && stem.len() == 29, "{stem}");
    assert_eq!(encoded, "CiQB0e2Kb-_Yk3w9zq", "base64url, no padding");
    assert!(
        ids.iter().all(|id| id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')),
        "ids stay within Anthropic's tool_use id alphabet: {ids:?}"
    );
    assert!(
        !ids[1].contains(SIGNATURE_SEPARATOR),
        "only the first is signed"
    );
    assert_ne!(stem, ids[1]);
    // The same calls in a later turn get other ids (the old `call_0_0` repeated every turn).
    let second = chat(signed_calls("resp-2"));
    let later = second["choices"][0]["message"]["tool_calls"][1]["id"]
        .as_str()
        .unwrap();
    assert_ne!(later, ids[1]);
    // Deterministic for one response.
    assert_eq!(chat(signed_calls("resp-1")), first);
    // Without a responseId, the answer's bytes and time tell responses apart.
    let mut anonymous = signed_calls("x");
    anonymous.as_object_mut().unwrap().remove("responseId");
    let a = generate_response_to_chat(anonymous.to_string().as_bytes(), "m", 1).unwrap();
    let b = generate_response_to_chat(anonymous.to_string().as_bytes(), "m", 2).unwrap();
    let id_of = |bytes: &[u8]| {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        v["choices"][0]["message"]["tool_calls"][1]["id"].clone()
    };
    assert_ne!(id_of(&a), id_of(&b));

    // The streamed answer gives the same ids as the plain one.
    let (out, err) = run(&sse(&[signed_calls("resp-1")]), false, true);
    assert_eq!(err, None);
    let c = chunks(&out);
    assert_eq!(c[0]["choices"][0]["delta"]["tool_calls"][0]["id"], ids[0]);
    assert_eq!(c[1]["choices"][0]["delta"]["tool_calls"][0]["id"], ids[1]);
}

#[test]
fn signatures_round_trip_through_tool_call_ids() {
    let answer = chat(signed_calls("resp-1"));
    let message = answer["choices"][0]["message"].clone();
    let ids: Vec<String> = message["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    // What an OpenAI client sends next: the assistant message as received, tool results by id.
    let next = translate(json!({"messages": [
        {"role": "user", "content": "Weather in Paris and London?"},
        {"role": "assistant", "content": null, "tool_calls": message["tool_calls"]},
        {"role": "tool", "tool_call_id": ids[0], "content": "{\"temp\": 21}"},
        {"role": "tool", "tool_call_id": ids[1], "content": "{\"temp\": 17}"}]}));
    assert_eq!(
        next["contents"][1],
        json!({"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": SIG},
            {"functionCall": {"name": "get_weather", "args": {"location": "London"}}}]}),
        "the signature goes back, exactly as sent, on the part it came with"
    );
    assert_eq!(
        next["contents"][2]["parts"][1]["functionResponse"]["name"],
        "get_weather"
    );
}

#[test]
fn signatures_from_client_ids_are_only_ever_base64() {
    let replay = |call: Value| {
        let got = translate(json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [call]}]}));
        got["contents"][1]["parts"][0]
            .get("thoughtSignature")
            .cloned()
    };
    let call = |id: &str| json!({"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}});
    // LiteLLM's form (standard base64 after `__thought__`) is read too.
    assert_eq!(
        replay(call("call_abc__thought__ab+/cd==")),
        Some(json!("ab+/cd=="))
    );
    assert_eq!(
        replay(call("call_abc__thought__ab-_cd")),
        Some(json!("ab+/cd=="))
    );
    // Google's OpenAI-compatible field.
    let mut google = call("plain");
    google["extra_content"] = json!({"google": {"thought_signature": "EjQK"}});
    assert_eq!(replay(google), Some(json!("EjQK")));
    for bad in [
        "call_abc",
        "call_abc__thought__",
        "call_abc__thought__\"},\"x\":{\"y\":\"",
        "call_abc__thought__ab cd",
        "call_abc__thought__abcde",
        "call_abc__thought__ab===",
        "call_abc__thought__a=b=",
        "toolu_01A09q90qw90lq917835lq9",
    ] {
        assert_eq!(replay(call(bad)), None, "{bad}");
    }
    let long = format!("call_x__thought__{}", "A".repeat(MAX_SIGNATURE_LEN + 4));
    assert_eq!(replay(call(&long)), None);
    let mut forged = call("plain");
    forged["extra_content"] = json!({"google": {"thought_signature": "<script>"}});
    assert_eq!(replay(forged), None);
    // Too long to carry: the id has no signature rather than a huge one.
    let huge = "A".repeat(MAX_SIGNATURE_LEN + 4);
    let id = ids::tool_call_id("s", 0, 0, Some(&huge));
    assert!(!id.contains(SIGNATURE_SEPARATOR));
}

/// Random signatures (random bytes, standard base64) survive the trip through an id.
#[test]
fn random_signatures_round_trip() {
    fastrand::seed(3);
    for _ in 0..500 {
        let len = fastrand::usize(1..300);
        let bytes: Vec<u8> = (0..len).map(|_| fastrand::u8(..)).collect();
        let sig = base64_encode(&bytes);
        let id = ids::tool_call_id("seed", fastrand::u64(..4), fastrand::usize(..4), Some(&sig));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
        assert_eq!(
            signature_from_id(&id).as_deref(),
            Some(sig.as_str()),
            "{id}"
        );
    }
}

#[test]
fn storage_urls_are_refused() {
    let image = |url: &str| {
        json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": url}}]}]})
    };
    for url in [
        "gs://victim-bucket/secret.png",
        "GS://victim-bucket/secret.png",
        "file:///etc/passwd",
        "ftp://x/y.png",
        "s3://bucket/key",
    ] {
        let err = translate_err(image(url));
        assert_eq!(
            err.param.as_deref(),
            Some("messages[0].content[1].image_url.url"),
            "{url}"
        );
        assert!(err.message.contains("gs://"), "{}", err.message);
        assert!(
            err.message
                .starts_with("messages[0].content[1].image_url.url"),
            "{}",
            err.message
        );
    }
    // http(s) in any case still works.
    let got = translate(image("HTTPS://example.com/a.png"));
    assert_eq!(
        got["contents"][0]["parts"][1]["fileData"]["fileUri"],
        "HTTPS://example.com/a.png"
    );

    // The same through Gemini-native fields passed through untranslated.
    let with = |key: &str, value: Value| {
        let mut req = json!({"messages": [{"role": "user", "content": "hi"}]});
        req[key] = value;
        req
    };
    for (key, value, param) in [
        (
            "systemInstruction",
            json!({"parts": [{"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/o.pdf"}}]}),
            "systemInstruction.parts[0].fileData.fileUri",
        ),
        (
            "system_instruction",
            json!({"parts": [{"file_data": {"file_uri": "projects/p/files/x"}}]}),
            "system_instruction.parts[0].file_data.file_uri",
        ),
        ("labels", json!({"src": ["GS://b/x"]}), "labels.src[0]"),
    ] {
        let err = translate_err(with(key, value));
        assert_eq!(err.param.as_deref(), Some(param), "{key}");
    }
    let ok = translate(with(
        "systemInstruction",
        json!({"parts": [{"fileData": {"fileUri": "https://example.com/doc.pdf"}}]}),
    ));
    assert_eq!(
        ok["systemInstruction"]["parts"][0]["fileData"]["fileUri"],
        "https://example.com/doc.pdf"
    );
}

/// `cachedContent` names a cache by resource name: Gemini / Vertex AI would serve any cache
/// the gateway's credentials can read (another client's prompt) — refused like `gs://`.
#[test]
fn cached_content_is_refused() {
    for (key, value) in [
        ("cachedContent", json!("cachedContents/abc123")),
        (
            "cachedContent",
            json!("projects/p/locations/us-central1/cachedContents/c1"),
        ),
        ("cached_content", json!("cachedContents/abc123")),
        ("cachedContent", json!("gs://b/cache")),
        ("cachedContent", json!(null)),
    ] {
        let mut req = json!({"messages": [{"role": "user", "content": "hi"}]});
        req[key] = value.clone();
        let err = translate_err(req);
        assert_eq!(err.param.as_deref(), Some(key), "{key}: {value}");
        assert!(err.message.starts_with(key), "{}", err.message);
        assert!(err.message.contains("credentials"), "{}", err.message);
    }
}

#[test]
fn embeddings_map_what_maps_and_drop_the_rest() {
    let got: Value = serde_json::from_slice(
        &embeddings_request_to_batch(
            &json!({"model": "pub", "input": ["a", "b"], "dimensions": 64,
                    "task_type": "retrieval_document", "title": "Doc",
                    "encoding_format": "float", "user": "u", "metadata": {"x": 1},
                    "mock": {"status": 500}, "safetySettings": []}),
            "gemini-embedding-001",
        )
        .unwrap(),
    )
    .unwrap();
    let one = |text: &str| {
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]},
               "outputDimensionality": 64, "taskType": "RETRIEVAL_DOCUMENT", "title": "Doc"})
    };
    assert_eq!(got, json!({"requests": [one("a"), one("b")]}));
    let got: Value = serde_json::from_slice(
        &embeddings_request_to_batch(&json!({"input": "a", "taskType": "CLUSTERING"}), "m")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(got["requests"][0]["taskType"], "CLUSTERING");
    for (bad, param) in [
        (json!({"input": "x", "task_type": "SUMMARIZE"}), "task_type"),
        (json!({"input": "x", "task_type": 3}), "task_type"),
        (json!({"input": "x", "title": ["t"]}), "title"),
    ] {
        let err = embeddings_request_to_batch(&bad, "m").unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{bad}");
    }
}
