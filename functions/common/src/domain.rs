//! Domain types. Each is built only by `parse` (or by the store from a stored
//! value), so holding one is proof that it is valid.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use email_address::{EmailAddress, Options};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};
use ulid::{Generator, Ulid};
use unicode_normalization::UnicodeNormalization as _;

use crate::text;

/// Longest email address accepted, in characters (Unicode scalar values)
/// of its canonical form (RFC 5321 path limit less the brackets).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Longest local part (before the `@`) accepted, in characters of its
/// canonical form (RFC 5321).
pub const EMAIL_LOCAL_PART_MAX_CHARS: usize = 64;
/// Shortest name accepted, in Unicode scalar values after trimming.
pub const NAME_MIN_CHARS: usize = 2;
/// Longest name accepted, in Unicode scalar values after trimming.
pub const NAME_MAX_CHARS: usize = 100;
/// Page size used when a list request names none.
pub const DEFAULT_PAGE_SIZE: u16 = 20;
/// Largest page size a list request may ask for.
pub const MAX_PAGE_SIZE: u16 = 100;

/// A user's identifier: a ULID, so ids sort in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(Ulid);

impl UserId {
    /// A new id for a user created at `at`. Ids made by one process strictly
    /// increase, even within a millisecond; across processes they are
    /// ordered by millisecond.
    pub fn new(at: Timestamp) -> Self {
        static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());
        let mut generator = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
        // The generator only fails once 2^80 ids were made in one millisecond.
        let ulid = generator
            .generate_from_datetime(at.0.into())
            .unwrap_or_else(|_| Ulid::from_datetime(at.0.into()));
        Self(ulid)
    }

    /// Parses a ULID in any letter case.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let invalid = InvalidValue("must be a ULID (26 characters of Crockford base32)");
        // 26 base32 characters hold 130 bits; a ULID is 128, so the first is at most 7.
        if !raw.starts_with(|c: char| ('0'..='7').contains(&c)) {
            return Err(invalid);
        }
        Ulid::from_string(raw).map(Self).map_err(|_| invalid)
    }

    /// The id as 16 raw bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_bytes()
    }

    /// The id from 16 raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Ulid::from_bytes(bytes))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

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
    /// "Canonical email addresses").
    pub(crate) fn stored(raw: String) -> Self {
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
    pub(crate) fn stored(raw: String) -> Self {
        Self(raw)
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user's version: 1 on creation, one more on every change. It is the
/// entity tag clients send back in `If-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u64);

impl Version {
    /// The version of a newly created user.
    pub const FIRST: Self = Self(1);

    /// Wraps a stored or client-sent version number.
    pub fn new(number: u64) -> Self {
        Self(number)
    }

    /// The version after one more change.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The version number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// An instant in UTC with millisecond precision, shown as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The current time, cut to whole milliseconds.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        let sub_ms = Duration::nanoseconds(i64::from(now.nanosecond() % 1_000_000));
        Self(now - sub_ms)
    }

    /// Parses an RFC 3339 timestamp (as stored).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        OffsetDateTime::parse(raw, &Rfc3339)
            .map(|t| Self(t.to_offset(time::UtcOffset::UTC)))
            .map_err(|_| InvalidValue("must be an RFC 3339 timestamp"))
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// The instant `millis` milliseconds after the Unix epoch.
    pub fn from_unix_millis(millis: i64) -> Result<Self, InvalidValue> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .map(Self)
            .map_err(|_| InvalidValue("is out of range"))
    }

    /// This instant plus `duration`.
    pub fn plus(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always three fraction digits, so stored and returned times have one width.
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        match self.0.format(&format) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

/// A page size between 1 and [`MAX_PAGE_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u16);

impl PageSize {
    /// Parses the `limit` query parameter.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw.parse::<u16>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) && !raw.starts_with('+') => Ok(Self(n)),
            _ => Err(InvalidValue("must be a whole number from 1 to 100")),
        }
    }

    /// The size as a count.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self(DEFAULT_PAGE_SIZE)
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its unique, normalized email address.
    pub email: Email,
    /// Its display name.
    pub name: UserName,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Its version, which is also its entity tag.
    pub version: Version,
    /// Who made the last change: the caller API Gateway's JWT authorizer
    /// accepted (`None` on an open API). Stored for the history, never
    /// returned by the API.
    pub changed_by: Option<String>,
}

impl User {
    /// A user created now from validated input.
    pub fn new(email: Email, name: UserName, now: Timestamp) -> Self {
        Self {
            id: UserId::new(now),
            email,
            name,
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
            changed_by: None,
        }
    }

    /// This user, as changed by `actor`.
    pub fn by(self, actor: Option<&str>) -> Self {
        Self {
            changed_by: actor.map(str::to_owned),
            ..self
        }
    }

    /// This user with `changes` applied at `now` by `actor`, one version later.
    pub fn apply(&self, changes: &UserChanges, now: Timestamp, actor: Option<&str>) -> Self {
        Self {
            email: changes.email.clone().unwrap_or_else(|| self.email.clone()),
            name: changes.name.clone().unwrap_or_else(|| self.name.clone()),
            updated_at: now,
            version: self.version.next(),
            changed_by: actor.map(str::to_owned),
            ..self.clone()
        }
    }
}

/// A validated partial update: at least one field is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChanges {
    /// The new email address, if it changes.
    pub email: Option<Email>,
    /// The new name, if it changes.
    pub name: Option<UserName>,
}

/// What a conditional write requires of the stored version (`If-Match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No requirement: the write applies to whatever version is stored.
    None,
    /// The stored version must be one of these (an empty list never matches).
    OneOf(Vec<Version>),
}

impl Precondition {
    /// Whether a stored user at `version` satisfies the precondition.
    pub fn admits(&self, version: Version) -> bool {
        match self {
            Self::None => true,
            Self::OneOf(versions) => versions.contains(&version),
        }
    }
}

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

/// What kind of change a history event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The user was created.
    Created,
    /// Some fields changed.
    Updated,
    /// The user was deleted.
    Deleted,
}

impl ChangeKind {
    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "created" => Ok(Self::Created),
            "updated" => Ok(Self::Updated),
            "deleted" => Ok(Self::Deleted),
            _ => Err(InvalidValue("must be created, updated or deleted")),
        }
    }
}

/// One entry of a user's history. It names fields, never their values, so
/// it holds no personal data and outlives the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// Whose history.
    pub user_id: UserId,
    /// What happened.
    pub kind: ChangeKind,
    /// The version the change produced; a deletion counts as one more
    /// version, so versions order a user's history without gaps or ties.
    pub version: Version,
    /// The names of the fields the change set (`email`, `name`).
    pub changed_fields: Vec<String>,
    /// When the change was made.
    pub occurred_at: Timestamp,
    /// Who made it (see [`User::changed_by`]).
    pub actor: Option<String>,
}

/// Why a raw value was rejected, phrased to complete "<field> …".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub &'static str);

impl FromStr for UserId {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
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
    fn user_id_parses_any_case_and_rejects_non_ulids() {
        let id = UserId::new(Timestamp::now());
        let text = id.to_string();
        assert_eq!(UserId::parse(&text.to_lowercase()), Ok(id));
        assert!(UserId::parse("not-a-ulid").is_err());
        assert!(UserId::parse(&format!("{text}0")).is_err(), "27 characters");
        assert!(
            UserId::parse("80000000000000000000000000").is_err(),
            "overflow"
        );
    }

    #[test]
    fn page_size_accepts_only_1_to_100() {
        for ok in ["1", "20", "100"] {
            assert!(PageSize::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "101", "-1", "+5", "1.5", "", "ten", "65536"] {
            assert!(PageSize::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_print_rfc3339_utc_with_milliseconds() {
        let text = Timestamp::now().to_string();
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(Timestamp::parse(&text).map(|t| t.to_string()), Ok(text));
    }

    #[test]
    fn user_id_sorts_by_creation_time() {
        let earlier = UserId::new(Timestamp::parse("2026-01-01T00:00:00.000Z").unwrap());
        let later = UserId::new(Timestamp::parse("2026-01-01T00:00:00.001Z").unwrap());
        assert!(earlier < later);
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

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

#[cfg(test)]
mod identity_properties {
    //! Generated Unicode against the identity types: no panic, parsing a
    //! canonical value gives it back, and spellings that share a canonical
    //! form collide in the store. 10,000 cases each (`PROPTEST_CASES`
    //! raises it).
    use proptest::prelude::*;

    use super::*;
    use crate::store::{MemoryStore, StoreError, UserStore};

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
        fn spellings_of_one_latin_address_collide_on_create(
            raw in "[a-z0-9.+_\\-à-þ]{1,16}@[a-zà-þ0-9]{1,12}\\.[a-z]{2,5}",
            how in any::<u8>(),
        ) {
            if let Ok(email) = Email::parse(&raw) {
                let variant = Email::parse(&respell(email.as_str(), how));
                prop_assert_eq!(variant.as_ref(), Ok(&email), "respelled {}", how);
                let store = MemoryStore::new();
                let first = User::new(email, UserName::parse("Ada").expect("name"), Timestamp::now());
                let second = User::new(variant.expect("checked"), UserName::parse("Eve").expect("name"), Timestamp::now());
                let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
                let (created, taken) = runtime.block_on(async {
                    (store.create(&first, None).await, store.create(&second, None).await)
                });
                prop_assert!(created.is_ok());
                prop_assert!(matches!(taken, Err(StoreError::EmailTaken)), "the second create is a 409");
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
}
