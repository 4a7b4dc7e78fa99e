//! The in-memory store: the embedded default of the local API and the store
//! of handler unit tests. One lock makes every call atomic, as DynamoDB's
//! transactions make the DynamoDB store's calls.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Page, StoreError, UserStore};
use crate::domain::{Email, PageSize, Precondition, Timestamp, User, UserChanges, UserId};

/// Users kept in process memory; lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<UserId, User>,
    emails: HashMap<Email, UserId>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-changed:
        // every change below is made after all checks pass.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn current(&self, id: UserId, precondition: &Precondition) -> Result<&User, StoreError> {
        let user = self.users.get(&id).ok_or(StoreError::NotFound)?;
        if precondition.admits(user.version) {
            Ok(user)
        } else {
            Err(StoreError::PreconditionFailed)
        }
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create(&self, user: &User) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.emails.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        state.emails.insert(user.email.clone(), user.id);
        state.users.insert(user.id, user.clone());
        Ok(())
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

    async fn list(&self, after: Option<UserId>, size: PageSize) -> Result<Page<User>, StoreError> {
        let state = self.state();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut items: Vec<User> = state
            .users
            .range((start, Bound::Unbounded))
            .take(size.get() + 1)
            .map(|(_, user)| user.clone())
            .collect();
        let more = items.len() > size.get();
        items.truncate(size.get());
        let last_if_more = if more {
            items.last().map(|u| u.id)
        } else {
            None
        };
        Ok(Page {
            items,
            last_if_more,
        })
    }

    async fn update(
        &self,
        id: UserId,
        changes: &UserChanges,
        precondition: &Precondition,
        now: Timestamp,
    ) -> Result<User, StoreError> {
        let mut state = self.state();
        let current = state.current(id, precondition)?;
        let old_email = current.email.clone();
        let updated = current.apply(changes, now);
        if updated.email != old_email {
            if state.emails.contains_key(&updated.email) {
                return Err(StoreError::EmailTaken);
            }
            state.emails.remove(&old_email);
            state.emails.insert(updated.email.clone(), id);
        }
        state.users.insert(id, updated.clone());
        Ok(updated)
    }

    async fn delete(&self, id: UserId, precondition: &Precondition) -> Result<(), StoreError> {
        let mut state = self.state();
        let email = state.current(id, precondition)?.email.clone();
        state.emails.remove(&email);
        state.users.remove(&id);
        Ok(())
    }
}
