//! Where the users API keeps its data: the store traits named by intent
//! (`UserStore`, `HistoryStore`), each with a DynamoDB and an in-memory
//! implementation that keep the same semantics; the items as the table
//! holds them; the stream records the history worker reads; the SDK's
//! configuration; and the init every function's `main` runs, which builds
//! the DynamoDB store once ([`lambda`]).
//!
//! AWS permissions: `dynamodb:DescribeEndpoints` at init (the connection
//! opened early), then the actions of the calls a handler makes: `GetItem`,
//! `Query`, `PutItem`, `UpdateItem`, and `TransactWriteItems`, which DynamoDB
//! authorises item by item with each item's own action (`PutItem`,
//! `UpdateItem`, `DeleteItem`). template.yaml grants each function only the
//! actions of its own handler.
//!
//! A store's errors become the API's in one place (`From<StoreError> for
//! ApiError`, below), so a handler's `?` turns a conflict into its 409.

pub mod config;
mod dynamodb;
pub(crate) mod item;
pub mod lambda;
mod memory;
pub mod stream;

pub use dynamodb::{BY_CREATION_INDEX, BY_EMAIL_INDEX, DynamoStore};
#[cfg(feature = "testing")]
pub use item::created_items;
pub use memory::MemoryStore;

use std::borrow::Borrow;

use async_trait::async_trait;
use common::ApiError;
use common::domain::{
    Email, HistoryEvent, Idempotency, Page, PageRequest, Precondition, User, UserChanges, UserId,
    Version, WriteContext,
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

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::EmailTaken => Self::EmailTaken,
            StoreError::PreconditionFailed => Self::PreconditionFailed,
            StoreError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            StoreError::IdempotencyKeyInFlight => Self::IdempotencyKeyInFlight,
            StoreError::Unavailable(source) => Self::Unavailable(source),
            StoreError::Internal(source) => Self::Internal(source),
        }
    }
}
