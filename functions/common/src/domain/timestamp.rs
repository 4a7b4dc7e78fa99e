//! [`Timestamp`]: an instant in UTC with millisecond precision.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

use super::InvalidValue;

/// An instant in UTC with millisecond precision, shown as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub(super) OffsetDateTime);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_rfc3339_utc_with_milliseconds() {
        let text = Timestamp::now().to_string();
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(Timestamp::parse(&text).map(|t| t.to_string()), Ok(text));
    }
}
