//! Google Vertex AI: the OAuth2 token endpoint and the Gemini routes under
//! `/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}`.
//!
//! `POST /token` plays Google's token endpoint for the committed test-only service account
//! (`testdata/vertex-test-sa.json`): the form body must hold
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an `assertion` JWT with
//! header `{"alg":"RS256","typ":"JWT"}`, a valid RS256 signature by the test key, `iss` =
//! the test account's `client_email`, `scope` = cloud-platform, `aud` ending in `/token`,
//! and `iat <= now < exp <= iat + 3600`; anything else is a 400 `invalid_grant` (or
//! `unsupported_grant_type`). It answers
//! `{"access_token":"ya29.mock-<n>","expires_in":3600,"token_type":"Bearer"}` and
//! remembers the token.
//!
//! The Vertex routes require `Authorization: Bearer <a token it issued>` (else 401
//! `UNAUTHENTICATED`), then behave like the Gemini API routes (`generateContent`,
//! `streamGenerateContent?alt=sse`), except that every content needs a `role`.
//!
//! Claude on Vertex: `…/publishers/anthropic/models/{model}:rawPredict` and
//! `:streamRawPredict` (and `…/models/count-tokens:rawPredict`), same bearer check, then
//! answer like the Anthropic Messages routes (Anthropic's JSON and SSE) for a body that has
//! `"anthropic_version": "vertex-2023-10-16"`, no `model` (the URL names it; only
//! `count-tokens` takes `model` in the body) and `stream: true` exactly when streaming;
//! anything else is a 400 in Anthropic's error shape.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Response, StatusCode};
use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::body::MockBody;
use crate::reply;
use crate::state::MockState;

/// The committed test-only service account (its key grants access to nothing).
const TEST_SA: &str = include_str!("../testdata/vertex-test-sa.json");
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A Vertex publisher-model path: the publisher (`google`, `anthropic`, …) and the
/// `{model}:{method}` after `models/`.
pub(crate) fn publisher_model_method(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v1/projects/")?;
    let (project, rest) = rest.split_once("/locations/")?;
    let (location, rest) = rest.split_once("/publishers/")?;
    let (publisher, rest) = rest.split_once("/models/")?;
    let ok = |s: &str| !s.is_empty() && !s.contains('/');
    (ok(project) && ok(location) && ok(publisher) && ok(rest)).then_some((publisher, rest))
}

/// `{model}:{method}` of a Vertex publisher-model path for Google's models.
#[cfg(test)]
fn model_method(path: &str) -> Option<&str> {
    match publisher_model_method(path)? {
        ("google", rest) => Some(rest),
        _ => None,
    }
}

/// The test account's `client_email` and public key (DER `RSAPublicKey`).
fn test_account() -> Option<&'static (String, Vec<u8>)> {
    static ACCOUNT: OnceLock<Option<(String, Vec<u8>)>> = OnceLock::new();
    ACCOUNT
        .get_or_init(|| {
            let v: Value = serde_json::from_str(TEST_SA).ok()?;
            let email = v.get("client_email")?.as_str()?.to_owned();
            let pem = v.get("private_key")?.as_str()?;
            let b64: String = pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>();
            let der = b64_decode(&b64)?;
            let key = RsaKeyPair::from_pkcs8(&der).ok()?;
            Some((email, key.public_key().as_ref().to_vec()))
        })
        .as_ref()
}

/// Lenient base64 (standard or URL alphabet, padding optional).
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes().filter(|&b| b != b'=') {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Decodes `%XX` and `+` in a form value.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b);
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn oauth_error(code: &str, description: &str, id: u64) -> Response<MockBody> {
    let body = json!({"error": code, "error_description": description});
    let mut resp = reply::json(&body, id);
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}

/// Checks a JWT bearer assertion; `Err` is the `error_description`.
fn check_assertion(jwt: &str) -> Result<(), &'static str> {
    let (email, public) = test_account().ok_or("the mock's test key is unusable")?;
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("Invalid JWT: not three segments.");
    };
    let decode = |s: &str| -> Option<Value> { serde_json::from_slice(&b64_decode(s)?).ok() };
    let header = decode(h).ok_or("Invalid JWT header.")?;
    if header != json!({"alg": "RS256", "typ": "JWT"}) {
        return Err("Invalid JWT header: expected RS256.");
    }
    let signature = b64_decode(sig).ok_or("Invalid JWT Signature.")?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .map_err(|_| "Invalid JWT Signature.")?;
    let claims = decode(c).ok_or("Invalid JWT claims.")?;
    if claims.get("iss").and_then(Value::as_str) != Some(email.as_str()) {
        return Err("Invalid JWT: unknown issuer.");
    }
    if claims.get("scope").and_then(Value::as_str) != Some(SCOPE) {
        return Err("Invalid OAuth scope.");
    }
    if !claims
        .get("aud")
        .and_then(Value::as_str)
        .is_some_and(|a| a.ends_with("/token"))
    {
        return Err("Invalid JWT: bad audience.");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let iat = claims.get("iat").and_then(Value::as_u64).unwrap_or(0);
    let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
    if iat > now.saturating_add(60) || exp <= now || exp > iat.saturating_add(3600) {
        return Err(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    Ok(())
}

/// `POST /token`.
pub(crate) fn token(
    headers: &HeaderMap,
    body: &[u8],
    id: u64,
    state: &MockState,
) -> Response<MockBody> {
    let form_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return oauth_error(
            "invalid_request",
            "expected application/x-www-form-urlencoded",
            id,
        );
    }
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| {
        text.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| form_decode(v))
    };
    if field("grant_type").as_deref() != Some(GRANT_TYPE) {
        return oauth_error("unsupported_grant_type", "Invalid grant_type.", id);
    }
    let Some(assertion) = field("assertion") else {
        return oauth_error(
            "invalid_request",
            "Missing required parameter: assertion",
            id,
        );
    };
    if let Err(description) = check_assertion(&assertion) {
        return oauth_error("invalid_grant", description, id);
    }
    let token = format!("ya29.mock-{id}");
    state.issue_token(token.clone());
    reply::json(
        &json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}),
        id,
    )
}

/// Checks `Authorization: Bearer <issued token>`; `Some` is the 401 to send.
pub(crate) fn check_bearer(
    headers: &HeaderMap,
    id: u64,
    state: &MockState,
) -> Option<Response<MockBody>> {
    let ok = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| state.token_issued(t));
    (!ok).then(|| {
        crate::gemini::error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            id,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_forms() {
        assert_eq!(
            model_method("/v1/projects/p/locations/l/publishers/google/models/m:generateContent"),
            Some("m:generateContent")
        );
        assert_eq!(
            model_method("/v1/projects/p/locations/l/publishers/google/models/a/b"),
            None
        );
        assert_eq!(
            model_method("/v1/projects//locations/l/publishers/google/models/m"),
            None
        );
        assert_eq!(
            publisher_model_method(
                "/v1/projects/p/locations/l/publishers/anthropic/models/claude-x@1:rawPredict"
            ),
            Some(("anthropic", "claude-x@1:rawPredict"))
        );
        assert_eq!(
            model_method("/v1/projects/p/locations/l/publishers/anthropic/models/c:rawPredict"),
            None
        );
        assert_eq!(form_decode("urn%3Aietf+x%zz"), "urn:ietf x%zz");
        assert_eq!(b64_decode("aGk").unwrap(), b"hi");
        assert!(test_account().is_some());
        assert_eq!(check_assertion("a.b.c"), Err("Invalid JWT header."));
    }
}
