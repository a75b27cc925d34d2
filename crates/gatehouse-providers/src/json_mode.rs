//! OpenAI `response_format` for upstreams without a JSON mode (Anthropic Messages, Bedrock
//! Converse), emulated as LiteLLM does: one forced tool whose input schema is the wanted
//! schema, and its call turned back into the assistant message's `content`.
//!
//! | `response_format` | upstream request |
//! |---|---|
//! | absent, `{type: text}` | nothing |
//! | `{type: json_object}` | one tool [`JSON_TOOL_NAME`] with input schema `{"type": "object"}`, forced |
//! | `{type: json_schema, json_schema: {name, description, schema, strict}}` | one tool [`JSON_TOOL_NAME`], input schema `schema` (default `{"type": "object"}`), forced; `strict` is dropped (no strict mode upstream) |
//!
//! Answers: a tool call named [`JSON_TOOL_NAME`] becomes `message.content` (its arguments:
//! the JSON text) and `finish_reason` `tool_calls` becomes `stop` ([`tool_answer_to_content`]);
//! streamed, its argument fragments become `content` deltas ([`JsonStream`], applied to
//! every chunk by the shared chunk writer). The answer direction needs no request context:
//! the name is reserved, so only emulated calls carry it.
//!
//! Refused with a 400: `response_format` together with `tools` (a forced tool would stop the
//! model from calling the client's own tools; send one or the other); `response_format` with
//! thinking enabled (Anthropic refuses a forced tool while thinking); a schema whose root is
//! not an object (tool inputs are objects; OpenAI's structured outputs require an object root
//! too); an unknown `type`; a client tool named [`JSON_TOOL_NAME`] (reserved: its calls would
//! come back as content).

use serde_json::{Map, Value, json};

use crate::anthropic::{TranslateError, field};

/// The name of the emulating tool (LiteLLM's `RESPONSE_FORMAT_TOOL_NAME`).
pub(crate) const JSON_TOOL_NAME: &str = "json_tool_call";

/// The tool that stands in for `response_format`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonTool {
    pub(crate) description: String,
    pub(crate) schema: Value,
}

/// The emulating tool for an OpenAI request, if its `response_format` asks for JSON.
/// `thinking` says whether the translated request enables thinking; `provider` names the
/// upstream in error messages. Also refuses client tools that use the reserved name.
pub(crate) fn json_tool(
    req: &Map<String, Value>,
    provider: &str,
    thinking: bool,
) -> Result<Option<JsonTool>, TranslateError> {
    let tools = field(req, "tools").and_then(Value::as_array);
    for (i, tool) in tools.into_iter().flatten().enumerate() {
        let name = tool
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str);
        if name == Some(JSON_TOOL_NAME) {
            return Err(TranslateError::at(
                format!("tools[{i}].function.name"),
                format!(
                    "the tool name {JSON_TOOL_NAME} is reserved: gatehouse uses it to emulate response_format for {provider} models"
                ),
            ));
        }
    }
    let Some(format) = field(req, "response_format") else {
        return Ok(None);
    };
    let kind = format.get("type").and_then(Value::as_str);
    let (description, schema) = match kind {
        Some("text") => return Ok(None),
        Some("json_object") => (
            "Respond with a JSON object.".to_owned(),
            json!({ "type": "object" }),
        ),
        Some("json_schema") => {
            let spec = format.get("json_schema").filter(|s| s.is_object());
            let get = |key: &str| spec.and_then(|s| s.get(key)).filter(|v| !v.is_null());
            let schema = match get("schema") {
                None => json!({ "type": "object" }),
                Some(schema) => {
                    let root = schema.get("type").and_then(Value::as_str);
                    if !schema.is_object() || root != Some("object") {
                        return Err(TranslateError::at(
                            "response_format.json_schema.schema",
                            format!(
                                "the schema must describe a JSON object (\"type\": \"object\") for {provider} models: it becomes a tool's input schema"
                            ),
                        ));
                    }
                    schema.clone()
                }
            };
            let mut description = String::from("Respond with JSON matching this schema");
            if let Some(name) = get("name").and_then(Value::as_str) {
                description.push_str(&format!(" ({name})"));
            }
            description.push('.');
            if let Some(d) = get("description").and_then(Value::as_str) {
                description.push(' ');
                description.push_str(d);
            }
            (description, schema)
        }
        _ => {
            return Err(TranslateError::at(
                "response_format.type",
                format!(
                    "response_format.type must be text, json_object or json_schema for {provider} models"
                ),
            ));
        }
    };
    if tools.is_some_and(|t| !t.is_empty()) {
        return Err(TranslateError::at(
            "response_format",
            format!(
                "response_format cannot be combined with tools for {provider} models: it is emulated with a forced tool call"
            ),
        ));
    }
    if thinking {
        return Err(TranslateError::at(
            "response_format",
            format!(
                "response_format cannot be combined with thinking / reasoning_effort for {provider} models: it is emulated with a forced tool call, which thinking does not allow"
            ),
        ));
    }
    Ok(Some(JsonTool {
        description,
        schema,
    }))
}

fn is_json_call(call: &Value) -> bool {
    call.get("function")
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        == Some(JSON_TOOL_NAME)
}

/// In a translated OpenAI `chat.completion`: each choice's tool calls named
/// [`JSON_TOOL_NAME`] become its `content` (the arguments; any text the model wrote besides
/// is replaced), and `finish_reason` `tool_calls` becomes `stop` when no other call is left.
pub(crate) fn tool_answer_to_content(chat: &mut Value) {
    let Some(choices) = chat.get_mut("choices").and_then(Value::as_array_mut) else {
        return;
    };
    for choice in choices {
        let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) else {
            continue;
        };
        let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) else {
            continue;
        };
        if !calls.iter().any(is_json_call) {
            continue;
        }
        let mut text = String::new();
        calls.retain(|call| {
            if !is_json_call(call) {
                return true;
            }
            if let Some(args) = call
                .get("function")
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
            {
                text.push_str(args);
            }
            false
        });
        let others = !calls.is_empty();
        if !others {
            message.remove("tool_calls");
        }
        message.insert("content".into(), Value::String(text));
        if !others
            && let Some(finish) = choice.get_mut("finish_reason")
            && finish.as_str() == Some("tool_calls")
        {
            *finish = Value::String("stop".into());
        }
    }
}

/// The streamed counterpart of [`tool_answer_to_content`], for one single-choice stream:
/// deltas of the tool call named [`JSON_TOOL_NAME`] become `content` deltas.
#[derive(Debug, Default)]
pub(crate) struct JsonStream {
    /// OpenAI tool call indices of the emulating call(s).
    calls: Vec<u64>,
    /// Whether any other tool call was streamed.
    others: bool,
}

impl JsonStream {
    /// Rewrites one chunk's `delta` in place. False when nothing is left to send (the
    /// delta held only the emulating call's start).
    pub(crate) fn rewrite(&mut self, delta: &mut Value) -> bool {
        let Some(obj) = delta.as_object_mut() else {
            return true;
        };
        let Some(Value::Array(entries)) = obj.get_mut("tool_calls") else {
            return true;
        };
        let mut text = String::new();
        let mut touched = false;
        entries.retain(|entry| {
            let index = entry.get("index").and_then(Value::as_u64);
            let ours = if is_json_call(entry) {
                if let Some(i) = index {
                    self.calls.push(i);
                }
                true
            } else {
                index.is_some_and(|i| self.calls.contains(&i))
            };
            if !ours {
                self.others = true;
                return true;
            }
            touched = true;
            if let Some(args) = entry
                .get("function")
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
            {
                text.push_str(args);
            }
            false
        });
        if !touched {
            return true;
        }
        if entries.is_empty() {
            obj.remove("tool_calls");
        }
        if !text.is_empty() {
            let mut content = obj
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            content.push_str(&text);
            obj.insert("content".into(), Value::String(content));
        }
        !obj.is_empty()
    }

    /// The finish reason to send: `tool_calls` becomes `stop` when only the emulating call
    /// was made.
    pub(crate) fn finish<'a>(&self, finish: Option<&'a str>) -> Option<&'a str> {
        match finish {
            Some("tool_calls") if !self.calls.is_empty() && !self.others => Some("stop"),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
