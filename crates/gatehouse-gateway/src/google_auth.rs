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

/// Why no token could be had. Messages carry no secret (never the assertion or a token).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

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
        let mut header = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| TokenError("the token endpoint sent an unusable token".into()))?;
        header.set_sensitive(true);
        *cache = Some(Cached {
            header: header.clone(),
            refresh_at: fetched_at + vertex::refresh_after(token.expires_in),
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
        let assertion = vertex::jwt_assertion(&self.account, now).map_err(TokenError)?;
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
            Err(_) => return Err(TokenError("the token endpoint timed out".into())),
            Ok(Err(_)) => return Err(TokenError("could not reach the token endpoint".into())),
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
            _ => return Err(TokenError("the token endpoint's answer was cut off".into())),
        };
        if !status.is_success() {
            return Err(TokenError(match vertex::token_error_message(&bytes) {
                Some(m) => format!("the token endpoint refused ({}): {m}", status.as_u16()),
                None => format!("the token endpoint refused ({})", status.as_u16()),
            }));
        }
        vertex::parse_token_response(&bytes).map_err(TokenError)
    }
}
