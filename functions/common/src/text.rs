//! Which Unicode text an identity may hold, and its canonical form: the
//! rules behind [`crate::domain::Email`] and [`crate::domain::UserName`].
//! Every table comes from a maintained crate (PRECIS for local parts,
//! UTS #46 for domains, the Unicode general categories), none is ours.
//! Plain ASCII, the common case, skips them by paths of a few lines that
//! the property tests below hold equal to the crates' answers.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use precis_core::profile::Profile as _;
use precis_profiles::UsernameCaseMapped;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// Whether `c` is a code point no identity may hold: controls, format
/// characters (zero-width spaces and joiners, the byte-order mark, soft
/// hyphens, bidi controls, tag characters: category Cf), line and
/// paragraph separators, private use, surrogates, and unassigned code
/// points and noncharacters (category Cn).
pub(crate) fn is_hidden_or_unassigned(c: char) -> bool {
    // In ASCII only the controls are: no lookup for the common case.
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    is_hidden_category(c)
}

/// [`is_hidden_or_unassigned`] by the Unicode general category, for any
/// code point.
fn is_hidden_category(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    )
}

/// The local part of an address as RFC 8265's UsernameCaseMapped profile
/// enforces it: width mapping, case mapping, NFC, then the IdentifierClass
/// and the bidi rule. `None` when the profile refuses it.
pub(crate) fn canonical_local_part(local: &str) -> Option<String> {
    if local.is_ascii() {
        return ascii_local_part(local);
    }
    precis_local_part(local)
}

/// [`canonical_local_part`] by the profile itself, for any text.
fn precis_local_part(local: &str) -> Option<String> {
    UsernameCaseMapped::new()
        .enforce(local)
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// [`canonical_local_part`] of an ASCII local part, without the profile's
/// tables: on ASCII, width mapping and NFC change nothing, case mapping is
/// ASCII lowercasing, the bidi rule has no right-to-left character to apply
/// to, and the IdentifierClass admits exactly the printable characters
/// U+0021 to U+007E (RFC 8264 §9.11, ASCII7) and no empty string. The
/// property tests hold it equal to [`precis_local_part`].
fn ascii_local_part(local: &str) -> Option<String> {
    (!local.is_empty() && local.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| local.to_ascii_lowercase())
}

/// The domain as UTS #46 processing turns it into ASCII (A-labels), with
/// the STD3 rules (letters, digits, hyphens), hyphens checked at label ends,
/// DNS lengths verified; it needs a dot and a top-level label that is not
/// all digits. `None` when it is not such a domain.
pub(crate) fn canonical_domain(domain: &str) -> Option<String> {
    let ascii = match plain_domain(domain) {
        Some(plain) => plain,
        None => uts46_domain(domain)?,
    };
    let (_, top) = ascii.rsplit_once('.')?;
    if top.is_empty() || top.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ascii)
}

/// The domain as UTS #46 turns it into ASCII, for any text.
fn uts46_domain(domain: &str) -> Option<String> {
    Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Longest domain name DNS carries, without the root's dot (RFC 1035).
const DOMAIN_MAX: usize = 253;
/// Longest label of a domain name (RFC 1035).
const LABEL_MAX: usize = 63;

/// What [`uts46_domain`] makes of a domain that needs none of its
/// processing: letters, digits and hyphens in dot-separated labels of 1 to
/// 63 characters, none starting or ending with a hyphen, none an A-label
/// (`xn--`, which UTS #46 decodes and checks), at most 253 characters and
/// no root dot. It is then only lowercased. `None` for any other domain,
/// which takes the full path. The property tests hold it equal to
/// [`uts46_domain`].
fn plain_domain(domain: &str) -> Option<String> {
    let plain_label = |label: &str| {
        (1..=LABEL_MAX).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
            && !label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
    };
    (domain.len() <= DOMAIN_MAX && domain.split('.').all(plain_label))
        .then(|| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Any printable ASCII local part, with the spaces and controls the
        /// profile refuses, and the empty one.
        #[test]
        fn an_ascii_local_part_is_what_the_precis_profile_makes_of_it(
            local in prop_oneof!["[ -~]{0,70}", "[a-zA-Z0-9.+_-]{1,20}", "[\\x00-\\x7f]{0,8}"],
        ) {
            prop_assert_eq!(ascii_local_part(&local), precis_local_part(&local));
        }

        /// Domains with the parts the plain path must hand on: upper case,
        /// hyphens at label ends, A-labels (valid and not), empty labels, a
        /// root dot, labels and names at and past DNS's limits, and other
        /// ASCII.
        #[test]
        fn an_ascii_domain_is_what_uts46_makes_of_it(
            domain in prop_oneof![
                "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z0-9-]{1,12}){0,3}\\.?",
                "([xX][nN]--[a-z0-9-]{0,10}\\.)?[a-z0-9]{1,8}\\.[a-zA-Z]{2,6}",
                "[a-z]{60,66}\\.[a-z]{2,3}",
                "([a-z]{63}\\.){3}[a-z]{55,64}",
                "[ -~]{0,30}",
                "[a-z0-9.-]{0,20}",
            ],
        ) {
            prop_assert_eq!(plain_domain(&domain).or_else(|| uts46_domain(&domain)), uts46_domain(&domain));
        }
    }

    #[test]
    fn in_ascii_only_the_controls_are_hidden_as_their_categories_say() {
        for c in '\0'..='\x7f' {
            assert_eq!(is_hidden_or_unassigned(c), is_hidden_category(c), "{c:?}");
        }
    }

    #[test]
    fn the_plain_paths_take_the_common_case_and_hand_on_the_rest() {
        assert_eq!(
            ascii_local_part("Ada.Lovelace+x"),
            Some("ada.lovelace+x".to_owned())
        );
        assert_eq!(plain_domain("Example.COM"), Some("example.com".to_owned()));
        for other in [
            "xn--bcher-kva.de",
            "-a.com",
            "a-.com",
            "a..com",
            "a.com.",
            "bücher.de",
        ] {
            assert_eq!(plain_domain(other), None, "{other}");
        }
    }
}
