//! A JSON body read as one value, refusing an object that names a member
//! twice: RFC 8259 §4 leaves such an object's meaning to each parser (most
//! keep the last member, some the first), so accepting it would let a
//! proxy, a log and this API each read another request.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body is not one JSON value we accept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonBodyError {
    /// Not JSON at all (or trailing bytes after it).
    Invalid,
    /// An object names this member twice.
    DuplicateMember(String),
}

/// Parses `bytes` as one JSON value with no duplicate member at any depth.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, JsonBodyError> {
    let Checked { value, duplicate } =
        serde_json::from_slice(bytes).map_err(|_| JsonBodyError::Invalid)?;
    match duplicate {
        Some(name) => Err(JsonBodyError::DuplicateMember(name)),
        None => Ok(value),
    }
}

/// A value, and the first member name found twice in one of its objects.
/// Parsing goes on past a duplicate, so what is not JSON is still told
/// apart from what is.
struct Checked {
    value: Value,
    duplicate: Option<String>,
}

impl Checked {
    fn plain(value: Value) -> Self {
        Self {
            value,
            duplicate: None,
        }
    }
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Checked, E> {
        Ok(Checked::plain(Value::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Checked, E> {
        Ok(Checked::plain(Value::Number(value.into())))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Checked, E> {
        Ok(Checked::plain(Value::Number(value.into())))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Checked, E> {
        // JSON has no NaN or infinity, so every parsed float is a number.
        Ok(Checked::plain(
            Number::from_f64(value).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Checked, E> {
        Ok(Checked::plain(Value::String(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Checked, E> {
        Ok(Checked::plain(Value::String(value)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked::plain(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let mut items = Vec::new();
        let mut duplicate = None;
        while let Some(Checked {
            value,
            duplicate: inner,
        }) = seq.next_element()?
        {
            duplicate = duplicate.or(inner);
            items.push(value);
        }
        Ok(Checked {
            value: Value::Array(items),
            duplicate,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut members = Map::new();
        let mut duplicate = None;
        while let Some(name) = map.next_key::<String>()? {
            let Checked {
                value,
                duplicate: inner,
            } = map.next_value()?;
            if members.contains_key(&name) {
                duplicate = duplicate.or(Some(name));
            } else {
                duplicate = duplicate.or(inner);
                members.insert(name, value);
            }
        }
        Ok(Checked {
            value: Value::Object(members),
            duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_body_without_duplicates_reads_as_serde_json_reads_it() {
        let bodies = [
            r#"{"email":"ada@example.com","name":"Ada","n":[1,-2,3.5,true,null,{"a":{}}]}"#,
            r#"[{"a":1},{"a":2}]"#,
            r#""\ud83d\ude00""#,
            "18446744073709551615",
        ];
        for body in bodies {
            let expected: Value = serde_json::from_str(body).expect("valid JSON");
            assert_eq!(parse(body.as_bytes()), Ok(expected), "{body}");
        }
    }

    #[test]
    fn a_member_named_twice_at_any_depth_is_refused_naming_it() {
        let cases = [
            (
                r#"{"email":"first@x.io","email":"second@x.io"}"#,
                "email",
                "top level",
            ),
            (r#"{"a":{"b":1,"b":2}}"#, "b", "nested object"),
            (
                r#"[{"c":1,"c":1}]"#,
                "c",
                "object in an array, same value twice",
            ),
            (
                r#"{"name":"x","name":"x","email":1,"email":2}"#,
                "name",
                "the first one found",
            ),
        ];
        for (body, name, why) in cases {
            assert_eq!(
                parse(body.as_bytes()),
                Err(JsonBodyError::DuplicateMember(name.to_owned())),
                "{why}: {body}"
            );
        }
    }

    #[test]
    fn what_is_not_one_json_value_is_invalid() {
        for body in [
            "",
            "{",
            r#"{"a":1} x"#,
            r#"{"a":1}{}"#,
            "\u{feff}{}",
            r#"{"a":"\ud800"}"#,
        ] {
            assert_eq!(
                parse(body.as_bytes()),
                Err(JsonBodyError::Invalid),
                "{body:?}"
            );
        }
        assert_eq!(parse(br#"{"a":1}"#), Ok(json!({"a": 1})));
    }
}
