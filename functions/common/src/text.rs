//! Which Unicode text an identity may hold, and its canonical form: the
//! rules behind [`crate::domain::Email`] and [`crate::domain::UserName`].
//! Every table comes from a maintained crate (PRECIS for local parts,
//! UTS #46 for domains, the Unicode general categories), none is ours.

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
    UsernameCaseMapped::new()
        .enforce(local)
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// The domain as UTS #46 processing turns it into ASCII (A-labels), with
/// the STD3 rules (letters, digits, hyphens), hyphens checked at label ends,
/// DNS lengths verified; it needs a dot and a top-level label that is not
/// all digits. `None` when it is not such a domain.
pub(crate) fn canonical_domain(domain: &str) -> Option<String> {
    let ascii = Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .ok()?
        .into_owned();
    let (_, top) = ascii.rsplit_once('.')?;
    if top.is_empty() || top.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ascii)
}
