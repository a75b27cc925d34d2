//! Client authentication: which header carries the key, and the constant-time check.

use gatehouse_config::Secret;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Headers a client key may arrive in, in the order LiteLLM reads them.
const KEY_HEADERS: &[&str] = &["authorization", "x-api-key", "x-litellm-api-key", "api-key"];

/// Verifies client keys. Holds only a hash of the master key.
#[derive(Debug)]
pub struct Authenticator {
    master_key_hash: Option<[u8; 32]>,
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Authenticator {
    /// With `None`, every request is let in (only allowed on loopback; see the server).
    pub fn new(master_key: Option<&Secret>) -> Self {
        Self {
            master_key_hash: master_key.map(|k| hash(k.expose())),
        }
    }

    /// True when a key is required.
    pub fn enabled(&self) -> bool {
        self.master_key_hash.is_some()
    }

    /// Checks the key in `headers`. Comparison is of SHA-256 digests in constant time, so
    /// neither the key's bytes nor its length leak through timing.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.master_key_hash else {
            return Ok(());
        };
        let presented = presented_key(headers).ok_or(ApiError::MissingKey)?;
        if bool::from(hash(presented).ct_eq(expected)) {
            Ok(())
        } else {
            Err(ApiError::InvalidKey)
        }
    }
}

/// The first key found in the accepted headers. `Authorization` must be `Bearer <key>`;
/// the others carry the bare key (a `Bearer ` prefix is tolerated, as LiteLLM does).
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    KEY_HEADERS.iter().find_map(|name| {
        let raw = headers.get(*name)?.to_str().ok()?.trim();
        let key = match raw.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => raw[7..].trim(),
            _ if *name == "authorization" => return None,
            _ => raw,
        };
        (!key.is_empty()).then_some(key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_every_key_header() {
        let auth = Authenticator::new(Some(&Secret::new("sk-master")));
        for h in [
            headers(&[("authorization", "Bearer sk-master")]),
            headers(&[("authorization", "bearer  sk-master ")]),
            headers(&[("x-api-key", "sk-master")]),
            headers(&[("x-litellm-api-key", "Bearer sk-master")]),
            headers(&[("api-key", "sk-master")]),
        ] {
            assert!(auth.check(&h).is_ok(), "{h:?}");
        }
    }

    #[test]
    fn refuses_missing_and_wrong_keys() {
        let auth = Authenticator::new(Some(&Secret::new("sk-master")));
        assert!(matches!(
            auth.check(&HeaderMap::new()),
            Err(ApiError::MissingKey)
        ));
        assert!(matches!(
            auth.check(&headers(&[("authorization", "sk-master")])),
            Err(ApiError::MissingKey)
        ));
        assert!(matches!(
            auth.check(&headers(&[("authorization", "Bearer sk-master2")])),
            Err(ApiError::InvalidKey)
        ));
        assert!(matches!(
            auth.check(&headers(&[("authorization", "Bearer ")])),
            Err(ApiError::MissingKey)
        ));
    }

    #[test]
    fn no_master_key_lets_everyone_in() {
        assert!(Authenticator::new(None).check(&HeaderMap::new()).is_ok());
    }
}
