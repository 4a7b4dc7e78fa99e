//! [`UserField`]: the one list of the fields a client sets on a user.

use super::User;

/// A field of a user that a client sets. The request bodies accept these
/// fields and no others, and a history event names the ones a change set;
/// adding a field starts here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserField {
    /// The email address.
    Email,
    /// The display name.
    Name,
}

impl UserField {
    /// Every field a client sets, in the order errors and history name them.
    pub const ALL: [Self; 2] = [Self::Email, Self::Name];

    /// The field's name in request and response bodies, in the table and
    /// in history events.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Name => "name",
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
