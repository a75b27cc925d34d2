//! `POST /embeddings`: deterministic vectors, float or base64.

use http::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::body::MockBody;
use crate::encode::{Fnv, base64_encode, vector, word_count};
use crate::reply;
use crate::script::MockScript;
use crate::state::MockState;

/// Vector size when the request does not ask for `dimensions`.
const DEFAULT_DIMENSIONS: u32 = 8;
/// Largest `dimensions` accepted.
const MAX_DIMENSIONS: u32 = 65_536;

/// The fields of an embeddings request the mock looks at.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingRequest {
    pub model: Option<String>,
    pub input: Option<Value>,
    pub encoding_format: Option<String>,
    pub dimensions: Option<u32>,
    pub mock: Option<MockScript>,
}

/// One input to embed.
#[derive(Debug, PartialEq)]
pub(crate) enum Input<'a> {
    Text(&'a str),
    Tokens(Vec<i64>),
}

impl Input<'_> {
    /// Seed for the vector: a hash of the text or of the token ids.
    fn seed(&self) -> u64 {
        let mut h = Fnv::new();
        match self {
            Input::Text(s) => h.write(s.as_bytes()),
            Input::Tokens(t) => {
                h.write(b"\0tokens");
                t.iter().for_each(|x| h.write(&x.to_le_bytes()));
            }
        }
        h.finish()
    }

    /// Words of a text, or number of tokens.
    fn tokens(&self) -> u64 {
        match self {
            Input::Text(s) => word_count(s),
            Input::Tokens(t) => t.len() as u64,
        }
    }
}

fn token_array(v: &[Value]) -> Option<Vec<i64>> {
    v.iter().map(Value::as_i64).collect()
}

/// Reads `input`: a string, an array of strings, an array of token ids, or an
/// array of token-id arrays. `Err` is the 400 message.
pub(crate) fn parse_input(input: &Value) -> Result<Vec<Input<'_>>, &'static str> {
    const INVALID: &str = "'input' must be a non-empty string, array of strings, array of integers or array of integer arrays";
    match input {
        Value::String(s) if !s.is_empty() => Ok(vec![Input::Text(s)]),
        Value::Array(items) if !items.is_empty() => {
            if let Some(texts) = items
                .iter()
                .map(|v| v.as_str().filter(|s| !s.is_empty()).map(Input::Text))
                .collect::<Option<Vec<_>>>()
            {
                return Ok(texts);
            }
            if let Some(tokens) = token_array(items) {
                return Ok(vec![Input::Tokens(tokens)]);
            }
            items
                .iter()
                .map(|v| {
                    v.as_array()
                        .filter(|a| !a.is_empty())
                        .and_then(|a| token_array(a))
                        .map(Input::Tokens)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or(INVALID)
        }
        _ => Err(INVALID),
    }
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingOut>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingOut {
    object: &'static str,
    index: usize,
    embedding: EmbeddingValue,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// Base64 of the little-endian `f32` bytes, as OpenAI sends with
/// `encoding_format: "base64"`.
pub(crate) fn base64_floats(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64_encode(&bytes)
}

/// Handles an embeddings request body. `deployment` is the Azure deployment
/// (used as the model when the body has none).
pub(crate) async fn handle(
    body: &[u8],
    deployment: Option<&str>,
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    let mut req: EmbeddingRequest = match serde_json::from_slice(body) {
        Ok(req) => req,
        Err(e) => return reply::unparsable(&e, id),
    };
    let script = req.mock.take().unwrap_or_default();
    if let Err(resp) = script.before_reply(state, id).await {
        return resp;
    }
    let Some(model) = req.model.as_deref().or(deployment) else {
        return reply::bad_request("you must provide a model parameter", Some("model"), id);
    };
    let Some(input) = req.input.as_ref() else {
        return reply::bad_request("Missing required parameter: 'input'.", Some("input"), id);
    };
    let inputs = match parse_input(input) {
        Ok(inputs) => inputs,
        Err(msg) => return reply::bad_request(msg, Some("input"), id),
    };
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return reply::bad_request(
                "'encoding_format' must be 'float' or 'base64'",
                Some("encoding_format"),
                id,
            );
        }
    };
    let dim = match req.dimensions {
        None => DEFAULT_DIMENSIONS,
        Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => d,
        Some(_) => {
            return reply::bad_request(
                "'dimensions' must be between 1 and 65536",
                Some("dimensions"),
                id,
            );
        }
    } as usize;

    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let v = vector(input.seed(), dim);
            EmbeddingOut {
                object: "embedding",
                index,
                embedding: if base64 {
                    EmbeddingValue::Base64(base64_floats(&v))
                } else {
                    EmbeddingValue::Float(v)
                },
            }
        })
        .collect();
    let prompt_tokens = script.prompt_tokens(inputs.iter().map(Input::tokens).sum::<u64>().max(1));
    reply::json(
        &EmbeddingList {
            object: "list",
            data,
            model,
            usage: EmbeddingUsage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        },
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::base64_decode;
    use serde_json::json;

    #[test]
    fn input_shapes() {
        let one = json!("hello world");
        assert_eq!(parse_input(&one).unwrap(), vec![Input::Text("hello world")]);
        let many = json!(["a", "b"]);
        assert_eq!(
            parse_input(&many).unwrap(),
            vec![Input::Text("a"), Input::Text("b")]
        );
        let toks = json!([1, 2, 3]);
        assert_eq!(
            parse_input(&toks).unwrap(),
            vec![Input::Tokens(vec![1, 2, 3])]
        );
        let nested = json!([[1, 2], [3]]);
        assert_eq!(
            parse_input(&nested).unwrap(),
            vec![Input::Tokens(vec![1, 2]), Input::Tokens(vec![3])]
        );
        for bad in [
            json!(""),
            json!([]),
            json!(["a", 1]),
            json!([[]]),
            json!(3),
            json!({"a": 1}),
            json!([1.5]),
        ] {
            assert!(parse_input(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_usage() {
        assert_eq!(Input::Text("a b c").tokens(), 3);
        assert_eq!(Input::Tokens(vec![1, 2]).tokens(), 2);
        assert_ne!(Input::Text("a").seed(), Input::Text("b").seed());
    }

    #[test]
    fn base64_round_trip() {
        let v = vector(Input::Text("x").seed(), 8);
        let bytes = base64_decode(&base64_floats(&v));
        let back: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(back, v);
    }
}
