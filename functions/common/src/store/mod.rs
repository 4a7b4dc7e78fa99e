//! The storage seam: traits named by intent, each with a DynamoDB and an
//! in-memory implementation that keep the same semantics.

mod dynamodb;
pub(crate) mod item;
mod memory;

pub use dynamodb::{BY_CREATION_INDEX, BY_EMAIL_INDEX, DynamoStore};
#[cfg(feature = "testing")]
pub use item::created_items;
pub use memory::MemoryStore;

use std::borrow::Borrow;

use async_trait::async_trait;

use crate::domain::{
    Email, HistoryEvent, Idempotency, PageRequest, PageSize, Precondition, User, UserChanges,
    UserId, Version, WriteContext,
};

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
    /// The idempotency key was first used with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// A request with the same idempotency key is being processed.
    #[error("request with this idempotency key in flight")]
    IdempotencyKeyInFlight,
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
    /// Whether more items follow the last one.
    pub more: bool,
}

impl<T> Page<T> {
    /// The page from up to `size + 1` items read in order: the extra item
    /// only tells that another page follows, so the last page never comes
    /// with a cursor to an empty page.
    pub(crate) fn from_one_extra(mut items: Vec<T>, size: PageSize) -> Self {
        let more = items.len() > size.get();
        items.truncate(size.get());
        Self { items, more }
    }
}

/// What a create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// It stored the new user.
    New,
    /// The caller used the idempotency key before with the same request:
    /// nothing was stored, and this is the user that request created, as it
    /// is now.
    Replayed(User),
    /// As `Replayed`, but the user that request created has since been
    /// deleted: nothing of it is left to return.
    ReplayedDeleted,
}

/// Where users live. Conflicts and preconditions are decided by the store
/// itself (conditional writes), never by a read before a write in a handler.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user and claims its email address, atomically, with the
    /// idempotency record `key` if the request carries a key.
    /// Fails with [`StoreError::EmailTaken`] if the address is claimed.
    async fn create(&self, user: &User, key: Option<&Idempotency>) -> Result<Created, StoreError>;

    /// The user with this id, if any (read-after-write consistent).
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The user holding this email address, if any.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// A page of users in creation order.
    async fn list(&self, page: PageRequest<UserId>) -> Result<Page<User>, StoreError>;

    /// Applies `changes` to the write's user if its stored version
    /// satisfies the write's precondition, bumping the version; moves the
    /// email claim atomically.
    async fn update(&self, changes: &UserChanges, write: &WriteContext)
    -> Result<User, StoreError>;

    /// Deletes the write's user and frees its email address, atomically,
    /// if its stored version satisfies the write's precondition, leaving a
    /// short-lived tombstone that tells the history who deleted it and when.
    async fn delete(&self, write: &WriteContext) -> Result<(), StoreError>;
}

/// The stored user, if there is one and its version satisfies
/// `precondition`: the one check both stores make before a conditional
/// write (the DynamoDB store then also conditions the write on the version
/// it read).
pub(crate) fn admitted<U: Borrow<User>>(
    stored: Option<U>,
    precondition: &Precondition,
) -> Result<U, StoreError> {
    let user = stored.ok_or(StoreError::NotFound)?;
    if precondition.admits(user.borrow().version) {
        Ok(user)
    } else {
        Err(StoreError::PreconditionFailed)
    }
}

/// Where users' histories live.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Records `event` once: recording the same event again (a stream
    /// record delivered twice) changes nothing and succeeds.
    async fn record(&self, event: &HistoryEvent) -> Result<(), StoreError>;

    /// A page of a user's history, oldest first.
    async fn history(
        &self,
        user: UserId,
        page: PageRequest<Version>,
    ) -> Result<Page<HistoryEvent>, StoreError>;
}

/// Both stores, as one object (the local API serves every function from one).
pub trait Store: UserStore + HistoryStore {}

impl<T: UserStore + HistoryStore> Store for T {}
