//! End-to-end: each provider's real error answers (bodies and headers as its API reference
//! documents them, scripted in the mock with `mock.raw_error`), through the real binary, to
//! OpenAI clients (`/v1/chat/completions`, OpenAI's error envelope) and Anthropic clients
//! (`/v1/messages`, Anthropic's): the status and type each gets, whether the gateway retried,
//! what is relayed and what never is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use gatehouse_mock::MockServer;
use serde_json::{Value, json};

const ANTHROPIC_KEY: &str = "sk-ant-errors-3e7c1a9f5b";
const GEMINI_KEY: &str = "AIzaSyErrorsE2eKey0123456789abcdefghij";
const AWS_SECRET: &str = "aws-errors-secret-8c2e4a6f1d";

/// The committed test-only service account (its key grants access to nothing).
const TEST_SA: &str = include_str!("../../gatehouse-mock/testdata/vertex-test-sa.json");

async fn setup() -> (MockServer, Gatehouse) {
    let mock = MockServer::start().await.unwrap();
    // Streams get past the mock's SigV4 check (scripted error answers come before it).
    mock.accept_aws_credentials("AKIDEXAMPLE", AWS_SECRET, None);
    let addr = mock.addr();
    let mut sa: Value = serde_json::from_str(TEST_SA).unwrap();
    sa["token_uri"] = json!(format!("http://{addr}/token"));
    let sa_path = scratch_dir().join("sa.json");
    std::fs::write(&sa_path, sa.to_string()).unwrap();
    let models = format!(
        "model_list:
  - model_name: claude-mock
    litellm_params:
      model: anthropic/claude-up
      api_base: http://{addr}
      api_key: {ANTHROPIC_KEY}
      max_retries: 1
  - model_name: gemini-mock
    litellm_params:
      model: gemini/gemini-up
      api_base: http://{addr}
      api_key: {GEMINI_KEY}
      max_retries: 1
  - model_name: vertex-mock
    litellm_params:
      model: vertex_ai/gemini-up
      api_base: http://{addr}
      vertex_project: test-proj
      vertex_location: europe-west4
      vertex_credentials: {path}
      max_retries: 1
  - model_name: bedrock-mock
    litellm_params:
      model: bedrock/anthropic.claude-up-v1:0
      aws_bedrock_runtime_endpoint: http://{addr}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: {AWS_SECRET}
      max_retries: 1
",
        path = sa_path.display()
    );
    let config = config_for(&mock.base_url(), "").replacen("model_list:\n", &models, 1);
    (mock, Gatehouse::start(&config, "info"))
}

/// What both kinds of client should see for one scripted upstream answer.
struct Expect {
    /// Status for OpenAI clients, and the envelope's `type`.
    openai: (u16, &'static str),
    /// Status for Anthropic clients, and the `error.type` (any of these).
    anthropic: (u16, &'static [&'static str]),
    /// Upstream attempts (1: not retried; 2: retried once, the deployments' `max_retries`).
    attempts: usize,
    /// A substring of the relayed message, if the upstream's message is relayed.
    relayed: Option<&'static str>,
    /// Text that must appear in neither answer (the upstream's own message when it is not
    /// relayed, URLs, keys).
    hidden: &'static [&'static str],
    /// `retry-after` the client gets, if any.
    retry_after: Option<&'static str>,
}

fn chat(model: &str, raw: &Value) -> String {
    chat_body(model, json!({"mock": {"raw_error": raw}}))
}

fn messages(model: &str, raw: &Value) -> String {
    json!({"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hello there"}],
           "mock": {"raw_error": raw}})
    .to_string()
}

/// Sends the scripted answer `raw` through both endpoints for `model`, checking each
/// against `want`; `upstream` is the path prefix of the provider's calls at the mock.
async fn check(
    mock: &MockServer,
    gh: &Gatehouse,
    model: &str,
    upstream: &str,
    raw: Value,
    want: &Expect,
) {
    for anthropic_client in [false, true] {
        mock.clear();
        let r = if anthropic_client {
            post(
                &gh.url("/v1/messages"),
                &[
                    ("x-api-key", MASTER_KEY),
                    ("anthropic-version", "2023-06-01"),
                ],
                messages(model, &raw),
            )
            .await
        } else {
            post(&gh.url("/v1/chat/completions"), &[], chat(model, &raw)).await
        };
        let at = format!(
            "{model} {} ← {raw}: {} {}",
            if anthropic_client {
                "/v1/messages"
            } else {
                "/v1/chat/completions"
            },
            r.status,
            r.text()
        );
        let message = if anthropic_client {
            assert_eq!(r.status.as_u16(), want.anthropic.0, "{at}");
            let v = r.json();
            assert_eq!(v["type"], "error", "{at}");
            let kind = v["error"]["type"].as_str().unwrap_or_default();
            assert!(want.anthropic.1.contains(&kind), "{at}");
            v["error"]["message"].as_str().unwrap().to_owned()
        } else {
            let e = r.assert_error(want.openai.0);
            assert_eq!(e["type"], want.openai.1, "{at}");
            e["message"].as_str().unwrap().to_owned()
        };
        if let Some(relayed) = want.relayed {
            assert!(message.contains(relayed), "{at}");
        }
        let text = r.text();
        for hidden in want.hidden.iter().chain(&[
            ANTHROPIC_KEY,
            GEMINI_KEY,
            AWS_SECRET,
            "127.0.0.1",
            "googleapis.com",
        ]) {
            assert!(!text.contains(hidden), "{hidden:?} leaked: {at}");
        }
        assert_eq!(
            r.headers.get("retry-after").map(|v| v.to_str().unwrap()),
            want.retry_after,
            "{at}"
        );
        let attempts = mock
            .requests()
            .iter()
            .filter(|q| q.path.starts_with(upstream))
            .count();
        assert_eq!(attempts, want.attempts, "upstream attempts: {at}");
    }
}

fn raw(status: u16, body: Value) -> Value {
    json!({"status": status, "body": body})
}

fn raw_with(status: u16, body: Value, headers: Value) -> Value {
    json!({"status": status, "body": body, "headers": headers})
}

const CREDENTIALS: &str = "refused the gateway's credentials";
const SECURITY_LINE: &str = "upstream refused the configured credentials";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_error_answers() {
    let (mock, gh) = setup().await;
    let a = |kind: &str, message: &str| json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"});
    let (m, u) = ("claude-mock", "/v1/messages");
    // Overloaded: retried; then 529 overloaded_error for Anthropic clients (their SDKs and
    // Claude Code retry on it), 503 for OpenAI clients, with the upstream's retry-after.
    let overloaded = raw_with(
        529,
        a("overloaded_error", "Overloaded"),
        json!({"retry-after": "0"}),
    );
    let want = Expect {
        openai: (503, "overloaded_error"),
        anthropic: (529, &["overloaded_error"]),
        attempts: 2,
        relayed: None,
        hidden: &[],
        retry_after: Some("1"),
    };
    check(&mock, &gh, m, u, overloaded, &want).await;

    // Our key refused: 502, not retried, the upstream's words not relayed, logged.
    let refused = raw(401, a("authentication_error", "invalid x-api-key"));
    let want = Expect {
        openai: (502, "upstream_error"),
        anthropic: (502, &["api_error"]),
        attempts: 1,
        relayed: Some(CREDENTIALS),
        hidden: &["invalid x-api-key"],
        retry_after: None,
    };
    check(&mock, &gh, m, u, refused, &want).await;

    // The request's fault: relayed with its status and message, not retried.
    let invalid = raw(
        400,
        a(
            "invalid_request_error",
            "messages.0.content: Input should be a valid list",
        ),
    );
    let want = Expect {
        openai: (400, "invalid_request_error"),
        anthropic: (400, &["invalid_request_error"]),
        attempts: 1,
        relayed: Some("Input should be a valid list"),
        hidden: &[],
        retry_after: None,
    };
    check(&mock, &gh, m, u, invalid, &want).await;

    // A spend limit is the gateway's account, not a rate limit: never retried.
    let spend = raw(
        429,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "You have reached your specified API usage limits.",
               "details": {"error_code": "enforced_spend_limit_reached"}}}),
    );
    let want = Expect {
        openai: (502, "upstream_error"),
        anthropic: (502, &["api_error"]),
        attempts: 1,
        relayed: Some("refused the gateway's account"),
        hidden: &["usage limits"],
        retry_after: None,
    };
    check(&mock, &gh, m, u, spend, &want).await;

    let limited = raw(
        429,
        a(
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
    );
    let want = Expect {
        openai: (429, "rate_limit_error"),
        anthropic: (429, &["rate_limit_error"]),
        attempts: 2,
        relayed: None,
        hidden: &[],
        retry_after: Some("1"),
    };
    check(&mock, &gh, m, u, limited, &want).await;

    let log = gh.log();
    assert!(
        log.contains(SECURITY_LINE) && log.contains("authentication_error"),
        "{log}"
    );
    assert!(log.contains("enforced_spend_limit_reached"), "{log}");
}

fn google(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_error_answers() {
    let (mock, gh) = setup().await;
    let (m, u) = ("gemini-mock", "/v1beta/models/gemini-up");
    // Gemini answers an invalid key with 400 INVALID_ARGUMENT; the reason is in the details.
    // That is our credential, not the client's request: 502, logged, not relayed.
    let invalid_key = raw(
        400,
        json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                 "metadata": {"service": "generativelanguage.googleapis.com"}},
                {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                 "message": "API key not valid. Please pass a valid API key."}]}}),
    );
    let want = Expect {
        openai: (502, "upstream_error"),
        anthropic: (502, &["api_error"]),
        attempts: 1,
        relayed: Some(CREDENTIALS),
        hidden: &["API key not valid"],
        retry_after: None,
    };
    check(&mock, &gh, m, u, invalid_key, &want).await;
    let log = gh.log();
    assert!(
        log.contains(SECURITY_LINE) && log.contains("API_KEY_INVALID"),
        "{log}"
    );

    // A request error whose message quotes the request URL with our key in it: relayed,
    // without the URL or the key.
    let quoting = raw(
        400,
        google(
            400,
            "INVALID_ARGUMENT",
            &format!(
                "Invalid JSON payload received at https://generativelanguage.googleapis.com/v1beta/models/gemini-up:generateContent?key={GEMINI_KEY}. Unknown name \"mock\": Cannot find field."
            ),
        ),
    );
    let want = Expect {
        openai: (400, "invalid_request_error"),
        anthropic: (400, &["invalid_request_error"]),
        attempts: 1,
        relayed: Some("Unknown name \"mock\": Cannot find field."),
        hidden: &["generateContent?"],
        retry_after: None,
    };
    check(&mock, &gh, m, u, quoting, &want).await;

    // Quota: retried after RetryInfo's delay, then 429.
    let quota = raw(
        429,
        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.2s"}]}}),
    );
    let want = Expect {
        openai: (429, "rate_limit_error"),
        anthropic: (429, &["rate_limit_error"]),
        attempts: 2,
        relayed: None,
        hidden: &[],
        retry_after: Some("1"),
    };
    check(&mock, &gh, m, u, quota, &want).await;

    let unavailable = raw(
        503,
        google(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
    );
    let want = Expect {
        openai: (503, "overloaded_error"),
        anthropic: (529, &["overloaded_error"]),
        attempts: 2,
        relayed: None,
        hidden: &[],
        retry_after: None,
    };
    check(&mock, &gh, m, u, unavailable, &want).await;

    let missing = raw(
        404,
        google(
            404,
            "NOT_FOUND",
            "models/gemini-up is not found for API version v1beta, or is not supported for generateContent.",
        ),
    );
    let want = Expect {
        openai: (404, "not_found_error"),
        anthropic: (404, &["not_found_error"]),
        attempts: 1,
        relayed: Some("is not found for API version v1beta"),
        hidden: &[],
        retry_after: None,
    };
    check(&mock, &gh, m, u, missing, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_error_answers() {
    let (mock, gh) = setup().await;
    let (m, u) = ("vertex-mock", "/v1/projects/test-proj/");
    // IAM refuses the service account: 502, the resource path in the message not relayed.
    let denied = raw(
        403,
        json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/test-proj/locations/europe-west4/publishers/google/models/gemini-up' (or it may not exist).",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "aiplatform.googleapis.com"}]}}),
    );
    let want = Expect {
        openai: (502, "upstream_error"),
        anthropic: (502, &["api_error"]),
        attempts: 1,
        relayed: Some(CREDENTIALS),
        hidden: &["aiplatform.endpoints.predict", "test-proj"],
        retry_after: None,
    };
    check(&mock, &gh, m, u, denied, &want).await;
    let timeout = raw(
        504,
        google(
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
        ),
    );
    let want = Expect {
        openai: (504, "timeout_error"),
        anthropic: (504, &["api_error", "timeout_error"]),
        attempts: 2,
        relayed: None,
        hidden: &[],
        retry_after: None,
    };
    check(&mock, &gh, m, u, timeout, &want).await;
    assert!(gh.log().contains("IAM_PERMISSION_DENIED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_error_answers() {
    let (mock, gh) = setup().await;
    let (m, u) = ("bedrock-mock", "/model/");
    let aws = |status: u16, kind: &str, body: Value| {
        raw_with(
            status,
            body,
            json!({"x-amzn-errortype": format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
                   "x-amzn-requestid": "5f0c9f1e-4b2a-4c6e-9d7a-0e1f2a3b4c5d"}),
        )
    };
    // The signature's credentials refused: 502, logged, not relayed.
    for kind in [
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "AccessDeniedException",
    ] {
        let refused = aws(
            403,
            kind,
            json!({"message": "The security token included in the request is invalid."}),
        );
        let want = Expect {
            openai: (502, "upstream_error"),
            anthropic: (502, &["api_error"]),
            attempts: 1,
            relayed: Some(CREDENTIALS),
            hidden: &["security token"],
            retry_after: None,
        };
        check(&mock, &gh, m, u, refused, &want).await;
        assert!(gh.log().contains(kind), "{kind} not logged");
    }

    // Bedrock sometimes capitalises `Message`; it is still relayed.
    let invalid = aws(
        400,
        "ValidationException",
        json!({"Message": "Malformed input request: #: extraneous key [mock] is not permitted"}),
    );
    let want = Expect {
        openai: (400, "invalid_request_error"),
        anthropic: (400, &["invalid_request_error"]),
        attempts: 1,
        relayed: Some("extraneous key [mock] is not permitted"),
        hidden: &["internal.amazon.com"],
        retry_after: None,
    };
    check(&mock, &gh, m, u, invalid, &want).await;

    let throttled = aws(
        429,
        "ThrottlingException",
        json!({"message": "Too many requests, please wait before trying again."}),
    );
    let want = Expect {
        openai: (429, "rate_limit_error"),
        anthropic: (429, &["rate_limit_error"]),
        attempts: 2,
        relayed: None,
        hidden: &[],
        retry_after: Some("1"),
    };
    check(&mock, &gh, m, u, throttled, &want).await;

    for (status, kind) in [
        (503, "ServiceUnavailableException"),
        (429, "ModelNotReadyException"),
    ] {
        let busy = aws(
            status,
            kind,
            json!({"message": "Bedrock is unable to process your request."}),
        );
        let want = Expect {
            openai: (503, "overloaded_error"),
            anthropic: (529, &["overloaded_error"]),
            attempts: 2,
            relayed: None,
            hidden: &[],
            retry_after: None,
        };
        check(&mock, &gh, m, u, busy, &want).await;
    }

    let slow = aws(
        408,
        "ModelTimeoutException",
        json!({"message": "Model has timed out in processing the request."}),
    );
    let want = Expect {
        openai: (504, "timeout_error"),
        anthropic: (504, &["api_error", "timeout_error"]),
        attempts: 2,
        relayed: None,
        hidden: &[],
        retry_after: None,
    };
    check(&mock, &gh, m, u, slow, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_error_answers() {
    let (mock, gh) = setup().await;
    let (m, u) = ("gpt-mock", "/v1/chat/completions");
    // An exhausted quota is the gateway's account: not retried (max_retries is 2 here).
    let quota = raw(
        429,
        json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
               "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
    );
    let want = Expect {
        openai: (502, "upstream_error"),
        anthropic: (502, &["api_error"]),
        attempts: 1,
        relayed: Some("refused the gateway's account"),
        hidden: &["current quota"],
        retry_after: None,
    };
    check(&mock, &gh, m, u, quota, &want).await;
    // Ollama's `{"error": "..."}`, relayed.
    let missing = raw(
        404,
        json!({"error": "model \"mock-gpt\" not found, try pulling it first"}),
    );
    let want = Expect {
        openai: (404, "not_found_error"),
        anthropic: (404, &["not_found_error"]),
        attempts: 1,
        relayed: Some("try pulling it first"),
        hidden: &[],
        retry_after: None,
    };
    check(&mock, &gh, m, u, missing, &want).await;
}

/// One streamed request to `model` with `script` as its `mock`, through the OpenAI or the
/// Anthropic endpoint: the last SSE event's data (the error event) and the whole text.
async fn streamed_error(
    gh: &Gatehouse,
    anthropic_client: bool,
    model: &str,
    script: Value,
) -> (Value, String) {
    let (url, headers, body) = if anthropic_client {
        (
            gh.url("/v1/messages"),
            vec![
                ("x-api-key", MASTER_KEY),
                ("anthropic-version", "2023-06-01"),
            ],
            json!({"model": model, "max_tokens": 64, "stream": true,
                "messages": [{"role": "user", "content": "one two three four"}], "mock": script}),
        )
    } else {
        (
            gh.url("/v1/chat/completions"),
            vec![],
            json!({"model": model, "stream": true,
                "messages": [{"role": "user", "content": "one two three four"}], "mock": script}),
        )
    };
    let res = send(http::Method::POST, &url, &headers, body.to_string().into()).await;
    if res.status() != 200 {
        let status = res.status();
        let text = chunks_text(&stream_chunks(res, std::time::Duration::from_secs(10)).await);
        panic!("{model}: {status}: {text}");
    }
    let text = chunks_text(&stream_chunks(res, std::time::Duration::from_secs(10)).await);
    let last = text.trim_end().rsplit("\n\n").next().unwrap().to_owned();
    if anthropic_client {
        assert!(last.starts_with("event: error\n"), "{text}");
        assert!(!text.contains("message_stop"), "{text}");
    }
    let data = last
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data in the last event: {text}"));
    (serde_json::from_str(data).unwrap(), text)
}

/// An error event inside a translated stream is reported like an error answer before the
/// stream: classified in the provider's format, so the event's type says rate limit,
/// overload, rejection… (and Anthropic clients, Claude Code among them, get the
/// `overloaded_error` they retry on), its message scrubbed of URLs, key-shaped strings and
/// the deployment's key, and withheld when it refuses our credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_stream_errors_are_classified_and_scrubbed() {
    let (_mock, gh) = setup().await;
    const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    // The deployment's own key (Bedrock's credentials are not in the message: its key id
    // stands in), an AWS key id and a URL with a key.
    let planted = |model: &str| {
        let own = match model {
            "claude-mock" => ANTHROPIC_KEY,
            "gemini-mock" => GEMINI_KEY,
            _ => AWS_KEY_ID,
        };
        format!(
            "failed for key {own} {AWS_KEY_ID} at https://runtime.internal.example/v1/x?key=zzz"
        )
    };
    let hidden = [
        ANTHROPIC_KEY,
        GEMINI_KEY,
        AWS_KEY_ID,
        "internal.example",
        "zzz",
    ];
    // (model, Anthropic client?, error type scripted (None: the mock's default), the
    // client's event type, and for OpenAI clients its code)
    let cases: &[(&str, bool, Option<&str>, &str, &str)] = &[
        // Anthropic upstream (translated for OpenAI clients; /v1/messages passes it through).
        ("claude-mock", false, None, "overloaded_error", "503"),
        (
            "claude-mock",
            false,
            Some("rate_limit_error"),
            "rate_limit_error",
            "429",
        ),
        (
            "claude-mock",
            false,
            Some("api_error"),
            "upstream_error",
            "502",
        ),
        (
            "claude-mock",
            false,
            Some("invalid_request_error"),
            "invalid_request_error",
            "400",
        ),
        (
            "claude-mock",
            false,
            Some("permission_error"),
            "upstream_error",
            "502",
        ),
        // Bedrock ConverseStream exceptions, for both kinds of client.
        ("bedrock-mock", false, None, "rate_limit_error", "429"),
        ("bedrock-mock", true, None, "rate_limit_error", ""),
        (
            "bedrock-mock",
            false,
            Some("serviceUnavailableException"),
            "overloaded_error",
            "503",
        ),
        (
            "bedrock-mock",
            true,
            Some("serviceUnavailableException"),
            "overloaded_error",
            "",
        ),
        (
            "bedrock-mock",
            false,
            Some("modelStreamErrorException"),
            "upstream_error",
            "502",
        ),
        (
            "bedrock-mock",
            true,
            Some("modelStreamErrorException"),
            "api_error",
            "",
        ),
        (
            "bedrock-mock",
            true,
            Some("validationException"),
            "invalid_request_error",
            "",
        ),
        // Gemini's 503 UNAVAILABLE frame.
        ("gemini-mock", false, None, "overloaded_error", "503"),
        ("gemini-mock", true, None, "overloaded_error", ""),
    ];
    for &(model, anthropic_client, kind, want_type, want_code) in cases {
        let mut script = json!({"stream_error": true, "stream_error_message": planted(model)});
        if let Some(kind) = kind {
            script["stream_error_type"] = json!(kind);
        }
        let (event, text) = streamed_error(&gh, anthropic_client, model, script).await;
        let at = format!("{model} {kind:?} anthropic client: {anthropic_client}: {text}");
        let error = &event["error"];
        assert_eq!(error["type"], want_type, "{at}");
        if anthropic_client {
            assert_eq!(event["type"], "error", "{at}");
        } else {
            assert_eq!(error["code"], want_code, "{at}");
        }
        for h in hidden {
            assert!(!text.contains(h), "{h:?} leaked: {at}");
        }
        let message = error["message"].as_str().unwrap();
        match want_type {
            // Relayed, scrubbed.
            "upstream_error" | "api_error" | "invalid_request_error"
                if kind != Some("permission_error") =>
            {
                assert!(message.contains("failed for key ***"), "{at}");
                assert!(message.contains("[url]"), "{at}");
            }
            // Ours: the upstream's text is not relayed.
            _ => assert!(!message.contains("failed for key"), "{at}"),
        }
        if kind == Some("permission_error") {
            assert!(message.contains(CREDENTIALS), "{at}");
        }
    }
    let log = gh.log();
    assert!(
        log.contains(SECURITY_LINE),
        "a refusal of our credentials is logged"
    );
    assert!(
        log.contains("upstream sent an error mid-stream") && log.contains("ThrottlingException"),
        "mid-stream errors are logged with the provider's code"
    );
    for h in hidden {
        assert!(!log.contains(h), "{h:?} logged");
    }
}
