//! The in-memory store: the embedded default of the local API and the store
//! of handler unit tests. One lock makes every call atomic, as DynamoDB's
//! transactions make the DynamoDB store's calls. It can publish a change
//! feed of the same records DynamoDB Streams would, for the history worker.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{Created, HistoryStore, StoreError, UserStore, admitted};
use crate::stream;
use common::domain::{
    Email, HistoryEvent, Idempotency, IdempotencyKey, Page, PageRequest, Timestamp, User,
    UserChanges, UserId, Version, WriteContext,
};

/// Users and histories kept in process memory; lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    changes: Option<UnboundedSender<EventRecord>>,
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<UserId, User>,
    emails: HashMap<Email, UserId>,
    /// Each caller's keys, and the id of the user each created.
    keys: HashMap<(String, IdempotencyKey), (Idempotency, UserId)>,
    history: BTreeMap<(UserId, Version), HistoryEvent>,
    sequence: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that sends a stream record for every change of a
    /// user, in commit order, as a table stream with `NEW_AND_OLD_IMAGES`.
    pub fn with_change_feed() -> (Self, UnboundedReceiver<EventRecord>) {
        let (sender, receiver) = unbounded_channel();
        let store = Self {
            state: Mutex::default(),
            changes: Some(sender),
        };
        (store, receiver)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change below is made after all checks pass, so a panic while
        // holding the lock cannot leave the maps half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a change; called with the lock held, so records keep commit order.
    fn publish(&self, state: &mut State, old: Option<&User>, new: Option<&User>) {
        if let Some(changes) = &self.changes {
            state.sequence += 1;
            // A closed feed only means nobody listens any more.
            let _ = changes.send(stream::user_record(old, new, state.sequence));
        }
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create(&self, user: &User, key: Option<&Idempotency>) -> Result<Created, StoreError> {
        let mut state = self.state();
        if let Some(request) = key
            && let Some((first, created)) = state
                .keys
                .get(&(request.caller.clone(), request.key.clone()))
            && first.expires_at > Timestamp::now()
        {
            return if first.fingerprint != request.fingerprint {
                Err(StoreError::IdempotencyKeyReused)
            } else {
                Ok(match state.users.get(created) {
                    Some(user) => Created::Replayed(user.clone()),
                    None => Created::ReplayedDeleted,
                })
            };
        }
        if state.emails.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        state.emails.insert(user.email.clone(), user.id);
        state.users.insert(user.id, user.clone());
        if let Some(idempotency) = key {
            state.keys.insert(
                (idempotency.caller.clone(), idempotency.key.clone()),
                (idempotency.clone(), user.id),
            );
        }
        self.publish(&mut state, None, Some(user));
        Ok(Created::New)
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.get(&id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let state = self.state();
        Ok(state
            .emails
            .get(email)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn list(&self, page: PageRequest<UserId>) -> Result<Page<User>, StoreError> {
        let state = self.state();
        let start = page.after.map_or(Bound::Unbounded, Bound::Excluded);
        let users = state
            .users
            .range((start, Bound::Unbounded))
            .take(page.size.get() + 1)
            .map(|(_, user)| user.clone())
            .collect();
        Ok(Page::from_one_extra(users, page.size))
    }

    async fn update(
        &self,
        changes: &UserChanges,
        write: &WriteContext,
    ) -> Result<User, StoreError> {
        let id = write.id;
        let mut state = self.state();
        let current = admitted(state.users.get(&id), &write.precondition)?.clone();
        if !changes.change(&current) {
            return Ok(current);
        }
        let updated = current.apply(changes, write);
        if updated.email != current.email {
            if state.emails.contains_key(&updated.email) {
                return Err(StoreError::EmailTaken);
            }
            state.emails.remove(&current.email);
            state.emails.insert(updated.email.clone(), id);
        }
        state.users.insert(id, updated.clone());
        self.publish(&mut state, Some(&current), Some(&updated));
        Ok(updated)
    }

    async fn delete(&self, write: &WriteContext) -> Result<(), StoreError> {
        let mut state = self.state();
        let current = admitted(state.users.get(&write.id), &write.precondition)?.clone();
        state.emails.remove(&current.email);
        state.users.remove(&write.id);
        // As in DynamoDB: the user's item goes, a tombstone comes.
        self.publish(&mut state, Some(&current), None);
        if let Some(changes) = &self.changes {
            state.sequence += 1;
            let _ = changes.send(stream::tombstone_record(&current, write, state.sequence));
        }
        Ok(())
    }
}

#[async_trait]
impl HistoryStore for MemoryStore {
    async fn record(&self, event: &HistoryEvent) -> Result<(), StoreError> {
        self.state()
            .history
            .entry((event.user_id, event.version))
            .or_insert_with(|| event.clone());
        Ok(())
    }

    async fn history(
        &self,
        user: UserId,
        page: PageRequest<Version>,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        let state = self.state();
        let start = page
            .after
            .map_or(Bound::Included((user, Version::new(0))), |v| {
                Bound::Excluded((user, v))
            });
        let events = state
            .history
            .range((start, Bound::Unbounded))
            .take_while(|((owner, _), _)| *owner == user)
            .take(page.size.get() + 1)
            .map(|(_, event)| event.clone())
            .collect();
        Ok(Page::from_one_extra(events, page.size))
    }
}

#[cfg(test)]
mod tests {
    use common::domain::UserName;

    use super::*;

    #[tokio::test]
    async fn a_respelling_of_a_claimed_address_is_taken() {
        let cases = [
            ("ADA@EXAMPLE.COM", "upper case"),
            ("ＡＤＡ@example.com", "fullwidth local part"),
            ("ada@ＥＸＡＭＰＬＥ.com", "fullwidth domain"),
            ("ada@EXAMPLE.com", "upper-case domain"),
        ];
        for (respelled, how) in cases {
            let store = MemoryStore::new();
            let email = Email::parse("ada@example.com").expect("address");
            let first = User::new(
                email,
                UserName::parse("Ada").expect("name"),
                Timestamp::now(),
            );
            store.create(&first, None).await.expect("first create");
            let variant = Email::parse(respelled).expect(how);
            let second = User::new(
                variant,
                UserName::parse("Eve").expect("name"),
                Timestamp::now(),
            );
            let taken = store.create(&second, None).await;
            assert!(
                matches!(taken, Err(StoreError::EmailTaken)),
                "{how}: {taken:?}"
            );
        }
    }
}
