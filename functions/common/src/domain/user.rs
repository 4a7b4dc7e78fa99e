//! [`User`]: a stored user, and [`UserChanges`], a validated partial update.

use super::{Email, Timestamp, UserId, UserName, Version, WriteContext};

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

    /// This user with `changes` applied as `write` says (when, by whom),
    /// one version later.
    pub fn apply(&self, changes: &UserChanges, write: &WriteContext) -> Self {
        // Destructured without `..`: a new field is a compile error here.
        let UserChanges { email, name } = changes;
        Self {
            email: email.clone().unwrap_or_else(|| self.email.clone()),
            name: name.clone().unwrap_or_else(|| self.name.clone()),
            updated_at: write.now,
            version: self.version.next(),
            changed_by: write.actor.clone(),
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

impl UserChanges {
    /// Whether applying these changes to `user` would change any field: a
    /// patch that changes nothing is not a write (no new version, no
    /// history event).
    pub fn change(&self, user: &User) -> bool {
        // Destructured without `..`: a new field is a compile error here.
        let Self { email, name } = self;
        email.as_ref().is_some_and(|email| *email != user.email)
            || name.as_ref().is_some_and(|name| *name != user.name)
    }
}
