//! The DynamoDB store: one table, keys designed for the API's access patterns
//! (see `docs/storage.md`). Uniqueness and preconditions are condition
//! expressions inside transactions, so concurrent requests cannot both win.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use serde::{Deserialize, Serialize};

use super::{Cause, Page, StoreError, UserStore};
use crate::domain::{
    Email, PageSize, Precondition, Timestamp, User, UserChanges, UserId, UserName, Version,
};

/// Name of the index that lists users in creation order.
pub const BY_CREATION_INDEX: &str = "byCreation";
/// Name of the index that finds a user by email address.
pub const BY_EMAIL_INDEX: &str = "byEmail";

const USER_PREFIX: &str = "USER#";
const USER_SORT_KEY: &str = "PROFILE";
const EMAIL_PREFIX: &str = "EMAIL#";
const EMAIL_SORT_KEY: &str = "EMAIL";
const ALL_USERS: &str = "USERS";

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
    /// A store over `table`, reached with `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// A user as stored. The index attributes live only on user items, so both
/// indexes are sparse.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    id: String,
    email: String,
    name: String,
    created_at: String,
    updated_at: String,
    version: u64,
}

/// The item that claims an email address for one user.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailClaimItem {
    pk: String,
    sk: String,
    user_id: String,
}

impl From<&User> for UserItem {
    fn from(user: &User) -> Self {
        Self {
            pk: format!("{USER_PREFIX}{}", user.id),
            sk: USER_SORT_KEY.to_owned(),
            gsi1pk: ALL_USERS.to_owned(),
            gsi1sk: user.id.to_string(),
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            created_at: user.created_at.to_string(),
            updated_at: user.updated_at.to_string(),
            version: user.version.get(),
        }
    }
}

impl TryFrom<UserItem> for User {
    type Error = StoreError;

    fn try_from(item: UserItem) -> Result<Self, Self::Error> {
        let corrupt = |field: &'static str| {
            move |_| StoreError::Internal(format!("stored user has an invalid {field}").into())
        };
        Ok(Self {
            id: UserId::parse(&item.id).map_err(corrupt("id"))?,
            email: Email::parse(&item.email).map_err(corrupt("email"))?,
            name: UserName::parse(&item.name).map_err(corrupt("name"))?,
            created_at: Timestamp::parse(&item.created_at).map_err(corrupt("createdAt"))?,
            updated_at: Timestamp::parse(&item.updated_at).map_err(corrupt("updatedAt"))?,
            version: Version::new(item.version),
        })
    }
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn user_key(id: UserId) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("{USER_PREFIX}{id}"))),
        ("sk".to_owned(), s(USER_SORT_KEY)),
    ])
}

fn claim_key(email: &Email) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("{EMAIL_PREFIX}{email}"))),
        ("sk".to_owned(), s(EMAIL_SORT_KEY)),
    ])
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Internal(e.into()))
}

fn to_user(item: Item) -> Result<User, StoreError> {
    let stored: UserItem =
        serde_dynamo::from_item(item).map_err(|e| StoreError::Internal(e.into()))?;
    stored.try_into()
}

fn claim_item(email: &Email, id: UserId) -> Result<Item, StoreError> {
    to_item(&EmailClaimItem {
        pk: format!("{EMAIL_PREFIX}{email}"),
        sk: EMAIL_SORT_KEY.to_owned(),
        user_id: id.to_string(),
    })
}

/// Sorts an SDK error into throttling/unavailability (retryable by the
/// client) and everything else.
fn classify<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let retryable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        _ => matches!(
            error.code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
    };
    if retryable {
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
    fn from(
        error: SdkError<TransactWriteItemsError, impl std::fmt::Debug + Send + Sync + 'static>,
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
        self.codes
            .get(position)
            .is_some_and(|code| code == "ConditionalCheckFailed")
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
    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .build()
                    .map_err(|e| StoreError::Internal(e.into()))?,
            )
            .build())
    }

    fn put_if_version(
        &self,
        item: Item,
        version: Version,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("version = :expected")
                    .expression_attribute_values(":expected", n(version.get()))
                    .build()
                    .map_err(|e| StoreError::Internal(e.into()))?,
            )
            .build())
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

    async fn try_create(&self, user: &User) -> Result<Attempt<()>, StoreError> {
        let items = vec![
            self.put(to_item(&UserItem::from(user))?, "attribute_not_exists(pk)")?,
            self.put(
                claim_item(&user.email, user.id)?,
                "attribute_not_exists(pk)",
            )?,
        ];
        match self.transact(items).await? {
            None => Ok(Attempt::Done(())),
            Some(c) if c.condition_failed(1) => Err(StoreError::EmailTaken),
            Some(c) if c.retryable() => Ok(Attempt::Raced),
            Some(c) => Err(c.unexpected()),
        }
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
    ) -> Result<Attempt<User>, StoreError> {
        let current = self.current(id, precondition).await?;
        let updated = current.apply(changes, now);
        let mut items =
            vec![self.put_if_version(to_item(&UserItem::from(&updated))?, current.version)?];
        if updated.email != current.email {
            items.push(self.delete_claim(&current.email, id)?);
            items.push(self.put(claim_item(&updated.email, id)?, "attribute_not_exists(pk)")?);
        }
        match self.transact(items).await? {
            None => Ok(Attempt::Done(updated)),
            Some(c) if c.condition_failed(2) => Err(StoreError::EmailTaken),
            Some(c) if c.condition_failed(0) || c.retryable() => Ok(Attempt::Raced),
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
    ) -> Result<User, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(id)))
            .update_expression("SET #name = :name, updatedAt = :now, version = version + :one")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name.as_str()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let condition = match precondition {
            Precondition::None => "attribute_exists(pk)".to_owned(),
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
                format!("attribute_exists(pk) AND version IN ({})", names.join(", "))
            }
        };
        match request.condition_expression(condition).send().await {
            Ok(output) => to_user(output.attributes.unwrap_or_default()),
            Err(SdkError::ServiceError(service)) if service.err().is_conditional_check_failed_exception() => {
                match service.err() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e)
                        if e.item().is_some() => Err(StoreError::PreconditionFailed),
                    _ => Err(StoreError::NotFound),
                }
            }
            Err(error) => Err(classify(error)),
        }
    }

    async fn try_delete(
        &self,
        id: UserId,
        precondition: &Precondition,
    ) -> Result<Attempt<()>, StoreError> {
        let current = self.current(id, precondition).await?;
        let items = vec![
            self.delete(
                user_key(id),
                "version = :expected",
                HashMap::from([(":expected".to_owned(), n(current.version.get()))]),
            )?,
            self.delete_claim(&current.email, id)?,
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

    async fn query_users(
        &self,
        index: &str,
        key_condition: &str,
        values: Item,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(key_condition)
            .set_expression_attribute_values(Some(values))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(classify)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(to_user)
            .collect()
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create(&self, user: &User) -> Result<(), StoreError> {
        retry_races(|| self.try_create(user)).await
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
        // One item more than the page tells whether another page follows,
        // so the last page never comes with a cursor to an empty page.
        let mut items = self
            .query_users(BY_CREATION_INDEX, condition, values, size.get() + 1)
            .await?;
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
        match (&changes.email, &changes.name) {
            (None, Some(name)) => self.update_name(id, name, precondition, now).await,
            _ => retry_races(|| self.try_update_with_email(id, changes, precondition, now)).await,
        }
    }

    async fn delete(&self, id: UserId, precondition: &Precondition) -> Result<(), StoreError> {
        retry_races(|| self.try_delete(id, precondition)).await
    }
}
