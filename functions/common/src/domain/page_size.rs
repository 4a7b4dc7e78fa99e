//! [`PageSize`]: how many items a list request asks for.

use super::InvalidValue;

/// Page size used when a list request names none.
pub const DEFAULT_PAGE_SIZE: u16 = 20;
/// Largest page size a list request may ask for.
pub const MAX_PAGE_SIZE: u16 = 100;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_accepts_only_1_to_100() {
        for ok in ["1", "20", "100"] {
            assert!(PageSize::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "101", "-1", "+5", "1.5", "", "ten", "65536"] {
            assert!(PageSize::parse(bad).is_err(), "{bad}");
        }
    }
}
