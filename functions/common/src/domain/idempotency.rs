//! [`IdempotencyKey`] and [`Idempotency`]: a client's key for a create,
//! and the record that remembers it.

use time::Duration;

use super::{InvalidValue, Timestamp};

/// Longest `Idempotency-Key` accepted, in characters.
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;
/// How long a create's `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// A client's `Idempotency-Key`: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a key as sent in the header.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if raw.is_empty() || raw.len() > IDEMPOTENCY_KEY_MAX_CHARS {
            return Err(InvalidValue("must be 1 to 255 characters"));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(InvalidValue("must be printable ASCII"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The scope of `Idempotency-Key`s on an API without authorization: every
/// caller shares it, as nothing tells callers apart.
pub const OPEN_API_CALLER: &str = "-";

/// A keyed create: who sent it, the key, a digest of the request it was
/// first used with, and until when it is remembered. Keys are private to
/// their caller: another caller's equal key is another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The caller the key belongs to: the token's client id (see
    /// [`User::changed_by`]), or [`OPEN_API_CALLER`].
    pub caller: String,
    /// The client's key.
    pub key: IdempotencyKey,
    /// SHA-256 of the request body's canonical JSON, hex encoded.
    pub fingerprint: String,
    /// When the key may be used for another request.
    pub expires_at: Timestamp,
}

impl Idempotency {
    /// The record of `key` used now by `caller` (`None` on an open API)
    /// with a request whose body, as canonical JSON bytes, is `body`.
    pub fn new(caller: Option<&str>, key: IdempotencyKey, body: &[u8], now: Timestamp) -> Self {
        use sha2::{Digest, Sha256};
        use std::fmt::Write as _;
        let fingerprint =
            Sha256::digest(body)
                .iter()
                .fold(String::with_capacity(64), |mut hex, byte| {
                    let _ = write!(hex, "{byte:02x}");
                    hex
                });
        Self {
            caller: caller.unwrap_or(OPEN_API_CALLER).to_owned(),
            key,
            fingerprint,
            expires_at: now.plus(IDEMPOTENCY_WINDOW),
        }
    }
}
