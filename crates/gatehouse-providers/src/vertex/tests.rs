use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::*;

/// The test-only service account committed for the mock (it grants access to nothing).
const TEST_SA: &str = include_str!("../../../gatehouse-mock/testdata/vertex-test-sa.json");

fn b64url_decode(s: &str) -> Vec<u8> {
    let std: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let padded = format!("{std}{}", "=".repeat((4 - std.len() % 4) % 4));
    base64_decode(&padded).unwrap().to_vec()
}

fn account() -> ServiceAccount {
    ServiceAccount::from_json(TEST_SA).unwrap()
}

#[test]
fn jwt_has_the_right_shape_and_a_valid_signature() {
    let sa = account();
    let jwt = jwt_assertion(&sa, 1_700_000_000).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
    let claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    assert_eq!(
        claims,
        json!({
            "iss": "gatehouse-test@gatehouse-test-project.iam.gserviceaccount.com",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "aud": "https://oauth2.googleapis.com/token",
            "iat": 1_700_000_000u64,
            "exp": 1_700_003_600u64,
        })
    );
    assert!(!jwt.contains('='), "base64url without padding");
    let key = RsaKeyPair::from_pkcs8(&sa.key_der).unwrap();
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref());
    let signed = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(signed.as_bytes(), &b64url_decode(parts[2]))
        .unwrap();
    assert!(
        public
            .verify(b"tampered.input", &b64url_decode(parts[2]))
            .is_err()
    );
}

#[test]
fn debug_never_prints_the_key() {
    let sa = account();
    let shown = format!("{sa:?}");
    assert!(shown.contains("***"));
    assert!(!shown.contains("PRIVATE KEY"));
    assert!(!shown.contains("MII"));
    let token =
        parse_token_response(br#"{"access_token":"ya29.secret","expires_in":3599}"#).unwrap();
    assert_eq!(
        format!("{token:?}"),
        "AccessToken { value: \"***\", expires_in: 3599 }"
    );
    assert_eq!(token.expose(), "ya29.secret");
}

#[test]
fn service_account_errors_never_quote_the_key() {
    let mut v: Value = serde_json::from_str(TEST_SA).unwrap();
    let pem = v["private_key"].as_str().unwrap().to_owned();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"type": "authorized_user"}), "not supported"),
        (json!({"private_key": pem}), "client_email"),
        (json!({"client_email": "a@b"}), "private_key"),
        (
            json!({"client_email": "a@b", "private_key": pem.replace("PRIVATE KEY", "RSA PRIVATE KEY")}),
            "BEGIN PRIVATE KEY",
        ),
        (
            json!({"client_email": "a@b", "private_key": pem.replacen("MII", "M!I", 1)}),
            "base64",
        ),
        (
            json!({"client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}),
            "PKCS#8",
        ),
        (
            json!({"client_email": "a@b", "private_key": pem, "token_uri": "http://evil.example/token"}),
            "https",
        ),
        (
            json!({"client_email": "a@b", "private_key": pem, "token_uri": "ftp://127.0.0.1/token"}),
            "https",
        ),
    ];
    for (case, want) in cases {
        let e = ServiceAccount::from_json(&case.to_string()).unwrap_err();
        assert!(e.contains(want), "{case}: {e}");
        assert!(!e.contains("MII"), "{e}");
    }
    assert!(ServiceAccount::from_json("not json").is_err());
    assert!(ServiceAccount::from_json("[]").is_err());
    v["token_uri"] = json!("http://127.0.0.1:9/token");
    assert_eq!(
        ServiceAccount::from_json(&v.to_string()).unwrap().token_uri,
        "http://127.0.0.1:9/token"
    );
    v["token_uri"] = json!("http://localhost:9/token");
    assert!(ServiceAccount::from_json(&v.to_string()).is_ok());
}

#[test]
fn base64_is_strict() {
    assert_eq!(base64_decode("aGk=").unwrap().as_slice(), b"hi");
    assert_eq!(base64_decode("aGVsbG8=").unwrap().as_slice(), b"hello");
    assert_eq!(base64_decode("").unwrap().as_slice(), b"");
    for bad in ["aGk", "aG=k", "a===", "aGl=", "****"] {
        assert!(base64_decode(bad).is_none(), "{bad}");
    }
    assert_eq!(base64url(b"\xfb\xff"), "-_8");
}

#[test]
fn token_responses() {
    let t = parse_token_response(br#"{"access_token":"ya29.x","token_type":"Bearer"}"#).unwrap();
    assert_eq!(t.expires_in, 3600);
    for bad in [
        &br#"{"access_token":""}"#[..],
        br#"{"access_token":"a b"}"#,
        br#"{"access_token":"x","token_type":"mac"}"#,
        br#"{"expires_in":3600}"#,
        b"<html>",
    ] {
        assert!(parse_token_response(bad).is_err());
    }
    // Only the code, never the description (the endpoint's free text).
    assert_eq!(
        token_error_code(
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#
        )
        .as_deref(),
        Some("invalid_grant")
    );
    assert_eq!(
        token_error_code(br#"{"error":"invalid_grant\n<b>http://x y"}"#).as_deref(),
        Some("invalid_grantbhttpxy")
    );
    assert_eq!(token_error_code(b"nope"), None);
    assert_eq!(token_error_code(br#"{"error":{"code":400}}"#), None);
    assert_eq!(token_error_code(br#"{"error":"  "}"#), None);
    assert!(token_request_body("h.c.s").starts_with(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=h.c.s"
    ));
}

#[test]
fn refusals_of_the_service_account_are_final_outages_are_not() {
    for code in ["invalid_grant", "invalid_client", "unauthorized_client"] {
        for status in [400, 401, 403, 500] {
            assert!(
                token_refusal_is_final(status, Some(code)),
                "{status} {code}"
            );
        }
    }
    assert!(token_refusal_is_final(400, Some("invalid_scope")));
    assert!(token_refusal_is_final(403, None));
    for status in [408, 429, 500, 502, 503, 504] {
        assert!(!token_refusal_is_final(status, None), "{status}");
        assert!(
            !token_refusal_is_final(status, Some("temporarily_unavailable")),
            "{status}"
        );
    }
}

#[test]
fn tokens_are_refreshed_a_minute_early() {
    assert_eq!(refresh_after(3600), Duration::from_secs(3540));
    assert_eq!(refresh_after(61), Duration::from_secs(1));
    assert_eq!(refresh_after(30), Duration::ZERO);
}

#[test]
fn roots_and_ids() {
    assert_eq!(
        vertex_root("us-central1"),
        "https://us-central1-aiplatform.googleapis.com"
    );
    assert_eq!(vertex_root("global"), "https://aiplatform.googleapis.com");
    assert!(is_safe_id("my-project-123"));
    assert!(!is_safe_id("a/b"));
    assert!(!is_safe_id(""));
    assert!(is_anthropic_model("claude-sonnet-4@20250514"));
    assert!(!is_anthropic_model("gemini-2.5-pro"));
}

#[test]
fn anthropic_body_drops_model_and_sets_the_vertex_version() {
    let body = serde_json::json!({"model": "claude-sonnet-4@20250514", "max_tokens": 5,
        "anthropic_version": "2023-06-01", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let out: Value =
        serde_json::from_slice(&anthropic_body(body.to_string().as_bytes()).unwrap()).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"max_tokens": 5, "anthropic_version": "vertex-2023-10-16", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]})
    );
    assert!(anthropic_body(b"[1]").is_err());
    assert!(anthropic_body(b"nope").is_err());
}
