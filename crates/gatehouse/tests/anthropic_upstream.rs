//! End-to-end: an `anthropic/` deployment served through the OpenAI API, against the
//! mock speaking Anthropic's Messages wire format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::json;

const ANTHROPIC_KEY: &str = "sk-ant-e2e-4c1f0b9a7d";

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let config = config_for(&mock.base_url(), "").replacen(
        "model_list:\n",
        &format!(
            "model_list:\n  - model_name: claude-mock\n    litellm_params:\n      model: anthropic/claude-upstream\n      api_base: http://{}\n      api_key: {ANTHROPIC_KEY}\n      max_retries: 1\n",
            mock.addr()
        ),
        1,
    );
    let gh = Gatehouse::start(&config, "info");
    (mock, gh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_is_translated_to_messages_and_back() {
    let (mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        json!({
            "model": "claude-mock",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
            "stop": "END",
        })
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "claude-upstream", "the model Anthropic reports");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock: hello there"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(r.headers.contains_key("x-litellm-model-id"));

    let seen = mock.requests();
    let up = seen.last().unwrap();
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(up.headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(up.headers["anthropic-version"], "2023-06-01");
    assert!(!up.headers.contains_key("authorization"));
    assert_eq!(up.body["model"], "claude-upstream");
    assert_eq!(up.body["max_tokens"], 4096);
    assert_eq!(up.body["stop_sequences"], json!(["END"]));
    assert!(up.body["system"].to_string().contains("Be brief."));
    assert_eq!(up.body["messages"][0]["role"], "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_translated() {
    let (_mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        json!({
            "model": "claude-mock",
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}],
        })
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: serde_json::Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "mock"}));
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_translated_event_by_event() {
    let (_mock, gh) = setup().await;
    let res = send(
        http::Method::POST,
        &gh.url("/v1/chat/completions"),
        &[],
        json!({
            "model": "claude-mock",
            "messages": [{"role": "user", "content": "hello there"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "mock": {"chunks": 3, "chunk_delay_ms": 200},
        })
        .to_string()
        .into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let chunks = stream_chunks(res, Duration::from_secs(15)).await;
    let text = chunks_text(&chunks);
    let mut content = String::new();
    let mut saw_usage = false;
    for event in text.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an OpenAI SSE frame: {event:?}"));
        if data == "[DONE]" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        if v["usage"].is_object() {
            saw_usage = true;
        }
    }
    assert_eq!(content, "Hello from mock: hello there");
    assert!(saw_usage, "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"));
    let first = chunks
        .iter()
        .find(|(_, c)| String::from_utf8_lossy(c).contains("Hello"))
        .unwrap()
        .0;
    assert!(
        first + Duration::from_millis(300) < chunks.last().unwrap().0,
        "translated stream was buffered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_stream_error_event_becomes_an_openai_error_event() {
    let (_mock, gh) = setup().await;
    let res = send(
        http::Method::POST,
        &gh.url("/v1/chat/completions"),
        &[],
        json!({"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}], "stream": true,
               "mock": {"stream_error": true}})
        .to_string()
        .into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let v: serde_json::Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    // Anthropic's `overloaded_error` event: an overload, as it would be before the stream.
    assert_eq!(v["error"]["code"], "503", "{text}");
    assert_eq!(v["error"]["type"], "overloaded_error", "{text}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_errors_and_unsupported_endpoints() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/chat/completions");
    let body = |m: serde_json::Value| {
        json!({"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}], "mock": m})
            .to_string()
    };
    let e = post(&url, &[], body(json!({"status": 400})))
        .await
        .assert_error(400);
    assert!(e["message"].as_str().unwrap().contains("mock"), "{e}");
    mock.clear();
    // Overloaded is 503 for OpenAI clients (Anthropic clients get Anthropic's 529).
    post(&url, &[], body(json!({"status": 529})))
        .await
        .assert_error(503);
    assert_eq!(
        mock.requests().len(),
        2,
        "529 overloaded is retried (max_retries 1)"
    );
    let e = post(
        &gh.url("/v1/embeddings"),
        &[],
        r#"{"model":"claude-mock","input":"x"}"#,
    )
    .await
    .assert_error(400);
    assert_eq!(e["param"], "model");
    let e = post(
        &url,
        &[],
        json!({"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}], "n": 2})
            .to_string(),
    )
    .await
    .assert_error(400);
    assert!(e["param"].is_string(), "{e}");
}

/// The JSON of each `data:` frame of an OpenAI SSE body (not `[DONE]`).
fn sse_chunks(text: &str) -> Vec<serde_json::Value> {
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an OpenAI SSE frame: {e:?}"))
        })
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// openai-python's stream accumulation (`accumulate_delta`): strings concatenate, objects
/// merge, list entries merge by `index` (an entry without one is an error there), `index`
/// and `type` are replaced.
fn accumulate(
    acc: &mut serde_json::Map<String, serde_json::Value>,
    delta: &serde_json::Map<String, serde_json::Value>,
) {
    use serde_json::Value;
    for (key, d) in delta {
        let Some(a) = acc.get_mut(key).filter(|a| !a.is_null()) else {
            acc.insert(key.clone(), d.clone());
            continue;
        };
        if key == "index" || key == "type" {
            *a = d.clone();
            continue;
        }
        match (a, d) {
            (Value::String(a), Value::String(d)) => a.push_str(d),
            (Value::Object(a), Value::Object(d)) => accumulate(a, d),
            (Value::Array(a), Value::Array(d)) => {
                for entry in d {
                    let i = entry["index"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("list delta entry without index: {entry}"))
                        as usize;
                    match a.get_mut(i) {
                        Some(slot) => {
                            accumulate(slot.as_object_mut().unwrap(), entry.as_object().unwrap())
                        }
                        None => a.push(entry.clone()),
                    }
                }
            }
            (a, d) => *a = d.clone(),
        }
    }
}

fn weather_tool() -> serde_json::Value {
    json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}})
}

/// The assistant message of a streamed chat completion, accumulated as the OpenAI SDK does.
async fn streamed_message(gh: &Gatehouse, body: serde_json::Value) -> serde_json::Value {
    let res = send(
        http::Method::POST,
        &gh.url("/v1/chat/completions"),
        &[],
        body.to_string().into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(15)).await);
    let mut message = serde_json::Map::new();
    for chunk in sse_chunks(&text) {
        if let Some(delta) = chunk["choices"][0]["delta"].as_object() {
            accumulate(&mut message, delta);
        }
        if let Some(f) = chunk["choices"][0]["finish_reason"].as_str() {
            message.insert("finish_reason".into(), f.into());
        }
    }
    serde_json::Value::Object(message)
}

/// Thinking (signed) and redacted thinking before a tool call, then the tool result sent
/// back with the assistant message as the client got it: the mock refuses the replay
/// unless every block comes back as it was given (Anthropic's rule), streamed or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thinking_and_tool_use_survive_the_replay() {
    let (mock, gh) = setup().await;
    for stream in [false, true] {
        let question =
            json!({"role": "user", "content": format!("weather in Paris? stream={stream}")});
        let body = json!({"model": "claude-mock", "messages": [question], "tools": [weather_tool()],
            "reasoning_effort": "low", "stream": stream, "mock": {"redacted_thinking": true}});
        let mut message = if stream {
            streamed_message(&gh, body).await
        } else {
            let r = post(&gh.url("/v1/chat/completions"), &[], body.to_string()).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
            v["choices"][0]["message"].clone()
        };
        // What the upstream answered, to compare the replay with.
        let blocks = &mock.requests();
        let up = blocks.last().unwrap();
        assert_eq!(up.body["thinking"]["type"], "enabled");
        let obj = message.as_object_mut().unwrap();
        obj.remove("finish_reason");
        assert_eq!(
            obj["reasoning_content"], "Mock thinking.",
            "stream={stream}"
        );
        let thinking = obj["thinking_blocks"].as_array().unwrap().clone();
        assert_eq!(thinking.len(), 2, "stream={stream}: {message}");
        assert_eq!(thinking[0]["type"], "thinking");
        assert_eq!(thinking[0]["thinking"], "Mock thinking.");
        let signature = thinking[0]["signature"].as_str().unwrap().to_owned();
        assert!(signature.starts_with("sig_mock_"), "{signature}");
        assert_eq!(thinking[1]["type"], "redacted_thinking");
        let data = thinking[1]["data"].as_str().unwrap().to_owned();
        assert!(data.starts_with("redacted_mock_"), "{data}");
        let call = obj["tool_calls"][0].clone();
        assert_eq!(call["function"]["name"], "get_weather");

        let replay = json!({"model": "claude-mock", "tools": [weather_tool()], "reasoning_effort": "low",
            "stream": stream, "messages": [question, message,
                {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]});
        let answer = if stream {
            streamed_message(&gh, replay).await
        } else {
            let r = post(&gh.url("/v1/chat/completions"), &[], replay.to_string()).await;
            assert_eq!(r.status, 200, "stream={stream}: {}", r.text());
            r.json()["choices"][0]["message"].clone()
        };
        assert_eq!(answer["content"], "Hello from mock: tool said sunny");

        let up = mock.requests().pop().unwrap();
        assert_eq!(
            up.body["messages"][1]["content"],
            json!([
                {"type": "thinking", "thinking": "Mock thinking.", "signature": signature},
                {"type": "redacted_thinking", "data": data},
                {"type": "tool_use", "id": call["id"], "name": "get_weather", "input": {"location": "mock"}},
            ]),
            "stream={stream}"
        );
    }
}

/// Prompt caching: the cache write and then the read reach the OpenAI client in LiteLLM's
/// fields, streamed and not.
/// Budgets reserve spend for the `max_tokens` a client sends: with thinking on it is never
/// raised; the budget is fitted under it (or thinking left out below Anthropic's minimum of
/// 1024). The mock refuses, as Anthropic does, a budget not below `max_tokens`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thinking_budget_is_fitted_under_the_clients_max_tokens() {
    let (mock, gh) = setup().await;
    for (extra, max_tokens, thinking) in [
        (
            json!({"max_tokens": 1500, "reasoning_effort": "high"}),
            1500,
            json!({"type": "enabled", "budget_tokens": 1499}),
        ),
        (
            json!({"max_completion_tokens": 8000, "thinking": {"type": "enabled", "budget_tokens": 10000}}),
            8000,
            json!({"type": "enabled", "budget_tokens": 7999}),
        ),
        (
            json!({"max_tokens": 900, "reasoning_effort": "low"}),
            900,
            serde_json::Value::Null,
        ),
        (
            json!({"reasoning_effort": "high"}),
            4096 + 4096,
            json!({"type": "enabled", "budget_tokens": 4096}),
        ),
    ] {
        let mut body =
            json!({"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = post(&gh.url("/v1/chat/completions"), &[], body.to_string()).await;
        assert_eq!(r.status, 200, "{extra}: {}", r.text());
        let up = mock.requests().pop().unwrap();
        assert_eq!(up.body["max_tokens"], max_tokens, "{extra}");
        assert_eq!(
            up.body.get("thinking").cloned().unwrap_or_default(),
            thinking,
            "{extra}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_usage_reaches_the_openai_client() {
    let (_mock, gh) = setup().await;
    let body = |question: &str, stream: bool| {
        json!({"model": "claude-mock", "stream": stream, "stream_options": {"include_usage": true},
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "a long shared policy text of eight words",
                                                "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": question}]})
        .to_string()
    };
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        body("first question", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let u = &r.json()["usage"];
    assert_eq!(u["cache_creation_input_tokens"], 8, "{u}");
    assert_eq!(u["cache_read_input_tokens"], 0);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["prompt_tokens"], 8 + 2);

    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        body("a second question", false),
    )
    .await;
    let u = &r.json()["usage"];
    assert_eq!(u["cache_creation_input_tokens"], 0, "{u}");
    assert_eq!(u["cache_read_input_tokens"], 8);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 8);
    assert_eq!(u["prompt_tokens"], 8 + 3);

    let res = send(
        http::Method::POST,
        &gh.url("/v1/chat/completions"),
        &[],
        body("third", true).into(),
    )
    .await;
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(15)).await);
    let usage = sse_chunks(&text)
        .into_iter()
        .find_map(|c| c["usage"].is_object().then(|| c["usage"].clone()))
        .unwrap();
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"], 8,
        "{usage}"
    );
    assert_eq!(usage["cache_read_input_tokens"], 8);
    assert_eq!(usage["prompt_tokens"], 8 + 1);
}

/// `response_format` through a forced tool: the client gets JSON content, `stop`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_format_is_emulated_with_a_forced_tool() {
    let (mock, gh) = setup().await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"]});
    let body = |stream: bool| {
        json!({"model": "claude-mock", "stream": stream,
            "messages": [{"role": "user", "content": "forecast as JSON"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "forecast", "schema": schema, "strict": true}}})
    };
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        body(false).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(
        v["choices"][0]["message"].get("tool_calls").is_none(),
        "{v}"
    );
    let content: serde_json::Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"city": "mock", "days": 1}));
    let up = mock.requests().pop().unwrap();
    assert_eq!(
        up.body["tool_choice"],
        json!({"type": "tool", "name": "json_tool_call"})
    );
    assert_eq!(up.body["tools"][0]["input_schema"], schema);
    assert!(up.body.get("response_format").is_none());

    let message = streamed_message(&gh, body(true)).await;
    assert_eq!(message["finish_reason"], "stop");
    assert!(message.get("tool_calls").is_none(), "{message}");
    let content: serde_json::Value =
        serde_json::from_str(message["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"city": "mock", "days": 1}));

    // Beside the client's own tools: a 400 naming the field.
    let mut both = body(false);
    both["tools"] = json!([weather_tool()]);
    let e = post(&gh.url("/v1/chat/completions"), &[], both.to_string())
        .await
        .assert_error(400);
    assert_eq!(e["param"], "response_format");
}
