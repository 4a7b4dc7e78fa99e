//! One transaction with named slots. DynamoDB says why a cancelled
//! transaction failed item by item, in the order the items were sent. Each
//! item is therefore added under the [`Slot`] it fills, and the reasons are
//! read back by slot: the reading stays right when an item is added,
//! dropped (no idempotency record) or moved.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::Serialize;

use super::keys::{Item, claim_key, n, s, values};
use super::{DynamoStore, classify, to_item};
use crate::StoreError;
use common::domain::{Email, Timestamp, UserId, Version};

/// The part an item plays in a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// The user's own item.
    User,
    /// The claim of the address the user takes.
    NewClaim,
    /// The claim of the address the user gives up.
    OldClaim,
    /// The caller's idempotency record of a keyed create.
    IdempotencyRecord,
    /// The deleted user's tombstone.
    Tombstone,
}

/// A condition expression and the values it names.
pub(super) struct Condition {
    expression: &'static str,
    values: Item,
}

impl Condition {
    /// No item has the key yet.
    pub(super) fn absent() -> Self {
        Self {
            expression: "attribute_not_exists(pk)",
            values: Item::new(),
        }
    }

    /// The stored item is at `version`.
    pub(super) fn at(version: Version) -> Self {
        Self {
            expression: "version = :expected",
            values: values([(":expected", n(version.get()))]),
        }
    }

    /// The email claim belongs to `id`.
    pub(super) fn held_by(id: UserId) -> Self {
        Self {
            expression: "userId = :id",
            values: values([(":id", s(id.to_string()))]),
        }
    }

    /// No live record has the key: TTL deletes expired items lazily, so an
    /// expired record counts as absent.
    pub(super) fn absent_or_expired(now: Timestamp) -> Self {
        Self {
            expression: "attribute_not_exists(pk) OR expiresAt < :now",
            values: values([(":now", n(now.unix_seconds()))]),
        }
    }
}

/// Adds the table, the condition and its values to a `Put` or `Delete`
/// builder (the two share these methods but no trait) and builds it.
macro_rules! conditional {
    ($builder:expr, $table:expr, $condition:expr) => {
        $builder
            .table_name($table)
            .condition_expression($condition.expression)
            .set_expression_attribute_values(
                (!$condition.values.is_empty()).then_some($condition.values),
            )
            .build()
            .map_err(|e| StoreError::Internal(e.into()))
    };
}

/// A transaction being built: its items, each under its slot.
pub(super) struct Transaction<'s> {
    table: &'s str,
    items: Vec<(Slot, TransactWriteItem)>,
}

impl Transaction<'_> {
    pub(super) fn put<T: Serialize>(
        &mut self,
        slot: Slot,
        item: &T,
        condition: Condition,
    ) -> Result<(), StoreError> {
        let put = conditional!(
            Put::builder().set_item(Some(to_item(item)?)),
            self.table,
            condition
        )?;
        self.items
            .push((slot, TransactWriteItem::builder().put(put).build()));
        Ok(())
    }

    pub(super) fn delete(
        &mut self,
        slot: Slot,
        key: Item,
        condition: Condition,
    ) -> Result<(), StoreError> {
        let delete = conditional!(Delete::builder().set_key(Some(key)), self.table, condition)?;
        self.items
            .push((slot, TransactWriteItem::builder().delete(delete).build()));
        Ok(())
    }

    /// Frees `email`, on condition that `id` holds it.
    pub(super) fn free_claim(&mut self, email: &Email, id: UserId) -> Result<(), StoreError> {
        self.delete(Slot::OldClaim, claim_key(email), Condition::held_by(id))
    }
}

/// Why a cancelled transaction's items failed, by slot.
pub(super) struct Cancellation {
    reasons: Vec<(Slot, String)>,
}

impl Cancellation {
    fn from(
        slots: Vec<Slot>,
        error: SdkError<TransactWriteItemsError, HttpResponse>,
    ) -> Result<Self, StoreError> {
        match error {
            SdkError::ServiceError(service)
                if matches!(
                    service.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(cancelled) =
                    service.into_err()
                else {
                    return Err(StoreError::Internal(
                        "transaction cancelled without reasons".into(),
                    ));
                };
                // The reasons come in the order the items were sent.
                let reasons = slots
                    .into_iter()
                    .zip(cancelled.cancellation_reasons())
                    .map(|(slot, reason)| (slot, reason.code().unwrap_or("None").to_owned()))
                    .collect();
                Ok(Self { reasons })
            }
            other => Err(classify(other)),
        }
    }

    pub(super) fn condition_failed(&self, slot: Slot) -> bool {
        self.is(slot, "ConditionalCheckFailed")
    }

    pub(super) fn is(&self, slot: Slot, code: &str) -> bool {
        self.reasons.iter().any(|(s, c)| *s == slot && c == code)
    }

    /// Cancelled because another transaction held an item, or throttled:
    /// worth another attempt.
    pub(super) fn retryable(&self) -> bool {
        self.reasons.iter().any(|(_, code)| {
            matches!(
                code.as_str(),
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        })
    }

    pub(super) fn unexpected(&self) -> StoreError {
        StoreError::Internal(format!("transaction cancelled: {:?}", self.reasons).into())
    }
}

impl DynamoStore {
    /// An empty transaction on the store's table.
    pub(super) fn transaction(&self) -> Transaction<'_> {
        Transaction {
            table: &self.table,
            items: Vec::new(),
        }
    }

    /// Sends `transaction`; `None` when it went through.
    pub(super) async fn transact(
        &self,
        transaction: Transaction<'_>,
    ) -> Result<Option<Cancellation>, StoreError> {
        let (slots, items): (Vec<Slot>, Vec<TransactWriteItem>) =
            transaction.items.into_iter().unzip();
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(error) => Cancellation::from(slots, error).map(Some),
        }
    }
}
