//! The built-in price table (`prices.json`) and model lookup.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::{ModelPrice, PricingError, TokenPrice};

/// The shipped price table, embedded at compile time.
const BUILTIN_JSON: &str = include_str!("../prices.json");

/// Providers a price table may hold entries for.
const PROVIDERS: &[&str] = &["openai", "anthropic", "gemini", "vertex_ai", "bedrock"];

/// Bedrock cross-region inference-profile prefixes stripped by lookup.
const BEDROCK_REGION_PREFIXES: &[&str] = &[
    "us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.",
];

/// Bedrock route prefixes LiteLLM allows in front of a model id.
const BEDROCK_ROUTE_PREFIXES: &[&str] = &["converse/", "invoke/"];

/// What kind of model an entry prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceMode {
    /// Chat / text generation: input and output are both priced.
    Chat,
    /// Embeddings: only input is priced; output is free.
    Embedding,
}

/// One model of a price table, with where its price comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceEntry {
    /// Provider prefix as in LiteLLM's `model` (`openai`, `anthropic`, `gemini`,
    /// `vertex_ai`, `bedrock`).
    pub provider: String,
    /// The model id (lowercase).
    pub model: String,
    /// Other ids of the same model (`claude-sonnet-4-0` for `claude-sonnet-4`).
    pub aliases: Vec<String>,
    /// Chat or embedding.
    pub mode: PriceMode,
    /// The prices.
    pub price: ModelPrice,
    /// Public URL of the page the price was taken from.
    pub source: String,
    /// The date (`YYYY-MM-DD`) the price was last checked against `source`.
    pub as_of: String,
}

/// A table of model prices with cheap lookup by provider and model id.
///
/// Built once (the built-in one lazily, on first use of
/// [`PriceTable::builtin`]); lookups are hash-map probes after a few string
/// normalisations and are meant for start-up (once per deployment), not per
/// request.
#[derive(Debug, Clone)]
pub struct PriceTable {
    entries: Vec<PriceEntry>,
    notes: Vec<String>,
    /// provider → model id or alias → index into `entries`.
    index: HashMap<String, HashMap<String, usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    notes: Vec<String>,
    models: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    provider: String,
    model: String,
    #[serde(default)]
    aliases: Vec<String>,
    mode: PriceMode,
    input: String,
    output: String,
    #[serde(default)]
    cache_read: Option<String>,
    #[serde(default)]
    cache_write: Option<String>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    max_input_tokens: Option<u64>,
    source: String,
    as_of: String,
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    matches!(
        (num(0..4), num(5..7), num(8..10)),
        (Some(y), Some(m), Some(d)) if (2020..=2100).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
    )
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._:@/".contains(&b))
}

impl RawEntry {
    fn into_entry(self) -> Result<PriceEntry, PricingError> {
        let fail = |reason: String| PricingError::Entry {
            provider: self.provider.clone(),
            model: self.model.clone(),
            reason,
        };
        if !PROVIDERS.contains(&self.provider.as_str()) {
            return Err(fail(format!("unknown provider {:?}", self.provider)));
        }
        for id in std::iter::once(&self.model).chain(&self.aliases) {
            if !valid_id(id) {
                return Err(fail(format!(
                    "model id {id:?} must be lowercase without spaces"
                )));
            }
        }
        let parse = |field: &str, s: &str| {
            TokenPrice::parse_per_million(s).map_err(|e| fail(format!("{field}: {e}")))
        };
        let input = parse("input", &self.input)?;
        let output = parse("output", &self.output)?;
        let cache_read = self
            .cache_read
            .as_deref()
            .map(|s| parse("cache_read", s))
            .transpose()?;
        let cache_write = self
            .cache_write
            .as_deref()
            .map(|s| parse("cache_write", s))
            .transpose()?;
        if input.is_free() {
            return Err(fail("input price is zero".into()));
        }
        match self.mode {
            PriceMode::Chat if output.is_free() => {
                return Err(fail("chat model with a zero output price".into()));
            }
            PriceMode::Embedding if !output.is_free() => {
                return Err(fail("embedding model with an output price".into()));
            }
            _ => {}
        }
        if output < input && self.mode == PriceMode::Chat {
            return Err(fail("output cheaper than input".into()));
        }
        if cache_read.is_some_and(|c| c > input) {
            return Err(fail("cache read dearer than input".into()));
        }
        if cache_write.is_some_and(|c| c < input) {
            return Err(fail("cache write cheaper than input".into()));
        }
        if self.max_output_tokens == Some(0) || self.max_input_tokens == Some(0) {
            return Err(fail("zero token limit".into()));
        }
        if !self.source.starts_with("https://") || self.source.contains(char::is_whitespace) {
            return Err(fail(format!(
                "source {:?} is not an https URL",
                self.source
            )));
        }
        if !valid_date(&self.as_of) {
            return Err(fail(format!(
                "as_of {:?} is not a YYYY-MM-DD date",
                self.as_of
            )));
        }
        Ok(PriceEntry {
            price: ModelPrice {
                input,
                output,
                cache_read,
                cache_write,
                max_output_tokens: self.max_output_tokens,
                max_input_tokens: self.max_input_tokens,
            },
            provider: self.provider,
            model: self.model,
            aliases: self.aliases,
            mode: self.mode,
            source: self.source,
            as_of: self.as_of,
        })
    }
}

/// Strips a trailing `-YYYY-MM-DD` or `-YYYYMMDD` from a model id.
fn strip_date(model: &str) -> Option<&str> {
    let b = model.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if b.len() > 11 {
        let tail = &b[b.len() - 11..];
        if tail[0] == b'-'
            && digits(&tail[1..5])
            && tail[5] == b'-'
            && digits(&tail[6..8])
            && tail[8] == b'-'
            && digits(&tail[9..11])
        {
            return model.get(..model.len() - 11);
        }
    }
    if b.len() > 9 {
        let tail = &b[b.len() - 9..];
        if tail[0] == b'-' && digits(&tail[1..9]) && (tail[1] == b'2') {
            return model.get(..model.len() - 9);
        }
    }
    None
}

/// Strips a trailing three-digit version (`-001`) from a Gemini model id.
fn strip_version(model: &str) -> Option<&str> {
    let b = model.as_bytes();
    if b.len() > 4 {
        let tail = &b[b.len() - 4..];
        if tail[0] == b'-' && tail[1..].iter().all(u8::is_ascii_digit) {
            return model.get(..model.len() - 4);
        }
    }
    None
}

static BUILTIN: OnceLock<Result<PriceTable, PricingError>> = OnceLock::new();

impl PriceTable {
    /// The price table shipped with gatehouse (`prices.json`), parsed and
    /// checked once on first use. An error here is a build defect (a unit test
    /// checks the shipped file), but it is reported rather than panicking.
    pub fn builtin() -> Result<&'static PriceTable, PricingError> {
        BUILTIN
            .get_or_init(|| PriceTable::from_json(BUILTIN_JSON))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses and checks a price table in the `prices.json` format: every
    /// price a decimal string in USD per 1M tokens, known providers, sane prices
    /// (non-zero input; chat output non-zero and not below input; embedding
    /// output zero; cache reads not above input; cache writes not below input),
    /// an `https` source and a `YYYY-MM-DD` date, no id twice per provider.
    pub fn from_json(json: &str) -> Result<PriceTable, PricingError> {
        let raw: RawTable =
            serde_json::from_str(json).map_err(|e| PricingError::Table(e.to_string()))?;
        let mut entries = Vec::with_capacity(raw.models.len());
        let mut index: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for raw_entry in raw.models {
            let entry = raw_entry.into_entry()?;
            let at = entries.len();
            let ids = index.entry(entry.provider.clone()).or_default();
            for id in std::iter::once(&entry.model).chain(&entry.aliases) {
                if ids.insert(id.clone(), at).is_some() {
                    return Err(PricingError::Entry {
                        provider: entry.provider.clone(),
                        model: entry.model.clone(),
                        reason: format!("id {id:?} appears twice"),
                    });
                }
            }
            entries.push(entry);
        }
        Ok(PriceTable {
            entries,
            notes: raw.notes,
            index,
        })
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[PriceEntry] {
        &self.entries
    }

    /// The file's `notes` (conventions such as which price tier is used).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn exact(&self, provider: &str, model: &str) -> Option<&PriceEntry> {
        let at = *self.index.get(provider)?.get(model)?;
        self.entries.get(at)
    }

    /// Exact id, then without `-latest`, then without a trailing date.
    fn dated(&self, provider: &str, model: &str) -> Option<&PriceEntry> {
        let model = model.strip_suffix("-latest").unwrap_or(model);
        self.exact(provider, model)
            .or_else(|| strip_date(model).and_then(|m| self.exact(provider, m)))
    }

    /// Exact id, then without `models/`, `-latest` or a `-NNN` version.
    fn gemini(&self, provider: &str, model: &str) -> Option<&PriceEntry> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        let model = model.strip_suffix("-latest").unwrap_or(model);
        self.exact(provider, model)
            .or_else(|| strip_version(model).and_then(|m| self.exact(provider, m)))
    }

    fn bedrock(&self, model: &str) -> Option<&PriceEntry> {
        let model = BEDROCK_ROUTE_PREFIXES
            .iter()
            .find_map(|p| model.strip_prefix(p))
            .unwrap_or(model);
        self.exact("bedrock", model).or_else(|| {
            BEDROCK_REGION_PREFIXES
                .iter()
                .find_map(|p| model.strip_prefix(p))
                .and_then(|m| self.exact("bedrock", m))
        })
    }

    /// Finds the entry for a deployment: `provider` is the LiteLLM provider
    /// prefix of `litellm_params.model` and `model` the rest (for Azure, pass
    /// `model_info.base_model` when the config has one).
    ///
    /// Case-insensitive. Exact id first, then per provider:
    /// - `openai`, `text-completion-openai`, `azure`: the OpenAI entries; a
    ///   `-latest` suffix or trailing date (`-2024-08-06`, `-20240806`) is
    ///   dropped if the exact id is not priced;
    /// - `anthropic`: the same normalisation on the Anthropic entries;
    /// - `gemini`: `models/` prefix, `-latest` and a `-001` style version are
    ///   dropped;
    /// - `vertex_ai` (and `vertex_ai_beta`): Vertex entries first, then the
    ///   Gemini entries (same prices), same normalisation;
    /// - `bedrock`: a `converse/` or `invoke/` route and a cross-region
    ///   inference-profile prefix (`us.`, `eu.`, `apac.`, `global.`, …) are
    ///   dropped;
    /// - anything else (self-hosted OpenAI-compatible servers such as
    ///   `hosted_vllm`, `ollama`, `openai_like`, …): `None` — free unless the
    ///   deployment sets `input_cost_per_token` / `output_cost_per_token`.
    pub fn lookup_entry(&self, provider: &str, model: &str) -> Option<&PriceEntry> {
        let provider = provider.trim().to_ascii_lowercase();
        let model = model.trim().to_ascii_lowercase();
        let model = model
            .strip_prefix(provider.as_str())
            .and_then(|m| m.strip_prefix('/'))
            .unwrap_or(&model);
        match provider.as_str() {
            "openai" | "text-completion-openai" | "azure" | "azure_text" => {
                self.dated("openai", model)
            }
            "anthropic" => self.dated("anthropic", model),
            "gemini" => self.gemini("gemini", model),
            "vertex_ai" | "vertex_ai_beta" => self
                .gemini("vertex_ai", model)
                .or_else(|| self.gemini("gemini", model)),
            "bedrock" => self.bedrock(model),
            _ => None,
        }
    }

    /// The prices for a deployment; see [`PriceTable::lookup_entry`] for the
    /// matching rules.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<&ModelPrice> {
        self.lookup_entry(provider, model).map(|e| &e.price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_is_sane() {
        let t = PriceTable::builtin().unwrap();
        assert!(t.len() >= 30, "only {} entries", t.len());
        assert!(!t.notes().is_empty());
        for e in t.entries() {
            let p = &e.price;
            // Reasonable magnitudes: between $0.005 and $200 per 1M tokens.
            assert!(p.input.pico_per_token() >= 5_000, "{}", e.model);
            assert!(p.input.pico_per_token() <= 200_000_000, "{}", e.model);
            assert!(p.output.pico_per_token() <= 800_000_000, "{}", e.model);
            if e.mode == PriceMode::Chat {
                assert!(
                    p.max_output_tokens.is_some(),
                    "{} lacks max_output_tokens",
                    e.model
                );
            }
            if e.provider == "anthropic" {
                // 5-minute cache write = 1.25 × input, cache read = 0.1 × input.
                let input = p.input.pico_per_token();
                assert_eq!(
                    p.cache_write.map(|c| c.pico_per_token() * 4),
                    Some(input * 5),
                    "{}",
                    e.model
                );
                assert_eq!(
                    p.cache_read.map(|c| c.pico_per_token() * 10),
                    Some(input),
                    "{}",
                    e.model
                );
            }
            assert!(e.source.starts_with("https://"), "{}", e.model);
            // Every entry is found under its own id and its aliases.
            assert_eq!(t.lookup_entry(&e.provider, &e.model), Some(e));
            for a in &e.aliases {
                assert_eq!(t.lookup_entry(&e.provider, a), Some(e));
            }
        }
        // The table is parsed once.
        assert!(std::ptr::eq(t, PriceTable::builtin().unwrap()));
    }

    #[test]
    fn lookup_normalisations() {
        let t = PriceTable::builtin().unwrap();
        let m = |p: &str, id: &str| t.lookup_entry(p, id).map(|e| e.model.as_str());
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("openai", "gpt-4o", Some("gpt-4o")),
            ("openai", "gpt-4o-2024-08-06", Some("gpt-4o")),
            ("openai", "gpt-4o-2024-05-13", Some("gpt-4o-2024-05-13")),
            ("openai", "gpt-4o-mini-2024-07-18", Some("gpt-4o-mini")),
            ("openai", "GPT-4o", Some("gpt-4o")),
            ("openai", "o3-mini-2025-01-31", Some("o3-mini")),
            ("openai", "gpt-4.1-2025-04-14", Some("gpt-4.1")),
            (
                "openai",
                "text-embedding-3-small",
                Some("text-embedding-3-small"),
            ),
            ("azure", "gpt-4o-mini", Some("gpt-4o-mini")),
            ("openai", "openai/gpt-4o", Some("gpt-4o")),
            ("openai", "my-finetune", None),
            (
                "anthropic",
                "claude-3-5-sonnet-20241022",
                Some("claude-3-5-sonnet"),
            ),
            (
                "anthropic",
                "claude-3-7-sonnet-latest",
                Some("claude-3-7-sonnet"),
            ),
            (
                "anthropic",
                "claude-sonnet-4-20250514",
                Some("claude-sonnet-4"),
            ),
            ("anthropic", "claude-sonnet-4-0", Some("claude-sonnet-4")),
            (
                "anthropic",
                "claude-opus-4-1-20250805",
                Some("claude-opus-4-1"),
            ),
            (
                "anthropic",
                "claude-sonnet-4-5-20250929",
                Some("claude-sonnet-4-5"),
            ),
            (
                "anthropic",
                "claude-3-5-haiku-20241022",
                Some("claude-3-5-haiku"),
            ),
            ("gemini", "gemini-2.0-flash-001", Some("gemini-2.0-flash")),
            ("gemini", "models/gemini-2.5-pro", Some("gemini-2.5-pro")),
            ("vertex_ai", "gemini-2.5-flash", Some("gemini-2.5-flash")),
            (
                "bedrock",
                "anthropic.claude-3-5-sonnet-20240620-v1:0",
                Some("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            ),
            (
                "bedrock",
                "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
                Some("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            ),
            (
                "bedrock",
                "converse/eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
                Some("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            ),
            (
                "bedrock",
                "xx.anthropic.claude-3-5-sonnet-20240620-v1:0",
                None,
            ),
            ("hosted_vllm", "gpt-4o", None),
            ("ollama", "llama3", None),
            ("openai_like", "gpt-4o", None),
            ("", "gpt-4o", None),
        ];
        for &(p, id, want) in cases {
            assert_eq!(m(p, id), want, "{p}/{id}");
        }
    }

    #[test]
    fn date_and_version_stripping() {
        assert_eq!(strip_date("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(
            strip_date("claude-3-5-sonnet-20241022"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(strip_date("gpt-4o"), None);
        assert_eq!(strip_date("-2024-08-06"), None);
        assert_eq!(strip_date("x-12345678"), None);
        assert_eq!(strip_date("é-2024-08-0é"), None);
        assert_eq!(
            strip_version("gemini-2.0-flash-001"),
            Some("gemini-2.0-flash")
        );
        assert_eq!(strip_version("gemini-2.0-flash"), None);
        assert_eq!(strip_version("-001"), None);
    }

    #[test]
    fn rejects_bad_tables() {
        let entry = |fields: &str| {
            format!(
                r#"{{"notes":[],"models":[{{"provider":"openai","model":"m","mode":"chat",
                "input":"1","output":"2","source":"https://x.invalid/p","as_of":"2026-01-01"{fields}}}]}}"#
            )
        };
        assert!(PriceTable::from_json(&entry("")).is_ok());
        let bad = [
            r#","cache_read":"2""#,
            r#","cache_write":"0.5""#,
            r#","max_output_tokens":0"#,
            r#","extra":1"#,
            r#","aliases":["M"]"#,
            r#","aliases":["m"]"#,
        ];
        for fields in bad {
            assert!(PriceTable::from_json(&entry(fields)).is_err(), "{fields}");
        }
        let replace = |from: &str, to: &str| PriceTable::from_json(&entry("").replace(from, to));
        assert!(replace(r#""provider":"openai""#, r#""provider":"ollama""#).is_err());
        assert!(replace(r#""input":"1""#, r#""input":"0""#).is_err());
        assert!(replace(r#""input":"1""#, r#""input":"1.0000001""#).is_err());
        assert!(replace(r#""output":"2""#, r#""output":"0""#).is_err());
        assert!(replace(r#""mode":"chat""#, r#""mode":"embedding""#).is_err());
        assert!(replace("https://x.invalid/p", "http://x.invalid/p").is_err());
        assert!(replace("2026-01-01", "2026-13-01").is_err());
        assert!(replace("2026-01-01", "yesterday").is_err());
        assert!(PriceTable::from_json("").is_err());
        assert!(PriceTable::from_json("{}").is_err());
        let twice = entry("").replace(
            r#"]}"#,
            r#",{"provider":"openai","model":"m","mode":"chat","input":"1","output":"2",
            "source":"https://x.invalid/p","as_of":"2026-01-01"}]}"#,
        );
        assert!(PriceTable::from_json(&twice).is_err());
    }
}
