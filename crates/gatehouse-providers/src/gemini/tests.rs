//! Fixtures follow the examples of the Gemini API reference (generateContent, function
//! calling, streamGenerateContent with `alt=sse`, batchEmbedContents).

use serde_json::{Value, json};

use super::*;

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

#[test]
fn responses() {
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
            json!({"candidates": [{"content": {"parts": [
                    {"functionCall": {"name": "get_weather", "args": {"location": "Boston"}}},
                    {"functionCall": {"name": "get_time"}}], "role": "model"}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4}}),
            json!({"id": "chatcmpl-gemini", "object": "chat.completion", "created": 1700, "model": "gemini-pub",
                   "system_fingerprint": null,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                       "tool_calls": [
                           {"id": "call_0_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Boston\"}"}},
                           {"id": "call_0_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
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
    assert_eq!(
        c[0]["choices"][0]["delta"],
        json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_0_0", "type": "function",
               "function": {"name": "get_weather", "arguments": "{\"location\":\"Boston\"}"}}]})
    );
    assert_eq!(
        c[1]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 1, "id": "call_0_1", "type": "function",
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
