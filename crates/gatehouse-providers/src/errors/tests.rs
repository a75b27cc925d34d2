//! Each provider's documented error answers, classified. Bodies follow the providers' API
//! references (Anthropic's "Errors" page, Gemini's troubleshooting guide and
//! `google.rpc.Status` details, Bedrock's Converse / InvokeModel error lists and AWS's common
//! errors, OpenAI's error object).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::json;

use super::*;

use FailureKind::{Account, Credentials, Overloaded, RateLimited, Rejected, ServerError, Timeout};

/// One case: status, `x-amzn-errortype`, body; expected kind, relayed status, retryable,
/// message (a substring; `None`: no message) and code.
struct Case {
    status: u16,
    header: Option<&'static str>,
    body: String,
    kind: FailureKind,
    relay: u16,
    retryable: bool,
    message: Option<&'static str>,
    code: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)]
fn case(
    status: u16,
    header: Option<&'static str>,
    body: serde_json::Value,
    kind: FailureKind,
    relay: u16,
    retryable: bool,
    message: Option<&'static str>,
    code: Option<&'static str>,
) -> Case {
    Case {
        status,
        header,
        body: body.to_string(),
        kind,
        relay,
        retryable,
        message,
        code,
    }
}

fn check(wire: WireFormat, cases: &[Case]) {
    for (n, c) in cases.iter().enumerate() {
        let f = classify(wire, c.status, c.header, c.body.as_bytes());
        let at = format!("{wire:?} case {n} ({} {}): {f:?}", c.status, c.body);
        assert_eq!(f.kind, c.kind, "{at}");
        assert_eq!(f.status, c.relay, "{at}");
        assert_eq!(f.retryable, c.retryable, "{at}");
        match c.message {
            Some(m) => assert!(f.message.as_deref().unwrap_or("").contains(m), "{at}"),
            None => assert_eq!(f.message, None, "{at}"),
        }
        assert_eq!(f.code.as_deref(), c.code, "{at}");
    }
}

fn anthropic_body(kind: &str, message: &str) -> serde_json::Value {
    json!({"type": "error", "error": {"type": kind, "message": message},
           "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
}

#[test]
#[rustfmt::skip]
fn anthropic_errors() {
    let a = anthropic_body;
    check(
        WireFormat::Anthropic,
        &[
            case(400, None, a("invalid_request_error", "messages: roles must alternate"), Rejected, 400, false, Some("roles must alternate"), Some("invalid_request_error")),
            case(401, None, a("authentication_error", "invalid x-api-key"), Credentials, 401, false, Some("invalid x-api-key"), Some("authentication_error")),
            case(402, None, a("billing_error", "Your credit balance is too low"), Account, 402, false, Some("credit"), Some("billing_error")),
            case(403, None, a("permission_error", "Your API key does not have permission"), Credentials, 403, false, Some("permission"), Some("permission_error")),
            case(404, None, a("not_found_error", "model: claude-x"), Rejected, 404, false, Some("claude-x"), Some("not_found_error")),
            case(413, None, a("request_too_large", "Request exceeds the maximum allowed number of bytes."), Rejected, 413, false, Some("maximum"), Some("request_too_large")),
            case(429, None, a("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), RateLimited, 429, true, Some("per-minute"), Some("rate_limit_error")),
            case(429, None, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "You have reached your specified API usage limits.",
                  "details": {"error_code": "enforced_spend_limit_reached"}}}), Account, 429, false, Some("usage limits"), Some("enforced_spend_limit_reached")),
            case(500, None, a("api_error", "Internal server error"), ServerError, 500, true, Some("Internal"), Some("api_error")),
            case(504, None, a("timeout_error", "Request timeout"), Timeout, 504, true, Some("timeout"), Some("timeout_error")),
            case(529, None, a("overloaded_error", "Overloaded"), Overloaded, 529, true, Some("Overloaded"), Some("overloaded_error")),
            // The type decides, not the status.
            case(503, None, a("overloaded_error", "Overloaded"), Overloaded, 503, true, Some("Overloaded"), Some("overloaded_error")),
            // Not Anthropic's shape (a proxy in front of it): the status decides.
            case(502, None, json!("<html>bad gateway</html>"), ServerError, 502, true, None, None),
            case(529, None, json!({}), Overloaded, 529, true, None, None),
            case(400, None, json!({"error": "nope"}), Rejected, 400, false, Some("nope"), None),
        ],
    );
}

/// Gemini's documented invalid-key answer: 400 INVALID_ARGUMENT, the reason in the details.
fn gemini_invalid_key() -> serde_json::Value {
    json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": "API key not valid. Please pass a valid API key."}]}})
}

fn google(code: u16, status: &str, message: &str) -> serde_json::Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

#[test]
#[rustfmt::skip]
fn gemini_errors() {
    let g = google;
    let quota = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}});
    check(
        WireFormat::Gemini,
        &[
            case(400, None, gemini_invalid_key(), Credentials, 400, false, Some("API key not valid"), Some("API_KEY_INVALID")),
            case(400, None, json!({"error": {"code": 400, "message": "API key expired. Please renew the API key.", "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_EXPIRED", "domain": "googleapis.com"}]}}),
                Credentials, 400, false, Some("expired"), Some("API_KEY_EXPIRED")),
            case(400, None, g(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified"), Rejected, 400, false, Some("contents is not specified"), Some("INVALID_ARGUMENT")),
            case(400, None, g(400, "FAILED_PRECONDITION", "User location is not supported for the API use without a billing account linked."), Account, 400, false, Some("billing"), Some("FAILED_PRECONDITION")),
            case(403, None, g(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers"), Credentials, 403, false, Some("unregistered"), Some("PERMISSION_DENIED")),
            case(403, None, json!({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "Generative Language API has not been used in project 123 before or it is disabled.",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED"}]}}), Credentials, 403, false, Some("disabled"), Some("SERVICE_DISABLED")),
            // Vertex AI with a bad or expired access token.
            case(401, None, json!({"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED"}]}}), Credentials, 401, false, Some("OAuth 2"), Some("ACCESS_TOKEN_TYPE_UNSUPPORTED")),
            case(404, None, g(404, "NOT_FOUND", "models/gemini-x is not found for API version v1beta, or is not supported for generateContent."), Rejected, 404, false, Some("gemini-x"), Some("NOT_FOUND")),
            case(409, None, g(409, "ABORTED", "The operation was aborted."), Rejected, 409, true, Some("aborted"), Some("ABORTED")),
            case(429, None, quota, RateLimited, 429, true, Some("exceeded your current quota"), Some("RESOURCE_EXHAUSTED")),
            case(500, None, g(500, "INTERNAL", "An internal error has occurred."), ServerError, 500, true, Some("internal"), Some("INTERNAL")),
            case(499, None, g(499, "CANCELLED", "The operation was cancelled."), ServerError, 499, true, Some("cancelled"), Some("CANCELLED")),
            case(503, None, g(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), Overloaded, 503, true, Some("overloaded"), Some("UNAVAILABLE")),
            case(504, None, g(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."), Timeout, 504, true, Some("Deadline"), Some("DEADLINE_EXCEEDED")),
            // streamGenerateContent without alt=sse answers an array.
            case(503, None, json!([g(503, "UNAVAILABLE", "The model is overloaded.")]), Overloaded, 503, true, Some("overloaded"), Some("UNAVAILABLE")),
            case(502, None, json!("<html>Bad Gateway</html>"), ServerError, 502, true, None, None),
        ],
    );
    // RetryInfo is honoured.
    let f = classify(WireFormat::Gemini, 429, None, quota_body().as_bytes());
    assert_eq!(f.retry_delay, Some(Duration::from_secs(37)));
    assert!(!f.message.unwrap().contains("https://"), "URLs are scrubbed");
}

fn quota_body() -> String {
    json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded, see https://ai.google.dev/gemini-api/docs/rate-limits.",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}})
    .to_string()
}

/// A Gemini message that quotes the request URL, key and all, reaches nobody.
#[test]
fn gemini_messages_lose_urls_and_keys() {
    let key = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY";
    let body = google(
        400,
        "INVALID_ARGUMENT",
        &format!(
            "Invalid JSON payload received at https://generativelanguage.googleapis.com/v1beta/models/gemini-pro:generateContent?key={key}. Unknown name \"foo\"; also key={key} and {key}"
        ),
    );
    let f = classify(WireFormat::Gemini, 400, None, body.to_string().as_bytes());
    let m = f.message.unwrap();
    assert!(!m.contains(key), "{m}");
    assert!(!m.contains("googleapis.com"), "{m}");
    assert!(m.contains("Unknown name \"foo\""), "{m}");
    assert_eq!(f.kind, Rejected);
}

fn bedrock_body(message: &str) -> serde_json::Value {
    json!({ "message": message })
}

#[test]
#[rustfmt::skip]
fn bedrock_errors() {
    let b = bedrock_body;
    let coral = |t: &'static str| -> Option<&'static str> { Some(t) };
    check(
        WireFormat::Bedrock,
        &[
            case(400, coral("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"), b("The provided model identifier is invalid."), Rejected, 400, false, Some("model identifier"), Some("ValidationException")),
            case(404, coral("ResourceNotFoundException"), b("Model not found"), Rejected, 404, false, Some("not found"), Some("ResourceNotFoundException")),
            case(403, coral("AccessDeniedException"), b("You don't have access to the model with the specified model ID."), Credentials, 403, false, Some("access"), Some("AccessDeniedException")),
            case(403, coral("UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/"), b("The security token included in the request is invalid."), Credentials, 403, false, Some("security token"), Some("UnrecognizedClientException")),
            case(403, coral("ExpiredTokenException"), b("The security token included in the request is expired"), Credentials, 403, false, Some("expired"), Some("ExpiredTokenException")),
            case(403, coral("InvalidSignatureException"), b("The request signature we calculated does not match the signature you provided."), Credentials, 403, false, Some("signature"), Some("InvalidSignatureException")),
            case(429, coral("ThrottlingException"), b("Too many requests, please wait before trying again."), RateLimited, 429, true, Some("Too many"), Some("ThrottlingException")),
            case(400, coral("ServiceQuotaExceededException"), b("Your request exceeds the service quota for your account."), RateLimited, 400, true, Some("quota"), Some("ServiceQuotaExceededException")),
            case(429, coral("ModelNotReadyException"), b("Model is not ready to serve inference requests."), Overloaded, 429, true, Some("not ready"), Some("ModelNotReadyException")),
            // Bedrock sometimes capitalises the field.
            case(503, coral("ServiceUnavailableException"), json!({"Message": "Bedrock is unable to process your request."}), Overloaded, 503, true, Some("unable to process"), Some("ServiceUnavailableException")),
            case(408, coral("ModelTimeoutException"), b("Model has timed out in processing the request."), Timeout, 408, true, Some("timed out"), Some("ModelTimeoutException")),
            case(500, coral("InternalServerException"), b("An internal server error occurred."), ServerError, 500, true, Some("internal"), Some("InternalServerException")),
            case(424, coral("ModelErrorException"), json!({"message": "Received server error (500) from model.", "originalStatusCode": 500, "resourceName": "arn:aws:sagemaker:x"}),
                ServerError, 424, false, Some("server error"), Some("ModelErrorException")),
            // No header: the body's `__type`; no type at all: the status.
            case(403, None, json!({"__type": "com.amazon.coral.service#UnrecognizedClientException", "message": "The security token included in the request is invalid."}),
                Credentials, 403, false, Some("security token"), Some("UnrecognizedClientException")),
            case(400, None, json!({"Message": "Malformed input request"}), Rejected, 400, false, Some("Malformed"), None),
            case(503, None, json!("not json"), ServerError, 503, true, None, None),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn openai_compatible_errors() {
    let e = |message: &str, kind: &str, param: Option<&str>, code: Option<&str>| {
        json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
    };
    check(
        WireFormat::OpenAi,
        &[
            case(400, None, e("Invalid 'messages'", "invalid_request_error", Some("messages"), None), Rejected, 400, false, Some("Invalid"), Some("invalid_request_error")),
            case(401, None, e("Incorrect API key provided", "invalid_request_error", None, Some("invalid_api_key")), Credentials, 401, false, Some("Incorrect"), Some("invalid_api_key")),
            case(404, None, e("The model `x` does not exist", "invalid_request_error", Some("model"), Some("model_not_found")), Rejected, 404, false, Some("does not exist"), Some("model_not_found")),
            case(408, None, e("timeout", "timeout", None, None), Timeout, 408, true, Some("timeout"), Some("timeout")),
            case(409, None, e("conflict", "invalid_request_error", None, None), Rejected, 409, true, Some("conflict"), Some("invalid_request_error")),
            case(422, None, e("unprocessable", "invalid_request_error", None, None), Rejected, 422, false, Some("unprocessable"), Some("invalid_request_error")),
            case(429, None, e("Rate limit reached", "requests", None, Some("rate_limit_exceeded")), RateLimited, 429, true, Some("Rate limit"), Some("rate_limit_exceeded")),
            case(429, None, e("You exceeded your current quota", "insufficient_quota", None, Some("insufficient_quota")), Account, 429, false, Some("quota"), Some("insufficient_quota")),
            case(500, None, e("The server had an error", "server_error", None, None), ServerError, 500, true, Some("server had"), Some("server_error")),
            case(503, None, e("The engine is currently overloaded", "server_error", None, None), ServerError, 503, true, Some("overloaded"), Some("server_error")),
            case(504, None, json!("gateway timeout"), Timeout, 504, true, None, None),
            case(302, None, json!("moved"), ServerError, 302, false, None, None),
            // Ollama and vLLM spell it differently.
            case(404, None, json!({"error": "model \"llama9\" not found, try pulling it first"}), Rejected, 404, false, Some("llama9"), None),
            case(400, None, json!({"object": "error", "message": "max_tokens is too large", "type": "BadRequestError", "param": null, "code": 400}), Rejected, 400, false, Some("max_tokens"), None),
        ],
    );
    let f = classify(
        WireFormat::OpenAi,
        400,
        None,
        e("bad", "invalid_request_error", Some("messages"), None)
            .to_string()
            .as_bytes(),
    );
    assert_eq!(f.param.as_deref(), Some("messages"));
}

#[test]
fn codes_are_sanitized_for_logs() {
    let f = classify(
        WireFormat::Bedrock,
        400,
        Some("Evil\nException {\"x\"}"),
        b"{}",
    );
    assert_eq!(f.code.as_deref(), Some("EvilExceptionx"));
    let long = "A".repeat(500);
    let f = classify(WireFormat::Bedrock, 400, Some(&long), b"{}");
    assert_eq!(f.code.unwrap().len(), 64);
    let f = classify(WireFormat::Bedrock, 400, Some(" :x"), b"{}");
    assert_eq!(f.code, None);
}

#[test]
fn scrubbing() {
    for (input, want) in [
        ("plain message", "plain message"),
        (
            "see https://example.com/a?b=c&key=SECRET, then retry.",
            "see [url], then retry.",
        ),
        ("(http://10.0.0.1:8080/v1)", "([url])"),
        ("HTTPS://HOST/PATH end", "[url] end"),
        ("pass key=abc123&x=1 here", "pass key=***&x=1 here"),
        ("api_key=abc123", "api_key=***"),
        ("monkey=banana", "monkey=banana"),
        ("key= nothing", "key= nothing"),
        (
            "token AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY!",
            "token ***!",
        ),
        ("AIza short", "AIza short"),
        ("id AKIAIOSFODNN7EXAMPLE used", "id *** used"),
        (
            "Authorization: Bearer ya29.a0AfH6SMC-xyz",
            "Authorization: Bearer ***",
        ),
        ("ünïcödé https://é.example/ü done é", "ünïcödé [url] done é"),
        ("", ""),
    ] {
        assert_eq!(scrub(input), want, "{input}");
    }
}

/// Any bytes: no panic, and the scrubbed text is never longer than needed to hold it.
#[test]
fn classify_never_panics() {
    let mut rng = fastrand::Rng::with_seed(7);
    let pieces: [&[u8]; 10] = [
        br#"{"error":{"#,
        br#""details":[{"reason":"API_KEY_INVALID","retryDelay":"1e309s"}]"#,
        br#""message":"https://x?key=AIza"#,
        b"\xff\xfe",
        "é".as_bytes(),
        br#""type":"overloaded_error""#,
        b"}}",
        b"[",
        br#"{"__type":"a#b#ThrottlingException"}"#,
        b"key=",
    ];
    for _ in 0..2000 {
        let mut body = Vec::new();
        for _ in 0..rng.usize(0..6) {
            body.extend_from_slice(pieces[rng.usize(..pieces.len())]);
        }
        let status = rng.u16(100..600);
        for wire in [
            WireFormat::OpenAi,
            WireFormat::Anthropic,
            WireFormat::Gemini,
            WireFormat::Bedrock,
        ] {
            let f = classify(wire, status, Some("x:y"), &body);
            if f.kind == Rejected {
                assert!((400..500).contains(&f.status), "{f:?}");
                assert!(![401, 402, 403, 407, 408, 429].contains(&f.status));
            }
        }
        let text = String::from_utf8_lossy(&body);
        let _ = scrub(&text);
    }
}

/// Errors inside a 2xx stream, as each provider sends them: Anthropic's `event: error` data,
/// Bedrock's ConverseStream exceptions (lowerCamelCase `:exception-type`, as AWS documents
/// the stream's members), Gemini's `{"error": …}` frame, an OpenAI-compatible error chunk.
#[test]
fn stream_errors() {
    let anthropic = |kind: &str, message: &str| {
        classify_stream_error(
            WireFormat::Anthropic,
            None,
            anthropic_body(kind, message).to_string().as_bytes(),
        )
    };
    let f = anthropic("overloaded_error", "Overloaded");
    assert_eq!((f.kind, f.retryable), (Overloaded, true));
    assert_eq!(f.code.as_deref(), Some("overloaded_error"));
    assert_eq!(anthropic("rate_limit_error", "slow").kind, RateLimited);
    assert_eq!(anthropic("api_error", "oops").kind, ServerError);
    assert_eq!(anthropic("timeout_error", "late").kind, Timeout);
    let f = anthropic("invalid_request_error", "bad");
    assert_eq!((f.kind, f.status), (Rejected, 400));
    assert_eq!(anthropic("authentication_error", "key").kind, Credentials);
    let f = anthropic(
        "api_error",
        "failed at https://internal.example/v1?key=sk-x with key=abc AKIAIOSFODNN7EXAMPLE",
    );
    let m = f.message.unwrap();
    assert!(
        !m.contains("internal.example") && !m.contains("abc") && !m.contains("AKIA"),
        "{m}"
    );
    assert_eq!(
        anthropic("something_new", "?").kind,
        ServerError,
        "unknown: a 500"
    );

    let bedrock = |kind: &str, message: &str| {
        classify_stream_error(
            WireFormat::Bedrock,
            Some(kind),
            bedrock_body(message).to_string().as_bytes(),
        )
    };
    let f = bedrock(
        "throttlingException",
        "Too many tokens, ASIAIOSFODNN7EXAMPLE",
    );
    assert_eq!((f.kind, f.retryable), (RateLimited, true));
    assert_eq!(f.code.as_deref(), Some("ThrottlingException"));
    assert_eq!(f.message.as_deref(), Some("Too many tokens, ***"));
    assert_eq!(
        bedrock("serviceUnavailableException", "busy").kind,
        Overloaded
    );
    let f = bedrock("modelStreamErrorException", "stream");
    assert_eq!((f.kind, f.retryable), (ServerError, true));
    assert_eq!(bedrock("internalServerException", "x").kind, ServerError);
    let f = bedrock("validationException", "bad input");
    assert_eq!((f.kind, f.status), (Rejected, 400));
    assert_eq!(bedrock("modelTimeoutException", "late").kind, Timeout);
    assert_eq!(bedrock("", "?").kind, ServerError);

    let gemini = |body: serde_json::Value| {
        classify_stream_error(WireFormat::Gemini, None, body.to_string().as_bytes())
    };
    let f = gemini(google(503, "UNAVAILABLE", "The model is overloaded."));
    assert_eq!((f.kind, f.status), (Overloaded, 503));
    assert_eq!(
        gemini(google(429, "RESOURCE_EXHAUSTED", "quota")).kind,
        RateLimited
    );
    assert_eq!(gemini(google(500, "INTERNAL", "x")).kind, ServerError);
    assert_eq!(gemini(gemini_invalid_key()).kind, Credentials);

    let openai = |body: serde_json::Value| {
        classify_stream_error(WireFormat::OpenAi, None, body.to_string().as_bytes())
    };
    let f = openai(json!({"error": {"message": "m", "type": "server_error", "code": null}}));
    assert_eq!((f.kind, f.status), (ServerError, 500));
    // gatehouse's (and LiteLLM's) own error chunk: the type wins over the code.
    let f = openai(json!({"error": {"message": "m", "type": "overloaded_error", "code": "503"}}));
    assert_eq!(f.kind, Overloaded);
    let f = openai(json!({"error": {"message": "m", "type": "rate_limit_error", "code": "429"}}));
    assert_eq!(f.kind, RateLimited);
    assert_eq!(
        openai(json!({"error": {"message": "m", "code": 429}})).kind,
        RateLimited
    );
    assert_eq!(
        openai(json!({"error": {"message": "m", "code": 99999}})).kind,
        ServerError
    );
    assert_eq!(
        openai(json!({"error": "plain"})).message.as_deref(),
        Some("plain")
    );

    // Not JSON at all: a server error without a message, never a panic.
    for wire in [
        WireFormat::Anthropic,
        WireFormat::Gemini,
        WireFormat::Bedrock,
        WireFormat::OpenAi,
    ] {
        let f = classify_stream_error(wire, Some("x"), b"\xff not json");
        assert_eq!((f.kind, f.message), (ServerError, None), "{wire:?}");
    }
}
