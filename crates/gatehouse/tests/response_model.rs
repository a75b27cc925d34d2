//! End-to-end: the `model` of an answer is the model the provider reported, as LiteLLM
//! reports it. Passthrough answers are unchanged; translated ones carry the provider's model
//! (Anthropic `model`, Gemini `modelVersion`, OpenAI `model` for `/v1/messages` clients), or
//! the deployment's upstream model where the provider names none (Bedrock Converse). The
//! mock's `mock.model` makes a provider report a dated version of the model it was asked
//! for, so the reported model differs from both the public and the upstream name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::{Value, json};

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    // The mock verifies SigV4 against these.
    mock.accept_aws_credentials("AKIDEXAMPLE", "aws-e2e-model-secret-6b1e", None);
    let addr = mock.addr();
    let models = format!(
        "model_list:
  - model_name: claude-mock
    litellm_params:
      model: anthropic/claude-upstream
      api_base: http://{addr}
      api_key: sk-ant-e2e-model-3a7c
  - model_name: gemini-mock
    litellm_params:
      model: gemini/gemini-up
      api_base: http://{addr}
      api_key: gem-e2e-model-8d2f
  - model_name: bedrock-mock
    litellm_params:
      model: bedrock/anthropic.claude-up-v1:0
      aws_bedrock_runtime_endpoint: http://{addr}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: aws-e2e-model-secret-6b1e
"
    );
    let config = config_for(&mock.base_url(), "").replacen("model_list:\n", &models, 1);
    (mock, Gatehouse::start(&config, "info"))
}

/// A body for `path` (`/v1/chat/completions` or `/v1/messages`) asking `model`, whose
/// upstream reports `reported` (if any).
fn body(path: &str, model: &str, stream: bool, reported: Option<&str>) -> String {
    let mut v = json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]});
    if path == "/v1/messages" {
        v["max_tokens"] = json!(32);
    }
    if stream {
        v["stream"] = json!(true);
    }
    if let Some(m) = reported {
        v["mock"] = json!({"model": m});
    }
    v.to_string()
}

/// The `model` of a non-streamed answer.
async fn answered(gh: &Gatehouse, path: &str, model: &str, reported: Option<&str>) -> Value {
    let r = post(&gh.url(path), &[], body(path, model, false, reported)).await;
    assert_eq!(r.status, 200, "{path} {model}: {}", r.text());
    r.json()["model"].clone()
}

/// Every `model` a streamed answer names: each OpenAI chunk's, or the Anthropic
/// `message_start`'s.
async fn streamed(gh: &Gatehouse, path: &str, model: &str, reported: Option<&str>) -> Vec<Value> {
    let res = send(
        http::Method::POST,
        &gh.url(path),
        &[],
        body(path, model, true, reported).into(),
    )
    .await;
    assert_eq!(res.status(), 200, "{path} {model}");
    let text = chunks_text(&stream_chunks(res, Duration::from_secs(10)).await);
    let models: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|v| match v["type"].as_str() {
            Some("message_start") => Some(v["message"]["model"].clone()),
            Some(_) => None,
            None => Some(v["model"].clone()),
        })
        .collect();
    assert!(!models.is_empty(), "{path} {model}: {text}");
    models
}

fn all(models: &[Value], want: &str) -> bool {
    models.iter().all(|m| m == want)
}

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_upstream_reports_its_model() {
    let (_mock, gh) = setup().await;
    let reported = Some("mock-gpt-2024-08-06");
    // Passthrough: unchanged.
    assert_eq!(
        answered(&gh, CHAT, "gpt-mock", reported).await,
        "mock-gpt-2024-08-06"
    );
    let models = streamed(&gh, CHAT, "gpt-mock", reported).await;
    assert!(all(&models, "mock-gpt-2024-08-06"), "{models:?}");
    // An Anthropic client on it: the OpenAI answer's / first chunk's model.
    assert_eq!(
        answered(&gh, MESSAGES, "gpt-mock", reported).await,
        "mock-gpt-2024-08-06"
    );
    let models = streamed(&gh, MESSAGES, "gpt-mock", reported).await;
    assert_eq!(models, ["mock-gpt-2024-08-06"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_upstream_reports_its_model() {
    let (_mock, gh) = setup().await;
    let reported = Some("claude-upstream-20250929");
    // Translated for an OpenAI client: `model` / `message_start.message.model`.
    assert_eq!(
        answered(&gh, CHAT, "claude-mock", reported).await,
        "claude-upstream-20250929"
    );
    let models = streamed(&gh, CHAT, "claude-mock", reported).await;
    assert!(models.len() > 2, "{models:?}");
    assert!(all(&models, "claude-upstream-20250929"), "{models:?}");
    // Passthrough for an Anthropic client: unchanged.
    assert_eq!(
        answered(&gh, MESSAGES, "claude-mock", reported).await,
        "claude-upstream-20250929"
    );
    let models = streamed(&gh, MESSAGES, "claude-mock", reported).await;
    assert_eq!(models, ["claude-upstream-20250929"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_upstream_reports_its_model_version() {
    let (_mock, gh) = setup().await;
    let reported = Some("gemini-up-001");
    for path in [CHAT, MESSAGES] {
        assert_eq!(
            answered(&gh, path, "gemini-mock", reported).await,
            "gemini-up-001",
            "{path}"
        );
        let models = streamed(&gh, path, "gemini-mock", reported).await;
        assert!(all(&models, "gemini-up-001"), "{path}: {models:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_answers_name_the_upstream_model() {
    let (_mock, gh) = setup().await;
    // Converse and ConverseStream name no model: the deployment's upstream model id.
    for path in [CHAT, MESSAGES] {
        assert_eq!(
            answered(&gh, path, "bedrock-mock", None).await,
            "anthropic.claude-up-v1:0",
            "{path}"
        );
        let models = streamed(&gh, path, "bedrock-mock", None).await;
        assert!(models.len() > 2 || path == MESSAGES, "{models:?}");
        assert!(
            all(&models, "anthropic.claude-up-v1:0"),
            "{path}: {models:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_embeddings_name_the_upstream_model() {
    let (_mock, gh) = setup().await;
    // batchEmbedContents names no model: the deployment's upstream model.
    let r = post(
        &gh.url("/v1/embeddings"),
        &[],
        r#"{"model":"gemini-mock","input":["a"]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "gemini-up");
}
