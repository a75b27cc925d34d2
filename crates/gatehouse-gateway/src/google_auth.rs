//! OAuth2 access tokens for Vertex AI deployments, from a service account.
//!
//! The JWT is built and signed by `gatehouse_providers::vertex` (pure); this module sends
//! it to the key file's `token_uri` (a URL from config, checked at load: https, or http on
//! loopback), caches the token until a minute before it expires, and lets one request at a
//! time refresh it (single flight: the others wait on the same lock and reuse the result).
//!
//! The token is kept only as a sensitive `HeaderValue` (never logged, never HPACK-indexed);
//! the assertion and the token endpoint's body are zeroized after use.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gatehouse_providers::vertex::{self, ServiceAccount};
use http::{HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

/// Largest token endpoint answer read.
const MAX_TOKEN_BODY: usize = 64 * 1024;
/// Longest wait for the token endpoint.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a token is cached, whatever the token endpoint's `expires_in` says (Google's
/// tokens live an hour). The number is the endpoint's to write: uncapped, a huge one would
/// overflow `Instant`.
const MAX_TOKEN_LIFETIME_SECS: u64 = 86_400;

/// Why no token could be had. Messages carry no secret (never the assertion or a token) and
/// none of the token endpoint's own text.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint refused the service account (`invalid_grant`, `invalid_client`,
    /// `unauthorized_client`, or another 4xx but 408 and 429): the key, the grant or the
    /// account's permission is wrong, and asking again cannot help.
    #[error("the token endpoint refused the service account ({status} {})", .code.as_deref().unwrap_or("without an error code"))]
    Refused {
        /// The token endpoint's HTTP status.
        status: u16,
        /// Its OAuth2 error code (sanitized for logs), if it sent one.
        code: Option<String>,
    },
    /// The assertion could not be built or signed with the service account's key.
    #[error("{0}")]
    Assertion(String),
    /// No token this time (unreachable, timed out, a 5xx, 408 or 429, an unusable answer):
    /// another attempt may get one.
    #[error("{0}")]
    Unavailable(String),
}

impl TokenError {
    /// Whether another attempt may get a token.
    pub fn retryable(&self) -> bool {
        matches!(self, TokenError::Unavailable(_))
    }
}

/// When a token fetched at `fetched_at` and valid for `expires_in` seconds is refreshed: a
/// minute before it expires, its lifetime capped at [`MAX_TOKEN_LIFETIME_SECS`].
fn refresh_at(fetched_at: Instant, expires_in: u64) -> Instant {
    let lifetime = vertex::refresh_after(expires_in.min(MAX_TOKEN_LIFETIME_SECS));
    // With the cap this cannot overflow; if it ever did, refresh on the next request.
    fetched_at.checked_add(lifetime).unwrap_or(fetched_at)
}

struct Cached {
    header: HeaderValue,
    refresh_at: Instant,
}

/// A service account's token source: one per Vertex deployment.
pub struct GoogleAuth {
    account: ServiceAccount,
    token_uri: Uri,
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for GoogleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleAuth")
            .field("account", &self.account)
            .field("token", &"***")
            .finish()
    }
}

impl GoogleAuth {
    /// A token source for `account` (its `token_uri` was checked when the config was loaded).
    pub fn new(account: ServiceAccount) -> Result<Self, String> {
        let token_uri = account
            .token_uri
            .parse()
            .map_err(|_| "the service account's token_uri is not a valid URL".to_owned())?;
        Ok(Self {
            account,
            token_uri,
            cache: Mutex::new(None),
        })
    }

    /// The `Authorization: Bearer …` header value (sensitive), from the cache or freshly
    /// fetched. Concurrent callers wait for one fetch.
    pub async fn header(
        &self,
        client: &Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    ) -> Result<HeaderValue, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.header.clone());
        }
        let fetched_at = Instant::now();
        let token = self.fetch(client).await?;
        let mut header =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                TokenError::Unavailable("the token endpoint sent an unusable token".into())
            })?;
        header.set_sensitive(true);
        *cache = Some(Cached {
            header: header.clone(),
            refresh_at: refresh_at(fetched_at, token.expires_in),
        });
        tracing::debug!(
            expires_in = token.expires_in,
            "fetched a Google access token"
        );
        Ok(header)
    }

    async fn fetch(
        &self,
        client: &Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    ) -> Result<vertex::AccessToken, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = vertex::jwt_assertion(&self.account, now).map_err(TokenError::Assertion)?;
        let body = vertex::token_request_body(&assertion);
        let mut req = Request::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.token_uri.clone();
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        req.headers_mut()
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let res = match tokio::time::timeout(TOKEN_TIMEOUT, client.request(req)).await {
            Err(_) => {
                return Err(TokenError::Unavailable(
                    "the token endpoint timed out".into(),
                ));
            }
            Ok(Err(_)) => {
                return Err(TokenError::Unavailable(
                    "could not reach the token endpoint".into(),
                ));
            }
            Ok(Ok(res)) => res,
        };
        let status = res.status();
        let bytes = match tokio::time::timeout(
            TOKEN_TIMEOUT,
            Limited::new(res.into_body(), MAX_TOKEN_BODY).collect(),
        )
        .await
        {
            Ok(Ok(b)) => Zeroizing::new(b.to_bytes().to_vec()),
            _ => {
                return Err(TokenError::Unavailable(
                    "the token endpoint's answer was cut off".into(),
                ));
            }
        };
        if !status.is_success() {
            let status = status.as_u16();
            let code = vertex::token_error_code(&bytes);
            if vertex::token_refusal_is_final(status, code.as_deref()) {
                return Err(TokenError::Refused { status, code });
            }
            return Err(TokenError::Unavailable(format!(
                "the token endpoint failed ({status})"
            )));
        }
        vertex::parse_token_response(&bytes).map_err(TokenError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expires_in` is the token endpoint's to write: no value may panic, and none keeps a
    /// token longer than a day.
    #[test]
    fn absurd_token_lifetimes_neither_panic_nor_outlive_a_day() {
        let now = Instant::now();
        let day = Duration::from_secs(MAX_TOKEN_LIFETIME_SECS - vertex::REFRESH_MARGIN_SECS);
        for expires_in in [u64::MAX, u64::MAX - 1, 1 << 63, 10_000_000_000, 86_401] {
            assert_eq!(refresh_at(now, expires_in), now + day, "{expires_in}");
        }
        assert_eq!(refresh_at(now, 3600), now + Duration::from_secs(3540));
        assert_eq!(refresh_at(now, 0), now);
    }

    #[test]
    fn only_outages_of_the_token_endpoint_are_retried() {
        let refused = TokenError::Refused {
            status: 400,
            code: Some("invalid_grant".into()),
        };
        assert!(!refused.retryable());
        assert_eq!(
            refused.to_string(),
            "the token endpoint refused the service account (400 invalid_grant)"
        );
        assert!(!TokenError::Assertion("bad key".into()).retryable());
        assert!(TokenError::Unavailable("the token endpoint failed (503)".into()).retryable());
    }
}
