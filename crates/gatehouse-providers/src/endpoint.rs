//! Upstream URLs for an OpenAI-compatible deployment, built once at start-up.

use http::Uri;

use crate::catalogue::{PathStyle, Provider, WireFormat};

/// Azure OpenAI `api-version` used when the config gives none (the GA version LiteLLM also defaults to).
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// An operation the gateway forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /chat/completions`.
    ChatCompletions,
    /// `POST /embeddings`.
    Embeddings,
    /// `POST /v1/messages` (Anthropic-compatible inbound): goes to the deployment's chat URL,
    /// translated when the deployment is not Anthropic.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

/// The fixed upstream URLs of one deployment. Nothing in a request can change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The chat URL: `…/chat/completions`, or `…/v1/messages` for Anthropic.
    pub chat_completions: Uri,
    /// The streaming chat URL, when the provider has a separate one (Gemini, Bedrock).
    pub chat_stream: Option<Uri>,
    /// Embeddings URL, for providers that have embeddings.
    pub embeddings: Option<Uri>,
    /// Token counting URL, for providers that have one (Anthropic).
    pub count_tokens: Option<Uri>,
}

impl Endpoints {
    /// The URL for an operation (streamed or not); `None` when the provider does not offer it.
    pub fn uri(&self, op: Operation, stream: bool) -> Option<&Uri> {
        match op {
            Operation::ChatCompletions | Operation::Messages => {
                Some(match (&self.chat_stream, stream) {
                    (Some(s), true) => s,
                    _ => &self.chat_completions,
                })
            }
            Operation::Embeddings => self.embeddings.as_ref(),
            Operation::CountTokens => self.count_tokens.as_ref(),
        }
    }
}

/// Why an `api_base` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointError(pub String);

impl std::error::Error for EndpointError {}

impl std::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates an `api_base` and returns it without a trailing slash.
///
/// Only `http` and `https` with a host are accepted; credentials in the URL and query
/// strings are refused (they would end up in logs and error messages).
pub fn validate_api_base(base: &str) -> Result<String, EndpointError> {
    let trimmed = base.trim().trim_end_matches('/');
    let uri: Uri = trimmed
        .parse()
        .map_err(|_| EndpointError("not a valid URL".into()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(EndpointError("must start with http:// or https://".into())),
    }
    let Some(authority) = uri.authority() else {
        return Err(EndpointError("has no host".into()));
    };
    if authority.as_str().contains('@') {
        return Err(EndpointError(
            "must not carry credentials; put the key in api_key".into(),
        ));
    }
    if authority.host().is_empty() {
        return Err(EndpointError("has no host".into()));
    }
    if uri.query().is_some() || trimmed.contains('#') {
        return Err(EndpointError(
            "must not have a query string or fragment".into(),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A non-empty URL path segment of letters, digits, `-`, `_`, `.` and the `extra` bytes.
fn is_safe_path_segment(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') || extra.contains(&b)
        })
}

fn parse(url: String) -> Result<Uri, EndpointError> {
    url.parse()
        .map_err(|_| EndpointError(format!("builds an invalid URL: {url}")))
}

/// Builds the endpoints of a deployment from its provider, `api_base` (already resolved:
/// config, then the provider's environment variable, then its default), `api_version`
/// and upstream model name.
pub fn build_endpoints(
    provider: &Provider,
    api_base: &str,
    api_version: Option<&str>,
    model: &str,
) -> Result<Endpoints, EndpointError> {
    let base = validate_api_base(api_base)?;
    let mut count_tokens = None;
    let mut chat_stream = None;
    let (chat, embeddings) = match provider.paths {
        PathStyle::OpenAi => (
            format!("{base}/chat/completions"),
            Some(format!("{base}/embeddings")),
        ),
        PathStyle::Gemini => {
            if !is_safe_path_segment(model, b"") {
                return Err(EndpointError(format!(
                    "Gemini model name {model:?} may only hold letters, digits, '-', '_' and '.'"
                )));
            }
            let root = base.strip_suffix("/v1beta").unwrap_or(&base);
            chat_stream = Some(format!(
                "{root}/v1beta/models/{model}:streamGenerateContent?alt=sse"
            ));
            (
                format!("{root}/v1beta/models/{model}:generateContent"),
                Some(format!("{root}/v1beta/models/{model}:batchEmbedContents")),
            )
        }
        PathStyle::Bedrock => {
            chat_stream = Some(format!(
                "{base}{}",
                crate::bedrock::converse_path(model, true)
            ));
            (
                format!("{base}{}", crate::bedrock::converse_path(model, false)),
                crate::bedrock::embed_family(model)
                    .map(|_| format!("{base}{}", crate::bedrock::invoke_path(model))),
            )
        }
        PathStyle::Vertex => {
            return Err(EndpointError(
                "vertex_ai/ endpoints need a project and location (build_vertex_endpoints)".into(),
            ));
        }
        PathStyle::Anthropic => {
            let root = base.strip_suffix("/v1").unwrap_or(&base);
            count_tokens = Some(format!("{root}/v1/messages/count_tokens"));
            (format!("{root}/v1/messages"), None)
        }
        PathStyle::HostRoot => {
            let root = base.strip_suffix("/v1").unwrap_or(&base);
            (
                format!("{root}/v1/chat/completions"),
                Some(format!("{root}/v1/embeddings")),
            )
        }
        PathStyle::Azure => {
            if !is_safe_path_segment(model, b"") {
                return Err(EndpointError(format!(
                    "Azure deployment name {model:?} may only hold letters, digits, '-', '_' and '.'"
                )));
            }
            let version = api_version.unwrap_or(AZURE_DEFAULT_API_VERSION);
            if !version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(EndpointError(format!(
                    "api_version {version:?} may only hold letters, digits and '-'"
                )));
            }
            let root = base.strip_suffix("/openai").unwrap_or(&base);
            (
                format!("{root}/openai/deployments/{model}/chat/completions?api-version={version}"),
                Some(format!(
                    "{root}/openai/deployments/{model}/embeddings?api-version={version}"
                )),
            )
        }
    };
    Ok(Endpoints {
        chat_completions: parse(chat)?,
        embeddings: embeddings.map(parse).transpose()?,
        count_tokens: count_tokens.map(parse).transpose()?,
        chat_stream: chat_stream.map(parse).transpose()?,
    })
}

/// Builds a Vertex AI deployment's endpoints under `{api_base}/v1/projects/{project}/
/// locations/{location}/publishers/…/models/{model}`; `api_base` is the host root (by
/// default [`crate::vertex::vertex_root`] of the location). By the deployment's wire format:
///
/// - Gemini (`publishers/google`): `:generateContent` and `:streamGenerateContent?alt=sse`.
///   No embeddings yet.
/// - Anthropic (`publishers/anthropic`, Claude models): `:rawPredict` and
///   `:streamRawPredict`; token counting at `publishers/anthropic/models/count-tokens:rawPredict`.
///
/// Project and location are checked with [`crate::vertex::is_safe_id`]; the model may hold
/// letters, digits, `-`, `_`, `.` and `@` (Claude's versions: `claude-sonnet-4@20250514`).
pub fn build_vertex_endpoints(
    api_base: &str,
    project: &str,
    location: &str,
    model: &str,
    wire: WireFormat,
) -> Result<Endpoints, EndpointError> {
    let base = validate_api_base(api_base)?;
    let root = base.strip_suffix("/v1").unwrap_or(&base);
    for (what, value) in [("project", project), ("location", location)] {
        if !crate::vertex::is_safe_id(value) {
            return Err(EndpointError(format!(
                "Vertex {what} {value:?} may only hold letters, digits, '-', '_' and '.'"
            )));
        }
    }
    if !is_safe_path_segment(model, b"@") {
        return Err(EndpointError(format!(
            "Vertex model name {model:?} may only hold letters, digits, '-', '_', '.' and '@'"
        )));
    }
    let publishers = format!("{root}/v1/projects/{project}/locations/{location}/publishers");
    match wire {
        WireFormat::Anthropic => {
            let models = format!("{publishers}/anthropic/models");
            let prefix = format!("{models}/{model}");
            Ok(Endpoints {
                chat_completions: parse(format!("{prefix}:rawPredict"))?,
                chat_stream: Some(parse(format!("{prefix}:streamRawPredict"))?),
                embeddings: None,
                count_tokens: Some(parse(format!("{models}/count-tokens:rawPredict"))?),
            })
        }
        WireFormat::Gemini => {
            let prefix = format!("{publishers}/google/models/{model}");
            Ok(Endpoints {
                chat_completions: parse(format!("{prefix}:generateContent"))?,
                chat_stream: Some(parse(format!("{prefix}:streamGenerateContent?alt=sse"))?),
                embeddings: None,
                count_tokens: None,
            })
        }
        WireFormat::OpenAi | WireFormat::Bedrock => Err(EndpointError(
            "Vertex AI serves Gemini and Anthropic models only".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{ProviderLookup, lookup_provider};

    fn provider(model: &str) -> Provider {
        match lookup_provider(model).0 {
            ProviderLookup::Served(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn vertex_urls_from_config_only() {
        let root = crate::vertex::vertex_root("europe-west4");
        assert_eq!(root, "https://europe-west4-aiplatform.googleapis.com");
        let e = build_vertex_endpoints(&root, "my-proj", "europe-west4", "gemini-2.5-pro", GEMINI)
            .unwrap();
        assert_eq!(
            e.chat_completions,
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            e.uri(Operation::ChatCompletions, true).unwrap(),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert!(e.embeddings.is_none());
        let g = build_vertex_endpoints(
            &crate::vertex::vertex_root("global"),
            "p",
            "global",
            "m",
            GEMINI,
        )
        .unwrap();
        assert_eq!(
            g.chat_completions,
            "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/m:generateContent"
        );
        // api_base overrides the host root (with or without /v1).
        let t = build_vertex_endpoints("http://127.0.0.1:9/v1/", "p", "us-central1", "m", GEMINI)
            .unwrap();
        assert_eq!(
            t.chat_completions,
            "http://127.0.0.1:9/v1/projects/p/locations/us-central1/publishers/google/models/m:generateContent"
        );
        for (p, l, m) in [
            ("a/b", "x", "m"),
            ("p", "x?y", "m"),
            ("p", "l", "../m"),
            ("p", "l", "m:x"),
            ("p", "l", "m?alt=sse"),
            ("p", "l", ""),
            ("", "l", "m"),
        ] {
            for wire in [GEMINI, WireFormat::Anthropic] {
                assert!(
                    build_vertex_endpoints("https://h", p, l, m, wire).is_err(),
                    "{p} {l} {m}"
                );
            }
        }
        assert!(build_vertex_endpoints("https://h", "p", "l", "m", WireFormat::OpenAi).is_err());
        assert!(
            build_endpoints(&provider("vertex_ai/m"), "https://h", None, "m").is_err(),
            "vertex needs its own builder"
        );
    }

    const GEMINI: WireFormat = WireFormat::Gemini;

    /// Claude on Vertex AI: Anthropic's publisher path, `rawPredict` / `streamRawPredict`,
    /// and the shared `count-tokens` model; `global` uses the location-less host.
    #[test]
    fn vertex_anthropic_urls() {
        let root = crate::vertex::vertex_root("us-east5");
        let e = build_vertex_endpoints(
            &root,
            "my-proj",
            "us-east5",
            "claude-sonnet-4@20250514",
            WireFormat::Anthropic,
        )
        .unwrap();
        let prefix = "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models";
        assert_eq!(
            e.uri(Operation::Messages, false).unwrap().to_string(),
            format!("{prefix}/claude-sonnet-4@20250514:rawPredict")
        );
        assert_eq!(
            e.uri(Operation::ChatCompletions, true).unwrap().to_string(),
            format!("{prefix}/claude-sonnet-4@20250514:streamRawPredict")
        );
        assert_eq!(
            e.uri(Operation::CountTokens, false).unwrap().to_string(),
            format!("{prefix}/count-tokens:rawPredict")
        );
        assert!(e.uri(Operation::Embeddings, false).is_none());
        let g = build_vertex_endpoints(
            &crate::vertex::vertex_root("global"),
            "p",
            "global",
            "claude-opus-4-1@20250805",
            WireFormat::Anthropic,
        )
        .unwrap();
        assert_eq!(
            g.chat_completions,
            "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/anthropic/models/claude-opus-4-1@20250805:rawPredict"
        );
    }

    #[test]
    fn openai_style_bases_include_v1() {
        let e = build_endpoints(
            &provider("openai/gpt-4o"),
            "http://127.0.0.1:9/v1/",
            None,
            "gpt-4o",
        )
        .unwrap();
        assert_eq!(e.chat_completions, "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(e.embeddings.unwrap(), "http://127.0.0.1:9/v1/embeddings");
    }

    #[test]
    fn azure_deployment_urls() {
        let e = build_endpoints(
            &provider("azure/my-gpt"),
            "https://res.openai.azure.com/",
            Some("2024-06-01"),
            "my-gpt",
        )
        .unwrap();
        assert_eq!(
            e.chat_completions,
            "https://res.openai.azure.com/openai/deployments/my-gpt/chat/completions?api-version=2024-06-01"
        );
        assert_eq!(
            e.embeddings.unwrap(),
            "https://res.openai.azure.com/openai/deployments/my-gpt/embeddings?api-version=2024-06-01"
        );
        // A base that already ends in /openai, and the default api-version.
        let e = build_endpoints(
            &provider("azure/emb"),
            "https://res.openai.azure.com/openai",
            None,
            "text-embedding-3-small",
        )
        .unwrap();
        assert_eq!(
            e.embeddings.unwrap().to_string(),
            format!(
                "https://res.openai.azure.com/openai/deployments/text-embedding-3-small/embeddings?api-version={AZURE_DEFAULT_API_VERSION}"
            )
        );
        assert!(
            build_endpoints(&provider("azure/x"), "https://r.example", None, "a/../b").is_err()
        );
    }

    #[test]
    fn anthropic_base_is_host_root_and_has_no_embeddings() {
        let p = provider("anthropic/claude");
        for base in ["https://api.anthropic.com", "https://api.anthropic.com/v1/"] {
            let e = build_endpoints(&p, base, None, "claude").unwrap();
            assert_eq!(e.chat_completions, "https://api.anthropic.com/v1/messages");
            assert!(e.embeddings.is_none());
            assert_eq!(
                e.uri(Operation::CountTokens, false).unwrap(),
                "https://api.anthropic.com/v1/messages/count_tokens"
            );
        }
    }

    #[test]
    fn gemini_and_bedrock_urls() {
        let e = build_endpoints(
            &provider("gemini/x"),
            "https://generativelanguage.googleapis.com",
            None,
            "gemini-2.5-pro",
        )
        .unwrap();
        assert_eq!(
            e.uri(Operation::ChatCompletions, false).unwrap(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            e.uri(Operation::ChatCompletions, true).unwrap(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert!(
            e.uri(Operation::ChatCompletions, true)
                .unwrap()
                .query()
                .is_some_and(|q| !q.contains("key"))
        );
        let e = build_endpoints(
            &provider("bedrock/x"),
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            None,
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
        )
        .unwrap();
        assert_eq!(
            e.uri(Operation::ChatCompletions, false).unwrap(),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        assert_eq!(
            e.uri(Operation::Messages, true).unwrap(),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
        );
    }

    #[test]
    fn ollama_base_is_host_root() {
        let p = provider("ollama/llama3");
        for base in ["http://localhost:11434", "http://localhost:11434/v1"] {
            let e = build_endpoints(&p, base, None, "llama3").unwrap();
            assert_eq!(
                e.chat_completions,
                "http://localhost:11434/v1/chat/completions"
            );
        }
    }

    #[test]
    fn refuses_bad_bases() {
        for bad in [
            "ftp://x",
            "not a url",
            "https://user:pw@host/v1",
            "https://host/v1?key=sk-123",
            "/relative",
        ] {
            assert!(validate_api_base(bad).is_err(), "{bad}");
        }
    }
}
