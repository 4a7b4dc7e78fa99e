//! The edge's proof of origin. With `Edge` cloudfront (template.yaml),
//! CloudFront adds [`ORIGIN_HEADER`] with a secret from Secrets Manager to
//! every request it forwards, and every function gets the same secret in
//! [`ORIGIN_SECRET_VARIABLE`]: a request without it reached the
//! `execute-api` URL directly, past WAF's rate limits and rules, and is
//! answered 403. With the edge off the variable is empty and nothing is
//! checked.

use std::sync::OnceLock;

use lambda_http::Request;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The header CloudFront sends the secret in (the distribution's
/// `OriginCustomHeaders`).
pub const ORIGIN_HEADER: &str = "x-origin-verify";
/// The environment variable holding the secret; empty or unset: no check.
pub const ORIGIN_SECRET_VARIABLE: &str = "EDGE_ORIGIN_SECRET";

static EXPECTED: OnceLock<Option<OriginSecret>> = OnceLock::new();

/// The secret a request must carry in [`ORIGIN_HEADER`], kept as its
/// SHA-256 digest so that comparing takes the same time whatever the
/// header's length and content.
#[derive(Clone)]
pub struct OriginSecret([u8; 32]);

impl std::fmt::Debug for OriginSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not even the digest: it would let a reader test guesses offline.
        f.write_str("OriginSecret(..)")
    }
}

impl OriginSecret {
    /// The secret, or `None` when it is empty (the edge is off).
    pub fn new(secret: &str) -> Option<Self> {
        (!secret.is_empty()).then(|| Self(Sha256::digest(secret.as_bytes()).into()))
    }

    /// Whether `value`, the request's header, is the secret, compared in
    /// constant time.
    pub fn admits(&self, value: Option<&[u8]>) -> bool {
        let Some(value) = value else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(value).into();
        bool::from(digest.ct_eq(&self.0))
    }
}

/// Reads [`ORIGIN_SECRET_VARIABLE`] once, at init.
pub fn configure_from_env() {
    let secret = std::env::var(ORIGIN_SECRET_VARIABLE).unwrap_or_default();
    let _ = EXPECTED.set(OriginSecret::new(&secret));
}

/// `Ok` when the edge is off or `request` carries its secret; 403
/// otherwise.
pub(super) fn check(request: &Request) -> Result<(), ApiError> {
    match EXPECTED.get().and_then(Option::as_ref) {
        Some(secret)
            if !secret.admits(request.headers().get(ORIGIN_HEADER).map(|v| v.as_bytes())) =>
        {
            Err(ApiError::NotFromEdge)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_admits_only_itself() {
        let secret = OriginSecret::new("s3cret-from-secrets-manager").expect("a secret");
        assert!(secret.admits(Some(b"s3cret-from-secrets-manager")));
        for (value, why) in [
            (None, "no header"),
            (Some(&b""[..]), "an empty header"),
            (Some(&b"s3cret-from-secrets-manage"[..]), "a prefix"),
            (Some(&b"s3cret-from-secrets-manager "[..]), "a longer value"),
            (Some(&b"S3CRET-FROM-SECRETS-MANAGER"[..]), "another case"),
        ] {
            assert!(!secret.admits(value), "{why} is refused");
        }
    }

    #[test]
    fn an_empty_secret_means_the_edge_is_off() {
        assert!(OriginSecret::new("").is_none());
    }
}
