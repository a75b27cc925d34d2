//! Fixtures follow the examples of AWS's Converse / ConverseStream API reference and the
//! SigV4 test suite (`aws-sig-v4-test-suite`).

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::sigv4::{authorization, canonical_request, hex};
use super::*;

/// A deployment's upstream model id: Converse names no model, so the answer reports this.
const UPSTREAM_MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

// ---------------------------------------------------------------- SigV4

fn example_creds() -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SUITE_DATE: &str = "20150830T123600Z";

fn suite(method: &str, url: &str, extra: &[(&str, &str)]) -> String {
    let uri: http::Uri = url.parse().unwrap();
    let mut headers = vec![
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
    ];
    headers.extend_from_slice(extra);
    authorization(
        method,
        &uri,
        &headers,
        EMPTY_SHA256,
        &example_creds(),
        "us-east-1",
        "service",
        SUITE_DATE,
    )
    .unwrap()
}

#[test]
fn sigv4_test_suite_vectors() {
    let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=";
    // get-vanilla
    assert_eq!(
        suite("GET", "https://example.amazonaws.com/", &[]),
        format!("{prefix}5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    );
    // post-vanilla
    assert_eq!(
        suite("POST", "https://example.amazonaws.com/", &[]),
        format!("{prefix}5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
    );
    // get-vanilla-query-order-key-case: query sorted before signing.
    assert_eq!(
        suite(
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            &[]
        ),
        format!("{prefix}b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    );
}

/// The session token of AWS's SigV4 test suite (`post-sts-token`).
const SUITE_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

#[test]
fn sigv4_session_token_and_path_encoding_vectors() {
    // post-sts-token/post-sts-header-before: the token is part of the canonical request.
    // Expected value from AWS's test suite (post-sts-header-before.authz).
    assert_eq!(
        suite(
            "POST",
            "https://example.amazonaws.com/",
            &[("X-Amz-Security-Token", SUITE_TOKEN)]
        ),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
    );
    // normalize-path/get-special-character: each path segment is URI-encoded ('$' → %24).
    assert_eq!(
        suite("GET", "https://example.amazonaws.com/example/$delete", &[]),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=a853c9b21b528b19643d00910d35b83a10c366a10833ceefb45edd6c80e40f27"
    );
}

/// A Bedrock Converse request: the model id's ':' is sent as `%3A`, and for every service
/// but S3 AWS encodes each path segment again when it canonicalises, so the canonical URI
/// holds `%253A` (a signer that encodes once gets 403 InvalidSignatureException).
///
/// AWS publishes no vector for a pre-encoded path, so the expected signatures were computed
/// independently, once, by a throwaway Python script using only the standard library
/// (hashlib, hmac) and AWS's published algorithm, with the canonical request written out by
/// hand (`/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse`). The same script
/// reproduces AWS's published post-sts-header-before signature above.
#[test]
fn sigv4_bedrock_path_is_double_encoded() {
    let uri: http::Uri = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        .parse()
        .unwrap();
    assert_eq!(
        uri.path(),
        converse_path("anthropic.claude-3-5-sonnet-20240620-v1:0", false)
    );
    let body = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#;
    let body_hash = "7421da8d1a0949a481724fee62d5886aacde03836bf58248adb73e8b61ac0d54";
    assert_eq!(
        hex(&<sha2::Sha256 as sha2::Digest>::digest(body)),
        body_hash
    );
    // As the gateway calls it: x-amz-date among the headers too (sign sets it once).
    let headers = [
        ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
        ("content-type", "application/json"),
        ("x-amz-date", SUITE_DATE),
    ];
    let authz = |creds: &Credentials| {
        let out = sign(
            "POST",
            &uri,
            &headers,
            body,
            creds,
            "us-east-1",
            SERVICE,
            SUITE_DATE,
        )
        .unwrap();
        out.into_iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1
    };
    assert_eq!(
        authz(&example_creds()),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=7cff346b2fe84765240d6c7289252ad8b9c8696c282819cb49398ad26a316c47"
    );
    let mut creds = example_creds();
    creds.session_token = Some(SUITE_TOKEN.into());
    assert_eq!(
        authz(&creds),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=58db38f662fcff78d8a84ee6222cdd41fcce57f3599b24aa9d9d93f2c2497064"
    );
    let (_, creq) = canonical_request("POST", &uri, &headers, body_hash).unwrap();
    assert_eq!(
        creq.lines().nth(1),
        Some("/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse")
    );
    // An ARN model id: its ':' and '/' are both encoded twice.
    let arn_path = converse_path("arn:aws:bedrock:us-east-1:1:inference-profile/x", true);
    let uri: http::Uri = format!("https://h{arn_path}").parse().unwrap();
    let (_, creq) = canonical_request("POST", &uri, &[("host", "h")], body_hash).unwrap();
    assert_eq!(
        creq.lines().nth(1),
        Some(
            "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A1%253Ainference-profile%252Fx/converse-stream"
        )
    );
}

#[test]
fn sign_adds_headers() {
    let uri: http::Uri = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A0/converse"
        .parse()
        .unwrap();
    let body = br#"{"messages":[]}"#;
    let mut creds = example_creds();
    let headers = [
        ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
        ("content-type", "application/json"),
    ];
    let out = sign(
        "POST",
        &uri,
        &headers,
        body,
        &creds,
        "us-east-1",
        SERVICE,
        SUITE_DATE,
    )
    .unwrap();
    let get =
        |out: &[(&str, String)], k: &str| out.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let auth = get(&out, "authorization").unwrap();
    assert!(auth.starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature="
    ), "{auth}");
    assert_eq!(get(&out, "x-amz-date").unwrap(), SUITE_DATE);
    use sha2::Digest;
    assert_eq!(
        get(&out, "x-amz-content-sha256").unwrap(),
        hex(&sha2::Sha256::digest(body))
    );
    assert!(get(&out, "x-amz-security-token").is_none());

    creds.session_token = Some("TOKEN".into());
    let out = sign(
        "POST",
        &uri,
        &headers,
        body,
        &creds,
        "us-east-1",
        SERVICE,
        SUITE_DATE,
    )
    .unwrap();
    assert_eq!(get(&out, "x-amz-security-token").unwrap(), "TOKEN");
    assert!(get(&out, "authorization").unwrap().contains(
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
    ));

    assert!(
        sign(
            "POST",
            &uri,
            &headers,
            body,
            &creds,
            "us-east-1",
            SERVICE,
            "2015-08-30"
        )
        .is_err()
    );
    assert!(
        sign(
            "POST",
            &uri,
            &[("bad\nname", "v")],
            body,
            &creds,
            "r",
            "s",
            SUITE_DATE
        )
        .is_err()
    );
}

#[test]
fn credentials_debug_hides_secrets() {
    let mut c = example_creds();
    c.session_token = Some("tok-secret".into());
    let s = format!("{c:?}");
    assert!(s.contains("AKIDEXAMPLE"));
    assert!(!s.contains("EXAMPLEKEY"));
    assert!(!s.contains("tok-secret"));
}

#[test]
fn amz_dates() {
    assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
    // 2015-08-30T12:36:00Z
    assert_eq!(
        amz_date(UNIX_EPOCH + Duration::from_secs(1_440_938_160)),
        SUITE_DATE
    );
    // 2024-02-29T23:59:59Z (leap day)
    assert_eq!(
        amz_date(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
        "20240229T235959Z"
    );
    // 2000-03-01T00:00:00Z
    assert_eq!(
        amz_date(UNIX_EPOCH + Duration::from_secs(951_868_800)),
        "20000301T000000Z"
    );
}

#[test]
fn paths() {
    assert_eq!(
        converse_path("us.anthropic.claude-3-5-sonnet-20241022-v2:0", false),
        "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse"
    );
    assert_eq!(
        converse_path("arn:aws:bedrock:us-east-1:1:inference-profile/x", true),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse-stream"
    );
}

// ---------------------------------------------------------------- event stream

#[test]
fn event_stream_round_trip_split_anywhere() {
    let a = encode_message(
        &[
            (":event-type", "contentBlockDelta"),
            (":message-type", "event"),
        ],
        br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
    );
    let b = encode_message(&[(":event-type", "messageStop")], b"");
    let all = [a.clone(), b.clone()].concat();
    for split in 0..all.len() {
        let mut d = EventStreamDecoder::new();
        let mut got = d.push(&all[..split]).unwrap();
        got.extend(d.push(&all[split..]).unwrap());
        assert_eq!(got.len(), 2, "split at {split}");
        assert_eq!(got[0].header(":event-type"), Some("contentBlockDelta"));
        assert_eq!(
            got[0].payload,
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#
        );
        assert_eq!(got[1].header(":event-type"), Some("messageStop"));
        assert!(got[1].payload.is_empty());
        assert!(d.is_empty());
    }
}

#[test]
fn event_stream_known_frame_and_other_header_types() {
    // AWS's documented example shape: total 0x1d... built by hand: one int32 header.
    let mut hdr = vec![3u8];
    hdr.extend_from_slice(b"num");
    hdr.push(4);
    hdr.extend_from_slice(&7u32.to_be_bytes());
    hdr.push(2);
    hdr.extend_from_slice(b"ty");
    hdr.push(7);
    hdr.extend_from_slice(&4u16.to_be_bytes());
    hdr.extend_from_slice(b"json");
    let payload = b"{}";
    let total = 16 + hdr.len() + payload.len();
    let mut msg = Vec::new();
    msg.extend_from_slice(&(total as u32).to_be_bytes());
    msg.extend_from_slice(&(hdr.len() as u32).to_be_bytes());
    let c = crc32fast::hash(&msg);
    msg.extend_from_slice(&c.to_be_bytes());
    msg.extend_from_slice(&hdr);
    msg.extend_from_slice(payload);
    let c = crc32fast::hash(&msg);
    msg.extend_from_slice(&c.to_be_bytes());
    let got = EventStreamDecoder::new().push(&msg).unwrap();
    assert_eq!(got[0].headers, vec![("ty".to_owned(), "json".to_owned())]);
    assert_eq!(got[0].payload, b"{}");
}

#[test]
fn event_stream_errors() {
    let good = encode_message(&[(":event-type", "x")], b"{}");
    // Bad prelude CRC.
    let mut bad = good.clone();
    bad[8] ^= 1;
    let mut d = EventStreamDecoder::new();
    assert!(d.push(&bad).unwrap_err().0.contains("prelude CRC"));
    assert!(d.push(&good).is_err(), "stays failed");
    // Bad message CRC.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 6] ^= 1;
    assert!(
        EventStreamDecoder::new()
            .push(&bad)
            .unwrap_err()
            .0
            .contains("message CRC")
    );
    // Length smaller than the minimum (with a valid prelude CRC).
    let mut tiny = 4u32.to_be_bytes().to_vec();
    tiny.extend_from_slice(&0u32.to_be_bytes());
    let c = crc32fast::hash(&tiny);
    tiny.extend_from_slice(&c.to_be_bytes());
    assert!(
        EventStreamDecoder::new()
            .push(&tiny)
            .unwrap_err()
            .0
            .contains("bad lengths")
    );
    // Incomplete is not an error.
    let mut d = EventStreamDecoder::new();
    assert!(d.push(&good[..good.len() - 1]).unwrap().is_empty());
    assert!(!d.is_empty());
}

// ---------------------------------------------------------------- request

fn translate(openai: Value) -> Value {
    serde_json::from_slice(&chat_request_to_converse(&openai, UPSTREAM_MODEL).unwrap()).unwrap()
}

fn translate_err(openai: Value) -> TranslateError {
    chat_request_to_converse(&openai, UPSTREAM_MODEL).unwrap_err()
}

#[test]
fn requests() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "minimal",
            json!({"model": "m", "messages": [{"role": "user", "content": "Hello"}]}),
            json!({"messages": [{"role": "user", "content": [{"text": "Hello"}]}]}),
        ),
        (
            "system, developer, inference config, merge",
            json!({"model": "m", "max_tokens": 5, "max_completion_tokens": 300, "temperature": 0.5,
                   "top_p": 0.9, "stop": "END", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}]},
                {"role": "assistant", "content": "Hello"}]}),
            json!({"system": [{"text": "Be brief."}, {"text": "Be kind."}],
                   "inferenceConfig": {"maxTokens": 300, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
                   "messages": [
                       {"role": "user", "content": [{"text": "Hi"}, {"text": "there"}]},
                       {"role": "assistant", "content": [{"text": "Hello"}]}]}),
        ),
        (
            "image from a data URL",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
            json!({"messages": [{"role": "user", "content": [
                {"text": "What is this?"},
                {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]}]}),
        ),
        (
            "tools, tool calls and merged tool results",
            json!({"model": "m", "tool_choice": "required", "tools": [
                    {"type": "function", "function": {"name": "top_song", "description": "Get the most popular song",
                     "parameters": {"type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}],
                   "messages": [
                {"role": "user", "content": "What is the most popular song on WZPZ?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "tooluse_1", "type": "function", "function": {"name": "top_song", "arguments": "{\"sign\":\"WZPZ\"}"}},
                    {"id": "tooluse_2", "type": "function", "function": {"name": "top_song", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "Elemental Hotel"},
                {"role": "tool", "tool_call_id": "tooluse_2", "content": [{"type": "text", "text": "n/a"}]}]}),
            json!({"messages": [
                {"role": "user", "content": [{"text": "What is the most popular song on WZPZ?"}]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "top_song", "input": {"sign": "WZPZ"}}},
                    {"toolUse": {"toolUseId": "tooluse_2", "name": "top_song", "input": {}}}]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "Elemental Hotel"}]}},
                    {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "n/a"}]}}]}],
                "toolConfig": {"tools": [{"toolSpec": {"name": "top_song", "description": "Get the most popular song",
                    "inputSchema": {"json": {"type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}}],
                    "toolChoice": {"any": {}}}}),
        ),
        (
            "named tool choice, default schema",
            json!({"model": "m", "tool_choice": {"type": "function", "function": {"name": "f"}},
                   "tools": [{"type": "function", "function": {"name": "f"}}],
                   "messages": [{"role": "user", "content": "x"}]}),
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
                   "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object", "properties": {}}}}}],
                                  "toolChoice": {"tool": {"name": "f"}}}}),
        ),
        (
            "tool_choice none drops the tools; auto",
            json!({"model": "m", "tool_choice": "none",
                   "tools": [{"type": "function", "function": {"name": "f"}}],
                   "messages": [{"role": "user", "content": "x"}]}),
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]}),
        ),
        (
            "reasoning_effort under a 3000 limit: budget as it is; passthrough",
            json!({"model": "m", "reasoning_effort": "medium", "max_tokens": 3000, "top_k": 5,
                   "seed": 1, "user": "u", "stream": true, "parallel_tool_calls": false,
                   "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"},
                   "anthropic_beta": ["x"],
                   "messages": [{"role": "user", "content": "x"}]}),
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
                   "inferenceConfig": {"maxTokens": 3000},
                   "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"},
                   "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 2048},
                                                    "top_k": 5, "anthropic_beta": ["x"]}}),
        ),
        (
            "thinking without max_tokens gets the default on top",
            json!({"model": "m", "reasoning_effort": "low", "messages": [{"role": "user", "content": "x"}]}),
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
                   "inferenceConfig": {"maxTokens": 1024 + DEFAULT_MAX_TOKENS},
                   "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}}),
        ),
    ];
    for (name, input, want) in cases {
        assert_eq!(translate(input), want, "{name}");
    }
}

/// `{type: enabled, budget_tokens: n}`.
fn enabled(budget: u64) -> Value {
    json!({"type": "enabled", "budget_tokens": budget})
}

/// The rule of the request module doc, as for Anthropic's API: an explicit output limit is
/// never raised (the gateway reserved budget for it); the thinking budget is fitted under it,
/// down to Claude's minimum of 1024, else no thinking; only without a limit is `maxTokens`
/// picked to cover the budget.
#[test]
fn thinking_budget_fits_under_the_clients_output_limit() {
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        (
            "limit above the budget: both as sent",
            json!({"max_tokens": 32000, "thinking": enabled(31999)}),
            json!(32000),
            enabled(31999),
        ),
        (
            "limit equal to the budget: budget lowered",
            json!({"max_tokens": 2048, "reasoning_effort": "medium"}),
            json!(2048),
            enabled(2047),
        ),
        (
            "max_completion_tokens is the limit",
            json!({"max_completion_tokens": 5000, "max_tokens": 64000, "thinking": enabled(31999)}),
            json!(5000),
            enabled(4999),
        ),
        (
            "lowered exactly to the minimum",
            json!({"max_tokens": 1025, "reasoning_effort": "high"}),
            json!(1025),
            enabled(1024),
        ),
        (
            "below the minimum: no thinking",
            json!({"max_tokens": 1000, "reasoning_effort": "medium"}),
            json!(1000),
            Value::Null,
        ),
        (
            "adaptive thinking passes as it is, no maxTokens picked",
            json!({"thinking": {"type": "adaptive"}}),
            Value::Null,
            json!({"type": "adaptive"}),
        ),
        (
            "no limit: the budget plus the default answer length",
            json!({"thinking": enabled(31999)}),
            json!(31999 + DEFAULT_MAX_TOKENS),
            enabled(31999),
        ),
    ];
    for (name, extra, max_tokens, thinking) in cases {
        let mut req = json!({"messages": [{"role": "user", "content": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let out = translate(req);
        assert_eq!(out["inferenceConfig"]["maxTokens"], max_tokens, "{name}");
        assert_eq!(
            out["additionalModelRequestFields"]["thinking"], thinking,
            "{name}"
        );
    }
    for limit in [1, 1000, 1024, 1025, 4096, 31999, 32000, 64000] {
        for budget in [1024, 4096, 31999] {
            let out = translate(json!({"max_tokens": limit, "thinking": enabled(budget),
                "messages": [{"role": "user", "content": "x"}]}));
            assert_eq!(out["inferenceConfig"]["maxTokens"], limit);
            match out["additionalModelRequestFields"]["thinking"]["budget_tokens"].as_u64() {
                Some(b) => assert!(
                    (1024..limit).contains(&b) && b == budget.min(limit - 1),
                    "limit={limit} budget={budget}: {b}"
                ),
                None => assert!(limit <= budget && limit - 1 < 1024),
            }
        }
    }
}

#[test]
fn assistant_reasoning_is_replayed_with_its_signature() {
    let user = json!({"role": "user", "content": "What is the top song on WZPZ?"});
    let call = json!({"id": "tooluse_1", "type": "function",
                      "function": {"name": "top_song", "arguments": "{\"sign\":\"WZPZ\"}"}});
    let result = json!({"role": "tool", "tool_call_id": "tooluse_1", "content": "Elemental Hotel"});
    let tool_use = json!({"toolUse": {"toolUseId": "tooluse_1", "name": "top_song", "input": {"sign": "WZPZ"}}});
    let assistant_content = |v: Value| v["messages"][1]["content"].clone();

    // A non-streamed answer sent back as it came: reasoning first, then text, then tool use.
    let v = translate(json!({"model": "m", "messages": [user, {
        "role": "assistant", "content": "Let me look.", "tool_calls": [call],
        "reasoning_content": "I should call top_song.",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "I should call top_song.", "signature": "sig-1"},
            {"type": "redacted_thinking", "data": "RW5jcnlwdGVk"}]}, result]}));
    assert_eq!(
        assistant_content(v),
        json!([
            {"reasoningContent": {"reasoningText": {"text": "I should call top_song.", "signature": "sig-1"}}},
            {"reasoningContent": {"redactedContent": "RW5jcnlwdGVk"}},
            {"text": "Let me look."},
            tool_use,
        ])
    );

    // Rebuilt from a stream: the text in reasoning_content, the signature in a block whose
    // thinking is empty; unsigned fragments are not sent (Bedrock would refuse them).
    let v = translate(json!({"model": "m", "messages": [user, {
        "role": "assistant", "content": null, "tool_calls": [call],
        "reasoning_content": "I should call top_song.",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "I should", "signature": ""},
            {"type": "thinking", "thinking": "", "signature": "sig-2"}]}, result]}));
    assert_eq!(
        assistant_content(v),
        json!([
            {"reasoningContent": {"reasoningText": {"text": "I should call top_song.", "signature": "sig-2"}}},
            tool_use,
        ])
    );

    // reasoning_content alone has no signature: not sent.
    let v = translate(json!({"model": "m", "messages": [user, {
        "role": "assistant", "content": "Hi", "reasoning_content": "Hmm."}]}));
    assert_eq!(assistant_content(v), json!([{"text": "Hi"}]));

    for (blocks, param) in [
        (json!({"type": "thinking"}), "messages[1].thinking_blocks"),
        (
            json!([{"type": "summary", "text": "x"}]),
            "messages[1].thinking_blocks[0].type",
        ),
        (
            json!([{"type": "redacted_thinking", "data": "not base64!"}]),
            "messages[1].thinking_blocks[0].data",
        ),
        (
            json!([{"type": "redacted_thinking"}]),
            "messages[1].thinking_blocks[0].data",
        ),
    ] {
        let e = translate_err(json!({"messages": [user, {
            "role": "assistant", "content": "x", "thinking_blocks": blocks}]}));
        assert_eq!(e.param.as_deref(), Some(param), "{e}");
    }
}

/// A client that appended every streamed `thinking_blocks` entry (LiteLLM-style, no merging
/// by index) sends each block's text in pieces, its signature last: the pieces are joined
/// per block, as for Anthropic, and each block keeps its own text and signature.
#[test]
fn appended_reasoning_pieces_are_joined_per_block() {
    let v = translate(json!({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "Done.", "reasoning_content": "First, check.Then decide.",
         "thinking_blocks": [
            {"index": 0, "type": "thinking", "thinking": "First, "},
            {"index": 0, "type": "thinking", "thinking": "check."},
            {"index": 0, "type": "thinking", "thinking": "", "signature": "sig-1"},
            {"index": 1, "type": "thinking", "thinking": "Then decide."},
            {"index": 1, "type": "thinking", "thinking": "", "signature": "sig-2"},
            {"index": 2, "type": "redacted_thinking", "data": "RW5jcnlwdGVk"},
            {"index": 3, "type": "thinking", "thinking": "never signed"}]},
        {"role": "user", "content": "and?"}]}));
    assert_eq!(
        v["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "First, check.", "signature": "sig-1"}}},
            {"reasoningContent": {"reasoningText": {"text": "Then decide.", "signature": "sig-2"}}},
            {"reasoningContent": {"redactedContent": "RW5jcnlwdGVk"}},
            {"text": "Done."},
        ])
    );
    let e = translate_err(json!({"messages": [{"role": "user", "content": "x"},
        {"role": "assistant", "content": "x",
         "thinking_blocks": [{"type": "thinking", "thinking": 7, "signature": "s"}]}]}));
    assert_eq!(
        e.param.as_deref(),
        Some("messages[1].thinking_blocks[0].thinking")
    );
}

#[test]
fn thinking_goes_to_anthropic_models_unchanged() {
    let user = json!([{"role": "user", "content": "x"}]);
    let converse = |req: Value, model: &str| -> Value {
        serde_json::from_slice(&chat_request_to_converse(&req, model).unwrap()).unwrap()
    };
    // Claude Code's budget, well above what reasoning_effort could say.
    let thinking = json!({"type": "enabled", "budget_tokens": 31999});
    let req = json!({"messages": user, "max_tokens": 32000, "reasoning_effort": "high", "thinking": thinking});
    for model in [
        UPSTREAM_MODEL,
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a0a0a0a0a0a0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
    ] {
        let v = converse(req.clone(), model);
        assert_eq!(
            v["additionalModelRequestFields"]["thinking"], thinking,
            "{model}"
        );
        assert_eq!(v["inferenceConfig"]["maxTokens"], 32000, "{model}");
    }
    // Other types pass as they are.
    let adaptive = json!({"type": "adaptive"});
    let v = converse(
        json!({"messages": user, "thinking": adaptive}),
        UPSTREAM_MODEL,
    );
    assert_eq!(v["additionalModelRequestFields"]["thinking"], adaptive);
    assert!(v.get("inferenceConfig").is_none());
    // Other model families would refuse Anthropic's field: neither spelling is sent.
    for model in [
        "amazon.nova-pro-v1:0",
        "us.meta.llama3-2-11b-instruct-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
    ] {
        for req in [
            json!({"messages": user, "thinking": thinking}),
            json!({"messages": user, "reasoning_effort": "low"}),
        ] {
            let v = converse(req, model);
            assert!(
                v.get("additionalModelRequestFields").is_none(),
                "{model}: {v}"
            );
            assert!(v.get("inferenceConfig").is_none(), "{model}: {v}");
        }
    }
    // A bad reasoning_effort is refused whatever the model.
    assert!(
        chat_request_to_converse(
            &json!({"messages": user, "reasoning_effort": "max"}),
            "amazon.nova-pro-v1:0"
        )
        .is_err()
    );
}

#[test]
fn cache_control_becomes_cache_points() {
    let cc = json!({"type": "ephemeral"});
    let point = json!({"cachePoint": {"type": "default"}});
    let v = translate(json!({"model": "m",
        "tools": [
            {"type": "function", "function": {"name": "a"}},
            {"type": "function", "function": {"name": "b"}, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "Long instructions.", "cache_control": cc},
                {"type": "text", "text": "Today is Monday."}]},
            {"role": "developer", "content": "Be brief.", "cache_control": cc},
            {"role": "user", "content": [
                {"type": "text", "text": "Read this:", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}, "cache_control": cc},
                {"type": "text", "text": "Thanks", "cache_control": {"type": "persistent"}}]},
            {"role": "assistant", "content": null, "cache_control": cc, "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": [{"type": "text", "text": "ok", "cache_control": cc}]},
            {"role": "user", "content": "More", "cache_control": {"type": "ephemeral", "ttl": "2d"}}]}));
    assert_eq!(
        v["system"],
        json!([{"text": "Long instructions."}, point, {"text": "Today is Monday."}, {"text": "Be brief."}, point])
    );
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": [
                {"text": "Read this:"}, {"cachePoint": {"type": "default", "ttl": "5m"}},
                {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}, point,
                {"text": "Thanks"}]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "t1", "name": "a", "input": {}}}, point]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "t1", "content": [{"text": "ok"}]}}, point,
                {"text": "More"}, point]},
        ])
    );
    assert_eq!(
        v["toolConfig"]["tools"],
        json!([
            {"toolSpec": {"name": "a", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            {"toolSpec": {"name": "b", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            {"cachePoint": {"type": "default", "ttl": "1h"}},
        ])
    );
    // A cache_control with nothing before it in its message sends nothing.
    let v = translate(json!({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "", "cache_control": cc}]}));
    assert_eq!(
        v["messages"],
        json!([{"role": "user", "content": [{"text": "x"}]}])
    );
}

#[test]
fn model_routes() {
    use super::ModelRoute::*;
    let served = |id| Served { id, note: None };
    assert_eq!(
        model_route("anthropic.claude-3-5-sonnet-20240620-v1:0"),
        served("anthropic.claude-3-5-sonnet-20240620-v1:0")
    );
    // LiteLLM's explicit Converse route.
    assert_eq!(
        model_route("converse/us.anthropic.claude-sonnet-4-20250514-v1:0"),
        served("us.anthropic.claude-sonnet-4-20250514-v1:0")
    );
    for profile in [
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "apac.amazon.nova-pro-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ] {
        assert_eq!(model_route(profile), served(profile));
    }
    let arn =
        "arn:aws:bedrock:eu-central-1:000000000000:application-inference-profile/a0a0a0a0a0a0";
    assert_eq!(model_route(arn), served(arn));
    assert_eq!(model_route(&format!("converse/{arn}")), served(arn));
    assert_eq!(arn_region(arn), Some("eu-central-1"));
    assert_eq!(arn_region("anthropic.claude-v2:1"), None);
    // invoke/: served through Converse, with a note for chat models only.
    assert!(matches!(
        model_route("invoke/anthropic.claude-3-haiku-20240307-v1:0"),
        Served { id: "anthropic.claude-3-haiku-20240307-v1:0", note: Some(n) } if n.contains("Converse")
    ));
    assert_eq!(
        model_route("invoke/amazon.titan-embed-text-v2:0"),
        served("amazon.titan-embed-text-v2:0")
    );
    for route in [
        "llama",
        "deepseek_r1",
        "qwen3",
        "openai",
        "agent",
        "converse_like",
        "nova",
    ] {
        let m = format!("{route}/arn:aws:bedrock:us-east-1:1:imported-model/abc");
        assert!(
            matches!(model_route(&m), NotServed(ref n) if n.contains(&format!("bedrock/{route}/"))),
            "{m}"
        );
    }
    for bad in [
        "",
        "converse/",
        "us-west-2/anthropic.claude-v2",
        "arn:aws:s3:::bucket/key",
        "arn:aws:bedrock:us-east-1:1:foundation-model",
    ] {
        assert!(matches!(model_route(bad), Invalid(_)), "{bad:?}");
    }
    // Which ids take Anthropic's thinking object.
    assert!(is_anthropic_model("anthropic.claude-3-haiku-20240307-v1:0"));
    assert!(is_anthropic_model(
        "us.anthropic.claude-sonnet-4-20250514-v1:0"
    ));
    assert!(is_anthropic_model(arn));
    assert!(!is_anthropic_model("amazon.nova-pro-v1:0"));
    assert!(!is_anthropic_model(
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"
    ));
}

#[test]
fn refused_requests() {
    let user = json!([{"role": "user", "content": "x"}]);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"n": 2, "messages": user}), "n"),
        (json!({"logprobs": true, "messages": user}), "logprobs"),
        (json!({"top_logprobs": 2, "messages": user}), "top_logprobs"),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "function", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages",
        ),
        (
            json!({"reasoning_effort": "max", "messages": user}),
            "reasoning_effort",
        ),
        (
            json!({"tool_choice": "sometimes", "tools": [{"type": "function", "function": {"name": "f"}}], "messages": user}),
            "tool_choice",
        ),
    ];
    for (input, param) in cases {
        let e = translate_err(input.clone());
        assert_eq!(e.param.as_deref(), Some(param), "{input}: {e}");
    }
}

/// OpenAI `file` parts → Converse `document` blocks (AWS's `DocumentBlock`: format, a name of
/// allowed characters unique in the request, base64 bytes), and the refusals.
#[test]
fn file_parts_become_documents() {
    let file = |data_url: &str| json!({"type": "file", "file": {"file_data": data_url}});
    let user = |parts: Vec<Value>| json!({"role": "user", "content": parts});
    let text = json!({"type": "text", "text": "Summarize."});
    // Each documented format, from its media type (parameters ignored).
    for (media_type, format) in [
        ("application/pdf", "pdf"),
        ("text/csv", "csv"),
        ("application/msword", "doc"),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "docx",
        ),
        ("application/vnd.ms-excel", "xls"),
        (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        ("text/html", "html"),
        ("text/plain;charset=utf-8", "txt"),
        ("TEXT/Markdown", "md"),
        ("text/x-markdown", "md"),
    ] {
        let v = translate(json!({"messages": [user(vec![text.clone(),
            file(&format!("data:{media_type};base64,JVBERi0xLjQK"))])]}));
        assert_eq!(
            v["messages"][0]["content"],
            json!([{"text": "Summarize."}, {"document": {"format": format, "name": "document-1",
                "source": {"bytes": "JVBERi0xLjQK"}}}]),
            "{media_type}"
        );
    }
    // application/octet-stream: the filename's extension decides.
    let v = translate(
        json!({"messages": [user(vec![text.clone(), json!({"type": "file",
        "file": {"filename": "Q3 report.DOCX", "file_data": "data:application/octet-stream;base64,UEsDBA=="}})])]}),
    );
    assert_eq!(v["messages"][0]["content"][1]["document"]["format"], "docx");

    // Names are numbered across the request (unique, as Converse requires), cache points
    // follow, and a message with documents but no text gets one naming them: here the PDF a
    // tool returned, which the /v1/messages chain moves into the following user message.
    let call =
        json!({"id": "t1", "type": "function", "function": {"name": "read", "arguments": "{}"}});
    let v = translate(json!({"messages": [
        user(vec![text.clone(), file("data:application/pdf;base64,QUFB"), file("data:text/csv;base64,YSxi")]),
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "t1", "content": "read file.pdf"},
        user(vec![json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,QkJC"},
                         "cache_control": {"type": "ephemeral"}})]),
    ]}));
    let names: Vec<&Value> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().unwrap())
        .filter_map(|b| b.get("document"))
        .map(|d| &d["name"])
        .collect();
    assert_eq!(names, ["document-1", "document-2", "document-3"]);
    assert_eq!(
        v["messages"][2]["content"],
        json!([
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "read file.pdf"}]}},
            {"document": {"format": "pdf", "name": "document-3", "source": {"bytes": "QkJC"}}},
            {"cachePoint": {"type": "default"}},
            {"text": "Attached: document-3"},
        ])
    );
    // A message that has text gets none added.
    assert_eq!(v["messages"][0]["content"].as_array().unwrap().len(), 3);

    // Refused, naming the field.
    for (part, why) in [
        (file("data:image/svg+xml;base64,PHN2Zz4="), "not supported"),
        (
            file("data:application/zip;base64,UEsDBA=="),
            "not supported",
        ),
        (
            file("data:application/octet-stream;base64,UEsDBA=="),
            "not supported",
        ),
        (file("data:application/pdf,%25PDF"), "base64"),
        (file("data:application/pdf;base64,"), "base64"),
        (file("data:application/pdf;base64,not base64!"), "base64"),
        (file("https://example.com/a.pdf"), "data: URL"),
        (
            json!({"type": "file", "file": {"file_id": "file-abc"}}),
            "inline file_data",
        ),
    ] {
        let e = translate_err(json!({"messages": [user(vec![text.clone(), part.clone()])]}));
        assert_eq!(
            e.param.as_deref(),
            Some("messages[0].content[1].file.file_data"),
            "{part}"
        );
        assert!(e.message.contains(why), "{part}: {e}");
    }
    // Only user messages hold documents.
    let e = translate_err(json!({"messages": [{"role": "system",
        "content": [file("data:application/pdf;base64,QUFB")]}]}));
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
}

/// Claude Code reading a PDF on a `bedrock/` model: the Anthropic `document` block (base64
/// source) goes through the `/v1/messages` chain to a Converse `document`.
#[test]
fn anthropic_documents_reach_converse_through_the_inbound_chain() {
    use crate::anthropic::inbound::{ChatTarget, messages_request_to_chat_for};
    let pdf = json!({"type": "document", "title": "Spec",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}});
    let req = json!({"model": "claude-bedrock", "max_tokens": 1024, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Read the spec."}, pdf]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": [{"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": "aGk="}}]}]},
    ]});
    let chat: Value = serde_json::from_slice(
        &messages_request_to_chat_for(&req, UPSTREAM_MODEL, false, ChatTarget::Translated).unwrap(),
    )
    .unwrap();
    let v = translate(chat);
    assert_eq!(
        v["messages"][0]["content"],
        json!([{"text": "Read the spec."},
               {"document": {"format": "pdf", "name": "document-1", "source": {"bytes": "JVBERi0xLjQK"}}}])
    );
    assert_eq!(
        v["messages"][2]["content"],
        json!([{"toolResult": {"toolUseId": "toolu_1", "content": [{"text": ""}]}},
               {"document": {"format": "txt", "name": "document-2", "source": {"bytes": "aGk="}}},
               {"text": "Attached: document-2"}])
    );
}

// ---------------------------------------------------------------- response

fn to_chat(body: Value) -> Value {
    let bytes =
        converse_response_to_chat(body.to_string().as_bytes(), UPSTREAM_MODEL, 1700000000).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn responses() {
    let v = to_chat(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}, {"text": " world"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 30, "outputTokens": 628, "totalTokens": 658, "cacheReadInputTokens": 4},
        "metrics": {"latencyMs": 1275}
    }));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], UPSTREAM_MODEL);
    assert_eq!(v["created"], 1700000000);
    assert_eq!(v["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 34);
    assert_eq!(v["usage"]["completion_tokens"], 628);
    assert_eq!(v["usage"]["total_tokens"], 662);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);

    let v = to_chat(json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "Think.", "signature": "s"}}},
            {"text": "Let me look that up."},
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "top_song", "input": {"sign": "WZPZ"}}}]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 375, "outputTokens": 36, "totalTokens": 411}
    }));
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "Let me look that up.");
    assert_eq!(m["reasoning_content"], "Think.");
    assert_eq!(
        m["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "Think.", "signature": "s"}])
    );
    assert_eq!(m["tool_calls"][0]["id"], "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(m["tool_calls"][0]["function"]["name"], "top_song");
    assert_eq!(
        m["tool_calls"][0]["function"]["arguments"],
        "{\"sign\":\"WZPZ\"}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    for (reason, want) in [
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ] {
        let v = to_chat(json!({"output": {"message": {"content": []}}, "stopReason": reason}));
        assert_eq!(v["choices"][0]["finish_reason"], want);
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
    }
    assert!(converse_response_to_chat(b"nope", "m", 0).is_err());
    assert!(converse_response_to_chat(b"{}", "m", 0).is_err());
}

#[test]
fn reasoning_and_cache_usage_in_responses() {
    // ReasoningContentBlock is a union: reasoningText {text, signature} or redactedContent
    // (a blob: base64 in JSON). Usage names cache reads and writes (TokenUsage).
    let v = to_chat(json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "First, ", "signature": "sig-1"}}},
            {"reasoningContent": {"redactedContent": "RW5jcnlwdGVk"}},
            {"reasoningContent": {"reasoningText": {"text": "then."}}},
            {"text": "Done."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 5, "totalTokens": 1508,
                  "cacheReadInputTokens": 0, "cacheWriteInputTokens": 1500}
    }));
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "Done.");
    assert_eq!(m["reasoning_content"], "First, then.");
    assert_eq!(
        m["thinking_blocks"],
        json!([
            {"type": "thinking", "thinking": "First, ", "signature": "sig-1"},
            {"type": "redacted_thinking", "data": "RW5jcnlwdGVk"},
            {"type": "thinking", "thinking": "then.", "signature": ""},
        ])
    );
    assert_eq!(v["usage"]["prompt_tokens"], 1503);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 1500);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(v["usage"]["total_tokens"], 1508);
    // No reasoning: no thinking_blocks field at all.
    let v = to_chat(json!({"output": {"message": {"content": [{"text": "x"}]}}}));
    assert!(v["choices"][0]["message"].get("thinking_blocks").is_none());
}

#[test]
fn errors() {
    assert_eq!(
        error_message(br#"{"message":"Too many requests, please wait."}"#).as_deref(),
        Some("Too many requests, please wait.")
    );
    assert_eq!(error_message(br#"{"Message":"x"}"#).as_deref(), Some("x"));
    assert_eq!(error_message(b"<html>"), None);
    assert_eq!(
        error_type("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        "ValidationException"
    );
    assert_eq!(error_type("ThrottlingException"), "ThrottlingException");
}

// ---------------------------------------------------------------- stream

fn event(kind: &str, payload: Value) -> Vec<u8> {
    encode_message(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn sse_chunks(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    text.split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn tool_stream() -> Vec<u8> {
    [
        event("messageStart", json!({"role": "assistant"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hmm."}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": "Looking"}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": " it up."}})),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        event("contentBlockStart", json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "top_song"}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"sign\":"}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "\"WZPZ\"}"}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 2})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event("metadata", json!({"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}, "metrics": {"latencyMs": 100}})),
    ]
    .concat()
}

#[test]
fn stream_translation_byte_by_byte() {
    let bytes = tool_stream();
    let mut t = StreamTranslator::new(UPSTREAM_MODEL, 7, true);
    let mut out = Vec::new();
    for b in &bytes {
        out.extend(t.push(std::slice::from_ref(b)));
    }
    out.extend(t.finish());
    assert_eq!(t.error(), None);
    let chunks = sse_chunks(&out);
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0).map(|ch| &ch["delta"]))
        .collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
    // Reasoning in LiteLLM's (and the Anthropic translator's) shape, with the block's index.
    assert_eq!(
        deltas[1],
        &json!({"reasoning_content": "Hmm.",
                "thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "Hmm."}]})
    );
    assert_eq!(
        deltas[2],
        &json!({"thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "", "signature": "sig"}]})
    );
    assert_eq!(deltas[3], &json!({"content": "Looking"}));
    assert_eq!(deltas[4], &json!({"content": " it up."}));
    assert_eq!(deltas[5]["tool_calls"][0]["id"], "tooluse_1");
    assert_eq!(deltas[5]["tool_calls"][0]["function"]["name"], "top_song");
    assert_eq!(
        deltas[6]["tool_calls"][0]["function"]["arguments"],
        "{\"sign\":"
    );
    assert_eq!(deltas[7]["tool_calls"][0]["index"], 0);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(finish["usage"], Value::Null);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 10);
    assert_eq!(usage["usage"]["total_tokens"], 15);
    assert!(
        chunks
            .iter()
            .all(|c| c["model"] == UPSTREAM_MODEL && c["object"] == "chat.completion.chunk")
    );
}

#[test]
fn stream_redacted_reasoning_and_cache_usage() {
    let bytes = [
        event("messageStart", json!({"role": "assistant"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": "RW5jcnlwdGVk"}}})),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"reasoningContent": {"text": ""}}})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": "Hi"}})),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event("metadata", json!({"usage": {"inputTokens": 2, "outputTokens": 1, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 7}})),
    ]
    .concat();
    let mut t = StreamTranslator::new("m", 1, true);
    let mut out = t.push(&bytes);
    out.extend(t.finish());
    let chunks = sse_chunks(&out);
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"thinking_blocks": [{"index": 0, "type": "redacted_thinking", "data": "RW5jcnlwdGVk"}]})
    );
    assert_eq!(chunks[2]["choices"][0]["delta"], json!({"content": "Hi"}));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 109);
    assert_eq!(usage["cache_read_input_tokens"], 100);
    assert_eq!(usage["cache_creation_input_tokens"], 7);
}

/// The OpenAI Python SDK's stream accumulator (`openai/lib/streaming/_deltas.py`,
/// `accumulate_delta`), which `client.chat.completions.stream(...)` runs on every chunk:
/// strings concatenated, `index` and `type` replaced, objects merged, lists of objects merged
/// by each entry's `index` — an entry without one is an error ("Expected list delta entry to
/// have an `index` key"), unless it is in the first list seen for that key.
fn sdk_accumulate(acc: &mut serde_json::Map<String, Value>, delta: &Value) -> Result<(), String> {
    let indexed = |v: &Value| {
        v.as_array()
            .is_some_and(|l| l.iter().any(|e| e.get("index").is_some()))
    };
    for (key, dv) in delta.as_object().unwrap() {
        if acc.get(key).is_none_or(Value::is_null) {
            if indexed(dv) {
                acc.insert(key.clone(), json!([]));
            } else {
                acc.insert(key.clone(), dv.clone());
                continue;
            }
        }
        if key == "index" || key == "type" {
            acc.insert(key.clone(), dv.clone());
            continue;
        }
        let av = acc.get_mut(key).unwrap();
        match (av, dv) {
            (Value::String(a), Value::String(d)) => a.push_str(d),
            (Value::Object(a), Value::Object(_)) => sdk_accumulate(a, dv)?,
            (Value::Array(a), Value::Array(d)) => {
                if a.iter().all(|x| x.is_string() || x.is_number())
                    && (!a.is_empty() || !indexed(dv))
                {
                    a.extend(d.iter().cloned());
                    continue;
                }
                for entry in d {
                    let index = entry.get("index").and_then(Value::as_u64).ok_or_else(|| {
                        format!("Expected list delta entry to have an `index` key; {entry}")
                    })? as usize;
                    match a.get_mut(index) {
                        Some(Value::Object(e)) => sdk_accumulate(e, entry)?,
                        Some(_) => return Err("not handled yet".into()),
                        None => a.insert(index.min(a.len()), entry.clone()),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The assistant message the OpenAI SDK's stream helper rebuilds from the chunks.
fn sdk_message(chunks: &[Value]) -> Result<Value, String> {
    let mut acc = serde_json::Map::new();
    for c in chunks {
        if let Some(delta) = c["choices"].get(0).map(|ch| &ch["delta"]) {
            sdk_accumulate(&mut acc, delta)?;
        }
    }
    Ok(Value::Object(acc))
}

/// Claude on Bedrock can answer with several reasoning blocks (two signed ones and a
/// redacted one here, each its own `contentBlockIndex`). Every streamed `thinking_blocks`
/// entry carries the block's index, so the OpenAI SDK's accumulator — which refuses entries
/// without one — rebuilds each block whole, and that message goes back to Bedrock as the
/// reasoning it came from.
#[test]
fn stream_several_reasoning_blocks_accumulate_by_index() {
    let reasoning = |i: u64, r: Value| {
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": i, "delta": {"reasoningContent": r}}),
        )
    };
    let bytes = [
        event("messageStart", json!({"role": "assistant"})),
        reasoning(0, json!({"text": "First, "})),
        reasoning(0, json!({"text": "check."})),
        reasoning(0, json!({"signature": "sig-1"})),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        reasoning(1, json!({"text": "Then decide."})),
        reasoning(1, json!({"signature": "sig-2"})),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        reasoning(2, json!({"redactedContent": "RW5jcnlwdGVk"})),
        event("contentBlockStop", json!({"contentBlockIndex": 2})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 3, "delta": {"text": "Done."}}),
        ),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 2, "outputTokens": 9}}),
        ),
    ]
    .concat();
    let mut t = StreamTranslator::new(UPSTREAM_MODEL, 1, false);
    let mut out = t.push(&bytes);
    out.extend(t.finish());
    let chunks = sse_chunks(&out);
    for c in &chunks {
        for entry in c["choices"][0]["delta"]["thinking_blocks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(entry["index"].is_u64(), "{entry}");
        }
    }
    let message = sdk_message(&chunks).unwrap();
    assert_eq!(message["reasoning_content"], "First, check.Then decide.");
    assert_eq!(message["content"], "Done.");
    assert_eq!(
        message["thinking_blocks"],
        json!([
            {"index": 0, "type": "thinking", "thinking": "First, check.", "signature": "sig-1"},
            {"index": 1, "type": "thinking", "thinking": "Then decide.", "signature": "sig-2"},
            {"index": 2, "type": "redacted_thinking", "data": "RW5jcnlwdGVk"},
        ])
    );
    // The accumulator as it was before indices: the second signature entry is refused.
    let unindexed: Vec<Value> = chunks
        .iter()
        .map(|c| {
            let mut c = c.clone();
            for e in c["choices"][0]["delta"]["thinking_blocks"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                e.as_object_mut().unwrap().remove("index");
            }
            c
        })
        .collect();
    assert!(sdk_message(&unindexed).unwrap_err().contains("`index` key"));

    // Sent back on the next turn, each block is replayed with its own text and signature.
    let mut message = message;
    message["role"] = json!("assistant");
    let v = translate(
        json!({"reasoning_effort": "low", "max_tokens": 2048, "messages": [
        {"role": "user", "content": "x"}, message, {"role": "user", "content": "and?"}]}),
    );
    assert_eq!(
        v["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "First, check.", "signature": "sig-1"}}},
            {"reasoningContent": {"reasoningText": {"text": "Then decide.", "signature": "sig-2"}}},
            {"reasoningContent": {"redactedContent": "RW5jcnlwdGVk"}},
            {"text": "Done."},
        ])
    );
}

#[test]
fn stream_without_usage_and_without_metadata() {
    let bytes = [
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ),
        event("messageStop", json!({"stopReason": "max_tokens"})),
    ]
    .concat();
    let mut t = StreamTranslator::new("m", 1, false);
    let mut out = t.push(&bytes);
    assert!(!String::from_utf8_lossy(&out).contains("[DONE]"));
    out.extend(t.finish());
    let chunks = sse_chunks(&out);
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "length");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn stream_errors() {
    // Exception message mid-stream.
    let bytes = [
        event("messageStart", json!({"role": "assistant"})),
        encode_message(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Too many tokens, please wait before trying again."}"#,
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "late"}}),
        ),
    ]
    .concat();
    let mut t = StreamTranslator::new("m", 1, false);
    let out = t.push(&bytes);
    assert!(!String::from_utf8_lossy(&out).contains("late"));
    assert_eq!(
        t.error(),
        Some("throttlingException: Too many tokens, please wait before trying again.")
    );
    assert!(t.finish().is_empty());

    // Truncated stream.
    let mut t = StreamTranslator::new("m", 1, false);
    t.push(&event("messageStart", json!({})));
    t.finish();
    assert!(t.error().unwrap().contains("ended before"));

    // Corrupt frame.
    let mut bad = event("messageStart", json!({}));
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    let mut t = StreamTranslator::new("m", 1, false);
    assert!(t.push(&bad).is_empty());
    assert!(t.error().unwrap().contains("CRC"));
}

mod embeddings {
    use super::super::*;
    use serde_json::{Value, json};

    #[test]
    fn families_and_paths() {
        assert_eq!(
            embed_family("amazon.titan-embed-text-v2:0"),
            Some(EmbedFamily::Titan)
        );
        assert_eq!(
            embed_family("amazon.titan-embed-text-v1"),
            Some(EmbedFamily::Titan)
        );
        assert_eq!(
            embed_family("cohere.embed-multilingual-v3"),
            Some(EmbedFamily::Cohere)
        );
        assert_eq!(embed_family("anthropic.claude-3-haiku-20240307-v1:0"), None);
        assert_eq!(
            invoke_path("amazon.titan-embed-text-v2:0"),
            "/model/amazon.titan-embed-text-v2%3A0/invoke"
        );
    }

    #[test]
    fn titan_fans_out_one_body_per_input() {
        let req = json!({"model": "m", "input": ["hello", "hi"], "dimensions": 256, "normalize": true, "user": "u"});
        let r = embeddings_request_to_invoke(&req, EmbedFamily::Titan).unwrap();
        let bodies: Vec<Value> = r
            .bodies
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();
        assert_eq!(
            bodies,
            [
                json!({"inputText": "hello", "dimensions": 256, "normalize": true}),
                json!({"inputText": "hi", "dimensions": 256, "normalize": true}),
            ]
        );
        assert_eq!(r.estimated_tokens, 2 + 1);
        let answers = [
            br#"{"embedding":[0.5,-0.25],"inputTextTokenCount":2}"#.to_vec(),
            br#"{"embedding":[1.0,0.0],"inputTextTokenCount":1}"#.to_vec(),
        ];
        let out: Value = serde_json::from_slice(
            &invoke_responses_to_embeddings(&answers, EmbedFamily::Titan, "up-model", false, 99)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out["object"], "list");
        assert_eq!(out["model"], "up-model");
        assert_eq!(out["data"][1]["index"], 1);
        assert_eq!(out["data"][0]["embedding"], json!([0.5, -0.25]));
        assert_eq!(out["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
        let b64: Value = serde_json::from_slice(
            &invoke_responses_to_embeddings(&answers[..1], EmbedFamily::Titan, "m", true, 0)
                .unwrap(),
        )
        .unwrap();
        // 0.5f32 = 00 00 00 3f, -0.25f32 = 00 00 80 be
        assert_eq!(b64["data"][0]["embedding"], "AAAAPwAAgL4=");
    }

    #[test]
    fn cohere_sends_one_call_and_estimates_usage() {
        let req = json!({"model": "m", "input": ["abcdefgh", "abc"]});
        let r = embeddings_request_to_invoke(&req, EmbedFamily::Cohere).unwrap();
        assert_eq!(r.bodies.len(), 1);
        let body: Value = serde_json::from_slice(&r.bodies[0]).unwrap();
        assert_eq!(
            body,
            json!({"texts": ["abcdefgh", "abc"], "input_type": "search_document"})
        );
        let q = json!({"input": "x", "input_type": "search_query"});
        let body: Value = serde_json::from_slice(
            &embeddings_request_to_invoke(&q, EmbedFamily::Cohere)
                .unwrap()
                .bodies[0],
        )
        .unwrap();
        assert_eq!(body["input_type"], "search_query");
        let answer = br#"{"id":"x","response_type":"embeddings_floats","texts":["a","b"],"embeddings":[[0.1],[0.2]]}"#;
        let out: Value = serde_json::from_slice(
            &invoke_responses_to_embeddings(
                &[answer],
                EmbedFamily::Cohere,
                "m",
                false,
                r.estimated_tokens,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(out["data"].as_array().unwrap().len(), 2);
        assert_eq!(out["usage"]["prompt_tokens"], 3);
    }

    #[test]
    fn token_arrays_and_bad_answers_are_refused() {
        for input in [json!([1, 2, 3]), json!([[1, 2]]), json!([]), json!(7)] {
            let e = embeddings_request_to_invoke(&json!({"input": input}), EmbedFamily::Titan)
                .unwrap_err();
            assert!(e.message.contains("input must be"), "{}", e.message);
        }
        assert!(
            embeddings_request_to_invoke(
                &json!({"input": "x", "dimensions": 0}),
                EmbedFamily::Titan
            )
            .is_err()
        );
        for bad in [&b"{}"[..], br#"{"embedding":["x"]}"#, b"nope"] {
            assert!(
                invoke_responses_to_embeddings(&[bad], EmbedFamily::Titan, "m", false, 0).is_err()
            );
        }
    }
}
