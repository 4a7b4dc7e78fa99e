//! [`HistoryEvent`]: one entry of a user's history, and its [`ChangeKind`].

use super::{InvalidValue, Timestamp, User, UserField, UserId, Version};

/// What kind of change a history event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The user was created.
    Created,
    /// Some fields changed.
    Updated,
    /// The user was deleted.
    Deleted,
}

impl ChangeKind {
    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "created" => Ok(Self::Created),
            "updated" => Ok(Self::Updated),
            "deleted" => Ok(Self::Deleted),
            _ => Err(InvalidValue("must be created, updated or deleted")),
        }
    }
}

/// One entry of a user's history. It names fields, never their values, so
/// it holds no personal data and outlives the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// Whose history.
    pub user_id: UserId,
    /// What happened.
    pub kind: ChangeKind,
    /// The version the change produced; a deletion counts as one more
    /// version, so versions order a user's history without gaps or ties.
    pub version: Version,
    /// The names of the fields the change set (`email`, `name`).
    pub changed_fields: Vec<String>,
    /// When the change was made.
    pub occurred_at: Timestamp,
    /// Who made it (see [`User::changed_by`]).
    pub actor: Option<String>,
}

impl HistoryEvent {
    /// The event of `user`'s creation: every field set, by whoever created it.
    pub fn created(user: &User) -> Self {
        Self {
            user_id: user.id,
            kind: ChangeKind::Created,
            version: user.version,
            changed_fields: UserField::ALL
                .iter()
                .map(|field| field.name().to_owned())
                .collect(),
            occurred_at: user.updated_at,
            actor: user.changed_by.clone(),
        }
    }
}
