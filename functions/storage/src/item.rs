//! Items as stored in the table, and their conversions to domain types.
//! The DynamoDB store writes them; the stream worker reads them back from
//! stream images; the memory store's change feed produces the same images.

use serde::{Deserialize, Serialize};

use super::StoreError;
use common::domain::{
    ChangeKind, Email, HistoryEvent, Timestamp, User, UserId, UserName, Version, WriteContext,
};
use common::wire::UserBody;

pub(crate) const USER_PREFIX: &str = "USER#";
pub(crate) const USER_SORT_KEY: &str = "PROFILE";
pub(crate) const EMAIL_PREFIX: &str = "EMAIL#";
pub(crate) const EMAIL_SORT_KEY: &str = "EMAIL";
pub(crate) const IDEMPOTENCY_PREFIX: &str = "IDEMPOTENCY#";
/// Prefix of an idempotency record's sort key, before the caller it belongs to.
pub(crate) const CALLER_PREFIX: &str = "CALLER#";
pub(crate) const EVENT_PREFIX: &str = "EVENT#";
pub(crate) const TOMBSTONE_SORT_KEY: &str = "DELETED";
/// How long a tombstone stays: long enough for the stream worker to read it
/// (stream records live 24 hours), then TTL removes it.
pub(crate) const TOMBSTONE_LIFETIME: time::Duration = time::Duration::days(2);
pub(crate) const ALL_USERS: &str = "USERS";

/// The partition key of a user and of its history.
pub(crate) fn user_pk(id: UserId) -> String {
    format!("{USER_PREFIX}{id}")
}

/// The sort key of a history event: versions zero-padded, so they sort as numbers.
pub(crate) fn event_sk(version: Version) -> String {
    format!("{EVENT_PREFIX}{:020}", version.get())
}

fn corrupt(what: &'static str) -> impl Fn(common::domain::InvalidValue) -> StoreError {
    move |_| StoreError::Internal(format!("stored item has an invalid {what}").into())
}

/// A user. The index attributes live only on user items, so both indexes
/// are sparse.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    pub(crate) gsi1pk: String,
    pub(crate) gsi1sk: String,
    /// The attributes the API returns, stored as it returns them.
    #[serde(flatten)]
    pub(crate) user: UserBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) changed_by: Option<String>,
    /// The token of the name-only `UpdateItem` that last wrote the item, if
    /// that was its last write: how a retried attempt recognises its own
    /// earlier write (see `dynamodb::updates`). Any other write replaces
    /// the whole item and so drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) write_id: Option<String>,
}

impl From<&User> for UserItem {
    fn from(user: &User) -> Self {
        Self {
            pk: user_pk(user.id),
            sk: USER_SORT_KEY.to_owned(),
            gsi1pk: ALL_USERS.to_owned(),
            gsi1sk: user.id.to_string(),
            user: UserBody::from(user),
            changed_by: user.changed_by.clone(),
            write_id: None,
        }
    }
}

impl TryFrom<UserItem> for User {
    type Error = StoreError;

    fn try_from(
        UserItem {
            user: item,
            changed_by,
            ..
        }: UserItem,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            id: UserId::parse(&item.id).map_err(corrupt("id"))?,
            // As stored, not re-validated: an item written under earlier
            // rules must still read (no 500 on GET, no poison stream record).
            email: Email::stored(item.email),
            name: UserName::stored(item.name),
            created_at: Timestamp::parse(&item.created_at).map_err(corrupt("createdAt"))?,
            updated_at: Timestamp::parse(&item.updated_at).map_err(corrupt("updatedAt"))?,
            version: Version::new(item.version),
            changed_by,
        })
    }
}

/// Marks a deleted user, for the history: who deleted it and when. Written
/// in the delete's transaction; TTL removes it after the stream has carried it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TombstoneItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    pub(crate) user_id: String,
    /// The version the deletion produces: the deleted version plus one.
    pub(crate) version: u64,
    pub(crate) deleted_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) changed_by: Option<String>,
    pub(crate) expires_at: i64,
}

impl TombstoneItem {
    pub(crate) fn new(deleted: &User, write: &WriteContext) -> Self {
        Self {
            pk: user_pk(deleted.id),
            sk: TOMBSTONE_SORT_KEY.to_owned(),
            user_id: deleted.id.to_string(),
            version: deleted.version.next().get(),
            deleted_at: write.now.to_string(),
            changed_by: write.actor.clone(),
            expires_at: write.now.plus(TOMBSTONE_LIFETIME).unix_seconds(),
        }
    }
}

impl TryFrom<TombstoneItem> for HistoryEvent {
    type Error = StoreError;

    fn try_from(item: TombstoneItem) -> Result<Self, StoreError> {
        Ok(Self {
            user_id: UserId::parse(&item.user_id).map_err(corrupt("userId"))?,
            kind: ChangeKind::Deleted,
            version: Version::new(item.version),
            changed_fields: Vec::new(),
            occurred_at: Timestamp::parse(&item.deleted_at).map_err(corrupt("deletedAt"))?,
            actor: item.changed_by,
        })
    }
}

/// Claims an email address for one user.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmailClaimItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    pub(crate) user_id: String,
}

impl EmailClaimItem {
    pub(crate) fn new(email: &Email, id: UserId) -> Self {
        Self {
            pk: format!("{EMAIL_PREFIX}{email}"),
            sk: EMAIL_SORT_KEY.to_owned(),
            user_id: id.to_string(),
        }
    }
}

/// Remembers a caller's keyed create until `expiresAt` (the table's TTL
/// attribute, epoch seconds): the request's fingerprint and the id of the
/// user it created (a record exists only for a create that succeeded).
/// It holds no email address and no name, so deleting the user leaves no
/// personal data behind in it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdempotencyItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    pub(crate) fingerprint: String,
    pub(crate) expires_at: i64,
    pub(crate) user_id: String,
}

/// One entry of a user's history, under the user's partition key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventItem {
    pub(crate) pk: String,
    pub(crate) sk: String,
    pub(crate) user_id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) version: u64,
    pub(crate) changed_fields: Vec<String>,
    pub(crate) occurred_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) actor: Option<String>,
}

impl From<&HistoryEvent> for EventItem {
    fn from(event: &HistoryEvent) -> Self {
        Self {
            pk: user_pk(event.user_id),
            sk: event_sk(event.version),
            user_id: event.user_id.to_string(),
            kind: event.kind.as_str().to_owned(),
            version: event.version.get(),
            changed_fields: event.changed_fields.clone(),
            occurred_at: event.occurred_at.to_string(),
            actor: event.actor.clone(),
        }
    }
}

impl TryFrom<EventItem> for HistoryEvent {
    type Error = StoreError;

    fn try_from(item: EventItem) -> Result<Self, StoreError> {
        Ok(Self {
            user_id: UserId::parse(&item.user_id).map_err(corrupt("userId"))?,
            kind: ChangeKind::parse(&item.kind).map_err(corrupt("type"))?,
            version: Version::new(item.version),
            changed_fields: item.changed_fields,
            occurred_at: Timestamp::parse(&item.occurred_at).map_err(corrupt("occurredAt"))?,
            actor: item.actor,
        })
    }
}

/// The items of a newly created `user` as the DynamoDB store writes them
/// and, with `complete`, its email claim and the "created" event the
/// history worker records: a table seeded without the functions (the
/// benchmarks' large tables) reads as if the API had written it.
#[cfg(feature = "testing")]
pub fn created_items(
    user: &User,
    complete: bool,
) -> Result<
    Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    serde_dynamo::Error,
> {
    let mut items = vec![serde_dynamo::to_item(UserItem::from(user))?];
    if complete {
        items.push(serde_dynamo::to_item(EmailClaimItem::new(
            &user.email,
            user.id,
        ))?);
        items.push(serde_dynamo::to_item(EventItem::from(
            &HistoryEvent::created(user),
        ))?);
    }
    Ok(items)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    #[test]
    fn created_items_read_back_as_the_user_its_claim_and_its_created_event() {
        let user = User::new(
            Email::parse("ada@example.com").unwrap(),
            UserName::parse("Ada").unwrap(),
            Timestamp::now(),
        );
        assert_eq!(created_items(&user, false).unwrap().len(), 1);
        let [stored, claim, event] = created_items(&user, true).unwrap().try_into().unwrap();
        let stored: UserItem = serde_dynamo::from_item(stored).unwrap();
        assert_eq!(User::try_from(stored).unwrap(), user);
        let claim: EmailClaimItem = serde_dynamo::from_item(claim).unwrap();
        assert_eq!(
            (claim.pk, claim.user_id),
            (format!("{EMAIL_PREFIX}{}", user.email), user.id.to_string())
        );
        let event: EventItem = serde_dynamo::from_item(event).unwrap();
        assert_eq!(
            HistoryEvent::try_from(event).unwrap(),
            HistoryEvent::created(&user)
        );
    }
}
