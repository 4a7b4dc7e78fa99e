//! The single-item conditional writes: a name change (one `UpdateItem`, no
//! read) and recording a history event once (one `PutItem`).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::keys::{n, s, user_key};
use super::{DynamoStore, classify, from_item, to_item, to_user};
use crate::StoreError;
use crate::item::{EventItem, UserItem};
use common::domain::{HistoryEvent, User, UserName, Versions, WriteContext};

impl DynamoStore {
    /// Changes only the name: one conditional `UpdateItem`, no read. A name
    /// equal to the stored one writes nothing (see [`Unwritten`]).
    pub(super) async fn update_name(
        &self,
        name: &UserName,
        write: &WriteContext,
    ) -> Result<User, StoreError> {
        // UpdateItem has no client request token: when an attempt was
        // applied but its answer lost, the SDK's retry must not apply it
        // again. Each call writes a token of its own, and its condition
        // refuses an item that already carries it. Nothing else (the time,
        // the new name) can tell: a concurrent request may write the same.
        let write_id = ulid::Ulid::new().to_string();
        let set = "SET #name = :name, updatedAt = :now, version = version + :one, writeId = :write";
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(write.id)));
        request = match write.actor() {
            Some(actor) => request
                .update_expression(format!("{set}, changedBy = :by"))
                .expression_attribute_values(":by", s(actor)),
            None => request.update_expression(format!("{set} REMOVE changedBy")),
        };
        let mut clauses = vec![
            "attribute_exists(pk)".to_owned(),
            "NOT (writeId = :write)".to_owned(),
            "#name <> :name".to_owned(),
        ];
        for (versions, excluded, prefix) in [
            (&write.precondition.if_match, false, ":match"),
            (&write.precondition.if_none_match, true, ":nonematch"),
        ] {
            let clause = match versions {
                None => continue,
                // `If-Match: *` asks only that the user exists.
                Some(Versions::Any) if !excluded => continue,
                // `If-None-Match: *`: no stored version passes (every user
                // item has a version).
                Some(Versions::Any) => "attribute_not_exists(version)".to_owned(),
                Some(Versions::OneOf(versions)) => {
                    // No version is 0, so an empty list names none.
                    let numbers = if versions.is_empty() {
                        vec![0]
                    } else {
                        versions.iter().map(|v| v.get()).collect()
                    };
                    let mut names = Vec::with_capacity(numbers.len());
                    for (i, number) in numbers.into_iter().enumerate() {
                        let placeholder = format!("{prefix}{i}");
                        request = request.expression_attribute_values(&placeholder, n(number));
                        names.push(placeholder);
                    }
                    let list = format!("version IN ({})", names.join(", "));
                    if excluded {
                        format!("NOT ({list})")
                    } else {
                        list
                    }
                }
            };
            clauses.push(clause);
        }
        let result = request
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name.as_str()))
            .expression_attribute_values(":now", s(write.now.to_string()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":write", s(&write_id))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .condition_expression(clauses.join(" AND "))
            .send()
            .await;
        match result {
            Ok(output) => to_user(output.attributes.unwrap_or_default()),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let UpdateItemError::ConditionalCheckFailedException(failed) = service.into_err()
                else {
                    return Err(StoreError::NotFound);
                };
                let Some(item) = failed.item else {
                    return Err(StoreError::NotFound);
                };
                let stored: UserItem = from_item(item)?;
                let ours = stored.write_id.as_deref() == Some(write_id.as_str());
                let stored = User::try_from(stored)?;
                match Unwritten::why(ours, &stored, name, write) {
                    Unwritten::AppliedBefore | Unwritten::NoChange => Ok(stored),
                    Unwritten::PreconditionFailed => Err(StoreError::PreconditionFailed),
                }
            }
            Err(error) => Err(classify(error)),
        }
    }

    /// Puts a history event unless it is there already.
    pub(super) async fn record_once(&self, event: &HistoryEvent) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&EventItem::from(event))?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already recorded: the stream delivered this change again.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(error) => Err(classify(error)),
        }
    }
}

/// Why a name change's condition failed on a stored user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unwritten {
    /// An earlier attempt of this very call was applied (its answer lost).
    AppliedBefore,
    /// The stored version fails the precondition.
    PreconditionFailed,
    /// The name is already this one: the patch changes nothing.
    NoChange,
}

impl Unwritten {
    /// Our own earlier write first (the version it bumped may no longer
    /// pass `If-Match`), then the precondition (a 412 even when nothing
    /// would change), then an unchanged name.
    fn why(ours: bool, stored: &User, name: &UserName, write: &WriteContext) -> Self {
        if ours {
            Self::AppliedBefore
        } else if !write.precondition.admits(stored.version) {
            Self::PreconditionFailed
        } else if stored.name == *name {
            Self::NoChange
        } else {
            // Every clause holds on the item returned, yet the condition
            // failed. DynamoDB returns the item the check saw, so this
            // cannot happen; a 412 is the answer that changes nothing.
            Self::PreconditionFailed
        }
    }
}
