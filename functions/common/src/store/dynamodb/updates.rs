//! The single-item conditional writes: a name change (one `UpdateItem`, no
//! read) and recording a history event once (one `PutItem`).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::keys::{n, s, user_key};
use super::{DynamoStore, classify, to_item, to_user};
use crate::domain::{HistoryEvent, Precondition, User, UserName, WriteContext};
use crate::store::StoreError;
use crate::store::item::EventItem;

impl DynamoStore {
    /// Changes only the name: one conditional `UpdateItem`, no read.
    pub(super) async fn update_name(
        &self,
        name: &UserName,
        write: &WriteContext,
    ) -> Result<User, StoreError> {
        let set = "SET #name = :name, updatedAt = :now, version = version + :one";
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
        let mut request = request
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name.as_str()))
            .expression_attribute_values(":now", s(write.now.to_string()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        // UpdateItem has no client request token: when an attempt was
        // applied but its answer lost, the SDK's retry must not apply it
        // again. The change's own mark (its time to the millisecond and the
        // new name) tells the retry it is already there.
        let not_applied = "NOT (updatedAt = :now AND #name = :name)";
        let condition = match &write.precondition {
            Precondition::None => format!("attribute_exists(pk) AND {not_applied}"),
            Precondition::OneOf(versions) => {
                let mut names = Vec::with_capacity(versions.len().max(1));
                // No version is 0, so an empty list becomes a condition that never holds.
                let numbers = if versions.is_empty() {
                    vec![0]
                } else {
                    versions.iter().map(|v| v.get()).collect()
                };
                for (i, number) in numbers.into_iter().enumerate() {
                    let name = format!(":v{i}");
                    request = request.expression_attribute_values(&name, n(number));
                    names.push(name);
                }
                format!(
                    "attribute_exists(pk) AND version IN ({}) AND {not_applied}",
                    names.join(", ")
                )
            }
        };
        match request.condition_expression(condition).send().await {
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
                let stored = to_user(item)?;
                if stored.updated_at == write.now && stored.name == *name {
                    Ok(stored)
                } else {
                    Err(StoreError::PreconditionFailed)
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
