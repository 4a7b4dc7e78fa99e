//! The local IAM proxy, held against DynamoDB Local itself: each odd
//! spelling of a request that once got past the proxy (a body DynamoDB
//! Local reads leniently, a key condition written another way, a lowercase
//! operation, PartiQL) is sent through the proxy under get-user's or
//! list-user-events' real role, and straight to DynamoDB Local. The proxy
//! must refuse it (leaving the table as it was, and recording the refusal)
//! or pass it having authorised what DynamoDB Local then does (the same
//! answer as the direct call, reading only the partition keys authorised,
//! and the decision recorded).

use std::collections::HashMap;
use std::sync::Arc;

use local_api::iam::coverage::{AccessLog, AccessRecord};
use local_api::iam::dynamodb::{KeySchema, authorizations, operation};
use local_api::iam::proxy::{IamProxy, Principal};
use local_api::stack::deployment::{Deployment, LocalResources};
use local_api::stack::template::Template;
use serde_json::{Value, json};

use crate::support::{dynamodb_endpoint, fresh_table};

/// The access keys the two roles are given here.
const GET_USER: &str = "AKIAGETUSER";
const LIST_EVENTS: &str = "AKIALISTEVENTS";

struct Harness {
    client: reqwest::Client,
    proxy: IamProxy,
    log: Arc<AccessLog>,
    table: String,
    keys: KeySchema,
}

/// What a DynamoDB endpoint answered.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    /// The error's name (`SerializationException`), if it is one.
    fn error(&self) -> Option<&str> {
        self.body["__type"]
            .as_str()
            .and_then(|t| t.rsplit('#').next())
    }
}

impl Harness {
    async fn start() -> Self {
        let template = Template::load(&local_api::default_template_path()).expect("template.yaml");
        let table = fresh_table();
        let direct = local_api::dynamodb::table::local_client(&dynamodb_endpoint()).await;
        local_api::dynamodb::table::create_if_missing(&direct, &table, &template.table)
            .await
            .expect("table created");
        let local = LocalResources {
            table: table.clone(),
            stream_arn: None,
        };
        let deployment = Deployment::load(
            &local_api::stack::deployment::default_translation_dir(),
            &local_api::default_template_path(),
            "none",
            local.clone(),
        )
        .expect("the template's translation");
        let mut principals = HashMap::new();
        for function in deployment.functions().expect("functions") {
            let key = match function.binary.as_str() {
                "get-user" => GET_USER,
                "list-user-events" => LIST_EVENTS,
                _ => continue,
            };
            let role = deployment.role(&function.role).expect("role");
            principals.insert(
                key.to_owned(),
                Principal {
                    function: function.binary.clone(),
                    session: role.session_arn(&function.name),
                    policies: role.policies().cloned().collect(),
                },
            );
        }
        assert_eq!(principals.len(), 2, "get-user and list-user-events");
        let keys = KeySchema::of(&template.table);
        let log = Arc::new(AccessLog::default());
        let proxy = IamProxy::start(
            &dynamodb_endpoint(),
            local_api::dynamodb::table::LOCAL_ACCESS_KEY,
            principals,
            keys.clone(),
            local,
            Arc::clone(&log),
        )
        .await
        .expect("proxy");
        Self {
            client: reqwest::Client::new(),
            proxy,
            log,
            table,
            keys,
        }
    }

    /// Posts `body` with `target` to `url` as `key` (DynamoDB Local does
    /// not check signatures; the proxy reads the key from the credential).
    async fn post(&self, url: &str, key: &str, targets: &[&str], body: &[u8]) -> Answer {
        let mut request = self.client.post(format!("{url}/"));
        for target in targets {
            request = request.header("x-amz-target", *target);
        }
        let response = request
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_vec())
            .send()
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn through_proxy(&self, key: &str, targets: &[&str], body: &[u8]) -> Answer {
        self.post(&self.proxy.url(), key, targets, body).await
    }

    async fn direct_with(&self, targets: &[&str], body: &[u8]) -> Answer {
        self.post(
            &dynamodb_endpoint(),
            local_api::dynamodb::table::LOCAL_ACCESS_KEY,
            targets,
            body,
        )
        .await
    }

    async fn direct(&self, target: &str, body: &[u8]) -> Answer {
        self.direct_with(&[target], body).await
    }

    /// Every item of the table, sorted.
    async fn items(&self) -> Vec<Value> {
        let body = json!({"TableName": self.table}).to_string();
        let answer = self.direct("DynamoDB_20120810.Scan", body.as_bytes()).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let mut items = answer.body["Items"].as_array().cloned().unwrap_or_default();
        items.sort_by_key(Value::to_string);
        items
    }

    async fn put(&self, pk: &str, sk: &str) {
        let body = json!({"TableName": self.table,
            "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "note": {"S": "seeded"}}})
        .to_string();
        let answer = self
            .direct("DynamoDB_20120810.PutItem", body.as_bytes())
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    fn recorded(&self, function: &str, action: &str) -> Vec<AccessRecord> {
        self.log
            .records()
            .into_iter()
            .filter(|r| r.function == function && r.action == action)
            .collect()
    }
}

/// How the proxy must answer a case.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused unread with this DynamoDB error, recorded with a reason.
    Unread(&'static str),
    /// Read, and refused by the role: `AccessDeniedException`, recorded as
    /// a refused decision on this action.
    Denied(&'static str),
    /// Read, allowed and passed on: the same answer as DynamoDB Local's.
    Passed(&'static str),
}

struct Case {
    what: &'static str,
    key: &'static str,
    /// Its `X-Amz-Target` headers (one but in one case).
    targets: Vec<&'static str>,
    body: Vec<u8>,
    expect: Expect,
    /// Whether DynamoDB Local runs the request when sent to it directly
    /// (the bypass the proxy once let through).
    direct_runs: bool,
}

fn function_of(key: &str) -> &'static str {
    if key == GET_USER {
        "get-user"
    } else {
        "list-user-events"
    }
}

/// The cases, over `table`, where `victim` is another user's email claim.
fn cases(table: &str, victim: &str) -> Vec<Case> {
    let steal = json!({"TransactItems": [
        {"Put": {"TableName": table, "Item": {"pk": {"S": "EMAIL#stolen@example.com"}, "sk": {"S": "CLAIM"}}}},
        {"Delete": {"TableName": table, "Key": {"pk": {"S": victim}, "sk": {"S": "CLAIM"}}}}
    ]})
    .to_string();
    let batch = json!({"RequestItems": {table: [
        {"DeleteRequest": {"Key": {"pk": {"S": victim}, "sk": {"S": "CLAIM"}}}}
    ]}})
    .to_string();
    let surrogate = json!({"TransactItems": [
        {"Put": {"TableName": table, "Item": {"pk": {"S": "EMAIL#stolen@example.com"}, "sk": {"S": "CLAIM"}, "x": {"S": "SURROGATE"}}}}
    ]})
    .to_string()
    .replace("SURROGATE", "\\ud800");
    let query = |expression: &str, partition: &str| {
        let mut values = json!({":p": {"S": partition}});
        // DynamoDB refuses a value the expression does not use.
        if expression.contains(":s") {
            values[":s"] = json!({"S": "C"});
        }
        json!({"TableName": table, "KeyConditionExpression": expression,
            "ExpressionAttributeValues": values})
        .to_string()
        .into_bytes()
    };
    let legacy = |partition: &str| {
        json!({"TableName": table, "KeyConditions": {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": partition}]}}})
        .to_string()
        .into_bytes()
    };
    let get = |partition: &str| {
        json!({"TableName": table, "Key": {"pk": {"S": partition}, "sk": {"S": "PROFILE"}}})
            .to_string()
    };
    let statement = |text: String| json!({"Statement": text}).to_string().into_bytes();
    let mut trailing = steal.clone().into_bytes();
    trailing.extend_from_slice(b" garbage");
    let mut second = steal.clone().into_bytes();
    second.extend_from_slice(b"{}");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(steal.as_bytes());
    let mut batch_trailing = batch.into_bytes();
    batch_trailing.extend_from_slice(b"]");
    let duplicate = format!(
        r#"{{"TableName":"{table}","Key":{{"pk":{{"S":"USER#1"}},"sk":{{"S":"CLAIM"}}}},"Key":{{"pk":{{"S":"{victim}"}},"sk":{{"S":"CLAIM"}}}}}}"#
    );
    let coerced =
        format!(r#"{{"TableName":"{table}","Key":{{"pk":{{"S":12345}},"sk":{{"S":"PROFILE"}}}}}}"#);
    let case = |what, key, target, body: Vec<u8>, expect, direct_runs| Case {
        what,
        key,
        targets: vec![target],
        body,
        expect,
        direct_runs,
    };
    use Expect::{Denied, Passed, Unread};
    let two_targets = Case {
        what: "a read with a second X-Amz-Target naming a delete",
        key: GET_USER,
        targets: vec!["DynamoDB_20120810.GetItem", "DynamoDB_20120810.DeleteItem"],
        body: get("USER#1").into_bytes(),
        expect: Unread("ValidationException"),
        direct_runs: true,
    };
    vec![
        two_targets,
        case("a transaction with bytes after the JSON", GET_USER, "DynamoDB_20120810.TransactWriteItems", trailing, Unread("SerializationException"), true),
        case("a transaction followed by a second JSON value", GET_USER, "DynamoDB_20120810.TransactWriteItems", second, Unread("SerializationException"), true),
        case("a transaction after a byte-order mark", GET_USER, "DynamoDB_20120810.TransactWriteItems", bom, Unread("SerializationException"), true),
        case("a transaction with a lone surrogate", GET_USER, "DynamoDB_20120810.TransactWriteItems", surrogate.into_bytes(), Unread("SerializationException"), true),
        case("a batch write with bytes after the JSON", GET_USER, "DynamoDB_20120810.BatchWriteItem", batch_trailing, Unread("SerializationException"), true),
        case("a read with its Key twice (DynamoDB Local keeps the last)", GET_USER, "DynamoDB_20120810.GetItem", duplicate.into_bytes(), Unread("SerializationException"), true),
        case("a read whose key value is a number DynamoDB Local makes a string", GET_USER, "DynamoDB_20120810.GetItem", coerced.into_bytes(), Unread("ValidationException"), true),
        case("a plain transaction the role does not grant", GET_USER, "DynamoDB_20120810.TransactWriteItems", steal.into_bytes(), Denied("dynamodb:PutItem"), true),
        case("a query of another partition with a tab around AND", LIST_EVENTS, "DynamoDB_20120810.Query", query("pk = :p\tAND\tbegins_with(sk, :s)", victim), Denied("dynamodb:Query"), true),
        case("a query of another partition with a newline around AND", LIST_EVENTS, "DynamoDB_20120810.Query", query("pk = :p\nAND\nbegins_with(sk, :s)", victim), Denied("dynamodb:Query"), true),
        case("a query of another partition in parentheses", LIST_EVENTS, "DynamoDB_20120810.Query", query("(pk = :p) and (begins_with(sk, :s))", victim), Denied("dynamodb:Query"), true),
        case("a query of another partition written value first", LIST_EVENTS, "DynamoDB_20120810.Query", query(":p = pk", victim), Denied("dynamodb:Query"), true),
        case("a query of another partition through KeyConditions", LIST_EVENTS, "DynamoDB_20120810.Query", legacy(victim), Denied("dynamodb:Query"), true),
        case("a query with OR", LIST_EVENTS, "DynamoDB_20120810.Query", query("pk = :p OR pk = :s", victim), Unread("ValidationException"), false),
        case("a query of its own partition with a newline around AND", LIST_EVENTS, "DynamoDB_20120810.Query", query("pk = :p\r\nAND begins_with(sk, :s)", "USER#1"), Passed("dynamodb:Query"), true),
        case("a query of its own partition through KeyConditions", LIST_EVENTS, "DynamoDB_20120810.Query", legacy("USER#1"), Passed("dynamodb:Query"), true),
        case("a lowercase operation", GET_USER, "DynamoDB_20120810.getitem", get("USER#1").into_bytes(), Unread("UnknownOperationException"), false),
        case("an uppercase operation", GET_USER, "DynamoDB_20120810.GETITEM", get("USER#1").into_bytes(), Unread("UnknownOperationException"), false),
        case("a lowercase service", GET_USER, "dynamodb_20120810.GetItem", get("USER#1").into_bytes(), Unread("UnknownOperationException"), false),
        case("a plain read of its own partition", GET_USER, "DynamoDB_20120810.GetItem", get("USER#1").into_bytes(), Passed("dynamodb:GetItem"), true),
        case("a PartiQL SELECT of another partition", GET_USER, "DynamoDB_20120810.ExecuteStatement", statement(format!("SELECT * FROM \"{table}\" WHERE pk = '{victim}'")), Denied("dynamodb:PartiQLSelect"), true),
        case("a PartiQL SELECT of its own partition", GET_USER, "DynamoDB_20120810.ExecuteStatement", statement(format!("select * from \"{table}\" where pk = 'USER#1'")), Denied("dynamodb:PartiQLSelect"), true),
        case("a PartiQL INSERT", GET_USER, "DynamoDB_20120810.ExecuteStatement", statement(format!("INSERT INTO \"{table}\" VALUE {{'pk': 'EMAIL#partiql@example.com', 'sk': 'CLAIM'}}")), Denied("dynamodb:PartiQLInsert"), true),
        case("a PartiQL UPDATE in a batch", GET_USER, "DynamoDB_20120810.BatchExecuteStatement",
            json!({"Statements": [{"Statement": format!("UPDATE \"{table}\" SET note = 'x' WHERE pk = '{victim}' AND sk = 'CLAIM'")}]}).to_string().into_bytes(),
            Denied("dynamodb:PartiQLUpdate"), true),
        case("a PartiQL DELETE in a transaction", GET_USER, "DynamoDB_20120810.ExecuteTransaction",
            json!({"TransactStatements": [{"Statement": format!("DELETE FROM \"{table}\" WHERE pk = '{victim}' AND sk = 'CLAIM'")}]}).to_string().into_bytes(),
            Denied("dynamodb:PartiQLDelete"), true),
        case("a PartiQL SELECT hiding its WHERE in a comment", GET_USER, "DynamoDB_20120810.ExecuteStatement", statement(format!("SELECT * FROM \"{table}\" -- WHERE pk = 'USER#1'")), Unread("ValidationException"), true),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_refuses_or_authorises_exactly_what_dynamodb_local_runs_for_every_odd_spelling() {
    let harness = Harness::start().await;
    let mut summary = Vec::new();
    for (n, case) in cases(&harness.table, "EMAIL#victim@example.com")
        .into_iter()
        .enumerate()
    {
        // A fresh table state per case: the direct calls of earlier cases
        // write and delete.
        let before_items = harness.items().await;
        for item in before_items {
            let key =
                json!({"TableName": harness.table, "Key": {"pk": item["pk"], "sk": item["sk"]}});
            harness
                .direct("DynamoDB_20120810.DeleteItem", key.to_string().as_bytes())
                .await;
        }
        harness.put("USER#1", "PROFILE").await;
        harness.put("USER#1", "CLAIM").await;
        harness.put("EMAIL#victim@example.com", "CLAIM").await;
        let before = harness.items().await;
        let function = function_of(case.key);
        let what = format!("case {n}, {}", case.what);

        let proxied = harness
            .through_proxy(case.key, &case.targets, &case.body)
            .await;
        let after_proxy = harness.items().await;
        match case.expect {
            Expect::Unread(error) => {
                assert_eq!(
                    (proxied.status, proxied.error()),
                    (400, Some(error)),
                    "{what}: {proxied:?}"
                );
                assert!(
                    proxied.body["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{what}: {proxied:?}"
                );
                assert_eq!(after_proxy, before, "{what}: the table changed");
                let refused: Vec<AccessRecord> = harness
                    .log
                    .records()
                    .into_iter()
                    .filter(|r| {
                        r.function == function
                            && !r.allowed
                            && r.reason.as_deref() == proxied.body["message"].as_str()
                    })
                    .collect();
                assert!(
                    !refused.is_empty(),
                    "{what}: the refusal is not in the IAM record: {:?}",
                    harness.log.records()
                );
            }
            Expect::Denied(action) => {
                assert_eq!(
                    (proxied.status, proxied.error()),
                    (400, Some("AccessDeniedException")),
                    "{what}: {proxied:?}"
                );
                assert!(
                    proxied.body["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(action)),
                    "{what}: {proxied:?}"
                );
                assert_eq!(after_proxy, before, "{what}: the table changed");
                assert!(
                    harness
                        .recorded(function, action)
                        .iter()
                        .any(|r| !r.allowed && r.reason.is_none()),
                    "{what}: the refused {action} is not in the IAM record"
                );
            }
            Expect::Passed(action) => {
                assert_eq!(proxied.status, 200, "{what}: {proxied:?}");
                assert!(
                    harness.recorded(function, action).iter().any(|r| r.allowed),
                    "{what}: the allowed {action} is not in the IAM record"
                );
                // What was authorised: the partition keys the proxy read.
                let operation = operation(Some(case.targets[0])).expect("a known operation");
                let body: Value = serde_json::from_slice(&case.body).expect("JSON");
                let authorised: Vec<String> =
                    authorizations(operation, &body, &harness.keys, |_| None)
                        .expect("authorizations")
                        .into_iter()
                        .flat_map(|a| {
                            a.context
                                .get("dynamodb:LeadingKeys")
                                .cloned()
                                .unwrap_or_default()
                        })
                        .collect();
                let read: Vec<&Value> = proxied.body["Items"]
                    .as_array()
                    .map(|items| items.iter().collect())
                    .unwrap_or_else(|| proxied.body.get("Item").into_iter().collect());
                assert!(!read.is_empty(), "{what}: read nothing: {proxied:?}");
                for item in read {
                    let pk = item["pk"]["S"].as_str().unwrap_or_default();
                    assert!(
                        authorised.iter().any(|k| k == pk),
                        "{what}: DynamoDB Local read {pk}, authorised {authorised:?}"
                    );
                }
            }
        }

        let direct = harness.direct_with(&case.targets, &case.body).await;
        if let Expect::Passed(_) = case.expect {
            assert_eq!(direct, proxied, "{what}: the proxy changed the answer");
        }
        if case.direct_runs {
            assert_eq!(
                direct.status, 200,
                "{what}: DynamoDB Local no longer runs it directly: {direct:?}"
            );
        } else {
            assert_eq!(
                direct.status, 400,
                "{what}: DynamoDB Local runs it directly: {direct:?}"
            );
            // DynamoDB Local names a misspelt service InvalidAction; the
            // proxy answers it as any other unknown operation.
            if let Expect::Unread(error) = case.expect
                && case.targets[0].starts_with("DynamoDB_20120810.")
            {
                assert_eq!(
                    direct.error(),
                    Some(error),
                    "{what}: DynamoDB Local answers otherwise"
                );
            }
        }
        summary.push(format!(
            "{:<70} proxy {} {:<28} direct {} {}",
            case.what,
            proxied.status,
            proxied.error().unwrap_or("-"),
            direct.status,
            direct.error().unwrap_or("-")
        ));
    }
    println!("{}", summary.join("\n"));
    println!("IAM record:");
    for record in harness.log.records() {
        println!(
            "  {:<17} {:<55} allowed={} {}",
            record.function,
            record.action,
            record.allowed,
            record.reason.unwrap_or_default()
        );
    }
}
