//! AWS Signature Version 4 (header signing) for Bedrock Runtime requests.
//!
//! Follows AWS's "Create a signed AWS API request" steps: canonical request →
//! string to sign → derived signing key (`AWS4<secret>` → date → region → service →
//! `aws4_request`) → HMAC-SHA256 signature. Verified against vectors of AWS's SigV4 test
//! suite (`get-vanilla`, `post-vanilla`, query ordering, a special character in the path,
//! `post-sts-header-before` for session tokens) and a Bedrock Converse request whose model
//! id's `:` makes the canonical path double-encoded (see `tests.rs`).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// AWS credentials. `Debug` never prints the secret or the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Drop for Credentials {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.secret_access_key.zeroize();
        if let Some(token) = self.session_token.as_mut() {
            token.zeroize();
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A request that cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignError(pub String);

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot sign the request: {}", self.0)
    }
}

impl std::error::Error for SignError {}

/// Signs a request with SigV4 and returns the headers to add: `authorization`,
/// `x-amz-date`, `x-amz-content-sha256`, and `x-amz-security-token` when the credentials
/// carry a session token. `headers` are the other headers that will be sent; all of them
/// are signed (pass at least `host` and `content-type`); any of the four this function sets
/// is ignored there (signing a header twice would sign `a,a`, which AWS never sees). `uri` is
/// the URI as sent (its path already percent-encoded, e.g. a model id `a:b` as `a%3Ab`);
/// only its path and query are used. `amz_date` is `YYYYMMDDTHHMMSSZ` (see [`amz_date`]).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    uri: &http::Uri,
    headers: &[(&str, &str)],
    body: &[u8],
    creds: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Result<Vec<(&'static str, String)>, SignError> {
    let payload_hash = hex(&Sha256::digest(body));
    const SET_HERE: [&str; 4] = [
        "authorization",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-amz-security-token",
    ];
    let mut signed: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| !SET_HERE.iter().any(|s| name.trim().eq_ignore_ascii_case(s)))
        .copied()
        .collect();
    signed.push(("x-amz-date", amz_date));
    signed.push(("x-amz-content-sha256", &payload_hash));
    if let Some(token) = &creds.session_token {
        signed.push(("x-amz-security-token", token));
    }
    let authorization = authorization(
        method,
        uri,
        &signed,
        &payload_hash,
        creds,
        region,
        service,
        amz_date,
    )?;
    let mut out = vec![
        ("authorization", authorization),
        ("x-amz-date", amz_date.to_owned()),
        ("x-amz-content-sha256", payload_hash.clone()),
    ];
    if let Some(token) = &creds.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    Ok(out)
}

/// The `Authorization` value for exactly these signed headers (which must include
/// `x-amz-date`) and payload hash.
#[allow(clippy::too_many_arguments)]
pub(crate) fn authorization(
    method: &str,
    uri: &http::Uri,
    headers: &[(&str, &str)],
    payload_hash: &str,
    creds: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Result<String, SignError> {
    let date = valid_date(amz_date)?;
    if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
        return Err(SignError("empty access key id or secret".into()));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(SignError(format!("invalid method {method:?}")));
    }
    let (signed_headers, canonical_request) =
        canonical_request(method, uri, headers, payload_hash)?;
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(&creds.secret_access_key, date, region, service);
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    Ok(format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    ))
}

/// `(signed header list, canonical request)`: method, canonical URI, canonical query,
/// canonical headers, signed headers and payload hash, one a line.
pub(crate) fn canonical_request(
    method: &str,
    uri: &http::Uri,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> Result<(String, String), SignError> {
    let (signed_headers, canonical_headers) = canonical_headers(headers)?;
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        canonical_uri(uri.path()),
        canonical_query(uri.query().unwrap_or("")),
    );
    Ok((signed_headers, canonical_request))
}

/// Checks `YYYYMMDDTHHMMSSZ`; returns the `YYYYMMDD` part.
fn valid_date(amz_date: &str) -> Result<&str, SignError> {
    let b = amz_date.as_bytes();
    let ok = b.len() == 16
        && b.get(8) == Some(&b'T')
        && b.get(15) == Some(&b'Z')
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 15) || c.is_ascii_digit());
    if !ok {
        return Err(SignError(format!(
            "x-amz-date must be YYYYMMDDTHHMMSSZ, got {amz_date:?}"
        )));
    }
    amz_date
        .get(..8)
        .ok_or_else(|| SignError("bad x-amz-date".into()))
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length: new_from_slice cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Lowercased names, trimmed values with inner runs of spaces collapsed, sorted by
/// name; repeated names joined with `,`. Returns (signed header list, canonical block).
fn canonical_headers(headers: &[(&str, &str)]) -> Result<(String, String), SignError> {
    let mut list: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(SignError(format!("invalid header name {name:?}")));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(SignError(format!("invalid value for header {name}")));
        }
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match list.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => list.push((name, value)),
        }
    }
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let signed = list
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut block = String::new();
    for (n, v) in &list {
        block.push_str(n);
        block.push(':');
        block.push_str(v);
        block.push('\n');
    }
    Ok((signed, block))
}

/// Non-S3 services: every path segment URI-encoded (again: the path as sent is already
/// encoded, so `%3A` becomes `%253A`), `/` kept; an empty path is `/`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(|seg| uri_encode(seg.as_bytes()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Query pairs decoded, re-encoded strictly, sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 unreserved characters kept, everything else `%XX` (uppercase).
pub(crate) fn uri_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'%'
            && let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(if b == b'+' { b' ' } else { b });
            i += 1;
        }
    }
    out
}

/// `t` as the `x-amz-date` value, `YYYYMMDDTHHMMSSZ` in UTC. Times before 1970 are
/// clamped to the epoch.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}
