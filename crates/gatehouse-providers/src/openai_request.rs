//! Pieces of an OpenAI chat request that every provider translator reads the same way.

use serde_json::{Value, json};

use crate::anthropic::TranslateError;

/// `(id, name, parsed arguments)` of an OpenAI tool call.
pub(crate) fn tool_call<'a>(
    call: &'a Value,
    path: &str,
) -> Result<(Option<&'a str>, &'a str, Value), TranslateError> {
    let id = call.get("id").and_then(Value::as_str);
    let function = call.get("function");
    let name = function
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TranslateError::at(
                format!("{path}.function.name"),
                "tool call function name is required",
            )
        })?;
    let args_param = format!("{path}.function.arguments");
    let args = match function.and_then(|f| f.get("arguments")) {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => {
            let parsed: Value = serde_json::from_str(s).map_err(|e| {
                TranslateError::at(
                    args_param.clone(),
                    format!("tool call arguments are not valid JSON: {e}"),
                )
            })?;
            if !parsed.is_object() {
                return Err(TranslateError::at(
                    args_param,
                    "tool call arguments must be a JSON object",
                ));
            }
            parsed
        }
        Some(_) => {
            return Err(TranslateError::at(
                args_param,
                "tool call arguments must be a JSON string",
            ));
        }
    };
    Ok((id, name, args))
}

/// A positive integer field (`max_tokens`, `n`, …), or an error naming it.
pub(crate) fn positive_int(v: &Value, param: &str) -> Result<u64, TranslateError> {
    v.as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| TranslateError::at(param, format!("{param} must be a positive integer")))
}

/// OpenAI `stop` (a string or an array of strings) as a list; `None` when absent or empty.
pub(crate) fn stop_sequences(stop: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    let list: Vec<Value> = match stop {
        None => return Ok(None),
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_string() {
                    return Err(TranslateError::at(
                        format!("stop[{i}]"),
                        "stop sequences must be strings",
                    ));
                }
            }
            items.clone()
        }
        Some(_) => {
            return Err(TranslateError::at(
                "stop",
                "stop must be a string or an array of strings",
            ));
        }
    };
    Ok((!list.is_empty()).then_some(Value::Array(list)))
}

/// A `data:<media type>;base64,<data>` URL (the scheme in any case) → `(media type, data)`;
/// `None` when `url` is not a `data:` URL at all (the caller says what else it takes). The
/// media type may be empty: each provider decides what that means. A `data:` URL without a
/// `,` or not base64-encoded is refused, naming `param`.
pub(crate) fn parse_data_url<'a>(
    url: &'a str,
    param: &str,
) -> Result<Option<(&'a str, &'a str)>, TranslateError> {
    let Some(rest) = url
        .get(..5)
        .filter(|scheme| scheme.eq_ignore_ascii_case("data:"))
        .and_then(|_| url.get(5..))
    else {
        return Ok(None);
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| TranslateError::at(param, "malformed data: URL"))?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or_else(|| TranslateError::at(param, "data: URLs must be base64-encoded"))?;
    Ok(Some((media_type, data)))
}

/// One OpenAI function tool, read and checked once for every provider.
pub(crate) struct FunctionTool<'a> {
    /// The whole tool entry (for provider extras such as Anthropic's `cache_control`).
    pub(crate) tool: &'a Value,
    pub(crate) name: &'a str,
    pub(crate) description: Option<&'a Value>,
    pub(crate) parameters: Option<&'a Value>,
}

impl FunctionTool<'_> {
    /// `parameters`, or the empty object schema when the tool has none.
    pub(crate) fn schema(&self) -> Value {
        self.parameters
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} }))
    }
}

/// OpenAI `tools` (absent means none): only function tools, each with a name; errors name
/// the field and `provider`.
pub(crate) fn function_tools<'a>(
    tools: Option<&'a Value>,
    provider: &str,
) -> Result<Vec<FunctionTool<'a>>, TranslateError> {
    let Some(tools) = tools else {
        return Ok(Vec::new());
    };
    let tools = tools
        .as_array()
        .ok_or_else(|| TranslateError::at("tools", "tools must be an array"))?;
    function_tools_in(tools, provider)
}

/// [`function_tools`] over an already-checked array.
pub(crate) fn function_tools_in<'a>(
    tools: &'a [Value],
    provider: &str,
) -> Result<Vec<FunctionTool<'a>>, TranslateError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(TranslateError::at(
                format!("{path}.type"),
                format!("only function tools are supported for {provider} models"),
            ));
        }
        let function = tool.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                TranslateError::at(format!("{path}.function.name"), "tool name is required")
            })?;
        let non_null = |key: &str| function.and_then(|f| f.get(key)).filter(|v| !v.is_null());
        out.push(FunctionTool {
            tool,
            name,
            description: non_null("description"),
            parameters: non_null("parameters"),
        });
    }
    Ok(out)
}
