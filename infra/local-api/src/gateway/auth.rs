//! The API Gateway JWT authorizer, locally: the same checks and the same
//! 401/403 answers, before any function runs. As API Gateway's JWT
//! authorizer does: the header names its key (`kid`) in the JWKS and uses
//! RS256; the signature verifies; `iss` is the issuer; `exp` is in the
//! future, `nbf` and `iat` (when present) are not; `aud` holds the
//! audience, or, only when there is no `aud`, `client_id` does; one of the
//! route's scopes is in `scope` (or `scp`). The claims of an accepted token
//! reach the function in the request context, as API Gateway passes them.
//!
//! A JWKS URL is fetched with a timeout, over https (plain http only on
//! loopback), and again when a token names a key it does not hold (at most
//! once per [`JWKS_REFRESH_INTERVAL`]), as an issuer's keys rotate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

/// The issuer of development tokens (`dev-token`); a reserved domain, so it
/// can never name a real issuer.
pub const DEV_ISSUER: &str = "https://issuer.users-api.invalid";
/// The audience (and `client_id`) of development tokens.
pub const DEV_AUDIENCE: &str = "users-api-local";
/// The key id of the development key.
pub const DEV_KEY_ID: &str = "users-api-local-dev";
/// Longest wait for a JWKS URL to answer.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest time between two fetches of a JWKS URL for an unknown `kid`.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// The development key pair's files, beside this crate.
pub fn dev_key_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/dev-key"))
}

/// Where the trusted keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A JWKS document on disk.
    File(PathBuf),
    /// A JWKS URL, fetched once at start-up (an issuer's `jwks_uri`).
    Url(String),
}

impl JwksSource {
    /// A URL when it looks like one, else a file path.
    pub fn parse(raw: &str) -> Self {
        if raw.starts_with("https://") || raw.starts_with("http://") {
            Self::Url(raw.to_owned())
        } else {
            Self::File(PathBuf::from(raw))
        }
    }
}

/// What the authorizer trusts.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The exact `iss` tokens must carry.
    pub issuer: String,
    /// The value `aud` (or, for Cognito access tokens, `client_id`) must hold.
    pub audience: String,
    /// The signing keys.
    pub jwks: JwksSource,
}

impl AuthConfig {
    /// Trusts the development key (tokens from `dev-token`).
    pub fn dev() -> Self {
        Self {
            issuer: DEV_ISSUER.to_owned(),
            audience: DEV_AUDIENCE.to_owned(),
            jwks: JwksSource::File(dev_key_dir().join("jwks.json")),
        }
    }
}

/// The authorizer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The JWKS could not be read or fetched.
    #[error("cannot load JWKS from {0}: {1}")]
    Jwks(String, String),
    /// A token could not be signed.
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

/// Why a request was refused, as API Gateway answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// 401: no token, or one that is malformed, expired, for another
    /// audience or issuer, or not signed by a trusted key.
    Unauthorized,
    /// 403: a valid token without any of the route's scopes.
    Forbidden,
}

/// A token API Gateway accepted: its claims (as strings) and scopes.
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    /// Every claim, each value as a string, as API Gateway passes them.
    pub claims: HashMap<String, String>,
    /// The token's scopes.
    pub scopes: Vec<String>,
}

/// Verifies bearer tokens like an API Gateway JWT authorizer.
pub struct Authorizer {
    config: AuthConfig,
    keys: RwLock<JwkSet>,
    /// When the JWKS URL was last fetched.
    fetched: Mutex<Instant>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// Loads the keys of `config`.
    pub async fn load(config: AuthConfig) -> Result<Self, AuthError> {
        let keys = load_keys(&config.jwks).await?;
        Ok(Self {
            config,
            keys: RwLock::new(keys),
            fetched: Mutex::new(Instant::now()),
        })
    }

    /// The key `kid` names, fetching the JWKS URL again if it is unknown
    /// and the last fetch is old enough.
    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let known = |keys: &RwLock<JwkSet>| {
            let keys = keys.read().unwrap_or_else(PoisonError::into_inner);
            keys.find(kid)
                .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
        };
        if let Some(key) = known(&self.keys) {
            return Some(key);
        }
        let JwksSource::Url(_) = &self.config.jwks else {
            return None;
        };
        {
            let mut fetched = self.fetched.lock().unwrap_or_else(PoisonError::into_inner);
            if fetched.elapsed() < JWKS_REFRESH_INTERVAL {
                return None;
            }
            *fetched = Instant::now();
        }
        match load_keys(&self.config.jwks).await {
            Ok(fresh) => *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh,
            Err(error) => tracing::warn!(%error, "JWKS refresh failed; keeping the keys held"),
        }
        known(&self.keys)
    }

    /// The issuer it trusts.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Checks the `Authorization` header against a route requiring any one
    /// of `scopes` (none: any valid token).
    pub async fn check(
        &self,
        authorization: Option<&str>,
        scopes: &[String],
    ) -> Result<Accepted, Denied> {
        let raw = authorization.ok_or(Denied::Unauthorized)?.trim();
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        let header = jsonwebtoken::decode_header(token).map_err(|_| Denied::Unauthorized)?;
        // API Gateway accepts RSA signatures only; `alg: none` never decodes.
        if header.alg != Algorithm::RS256 {
            return Err(Denied::Unauthorized);
        }
        let kid = header.kid.ok_or(Denied::Unauthorized)?;
        let key = self.key(&kid).await.ok_or(Denied::Unauthorized)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // The audience is checked below: `aud`, or `client_id` without it.
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|_| Denied::Unauthorized)?;
        let claims = data.claims;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(iat) = claims.get("iat") {
            match iat.as_f64() {
                #[allow(clippy::cast_precision_loss, reason = "seconds since 1970 fit in f64")]
                Some(issued) if issued <= now as f64 => {}
                _ => return Err(Denied::Unauthorized),
            }
        }
        let audience = claims.get("aud").or_else(|| claims.get("client_id"));
        let audience_matches = audience.is_some_and(|value| match value {
            Value::String(one) => *one == self.config.audience,
            Value::Array(many) => many
                .iter()
                .any(|v| v.as_str() == Some(&self.config.audience)),
            _ => false,
        });
        if !audience_matches {
            return Err(Denied::Unauthorized);
        }
        let granted = token_scopes(&claims);
        if !scopes.is_empty() && !scopes.iter().any(|s| granted.contains(s)) {
            return Err(Denied::Forbidden);
        }
        Ok(Accepted {
            claims: claims
                .into_iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (name, text)
                })
                .collect(),
            scopes: granted,
        })
    }
}

/// Scopes from `scope` (space-separated, OAuth 2.0) or `scp`.
fn token_scopes(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(list)) => list.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

async fn load_keys(source: &JwksSource) -> Result<JwkSet, AuthError> {
    let text = match source {
        JwksSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| AuthError::Jwks(path.display().to_string(), e.to_string()))?,
        JwksSource::Url(url) => fetch(url)
            .await
            .map_err(|e| AuthError::Jwks(url.clone(), e))?,
    };
    serde_json::from_str(&text).map_err(|e| AuthError::Jwks(format!("{source:?}"), e.to_string()))
}

/// Fetches a JWKS URL: https, or http on loopback only; within
/// [`JWKS_FETCH_TIMEOUT`].
async fn fetch(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let loopback = parsed.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if !(parsed.scheme() == "https" || parsed.scheme() == "http" && loopback) {
        return Err("a JWKS URL must use https (plain http only on loopback)".to_owned());
    }
    let client = reqwest::Client::builder()
        .timeout(JWKS_FETCH_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let answer = client.get(parsed).send().await.map_err(|e| e.to_string())?;
    let answer = answer.error_for_status().map_err(|e| e.to_string())?;
    answer.text().await.map_err(|e| e.to_string())
}

/// What a development token says.
#[derive(Debug, Clone)]
pub struct DevToken {
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its subject and client id.
    pub client_id: String,
    /// Seconds from now until it expires (negative: already expired).
    pub expires_in: i64,
    /// Its issuer.
    pub issuer: String,
    /// Its audience (`client_id` is set to the same, as Cognito does).
    pub audience: String,
}

impl Default for DevToken {
    fn default() -> Self {
        Self {
            scopes: vec!["users/read".to_owned(), "users/write".to_owned()],
            client_id: "local-developer".to_owned(),
            expires_in: 3600,
            issuer: DEV_ISSUER.to_owned(),
            audience: DEV_AUDIENCE.to_owned(),
        }
    }
}

impl DevToken {
    /// Signs the token with the private key in `key_pem`.
    pub fn sign_with(&self, key_pem: &[u8], key_id: &str) -> Result<String, AuthError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": self.client_id,
            "aud": self.audience,
            "client_id": self.client_id,
            "token_use": "access",
            "scope": self.scopes.join(" "),
            "iat": now,
            "exp": now + self.expires_in,
            "jti": ulid::Ulid::new().to_string(),
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key_id.to_owned());
        let key = EncodingKey::from_rsa_pem(key_pem).map_err(|e| AuthError::Sign(e.to_string()))?;
        jsonwebtoken::encode(&header, &claims, &key).map_err(|e| AuthError::Sign(e.to_string()))
    }

    /// Signs `claims` as they are with the development key, under `kid`
    /// (`None`: a header without one), for tests of the authorizer's rules.
    pub fn sign_claims(claims: &Value, kid: Option<&str>) -> Result<String, AuthError> {
        let pem = std::fs::read(dev_key_dir().join("private.pem"))
            .map_err(|e| AuthError::Sign(e.to_string()))?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_rsa_pem(&pem).map_err(|e| AuthError::Sign(e.to_string()))?;
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| AuthError::Sign(e.to_string()))
    }

    /// Signs the token with the development key.
    pub fn sign(&self) -> Result<String, AuthError> {
        let pem = std::fs::read(dev_key_dir().join("private.pem"))
            .map_err(|e| AuthError::Sign(e.to_string()))?;
        self.sign_with(&pem, DEV_KEY_ID)
    }
}
