//! Reading a DynamoDB request body the one way it can mean one thing.
//!
//! DynamoDB Local's JSON reader is lenient where `serde_json` is not: it
//! executes a body with bytes after the JSON (`{…} garbage`, `{…}{…}`), a
//! leading byte-order mark, or a lone surrogate (`"\ud800"`), and of two
//! members with one name it keeps the last (tried against DynamoDB Local
//! 3.3.1). A proxy that reads such a body differently, or not at all,
//! authorises something other than what runs. So the proxy reads exactly
//! RFC 8259 JSON whose top level is an object, with no member name twice
//! in any object, and refuses anything else before deciding anything.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body was refused; the message DynamoDB's `SerializationException`
/// carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

/// Reads `body` as one JSON object, or says why it cannot be read as
/// exactly one.
pub fn read(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(BodyError(
            "the body starts with a byte-order mark, which JSON (RFC 8259 §8.1) does not allow"
                .to_owned(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Strict
        .deserialize(&mut deserializer)
        .map_err(|e| BodyError(format!("the body is not one JSON value: {e}")))?;
    // Anything but whitespace after the value is refused: DynamoDB Local
    // ignores it, another reader may not.
    deserializer
        .end()
        .map_err(|e| BodyError(format!("bytes after the JSON value: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(BodyError(format!(
            "the body is a JSON {}, not an object",
            kind(&other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON value whose objects have distinct member names.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(format!(
                    "the member name \"{name}\" appears twice in one object"
                )));
            }
            let value = map.next_value_seed(Strict)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_object_is_read_with_whitespace_around_it() {
        let map =
            read(b" \r\n\t{\"TableName\": \"users\", \"Key\": {\"pk\": {\"S\": \"USER#1\"}}}\n ")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(map["TableName"], "users");
        assert_eq!(map["Key"]["pk"]["S"], "USER#1");
    }

    #[test]
    fn escapes_in_member_names_are_decoded_as_dynamodb_decodes_them() {
        let map = read(br#"{"Table\u004eame": "users"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(map["TableName"], "users");
    }

    #[test]
    fn bodies_dynamodb_local_reads_leniently_are_refused() {
        let cases: [(&[u8], &str); 11] = [
            (b"{\"TableName\":\"t\"} garbage", "trailing bytes"),
            (
                b"{\"TableName\":\"t\"}{\"TableName\":\"u\"}",
                "a second value",
            ),
            (b"\xEF\xBB\xBF{\"TableName\":\"t\"}", "a byte-order mark"),
            (
                br#"{"TableName":"t","Key":{"pk":{"S":"\ud800"}}}"#,
                "a lone surrogate",
            ),
            (br#"{"TableName":"\udc00"}"#, "a lone trailing surrogate"),
            (
                br#"{"TableName":"t","TableName":"u"}"#,
                "a duplicate member",
            ),
            (br#"{"Key":{"pk":{"S":"a","S":"b"}}}"#, "a nested duplicate"),
            (b"{\"TableName\":\"t\xE9\"}", "a byte that is not UTF-8"),
            (b"{\"TableName\":\"a\tb\"}", "a raw control character"),
            (b"", "an empty body"),
            (b"{\"TableName\":\"t\"", "a truncated body"),
        ];
        for (body, what) in cases {
            assert!(read(body).is_err(), "{what} was read");
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        for body in [&b"[]"[..], b"null", b"\"x\"", b"1"] {
            let error = read(body).err().map(|e| e.0).unwrap_or_default();
            assert!(error.contains("not an object"), "{error}");
        }
    }

    #[test]
    fn a_body_nested_past_the_readers_limit_is_refused_not_overflowed() {
        let depth = 10_000;
        let mut body = b"{\"a\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', depth));
        body.extend(std::iter::repeat_n(b']', depth));
        body.push(b'}');
        assert!(read(&body).is_err());
    }

    #[test]
    fn the_same_name_in_different_objects_is_no_duplicate() {
        let map = read(br#"{"A":{"S":"1"},"B":{"S":"2"},"C":[{"S":"3"},{"S":"4"}]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(map.len(), 3);
    }
}
