//! [`Precondition`]: what a conditional write requires of the stored version.

use super::Version;

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
