//! OpenAI Chat Completions → Amazon Bedrock Runtime `Converse` / `ConverseStream`, the
//! upstream direction: a client speaks OpenAI to gatehouse, a `bedrock/…` deployment is
//! served by Bedrock's Converse API, signed with AWS Signature Version 4.
//!
//! Pure functions; no I/O and no panics on any input.
//!
//! - [`sign`] / [`amz_date`] / [`Credentials`]: SigV4 header signing.
//! - [`EventStreamDecoder`] / [`encode_message`]: AWS event-stream binary framing.
//! - [`chat_request_to_converse`]: OpenAI request → Converse body (the model id goes in
//!   the URL: [`converse_path`]).
//! - [`model_route`] / [`arn_region`] / [`is_anthropic_model`]: what a LiteLLM
//!   `bedrock/…` model string means (route prefixes, cross-region profiles, ARNs).
//! - [`converse_response_to_chat`]: Converse response → OpenAI `chat.completion`.
//! - [`StreamTranslator`]: ConverseStream event-stream bytes → OpenAI chunk SSE.
//! - [`error_message`] / [`error_type`]: Bedrock error body and `x-amzn-errortype`.
//! - [`embeddings_request_to_invoke`] / [`invoke_responses_to_embeddings`]: OpenAI
//!   embeddings ↔ `InvokeModel` for Titan and Cohere embedding models ([`embed_family`]).
//!
//! Request failures are [`TranslateError`]s (shared with the Anthropic translation).

mod embeddings;
mod eventstream;
mod request;
mod response;
mod sigv4;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::Value;

pub use crate::anthropic::TranslateError;
pub use embeddings::{
    EmbedFamily, EmbedRequests, embed_family, embeddings_request_to_invoke, invoke_path,
    invoke_responses_to_embeddings,
};
pub use eventstream::{EventStreamDecoder, EventStreamError, Message, encode_message};
pub use request::chat_request_to_converse;
pub use response::{converse_response_to_chat, error_message, error_type};
pub(crate) use sigv4::hex;
pub use sigv4::{Credentials, SignError, amz_date, sign};
pub use stream::StreamTranslator;

/// The SigV4 service name of Bedrock Runtime.
pub const SERVICE: &str = "bedrock";

/// `maxTokens` added on top of a thinking budget when the request sets no length.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The request path for a model: `/model/{modelId}/converse` (or `/converse-stream`), the
/// model id percent-encoded as one path segment (`us.anthropic.claude-…-v1:0` →
/// `…-v1%3A0`; an inference-profile ARN's `/` and `:` are encoded too).
pub fn converse_path(model_id: &str, stream: bool) -> String {
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("/model/{}/{op}", sigv4::uri_encode(model_id.as_bytes()))
}

/// LiteLLM's route prefixes after `bedrock/` that gatehouse does not serve: each names
/// another API (InvokeModel with a model-specific body, agents, an OpenAI-compatible or
/// Converse-like endpoint elsewhere) that Converse cannot stand in for.
const NOT_SERVED_ROUTES: &[&str] = &[
    "converse_like",
    "agent",
    "agentcore",
    "async_invoke",
    "openai",
    "mantle",
    "llama",
    "deepseek_r1",
    "qwen2",
    "qwen3",
    "moonshot",
    "nova",
    "nova-2",
    "twelvelabs",
];

/// What a LiteLLM `bedrock/…` model string (without `bedrock/`) means to gatehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRoute<'a> {
    /// Served with this model id (it goes in the URL); `note` is an `ignored:` warning for
    /// a spelling gatehouse reads differently from LiteLLM.
    Served {
        id: &'a str,
        note: Option<&'static str>,
    },
    /// A LiteLLM route gatehouse does not serve: the deployment is skipped with this note.
    NotServed(String),
    /// Not a Bedrock model id: a config error with this message.
    Invalid(String),
}

/// Reads a `bedrock/…` model string as LiteLLM does:
///
/// - `converse/<id>` (LiteLLM's explicit Converse route) → `<id>`;
/// - `invoke/<id>` → `<id>`, served through Converse (the chat answer is the same; InvokeModel
///   is used for Titan and Cohere embedding models either way), with a note for chat models;
/// - cross-region inference profile ids (`us.`, `eu.`, `apac.`, `global.` … `anthropic.…`)
///   and bare model ids pass unchanged;
/// - ARNs (`arn:aws:bedrock:<region>:<account>:<type>/<id>`: inference profiles, application
///   inference profiles, provisioned throughput, imported and custom models) pass unchanged
///   (the URL encodes their `:` and `/`; see [`arn_region`] for the region they must be
///   called in);
/// - LiteLLM's other routes (`llama/`, `deepseek_r1/`, `qwen3/`, `openai/`, `agent/`, …:
///   InvokeModel bodies of other shapes, agents) → [`ModelRoute::NotServed`];
/// - anything else with a `/`, or nothing at all → [`ModelRoute::Invalid`].
pub fn model_route(model: &str) -> ModelRoute<'_> {
    let (id, note) = if let Some(rest) = model.strip_prefix("converse/") {
        (rest, None)
    } else if let Some(rest) = model.strip_prefix("invoke/") {
        let note = embed_family(rest).is_none().then_some(
            "the invoke/ route is served through Converse: same model, same answers; InvokeModel's model-specific bodies are not used",
        );
        (rest, note)
    } else {
        (model, None)
    };
    if id.is_empty() {
        return ModelRoute::Invalid("has no Bedrock model id after the route prefix".into());
    }
    if id.starts_with("arn:") {
        return match arn_resource(id) {
            Some(_) => ModelRoute::Served { id, note },
            None => ModelRoute::Invalid(format!(
                "{id:?} is not a Bedrock ARN (arn:<partition>:bedrock:<region>:<account>:<type>/<id>)"
            )),
        };
    }
    if let Some((route, _)) = id.split_once('/') {
        if NOT_SERVED_ROUTES.contains(&route) {
            return ModelRoute::NotServed(format!(
                "LiteLLM's bedrock/{route}/ route is not served: gatehouse speaks Converse; this deployment is skipped"
            ));
        }
        return ModelRoute::Invalid(format!(
            "{id:?} is not a Bedrock model id: give a model id (anthropic.claude-…-v1:0), a cross-region profile id (us.anthropic.…) or an ARN, optionally after converse/"
        ));
    }
    ModelRoute::Served { id, note }
}

/// `arn:<partition>:bedrock:<region>:<account>:<resource>` → `(region, resource)`.
fn arn_resource(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (
        Some("arn"),
        Some(partition),
        Some("bedrock"),
        Some(region),
        Some(_account),
        Some(resource),
    ) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    )
    else {
        return None;
    };
    let ok = partition.starts_with("aws")
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && resource
            .split_once('/')
            .is_some_and(|(t, id)| !t.is_empty() && !id.is_empty());
    ok.then_some((region, resource))
}

/// The region of a Bedrock ARN model id (requests for it must be sent to, and signed for,
/// that region); `None` for other ids.
pub fn arn_region(id: &str) -> Option<&str> {
    arn_resource(id).map(|(region, _)| region)
}

/// Whether a Bedrock model id is an Anthropic (Claude) model, whose Converse requests take
/// Anthropic's `thinking` object in `additionalModelRequestFields`: `anthropic.…`,
/// cross-region `us.anthropic.…`, ARNs naming one. ARNs that hide their model (application
/// inference profiles, provisioned throughput, custom models) count as Anthropic: the
/// client's `thinking` is then sent as asked.
pub fn is_anthropic_model(id: &str) -> bool {
    let lower = id.to_ascii_lowercase();
    if lower.contains("anthropic.") || lower.contains("claude") {
        return true;
    }
    match arn_resource(id) {
        // foundation-model/<id>, inference-profile/<profile id>: the model is named.
        Some((_, resource)) => {
            !(resource.starts_with("foundation-model/")
                || resource.starts_with("inference-profile/"))
        }
        None => false,
    }
}

/// Bedrock `stopReason` → OpenAI `finish_reason`. Unknown or missing reasons are "stop".
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("guardrail_intervened") | Some("content_filtered") => "content_filter",
        // end_turn, stop_sequence, and anything new.
        _ => "stop",
    }
}

/// Bedrock `usage` (`inputTokens`, `outputTokens`, `cacheReadInputTokens`,
/// `cacheWriteInputTokens`) → the shared usage counts (`totalTokens` is recomputed).
pub(crate) fn usage(u: &Value) -> crate::anthropic::Usage {
    let get = |key: &str| u.get(key).and_then(Value::as_u64).unwrap_or(0);
    crate::anthropic::Usage {
        input: get("inputTokens"),
        cache_read: get("cacheReadInputTokens"),
        cache_creation: get("cacheWriteInputTokens"),
        output: get("outputTokens"),
    }
}
