//! The API Gateway JWT authorizer, locally: the same checks (signature
//! against a JWKS, issuer, audience or `client_id`, expiry, the route's
//! scopes) and the same 401/403 answers, before any function runs. The
//! claims of an accepted token reach the function in the request context,
//! as API Gateway passes them.

use std::collections::HashMap;
use std::path::PathBuf;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

/// The issuer of development tokens (`dev-token`); a reserved domain, so it
/// can never name a real issuer.
pub const DEV_ISSUER: &str = "https://issuer.users-api.invalid";
/// The audience (and `client_id`) of development tokens.
pub const DEV_AUDIENCE: &str = "users-api-local";
/// The key id of the development key.
const DEV_KEY_ID: &str = "users-api-local-dev";

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
#[derive(Clone)]
pub struct Authorizer {
    config: AuthConfig,
    keys: JwkSet,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .field("keys", &self.keys.keys.len())
            .finish()
    }
}

impl Authorizer {
    /// Loads the keys of `config`.
    pub async fn load(config: AuthConfig) -> Result<Self, AuthError> {
        let text = match &config.jwks {
            JwksSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| AuthError::Jwks(path.display().to_string(), e.to_string()))?,
            JwksSource::Url(url) => fetch(url)
                .await
                .map_err(|e| AuthError::Jwks(url.clone(), e.to_string()))?,
        };
        let keys: JwkSet = serde_json::from_str(&text)
            .map_err(|e| AuthError::Jwks(format!("{:?}", config.jwks), e.to_string()))?;
        Ok(Self { config, keys })
    }

    /// The issuer it trusts.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Checks the `Authorization` header against a route requiring any one
    /// of `scopes` (none: any valid token).
    pub fn check(
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
        let jwk = match &header.kid {
            Some(kid) => self.keys.find(kid),
            None => self.keys.keys.first().filter(|_| self.keys.keys.len() == 1),
        }
        .ok_or(Denied::Unauthorized)?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| Denied::Unauthorized)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        // The audience is checked below: `aud` or, as Cognito access tokens
        // carry it, `client_id`.
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|_| Denied::Unauthorized)?;
        let claims = data.claims;
        let audience_matches = [claims.get("aud"), claims.get("client_id")]
            .into_iter()
            .flatten()
            .any(|value| match value {
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

async fn fetch(url: &str) -> Result<String, reqwest::Error> {
    reqwest::get(url).await?.error_for_status()?.text().await
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

    /// Signs the token with the development key.
    pub fn sign(&self) -> Result<String, AuthError> {
        let pem = std::fs::read(dev_key_dir().join("private.pem"))
            .map_err(|e| AuthError::Sign(e.to_string()))?;
        self.sign_with(&pem, DEV_KEY_ID)
    }
}
