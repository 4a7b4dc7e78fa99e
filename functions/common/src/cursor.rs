//! Opaque page cursors. A cursor names the last key of a page, bound to the
//! list it came from by a checksum (8 bytes of SHA-256 over the list's name
//! and the key), so a cursor that was mangled or taken from another list is
//! refused instead of silently misread.
//!
//! It is a checksum, not a signature, and anyone can compute it. That is
//! deliberate: forging a cursor only lets a caller start a page after an
//! id of its choosing, in a list it may read whole with the same
//! `users/read` scope, so a key would protect nothing. A keyed tag (HMAC)
//! would need a per-deployment secret fetched at init (a Secrets Manager or
//! SSM call on every cold start, its IAM grant and a rotation story); it
//! becomes worth that the day a list shows a caller less than everything.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::domain::{UserId, Version};
use crate::error::ApiError;

const KEY_BYTES: usize = 16;
const TAG_BYTES: usize = 8;

/// A key a cursor can carry: 16 bytes one way, and back when the bytes
/// name one.
pub trait CursorKey: Sized {
    /// The key as 16 bytes.
    fn to_key(&self) -> [u8; KEY_BYTES];
    /// The key the bytes name, if they name one.
    fn from_key(key: [u8; KEY_BYTES]) -> Option<Self>;
}

impl CursorKey for UserId {
    fn to_key(&self) -> [u8; KEY_BYTES] {
        self.to_bytes()
    }

    fn from_key(key: [u8; KEY_BYTES]) -> Option<Self> {
        Some(Self::from_bytes(key))
    }
}

/// A version as a big-endian 128-bit number; 16 bytes above `u64::MAX`
/// name no version.
impl CursorKey for Version {
    fn to_key(&self) -> [u8; KEY_BYTES] {
        u128::from(self.get()).to_be_bytes()
    }

    fn from_key(key: [u8; KEY_BYTES]) -> Option<Self> {
        u64::try_from(u128::from_be_bytes(key)).ok().map(Self::new)
    }
}

/// The cursor of the list named `scope` whose last item has `key`.
pub fn encode_key<K: CursorKey>(scope: &str, key: &K) -> String {
    encode(scope, key.to_key())
}

/// The key a cursor of the list named `scope` carries. A cursor that was
/// altered, comes from another list or carries bytes that name no key is
/// a 400, never a key near it.
pub fn decode_key<K: CursorKey>(scope: &str, cursor: &str) -> Result<K, ApiError> {
    K::from_key(decode(scope, cursor)?).ok_or_else(invalid)
}

fn invalid() -> ApiError {
    ApiError::bad_request("The cursor is not one this list returned.")
}

/// Encodes the 16-byte key that ends a page of the list named `scope`.
pub fn encode(scope: &str, key: [u8; KEY_BYTES]) -> String {
    let mut bytes = Vec::with_capacity(KEY_BYTES + TAG_BYTES);
    bytes.extend_from_slice(&key);
    bytes.extend_from_slice(&tag(scope, &key));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a cursor of the list named `scope`; anything else is a 400.
pub fn decode(scope: &str, cursor: &str) -> Result<[u8; KEY_BYTES], ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let (key, sealed) = bytes.split_at_checked(KEY_BYTES).ok_or_else(invalid)?;
    let key: [u8; KEY_BYTES] = key.try_into().map_err(|_| invalid())?;
    if sealed == tag(scope, &key) {
        Ok(key)
    } else {
        Err(invalid())
    }
}

fn tag(scope: &str, key: &[u8; KEY_BYTES]) -> [u8; TAG_BYTES] {
    let digest = Sha256::new()
        .chain_update(b"users-api cursor v1\0")
        .chain_update(scope.as_bytes())
        .chain_update(b"\0")
        .chain_update(key)
        .finalize();
    let mut tag = [0; TAG_BYTES];
    tag.copy_from_slice(&digest[..TAG_BYTES]);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_in_its_own_scope() {
        let key = [7; 16];
        assert_eq!(decode("users", &encode("users", key)).ok(), Some(key));
    }

    #[test]
    fn a_cursor_from_another_scope_or_altered_is_refused() {
        let cursor = encode("users", [7; 16]);
        assert!(decode("events", &cursor).is_err(), "foreign scope");
        let mut altered = cursor.clone().into_bytes();
        altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert!(decode("users", &altered).is_err(), "one character changed");
        assert!(
            decode("users", &cursor[..cursor.len() - 1]).is_err(),
            "truncated"
        );
        assert!(decode("users", "not base64!").is_err(), "not base64url");
        assert!(decode("users", "").is_err(), "empty");
    }

    #[test]
    fn typed_keys_round_trip() {
        let id = UserId::new(crate::domain::Timestamp::now());
        assert_eq!(
            decode_key("users", &encode_key("users", &id)).ok(),
            Some(id)
        );
        let version = Version::new(u64::MAX);
        let cursor = encode_key("events", &version);
        assert_eq!(decode_key("events", &cursor).ok(), Some(version));
    }

    #[test]
    fn a_sealed_key_that_names_no_version_is_refused_like_any_bad_cursor() {
        let past_u64 = (u128::from(u64::MAX) + 1).to_be_bytes();
        let cursor = encode("events", past_u64);
        let refused = decode_key::<Version>("events", &cursor).expect_err("no version");
        let tampered = decode_key::<Version>("events", "AAAA").expect_err("not a cursor");
        assert_eq!(refused.status(), 400);
        assert_eq!(
            serde_json::to_value(refused.to_problem("r")).ok(),
            serde_json::to_value(tampered.to_problem("r")).ok(),
            "the same problem document as any other bad cursor"
        );
    }
}
