//! Which LiteLLM model prefix means which provider.

/// How the provider wants the credential sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>` (OpenAI and most compatible servers).
    Bearer,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKeyHeader,
    /// `x-api-key: <key>` (Anthropic).
    XApiKey,
    /// `x-goog-api-key: <key>` (Gemini; never in the URL, where it would end up in logs).
    GoogApiKey,
    /// AWS Signature Version 4 on every request (Bedrock).
    AwsSigV4,
    /// `Authorization: Bearer <OAuth2 access token>` from a Google service account (Vertex AI).
    GoogleOAuth,
}

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// OpenAI Chat Completions / Embeddings: forwarded as-is.
    OpenAi,
    /// Anthropic Messages: translated both ways (`crate::anthropic`).
    Anthropic,
    /// Gemini `generateContent` (`crate::gemini`).
    Gemini,
    /// Bedrock Converse (`crate::bedrock`).
    Bedrock,
}

/// How operation paths hang off `api_base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// `api_base` already includes the version (`…/v1`): append `/chat/completions`.
    OpenAi,
    /// `api_base` is the resource root: `/openai/deployments/{model}/chat/completions?api-version=…`.
    Azure,
    /// `api_base` is the host root (`http://localhost:11434`): append `/v1/chat/completions`,
    /// unless the base already ends in `/v1`.
    HostRoot,
    /// Anthropic: `api_base` is the host root; chat goes to `/v1/messages`, no embeddings.
    Anthropic,
    /// Gemini: host root; `/v1beta/models/{model}:generateContent` (`:streamGenerateContent?alt=sse`).
    Gemini,
    /// Bedrock Runtime: host root (by default from the region); `/model/{id}/converse(-stream)`.
    Bedrock,
    /// Vertex AI: host root (by default from the location);
    /// `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`. Built by
    /// [`crate::build_vertex_endpoints`], which also needs the project and location.
    Vertex,
}

/// A provider gatehouse serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// The LiteLLM prefix, without the slash (`openai`, `azure`, …).
    pub prefix: &'static str,
    /// Where requests go when the config gives no `api_base`; `None` means `api_base` is required.
    pub default_api_base: Option<&'static str>,
    /// Environment variable LiteLLM reads the key from when the config gives no `api_key`.
    pub key_env: Option<&'static str>,
    /// Environment variable LiteLLM reads the base from when the config gives no `api_base`.
    pub base_env: Option<&'static str>,
    /// How the key is sent.
    pub auth: AuthStyle,
    /// How paths are built.
    pub paths: PathStyle,
    /// What the provider speaks.
    pub wire: WireFormat,
}

/// The result of looking up a model string's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderLookup {
    /// Served now.
    Served(Provider),
    /// A LiteLLM provider gatehouse does not serve yet; the deployment is skipped with a warning.
    NotYetSupported(&'static str),
    /// Not a provider LiteLLM knows either: a config error.
    Unknown,
}

const fn openai_style(
    prefix: &'static str,
    default_api_base: Option<&'static str>,
    key_env: Option<&'static str>,
    base_env: Option<&'static str>,
) -> Provider {
    Provider {
        prefix,
        default_api_base,
        key_env,
        base_env,
        auth: AuthStyle::Bearer,
        paths: PathStyle::OpenAi,
        wire: WireFormat::OpenAi,
    }
}

/// OpenAI-compatible providers, with LiteLLM's defaults.
const SERVED: &[Provider] = &[
    openai_style(
        "openai",
        Some("https://api.openai.com/v1"),
        Some("OPENAI_API_KEY"),
        Some("OPENAI_API_BASE"),
    ),
    openai_style(
        "text-completion-openai",
        Some("https://api.openai.com/v1"),
        Some("OPENAI_API_KEY"),
        Some("OPENAI_API_BASE"),
    ),
    Provider {
        prefix: "azure",
        default_api_base: None,
        key_env: Some("AZURE_API_KEY"),
        base_env: Some("AZURE_API_BASE"),
        auth: AuthStyle::ApiKeyHeader,
        paths: PathStyle::Azure,
        wire: WireFormat::OpenAi,
    },
    openai_style(
        "hosted_vllm",
        None,
        Some("HOSTED_VLLM_API_KEY"),
        Some("HOSTED_VLLM_API_BASE"),
    ),
    openai_style("vllm", None, None, None),
    Provider {
        prefix: "ollama",
        default_api_base: Some("http://localhost:11434"),
        key_env: None,
        base_env: Some("OLLAMA_API_BASE"),
        auth: AuthStyle::Bearer,
        paths: PathStyle::HostRoot,
        wire: WireFormat::OpenAi,
    },
    Provider {
        prefix: "ollama_chat",
        default_api_base: Some("http://localhost:11434"),
        key_env: None,
        base_env: Some("OLLAMA_API_BASE"),
        auth: AuthStyle::Bearer,
        paths: PathStyle::HostRoot,
        wire: WireFormat::OpenAi,
    },
    Provider {
        prefix: "anthropic",
        default_api_base: Some("https://api.anthropic.com"),
        key_env: Some("ANTHROPIC_API_KEY"),
        base_env: Some("ANTHROPIC_API_BASE"),
        auth: AuthStyle::XApiKey,
        paths: PathStyle::Anthropic,
        wire: WireFormat::Anthropic,
    },
    Provider {
        prefix: "gemini",
        default_api_base: Some("https://generativelanguage.googleapis.com"),
        key_env: Some("GEMINI_API_KEY"),
        base_env: Some("GEMINI_API_BASE"),
        auth: AuthStyle::GoogApiKey,
        paths: PathStyle::Gemini,
        wire: WireFormat::Gemini,
    },
    Provider {
        prefix: "vertex_ai",
        default_api_base: None,
        key_env: None,
        base_env: None,
        auth: AuthStyle::GoogleOAuth,
        paths: PathStyle::Vertex,
        wire: WireFormat::Gemini,
    },
    Provider {
        prefix: "bedrock",
        default_api_base: None,
        key_env: None,
        base_env: None,
        auth: AuthStyle::AwsSigV4,
        paths: PathStyle::Bedrock,
        wire: WireFormat::Bedrock,
    },
    openai_style(
        "lm_studio",
        Some("http://localhost:1234/v1"),
        Some("LM_STUDIO_API_KEY"),
        Some("LM_STUDIO_API_BASE"),
    ),
    openai_style(
        "groq",
        Some("https://api.groq.com/openai/v1"),
        Some("GROQ_API_KEY"),
        None,
    ),
    openai_style(
        "deepseek",
        Some("https://api.deepseek.com/v1"),
        Some("DEEPSEEK_API_KEY"),
        Some("DEEPSEEK_API_BASE"),
    ),
    openai_style(
        "mistral",
        Some("https://api.mistral.ai/v1"),
        Some("MISTRAL_API_KEY"),
        Some("MISTRAL_API_BASE"),
    ),
    openai_style(
        "together_ai",
        Some("https://api.together.xyz/v1"),
        Some("TOGETHERAI_API_KEY"),
        None,
    ),
    openai_style(
        "fireworks_ai",
        Some("https://api.fireworks.ai/inference/v1"),
        Some("FIREWORKS_AI_API_KEY"),
        None,
    ),
    openai_style(
        "openrouter",
        Some("https://openrouter.ai/api/v1"),
        Some("OPENROUTER_API_KEY"),
        Some("OPENROUTER_API_BASE"),
    ),
    openai_style(
        "xai",
        Some("https://api.x.ai/v1"),
        Some("XAI_API_KEY"),
        None,
    ),
    openai_style(
        "perplexity",
        Some("https://api.perplexity.ai"),
        Some("PERPLEXITYAI_API_KEY"),
        None,
    ),
    openai_style(
        "deepinfra",
        Some("https://api.deepinfra.com/v1/openai"),
        Some("DEEPINFRA_API_KEY"),
        None,
    ),
    openai_style(
        "cerebras",
        Some("https://api.cerebras.ai/v1"),
        Some("CEREBRAS_API_KEY"),
        None,
    ),
    openai_style(
        "nvidia_nim",
        Some("https://integrate.api.nvidia.com/v1"),
        Some("NVIDIA_NIM_API_KEY"),
        Some("NVIDIA_NIM_API_BASE"),
    ),
];

/// LiteLLM providers with their own wire formats, not yet translated by gatehouse.
const NOT_YET: &[&str] = &[
    "vertex_ai_beta",
    "bedrock_converse",
    "sagemaker",
    "cohere",
    "cohere_chat",
    "huggingface",
    "replicate",
    "watsonx",
    "databricks",
    "cloudflare",
    "ai21",
    "anyscale",
    "palm",
    "voyage",
    "triton",
    "predibase",
    "clarifai",
    "petals",
    "baseten",
    "aleph_alpha",
    "nlp_cloud",
    "maritalk",
    "friendliai",
    "github",
    "litellm_proxy",
];

/// Splits `provider/model` and looks the provider up. A model with no prefix is OpenAI's,
/// as in LiteLLM for OpenAI model names.
pub fn lookup_provider(model: &str) -> (ProviderLookup, &str) {
    let Some((prefix, rest)) = model.split_once('/') else {
        return (ProviderLookup::Served(SERVED[0]), model);
    };
    if let Some(p) = SERVED.iter().find(|p| p.prefix == prefix) {
        return (ProviderLookup::Served(*p), rest);
    }
    if let Some(p) = NOT_YET.iter().find(|p| **p == prefix) {
        return (ProviderLookup::NotYetSupported(p), rest);
    }
    (ProviderLookup::Unknown, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_prefix_and_keeps_the_rest_whole() {
        let (p, m) = lookup_provider("hosted_vllm/meta-llama/Llama-3-8B");
        assert!(matches!(
            p,
            ProviderLookup::Served(Provider {
                prefix: "hosted_vllm",
                ..
            })
        ));
        assert_eq!(m, "meta-llama/Llama-3-8B");
    }

    #[test]
    fn no_prefix_is_openai() {
        let (p, m) = lookup_provider("gpt-4o");
        assert!(matches!(
            p,
            ProviderLookup::Served(Provider {
                prefix: "openai",
                ..
            })
        ));
        assert_eq!(m, "gpt-4o");
    }

    #[test]
    fn known_but_not_served_and_unknown() {
        assert_eq!(
            lookup_provider("vertex_ai_beta/gemini-2.5-pro").0,
            ProviderLookup::NotYetSupported("vertex_ai_beta")
        );
        assert!(matches!(
            lookup_provider("vertex_ai/gemini-2.5-pro"),
            (
                ProviderLookup::Served(Provider {
                    wire: WireFormat::Gemini,
                    auth: AuthStyle::GoogleOAuth,
                    ..
                }),
                "gemini-2.5-pro"
            )
        ));
        assert!(matches!(
            lookup_provider("anthropic/claude-sonnet-4").0,
            ProviderLookup::Served(Provider {
                wire: WireFormat::Anthropic,
                ..
            })
        ));
        assert_eq!(lookup_provider("nonsense/x").0, ProviderLookup::Unknown);
    }
}
