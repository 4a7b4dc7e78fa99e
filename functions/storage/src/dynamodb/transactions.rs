//! The multi-item writes: create (user, email claim, idempotency record),
//! an email change (user, old claim, new claim) and delete (user, claim,
//! tombstone), each one `TransactWriteItems` that a concurrent write can
//! only make fail as a whole, its items named by
//! [`Slot`] (see `transaction`).

use std::time::Duration;

use super::keys::{idempotency_address, idempotency_key, user_key};
use super::transaction::{Condition, Slot};
use super::{DynamoStore, classify, from_item};
use crate::item::{EmailClaimItem, IdempotencyItem, TombstoneItem, UserItem};
use crate::{Cause, Created, StoreError, admitted};
use common::domain::{Idempotency, Timestamp, User, UserChanges, UserId, WriteContext};

/// How often a write that lost a race with a concurrent write is retried.
const MAX_ATTEMPTS: u32 = 6;
/// First pause before a retry; it doubles on each attempt, plus jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// The outcome of one attempt at a transaction that may lose a race.
pub(super) enum Attempt<T> {
    Done(T),
    /// A concurrent write got there first; read again and retry.
    Raced,
}

/// Runs `attempt` until it is not raced, backing off between attempts.
pub(super) async fn retry_races<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, StoreError>>,
{
    let mut backoff = FIRST_BACKOFF;
    for _ in 0..MAX_ATTEMPTS {
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Raced => {
                let jitter = Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64));
                tokio::time::sleep(backoff + jitter).await;
                backoff *= 2;
            }
        }
    }
    Err(StoreError::Unavailable(Cause::from(
        "write kept conflicting with concurrent writes",
    )))
}

impl DynamoStore {
    pub(super) async fn try_create(
        &self,
        user: &User,
        key: Option<&Idempotency>,
    ) -> Result<Attempt<Created>, StoreError> {
        let mut transaction = self.transaction();
        transaction.put(Slot::User, &UserItem::from(user), Condition::absent())?;
        let claim = EmailClaimItem::new(&user.email, user.id);
        transaction.put(Slot::NewClaim, &claim, Condition::absent())?;
        if let Some(idempotency) = key {
            let (pk, sk) = idempotency_address(idempotency);
            let record = IdempotencyItem {
                pk,
                sk,
                fingerprint: idempotency.fingerprint.clone(),
                expires_at: idempotency.expires_at.unix_seconds(),
                user_id: user.id.to_string(),
            };
            let live = Condition::absent_or_expired(Timestamp::now());
            transaction.put(Slot::IdempotencyRecord, &record, live)?;
        }
        let Some(cancelled) = self.transact(transaction).await? else {
            return Ok(Attempt::Done(Created::New));
        };
        if let Some(idempotency) = key {
            if cancelled.is(Slot::IdempotencyRecord, "TransactionConflict") {
                return Err(StoreError::IdempotencyKeyInFlight);
            }
            // Cancellation reasons may stop at the first failed item, so a
            // taken email is checked against the key record too: a replay
            // finds its own user holding the address.
            if (cancelled.condition_failed(Slot::IdempotencyRecord)
                || cancelled.condition_failed(Slot::NewClaim))
                && let Some(replay) = self.replay(idempotency).await?
            {
                return replay.map(Attempt::Done);
            }
        }
        if cancelled.condition_failed(Slot::NewClaim) {
            Err(StoreError::EmailTaken)
        } else if cancelled.retryable() || cancelled.condition_failed(Slot::IdempotencyRecord) {
            Ok(Attempt::Raced)
        } else {
            Err(cancelled.unexpected())
        }
    }

    /// The outcome of a request that reuses a stored idempotency key, if
    /// a live record of the key exists.
    async fn replay(
        &self,
        idempotency: &Idempotency,
    ) -> Result<Option<Result<Created, StoreError>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(idempotency)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let record: IdempotencyItem = from_item(item)?;
        if record.expires_at < Timestamp::now().unix_seconds() {
            return Ok(None);
        }
        if record.fingerprint != idempotency.fingerprint {
            return Ok(Some(Err(StoreError::IdempotencyKeyReused)));
        }
        let id = UserId::parse(&record.user_id)
            .map_err(|_| StoreError::Internal("idempotency record has an invalid userId".into()))?;
        Ok(Some(Ok(match self.get_user(id).await? {
            Some(user) => Created::Replayed(user),
            None => Created::ReplayedDeleted,
        })))
    }

    /// The write's user as stored, if it satisfies the write's precondition.
    async fn current(&self, write: &WriteContext) -> Result<User, StoreError> {
        admitted(self.get_user(write.id).await?, &write.precondition)
    }

    /// Changes the email address (and maybe the name): the user item, the
    /// old claim and the new claim change in one transaction, conditioned on
    /// the version read just before.
    pub(super) async fn try_update_with_email(
        &self,
        changes: &UserChanges,
        write: &WriteContext,
    ) -> Result<Attempt<User>, StoreError> {
        let (id, current) = (write.id, self.current(write).await?);
        if !changes.change(&current) {
            return Ok(Attempt::Done(current));
        }
        let updated = current.apply(changes, write);
        let mut transaction = self.transaction();
        let user = UserItem::from(&updated);
        transaction.put(Slot::User, &user, Condition::at(current.version))?;
        if updated.email != current.email {
            transaction.free_claim(&current.email, id)?;
            let claim = EmailClaimItem::new(&updated.email, id);
            transaction.put(Slot::NewClaim, &claim, Condition::absent())?;
        }
        // A concurrent change of the same user is retried before a taken
        // address is believed: the concurrent change may be the one that
        // claimed it, for this very user.
        match self.transact(transaction).await? {
            None => Ok(Attempt::Done(updated)),
            Some(c) if c.condition_failed(Slot::User) || c.retryable() => Ok(Attempt::Raced),
            Some(c) if c.condition_failed(Slot::NewClaim) => Err(StoreError::EmailTaken),
            Some(c) => Err(c.unexpected()),
        }
    }

    /// Deletes the user and its claim, and leaves its tombstone.
    pub(super) async fn try_delete(&self, write: &WriteContext) -> Result<Attempt<()>, StoreError> {
        let (id, current) = (write.id, self.current(write).await?);
        let mut transaction = self.transaction();
        transaction.delete(Slot::User, user_key(id), Condition::at(current.version))?;
        transaction.free_claim(&current.email, id)?;
        let tombstone = TombstoneItem::new(&current, write);
        transaction.put(Slot::Tombstone, &tombstone, Condition::absent())?;
        match self.transact(transaction).await? {
            None => Ok(Attempt::Done(())),
            Some(c) if c.condition_failed(Slot::User) || c.retryable() => Ok(Attempt::Raced),
            Some(c) => Err(c.unexpected()),
        }
    }
}
