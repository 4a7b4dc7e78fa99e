//! [`UserName`]: a user's display name.

use unicode_normalization::UnicodeNormalization as _;

use super::InvalidValue;
use crate::text;

/// Shortest name accepted, in Unicode scalar values after trimming.
pub const NAME_MIN_CHARS: usize = 2;
/// Longest name accepted, in Unicode scalar values after trimming.
pub const NAME_MAX_CHARS: usize = 100;

/// A user's display name: trimmed, in NFC, 2–100 characters (Unicode
/// scalar values) with at least one letter or digit, and no control,
/// invisible, formatting (bidi controls included), line or paragraph
/// separator, private-use, surrogate, noncharacter or unassigned code point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Validates a name as entered by a client and returns it trimmed, in NFC.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let name: String = raw.trim().nfc().collect();
        if name.chars().any(char::is_control) {
            return Err(InvalidValue("must not contain control characters"));
        }
        if name.chars().any(text::is_hidden_or_unassigned) {
            return Err(InvalidValue(
                "must not contain invisible, formatting, separator, private-use or unassigned characters",
            ));
        }
        let chars = name.chars().count();
        if chars < NAME_MIN_CHARS {
            return Err(InvalidValue("must be at least 2 characters"));
        }
        if chars > NAME_MAX_CHARS {
            return Err(InvalidValue("must be at most 100 characters"));
        }
        if !name.chars().any(char::is_alphanumeric) {
            return Err(InvalidValue("must contain at least one letter or digit"));
        }
        Ok(Self(name))
    }

    /// A name read back from storage, as stored (see [`Email::stored`]).
    /// For stores only: it skips validation.
    pub fn stored(raw: String) -> Self {
        Self(raw)
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_trimmed_and_bounded_in_characters() {
        assert_eq!(
            UserName::parse("  Ada  ").map(|n| n.0),
            Ok("Ada".to_owned())
        );
        assert!(
            UserName::parse("Zoë").is_ok(),
            "non-ASCII letters count once"
        );
        assert!(
            UserName::parse(&"é".repeat(100)).is_ok(),
            "100 two-byte characters"
        );
        assert!(UserName::parse(&"é".repeat(101)).is_err(), "101 characters");
        assert!(
            UserName::parse(" A ").is_err(),
            "one character after trimming"
        );
        assert!(UserName::parse("Ada\u{0}").is_err(), "control character");
        assert!(UserName::parse("Ada\nLovelace").is_err(), "newline");
    }

    #[test]
    fn invisible_bidi_and_unassigned_names_are_refused() {
        let cases = [
            ("\u{200b}\u{200b}", "two zero-width spaces"),
            ("Ada\u{202e}ecilA", "right-to-left override"),
            ("Ada\u{2028}Lovelace", "line separator"),
            ("Ada\u{2029}Lovelace", "paragraph separator"),
            ("Ada\u{ffff}", "noncharacter"),
            ("Ada\u{e0041}", "tag character"),
            ("Ada\u{e000}", "private use"),
            ("Ada\u{ad}", "soft hyphen"),
            ("!!", "no letter or digit"),
        ];
        for (raw, why) in cases {
            assert!(UserName::parse(raw).is_err(), "{why}: {raw:?} was accepted");
        }
        assert_eq!(
            UserName::parse("Zoe\u{308}").map(|n| n.0),
            Ok("Zoë".to_owned()),
            "names are stored in NFC"
        );
        assert!(UserName::parse("李白").is_ok(), "two letters of any script");
    }
}
