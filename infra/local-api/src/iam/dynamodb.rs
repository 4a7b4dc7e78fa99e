//! What a DynamoDB (or DynamoDB Streams) API request asks IAM for: one
//! authorization per item action, as DynamoDB authorises them. A
//! transaction is authorised item by item with each item's own action
//! (Put → `PutItem`, Update → `UpdateItem`, Delete → `DeleteItem`,
//! ConditionCheck → `ConditionCheckItem`), so it passes only when every
//! item does; a PartiQL statement by its verb on its table.
//!
//! Fails closed: a parameter the authorization depends on that is not
//! exactly as DynamoDB reads it (a `TableName` that is not a string, a key
//! value that is not one `S`/`N`/`B` string, a Query whose partition key
//! no key condition fixes with `=`) is refused, never read as absent.
//! Of the pre-expression parameters, `KeyConditions` is mapped (its `EQ`
//! on the partition key gives the leading key); `ScanFilter`,
//! `QueryFilter`, `Expected`, `AttributesToGet`, `AttributeUpdates` and
//! `ConditionalOperator` filter, project, condition or change non-key
//! attributes, so they change neither the action, the resource nor the
//! partition keys (the `dynamodb:Attributes` and `dynamodb:Select`
//! condition keys they would feed are refused when a policy loads).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::Authorization;
use super::key_condition;
use super::partiql;
use crate::stack::deployment::{ACCOUNT, REGION};
use crate::stack::template::TableDefinition;

/// The partition key attribute of the table and of each of its indexes,
/// for `dynamodb:LeadingKeys`.
#[derive(Debug, Clone, Default)]
pub struct KeySchema {
    /// The table's partition key attribute.
    pub table: String,
    /// Each index's partition key attribute, by index name.
    pub indexes: BTreeMap<String, String>,
}

impl KeySchema {
    /// The partition keys of the table the template defines.
    pub fn of(table: &TableDefinition) -> Self {
        let hash = |elements: &[crate::stack::template::KeyElement]| {
            elements
                .iter()
                .find(|e| e.key_type == "HASH")
                .map(|e| e.attribute_name.clone())
                .unwrap_or_default()
        };
        Self {
            table: hash(&table.key_schema),
            indexes: table
                .global_secondary_indexes
                .iter()
                .map(|i| (i.index_name.clone(), hash(&i.key_schema)))
                .collect(),
        }
    }
}

/// How DynamoDB answers a request of the kind refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The body is not JSON read one way (`SerializationException`).
    Serialization,
    /// A parameter cannot be read as DynamoDB reads it (`ValidationException`).
    Validation,
    /// No such operation (`UnknownOperationException`).
    UnknownOperation,
    /// An operation the proxy does not know how to authorise
    /// (`AccessDeniedException`: refused, never passed unchecked).
    NotAuthorisable,
}

impl Refusal {
    /// The `__type` of DynamoDB's answer.
    pub fn error_type(self) -> &'static str {
        match self {
            Refusal::Serialization => "com.amazon.coral.service#SerializationException",
            Refusal::Validation => "com.amazon.coral.validate#ValidationException",
            Refusal::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            Refusal::NotAuthorisable => "com.amazon.coral.service#AccessDeniedException",
        }
    }
}

/// The request could not be read as a DynamoDB API call, so it is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// How it is answered.
    pub kind: Refusal,
    /// Why.
    pub message: String,
}

fn invalid(message: impl Into<String>) -> RequestError {
    RequestError {
        kind: Refusal::Validation,
        message: message.into(),
    }
}

/// The operations of the DynamoDB API (`DynamoDB_20120810.<name>`), spelt
/// as DynamoDB matches them: exactly (DynamoDB Local answers
/// `DynamoDB_20120810.getitem` with `UnknownOperationException`).
const DYNAMODB_OPERATIONS: &[&str] = &[
    "BatchExecuteStatement",
    "BatchGetItem",
    "BatchWriteItem",
    "CreateBackup",
    "CreateGlobalTable",
    "CreateTable",
    "DeleteBackup",
    "DeleteItem",
    "DeleteResourcePolicy",
    "DeleteTable",
    "DescribeBackup",
    "DescribeContinuousBackups",
    "DescribeContributorInsights",
    "DescribeEndpoints",
    "DescribeExport",
    "DescribeGlobalTable",
    "DescribeGlobalTableSettings",
    "DescribeImport",
    "DescribeKinesisStreamingDestination",
    "DescribeLimits",
    "DescribeTable",
    "DescribeTableReplicaAutoScaling",
    "DescribeTimeToLive",
    "DisableKinesisStreamingDestination",
    "EnableKinesisStreamingDestination",
    "ExecuteStatement",
    "ExecuteTransaction",
    "ExportTableToPointInTime",
    "GetItem",
    "GetResourcePolicy",
    "ImportTable",
    "ListBackups",
    "ListContributorInsights",
    "ListExports",
    "ListGlobalTables",
    "ListImports",
    "ListTables",
    "ListTagsOfResource",
    "PutItem",
    "PutResourcePolicy",
    "Query",
    "RestoreTableFromBackup",
    "RestoreTableToPointInTime",
    "Scan",
    "TagResource",
    "TransactGetItems",
    "TransactWriteItems",
    "UntagResource",
    "UpdateContinuousBackups",
    "UpdateContributorInsights",
    "UpdateGlobalTable",
    "UpdateGlobalTableSettings",
    "UpdateItem",
    "UpdateKinesisStreamingDestination",
    "UpdateTable",
    "UpdateTableReplicaAutoScaling",
    "UpdateTimeToLive",
];

/// The operations of the DynamoDB Streams API (`DynamoDBStreams_20120810.<name>`).
const STREAMS_OPERATIONS: &[&str] = &[
    "DescribeStream",
    "GetRecords",
    "GetShardIterator",
    "ListStreams",
];

/// The operation an `X-Amz-Target` header calls, matched exactly as
/// DynamoDB matches it; any other spelling is an unknown operation.
pub fn operation(target: Option<&str>) -> Result<&'static str, RequestError> {
    let unknown = || RequestError {
        kind: Refusal::UnknownOperation,
        message: "An unknown operation was requested.".to_owned(),
    };
    let (service, name) = target.and_then(|t| t.split_once('.')).ok_or_else(unknown)?;
    let operations = match service {
        "DynamoDB_20120810" => DYNAMODB_OPERATIONS,
        "DynamoDBStreams_20120810" => STREAMS_OPERATIONS,
        _ => return Err(unknown()),
    };
    operations
        .iter()
        .find(|o| **o == name)
        .copied()
        .ok_or_else(unknown)
}

/// Whether `operation` runs PartiQL, whose partition keys the proxy does
/// not read: a `dynamodb:LeadingKeys` condition cannot be evaluated for it.
pub fn is_partiql(operation: &str) -> bool {
    matches!(
        operation,
        "ExecuteStatement" | "BatchExecuteStatement" | "ExecuteTransaction"
    )
}

/// A member that must be a string, if present (`null` is absent, as
/// DynamoDB reads it). DynamoDB Local turns a number or a boolean into a
/// string (`{"S": 123}` is the string `"123"`), so anything but a string
/// is refused rather than read as missing.
fn text<'a>(object: &'a Value, field: &str) -> Result<Option<&'a str>, RequestError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!("{field} is not a string: {other}"))),
    }
}

fn required_text<'a>(object: &'a Value, field: &str) -> Result<&'a str, RequestError> {
    text(object, field)?.ok_or_else(|| invalid(format!("{field} is missing")))
}

fn members<'a>(
    object: &'a Value,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, RequestError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(invalid(format!("{field} is not an object: {other}"))),
    }
}

fn required_members<'a>(
    object: &'a Value,
    field: &str,
) -> Result<&'a Map<String, Value>, RequestError> {
    members(object, field)?.ok_or_else(|| invalid(format!("{field} is missing")))
}

fn required_list<'a>(object: &'a Value, field: &str) -> Result<&'a [Value], RequestError> {
    match object.get(field) {
        Some(Value::Array(items)) => Ok(items),
        None | Some(Value::Null) => Err(invalid(format!("{field} is missing"))),
        Some(other) => Err(invalid(format!("{field} is not a list: {other}"))),
    }
}

/// The one member of `object` among `kinds` (a transaction or batch
/// item's request), by its name.
fn one_of<'a>(
    object: &'a Value,
    kinds: &[&'static str],
) -> Result<(&'static str, &'a Value), RequestError> {
    let present: Vec<(&'static str, &Value)> = kinds
        .iter()
        .filter_map(|k| object.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        .collect();
    match present.as_slice() {
        [(kind, value)] if value.is_object() => Ok((kind, value)),
        _ => Err(invalid(format!(
            "an item must hold exactly one of {}: {object}",
            kinds.join(", ")
        ))),
    }
}

/// A key attribute's value as text: exactly one of `S`, `N` or `B`, a
/// string.
fn scalar(value: &Value) -> Result<String, RequestError> {
    match value
        .as_object()
        .map(|m| m.iter().collect::<Vec<_>>())
        .as_deref()
    {
        Some([(kind, Value::String(text))]) if ["S", "N", "B"].contains(&kind.as_str()) => {
            Ok(text.clone())
        }
        _ => Err(invalid(format!(
            "a key value must be one S, N or B string: {value}"
        ))),
    }
}

/// The partition key value of an item or key.
fn partition(item: &Value, attribute: &str) -> Result<String, RequestError> {
    let item = item
        .as_object()
        .ok_or_else(|| invalid(format!("a key or item that is not an object: {item}")))?;
    let value = item.get(attribute).ok_or_else(|| {
        invalid(format!(
            "a key or item without its partition key {attribute}"
        ))
    })?;
    scalar(value)
}

fn one(action: &str, resource: String, leading: Vec<String>) -> Authorization {
    let mut context = BTreeMap::new();
    if !leading.is_empty() {
        context.insert("dynamodb:LeadingKeys".to_owned(), leading);
    }
    Authorization {
        action: format!("dynamodb:{action}"),
        resource,
        context,
    }
}

/// The authorizations `operation` (from [`operation`]) with `body` (a JSON
/// object read by [`super::body::read`]) needs. `stream_of` names the
/// stream an iterator (from `GetShardIterator`) reads.
pub fn authorizations(
    operation: &str,
    body: &Value,
    keys: &KeySchema,
    stream_of: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Authorization>, RequestError> {
    let table = |object: &Value| -> Result<String, RequestError> {
        table_resource(required_text(object, "TableName")?)
    };
    Ok(match operation {
        "GetItem" | "DeleteItem" | "UpdateItem" => vec![one(
            operation,
            table(body)?,
            vec![partition(&body["Key"], &keys.table)?],
        )],
        "PutItem" => vec![one(
            operation,
            table(body)?,
            vec![partition(&body["Item"], &keys.table)?],
        )],
        "Query" => {
            let (resource, hash) = match text(body, "IndexName")? {
                Some(index) => (
                    index_resource(&table(body)?, index)?,
                    keys.indexes
                        .get(index)
                        .ok_or_else(|| invalid(format!("no index {index} in the template")))?
                        .as_str(),
                ),
                None => (table(body)?, keys.table.as_str()),
            };
            vec![one(operation, resource, vec![query_partition(body, hash)?])]
        }
        "Scan" => {
            let resource = match text(body, "IndexName")? {
                Some(index) => index_resource(&table(body)?, index)?,
                None => table(body)?,
            };
            vec![one(operation, resource, Vec::new())]
        }
        "TransactWriteItems" => required_list(body, "TransactItems")?
            .iter()
            .map(|item| {
                let (kind, request) = one_of(item, &["Put", "Update", "Delete", "ConditionCheck"])?;
                let (action, key_field) = match kind {
                    "Put" => ("PutItem", "Item"),
                    "Update" => ("UpdateItem", "Key"),
                    "Delete" => ("DeleteItem", "Key"),
                    _ => ("ConditionCheckItem", "Key"),
                };
                Ok(one(
                    action,
                    table(request)?,
                    vec![partition(&request[key_field], &keys.table)?],
                ))
            })
            .collect::<Result<_, RequestError>>()?,
        "TransactGetItems" => required_list(body, "TransactItems")?
            .iter()
            .map(|item| {
                let (_, get) = one_of(item, &["Get"])?;
                Ok(one(
                    "GetItem",
                    table(get)?,
                    vec![partition(&get["Key"], &keys.table)?],
                ))
            })
            .collect::<Result<_, RequestError>>()?,
        "BatchGetItem" | "BatchWriteItem" => {
            let mut out = Vec::new();
            for (name, requests) in required_members(body, "RequestItems")? {
                let mut leading = BTreeSet::new();
                if operation == "BatchGetItem" {
                    if !requests.is_object() {
                        return Err(invalid(format!("RequestItems.{name} is not an object")));
                    }
                    for key in required_list(requests, "Keys")? {
                        leading.insert(partition(key, &keys.table)?);
                    }
                } else {
                    let writes = requests
                        .as_array()
                        .ok_or_else(|| invalid(format!("RequestItems.{name} is not a list")))?;
                    for write in writes {
                        let (kind, request) = one_of(write, &["PutRequest", "DeleteRequest"])?;
                        let field = if kind == "PutRequest" { "Item" } else { "Key" };
                        leading.insert(partition(&request[field], &keys.table)?);
                    }
                }
                out.push(one(
                    operation,
                    table_resource(name)?,
                    leading.into_iter().collect(),
                ));
            }
            out
        }
        "ExecuteStatement" => vec![statement(body)?],
        "BatchExecuteStatement" | "ExecuteTransaction" => {
            let field = if operation == "ExecuteTransaction" {
                "TransactStatements"
            } else {
                "Statements"
            };
            required_list(body, field)?
                .iter()
                .map(statement)
                .collect::<Result<_, RequestError>>()?
        }
        "DescribeStream" | "GetShardIterator" => {
            vec![one(
                operation,
                required_text(body, "StreamArn")?.to_owned(),
                Vec::new(),
            )]
        }
        "GetRecords" => {
            let iterator = required_text(body, "ShardIterator")?;
            let stream = stream_of(iterator)
                .ok_or_else(|| invalid("GetRecords with an iterator of no known stream"))?;
            vec![one(operation, stream, Vec::new())]
        }
        "DescribeEndpoints" | "ListTables" | "ListStreams" | "DescribeLimits" | "ListBackups"
        | "ListGlobalTables" | "ListExports" | "ListImports" => {
            vec![one(operation, "*".to_owned(), Vec::new())]
        }
        "CreateTable"
        | "DeleteTable"
        | "DescribeTable"
        | "UpdateTable"
        | "DescribeTimeToLive"
        | "UpdateTimeToLive"
        | "DescribeContinuousBackups"
        | "UpdateContinuousBackups"
        | "DescribeContributorInsights"
        | "UpdateContributorInsights"
        | "CreateBackup"
        | "DescribeKinesisStreamingDestination"
        | "DescribeTableReplicaAutoScaling" => {
            vec![one(operation, table(body)?, Vec::new())]
        }
        "ListTagsOfResource"
        | "TagResource"
        | "UntagResource"
        | "GetResourcePolicy"
        | "PutResourcePolicy"
        | "DeleteResourcePolicy" => vec![one(
            operation,
            required_text(body, "ResourceArn")?.to_owned(),
            Vec::new(),
        )],
        other => {
            return Err(RequestError {
                kind: Refusal::NotAuthorisable,
                message: format!("the local IAM proxy does not know what {other} is authorised on"),
            });
        }
    })
}

/// One PartiQL statement (`{"Statement": …, "Parameters": …}`): its verb's
/// action on its table or index.
fn statement(object: &Value) -> Result<Authorization, RequestError> {
    let target =
        partiql::target(required_text(object, "Statement")?).map_err(|e| invalid(e.to_string()))?;
    let table = table_resource(&target.table)?;
    let resource = match target.index {
        Some(index) => index_resource(&table, &index)?,
        None => table,
    };
    Ok(one(target.action, resource, Vec::new()))
}

/// Whether `name` is a table or index name as DynamoDB allows them: 3 to
/// 255 letters, digits, `_`, `-` and `.`.
fn valid_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The ARN of the table a request names, if the name is a valid one (or
/// the ARN of a valid one in this account and region): anything else, such
/// as `users/index/byEmail`, could make a resource no grant meant.
fn table_resource(name: &str) -> Result<String, RequestError> {
    let prefix = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/");
    if valid_name(name.strip_prefix(&prefix).unwrap_or(name)) {
        Ok(table_arn(name))
    } else {
        Err(invalid(format!("{name:?} is not a table name")))
    }
}

/// The ARN of index `index` of the table at `table`.
fn index_resource(table: &str, index: &str) -> Result<String, RequestError> {
    if valid_name(index) {
        Ok(format!("{table}/index/{index}"))
    } else {
        Err(invalid(format!("{index:?} is not an index name")))
    }
}

/// The ARN of a table named in a request (a name, or already an ARN).
pub fn table_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        name.to_owned()
    } else {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
    }
}

/// The partition key value a Query reads: the `=` on `hash_key` in its
/// `KeyConditionExpression` (see [`key_condition`]) or, in the legacy
/// form, the `EQ` on it in `KeyConditions`. Anything else is refused.
fn query_partition(body: &Value, hash_key: &str) -> Result<String, RequestError> {
    let expression = text(body, "KeyConditionExpression")?;
    let legacy = members(body, "KeyConditions")?;
    match (expression, legacy) {
        (Some(expression), None) => {
            let terms = key_condition::parse(
                expression,
                members(body, "ExpressionAttributeNames")?,
                members(body, "ExpressionAttributeValues")?,
            )
            .map_err(|e| invalid(e.to_string()))?;
            scalar(
                key_condition::equality_on(&terms, hash_key).map_err(|e| invalid(e.to_string()))?,
            )
        }
        (None, Some(conditions)) => {
            let condition = conditions.get(hash_key).ok_or_else(|| {
                invalid(format!(
                    "KeyConditions without the partition key {hash_key}"
                ))
            })?;
            if text(condition, "ComparisonOperator")? != Some("EQ") {
                return Err(invalid(format!(
                    "KeyConditions tests the partition key {hash_key} with other than EQ"
                )));
            }
            match required_list(condition, "AttributeValueList")? {
                [value] => scalar(value),
                _ => Err(invalid(
                    "KeyConditions' EQ on the partition key needs exactly one value",
                )),
            }
        }
        (Some(_), Some(_)) => Err(invalid("both KeyConditionExpression and KeyConditions")),
        (None, None) => Err(invalid("a Query without a key condition")),
    }
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

    fn refusal(operation: &str, body: Value) -> Refusal {
        match authorizations(operation, &body, &keys(), |_| None) {
            Ok(auths) => panic!("{operation} {body} was authorised as {auths:?}"),
            Err(error) => error.kind,
        }
    }

    fn leading(operation: &str, body: Value) -> Vec<String> {
        of(operation, body)[0]
            .context
            .get("dynamodb:LeadingKeys")
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn operations_are_matched_exactly_as_dynamodb_spells_them() {
        assert_eq!(operation(Some("DynamoDB_20120810.GetItem")), Ok("GetItem"));
        assert_eq!(
            operation(Some("DynamoDBStreams_20120810.GetRecords")),
            Ok("GetRecords")
        );
        for target in [
            Some("DynamoDB_20120810.getitem"),
            Some("DynamoDB_20120810.GETITEM"),
            Some("dynamodb_20120810.GetItem"),
            Some("DynamoDB_20111205.GetItem"),
            Some("DynamoDB_20120810.GetRecords"),
            Some("DynamoDBStreams_20120810.GetItem"),
            Some("DynamoDB_20120810.GetItem "),
            Some("GetItem"),
            Some("DynamoDB_20120810.Nope"),
            None,
        ] {
            assert_eq!(
                operation(target).map_err(|e| e.kind),
                Err(Refusal::UnknownOperation),
                "{target:?}"
            );
        }
    }

    #[test]
    fn a_key_value_dynamodb_local_would_coerce_is_refused() {
        for key in [
            json!({"pk": {"S": 123}}),
            json!({"pk": {"S": true}}),
            json!({"pk": {"S": "USER#1", "N": "1"}}),
            json!({"pk": {"SS": ["USER#1"]}}),
            json!({"pk": "USER#1"}),
            json!({"sk": {"S": "PROFILE"}}),
            json!(["USER#1"]),
        ] {
            assert_eq!(
                refusal("GetItem", json!({"TableName": "users", "Key": key})),
                Refusal::Validation,
                "{key}"
            );
        }
        assert_eq!(
            refusal(
                "GetItem",
                json!({"TableName": 5, "Key": {"pk": {"S": "USER#1"}}})
            ),
            Refusal::Validation,
            "a table name that is not a string"
        );
    }

    #[test]
    fn transaction_and_batch_items_that_are_not_exactly_one_request_are_refused() {
        let put = json!({"TableName": "users", "Item": {"pk": {"S": "EMAIL#a"}}});
        let delete = json!({"TableName": "users", "Key": {"pk": {"S": "USER#1"}}});
        for body in [
            json!({"TransactItems": {"Put": put}}),
            json!({"TransactItems": [{"Put": put, "Delete": delete}]}),
            json!({"TransactItems": [{}]}),
            json!({}),
        ] {
            assert_eq!(
                refusal("TransactWriteItems", body.clone()),
                Refusal::Validation,
                "{body}"
            );
        }
        for body in [
            json!({"RequestItems": {"users": {"PutRequest": {"Item": put["Item"]}}}}),
            json!({"RequestItems": {"users": [{"PutRequest": {"Item": put["Item"]},
                "DeleteRequest": {"Key": delete["Key"]}}]}}),
            json!({"RequestItems": {"users": [{}]}}),
            json!({"RequestItems": []}),
        ] {
            assert_eq!(
                refusal("BatchWriteItem", body.clone()),
                Refusal::Validation,
                "{body}"
            );
        }
        assert_eq!(
            refusal(
                "BatchGetItem",
                json!({"RequestItems": {"users": {"Keys": {"pk": {"S": "x"}}}}})
            ),
            Refusal::Validation
        );
        let batch = of(
            "BatchWriteItem",
            json!({"RequestItems": {"users": [
                {"PutRequest": {"Item": put["Item"]}}, {"DeleteRequest": {"Key": delete["Key"]}}
            ]}}),
        );
        assert_eq!(
            batch[0].context["dynamodb:LeadingKeys"],
            ["EMAIL#a", "USER#1"]
        );
    }

    #[test]
    fn a_querys_partition_key_is_read_however_its_condition_is_written() {
        let values = json!({":p": {"S": "EMAIL#a"}, ":s": {"S": "EVENT#"}});
        for expression in [
            "pk = :p",
            "pk = :p\tAND\tbegins_with(sk, :s)",
            "pk = :p\nand sk > :s",
            "(pk = :p) AND (sk >= :s)",
            "#p = :p",
        ] {
            assert_eq!(
                leading(
                    "Query",
                    json!({"TableName": "users", "KeyConditionExpression": expression,
                        "ExpressionAttributeNames": {"#p": "pk"},
                        "ExpressionAttributeValues": values})
                ),
                ["EMAIL#a"],
                "{expression:?}"
            );
        }
        assert_eq!(
            leading(
                "Query",
                json!({"TableName": "users", "KeyConditions": {
                    "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "EMAIL#a"}]},
                    "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "E"}]}}})
            ),
            ["EMAIL#a"],
            "the legacy KeyConditions"
        );
    }

    #[test]
    fn a_query_whose_partition_key_cannot_be_read_is_refused() {
        let values = json!({":p": {"S": "EMAIL#a"}});
        for body in [
            json!({"TableName": "users", "KeyConditionExpression": "pk = :p OR pk = :p",
                "ExpressionAttributeValues": values}),
            json!({"TableName": "users", "KeyConditionExpression": "sk = :p",
                "ExpressionAttributeValues": values}),
            json!({"TableName": "users", "KeyConditionExpression": "pk = :p"}),
            json!({"TableName": "users"}),
            json!({"TableName": "users", "KeyConditionExpression": "pk = :p",
                "ExpressionAttributeValues": values,
                "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "USER#1"}]}}}),
            json!({"TableName": "users", "KeyConditions": {
                "pk": {"ComparisonOperator": "eq", "AttributeValueList": [{"S": "USER#1"}]}}}),
            json!({"TableName": "users", "KeyConditions": {
                "pk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "USER#"}]}}}),
            json!({"TableName": "users", "KeyConditions": {
                "sk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "USER#1"}]}}}),
            json!({"TableName": "users", "IndexName": "nope", "KeyConditionExpression": "pk = :p",
                "ExpressionAttributeValues": values}),
        ] {
            assert_eq!(
                refusal("Query", body.clone()),
                Refusal::Validation,
                "{body}"
            );
        }
    }

    #[test]
    fn partiql_is_authorised_by_its_verb_on_its_table_or_index() {
        let auths = of(
            "ExecuteTransaction",
            json!({"TransactStatements": [
                {"Statement": "UPDATE users SET a = 1 WHERE pk = ?"},
                {"Statement": "DELETE FROM \"users\" WHERE pk = ?"},
                {"Statement": "INSERT INTO users VALUE {'pk': ?}"}
            ]}),
        );
        let actions: Vec<(&str, &str)> = auths
            .iter()
            .map(|a| (a.action.as_str(), a.resource.as_str()))
            .collect();
        let table = table_arn("users");
        assert_eq!(
            actions,
            [
                ("dynamodb:PartiQLUpdate", table.as_str()),
                ("dynamodb:PartiQLDelete", table.as_str()),
                ("dynamodb:PartiQLInsert", table.as_str())
            ]
        );
        let select = of(
            "ExecuteStatement",
            json!({"Statement": "SELECT * FROM users.byEmail WHERE email = ?"}),
        );
        assert_eq!(select[0].action, "dynamodb:PartiQLSelect");
        assert_eq!(select[0].resource, format!("{table}/index/byEmail"));
        assert_eq!(
            refusal(
                "ExecuteStatement",
                json!({"Statement": "SELECT * FROM users -- x"})
            ),
            Refusal::Validation
        );
        assert_eq!(
            refusal(
                "BatchExecuteStatement",
                json!({"Statements": {"Statement": "SELECT * FROM users"}})
            ),
            Refusal::Validation
        );
    }

    #[test]
    fn an_operation_the_proxy_cannot_place_is_refused_not_allowed_on_everything() {
        assert_eq!(
            refusal("RestoreTableFromBackup", json!({})),
            Refusal::NotAuthorisable
        );
        assert_eq!(refusal("DescribeTable", json!({})), Refusal::Validation);
    }

    #[test]
    fn a_table_or_index_name_dynamodb_would_not_take_is_refused() {
        for name in [
            "users/index/byEmail",
            "ab",
            "users*",
            "arn:aws:dynamodb:eu-west-1:1:table/users",
            "",
        ] {
            assert_eq!(
                refusal(
                    "GetItem",
                    json!({"TableName": name, "Key": {"pk": {"S": "USER#1"}}})
                ),
                Refusal::Validation,
                "{name:?}"
            );
        }
        assert_eq!(
            refusal("Scan", json!({"TableName": "users", "IndexName": "by/x"})),
            Refusal::Validation
        );
        assert_eq!(
            refusal(
                "ExecuteStatement",
                json!({"Statement": "SELECT * FROM \"a/b\""})
            ),
            Refusal::Validation
        );
        let arn = table_arn("users");
        assert_eq!(of("Scan", json!({"TableName": arn}))[0].resource, arn);
    }

    #[test]
    fn describe_endpoints_has_no_resource() {
        let auths = of("DescribeEndpoints", json!({}));
        assert_eq!(auths[0].resource, "*");
    }
}
