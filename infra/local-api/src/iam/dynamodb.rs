//! What a DynamoDB (or DynamoDB Streams) API request asks IAM for: one
//! authorization per item action, as DynamoDB authorises them. A
//! transaction is authorised item by item with each item's own action
//! (Put → `PutItem`, Update → `UpdateItem`, Delete → `DeleteItem`,
//! ConditionCheck → `ConditionCheckItem`), so it passes only when every
//! item does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Authorization;
use crate::deployment::{ACCOUNT, REGION};

/// The partition key attribute of the table and of each of its indexes,
/// for `dynamodb:LeadingKeys`.
#[derive(Debug, Clone, Default)]
pub struct KeySchema {
    /// The table's partition key attribute.
    pub table: String,
    /// Each index's partition key attribute, by index name.
    pub indexes: BTreeMap<String, String>,
}

/// The request could not be read as a DynamoDB API call.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

/// The authorizations `operation` (from `X-Amz-Target`) with `body` needs.
/// `stream_of` names the stream an iterator (from `GetShardIterator`) reads.
pub fn authorizations(
    operation: &str,
    body: &Value,
    keys: &KeySchema,
    stream_of: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Authorization>, RequestError> {
    let table = |value: &Value| -> Result<String, RequestError> {
        let name = value
            .as_str()
            .ok_or_else(|| RequestError(format!("{operation} without a TableName")))?;
        Ok(table_arn(name))
    };
    let one = |action: &str, resource: String, leading: Vec<String>| {
        let mut context = BTreeMap::new();
        if !leading.is_empty() {
            context.insert("dynamodb:LeadingKeys".to_owned(), leading);
        }
        Authorization {
            action: format!("dynamodb:{action}"),
            resource,
            context,
        }
    };
    let partition = |item: &Value, attribute: &str| -> Vec<String> {
        item.get(attribute).and_then(scalar).into_iter().collect()
    };
    Ok(match operation {
        "GetItem" | "DeleteItem" | "UpdateItem" => vec![one(
            operation,
            table(&body["TableName"])?,
            partition(&body["Key"], &keys.table),
        )],
        "PutItem" => vec![one(
            operation,
            table(&body["TableName"])?,
            partition(&body["Item"], &keys.table),
        )],
        "Query" | "Scan" => {
            let base = table(&body["TableName"])?;
            let (resource, hash) = match body["IndexName"].as_str() {
                Some(index) => (
                    format!("{base}/index/{index}"),
                    keys.indexes.get(index).cloned().unwrap_or_default(),
                ),
                None => (base, keys.table.clone()),
            };
            let leading = if operation == "Query" {
                query_partition(body, &hash).into_iter().collect()
            } else {
                Vec::new()
            };
            vec![one(operation, resource, leading)]
        }
        "TransactWriteItems" => {
            let mut out = Vec::new();
            for item in body["TransactItems"].as_array().into_iter().flatten() {
                let (kind, action, key_field) = if let Some(put) = item.get("Put") {
                    (put, "PutItem", "Item")
                } else if let Some(update) = item.get("Update") {
                    (update, "UpdateItem", "Key")
                } else if let Some(delete) = item.get("Delete") {
                    (delete, "DeleteItem", "Key")
                } else if let Some(check) = item.get("ConditionCheck") {
                    (check, "ConditionCheckItem", "Key")
                } else {
                    return Err(RequestError(format!("transaction item {item}")));
                };
                out.push(one(
                    action,
                    table(&kind["TableName"])?,
                    partition(&kind[key_field], &keys.table),
                ));
            }
            out
        }
        "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                Ok(one(
                    "GetItem",
                    table(&item["Get"]["TableName"])?,
                    partition(&item["Get"]["Key"], &keys.table),
                ))
            })
            .collect::<Result<_, RequestError>>()?,
        "BatchGetItem" | "BatchWriteItem" => {
            let mut out = Vec::new();
            for (name, requests) in body["RequestItems"].as_object().into_iter().flatten() {
                let mut leading = BTreeSet::new();
                let items: Vec<&Value> = match requests {
                    Value::Object(get) => get["Keys"].as_array().into_iter().flatten().collect(),
                    Value::Array(writes) => writes
                        .iter()
                        .filter_map(|w| {
                            w.get("PutRequest")
                                .map(|p| &p["Item"])
                                .or_else(|| w.get("DeleteRequest").map(|d| &d["Key"]))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                for item in items {
                    leading.extend(partition(item, &keys.table));
                }
                out.push(one(
                    operation,
                    table_arn(name),
                    leading.into_iter().collect(),
                ));
            }
            out
        }
        "DescribeStream" | "GetShardIterator" => {
            let stream = body["StreamArn"]
                .as_str()
                .ok_or_else(|| RequestError(format!("{operation} without a StreamArn")))?;
            vec![one(operation, stream.to_owned(), Vec::new())]
        }
        "GetRecords" => {
            let iterator = body["ShardIterator"].as_str().unwrap_or_default();
            let stream = stream_of(iterator).ok_or_else(|| {
                RequestError("GetRecords with an iterator of no known stream".into())
            })?;
            vec![one(operation, stream, Vec::new())]
        }
        "DescribeEndpoints" | "ListTables" | "ListStreams" | "DescribeLimits" => {
            vec![one(operation, "*".to_owned(), Vec::new())]
        }
        _ => match body.get("TableName") {
            Some(name) => vec![one(operation, table(name)?, Vec::new())],
            None => vec![one(operation, "*".to_owned(), Vec::new())],
        },
    })
}

/// The ARN of a table named in a request (a name, or already an ARN).
pub fn table_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        name.to_owned()
    } else {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
    }
}

/// A key attribute's value as text (`S`, `N` or `B`).
fn scalar(value: &Value) -> Option<String> {
    ["S", "N", "B"]
        .iter()
        .find_map(|t| value.get(*t).and_then(Value::as_str))
        .map(str::to_owned)
}

/// The partition key value a Query's `KeyConditionExpression` fixes: the
/// operand compared with `=` to the partition key attribute (written out or
/// through `ExpressionAttributeNames`).
fn query_partition(body: &Value, hash_key: &str) -> Option<String> {
    let expression = body["KeyConditionExpression"].as_str()?;
    let name = |operand: &str| -> String {
        let operand = operand.trim().trim_matches(|c| c == '(' || c == ')').trim();
        body["ExpressionAttributeNames"][operand]
            .as_str()
            .unwrap_or(operand)
            .to_owned()
    };
    let value = |operand: &str| {
        let operand = operand.trim().trim_matches(|c| c == '(' || c == ')').trim();
        scalar(&body["ExpressionAttributeValues"][operand])
    };
    let upper = expression.to_ascii_uppercase();
    let mut clauses = Vec::new();
    let mut start = 0;
    while let Some(at) = upper[start..].find(" AND ") {
        clauses.push(&expression[start..start + at]);
        start += at + 5;
    }
    clauses.push(&expression[start..]);
    clauses.into_iter().find_map(|clause| {
        let (left, right) = clause.split_once('=')?;
        if left.ends_with(['<', '>', '!']) || right.starts_with('=') {
            return None;
        }
        if name(left) == hash_key {
            value(right)
        } else if name(right) == hash_key {
            value(left)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::iam::{Policy, decide};

    fn keys() -> KeySchema {
        KeySchema {
            table: "pk".to_owned(),
            indexes: [
                ("byEmail".to_owned(), "email".to_owned()),
                ("byCreation".to_owned(), "gsi1pk".to_owned()),
            ]
            .into(),
        }
    }

    fn of(operation: &str, body: Value) -> Vec<Authorization> {
        authorizations(operation, &body, &keys(), |_| None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_transaction_needs_each_items_own_action_on_its_table() {
        let auths = of(
            "TransactWriteItems",
            json!({"TransactItems": [
                {"Delete": {"TableName": "users", "Key": {"pk": {"S": "USER#1"}, "sk": {"S": "PROFILE"}}}},
                {"Put": {"TableName": "users", "Item": {"pk": {"S": "USER#1"}, "sk": {"S": "DELETED"}}}},
                {"ConditionCheck": {"TableName": "users", "Key": {"pk": {"S": "EMAIL#a"}}}},
                {"Update": {"TableName": "users", "Key": {"pk": {"S": "EMAIL#b"}}}}
            ]}),
        );
        let actions: Vec<&str> = auths.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:UpdateItem"
            ]
        );
        assert!(auths.iter().all(|a| a.resource == table_arn("users")));
        assert_eq!(auths[0].context["dynamodb:LeadingKeys"], ["USER#1"]);
    }

    #[test]
    fn a_transaction_with_one_denied_item_is_denied() {
        let role = Policy::parse(
            "delete-user",
            &json!({"Statement": [{"Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:DeleteItem"],
                "Resource": table_arn("users")}]}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let auths = of(
            "TransactWriteItems",
            json!({"TransactItems": [
                {"Delete": {"TableName": "users", "Key": {"pk": {"S": "USER#1"}}}},
                {"Put": {"TableName": "users", "Item": {"pk": {"S": "USER#1"}}}}
            ]}),
        );
        let denied: Vec<&str> = auths
            .iter()
            .filter(|a| !decide([&role], a).allowed())
            .map(|a| a.action.as_str())
            .collect();
        assert_eq!(denied, ["dynamodb:PutItem"]);
    }

    #[test]
    fn a_query_on_an_index_is_authorised_on_the_index_with_its_partition_key() {
        let auths = of(
            "Query",
            json!({"TableName": "users", "IndexName": "byEmail",
                "KeyConditionExpression": "#e = :e",
                "ExpressionAttributeNames": {"#e": "email"},
                "ExpressionAttributeValues": {":e": {"S": "ada@example.com"}}}),
        );
        assert_eq!(
            auths[0].resource,
            format!("{}/index/byEmail", table_arn("users"))
        );
        assert_eq!(
            auths[0].context["dynamodb:LeadingKeys"],
            ["ada@example.com"]
        );
        let table = of(
            "Query",
            json!({"TableName": "users",
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :e)",
                "ExpressionAttributeValues": {":pk": {"S": "USER#1"}, ":e": {"S": "EVENT#"}}}),
        );
        assert_eq!(table[0].resource, table_arn("users"));
        assert_eq!(table[0].context["dynamodb:LeadingKeys"], ["USER#1"]);
    }

    #[test]
    fn stream_reads_are_authorised_on_the_stream() {
        let stream = "arn:aws:dynamodb:ddblocal:000000000000:table/users/stream/x";
        let auths = authorizations(
            "GetRecords",
            &json!({"ShardIterator": "it"}),
            &keys(),
            |it| (it == "it").then(|| stream.to_owned()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(auths[0].action, "dynamodb:GetRecords");
        assert_eq!(auths[0].resource, stream);
        assert!(
            authorizations(
                "GetRecords",
                &json!({"ShardIterator": "?"}),
                &keys(),
                |_| None
            )
            .is_err()
        );
    }

    #[test]
    fn describe_endpoints_has_no_resource() {
        let auths = of("DescribeEndpoints", json!({}));
        assert_eq!(auths[0].resource, "*");
    }
}
