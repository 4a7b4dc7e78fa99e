//! [`Version`]: a user's version, which is also its entity tag.

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
