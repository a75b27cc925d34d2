//! Tool call ids for Gemini function calls, and the thought signatures they carry.
//!
//! An id is `call_` + 24 hex digits of SHA-256 over the response's `responseId` (or, when
//! Gemini names none, the answer's `created` time and bytes), the candidate index and the
//! call's position: unique per response, stable for one response, and computed without
//! randomness so that translation stays pure.
//!
//! When the `functionCall` part carries a `thoughtSignature`, the id is
//! `call_<hex>` + [`SIGNATURE_SEPARATOR`] + the signature in base64url without padding (it
//! is standard base64 on the wire; base64url keeps the id inside `[A-Za-z0-9_-]`, which
//! Anthropic requires of `tool_use` ids, so the id survives an Anthropic client too). Ids
//! whose signature would exceed [`MAX_SIGNATURE_LEN`] characters carry none.
//!
//! [`signature_from_id`] reads the signature back from whatever follows the first
//! separator in an id a client echoes (ours, or LiteLLM's `…__thought__<base64>`), and
//! returns it only if it is base64 (either alphabet, padding optional) of a valid length,
//! re-encoded in standard base64 with padding. Anything else gives `None`: a forged or
//! mangled id can put nothing in the upstream request but a base64 string in
//! `thoughtSignature`, which Gemini verifies itself.

use sha2::{Digest, Sha256};

use crate::bedrock::hex;

/// Between the unique part of an id and the signature (the separator LiteLLM uses too).
pub(crate) const SIGNATURE_SEPARATOR: &str = "__thought__";
/// Longest signature (in base64 characters) carried in a tool call id.
pub(crate) const MAX_SIGNATURE_LEN: usize = 32 * 1024;

/// The seed of a response's ids: its `responseId`, else `fallback` (the gateway's
/// `created` time and the response's own bytes).
pub(crate) fn id_seed(response: &serde_json::Value, fallback: impl FnOnce() -> String) -> String {
    match response
        .get("responseId")
        .and_then(serde_json::Value::as_str)
    {
        Some(id) if !id.is_empty() => format!("r:{id}"),
        _ => format!("x:{}", fallback()),
    }
}

/// Hex SHA-256 of `bytes` (for [`id_seed`]'s fallback).
pub(crate) fn digest_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The OpenAI tool call id of the `n`th function call of candidate `candidate`, with the
/// part's `thoughtSignature` encoded in it when there is one that fits.
pub(crate) fn tool_call_id(
    seed: &str,
    candidate: u64,
    n: usize,
    signature: Option<&str>,
) -> String {
    let digest = Sha256::digest(format!("{seed}\u{0}{candidate}\u{0}{n}").as_bytes());
    let mut id = format!("call_{}", hex(digest.get(..12).unwrap_or_default()));
    if let Some(encoded) = signature.and_then(encode_signature) {
        id.push_str(SIGNATURE_SEPARATOR);
        id.push_str(&encoded);
    }
    id
}

/// A signature from Gemini (standard base64) → base64url without padding: what
/// [`normalize_signature`] accepts, in the other alphabet; `None` if it is not base64 of a
/// valid length or too long.
fn encode_signature(signature: &str) -> Option<String> {
    let standard = normalize_signature(signature)?;
    Some(
        standard
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect(),
    )
}

/// The thought signature in a tool call id (see the module doc), in standard base64 with
/// padding, or `None`.
pub(crate) fn signature_from_id(id: &str) -> Option<String> {
    let (_, encoded) = id.split_once(SIGNATURE_SEPARATOR)?;
    normalize_signature(encoded)
}

/// A client-supplied signature (from an id, or from Google's OpenAI-compatible
/// `extra_content.google.thought_signature`) in standard base64 with padding, if it is
/// base64 of a valid length and at most [`MAX_SIGNATURE_LEN`] characters.
pub(crate) fn normalize_signature(encoded: &str) -> Option<String> {
    let trimmed = encoded.trim_end_matches('=');
    if trimmed.is_empty()
        || trimmed.len() > MAX_SIGNATURE_LEN
        || trimmed.len() % 4 == 1
        || encoded.len() - trimmed.len() > 2
    {
        return None;
    }
    let mut out = String::with_capacity(trimmed.len() + 2);
    for c in trimmed.chars() {
        out.push(match c {
            '-' | '+' => '+',
            '_' | '/' => '/',
            c if c.is_ascii_alphanumeric() => c,
            _ => return None,
        });
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    Some(out)
}
