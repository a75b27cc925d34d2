//! OpenAI embeddings ↔ Bedrock `InvokeModel` (`POST /model/{modelId}/invoke`) for the
//! Amazon Titan and Cohere embedding models.
//!
//! - Titan (`amazon.titan-embed-text-v1`, `-v2:0`): `{"inputText", "dimensions"?,
//!   "normalize"?}` → `{"embedding": [...], "inputTextTokenCount": n}`. One text per call, so
//!   an OpenAI `input` list becomes one body per input (the gateway sends them, bounded and in
//!   order) and the answers are assembled in order with summed token counts.
//! - Cohere (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`): `{"texts": [...],
//!   "input_type"}` → `{"embeddings": [[...]], ...}`, one call. Cohere reports no token
//!   count: usage is estimated as characters / 4 (rounded up) per text.
//!
//! `input` must be a string or a non-empty array of strings (token arrays are refused: both
//! families embed text). `dimensions` goes to Titan v2 (`dimensions`); `normalize` (Titan)
//! and `input_type` (Cohere; default `search_document`, as LiteLLM) are read from the
//! request. `encoding_format: "base64"` is applied to the answer. Dropped: `user`, and every
//! other field (InvokeModel rejects unknown fields).

use serde_json::{Map, Value, json};

use super::TranslateError;
use crate::openai_request::positive_int;

/// The embedding model families served through `InvokeModel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedFamily {
    /// Amazon Titan Text Embeddings (v1, v2): one text per call.
    Titan,
    /// Cohere Embed v3 (English, multilingual): many texts per call.
    Cohere,
}

/// The family of a Bedrock model id, if it is an embedding model gatehouse serves.
pub fn embed_family(model_id: &str) -> Option<EmbedFamily> {
    if model_id.contains("amazon.titan-embed-text") {
        Some(EmbedFamily::Titan)
    } else if model_id.contains("cohere.embed-") {
        Some(EmbedFamily::Cohere)
    } else {
        None
    }
}

/// The `InvokeModel` path for a model: `/model/{modelId}/invoke` (id percent-encoded).
pub fn invoke_path(model_id: &str) -> String {
    format!(
        "/model/{}/invoke",
        super::sigv4::uri_encode(model_id.as_bytes())
    )
}

/// A translated embeddings request: the bodies to send, in order, and the inputs' token
/// estimate (used when the provider reports no count).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequests {
    /// One body per call.
    pub bodies: Vec<Vec<u8>>,
    /// ceil(characters / 4) summed over the inputs.
    pub estimated_tokens: u64,
}

fn texts(req: &Map<String, Value>) -> Result<Vec<&str>, TranslateError> {
    match req.get("input") {
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    TranslateError::at(
                        format!("input[{i}]"),
                        "input must be a string or an array of strings for Bedrock embedding models",
                    )
                })
            })
            .collect(),
        _ => Err(TranslateError::at(
            "input",
            "input must be a string or a non-empty array of strings",
        )),
    }
}

fn encode(v: &Value) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(v)
        .map_err(|e| TranslateError::new(format!("could not encode the request: {e}"), None))
}

/// OpenAI embeddings request → the `InvokeModel` bodies for `family`.
pub fn embeddings_request_to_invoke(
    openai: &Value,
    family: EmbedFamily,
) -> Result<EmbedRequests, TranslateError> {
    let req = openai
        .as_object()
        .ok_or_else(|| TranslateError::new("the request body must be a JSON object", None))?;
    let texts = texts(req)?;
    let estimated_tokens = texts
        .iter()
        .map(|t| (t.chars().count() as u64).div_ceil(4))
        .sum();
    let bodies = match family {
        EmbedFamily::Titan => {
            let dimensions = req
                .get("dimensions")
                .map(|d| positive_int(d, "dimensions"))
                .transpose()?;
            let normalize = match req.get("normalize") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(TranslateError::at("normalize", "must be a boolean")),
            };
            texts
                .iter()
                .map(|text| {
                    let mut b = Map::new();
                    b.insert("inputText".into(), Value::String((*text).to_owned()));
                    if let Some(d) = dimensions {
                        b.insert("dimensions".into(), d.into());
                    }
                    if let Some(n) = normalize {
                        b.insert("normalize".into(), n.into());
                    }
                    encode(&Value::Object(b))
                })
                .collect::<Result<_, _>>()?
        }
        EmbedFamily::Cohere => {
            let input_type = match req.get("input_type") {
                None | Some(Value::Null) => "search_document",
                Some(Value::String(s)) => s.as_str(),
                Some(_) => return Err(TranslateError::at("input_type", "must be a string")),
            };
            vec![encode(
                &json!({ "texts": texts, "input_type": input_type }),
            )?]
        }
    };
    Ok(EmbedRequests {
        bodies,
        estimated_tokens,
    })
}

fn bad(what: &str) -> TranslateError {
    TranslateError::new(
        format!("unexpected Bedrock embeddings response: {what}"),
        None,
    )
}

fn vector(values: &[Value], base64: bool) -> Result<Value, TranslateError> {
    if base64 {
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            let x = v.as_f64().ok_or_else(|| bad("a non-numeric value"))?;
            bytes.extend_from_slice(&(x as f32).to_le_bytes());
        }
        Ok(Value::String(crate::gemini::base64_encode(&bytes)))
    } else if values.iter().all(Value::is_number) {
        Ok(Value::Array(values.to_vec()))
    } else {
        Err(bad("a non-numeric value"))
    }
}

/// The `InvokeModel` answers (in request order) → one OpenAI embeddings list. `model` is
/// the response's `model` field; `estimated_tokens` is used when the provider reports no
/// token count (Cohere).
pub fn invoke_responses_to_embeddings<B: AsRef<[u8]>>(
    bodies: &[B],
    family: EmbedFamily,
    model: &str,
    base64: bool,
    estimated_tokens: u64,
) -> Result<Vec<u8>, TranslateError> {
    let mut data = Vec::new();
    let mut tokens = 0u64;
    for body in bodies {
        let v: Value = serde_json::from_slice(body.as_ref()).map_err(|_| bad("not JSON"))?;
        match family {
            EmbedFamily::Titan => {
                let values = v
                    .get("embedding")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("no embedding"))?;
                data.push(vector(values, base64)?);
                tokens = tokens.saturating_add(
                    v.get("inputTextTokenCount")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                );
            }
            EmbedFamily::Cohere => {
                let list = v
                    .get("embeddings")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("no embeddings"))?;
                for e in list {
                    let values = e
                        .as_array()
                        .ok_or_else(|| bad("an embedding is not a list"))?;
                    data.push(vector(values, base64)?);
                }
                tokens = estimated_tokens;
            }
        }
    }
    let data: Vec<Value> = data
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| json!({"object": "embedding", "index": index, "embedding": embedding}))
        .collect();
    let out = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    });
    Ok(out.to_string().into_bytes())
}
