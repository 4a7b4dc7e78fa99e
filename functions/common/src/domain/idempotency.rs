//! [`IdempotencyKey`] and [`Idempotency`]: a client's key for a create,
//! and the record that remembers it.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
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
    /// SHA-256 of the request body's canonical JSON, hex encoded (keys
    /// sorted at every depth, no whitespace).
    pub fingerprint: String,
    /// When the key may be used for another request.
    pub expires_at: Timestamp,
}

impl Idempotency {
    /// The record of `key` used now by `caller` (`None` on an open API)
    /// with a request whose JSON body is `body`.
    pub fn new(
        caller: Option<&str>,
        key: IdempotencyKey,
        body: &Map<String, Value>,
        now: Timestamp,
    ) -> Self {
        Self {
            caller: caller.unwrap_or(OPEN_API_CALLER).to_owned(),
            key,
            fingerprint: fingerprint(body),
            expires_at: now.plus(IDEMPOTENCY_WINDOW),
        }
    }

    /// SHA-256 of the caller, hex encoded: 64 characters whatever the
    /// caller, so a record's key stays within DynamoDB's key size limits
    /// (a sort key is at most 1,024 bytes; a token's client id has no
    /// length limit of its own).
    pub fn caller_digest(&self) -> String {
        sha256_hex(self.caller.as_bytes())
    }
}

/// SHA-256 of the body's canonical JSON, hex encoded: object keys sorted
/// (at every depth) and no whitespace, so bodies that differ only in key
/// order or spacing are one request, whatever order a parser keeps.
fn fingerprint(body: &Map<String, Value>) -> String {
    let mut canonical = String::new();
    write_canonical(&mut canonical, body);
    sha256_hex(canonical.as_bytes())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

fn write_canonical(out: &mut String, object: &Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = object.iter().collect();
    entries.sort_by_key(|(name, _)| *name);
    out.push('{');
    for (i, (name, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(name.as_str()).to_string());
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(object) => write_canonical(out, object),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(body: &str) -> String {
        match serde_json::from_str(body) {
            Ok(Value::Object(object)) => fingerprint(&object),
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn bodies_differing_only_in_key_order_or_spacing_fingerprint_the_same() {
        let cases = [
            (
                r#"{"email":"ada@example.com","name":"Ada"}"#,
                r#"{"name":"Ada","email":"ada@example.com"}"#,
                "top-level keys",
            ),
            (
                r#"{"a":{"x":1,"y":[{"q":1,"p":2}]},"b":null}"#,
                r#"{ "b" : null, "a" : { "y" : [ { "p" : 2, "q" : 1 } ], "x" : 1 } }"#,
                "nested keys and whitespace",
            ),
        ];
        for (one, other, why) in cases {
            assert_eq!(print(one), print(other), "{why}");
        }
    }

    #[test]
    fn bodies_with_different_values_fingerprint_differently() {
        let ada = print(r#"{"email":"ada@example.com","name":"Ada"}"#);
        let cases = [
            (
                r#"{"email":"ada@example.com","name":"Eve"}"#,
                "another name",
            ),
            (
                r#"{"email":"ada@example.com","name":"ada"}"#,
                "another case",
            ),
            (r#"{"email":"ada@example.com"}"#, "a field less"),
            (
                r#"{"email":"ada@example.com","name":["Ada"]}"#,
                "another type",
            ),
        ];
        for (body, why) in cases {
            assert_ne!(print(body), ada, "{why}");
        }
        assert_eq!(ada.len(), 64, "hex SHA-256");
    }

    #[test]
    fn the_fingerprint_is_the_digest_of_compact_json_with_sorted_keys() {
        // The form records written before the canonical encoder hold, so
        // their keys keep matching.
        let expected = Sha256::digest(br#"{"email":"ada@example.com","name":"Ada"}"#)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>();
        assert_eq!(
            print(r#"{"name":"Ada","email":"ada@example.com"}"#),
            expected
        );
    }
}
