//! AWS Signature Version 4 verification, as Bedrock Runtime does it: the mock recomputes the
//! signature of every request from the test credentials it was given and refuses a wrong
//! one, so a test through the mock proves the gateway signs right.
//!
//! The canonical request is rebuilt from what arrived: the method, the path as received
//! with each segment URI-encoded again (every service but S3: a model id's `%3A` becomes
//! `%253A`), the query re-encoded and sorted, the headers named in `SignedHeaders` (trimmed,
//! inner spaces collapsed, repeats joined by `,`), and the SHA-256 of the body the mock
//! received. Written from AWS's "Create a signed AWS API request" steps, with ring: no code
//! shared with the gateway's signer.

use http::request::Parts;
use ring::{digest, hmac};

/// Credentials the mock accepts, as the test config gives them to the gateway.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsTestCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// When set, requests must carry it as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsTestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsTestCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsTestCredentials {
    /// `ACCESS_KEY_ID:SECRET[:SESSION_TOKEN]` (the binary's `--aws-credentials`).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(3, ':');
        let id = parts.next().filter(|p| !p.is_empty())?;
        let secret = parts.next().filter(|p| !p.is_empty())?;
        let token = parts.next().filter(|p| !p.is_empty());
        Some(AwsTestCredentials {
            access_key_id: id.to_owned(),
            secret_access_key: secret.to_owned(),
            session_token: token.map(str::to_owned),
        })
    }
}

/// A refused request: the exception name (`x-amzn-errortype`) and message, always 403.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub kind: &'static str,
    pub message: String,
}

fn refuse(kind: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        message: message.into(),
    }
}

/// AWS's message for a signature that does not match.
pub(crate) const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
/// AWS's message for an unknown access key or a wrong session token.
pub(crate) const BAD_TOKEN: &str = "The security token included in the request is invalid.";
/// How far `x-amz-date` may be from the mock's clock (AWS: a signature is valid 15 minutes).
const MAX_SKEW_SECS: u64 = 15 * 60;

/// Checks a request's SigV4 signature against `creds` at `now` (Unix seconds).
pub(crate) fn verify(
    parts: &Parts,
    body: &[u8],
    creds: &[AwsTestCredentials],
    now: u64,
) -> Result<(), Refusal> {
    let header = |name: &str| -> Option<String> {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| {
            values
                .iter()
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let auth = header("authorization")
        .and_then(|a| a.strip_prefix("AWS4-HMAC-SHA256 ").map(str::to_owned))
        .ok_or_else(|| {
            refuse(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            )
        })?;
    let field = |name: &str| {
        auth.split(',')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        field("Credential"),
        field("SignedHeaders"),
        field("Signature"),
    ) else {
        return Err(refuse(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(refuse(
            "IncompleteSignatureException",
            format!(
                "Credential should be of the form <key>/<date>/<region>/<service>/aws4_request, got '{credential}'."
            ),
        ));
    };
    if *service != "bedrock" {
        return Err(refuse(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: 'bedrock'. Got '{service}'."),
        ));
    }
    let amz_date = header("x-amz-date").ok_or_else(|| {
        refuse(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    })?;
    let Some(signed_at) = parse_amz_date(&amz_date) else {
        return Err(refuse(
            "IncompleteSignatureException",
            format!("X-Amz-Date must be in the ISO8601 basic format, got '{amz_date}'."),
        ));
    };
    if amz_date.get(..8) != Some(*date) {
        return Err(refuse(
            "InvalidSignatureException",
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{amz_date}'."
            ),
        ));
    }
    if now.abs_diff(signed_at) > MAX_SKEW_SECS {
        return Err(refuse(
            "InvalidSignatureException",
            format!("Signature expired: {amz_date} is more than 15 minutes from the mock's clock."),
        ));
    }
    let Some(creds) = creds.iter().find(|c| c.access_key_id == *key_id) else {
        return Err(refuse("UnrecognizedClientException", BAD_TOKEN));
    };
    if header("x-amz-security-token") != creds.session_token {
        return Err(refuse("UnrecognizedClientException", BAD_TOKEN));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err(refuse(
            "InvalidSignatureException",
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if creds.session_token.is_some() && !names.contains(&"x-amz-security-token") {
        return Err(refuse("InvalidSignatureException", SIGNATURE_MISMATCH));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let Some(value) = header(name) else {
            return Err(refuse("InvalidSignatureException", SIGNATURE_MISMATCH));
        };
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        parts.method.as_str(),
        canonical_uri(parts.uri.path()),
        canonical_query(parts.uri.query().unwrap_or("")),
        hex(digest::digest(&digest::SHA256, body).as_ref()),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref()),
    );
    let mut key = format!("AWS4{}", creds.secret_access_key).into_bytes();
    for part in [*date, *region, *service, "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let given = unhex(&signature).unwrap_or_default();
    hmac::verify(&key, string_to_sign.as_bytes(), &given)
        .map_err(|_| refuse("InvalidSignatureException", SIGNATURE_MISMATCH))
}

/// Each `/`-separated segment URI-encoded (again); `/` for an empty path.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|s| uri_encode(s.as_bytes()))
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
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

fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let byte = b.get(i).copied().unwrap_or(0);
        let decoded = (byte == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match decoded {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `YYYYMMDDTHHMMSSZ` → Unix seconds.
fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil), years ≥ 1970 only.
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "20150830T123600Z";
    const AT: u64 = 1_440_938_160;
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    const BODY: &[u8] = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#;

    fn creds(token: Option<&str>) -> Vec<AwsTestCredentials> {
        vec![AwsTestCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.into(),
            session_token: token.map(str::to_owned),
        }]
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    const HOST: (&str, &str) = ("host", "bedrock-runtime.us-east-1.amazonaws.com");
    const PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
    const BODY_HASH: &str = "7421da8d1a0949a481724fee62d5886aacde03836bf58248adb73e8b61ac0d54";

    /// The gateway's test vector (computed independently with Python's hashlib/hmac, see the
    /// providers crate's `sigv4_bedrock_path_is_double_encoded`): the mock must accept it.
    #[test]
    fn accepts_the_independently_computed_bedrock_signatures() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=7cff346b2fe84765240d6c7289252ad8b9c8696c282819cb49398ad26a316c47";
        let headers = [
            HOST,
            ("content-type", "application/json"),
            ("x-amz-content-sha256", BODY_HASH),
            ("x-amz-date", DATE),
            ("authorization", auth),
        ];
        assert_eq!(
            verify(&parts(PATH, &headers), BODY, &creds(None), AT),
            Ok(())
        );
        // Ten minutes later still; twenty not.
        assert_eq!(
            verify(&parts(PATH, &headers), BODY, &creds(None), AT + 600),
            Ok(())
        );
        assert_eq!(
            verify(&parts(PATH, &headers), BODY, &creds(None), AT + 1200)
                .unwrap_err()
                .kind,
            "InvalidSignatureException"
        );
        // A changed body, path or header, or another secret: refused.
        let mismatch =
            |p: Parts, body: &[u8], c: &[AwsTestCredentials]| verify(&p, body, c, AT).unwrap_err();
        let e = mismatch(parts(PATH, &headers), b"{}", &creds(None));
        assert_eq!(
            (e.kind, e.message.as_str()),
            ("InvalidSignatureException", SIGNATURE_MISMATCH)
        );
        let single = "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse";
        assert_eq!(
            mismatch(parts(single, &headers), BODY, &creds(None)).kind,
            "InvalidSignatureException"
        );
        let mut other = creds(None);
        other[0].secret_access_key = "another".into();
        assert_eq!(
            mismatch(parts(PATH, &headers), BODY, &other).kind,
            "InvalidSignatureException"
        );
        let mut h = headers.to_vec();
        h[1] = ("content-type", "text/plain");
        assert_eq!(
            mismatch(parts(PATH, &h), BODY, &creds(None)).kind,
            "InvalidSignatureException"
        );
        // Unknown key, and a token the credentials do not have.
        assert_eq!(
            mismatch(parts(PATH, &headers), BODY, &[]).message,
            BAD_TOKEN
        );
        assert_eq!(
            mismatch(parts(PATH, &headers), BODY, &creds(Some(TOKEN))).kind,
            "UnrecognizedClientException"
        );

        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=58db38f662fcff78d8a84ee6222cdd41fcce57f3599b24aa9d9d93f2c2497064";
        let headers = [
            HOST,
            ("content-type", "application/json"),
            ("x-amz-content-sha256", BODY_HASH),
            ("x-amz-date", DATE),
            ("x-amz-security-token", TOKEN),
            ("authorization", auth),
        ];
        assert_eq!(
            verify(&parts(PATH, &headers), BODY, &creds(Some(TOKEN)), AT),
            Ok(())
        );
        assert_eq!(
            mismatch(parts(PATH, &headers), BODY, &creds(Some("other"))).kind,
            "UnrecognizedClientException"
        );
    }

    #[test]
    fn malformed_authorization() {
        let p = |auth: &str| parts(PATH, &[HOST, ("x-amz-date", DATE), ("authorization", auth)]);
        for (auth, kind) in [
            ("Bearer x", "MissingAuthenticationTokenException"),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request",
                "IncompleteSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
                "InvalidSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00",
                "InvalidSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=x-amz-date, Signature=00",
                "InvalidSignatureException",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz",
                "InvalidSignatureException",
            ),
        ] {
            assert_eq!(
                verify(&p(auth), BODY, &creds(None), AT).unwrap_err().kind,
                kind,
                "{auth}"
            );
        }
        let no_date = parts(
            PATH,
            &[
                HOST,
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00",
                ),
            ],
        );
        assert_eq!(
            verify(&no_date, BODY, &creds(None), AT).unwrap_err().kind,
            "IncompleteSignatureException"
        );
    }

    #[test]
    fn dates_and_credentials_strings() {
        assert_eq!(parse_amz_date(DATE), Some(AT));
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199));
        assert_eq!(parse_amz_date("2015-08-30"), None);
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
        let c = AwsTestCredentials::parse("AKID:se/cr+et:tok").unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str()),
            ("AKID", "se/cr+et")
        );
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        assert!(AwsTestCredentials::parse("AKID").is_none());
        assert!(!format!("{c:?}").contains("se/cr+et"));
    }
}
