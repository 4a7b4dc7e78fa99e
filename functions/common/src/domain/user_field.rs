//! [`UserField`]: the one list of the fields a client sets on a user.

use strum::VariantArray;

use super::User;

/// A field of a user that a client sets. The request bodies accept these
/// fields and no others, and a history event names the ones a change set;
/// adding a field starts here (every `match` on it has no catch-all arm, so
/// the compiler names each place that must handle a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, VariantArray)]
pub enum UserField {
    /// The email address.
    Email,
    /// The display name.
    Name,
}

impl UserField {
    /// Every field a client sets, in the order errors and history name them
    /// (the order of declaration: derived, so a new variant is in it).
    pub const ALL: &'static [Self] = Self::VARIANTS;

    /// The field's name in request and response bodies, in the table and
    /// in history events.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Name => "name",
        }
    }

    /// Whether its values are personal data: never logged (the log-leak
    /// scan, `tests/api/logs.rs`, looks for each such value).
    pub fn is_personal(self) -> bool {
        match self {
            Self::Email | Self::Name => true,
        }
    }

    /// The field's value in `user`.
    pub fn value(self, user: &User) -> &str {
        match self {
            Self::Email => user.email.as_str(),
            Self::Name => user.name.as_str(),
        }
    }
}
