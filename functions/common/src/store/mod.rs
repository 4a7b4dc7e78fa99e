//! The storage seam: one trait named by intent, with a DynamoDB and an
//! in-memory implementation that keep the same semantics.

mod dynamodb;
mod memory;

pub use dynamodb::{BY_CREATION_INDEX, BY_EMAIL_INDEX, DynamoStore};
pub use memory::MemoryStore;

use async_trait::async_trait;

use crate::domain::{Email, PageSize, Precondition, Timestamp, User, UserChanges, UserId};

/// A boxed error cause, kept for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No user has this id.
    #[error("no such user")]
    NotFound,
    /// Another user holds the email address.
    #[error("email address taken")]
    EmailTaken,
    /// The stored version does not satisfy the precondition.
    #[error("precondition failed")]
    PreconditionFailed,
    /// Storage is throttled, unreachable or kept conflicting; retry later.
    #[error("storage unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else.
    #[error("storage failed")]
    Internal(#[source] Cause),
}

/// One page of a list, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The id of the last item when more items follow it.
    pub last_if_more: Option<UserId>,
}

/// Where users live. Conflicts and preconditions are decided by the store
/// itself (conditional writes), never by a read before a write in a handler.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user and claims its email address, atomically.
    /// Fails with [`StoreError::EmailTaken`] if the address is claimed.
    async fn create(&self, user: &User) -> Result<(), StoreError>;

    /// The user with this id, if any (read-after-write consistent).
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The user holding this email address, if any.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Users in creation order, starting after `after`.
    async fn list(&self, after: Option<UserId>, size: PageSize) -> Result<Page<User>, StoreError>;

    /// Applies `changes` at `now` if the stored version satisfies
    /// `precondition`, bumping the version; moves the email claim atomically.
    async fn update(
        &self,
        id: UserId,
        changes: &UserChanges,
        precondition: &Precondition,
        now: Timestamp,
    ) -> Result<User, StoreError>;

    /// Deletes the user and frees its email address, atomically, if the
    /// stored version satisfies `precondition`.
    async fn delete(&self, id: UserId, precondition: &Precondition) -> Result<(), StoreError>;
}
