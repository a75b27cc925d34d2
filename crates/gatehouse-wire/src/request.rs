//! Validated views of the OpenAI requests the gateway forwards.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::object::{JsonObject, ObjectError};

/// Request fields that, in LiteLLM, let a client choose the upstream or its credentials.
/// gatehouse removes them (by unescaped name) and never reads them: upstream URLs and keys
/// come from config only.
pub const UPSTREAM_CONTROL_FIELDS: &[&str] = &[
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "api_type",
    "organization",
    "custom_llm_provider",
    "azure_ad_token",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "aws_bedrock_runtime_endpoint",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "user_config",
    "litellm_credential_name",
    "extra_headers",
    "proxy_base_url",
];

/// A client error in a request body, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// What is wrong, for the error message.
    pub message: String,
    /// The offending field (`messages[1].role`), if any.
    pub param: Option<String>,
}

impl RequestError {
    fn field(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: Some(param.into()),
        }
    }
}

impl From<ObjectError> for RequestError {
    fn from(e: ObjectError) -> Self {
        Self {
            message: e.to_string(),
            param: None,
        }
    }
}

/// The JSON kind of a raw value, read from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind(v: &RawValue) -> Kind {
    match v.get().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Null => "null",
        Kind::Bool => "a boolean",
        Kind::Number => "a number",
        Kind::String => "a string",
        Kind::Array => "an array",
        Kind::Object => "an object",
    }
}

fn expect(
    obj: &JsonObject<'_>,
    key: &str,
    allowed: &[Kind],
    what: &str,
) -> Result<(), RequestError> {
    if let Some(v) = obj.get(key) {
        let k = kind(v);
        if k != Kind::Null && !allowed.contains(&k) {
            return Err(RequestError::field(
                key,
                format!("`{key}` must be {what}, got {}", kind_name(k)),
            ));
        }
    }
    Ok(())
}

fn integer(obj: &JsonObject<'_>, key: &str) -> Result<(), RequestError> {
    if let Some(v) = obj.get(key)
        && kind(v) != Kind::Null
        && serde_json::from_str::<i64>(v.get()).is_err()
    {
        return Err(RequestError::field(
            key,
            format!("`{key}` must be an integer"),
        ));
    }
    Ok(())
}

fn required_model<'a>(obj: &JsonObject<'a>) -> Result<Cow<'a, str>, RequestError> {
    let Some(raw) = obj.get("model") else {
        return Err(RequestError::field(
            "model",
            "missing required field `model`",
        ));
    };
    match serde_json::from_str::<Cow<'a, str>>(raw.get()) {
        Ok(m) if !m.is_empty() => Ok(m),
        Ok(_) => Err(RequestError::field("model", "`model` must not be empty")),
        Err(_) => Err(RequestError::field("model", "`model` must be a string")),
    }
}

fn strip_control_fields(obj: &mut JsonObject<'_>) -> Vec<&'static str> {
    let mut dropped = Vec::new();
    if obj.keys().any(|k| UPSTREAM_CONTROL_FIELDS.contains(&k)) {
        for f in UPSTREAM_CONTROL_FIELDS {
            if obj.remove(f) {
                dropped.push(*f);
            }
        }
    }
    dropped
}

fn trim_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => s,
    }
}

/// A validated `POST /v1/chat/completions` body.
#[derive(Debug)]
pub struct ChatRequest<'a> {
    /// Everything the client sent, minus [`UPSTREAM_CONTROL_FIELDS`].
    pub body: JsonObject<'a>,
    /// The public model name asked for.
    pub model: Cow<'a, str>,
    /// `stream: true`.
    pub stream: bool,
    /// `stream_options.include_usage: true`.
    pub include_usage: bool,
    /// Control fields the client sent and that were dropped (for a security log line).
    pub dropped: Vec<&'static str>,
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PartView<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StreamOptionsView {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl<'a> ChatRequest<'a> {
    /// Parses and validates a chat completions body.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RequestError> {
        let mut body = JsonObject::parse(bytes)?;
        let dropped = strip_control_fields(&mut body);
        let model = required_model(&body)?;

        let Some(messages) = body.get("messages") else {
            return Err(RequestError::field(
                "messages",
                "missing required field `messages`",
            ));
        };
        let messages: Vec<&RawValue> = serde_json::from_str(messages.get()).map_err(|_| {
            RequestError::field("messages", "`messages` must be an array of message objects")
        })?;
        if messages.is_empty() {
            return Err(RequestError::field(
                "messages",
                "`messages` must not be empty",
            ));
        }
        for (i, m) in messages.iter().enumerate() {
            validate_message(i, m)?;
        }

        let stream = match body.get("stream") {
            None => false,
            Some(v) => match serde_json::from_str::<Option<bool>>(v.get()) {
                Ok(b) => b.unwrap_or(false),
                Err(_) => return Err(RequestError::field("stream", "`stream` must be a boolean")),
            },
        };
        let include_usage = match body.get("stream_options") {
            None => false,
            Some(v) => match serde_json::from_str::<Option<StreamOptionsView>>(v.get()) {
                Ok(o) => o.and_then(|o| o.include_usage).unwrap_or(false),
                Err(_) => {
                    return Err(RequestError::field(
                        "stream_options",
                        "`stream_options` must be an object with a boolean `include_usage`",
                    ));
                }
            },
        };
        use Kind::*;
        expect(&body, "temperature", &[Number], "a number")?;
        expect(&body, "top_p", &[Number], "a number")?;
        expect(&body, "presence_penalty", &[Number], "a number")?;
        expect(&body, "frequency_penalty", &[Number], "a number")?;
        integer(&body, "max_tokens")?;
        integer(&body, "max_completion_tokens")?;
        integer(&body, "n")?;
        integer(&body, "seed")?;
        expect(&body, "tools", &[Array], "an array")?;
        expect(
            &body,
            "tool_choice",
            &[String, Object],
            "a string or an object",
        )?;
        expect(
            &body,
            "stop",
            &[String, Array],
            "a string or an array of strings",
        )?;
        expect(&body, "response_format", &[Object], "an object")?;
        expect(&body, "user", &[String], "a string")?;
        Ok(Self {
            body,
            model,
            stream,
            include_usage,
            dropped,
        })
    }
}

fn validate_message(i: usize, raw: &RawValue) -> Result<(), RequestError> {
    let at = |field: &str| format!("messages[{i}].{field}");
    if kind(raw) != Kind::Object {
        return Err(RequestError::field(
            format!("messages[{i}]"),
            format!("messages[{i}] must be an object"),
        ));
    }
    let m: MessageView<'_> = serde_json::from_str(raw.get()).map_err(|e| {
        RequestError::field(
            format!("messages[{i}]"),
            format!("messages[{i}]: {}", trim_position(&e)),
        )
    })?;
    match m.role.as_deref() {
        None => {
            return Err(RequestError::field(
                at("role"),
                format!("missing required field `messages[{i}].role`"),
            ));
        }
        Some(r) if !ROLES.contains(&r) => {
            return Err(RequestError::field(
                at("role"),
                format!(
                    "`messages[{i}].role` must be one of {}, got {r:?}",
                    ROLES.join(", ")
                ),
            ));
        }
        Some(_) => {}
    }
    if let Some(content) = m.content {
        match kind(content) {
            Kind::Null | Kind::String => {}
            Kind::Array => {
                let parts: Vec<PartView<'_>> =
                    serde_json::from_str(content.get()).map_err(|_| {
                        RequestError::field(
                            at("content"),
                            format!(
                                "`messages[{i}].content` parts must be objects with a string `type`"
                            ),
                        )
                    })?;
                if let Some(j) = parts.iter().position(|p| p.kind.is_none()) {
                    return Err(RequestError::field(
                        format!("messages[{i}].content[{j}].type"),
                        format!("missing required field `messages[{i}].content[{j}].type`"),
                    ));
                }
            }
            other => {
                return Err(RequestError::field(
                    at("content"),
                    format!(
                        "`messages[{i}].content` must be a string or an array of parts, got {}",
                        kind_name(other)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A validated `POST /v1/embeddings` body.
#[derive(Debug)]
pub struct EmbeddingsRequest<'a> {
    /// Everything the client sent, minus [`UPSTREAM_CONTROL_FIELDS`].
    pub body: JsonObject<'a>,
    /// The public model name asked for.
    pub model: Cow<'a, str>,
    /// Control fields the client sent and that were dropped.
    pub dropped: Vec<&'static str>,
}

impl<'a> EmbeddingsRequest<'a> {
    /// Parses and validates an embeddings body.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RequestError> {
        let mut body = JsonObject::parse(bytes)?;
        let dropped = strip_control_fields(&mut body);
        let model = required_model(&body)?;
        match body.get("input").map(kind) {
            None | Some(Kind::Null) => {
                return Err(RequestError::field(
                    "input",
                    "missing required field `input`",
                ));
            }
            Some(Kind::String | Kind::Array) => {}
            Some(other) => {
                return Err(RequestError::field(
                    "input",
                    format!(
                        "`input` must be a string or an array, got {}",
                        kind_name(other)
                    ),
                ));
            }
        }
        expect(&body, "encoding_format", &[Kind::String], "a string")?;
        integer(&body, "dimensions")?;
        Ok(Self {
            body,
            model,
            dropped,
        })
    }
}

/// A validated Anthropic `POST /v1/messages` body (gatehouse's Anthropic-compatible
/// endpoint). Only the shape is checked here; translation lives in `gatehouse-providers`.
#[derive(Debug)]
pub struct MessagesRequest<'a> {
    /// Everything the client sent, minus [`UPSTREAM_CONTROL_FIELDS`].
    pub body: JsonObject<'a>,
    /// The public model name asked for.
    pub model: Cow<'a, str>,
    /// `stream: true`.
    pub stream: bool,
    /// Control fields the client sent and that were dropped.
    pub dropped: Vec<&'static str>,
}

impl<'a> MessagesRequest<'a> {
    /// Parses and validates a Messages body.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RequestError> {
        Self::parse_inner(bytes, true)
    }

    /// Parses and validates a `count_tokens` body: a Messages body without `max_tokens`.
    pub fn parse_for_count(bytes: &'a [u8]) -> Result<Self, RequestError> {
        Self::parse_inner(bytes, false)
    }

    fn parse_inner(bytes: &'a [u8], require_max_tokens: bool) -> Result<Self, RequestError> {
        let mut body = JsonObject::parse(bytes)?;
        let dropped = strip_control_fields(&mut body);
        let model = required_model(&body)?;
        match body.get("max_tokens") {
            None if !require_max_tokens => {}
            None => {
                return Err(RequestError::field(
                    "max_tokens",
                    "missing required field `max_tokens`",
                ));
            }
            Some(v) if serde_json::from_str::<u64>(v.get()).map_or(true, |n| n == 0) => {
                return Err(RequestError::field(
                    "max_tokens",
                    "`max_tokens` must be a positive integer",
                ));
            }
            Some(_) => {}
        }
        let Some(messages) = body.get("messages") else {
            return Err(RequestError::field(
                "messages",
                "missing required field `messages`",
            ));
        };
        let messages: Vec<&RawValue> = serde_json::from_str(messages.get()).map_err(|_| {
            RequestError::field("messages", "`messages` must be an array of message objects")
        })?;
        if messages.is_empty() {
            return Err(RequestError::field(
                "messages",
                "`messages` must not be empty",
            ));
        }
        for (i, raw) in messages.iter().enumerate() {
            let m: MessageView<'_> = serde_json::from_str(raw.get()).map_err(|_| {
                RequestError::field(
                    format!("messages[{i}]"),
                    format!("messages[{i}] must be an object"),
                )
            })?;
            match m.role.as_deref() {
                Some("user" | "assistant") => {}
                _ => {
                    return Err(RequestError::field(
                        format!("messages[{i}].role"),
                        format!("`messages[{i}].role` must be \"user\" or \"assistant\""),
                    ));
                }
            }
            match m.content.map(kind) {
                Some(Kind::String | Kind::Array) => {}
                _ => {
                    return Err(RequestError::field(
                        format!("messages[{i}].content"),
                        format!(
                            "`messages[{i}].content` must be a string or an array of content blocks"
                        ),
                    ));
                }
            }
        }
        let stream = match body.get("stream") {
            None => false,
            Some(v) => match serde_json::from_str::<Option<bool>>(v.get()) {
                Ok(b) => b.unwrap_or(false),
                Err(_) => return Err(RequestError::field("stream", "`stream` must be a boolean")),
            },
        };
        expect(
            &body,
            "system",
            &[Kind::String, Kind::Array],
            "a string or an array of text blocks",
        )?;
        expect(&body, "tools", &[Kind::Array], "an array")?;
        expect(&body, "tool_choice", &[Kind::Object], "an object")?;
        expect(
            &body,
            "stop_sequences",
            &[Kind::Array],
            "an array of strings",
        )?;
        expect(&body, "temperature", &[Kind::Number], "a number")?;
        Ok(Self {
            body,
            model,
            stream,
            dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_requests() {
        let r = MessagesRequest::parse(
            br#"{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"stream":true,"api_key":"x"}"#,
        )
        .unwrap();
        assert!(r.stream);
        assert_eq!(r.dropped, ["api_key"]);
        for (body, param) in [
            (r#"{"max_tokens":1,"messages":[]}"#, "model"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}"#,
                "max_tokens",
            ),
            (r#"{"model":"m","max_tokens":1,"messages":[]}"#, "messages"),
            (
                r#"{"model":"m","max_tokens":1,"messages":[{"role":"system","content":"x"}]}"#,
                "messages[0].role",
            ),
            (
                r#"{"model":"m","max_tokens":1,"messages":[{"role":"user"}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"system":5}"#,
                "system",
            ),
        ] {
            let e = MessagesRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
        }
    }

    fn chat_err(body: &str) -> RequestError {
        ChatRequest::parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_a_chat_request_and_strips_control_fields() {
        let body = br#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"stream":true,
            "stream_options":{"include_usage":true},"api_base":"http://evil","base_url":"x","api_key":"k","custom":1}"#;
        let r = ChatRequest::parse(body).unwrap();
        assert_eq!(r.model, "gpt");
        assert!(r.stream && r.include_usage);
        assert_eq!(r.dropped, ["api_base", "base_url", "api_key"]);
        let out = String::from_utf8(r.body.to_vec_with(&[("model", "\"up\"")])).unwrap();
        assert!(!out.contains("evil") && !out.contains("api_key") && out.contains("\"custom\":1"));
        assert!(out.starts_with(r#"{"model":"up""#));
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (r#"{"messages":[]}"#, "model"),
            (r#"{"model":1,"messages":[]}"#, "model"),
            (r#"{"model":"m"}"#, "messages"),
            (r#"{"model":"m","messages":{}}"#, "messages"),
            (r#"{"model":"m","messages":[]}"#, "messages"),
            (r#"{"model":"m","messages":["hi"]}"#, "messages[0]"),
            (
                r#"{"model":"m","messages":[{"content":"x"}]}"#,
                "messages[0].role",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"},{"role":"wizard"}]}"#,
                "messages[1].role",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"text":"a"}]}]}"#,
                "messages[0].content[0].type",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#,
                "stream",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"temperature":"hot"}"#,
                "temperature",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"max_tokens":1.5}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"tools":{}}"#,
                "tools",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream_options":{"include_usage":"y"}}"#,
                "stream_options",
            ),
        ];
        for (body, param) in cases {
            let e = chat_err(body);
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {e:?}");
        }
    }

    #[test]
    fn nulls_are_allowed_where_openai_allows_them() {
        let r = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"assistant","content":null}],"stream":null,"temperature":null}"#,
        )
        .unwrap();
        assert!(!r.stream);
    }

    #[test]
    fn embeddings() {
        let r =
            EmbeddingsRequest::parse(br#"{"model":"e","input":["a","b"],"base_url":"x"}"#).unwrap();
        assert_eq!(r.model, "e");
        assert_eq!(r.dropped, ["base_url"]);
        assert_eq!(
            EmbeddingsRequest::parse(br#"{"model":"e"}"#)
                .unwrap_err()
                .param
                .as_deref(),
            Some("input")
        );
        assert_eq!(
            EmbeddingsRequest::parse(br#"{"model":"e","input":3}"#)
                .unwrap_err()
                .param
                .as_deref(),
            Some("input")
        );
    }
}
