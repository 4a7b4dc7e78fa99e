//! [`WriteContext`]: what travels with every change of a stored user.

use super::{Precondition, Timestamp, UserId};

/// One change of a stored user, apart from what changes: which user, what
/// its stored version must be, when the change is made and who makes it.
/// The four travel together from the request to the stored item, its
/// history and its tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteContext {
    /// The user changed.
    pub id: UserId,
    /// What the stored version must satisfy (`If-Match`).
    pub precondition: Precondition,
    /// When the change is made.
    pub now: Timestamp,
    /// Who makes it (see [`super::User::changed_by`]).
    pub actor: Option<String>,
}

impl WriteContext {
    /// A change of user `id` made now by `actor`, if the stored version
    /// satisfies `precondition`.
    pub fn new(id: UserId, precondition: Precondition, actor: Option<&str>) -> Self {
        Self {
            id,
            precondition,
            now: Timestamp::now(),
            actor: actor.map(str::to_owned),
        }
    }

    /// Who makes the change.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }
}
