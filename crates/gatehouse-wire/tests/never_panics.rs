//! Randomised checks: no input makes the request parsers panic, and whatever they accept is
//! re-serialised to the same JSON value (minus the control fields).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_wire::{
    ChatRequest, EmbeddingsRequest, JsonObject, MessagesRequest, UPSTREAM_CONTROL_FIELDS,
};

const SEEDS: &[&str] = &[
    r#"{"model":"gpt","messages":[{"role":"user","content":"hi \u00e9 \"q\""}],"stream":true,"stream_options":{"include_usage":true}}"#,
    r#"{"model":"gpt","messages":[{"role":"system","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"temperature":0.5,"max_tokens":10}"#,
    r#"{"model":"e","input":["a","b"],"encoding_format":"float","api_base":"http://x","dimensions":8}"#,
    r#"{"model":"c","max_tokens":9,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true}"#,
];

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
                let pool = b"{}[]\",:\\0tfn-e.";
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

#[test]
fn random_mutations_never_panic_and_accepted_bodies_round_trip() {
    let mut rng = fastrand::Rng::with_seed(0x6a7e_4005e);
    let mut accepted = 0;
    for round in 0..30_000 {
        let seed = SEEDS[round % SEEDS.len()].as_bytes();
        let input = mutate(&mut rng, seed);
        let _ = EmbeddingsRequest::parse(&input);
        let _ = MessagesRequest::parse(&input);
        if let Ok(req) = ChatRequest::parse(&input) {
            accepted += 1;
            let out = req.body.to_vec_with(&[]);
            let mut original: serde_json::Value = serde_json::from_slice(&input).unwrap();
            for f in UPSTREAM_CONTROL_FIELDS {
                original.as_object_mut().unwrap().remove(*f);
            }
            let again: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(
                original,
                again,
                "input: {}",
                String::from_utf8_lossy(&input)
            );
        }
        if let Ok(obj) = JsonObject::parse(&input) {
            let out = obj.to_vec_with(&[("model", "\"m\"")]);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["model"], "m");
        }
    }
    assert!(
        accepted > 100,
        "mutations too destructive to test round-trips ({accepted})"
    );
}
