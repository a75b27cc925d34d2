//! End-to-end: Gemini specifics through the binary — Gemini 3 thought signatures kept
//! across tool-calling turns (OpenAI and Anthropic clients, streamed and not), unique tool
//! call ids, safety blocks as `content_filter`, refused storage URLs, embeddings fields.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::{Value, json};

const GEMINI_KEY: &str = "gem-e2e-key-3c9d1a7f5b";
/// The mock enforces Gemini 3's signature rule for models named `gemini-3…`.
const GEMINI_3_PATH: &str = "/v1beta/models/gemini-3-pro-preview:";

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    let addr = mock.addr();
    let models = format!(
        "model_list:
  - model_name: gemini-3
    litellm_params:
      model: gemini/gemini-3-pro-preview
      api_base: http://{addr}
      api_key: {GEMINI_KEY}
      max_retries: 0
  - model_name: gemini-embed
    litellm_params:
      model: gemini/gemini-embedding-001
      api_base: http://{addr}
      api_key: {GEMINI_KEY}
"
    );
    let config = config_for(&mock.base_url(), "").replacen("model_list:\n", &models, 1);
    (mock, Gatehouse::start(&config, "debug"))
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                       "required": ["location"]}}},
           {"type": "function", "function": {"name": "get_time",
        "parameters": {"type": "object", "properties": {}}}}])
}

fn tool_results(calls: &[Value]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| json!({"role": "tool", "tool_call_id": c["id"], "content": format!("{} done", c["function"]["name"].as_str().unwrap())}))
        .collect()
}

/// The data frames of an OpenAI SSE body (without `[DONE]`).
fn sse_chunks(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

async fn stream(gh: &Gatehouse, body: Value) -> String {
    let res = send(
        http::Method::POST,
        &gh.url("/v1/chat/completions"),
        &[],
        body.to_string().into(),
    )
    .await;
    assert_eq!(res.status(), 200);
    chunks_text(&stream_chunks(res, Duration::from_secs(10)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_3_tool_turns_keep_thought_signatures() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/chat/completions");
    let question = json!({"role": "user", "content": "Weather and time in Paris?"});

    // Turn 1: two parallel calls; Gemini signs the first.
    let body = json!({"model": "gemini-3", "messages": [question], "tools": weather_tools(),
        "mock": {"parallel": true}});
    let r = post(&url, &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json()["choices"][0]["message"].clone();
    let calls = first["tool_calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 2);
    let ids: Vec<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(ids[0].contains("__thought__"), "{ids:?}");
    assert!(!ids[1].contains("__thought__"), "{ids:?}");
    assert_ne!(ids[0], ids[1]);

    // Turn 2: the client sends back only what OpenAI clients keep — ids and content.
    let mut messages = vec![question.clone(), first.clone()];
    messages.extend(tool_results(&calls));
    let body = json!({"model": "gemini-3", "messages": messages, "tools": weather_tools()});
    let r = post(&url, &[], body.to_string()).await;
    assert_eq!(
        r.status,
        200,
        "the upstream accepted the replayed calls: {}",
        r.text()
    );
    let answer = r.json()["choices"][0]["message"].clone();
    assert_eq!(
        answer["content"],
        "Hello from mock: tool said get_time done"
    );
    let up = mock.requests().pop().unwrap();
    assert_eq!(up.path, format!("{GEMINI_3_PATH}generateContent"));
    let replayed = &up.body["contents"][1]["parts"];
    let sig = replayed[0]["thoughtSignature"].as_str().unwrap();
    assert!(
        sig.ends_with('=') && (sig.contains('+') || sig.contains('/')),
        "standard base64 as Gemini sent it: {sig}"
    );
    assert!(replayed[1].get("thoughtSignature").is_none());

    // Without the signature (an id cut at the separator) Gemini 3 refuses: the 400 is relayed.
    let mut cut = first.clone();
    let stem = ids[0].split("__thought__").next().unwrap();
    cut["tool_calls"][0]["id"] = json!(stem);
    let mut messages = vec![question.clone(), cut.clone()];
    messages.extend(tool_results(cut["tool_calls"].as_array().unwrap()));
    let body = json!({"model": "gemini-3", "messages": messages, "tools": weather_tools()});
    let e = post(&url, &[], body.to_string()).await.assert_error(400);
    assert!(
        e["message"].as_str().unwrap().contains("thought_signature"),
        "{e}"
    );

    // Turn 3: a new question; the new calls get new ids (they used to be call_0_0 again).
    let mut messages = vec![question.clone(), first.clone()];
    messages.extend(tool_results(&calls));
    messages.push(answer);
    messages.push(json!({"role": "user", "content": "And in Rome?"}));
    let body = json!({"model": "gemini-3", "messages": messages, "tools": weather_tools()});
    let r = post(&url, &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let again = r.json()["choices"][0]["message"]["tool_calls"][0]["id"].clone();
    assert!(
        !ids.contains(&again.as_str().unwrap()),
        "{again} repeats an id of turn 1"
    );

    // Streamed: the same, chunk by chunk.
    let body = json!({"model": "gemini-3", "messages": [question], "tools": weather_tools(), "stream": true});
    let text = stream(&gh, body).await;
    let streamed: Vec<Value> = sse_chunks(&text)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array().cloned())
        .flatten()
        .collect();
    assert_eq!(streamed.len(), 1, "{text}");
    assert!(streamed[0]["id"].as_str().unwrap().contains("__thought__"));
    let assistant = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": streamed[0]["id"], "type": "function", "function": streamed[0]["function"]}]});
    let mut messages = vec![question.clone(), assistant];
    messages.extend(tool_results(&streamed));
    let body = json!({"model": "gemini-3", "messages": messages, "tools": weather_tools(), "stream": true});
    let text = stream(&gh, body).await;
    let content: String = sse_chunks(&text)
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        content, "Hello from mock: tool said get_weather done",
        "{text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"));
    assert!(!gh.log().contains(GEMINI_KEY));
}

/// An Anthropic client (Claude Code) on a Gemini 3 model: `tool_use` ids carry the
/// signature, stay within Anthropic's id alphabet, and bring it back with `tool_result`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_3_tool_turns_through_the_messages_endpoint() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/messages");
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object",
        "properties": {"location": {"type": "string"}}, "required": ["location"]}}]);
    let question = json!({"role": "user", "content": "Weather in Paris?"});
    let body =
        json!({"model": "gemini-3", "max_tokens": 100, "messages": [question], "tools": tools});
    let r = post(&url, &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["content"].clone();
    let tool_use = content
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    let id = tool_use["id"].as_str().unwrap();
    assert!(id.contains("__thought__"), "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{id}"
    );

    for stream in [false, true] {
        let body = json!({"model": "gemini-3", "max_tokens": 100, "stream": stream, "tools": tools, "messages": [
            question,
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "sunny"}]}]});
        let r = post(&url, &[], body.to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let text = if stream {
            r.text()
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .map(|d| serde_json::from_str::<Value>(d).unwrap())
                .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
                .collect()
        } else {
            r.json()["content"][0]["text"].as_str().unwrap().to_owned()
        };
        assert_eq!(text, "Hello from mock: tool said sunny", "{}", r.text());
        let up = mock.requests().pop().unwrap();
        assert!(up.body["contents"][1]["parts"][0]["thoughtSignature"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safety_blocks_are_content_filter() {
    let (_mock, gh) = setup().await;
    let url = gh.url("/v1/chat/completions");
    // A blocked prompt (promptFeedback.blockReason, no candidates) and a blocked answer
    // (finishReason SAFETY), plain and streamed.
    for mock in [
        json!({"prompt_block": "SAFETY"}),
        json!({"safety_block": true}),
    ] {
        let r = post(&url, &[], chat_body("gemini-3", json!({"mock": mock}))).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter", "{v}");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

        let text = stream(
            &gh,
            json!({"model": "gemini-3", "messages": [{"role": "user", "content": "hello there"}],
                   "stream": true, "stream_options": {"include_usage": true}, "mock": mock}),
        )
        .await;
        let chunks = sse_chunks(&text);
        let finishes: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0].get("finish_reason"))
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finishes, [&json!("content_filter")], "{text}");
        assert!(
            chunks
                .iter()
                .all(|c| c["choices"][0]["delta"].get("content").is_none())
        );
        assert!(
            chunks.last().unwrap()["usage"]["prompt_tokens"]
                .as_u64()
                .unwrap()
                > 0
        );
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_urls_and_embedding_fields() {
    let (mock, gh) = setup().await;
    let body = json!({"model": "gemini-3", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": "gs://someone-elses-bucket/private.png"}}]}]});
    let e = post(&gh.url("/v1/chat/completions"), &[], body.to_string())
        .await
        .assert_error(400);
    assert_eq!(e["param"], "messages[0].content[1].image_url.url", "{e}");
    assert!(e["message"].as_str().unwrap().contains("gs://"), "{e}");
    assert!(mock.requests().is_empty(), "nothing was sent upstream");

    // Nor a cache by name: Gemini would serve any cache the gateway's key can read.
    for key in ["cachedContent", "cached_content"] {
        let body = json!({"model": "gemini-3", "messages": [{"role": "user", "content": "hi"}],
            key: "cachedContents/someone-elses-cache"});
        let e = post(&gh.url("/v1/chat/completions"), &[], body.to_string())
            .await
            .assert_error(400);
        assert_eq!(e["param"], key, "{e}");
    }
    assert!(mock.requests().is_empty(), "nothing was sent upstream");

    // Embeddings: what maps is mapped, the rest dropped (the mock, like Gemini, refuses
    // unknown fields).
    let body = json!({"model": "gemini-embed", "input": ["a", "b"], "dimensions": 4,
        "task_type": "retrieval_query", "user": "u-1", "encoding_format": "float"});
    let r = post(&gh.url("/v1/embeddings"), &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 4);
    let up = mock.requests().pop().unwrap();
    assert_eq!(
        up.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(up.body.as_object().unwrap().len(), 1, "{}", up.body);
    assert_eq!(up.body["requests"][0]["taskType"], "RETRIEVAL_QUERY");
    assert_eq!(up.body["requests"][0]["outputDimensionality"], 4);
}
