//! Google Vertex AI (`vertex_ai/…`): the pure parts of serving Gemini and Claude models
//! through `aiplatform.googleapis.com`.
//!
//! Vertex speaks the same `generateContent` / `streamGenerateContent` format as the Gemini
//! API, so requests and responses are translated by [`crate::gemini`] (which already puts a
//! `role` on every content, as Vertex requires). What differs, and lives here:
//!
//! - **URLs** ([`vertex_root`], [`crate::build_vertex_endpoints`]): the host comes from the
//!   location (`{location}-aiplatform.googleapis.com`, or `aiplatform.googleapis.com` for
//!   `global`), the path from the project, location and model — all from config.
//! - **Auth**: no API key; an OAuth2 access token obtained with a service account's
//!   signed JWT ([`ServiceAccount`], [`jwt_assertion`], [`token_request_body`],
//!   [`parse_token_response`], [`refresh_after`]). The gateway fetches and caches the token;
//!   this module only builds and parses.
//!
//! - **Claude** (`vertex_ai/claude-…`, [`is_anthropic_model`]): Anthropic's publisher
//!   endpoints (`publishers/anthropic/models/{model}:rawPredict`, `:streamRawPredict`,
//!   `count-tokens:rawPredict`) speak Anthropic's Messages format, so requests and answers
//!   go through [`crate::anthropic`] (or pass through, for `/v1/messages` clients); the
//!   body only loses `model` and gains `anthropic_version` ([`anthropic_body`]). Same
//!   service-account token as for Gemini.
//!
//! Dropped on purpose: other credential kinds (`authorized_user`, external accounts, the GCE
//! metadata server) — gatehouse makes no connection the config does not name, and a user
//! credential does not belong on a shared gateway. Other partner models on Vertex (Llama,
//! Mistral, …) are not served yet. Vertex embeddings (`:predict`) are not served yet either
//! (a clear 400).

use std::time::Duration;

use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::anthropic::TranslateError;

/// The OAuth2 scope gatehouse asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, when the credentials name none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The location LiteLLM defaults to.
pub const DEFAULT_LOCATION: &str = "us-central1";
/// Lifetime asked for in the JWT (Google's maximum).
pub const JWT_LIFETIME_SECS: u64 = 3600;
/// A cached token is refreshed this long before it expires.
pub const REFRESH_MARGIN_SECS: u64 = 60;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// A service account's credentials, from its JSON key file. `Debug` never prints the key;
/// the key's DER bytes are zeroized on drop.
#[derive(Clone)]
pub struct ServiceAccount {
    /// `client_email`: the JWT issuer (an identifier, not a secret).
    pub client_email: String,
    /// `token_uri`: where the signed JWT is exchanged for an access token (checked: https,
    /// or http on a loopback host).
    pub token_uri: String,
    /// `project_id`, used when the config names no project.
    pub project_id: Option<String>,
    key_der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .field("private_key", &"***")
            .finish()
    }
}

impl ServiceAccount {
    /// Parses a service-account JSON key (the file's content). Checks everything up front —
    /// the key must be an RSA PKCS#8 PEM ring accepts — so a bad file fails at start-up, not
    /// at the first request. Error messages never quote the key.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("not a service-account JSON key: {e}"))?;
        let Value::Object(m) = v else {
            return Err("not a service-account JSON key: expected a JSON object".into());
        };
        match m.get("type").and_then(Value::as_str) {
            None | Some("service_account") => {}
            Some(other) => {
                return Err(format!(
                    "credentials of type {other:?} are not supported; use a service-account key (type \"service_account\")"
                ));
            }
        }
        let text_field = |key: &str| m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        let client_email = text_field("client_email")
            .ok_or("the service-account key has no client_email")?
            .to_owned();
        let pem = text_field("private_key").ok_or("the service-account key has no private_key")?;
        let token_uri = text_field("token_uri")
            .unwrap_or(DEFAULT_TOKEN_URI)
            .to_owned();
        check_token_uri(&token_uri)?;
        let key_der = pem_to_der(pem)?;
        RsaKeyPair::from_pkcs8(&key_der)
            .map_err(|_| "private_key is not an RSA key in PKCS#8 form that can sign RS256")?;
        Ok(Self {
            client_email,
            token_uri,
            project_id: text_field("project_id").map(str::to_owned),
            key_der,
        })
    }
}

/// The token endpoint must be `https://…`; plain `http://` only to a loopback host (tests).
fn check_token_uri(uri: &str) -> Result<(), String> {
    let parsed: http::Uri = uri
        .parse()
        .map_err(|_| format!("token_uri {uri:?} is not a valid URL"))?;
    let host = parsed.host().unwrap_or("");
    match parsed.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok(()),
        _ => Err(format!(
            "token_uri {uri:?} must be an https:// URL (http:// only to a loopback host)"
        )),
    }
}

/// Decodes a `-----BEGIN PRIVATE KEY-----` PEM block (PKCS#8) to DER. Strict: exactly one
/// block, nothing but whitespace around it, standard base64 inside.
pub fn pem_to_der(pem: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let body = pem
        .trim()
        .strip_prefix(PEM_BEGIN)
        .and_then(|rest| rest.strip_suffix(PEM_END))
        .ok_or("private_key is not a PEM block starting with -----BEGIN PRIVATE KEY-----")?;
    let b64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    base64_decode(&b64).ok_or_else(|| "private_key's PEM body is not valid base64".to_owned())
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Strict standard base64 (padding required) → bytes; `None` on any malformed input.
fn base64_decode(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return None;
    }
    let data = bytes.get(..bytes.len() - pad)?;
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 4 * 3));
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in data {
        let v = STD.iter().position(|&c| c == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero (canonical encoding).
    if acc != 0 {
        return None;
    }
    Some(out)
}

/// Base64url without padding (JWT's encoding).
fn base64url(input: &[u8]) -> String {
    let sym = |v: u32| char::from(URL[(v & 63) as usize]);
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let (b, len) = match *chunk {
            [a, b, c] => ((u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c), 3),
            [a, b] => ((u32::from(a) << 16) | (u32::from(b) << 8), 2),
            [a] => (u32::from(a) << 16, 1),
            _ => continue,
        };
        out.push(sym(b >> 18));
        out.push(sym(b >> 12));
        if len > 1 {
            out.push(sym(b >> 6));
        }
        if len > 2 {
            out.push(sym(b));
        }
    }
    out
}

/// Builds and signs (RS256) the JWT a service account exchanges for an access token:
/// `iss` = `client_email`, `scope` = [`SCOPE`], `aud` = `token_uri`, `iat` = `now_unix`,
/// `exp` = `iat` + one hour. The result is a bearer credential for an hour: it is zeroized
/// on drop and must never be logged.
pub fn jwt_assertion(sa: &ServiceAccount, now_unix: u64) -> Result<Zeroizing<String>, String> {
    let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = json!({
        "iss": sa.client_email,
        "scope": SCOPE,
        "aud": sa.token_uri,
        "iat": now_unix,
        "exp": now_unix.saturating_add(JWT_LIFETIME_SECS),
    });
    let claims = base64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{claims}");
    let key = RsaKeyPair::from_pkcs8(&sa.key_der).map_err(|_| "unusable private key")?;
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "RS256 signing failed")?;
    Ok(Zeroizing::new(format!(
        "{signing_input}.{}",
        base64url(&sig)
    )))
}

/// The form-encoded body of the token request for a signed `assertion`.
pub fn token_request_body(assertion: &str) -> Zeroizing<String> {
    // A JWT is base64url and dots only: nothing to escape.
    Zeroizing::new(format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    ))
}

/// An OAuth2 access token. `Debug` prints `***`; zeroized on drop.
pub struct AccessToken {
    value: Zeroizing<String>,
    /// Seconds the token is valid for, from when it was issued.
    pub expires_in: u64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"***")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl AccessToken {
    /// The raw token, for the one place that puts it in a header.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

/// Parses the token endpoint's success body `{"access_token", "expires_in", "token_type"}`.
/// A missing `expires_in` counts as an hour; the token must be a header-safe string.
pub fn parse_token_response(body: &[u8]) -> Result<AccessToken, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| "the token endpoint's answer is not JSON".to_owned())?;
    let value = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or("the token endpoint's answer has no usable access_token")?;
    if let Some(kind) = v.get("token_type").and_then(Value::as_str)
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(format!("unexpected token_type {:?}", cap(kind)));
    }
    Ok(AccessToken {
        value: Zeroizing::new(value.to_owned()),
        expires_in: v
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(JWT_LIFETIME_SECS),
    })
}

/// The OAuth2 error code of the token endpoint's error body (`{"error": "invalid_grant",
/// "error_description": …}`, RFC 6749 §5.2), fit for a log field: at most 64 of
/// `[A-Za-z0-9_.-]`. Only the code: the description is the endpoint's free text and is
/// neither logged nor relayed.
pub fn token_error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    crate::errors::sanitize_code(v.get("error").and_then(Value::as_str)?)
}

/// Whether a refusal by the token endpoint (its OAuth2 error `code`, HTTP `status`) is final:
/// the service account's key, grant or permission was refused (`invalid_grant`,
/// `invalid_client`, `unauthorized_client`, or any other 4xx but 408 and 429), so asking again
/// cannot help. A 5xx, 408 or 429 is not: the endpoint may answer the next attempt.
pub fn token_refusal_is_final(status: u16, code: Option<&str>) -> bool {
    match code {
        Some("invalid_grant" | "invalid_client" | "unauthorized_client") => true,
        _ => (400..=499).contains(&status) && !matches!(status, 408 | 429),
    }
}

fn cap(s: &str) -> String {
    s.chars().take(200).collect()
}

/// How long after being fetched a token is used: until [`REFRESH_MARGIN_SECS`] before it
/// expires (a token that lives less than the margin is not reused).
pub fn refresh_after(expires_in: u64) -> Duration {
    Duration::from_secs(expires_in.saturating_sub(REFRESH_MARGIN_SECS))
}

/// The API root for a location: `https://{location}-aiplatform.googleapis.com`, or
/// `https://aiplatform.googleapis.com` for `global`.
pub fn vertex_root(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_owned()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

/// True for a project id or location gatehouse will put in a URL path: letters, digits,
/// `-`, `_`, `.` (Google's ids are narrower still).
pub fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// True for Anthropic's models on Vertex AI (`claude-…`), served through Anthropic's
/// publisher endpoints in Anthropic's wire format.
pub fn is_anthropic_model(model: &str) -> bool {
    model.starts_with("claude")
}

/// The `anthropic_version` Vertex AI's Anthropic endpoints require in the body.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// An Anthropic Messages request body → the body Vertex AI's `rawPredict` /
/// `streamRawPredict` take: the same, without `model` (it is in the URL) and with
/// `"anthropic_version": "vertex-2023-10-16"` (replacing any the body had). `stream` stays.
pub fn anthropic_body(messages_body: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let mut body: serde_json::Map<String, Value> = serde_json::from_slice(messages_body)
        .map_err(|e| TranslateError::new(format!("could not encode the request: {e}"), None))?;
    body.remove("model");
    body.insert("anthropic_version".into(), ANTHROPIC_VERSION.into());
    serde_json::to_vec(&body)
        .map_err(|e| TranslateError::new(format!("could not encode the request: {e}"), None))
}

#[cfg(test)]
mod tests;
