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

/// Longest email address accepted, in characters (RFC 5321 path limit less the brackets).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Longest local part (before the `@`) accepted, in characters (RFC 5321).
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

/// A normalized email address: trimmed, lowercased, a dotted domain, no
/// display name, no IP literal, no whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates and normalizes an address as entered by a client.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let candidate = raw.trim().to_lowercase();
        if candidate.is_empty() {
            return Err(InvalidValue("must not be empty"));
        }
        if candidate.chars().count() > EMAIL_MAX_CHARS {
            return Err(InvalidValue("must be at most 254 characters"));
        }
        if candidate
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidValue(
                "must not contain whitespace or control characters",
            ));
        }
        let options = Options::default()
            .with_required_tld()
            .without_display_text()
            .without_domain_literal();
        let address = EmailAddress::parse_with_options(&candidate, options)
            .map_err(|_| InvalidValue("must be a valid email address such as ada@example.com"))?;
        if address.local_part().chars().count() > EMAIL_LOCAL_PART_MAX_CHARS {
            return Err(InvalidValue("must have at most 64 characters before the @"));
        }
        Ok(Self(candidate))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's display name: trimmed, 2–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Validates and trims a name as entered by a client.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let name = raw.trim();
        if name.chars().any(char::is_control) {
            return Err(InvalidValue("must not contain control characters"));
        }
        let chars = name.chars().count();
        if chars < NAME_MIN_CHARS {
            return Err(InvalidValue("must be at least 2 characters"));
        }
        if chars > NAME_MAX_CHARS {
            return Err(InvalidValue("must be at most 100 characters"));
        }
        Ok(Self(name.to_owned()))
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

/// A keyed create: the key, a digest of the request it was first used with,
/// and until when it is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key.
    pub key: IdempotencyKey,
    /// SHA-256 of the request body's canonical JSON, hex encoded.
    pub fingerprint: String,
    /// When the key may be used for another request.
    pub expires_at: Timestamp,
}

impl Idempotency {
    /// The record of `key` used now with a request whose body, as canonical
    /// JSON bytes, is `body`.
    pub fn new(key: IdempotencyKey, body: &[u8], now: Timestamp) -> Self {
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
