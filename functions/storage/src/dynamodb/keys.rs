//! Attribute values and the keys of the table's items, as the SDK wants them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::super::item::{
    CALLER_PREFIX, EMAIL_PREFIX, EMAIL_SORT_KEY, IDEMPOTENCY_PREFIX, USER_SORT_KEY, user_pk,
};
use common::domain::{Email, Idempotency, UserId};

/// An item, a key or a set of expression values.
pub(super) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Expression values from `(":name", value)` pairs.
pub(super) fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

fn key(pk: String, sk: &str) -> Item {
    values([("pk", s(pk)), ("sk", s(sk))])
}

/// The key of a user's item.
pub(super) fn user_key(id: UserId) -> Item {
    key(user_pk(id), USER_SORT_KEY)
}

/// The key of the item that claims `email`.
pub(super) fn claim_key(email: &Email) -> Item {
    key(format!("{EMAIL_PREFIX}{email}"), EMAIL_SORT_KEY)
}

/// A caller's key: the key in the partition key (so IAM's `LeadingKeys`
/// sees `IDEMPOTENCY#`), the caller's digest in the sort key (bounded,
/// whatever the caller's length).
pub(super) fn idempotency_address(idempotency: &Idempotency) -> (String, String) {
    (
        format!("{IDEMPOTENCY_PREFIX}{}", idempotency.key.as_str()),
        format!("{CALLER_PREFIX}{}", idempotency.caller_digest()),
    )
}

/// The key of a caller's idempotency record.
pub(super) fn idempotency_key(idempotency: &Idempotency) -> Item {
    let (pk, sk) = idempotency_address(idempotency);
    key(pk, &sk)
}
