//! [`UserId`]: a user's identifier.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use ulid::{Generator, Ulid};

use super::{InvalidValue, Timestamp};

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
    fn user_id_sorts_by_creation_time() {
        let earlier = UserId::new(Timestamp::parse("2026-01-01T00:00:00.000Z").unwrap());
        let later = UserId::new(Timestamp::parse("2026-01-01T00:00:00.001Z").unwrap());
        assert!(earlier < later);
    }
}
