//! Generated Unicode against the identity types: no panic, parsing a
//! canonical value gives it back, and spellings that share a canonical
//! form parse to one value. 10,000 cases each (`PROPTEST_CASES`
//! raises it).

use proptest::prelude::*;

use super::*;
use crate::text;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000u32)
        .max(10_000);
    ProptestConfig::with_cases(cases)
}

/// Addresses from anywhere in Unicode, most with an `@` and a dot so
/// they reach the canonical forms.
fn addresses() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(\\PC|\\p{Cf}|\\p{Zl}){1,12}@(\\PC|\\p{Cf}){1,12}\\.(\\PC){2,6}",
        "[a-zA-Z0-9.+_\\-ａ-ｚＡ-Ｚà-ÿÀ-ß\u{300}-\u{36f}]{1,16}@[a-zA-Zà-ÿ0-9\\-]{1,12}\\.[a-z]{2,5}",
    ]
}

/// A spelling of `canonical` that must collide with it: upper case,
/// fullwidth, decomposed, or a mix.
fn respell(canonical: &str, how: u8) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let (local, domain) = canonical.rsplit_once('@').unwrap_or((canonical, ""));
    let fullwidth = |c: char| match c {
        '!'..='~' if c != '@' => char::from_u32(c as u32 - 0x21 + 0xff01).unwrap_or(c),
        _ => c,
    };
    // Only letters whose capital lowercases back to them (not ß → SS).
    let upper = |text: &str| -> String {
        text.chars()
            .map(|c| {
                let capital: String = c.to_uppercase().collect();
                if capital.to_lowercase() == c.to_string() {
                    capital
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    let local: String = match how % 4 {
        0 => upper(local),
        1 => local.chars().map(fullwidth).collect(),
        2 => local.nfd().collect(),
        _ => upper(&local.nfd().map(fullwidth).collect::<String>()),
    };
    let unicode_domain = idna::domain_to_unicode(domain).0;
    let domain = if how.is_multiple_of(2) {
        upper(&unicode_domain)
    } else {
        unicode_domain.chars().map(fullwidth).collect()
    };
    format!("{local}@{domain}")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn email_parsing_never_panics_and_is_stable(raw in addresses()) {
        if let Ok(email) = Email::parse(&raw) {
            prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            prop_assert!(email.as_str().chars().count() <= EMAIL_MAX_CHARS);
            prop_assert!(!email.as_str().chars().any(text::is_hidden_or_unassigned));
        }
    }

    #[test]
    fn a_respelled_address_is_never_another_address(raw in addresses(), how in any::<u8>()) {
        // Some respellings are refused (decomposed Hangul is old jamo to
        // PRECIS): a 422, never a second user.
        if let Ok(email) = Email::parse(&raw) {
            let variant = Email::parse(&respell(email.as_str(), how));
            prop_assert!(variant.as_ref().is_err() || variant.as_ref() == Ok(&email), "{:?}", variant);
        }
    }

    #[test]
    fn spellings_of_one_latin_address_parse_to_one_address(
        raw in "[a-z0-9.+_\\-à-þ]{1,16}@[a-zà-þ0-9]{1,12}\\.[a-z]{2,5}",
        how in any::<u8>(),
    ) {
        // Equal addresses are one email claim in either store (storage's
        // tests and the store contract suite check the claim itself).
        if let Ok(email) = Email::parse(&raw) {
            let variant = Email::parse(&respell(email.as_str(), how));
            prop_assert_eq!(variant.as_ref(), Ok(&email), "respelled {}", how);
        }
    }

    #[test]
    fn name_parsing_never_panics_and_is_stable(raw in prop_oneof![any::<String>(), "(\\PC|\\p{Cf}|\\p{Co}|\\p{Zl}){0,110}"]) {
        if let Ok(name) = UserName::parse(&raw) {
            prop_assert_eq!(UserName::parse(name.as_str()), Ok(name.clone()));
            let chars = name.as_str().chars().count();
            prop_assert!((NAME_MIN_CHARS..=NAME_MAX_CHARS).contains(&chars));
            prop_assert!(name.as_str().chars().any(char::is_alphanumeric));
            prop_assert!(!name.as_str().chars().any(text::is_hidden_or_unassigned));
        }
    }

    #[test]
    fn a_format_character_anywhere_in_a_name_is_refused(
        name in "[\\p{L}\\p{N} ]{2,50}",
        at in any::<prop::sample::Index>(),
        hidden in "\\p{Cf}",
    ) {
        let mut chars: Vec<char> = name.chars().collect();
        let position = at.index(chars.len() + 1);
        chars.splice(position..position, hidden.chars());
        let spoiled: String = chars.into_iter().collect();
        prop_assert!(UserName::parse(&spoiled).is_err(), "{:?}", spoiled);
    }
}
