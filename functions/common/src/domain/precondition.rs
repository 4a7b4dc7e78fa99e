//! [`Precondition`]: what a conditional write requires of the stored version.

use super::Version;

/// The versions a conditional header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versions {
    /// `*`: whatever version is stored.
    Any,
    /// These versions (an empty list names none).
    OneOf(Vec<Version>),
}

impl Versions {
    /// Whether `version` is among these.
    pub fn contains(&self, version: Version) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(versions) => versions.contains(&version),
        }
    }
}

/// What a conditional write requires of the stored version (RFC 9110
/// §13.1: `If-Match` and `If-None-Match`), beyond the user existing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    /// `If-Match`: the stored version must be one of these (`None`: no
    /// requirement).
    pub if_match: Option<Versions>,
    /// `If-None-Match`: the stored version must not be one of these
    /// (`Any`: no stored version passes).
    pub if_none_match: Option<Versions>,
}

impl Precondition {
    /// No requirement: the write applies to whatever version is stored.
    pub const NONE: Self = Self {
        if_match: None,
        if_none_match: None,
    };

    /// The stored version must be one of `versions` (`If-Match`).
    pub fn one_of(versions: Vec<Version>) -> Self {
        Self {
            if_match: Some(Versions::OneOf(versions)),
            if_none_match: None,
        }
    }

    /// Whether a stored user at `version` satisfies the precondition.
    pub fn admits(&self, version: Version) -> bool {
        self.if_match
            .as_ref()
            .is_none_or(|set| set.contains(version))
            && !self
                .if_none_match
                .as_ref()
                .is_some_and(|set| set.contains(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_precondition_admits_a_version_if_match_names_and_if_none_match_does_not() {
        let v = Version::new;
        let cases = [
            (Precondition::NONE, 3, true, "no headers"),
            (
                Precondition::one_of(vec![v(3)]),
                3,
                true,
                "If-Match names it",
            ),
            (
                Precondition::one_of(vec![v(2)]),
                3,
                false,
                "If-Match names another",
            ),
            (
                Precondition::one_of(vec![]),
                3,
                false,
                "If-Match names none",
            ),
            (
                Precondition {
                    if_match: None,
                    if_none_match: Some(Versions::Any),
                },
                3,
                false,
                "If-None-Match: * on an existing user",
            ),
            (
                Precondition {
                    if_match: None,
                    if_none_match: Some(Versions::OneOf(vec![v(3)])),
                },
                3,
                false,
                "If-None-Match names it",
            ),
            (
                Precondition {
                    if_match: Some(Versions::Any),
                    if_none_match: Some(Versions::OneOf(vec![v(2)])),
                },
                3,
                true,
                "If-Match: * and If-None-Match names another",
            ),
        ];
        for (precondition, version, admits, why) in cases {
            assert_eq!(precondition.admits(v(version)), admits, "{why}");
        }
    }
}
