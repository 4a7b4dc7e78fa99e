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

/// How a timestamp is shown: always three fraction digits, so stored and
/// returned times have one width.
const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

impl fmt::Display for Timestamp {
    /// Years 0 to 9999 (every time `parse` accepts, and every time since
    /// the epoch) are written digit by digit into a fixed buffer: each user
    /// shown has two timestamps, and the `time` crate's formatter, which
    /// interprets [`FORMAT`] item by item into a new `String`, was the
    /// largest part of a response's serialisation. Other years take that
    /// formatter; a property test holds the two equal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = self.0;
        let Ok(year @ 0..=9999) = u32::try_from(time.year()) else {
            let text = time.format(FORMAT).map_err(|_| fmt::Error)?;
            return f.write_str(&text);
        };
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let fields = [
            (0, 4, year),
            (5, 2, u32::from(u8::from(time.month()))),
            (8, 2, u32::from(time.day())),
            (11, 2, u32::from(time.hour())),
            (14, 2, u32::from(time.minute())),
            (17, 2, u32::from(time.second())),
            (20, 3, u32::from(time.millisecond())),
        ];
        for (at, width, mut value) in fields {
            for digit in text[at..at + width].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(10_000))]

        /// The digit-by-digit path against the `time` crate's formatter,
        /// over every millisecond `time` can represent.
        #[test]
        fn shown_as_the_time_crate_formats_it(
            millis in -377_705_116_800_000_i64..=253_402_300_799_999,
        ) {
            let timestamp = Timestamp::from_unix_millis(millis).unwrap();
            proptest::prop_assert_eq!(timestamp.to_string(), timestamp.0.format(FORMAT).unwrap());
        }
    }

    #[test]
    fn the_first_and_last_years_of_each_path_are_shown_in_full() {
        for (millis, shown) in [
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
            (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (0, "1970-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(
                Timestamp::from_unix_millis(millis).unwrap().to_string(),
                shown
            );
        }
    }

    #[test]
    fn timestamps_print_rfc3339_utc_with_milliseconds() {
        let text = Timestamp::now().to_string();
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(Timestamp::parse(&text).map(|t| t.to_string()), Ok(text));
    }
}
