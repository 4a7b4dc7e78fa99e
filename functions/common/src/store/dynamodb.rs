//! The DynamoDB store: one table, keys designed for the API's access patterns
//! (see `docs/storage.md`). Uniqueness and preconditions are condition
//! expressions inside transactions, so concurrent requests cannot both win.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::item::{
    ALL_USERS, CALLER_PREFIX, EMAIL_PREFIX, EMAIL_SORT_KEY, EmailClaimItem, EventItem,
    IDEMPOTENCY_PREFIX, IdempotencyItem, TombstoneItem, USER_SORT_KEY, UserItem, event_sk, user_pk,
};
use super::{Cause, Created, HistoryStore, Page, StoreError, UserStore};
use crate::domain::{
    Email, HistoryEvent, Idempotency, PageSize, Precondition, Timestamp, User, UserChanges, UserId,
    UserName, Version,
};

/// Name of the index that lists users in creation order.
pub const BY_CREATION_INDEX: &str = "byCreation";
/// Name of the index that finds a user by email address.
pub const BY_EMAIL_INDEX: &str = "byEmail";

/// How often a write that lost a race with a concurrent write is retried.
const MAX_ATTEMPTS: u32 = 6;
/// First pause before a retry; it doubles on each attempt, plus jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Users in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store over `table`, reached with `client`; its calls count towards
    /// the request's metrics ([`crate::dynamodb_calls`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client: crate::dynamodb_calls::instrument(&client),
            table: table.into(),
        }
    }
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn n_i64(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn user_key(id: UserId) -> Item {
    key(user_pk(id), USER_SORT_KEY)
}

fn claim_key(email: &Email) -> Item {
    key(format!("{EMAIL_PREFIX}{email}"), EMAIL_SORT_KEY)
}

/// A caller's key: the key in the partition key (so IAM's `LeadingKeys`
/// sees `IDEMPOTENCY#`), the caller in the sort key.
fn idempotency_address(idempotency: &Idempotency) -> (String, String) {
    (
        format!("{IDEMPOTENCY_PREFIX}{}", idempotency.key.as_str()),
        format!("{CALLER_PREFIX}{}", idempotency.caller),
    )
}

fn idempotency_key(idempotency: &Idempotency) -> Item {
    let (pk, sk) = idempotency_address(idempotency);
    key(pk, &sk)
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Internal(e.into()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Internal(e.into()))
}

fn to_user(item: Item) -> Result<User, StoreError> {
    from_item::<UserItem>(item)?.try_into()
}

/// Sorts an SDK error into transient failures (throttling, timeouts,
/// connection and response errors, DynamoDB's own 5xx, a transaction still
/// in progress: the client may retry, 503) and everything else (a bug or a
/// misconfiguration: 500).
fn classify<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || matches!(
                    error.code(),
                    Some(
                        "ProvisionedThroughputExceededException"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "TransactionInProgressException"
                            | "InternalServerError"
                            | "ServiceUnavailable"
                    )
                )
        }
        _ => false,
    };
    if transient {
        StoreError::Unavailable(error.into())
    } else {
        StoreError::Internal(error.into())
    }
}

/// The outcome of one attempt at a transaction that may lose a race.
enum Attempt<T> {
    Done(T),
    /// A concurrent write got there first; read again and retry.
    Raced,
}

/// How a cancelled transaction's items failed, by position.
struct Cancellation {
    codes: Vec<String>,
}

impl Cancellation {
    fn from(error: SdkError<TransactWriteItemsError, HttpResponse>) -> Result<Self, StoreError> {
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
                let codes = cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|reason| reason.code().unwrap_or("None").to_owned())
                    .collect();
                Ok(Self { codes })
            }
            other => Err(classify(other)),
        }
    }

    fn condition_failed(&self, position: usize) -> bool {
        self.is(position, "ConditionalCheckFailed")
    }

    fn is(&self, position: usize, code: &str) -> bool {
        self.codes.get(position).is_some_and(|c| c == code)
    }

    /// Cancelled because another transaction held an item, or throttled:
    /// worth another attempt.
    fn retryable(&self) -> bool {
        self.codes.iter().any(|code| {
            matches!(
                code.as_str(),
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        })
    }

    fn unexpected(&self) -> StoreError {
        StoreError::Internal(format!("transaction cancelled: {:?}", self.codes).into())
    }
}

/// Runs `attempt` until it is not raced, backing off between attempts.
async fn retry_races<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
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
    fn put(
        &self,
        item: Item,
        condition: &str,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .set_expression_attribute_values((!values.is_empty()).then_some(values))
                    .build()
                    .map_err(|e| StoreError::Internal(e.into()))?,
            )
            .build())
    }

    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        self.put(item, "attribute_not_exists(pk)", Item::new())
    }

    fn put_if_version(
        &self,
        item: Item,
        version: Version,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put(
            item,
            "version = :expected",
            HashMap::from([(":expected".to_owned(), n(version.get()))]),
        )
    }

    fn delete(
        &self,
        key: Item,
        condition: &str,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .condition_expression(condition)
                    .set_expression_attribute_values(Some(values))
                    .build()
                    .map_err(|e| StoreError::Internal(e.into()))?,
            )
            .build())
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Cancellation>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(error) => Cancellation::from(error).map(Some),
        }
    }

    async fn try_create(
        &self,
        user: &User,
        idempotency: Option<&Idempotency>,
    ) -> Result<Attempt<Created>, StoreError> {
        let mut items = vec![
            self.put_new(to_item(&UserItem::from(user))?)?,
            self.put_new(to_item(&EmailClaimItem::new(&user.email, user.id))?)?,
        ];
        if let Some(idempotency) = idempotency {
            let (pk, sk) = idempotency_address(idempotency);
            let record = to_item(&IdempotencyItem {
                pk,
                sk,
                fingerprint: idempotency.fingerprint.clone(),
                expires_at: idempotency.expires_at.unix_seconds(),
                user_id: user.id.to_string(),
            })?;
            // TTL deletes expired items lazily, so an expired record counts as absent.
            items.push(self.put(
                record,
                "attribute_not_exists(pk) OR expiresAt < :now",
                HashMap::from([(":now".to_owned(), n_i64(Timestamp::now().unix_seconds()))]),
            )?);
        }
        let Some(cancelled) = self.transact(items).await? else {
            return Ok(Attempt::Done(Created::New));
        };
        if let Some(idempotency) = idempotency {
            if cancelled.is(2, "TransactionConflict") {
                return Err(StoreError::IdempotencyKeyInFlight);
            }
            // Cancellation reasons may stop at the first failed item, so a
            // taken email is checked against the key record too: a replay
            // finds its own user holding the address.
            if (cancelled.condition_failed(2) || cancelled.condition_failed(1))
                && let Some(replay) = self.replay(idempotency).await?
            {
                return replay.map(Attempt::Done);
            }
        }
        if cancelled.condition_failed(1) {
            Err(StoreError::EmailTaken)
        } else if cancelled.retryable() || cancelled.condition_failed(2) {
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
        Ok(Some(Ok(match self.get(id).await? {
            Some(user) => Created::Replayed(user),
            None => Created::ReplayedDeleted,
        })))
    }

    /// The stored user if it satisfies `precondition`.
    async fn current(&self, id: UserId, precondition: &Precondition) -> Result<User, StoreError> {
        let current = self.get(id).await?.ok_or(StoreError::NotFound)?;
        if precondition.admits(current.version) {
            Ok(current)
        } else {
            Err(StoreError::PreconditionFailed)
        }
    }

    /// Changes the email address (and maybe the name): the user item, the
    /// old claim and the new claim change in one transaction, conditioned on
    /// the version read just before.
    async fn try_update_with_email(
        &self,
        id: UserId,
        changes: &UserChanges,
        precondition: &Precondition,
        now: Timestamp,
        actor: Option<&str>,
    ) -> Result<Attempt<User>, StoreError> {
        let current = self.current(id, precondition).await?;
        let updated = current.apply(changes, now, actor);
        let mut items =
            vec![self.put_if_version(to_item(&UserItem::from(&updated))?, current.version)?];
        if updated.email != current.email {
            items.push(self.delete_claim(&current.email, id)?);
            items.push(self.put_new(to_item(&EmailClaimItem::new(&updated.email, id))?)?);
        }
        // A concurrent change of the same user is retried before a taken
        // address is believed: the concurrent change may be the one that
        // claimed it, for this very user.
        match self.transact(items).await? {
            None => Ok(Attempt::Done(updated)),
            Some(c) if c.condition_failed(0) || c.retryable() => Ok(Attempt::Raced),
            Some(c) if c.condition_failed(2) => Err(StoreError::EmailTaken),
            Some(c) => Err(c.unexpected()),
        }
    }

    /// Changes only the name: one conditional `UpdateItem`, no read.
    async fn update_name(
        &self,
        id: UserId,
        name: &UserName,
        precondition: &Precondition,
        now: Timestamp,
        actor: Option<&str>,
    ) -> Result<User, StoreError> {
        let set = "SET #name = :name, updatedAt = :now, version = version + :one";
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(id)));
        request = match actor {
            Some(actor) => request
                .update_expression(format!("{set}, changedBy = :by"))
                .expression_attribute_values(":by", s(actor)),
            None => request.update_expression(format!("{set} REMOVE changedBy")),
        };
        let mut request = request
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name.as_str()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        // UpdateItem has no client request token: when an attempt was
        // applied but its answer lost, the SDK's retry must not apply it
        // again. The change's own mark (its time to the millisecond and the
        // new name) tells the retry it is already there.
        let not_applied = "NOT (updatedAt = :now AND #name = :name)";
        let condition = match precondition {
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
                if stored.updated_at == now && stored.name == *name {
                    Ok(stored)
                } else {
                    Err(StoreError::PreconditionFailed)
                }
            }
            Err(error) => Err(classify(error)),
        }
    }

    async fn try_delete(
        &self,
        id: UserId,
        precondition: &Precondition,
        now: Timestamp,
        actor: Option<&str>,
    ) -> Result<Attempt<()>, StoreError> {
        let current = self.current(id, precondition).await?;
        let items = vec![
            self.delete(
                user_key(id),
                "version = :expected",
                HashMap::from([(":expected".to_owned(), n(current.version.get()))]),
            )?,
            self.delete_claim(&current.email, id)?,
            self.put_new(to_item(&TombstoneItem::new(&current, now, actor))?)?,
        ];
        match self.transact(items).await? {
            None => Ok(Attempt::Done(())),
            Some(c) if c.condition_failed(0) || c.retryable() => Ok(Attempt::Raced),
            Some(c) => Err(c.unexpected()),
        }
    }

    /// Frees `email`, on condition that `id` holds it.
    fn delete_claim(&self, email: &Email, id: UserId) -> Result<TransactWriteItem, StoreError> {
        self.delete(
            claim_key(email),
            "userId = :id",
            HashMap::from([(":id".to_owned(), s(id.to_string()))]),
        )
    }

    /// Items matching `condition` on the table or an index, in key order.
    async fn query(
        &self,
        index: Option<&str>,
        condition: &str,
        values: Item,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(classify)?;
        Ok(output.items.unwrap_or_default())
    }

    async fn query_users(
        &self,
        index: &str,
        condition: &str,
        values: Item,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        let items = self.query(Some(index), condition, values, limit).await?;
        items.into_iter().map(to_user).collect()
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create(
        &self,
        user: &User,
        idempotency: Option<&Idempotency>,
    ) -> Result<Created, StoreError> {
        retry_races(|| self.try_create(user, idempotency)).await
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(user_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output.item.map(to_user).transpose()
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let users = self
            .query_users(
                BY_EMAIL_INDEX,
                "email = :email",
                HashMap::from([(":email".to_owned(), s(email.as_str()))]),
                1,
            )
            .await?;
        Ok(users.into_iter().next())
    }

    async fn list(&self, after: Option<UserId>, size: PageSize) -> Result<Page<User>, StoreError> {
        let mut values = HashMap::from([(":all".to_owned(), s(ALL_USERS))]);
        let condition = match after {
            Some(id) => {
                values.insert(":after".to_owned(), s(id.to_string()));
                "gsi1pk = :all AND gsi1sk > :after"
            }
            None => "gsi1pk = :all",
        };
        let users = self
            .query_users(BY_CREATION_INDEX, condition, values, size.get() + 1)
            .await?;
        Ok(Page::from_one_extra(users, size))
    }

    async fn update(
        &self,
        id: UserId,
        changes: &UserChanges,
        precondition: &Precondition,
        now: Timestamp,
        actor: Option<&str>,
    ) -> Result<User, StoreError> {
        match (&changes.email, &changes.name) {
            (None, Some(name)) => self.update_name(id, name, precondition, now, actor).await,
            _ => {
                retry_races(|| self.try_update_with_email(id, changes, precondition, now, actor))
                    .await
            }
        }
    }

    async fn delete(
        &self,
        id: UserId,
        precondition: &Precondition,
        now: Timestamp,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        retry_races(|| self.try_delete(id, precondition, now, actor)).await
    }
}

#[async_trait]
impl HistoryStore for DynamoStore {
    async fn record(&self, event: &HistoryEvent) -> Result<(), StoreError> {
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

    async fn history(
        &self,
        user: UserId,
        after: Option<Version>,
        size: PageSize,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        let from = after.map_or(Version::new(0), Version::next);
        let values = HashMap::from([
            (":pk".to_owned(), s(user_pk(user))),
            (":from".to_owned(), s(event_sk(from))),
            (":to".to_owned(), s(event_sk(Version::new(u64::MAX)))),
        ]);
        let items = self
            .query(
                None,
                "pk = :pk AND sk BETWEEN :from AND :to",
                values,
                size.get() + 1,
            )
            .await?;
        let events = items
            .into_iter()
            .map(|item| from_item::<EventItem>(item)?.try_into())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_one_extra(events, size))
    }
}
