//! The pooled HTTP client that talks to providers, and what counts as retryable.

use std::time::Duration;

use bytes::Bytes;
use gatehouse_config::GatehouseSettings;
use http::{HeaderValue, Method, Request, Response, Uri, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use gatehouse_providers::bedrock;
use gatehouse_providers::errors::UpstreamFailure;

use crate::google_auth::TokenError;
use crate::routing::{AwsSigner, Upstream};

const USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("gatehouse/", env!("CARGO_PKG_VERSION")));
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// Why a request to an upstream produced no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No answer (response headers) within the deployment's timeout.
    #[error("timed out waiting for the upstream")]
    Timeout,
    /// Could not connect (refused, DNS, TLS).
    #[error("could not connect to the upstream")]
    Connect,
    /// The connection failed after it was made.
    #[error("the upstream connection failed")]
    Transport,
    /// The request could not be signed (Bedrock SigV4).
    #[error("could not sign the upstream request")]
    Signing,
    /// No OAuth2 access token could be had (Vertex AI); retryable like a connect error.
    #[error("could not get an access token: {0}")]
    Token(#[from] TokenError),
}

/// Pooled keep-alive HTTP/1.1 and HTTP/2 client over rustls. Follows no redirects: a
/// request goes to the URL from config, and nowhere else.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Builds rustls' client config: ring, Mozilla's roots compiled in, TLS 1.2 and 1.3.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(
        rustls::ClientConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

impl UpstreamClient {
    /// Builds the client from gatehouse's settings.
    pub fn new(settings: &GatehouseSettings) -> Result<Self, rustls::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.upstream_connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.upstream_pool_idle_timeout)
            .build(https);
        Ok(Self { client })
    }

    /// Sends `body` to `uri` (one of the deployment's configured URLs) and waits (at most
    /// `timeout`) for the response headers. Only config-derived values decide the URL and
    /// credentials; `client_headers` are the few API-behaviour headers a client may pass on
    /// (`anthropic-beta`), inserted last so they refine, never replace, the credential.
    pub async fn send(
        &self,
        up: &Upstream,
        uri: &Uri,
        body: Bytes,
        stream: bool,
        timeout: Duration,
        client_headers: &[(http::HeaderName, HeaderValue)],
    ) -> Result<Response<Incoming>, SendError> {
        let google_auth = match &up.google {
            Some(g) => Some(g.header(&self.client).await?),
            None => None,
        };
        // Bytes clones are reference counts, not copies.
        let signing_body = body.clone();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri.clone();
        let h = req.headers_mut();
        h.insert(header::CONTENT_TYPE, JSON);
        h.insert(header::ACCEPT, if stream { EVENT_STREAM } else { JSON });
        h.insert(header::USER_AGENT, USER_AGENT);
        if let Some((name, value)) = &up.auth {
            h.insert(name.clone(), value.clone());
        }
        if let Some(value) = google_auth {
            h.insert(header::AUTHORIZATION, value);
        }
        for (name, value) in up.extra_headers.iter().chain(client_headers) {
            h.insert(name.clone(), value.clone());
        }
        if let Some(aws) = &up.aws {
            sign_aws(h, uri, &signing_body, aws)?;
        }
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(SendError::Timeout),
            Ok(Ok(res)) => Ok(res),
            Ok(Err(e)) if e.is_connect() => Err(SendError::Connect),
            Ok(Err(_)) => Err(SendError::Transport),
        }
    }
}

/// Adds SigV4 headers (`x-amz-date`, `x-amz-content-sha256`, `authorization`, and the
/// session token) for a request about to be sent; the signed headers are exactly those sent.
fn sign_aws(
    h: &mut http::HeaderMap,
    uri: &Uri,
    body: &[u8],
    aws: &AwsSigner,
) -> Result<(), SendError> {
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or(SendError::Signing)?;
    let date = bedrock::amz_date(std::time::SystemTime::now());
    let signed = bedrock::sign(
        "POST",
        uri,
        &[
            ("host", &host),
            ("content-type", "application/json"),
            ("x-amz-date", &date),
        ],
        body,
        &aws.credentials,
        &aws.region,
        "bedrock",
        &date,
    )
    .map_err(|_| SendError::Signing)?;
    for (name, value) in signed {
        let mut value = HeaderValue::from_str(&value).map_err(|_| SendError::Signing)?;
        if name == "authorization" || name == "x-amz-security-token" {
            value.set_sensitive(true);
        }
        h.insert(http::HeaderName::from_static(name), value);
    }
    Ok(())
}

/// Whether a failed attempt is worth another, and the wait before it (`Some(None)`: back
/// off). Only when the provider's answer, read in its wire format
/// ([`gatehouse_providers::errors::classify`]), says another attempt may succeed (rate limits,
/// overload, server errors, timeouts, conflicts) — never for a refused request, credential or
/// account — and only when the wait it asks for (`retry-after`, else the body's own delay) is
/// one a client request may sit out.
pub fn retry_plan(
    failure: &UpstreamFailure,
    retry_after: Option<Duration>,
    max_wait: Duration,
) -> Option<Option<Duration>> {
    let wait = retry_after.or(failure.retry_delay);
    (failure.retryable && wait.is_none_or(|w| w <= max_wait)).then_some(wait)
}

/// The longest `retry-after` read from an upstream: a longer (or unrepresentable) wait reads
/// as this, which is still far beyond any wait a request sits out, so the answer is relayed,
/// not retried, and the client is told to wait a day at most.
pub const MAX_RETRY_AFTER_READ: Duration = Duration::from_secs(86_400);

/// The upstream's `retry-after-ms` or `retry-after` (seconds; HTTP dates are not honoured
/// and fall back to backoff). A negative or NaN value is ignored; a huge one (`1e20`,
/// `inf`) is capped at [`MAX_RETRY_AFTER_READ`] — the header is the upstream's to write,
/// and `Duration::from_secs_f64` would panic on it.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    if let Some(wait) = get("retry-after-ms").and_then(|ms| wait_secs(ms / 1000.0)) {
        return Some(wait);
    }
    get("retry-after").and_then(wait_secs)
}

/// `secs` as a wait, capped at [`MAX_RETRY_AFTER_READ`]; `None` if negative or NaN.
fn wait_secs(secs: f64) -> Option<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    Some(
        Duration::try_from_secs_f64(secs)
            .map_or(MAX_RETRY_AFTER_READ, |d| d.min(MAX_RETRY_AFTER_READ)),
    )
}

/// Exponential backoff with full jitter: up to 100 ms × 2^attempt, capped at 8 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1 << attempt.min(7)).min(8_000);
    Duration::from_millis(fastrand::u64(cap / 2..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut bad = http::HeaderMap::new();
        bad.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&bad), None);
        bad.insert("retry-after", HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&bad), None);
    }

    /// The headers are the upstream's to write: no value may panic, a huge wait reads as
    /// the cap (not as "no wait given", which would retry at once), garbage as nothing.
    #[test]
    fn absurd_retry_after_values_neither_panic_nor_shorten_the_wait() {
        let read = |name: &'static str, value: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(name, HeaderValue::from_str(value).unwrap());
            retry_after(&h)
        };
        let max = u64::MAX.to_string();
        for name in ["retry-after", "retry-after-ms"] {
            for huge in [
                "1e20",
                "1e300",
                max.as_str(),
                "inf",
                "+infinity",
                "1.7976931348623157e308",
            ] {
                assert_eq!(
                    read(name, huge),
                    Some(MAX_RETRY_AFTER_READ),
                    "{name}: {huge}"
                );
            }
            for ignored in ["NaN", "-1", "-1e20", "-inf", "", "soon", "0x10"] {
                assert_eq!(read(name, ignored), None, "{name}: {ignored}");
            }
            assert_eq!(read(name, "0"), Some(Duration::ZERO), "{name}");
        }
        assert_eq!(read("retry-after", "90000"), Some(MAX_RETRY_AFTER_READ));
        assert_eq!(
            read("retry-after", "0.25"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            read("retry-after-ms", "1500"),
            Some(Duration::from_millis(1500))
        );
        // A bad `retry-after-ms` falls back to `retry-after`.
        let mut h = http::HeaderMap::new();
        h.insert("retry-after-ms", HeaderValue::from_static("NaN"));
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        // The capped wait is still one no request sits out: relayed, not retried.
        let rate_limited = gatehouse_providers::errors::classify(
            gatehouse_providers::WireFormat::OpenAi,
            429,
            None,
            b"{}",
        );
        assert_eq!(
            retry_plan(
                &rate_limited,
                read("retry-after", "1e20"),
                Duration::from_secs(30)
            ),
            None
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(8));
        }
        assert!(backoff(0) <= Duration::from_millis(100));
    }

    #[test]
    fn retry_plans() {
        use gatehouse_providers::WireFormat;
        use gatehouse_providers::errors::classify;
        let max = Duration::from_secs(30);
        let openai = |s: u16| classify(WireFormat::OpenAi, s, None, b"{}");
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert_eq!(retry_plan(&openai(s), None, max), Some(None), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 413, 422] {
            assert_eq!(retry_plan(&openai(s), None, max), None, "{s}");
        }
        // The provider's code decides: a Gemini 400 that refuses the key is not retried, a
        // Bedrock throttle is, whatever its status.
        let key = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"API key not valid.","details":[{"reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(
            retry_plan(&classify(WireFormat::Gemini, 400, None, key), None, max),
            None
        );
        let throttled = classify(WireFormat::Bedrock, 400, Some("ThrottlingException"), b"{}");
        assert_eq!(retry_plan(&throttled, None, max), Some(None));
        let spend = br#"{"type":"error","error":{"type":"rate_limit_error","message":"limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
        assert_eq!(
            retry_plan(
                &classify(WireFormat::Anthropic, 429, None, spend),
                None,
                max
            ),
            None
        );
        // Waits: the header first, else the body's RetryInfo; too long a wait is no retry.
        let quota = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"q","details":[{"retryDelay":"2s"}]}}"#;
        let q = classify(WireFormat::Gemini, 429, None, quota);
        assert_eq!(
            retry_plan(&q, None, max),
            Some(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            retry_plan(&q, Some(Duration::from_millis(5)), max),
            Some(Some(Duration::from_millis(5)))
        );
        assert_eq!(retry_plan(&q, Some(Duration::from_secs(31)), max), None);
        assert_eq!(retry_plan(&q, None, Duration::from_secs(1)), None);
    }
}
