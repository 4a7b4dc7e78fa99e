//! [`Email`]: an email address in its canonical form.

use std::fmt;

use email_address::{EmailAddress, Options};

use super::InvalidValue;
use crate::text;

/// Longest email address accepted, in characters (Unicode scalar values)
/// of its canonical form (RFC 5321 path limit less the brackets).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Longest local part (before the `@`) accepted, in characters of its
/// canonical form (RFC 5321).
pub const EMAIL_LOCAL_PART_MAX_CHARS: usize = 64;

/// An email address in its canonical form, so two spellings of one address
/// are one value (and one claim): no invisible, formatting, separator,
/// private-use or unassigned code point anywhere; the local part as RFC
/// 8265's UsernameCaseMapped profile prepares and enforces it (fullwidth to
/// halfwidth, lowercase, NFC, PRECIS IdentifierClass on Unicode 6.3, bidi
/// rule), the domain as UTS #46 maps it to ASCII
/// (`bücher.de` is stored as `xn--bcher-kva.de`), with STD3 rules and DNS
/// lengths. No display name, no IP literal, no whitespace or control
/// characters; a top-level domain that is not all digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates an address as entered by a client and returns its canonical form.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let invalid = InvalidValue("must be a valid email address such as ada@example.com");
        let candidate = raw.trim();
        if candidate.is_empty() {
            return Err(InvalidValue("must not be empty"));
        }
        if candidate
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidValue(
                "must not contain whitespace or control characters",
            ));
        }
        // Anywhere in the address, even where UTS #46 would drop them.
        if candidate.chars().any(text::is_hidden_or_unassigned) {
            return Err(InvalidValue(
                "must not contain invisible, formatting, private-use or unassigned characters",
            ));
        }
        let (local, domain) = candidate.rsplit_once('@').ok_or(invalid)?;
        let local = text::canonical_local_part(local).ok_or(invalid)?;
        // A quoted-string local part is the same mailbox as its unquoted
        // form (RFC 5322 §3.2.4: `"a\da"` is `ada`), so accepting it would
        // give one mailbox two claims. Only the dot-atom form is accepted;
        // checked after canonicalisation, which maps fullwidth quotes and
        // backslashes to ASCII.
        if local.contains(['"', '\\']) {
            return Err(InvalidValue(
                "must not quote the part before the @: write ada@example.com, not \"ada\"@example.com",
            ));
        }
        let domain = text::canonical_domain(domain).ok_or(InvalidValue(
            "must have a valid domain name such as example.com",
        ))?;
        let canonical = format!("{local}@{domain}");
        if canonical.chars().count() > EMAIL_MAX_CHARS {
            return Err(InvalidValue("must be at most 254 characters"));
        }
        if local.chars().count() > EMAIL_LOCAL_PART_MAX_CHARS {
            return Err(InvalidValue("must have at most 64 characters before the @"));
        }
        let options = Options::default()
            .with_required_tld()
            .without_display_text()
            .without_domain_literal();
        EmailAddress::parse_with_options(&canonical, options).map_err(|_| invalid)?;
        Ok(Self(canonical))
    }

    /// An address read back from storage, as stored. Items written under
    /// earlier, looser rules stay readable (see `docs/storage.md`,
    /// "Canonical email addresses"). For stores only: it skips validation.
    pub fn stored(raw: String) -> Self {
        Self(raw)
    }

    /// The canonical address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_accepts_and_normalizes_valid_addresses() {
        let cases = [
            ("ada@example.com", "ada@example.com", "plain"),
            (
                "  Ada.Lovelace@Example.COM ",
                "ada.lovelace@example.com",
                "trimmed and lowercased",
            ),
            (
                "a+tag@sub.example.co.uk",
                "a+tag@sub.example.co.uk",
                "plus and subdomains",
            ),
        ];
        for (raw, expected, why) in cases {
            let email =
                Email::parse(raw).unwrap_or_else(|e| panic!("{why}: {raw:?} rejected: {e}"));
            assert_eq!(email.as_str(), expected, "{why}");
        }
    }

    #[test]
    fn email_rejects_invalid_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b".repeat(250));
        let cases = [
            ("", "empty"),
            ("   ", "blank"),
            ("ada", "no at sign"),
            ("ada@", "no domain"),
            ("@example.com", "no local part"),
            ("ada@localhost", "domain without a dot"),
            ("Ada <ada@example.com>", "display name"),
            ("ada@[127.0.0.1]", "IP literal"),
            ("ada lovelace@example.com", "inner space"),
            ("\"ada lovelace\"@example.com", "quoted space"),
            ("\"ada\"@example.com", "quoted local part"),
            (
                "\"a\\da\"@example.com",
                "quoted local part with a quoted pair",
            ),
            ("\"\\ada\"@example.com", "quoted pair first"),
            ("\"ADA\"@example.com", "quoted, uppercase"),
            ("\"a@b\"@example.com", "quoted at sign"),
            ("＂ada＂@example.com", "fullwidth quotation marks"),
            ("a＼da@example.com", "fullwidth backslash"),
            ("ada@exa mple.com", "space in domain"),
            ("ada\u{7}@example.com", "control character"),
            ("ada@-example.com", "label starting with a hyphen"),
            ("ada@example..com", "empty label"),
            (long_local.as_str(), "local part over 64"),
            (long_total.as_str(), "address over 254"),
        ];
        for (raw, why) in cases {
            assert!(Email::parse(raw).is_err(), "{why}: {raw:?} was accepted");
        }
    }

    #[test]
    fn look_alike_addresses_share_one_canonical_form() {
        let cases = [
            ("josé@example.com", "jose\u{301}@example.com", "NFC and NFD"),
            (
                "ada@example.com",
                "ＡＤＡ@example.com",
                "fullwidth local part",
            ),
            (
                "ada@example.com",
                "ada@ＥＸＡＭＰＬＥ.com",
                "fullwidth domain",
            ),
            (
                "ada@bücher.de",
                "ada@xn--bcher-kva.de",
                "U-label and A-label",
            ),
            ("ada@bücher.de", "ADA@BÜCHER.DE", "case"),
        ];
        for (one, other, why) in cases {
            assert_eq!(Email::parse(one), Email::parse(other), "{why}");
            assert!(Email::parse(one).is_ok(), "{why}: {one}");
        }
        assert_eq!(
            Email::parse("ada@bücher.de").map(|e| e.0),
            Ok("ada@xn--bcher-kva.de".to_owned()),
            "the domain is stored in ASCII"
        );
    }

    #[test]
    fn invisible_and_malformed_addresses_are_refused() {
        let cases = [
            ("ada\u{200b}@example.com", "zero-width space"),
            ("ada\u{feff}@example.com", "byte-order mark"),
            ("ada\u{202e}@example.com", "right-to-left override"),
            ("ad\u{ad}a@example.com", "soft hyphen in the local part"),
            ("ada\u{e000}@example.com", "private use"),
            ("ada\u{ffff}@example.com", "noncharacter"),
            ("ada@ex_ample.com", "underscore in the domain"),
            ("ada@example.123", "numeric top-level domain"),
            ("ada@exa\u{200b}mple.com", "zero-width space in the domain"),
            ("ada@exam\u{ad}ple.com", "soft hyphen in the domain"),
        ];
        for (raw, why) in cases {
            assert!(Email::parse(raw).is_err(), "{why}: {raw:?} was accepted");
        }
    }
}
