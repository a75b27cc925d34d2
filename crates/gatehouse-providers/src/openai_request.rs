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
