//! End-to-end: Claude on Bedrock through the real binary, against the mock speaking
//! Converse / ConverseStream. The mock verifies every SigV4 signature (a wrong one is a 403),
//! refuses a tool-use turn sent back without the reasoning signature it issued (as Bedrock
//! does), and counts cache points — so these tests prove signing, thinking round trips and
//! prompt caching from the OpenAI API and from `/v1/messages` (Claude Code's endpoint).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::{Value, json};

const AWS_SECRET: &str = "aws-e2e-bedrock-secret-9c2d7f";
const AWS_TOKEN: &str = "aws-e2e-bedrock-token-4e8a1b";
/// The Bedrock model id; the config spells it LiteLLM's way, `bedrock/converse/<id>`.
const MODEL_ID: &str = "anthropic.claude-up-v1:0";

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    mock.accept_aws_credentials("AKIDEXAMPLE", AWS_SECRET, Some(AWS_TOKEN));
    let addr = mock.addr();
    let aws = |secret: &str| {
        format!(
            "      aws_bedrock_runtime_endpoint: http://{addr}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: {secret}
      aws_session_token: {AWS_TOKEN}
      max_retries: 0
"
        )
    };
    let models = format!(
        "model_list:
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/converse/{MODEL_ID}
{}  - model_name: claude-bedrock-wrong-key
    litellm_params:
      model: bedrock/{MODEL_ID}
{}",
        aws(AWS_SECRET),
        aws("not-the-secret"),
    );
    let config = config_for(&mock.base_url(), "").replacen("model_list:\n", &models, 1);
    (mock, Gatehouse::start(&config, "trace"))
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

/// The body the mock received last.
fn last_upstream(mock: &MockServer) -> (String, Value) {
    let r = mock.requests().pop().unwrap();
    (r.path, r.body)
}

/// The `data:` payloads of an OpenAI SSE stream (without `[DONE]`).
fn openai_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// An assistant message rebuilt from OpenAI chunks the way the OpenAI SDKs' stream helpers
/// accumulate them: content and reasoning concatenated, tool calls and `thinking_blocks`
/// merged by `index` (strings concatenated) — an entry without one is a failure.
fn assistant_from_chunks(events: &[Value]) -> Value {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut blocks: BTreeMap<u64, Value> = BTreeMap::new();
    let mut calls: BTreeMap<u64, Value> = BTreeMap::new();
    for e in events {
        let Some(delta) = e["choices"].get(0).map(|c| &c["delta"]) else {
            continue;
        };
        content.push_str(delta["content"].as_str().unwrap_or(""));
        reasoning.push_str(delta["reasoning_content"].as_str().unwrap_or(""));
        for entry in delta["thinking_blocks"].as_array().into_iter().flatten() {
            let index = entry["index"]
                .as_u64()
                .expect("thinking_blocks entry without index");
            let block = blocks.entry(index).or_insert_with(|| json!({}));
            for (k, v) in entry.as_object().unwrap() {
                match (block.get(k).and_then(Value::as_str), v.as_str()) {
                    (Some(so_far), Some(more)) if k != "type" => {
                        block[k] = json!(so_far.to_owned() + more)
                    }
                    _ => block[k] = v.clone(),
                }
            }
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let entry = calls.entry(call["index"].as_u64().unwrap()).or_insert_with(
                || json!({"id": "", "type": "function", "function": {"name": "", "arguments": ""}}),
            );
            if let Some(id) = call["id"].as_str() {
                entry["id"] = json!(id);
            }
            if let Some(name) = call["function"]["name"].as_str() {
                entry["function"]["name"] = json!(name);
            }
            let args = call["function"]["arguments"].as_str().unwrap_or("");
            let so_far = entry["function"]["arguments"].as_str().unwrap().to_owned();
            entry["function"]["arguments"] = json!(so_far + args);
        }
    }
    json!({
        "role": "assistant",
        "content": if content.is_empty() { Value::Null } else { json!(content) },
        "reasoning_content": reasoning,
        "thinking_blocks": blocks.into_values().collect::<Vec<_>>(),
        "tool_calls": calls.into_values().collect::<Vec<_>>(),
    })
}

async fn stream_text(url: &str, body: &Value) -> String {
    let res = send(http::Method::POST, url, &[], body.to_string().into()).await;
    assert_eq!(res.status(), 200);
    chunks_text(&stream_chunks(res, Duration::from_secs(10)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_clients_thinking_tool_call_and_replay() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/chat/completions");
    let user = json!({"role": "user", "content": "Weather in Paris?"});
    let turn1 = json!({"model": "claude-bedrock", "messages": [user], "tools": weather_tools(),
                       "reasoning_effort": "low"});

    // Not streamed: the answer carries the signed reasoning beside the tool call.
    let r = post(&url, &[], turn1.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let message = r.json()["choices"][0]["message"].clone();
    assert_eq!(message["reasoning_content"], "Mock thinking.");
    let signature = message["thinking_blocks"][0]["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(signature.starts_with("sig_mock_"), "{message}");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    // bedrock/converse/<id>: the route prefix is not part of the model id in the URL.
    let (path, _) = last_upstream(&mock);
    assert_eq!(path, "/model/anthropic.claude-up-v1%3A0/converse");

    // Turn 2 sends the assistant message back as it came: Bedrock gets the signature.
    let call_id = message["tool_calls"][0]["id"].as_str().unwrap().to_owned();
    let result = json!({"role": "tool", "tool_call_id": call_id, "content": "18C"});
    let mut turn2 = turn1.clone();
    turn2["messages"] = json!([user, message, result]);
    let r = post(&url, &[], turn2.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from mock: tool said 18C"
    );
    let (_, sent) = last_upstream(&mock);
    assert_eq!(
        sent["messages"][1]["content"][0]["reasoningContent"]["reasoningText"],
        json!({"text": "Mock thinking.", "signature": signature})
    );

    // Without the reasoning, Bedrock (the mock) refuses the tool-use turn.
    let mut bare = message.clone();
    bare.as_object_mut().unwrap().remove("thinking_blocks");
    turn2["messages"] = json!([user, bare, result]);
    let r = post(&url, &[], turn2.to_string()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Expected `thinking`"), "{}", r.text());

    // Streamed: text and signature arrive as thinking_blocks deltas of the same index; the
    // message a client rebuilds from the chunks is accepted back, streamed too.
    let mut stream1 = turn1.clone();
    stream1["stream"] = json!(true);
    let events = openai_events(&stream_text(&url, &stream1).await);
    let rebuilt = assistant_from_chunks(&events);
    assert_eq!(rebuilt["reasoning_content"], "Mock thinking.");
    assert_eq!(rebuilt["thinking_blocks"][0]["index"], 0);
    assert_eq!(rebuilt["thinking_blocks"][0]["thinking"], "Mock thinking.");
    assert!(
        rebuilt["thinking_blocks"][0]["signature"]
            .as_str()
            .unwrap()
            .starts_with("sig_mock_")
    );
    let call_id = rebuilt["tool_calls"][0]["id"].as_str().unwrap().to_owned();
    let mut stream2 = stream1.clone();
    stream2["messages"] = json!([user, rebuilt,
        {"role": "tool", "tool_call_id": call_id, "content": "21C"}]);
    let events = openai_events(&stream_text(&url, &stream2).await);
    assert_eq!(
        assistant_from_chunks(&events)["content"],
        "Hello from mock: tool said 21C"
    );
    let log = gh.log();
    assert!(!log.contains(AWS_SECRET) && !log.contains(AWS_TOKEN));
}

/// Anthropic SSE events (`event: x\ndata: {...}`), data only.
fn anthropic_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.split_once("data: "))
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect()
}

/// The content blocks of a streamed Anthropic message, rebuilt from its events.
fn content_from_events(events: &[Value]) -> Vec<Value> {
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_parts: BTreeMap<usize, String> = BTreeMap::new();
    for e in events {
        let index = e["index"].as_u64().unwrap_or(0) as usize;
        match e["type"].as_str().unwrap() {
            "content_block_start" => blocks.push(e["content_block"].clone()),
            "content_block_delta" => {
                let d = &e["delta"];
                let b = &mut blocks[index];
                match d["type"].as_str().unwrap() {
                    "text_delta" => {
                        b["text"] = json!(
                            b["text"].as_str().unwrap().to_owned() + d["text"].as_str().unwrap()
                        );
                    }
                    "thinking_delta" => {
                        b["thinking"] = json!(
                            b["thinking"].as_str().unwrap().to_owned()
                                + d["thinking"].as_str().unwrap()
                        );
                    }
                    "signature_delta" => b["signature"] = d["signature"].clone(),
                    "input_json_delta" => json_parts
                        .entry(index)
                        .or_default()
                        .push_str(d["partial_json"].as_str().unwrap()),
                    other => panic!("unexpected delta {other}"),
                }
            }
            _ => {}
        }
    }
    for (index, json) in json_parts {
        blocks[index]["input"] = serde_json::from_str(&json).unwrap();
    }
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_clients_thinking_tool_call_and_replay() {
    let (mock, gh) = setup().await;
    let url = gh.url("/v1/messages");
    // What Claude Code sends: a large thinking budget, the answer length above it.
    let thinking = json!({"type": "enabled", "budget_tokens": 31999});
    let user = json!({"role": "user", "content": "Weather in Paris?"});
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let turn1 = json!({"model": "claude-bedrock", "max_tokens": 32000, "thinking": thinking,
                       "tools": tools, "messages": [user]});

    for stream in [false, true] {
        let content: Vec<Value> = if stream {
            let mut body = turn1.clone();
            body["stream"] = json!(true);
            let text = stream_text(&url, &body).await;
            assert!(text.starts_with("event: message_start"), "{text}");
            content_from_events(&anthropic_events(&text))
        } else {
            let r = post(&url, &[], turn1.to_string()).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            assert_eq!(v["stop_reason"], "tool_use", "{v}");
            v["content"].as_array().unwrap().clone()
        };
        // The thinking object reached Bedrock unchanged (not squeezed into a 4096 budget).
        let (_, sent) = last_upstream(&mock);
        assert_eq!(
            sent["additionalModelRequestFields"]["thinking"], thinking,
            "{sent}"
        );
        assert_eq!(sent["inferenceConfig"]["maxTokens"], 32000);

        assert_eq!(
            content[0]["type"], "thinking",
            "stream={stream}: {content:?}"
        );
        assert_eq!(content[0]["thinking"], "Mock thinking.");
        let signature = content[0]["signature"].as_str().unwrap().to_owned();
        assert!(signature.starts_with("sig_mock_"), "{signature}");
        assert_eq!(content[1]["type"], "tool_use");
        assert_eq!(content[1]["input"], json!({"city": "mock"}));
        let tool_id = content[1]["id"].as_str().unwrap().to_owned();

        let mut turn2 = turn1.clone();
        turn2["messages"] = json!([user, {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "18C"}]}]);
        turn2["stream"] = json!(stream);
        let said = if stream {
            let text = stream_text(&url, &turn2).await;
            let blocks = content_from_events(&anthropic_events(&text));
            blocks.iter().find(|b| b["type"] == "text").unwrap()["text"].clone()
        } else {
            let r = post(&url, &[], turn2.to_string()).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            v["content"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["type"] == "text")
                .unwrap()["text"]
                .clone()
        };
        assert_eq!(said, "Hello from mock: tool said 18C", "stream={stream}");
        let (_, sent) = last_upstream(&mock);
        assert_eq!(
            sent["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]["signature"],
            json!(signature)
        );
    }
}

/// Budgets reserve spend for the `max_tokens` a client sends: it is never raised for a
/// thinking budget; the budget is fitted under it instead (or thinking left out below
/// Claude's minimum). The mock refuses, as Claude on Bedrock does, a budget not below
/// `maxTokens` or under 1024.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thinking_budget_is_fitted_under_the_clients_max_tokens() {
    let (mock, gh) = setup().await;
    let user = json!([{"role": "user", "content": "Weather in Paris?"}]);
    let sent = |mock: &MockServer| {
        let (_, body) = last_upstream(mock);
        (
            body["inferenceConfig"]["maxTokens"].clone(),
            body["additionalModelRequestFields"]["thinking"].clone(),
        )
    };
    for (extra, max_tokens, thinking) in [
        (
            json!({"max_tokens": 1500, "reasoning_effort": "high"}),
            json!(1500),
            json!({"type": "enabled", "budget_tokens": 1499}),
        ),
        (
            json!({"max_completion_tokens": 3000, "thinking": {"type": "enabled", "budget_tokens": 31999}}),
            json!(3000),
            json!({"type": "enabled", "budget_tokens": 2999}),
        ),
        (
            json!({"max_tokens": 1000, "reasoning_effort": "low"}),
            json!(1000),
            Value::Null,
        ),
        (
            json!({"reasoning_effort": "medium"}),
            json!(2048 + 4096),
            json!({"type": "enabled", "budget_tokens": 2048}),
        ),
    ] {
        let mut body = json!({"model": "claude-bedrock", "messages": user});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = post(&gh.url("/v1/chat/completions"), &[], body.to_string()).await;
        assert_eq!(r.status, 200, "{extra}: {}", r.text());
        assert_eq!(sent(&mock), (max_tokens, thinking.clone()), "{extra}");
        let reasoning = &r.json()["choices"][0]["message"]["reasoning_content"];
        assert_eq!(reasoning.is_string(), !thinking.is_null(), "{extra}");
    }

    // Through /v1/messages (Claude Code): its max_tokens is explicit, so the budget fits
    // under it (Anthropic itself would refuse max_tokens ≤ budget_tokens).
    let body = json!({"model": "claude-bedrock", "max_tokens": 4000,
        "thinking": {"type": "enabled", "budget_tokens": 31999}, "messages": user});
    let r = post(&gh.url("/v1/messages"), &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        sent(&mock),
        (
            json!(4000),
            json!({"type": "enabled", "budget_tokens": 3999})
        )
    );
    assert_eq!(r.json()["content"][0]["type"], "thinking");
}

/// Several reasoning blocks in one answer (two signed, one redacted — the mock's
/// `thinking_blocks` / `redacted_thinking`), streamed: each `thinking_blocks` entry carries
/// its block's index, so an OpenAI client rebuilds three whole blocks and a `/v1/messages`
/// client gets three blocks, each with its own signature — and both turn-2 replays are
/// accepted by the mock, which checks every signature and redacted block as Bedrock does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_reasoning_blocks_stream_apart_and_replay() {
    let (mock, gh) = setup().await;
    let script = json!({"thinking_blocks": 2, "redacted_thinking": true, "chunks": 2});
    let user = json!({"role": "user", "content": "Weather in Paris?"});

    // OpenAI client.
    let url = gh.url("/v1/chat/completions");
    let turn1 = json!({"model": "claude-bedrock", "stream": true, "tools": weather_tools(),
        "reasoning_effort": "low", "messages": [user], "mock": script});
    let events = openai_events(&stream_text(&url, &turn1).await);
    let rebuilt = assistant_from_chunks(&events);
    let blocks = rebuilt["thinking_blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3, "{rebuilt}");
    assert_eq!(blocks[0]["thinking"], "Mock thinking.");
    assert_eq!(blocks[1]["thinking"], "Mock thinking, part 2.");
    assert_ne!(blocks[0]["signature"], blocks[1]["signature"]);
    assert_eq!(blocks[2]["type"], "redacted_thinking");
    let call_id = rebuilt["tool_calls"][0]["id"].as_str().unwrap().to_owned();
    let mut turn2 = turn1.clone();
    turn2["messages"] = json!([user, rebuilt,
        {"role": "tool", "tool_call_id": call_id, "content": "18C"}]);
    let events = openai_events(&stream_text(&url, &turn2).await);
    assert_eq!(
        assistant_from_chunks(&events)["content"],
        "Hello from mock: tool said 18C"
    );
    let (_, sent) = last_upstream(&mock);
    let replayed: Vec<&str> = sent["messages"][1]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["reasoningContent"]["reasoningText"]["text"].as_str())
        .collect();
    assert_eq!(replayed, ["Mock thinking.", "Mock thinking, part 2."]);

    // Anthropic client (Claude Code).
    let url = gh.url("/v1/messages");
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let turn1 = json!({"model": "claude-bedrock", "max_tokens": 32000, "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 31999}, "tools": tools,
        "messages": [user], "mock": script});
    let content = content_from_events(&anthropic_events(&stream_text(&url, &turn1).await));
    let kinds: Vec<&str> = content
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["thinking", "thinking", "redacted_thinking", "tool_use"],
        "{content:?}"
    );
    assert_eq!(content[1]["thinking"], "Mock thinking, part 2.");
    for block in &content[..2] {
        let signature = block["signature"].as_str().unwrap();
        assert!(
            signature.starts_with("sig_mock_") && signature.matches("sig_mock_").count() == 1,
            "{signature}"
        );
    }
    let tool_id = content[3]["id"].as_str().unwrap().to_owned();
    let mut turn2 = turn1.clone();
    turn2["messages"] = json!([user, {"role": "assistant", "content": content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "18C"}]}]);
    let blocks = content_from_events(&anthropic_events(&stream_text(&url, &turn2).await));
    let said = blocks.iter().find(|b| b["type"] == "text").unwrap();
    assert_eq!(said["text"], "Hello from mock: tool said 18C");
}

/// Documents (Claude Code reading a PDF, an OpenAI client attaching a file) reach Bedrock as
/// Converse `document` blocks, which the mock validates as Converse does and names in its
/// answer; unsupported types are a 400 naming the field, before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_reach_bedrock() {
    let (mock, gh) = setup().await;
    let pdf = "JVBERi0xLjQKJcfsj6IK";
    // OpenAI client: a file part.
    let body = json!({"model": "claude-bedrock", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarize"},
        {"type": "file", "file": {"filename": "spec.pdf", "file_data": format!("data:application/pdf;base64,{pdf}")}}]}]});
    let r = post(&gh.url("/v1/chat/completions"), &[], body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from mock: Summarize [read document-1 (pdf, 15 bytes)]"
    );
    let (_, sent) = last_upstream(&mock);
    assert_eq!(
        sent["messages"][0]["content"][1],
        json!({"document": {"format": "pdf", "name": "document-1", "source": {"bytes": pdf}}})
    );

    // Claude Code: the Read tool returns the PDF as a document block in its tool_result.
    let turn = json!({"model": "claude-bedrock", "max_tokens": 1024, "messages": [
        {"role": "user", "content": "What does spec.pdf say?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read",
            "input": {"file_path": "spec.pdf"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}}]}]}]});
    let r = post(&gh.url("/v1/messages"), &[], turn.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, sent) = last_upstream(&mock);
    let last = sent["messages"][2]["content"].as_array().unwrap();
    assert!(
        last.iter().any(|b| b["document"]["format"] == "pdf"),
        "{sent}"
    );

    // Unsupported types: 400 naming the field, nothing sent.
    let before = mock.requests().len();
    let body = json!({"model": "claude-bedrock", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "x"},
        {"type": "file", "file": {"file_data": "data:application/zip;base64,UEsDBA=="}}]}]});
    let e = post(&gh.url("/v1/chat/completions"), &[], body.to_string())
        .await
        .assert_error(400);
    assert_eq!(e["param"], "messages[0].content[1].file.file_data", "{e}");
    let r = post(
        &gh.url("/v1/messages"),
        &[],
        json!({"model": "claude-bedrock", "max_tokens": 64, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x"},
            {"type": "document", "source": {"type": "base64", "media_type": "image/svg+xml", "data": "PHN2Zz4="}}]}]})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert_eq!(mock.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converse_stream_exception_reaches_clients_as_an_error_event() {
    let (_mock, gh) = setup().await;
    // OpenAI client: the text so far, then a `data: {"error": …}` event, no [DONE].
    let body = json!({"model": "claude-bedrock", "stream": true,
        "messages": [{"role": "user", "content": "one two three four"}],
        "mock": {"stream_error": true, "chunks": 3}});
    let text = stream_text(&gh.url("/v1/chat/completions"), &body).await;
    let events = openai_events(&text);
    assert_eq!(
        events[1]["choices"][0]["delta"]["content"], "Hello from ",
        "{text}"
    );
    // A throttlingException is a rate limit, as a ThrottlingException answer would be.
    let last = events.last().unwrap();
    assert_eq!(last["error"]["type"], "rate_limit_error", "{text}");
    assert_eq!(last["error"]["code"], "429", "{text}");
    assert!(!text.contains("[DONE]"), "{text}");

    // Anthropic client: `event: error` ends the stream, no message_stop.
    let body = json!({"model": "claude-bedrock", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "one two three four"}],
        "mock": {"stream_error": true}});
    let text = stream_text(&gh.url("/v1/messages"), &body).await;
    assert!(text.starts_with("event: message_start"), "{text}");
    let tail = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(tail.starts_with("event: error\n"), "{text}");
    let error: Value = serde_json::from_str(tail.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "rate_limit_error", "{text}");
    assert!(!text.contains("message_stop"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_points_reach_bedrock_and_cache_usage_comes_back() {
    let (mock, gh) = setup().await;
    let cc = json!({"type": "ephemeral"});
    let point = json!({"cachePoint": {"type": "default"}});

    // OpenAI client, LiteLLM's spelling: cache_control on a system part and on a tool.
    let mut tools = weather_tools();
    tools[0]["cache_control"] = cc.clone();
    let body = |q: &str| {
        json!({"model": "claude-bedrock", "tools": tools.clone(), "tool_choice": "none",
            "messages": [
                {"role": "system", "content": [
                    {"type": "text", "text": "You know the weather of every city on earth.", "cache_control": cc},
                    {"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": q}]})
    };
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        body("Paris?").to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let usage = r.json()["usage"].clone();
    let (_, sent) = last_upstream(&mock);
    assert_eq!(
        sent["system"],
        json!([{"text": "You know the weather of every city on earth."}, point, {"text": "Be brief."}])
    );
    // tool_choice none sends no tools (Converse has no "none"), so no tool cache point.
    assert!(sent.get("toolConfig").is_none());
    // 9 words before the cache point: written now, read on the next call.
    assert_eq!(usage["cache_creation_input_tokens"], 9, "{usage}");
    assert_eq!(usage["prompt_tokens"], 9 + 3);
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        body("Rome?").to_string(),
    )
    .await;
    let usage = r.json()["usage"].clone();
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"], 9,
        "{usage}"
    );
    assert_eq!(usage["cache_creation_input_tokens"], 0, "{usage}");

    // Anthropic client, Claude Code's breakpoints: system, tools, the last user turn.
    let body = |stream: bool| {
        json!({"model": "claude-bedrock", "max_tokens": 64, "stream": stream,
            "system": [{"type": "text", "text": "You are a coding agent in a repository.", "cache_control": cc}],
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}, "cache_control": cc}],
            "tool_choice": {"type": "none"},
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "List the files please", "cache_control": cc}]}]})
    };
    let r = post(&gh.url("/v1/messages"), &[], body(false).to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, sent) = last_upstream(&mock);
    assert_eq!(
        sent["system"],
        json!([{"text": "You are a coding agent in a repository."}, point])
    );
    assert_eq!(
        sent["messages"][0]["content"],
        json!([{"text": "List the files please"}, point])
    );
    let usage = r.json()["usage"].clone();
    assert_eq!(
        (
            &usage["input_tokens"],
            &usage["cache_creation_input_tokens"],
            &usage["cache_read_input_tokens"]
        ),
        (&json!(0), &json!(12), &json!(0)),
        "{usage}"
    );
    // Streamed, the same prefix is now a cache read.
    let text = stream_text(&gh.url("/v1/messages"), &body(true)).await;
    let end = anthropic_events(&text)
        .into_iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(end["usage"]["cache_read_input_tokens"], 12, "{text}");
    assert_eq!(end["usage"]["cache_creation_input_tokens"], 0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_signature_is_refused_by_bedrock() {
    let (mock, gh) = setup().await;
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("claude-bedrock-wrong-key", json!({})),
    )
    .await;
    assert_ne!(r.status, 200, "{}", r.text());
    assert!(r.json()["error"]["message"].is_string());
    // The request reached the mock, signed — with the wrong secret.
    let up = mock.requests().pop().unwrap();
    assert!(up.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    assert!(!r.text().contains("not-the-secret"));
    // The same request with the right secret succeeds (the other deployment).
    let r = post(
        &gh.url("/v1/chat/completions"),
        &[],
        chat_body("claude-bedrock", json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
