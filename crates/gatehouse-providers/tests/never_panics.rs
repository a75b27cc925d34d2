//! Randomised checks across every translator: no request, response or stream bytes — valid,
//! mutated or garbage — make a translator panic, and every request a translator accepts
//! becomes valid JSON. (Property tests without a framework: seeded, reproducible.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_providers::anthropic::{self, inbound};
use gatehouse_providers::{bedrock, gemini};
use serde_json::Value;

const CHAT_SEEDS: &[&str] = &[
    r#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],"max_tokens":5,"stop":["x"],"temperature":0.5}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"w?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}}}],"tool_choice":"required","reasoning_effort":"low"}"#,
    r#"{"model":"m","thinking":{"type":"enabled","budget_tokens":2000},"messages":[{"role":"system","content":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"user","content":"w?","cache_control":{"type":"ephemeral"}},{"role":"assistant","content":null,"reasoning_content":"r","thinking_blocks":[{"type":"thinking","thinking":"","signature":"s"},{"type":"redacted_thinking","data":"QQ=="}],"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"ok","cache_control":{"type":"ephemeral"}}]}],"tools":[{"type":"function","function":{"name":"f"},"cache_control":{"type":"ephemeral"}}]}"#,
];

const MESSAGES_SEEDS: &[&str] = &[
    r#"{"model":"c","max_tokens":9,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"sig"},{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},"stream":true}"#,
];

const RESPONSE_SEEDS: &[&str] = &[
    r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"hi"},{"type":"tool_use","id":"t","name":"f","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":1}}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":1}}}"#,
    r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hi"},{"functionCall":{"name":"f","args":{"a":1}}}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}"#,
    r#"{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"r","signature":"s"}}},{"reasoningContent":{"redactedContent":"QQ=="}},{"text":"hi"},{"toolUse":{"toolUseId":"t","name":"f","input":{}}}]}},"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":2,"totalTokens":5}}"#,
];

const SSE_SEED: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}]},\"finishReason\":\"STOP\"}]}\n\ndata: [DONE]\n\n";

fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.usize(1..4) {
        if v.is_empty() {
            break;
        }
        let i = rng.usize(..v.len());
        match rng.u8(..5) {
            0 => v[i] = rng.u8(..),
            1 => {
                v.remove(i);
            }
            2 => {
                let pool = b"{}[]\",:0tfn-e.\n";
                v.insert(i, pool[rng.usize(..pool.len())]);
            }
            3 => v.truncate(i),
            _ => {
                let j = rng.usize(..v.len());
                v.swap(i, j);
            }
        }
    }
    v
}

fn assert_json(out: Result<Vec<u8>, anthropic::TranslateError>) {
    if let Ok(bytes) = out {
        serde_json::from_slice::<Value>(&bytes).expect("a translator produced invalid JSON");
    }
}

#[test]
fn requests_never_panic_and_accepted_ones_are_json() {
    let mut rng = fastrand::Rng::with_seed(0x9a7e_4005);
    for round in 0..6_000 {
        let seed = CHAT_SEEDS[round % CHAT_SEEDS.len()].as_bytes();
        if let Ok(v) = serde_json::from_slice::<Value>(&mutate(&mut rng, seed)) {
            assert_json(anthropic::chat_request_to_messages(
                &v,
                "up",
                round % 2 == 0,
            ));
            assert_json(gemini::chat_request_to_generate(&v));
            assert_json(gemini::embeddings_request_to_batch(&v, "up"));
            assert_json(bedrock::chat_request_to_converse(
                &v,
                "anthropic.claude-up-v1:0",
            ));
        }
        let seed = MESSAGES_SEEDS[round % MESSAGES_SEEDS.len()].as_bytes();
        if let Ok(v) = serde_json::from_slice::<Value>(&mutate(&mut rng, seed)) {
            assert_json(inbound::messages_request_to_chat(&v, "up", round % 2 == 0));
            assert_json(inbound::messages_request_to_chat_for(
                &v,
                "up",
                round % 2 == 0,
                inbound::ChatTarget::Translated,
            ));
            let _ = inbound::estimate_input_tokens(&v);
        }
    }
}

#[test]
fn responses_never_panic() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for round in 0..6_000 {
        let body = mutate(
            &mut rng,
            RESPONSE_SEEDS[round % RESPONSE_SEEDS.len()].as_bytes(),
        );
        assert_json(anthropic::messages_response_to_chat(&body, "m", 1));
        assert_json(inbound::chat_response_to_message(&body, "m"));
        assert_json(gemini::generate_response_to_chat(&body, "m", 1));
        assert_json(gemini::batch_response_to_embeddings(
            &body,
            "m",
            round % 2 == 0,
        ));
        assert_json(bedrock::converse_response_to_chat(&body, "m", 1));
        let _ = anthropic::error_message(&body);
        let _ = bedrock::error_message(&body);
        let _ = gemini::error_message(&body);
    }
}

#[test]
fn streams_never_panic_whatever_the_bytes_and_splits() {
    let mut rng = fastrand::Rng::with_seed(0x57ea);
    let frame = bedrock::encode_message(
        &[
            (":event-type", "contentBlockDelta"),
            (":message-type", "event"),
        ],
        br#"{"contentBlockIndex":0,"delta":{"text":"hi"}}"#,
    );
    for round in 0..3_000 {
        let mut input = mutate(&mut rng, SSE_SEED.as_bytes());
        if round % 3 == 0 {
            input = mutate(&mut rng, &frame);
        }
        let mut a = anthropic::StreamTranslator::new("m", 1, true);
        let mut i = inbound::ChatStreamToMessages::new("m");
        let mut g = gemini::StreamTranslator::new("m", 1, true);
        let mut b = bedrock::StreamTranslator::new("m", 1, true);
        let mut d = bedrock::EventStreamDecoder::new();
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let n = rng.usize(1..=rest.len().min(17));
            let (piece, tail) = rest.split_at(n);
            a.push(piece);
            i.push(piece);
            g.push(piece);
            b.push(piece);
            let _ = d.push(piece);
            rest = tail;
        }
        a.finish();
        i.finish();
        g.finish();
        b.finish();
    }
}

const TEST_SA: &str = include_str!("../../gatehouse-mock/testdata/vertex-test-sa.json");

#[test]
fn vertex_credentials_and_token_answers_never_panic() {
    use gatehouse_providers::vertex;
    let mut rng = fastrand::Rng::with_seed(0x7e27e);
    let token_seed = br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer","error":"invalid_grant","error_description":"d"}"#;
    for _ in 0..3_000 {
        let body = mutate(&mut rng, token_seed);
        let _ = vertex::parse_token_response(&body);
        let _ = vertex::token_error_code(&body);
    }
    for _ in 0..300 {
        // Mutations of the key file: every outcome is Ok or Err, never a panic.
        let text = String::from_utf8_lossy(&mutate(&mut rng, TEST_SA.as_bytes())).into_owned();
        if let Ok(sa) = vertex::ServiceAccount::from_json(&text) {
            let _ = vertex::jwt_assertion(&sa, u64::MAX);
        }
        let pem = String::from_utf8_lossy(&mutate(
            &mut rng,
            b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg==\n-----END PRIVATE KEY-----",
        ))
        .into_owned();
        let _ = vertex::pem_to_der(&pem);
    }
}

#[test]
fn bedrock_embeddings_never_panic() {
    use gatehouse_providers::bedrock::{self, EmbedFamily};
    let mut rng = fastrand::Rng::with_seed(0xe3bed);
    let req_seed = br#"{"model":"m","input":["a","bb"],"dimensions":256,"normalize":true,"input_type":"search_query"}"#;
    let resp_seeds: [&[u8]; 2] = [
        br#"{"embedding":[0.5,-0.25],"inputTextTokenCount":2}"#,
        br#"{"embeddings":[[0.1],[0.2]],"texts":["a","b"]}"#,
    ];
    for round in 0..3_000 {
        let family = if round % 2 == 0 {
            EmbedFamily::Titan
        } else {
            EmbedFamily::Cohere
        };
        if let Ok(v) = serde_json::from_slice::<Value>(&mutate(&mut rng, req_seed))
            && let Ok(r) = bedrock::embeddings_request_to_invoke(&v, family)
        {
            for b in r.bodies {
                serde_json::from_slice::<Value>(&b).unwrap();
            }
        }
        let body = mutate(&mut rng, resp_seeds[round % 2]);
        assert_json(bedrock::invoke_responses_to_embeddings(
            &[body],
            family,
            "m",
            round % 3 == 0,
            7,
        ));
    }
}
