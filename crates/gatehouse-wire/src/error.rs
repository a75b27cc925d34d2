//! The OpenAI / LiteLLM error envelope.

use serde::Serialize;

/// `{"error": {"message", "type", "param", "code"}}`, with `code` the HTTP status as a string,
/// as LiteLLM sends it and as the OpenAI SDKs parse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody<'a> {
    /// Human-readable, never a stack trace or a secret.
    pub message: &'a str,
    /// Error class (`invalid_request_error`, `auth_error`, `budget_exceeded`, …).
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The offending request field, when there is one.
    pub param: Option<&'a str>,
    /// The HTTP status as a string.
    pub code: &'a str,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody<'a>,
}

impl ErrorBody<'_> {
    /// The JSON bytes of the envelope.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings into a Vec cannot fail; fall back to a fixed body anyway.
        serde_json::to_vec(&Envelope { error: self }).unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"internal_error","param":null,"code":"500"}}"#
                .to_vec()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape() {
        let body = ErrorBody {
            message: "bad \"thing\"",
            kind: "invalid_request_error",
            param: Some("messages"),
            code: "400",
        };
        let v: serde_json::Value = serde_json::from_slice(&body.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "bad \"thing\"", "type": "invalid_request_error", "param": "messages", "code": "400"}})
        );
    }
}
