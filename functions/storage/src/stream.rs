//! DynamoDB Streams records of user items, both ways: the history worker
//! turns a record into a [`HistoryEvent`]; the memory store's change feed
//! (and the local API's stream poller) build records of the same shape.

use aws_lambda_events::event::dynamodb::{StreamRecord, StreamViewType};
use serde::{Deserialize, Serialize};

pub use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
pub use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::item::{TOMBSTONE_SORT_KEY, TombstoneItem, USER_PREFIX, USER_SORT_KEY, UserItem};
use common::domain::{ChangeKind, HistoryEvent, User, UserField, UserId, WriteContext};

/// A record that cannot be turned into a history event (a poison record).
#[derive(Debug, thiserror::Error)]
#[error("invalid stream record: {0}")]
pub struct InvalidRecord(String);

#[derive(Serialize, Deserialize)]
struct Keys {
    pk: String,
    sk: String,
}

fn user_image(image: &serde_dynamo::Item, which: &str) -> Result<User, InvalidRecord> {
    let item: UserItem = serde_dynamo::from_item(image.clone())
        .map_err(|e| InvalidRecord(format!("{which} image is not a user: {e}")))?;
    User::try_from(item).map_err(|e| InvalidRecord(format!("{which} image: {e}")))
}

/// The history event a stream record stands for; `None` for records that
/// stand for none: items other than users and tombstones (email claims,
/// history events, idempotency keys), a user item's removal (its tombstone,
/// written in the same transaction, says who deleted it), a tombstone's
/// expiry.
pub fn history_event(record: &EventRecord) -> Result<Option<HistoryEvent>, InvalidRecord> {
    let keys: Keys = serde_dynamo::from_item(record.change.keys.clone())
        .map_err(|e| InvalidRecord(format!("keys: {e}")))?;
    if !keys.pk.starts_with(USER_PREFIX) {
        return Ok(None);
    }
    let new = || user_image(&record.change.new_image, "new");
    let old = || user_image(&record.change.old_image, "old");
    let event = match (keys.sk.as_str(), record.event_name.as_str()) {
        (USER_SORT_KEY, "INSERT") => HistoryEvent::created(&new()?),
        (USER_SORT_KEY, "MODIFY") => {
            let (before, after) = (old()?, new()?);
            HistoryEvent {
                user_id: after.id,
                kind: ChangeKind::Updated,
                version: after.version,
                changed_fields: UserField::ALL
                    .iter()
                    .filter(|field| field.value(&before) != field.value(&after))
                    .map(|field| field.name().to_owned())
                    .collect(),
                occurred_at: after.updated_at,
                actor: after.changed_by,
            }
        }
        (TOMBSTONE_SORT_KEY, "INSERT") => {
            let tombstone: TombstoneItem = serde_dynamo::from_item(record.change.new_image.clone())
                .map_err(|e| InvalidRecord(format!("tombstone: {e}")))?;
            HistoryEvent::try_from(tombstone)
                .map_err(|e| InvalidRecord(format!("tombstone: {e}")))?
        }
        (USER_SORT_KEY | TOMBSTONE_SORT_KEY, "REMOVE") => return Ok(None),
        (USER_SORT_KEY | TOMBSTONE_SORT_KEY, other) => {
            return Err(InvalidRecord(format!("unexpected event name {other:?}")));
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// The record DynamoDB Streams (`NEW_AND_OLD_IMAGES`) produces when a user
/// item goes from `old` to `new` (`None`: absent).
pub fn user_record(old: Option<&User>, new: Option<&User>, sequence_number: u64) -> EventRecord {
    let image = |user: Option<&User>| {
        user.and_then(|u| serde_dynamo::to_item(UserItem::from(u)).ok())
            .unwrap_or_default()
    };
    let id: Option<UserId> = new.or(old).map(|u| u.id);
    let keys = Keys {
        pk: id
            .map(|id| format!("{USER_PREFIX}{id}"))
            .unwrap_or_default(),
        sk: USER_SORT_KEY.to_owned(),
    };
    let event_name = match (old, new) {
        (None, _) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        (Some(_), None) => "REMOVE",
    };
    record(
        event_name,
        serde_dynamo::to_item(keys).unwrap_or_default(),
        image(new),
        image(old),
        format!("{sequence_number:021}"),
        chrono::Utc::now(),
    )
}

/// The record of the tombstone the deletion `write` of `deleted` writes.
pub fn tombstone_record(deleted: &User, write: &WriteContext, sequence_number: u64) -> EventRecord {
    let tombstone = TombstoneItem::new(deleted, write);
    let keys = Keys {
        pk: tombstone.pk.clone(),
        sk: tombstone.sk.clone(),
    };
    record(
        "INSERT",
        serde_dynamo::to_item(keys).unwrap_or_default(),
        serde_dynamo::to_item(tombstone).unwrap_or_default(),
        serde_dynamo::Item::default(),
        format!("{sequence_number:021}"),
        chrono::Utc::now(),
    )
}

/// A stream record of a `NEW_AND_OLD_IMAGES` stream, as Lambda delivers it.
pub fn record(
    event_name: &str,
    keys: serde_dynamo::Item,
    new_image: serde_dynamo::Item,
    old_image: serde_dynamo::Item,
    sequence_number: String,
    at: chrono::DateTime<chrono::Utc>,
) -> EventRecord {
    let mut change = StreamRecord::default();
    change.keys = keys;
    change.new_image = new_image;
    change.old_image = old_image;
    change.sequence_number = Some(sequence_number);
    change.stream_view_type = Some(StreamViewType::NewAndOldImages);
    change.approximate_creation_date_time = at;
    let mut record = EventRecord::default();
    record.aws_region = "local".to_owned();
    record.event_id = ulid::Ulid::new().to_string();
    record.event_name = event_name.to_owned();
    record.event_source = Some("aws:dynamodb".to_owned());
    record.event_version = Some("1.1".to_owned());
    record.change = change;
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::domain::{Email, Precondition, Timestamp, UserChanges, UserName, Version};

    fn ada() -> User {
        User::new(
            Email::parse("ada@example.com").unwrap(),
            UserName::parse("Ada").unwrap(),
            Timestamp::now(),
        )
    }

    #[test]
    fn a_user_record_round_trips_into_the_matching_history_event() {
        let user = ada();
        let renamed = user.apply(
            &UserChanges {
                email: None,
                name: Some(UserName::parse("Countess").unwrap()),
            },
            &WriteContext::new(user.id, Precondition::NONE, Some("editor-app")),
        );
        let created = history_event(&user_record(None, Some(&user), 1))
            .unwrap()
            .unwrap();
        assert_eq!(
            (created.kind, created.version),
            (ChangeKind::Created, Version::FIRST)
        );
        let updated = history_event(&user_record(Some(&user), Some(&renamed), 2))
            .unwrap()
            .unwrap();
        assert_eq!(updated.kind, ChangeKind::Updated);
        assert_eq!(updated.changed_fields, ["name"]);
        assert_eq!(updated.version, Version::new(2));
        assert_eq!(updated.actor.as_deref(), Some("editor-app"));
        assert_eq!(
            history_event(&user_record(Some(&renamed), None, 3)).unwrap(),
            None,
            "the removal itself is not the history: its tombstone is"
        );
        let deleted = history_event(&tombstone_record(
            &renamed,
            &WriteContext::new(renamed.id, Precondition::NONE, Some("admin-app")),
            4,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (deleted.kind, deleted.version),
            (ChangeKind::Deleted, Version::new(3))
        );
        assert_eq!(deleted.actor.as_deref(), Some("admin-app"));
    }

    #[test]
    fn records_of_other_items_are_not_history() {
        let mut record = user_record(None, Some(&ada()), 1);
        record.change.keys = serde_dynamo::to_item(Keys {
            pk: "EMAIL#ada@example.com".into(),
            sk: "EMAIL".into(),
        })
        .unwrap();
        assert!(history_event(&record).unwrap().is_none());
    }

    #[test]
    fn a_user_record_with_a_broken_image_is_invalid() {
        let mut record = user_record(None, Some(&ada()), 1);
        record.change.new_image = serde_dynamo::Item::default();
        assert!(history_event(&record).is_err());
    }
}
