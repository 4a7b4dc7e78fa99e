//! Each route's spans through `local-api --lambda --traces-file`, black-box:
//! the functions run as their own processes and export over OTLP to the
//! twin's receiver, which writes each span as an OTLP JSON line. What is
//! expected comes from the docs, not the code: docs/operating.md, "Traces"
//! (a client's `traceparent` is the parent, one `SERVER` span per
//! invocation named by its route with the FaaS and HTTP attributes, one
//! `CLIENT` span per DynamoDB call; an unsampled invocation sends nothing) and
//! docs/storage.md's access patterns (which DynamoDB calls each route
//! makes, in order).

use std::path::Path;
use std::time::{Duration, Instant};

use local_api::lambda::LambdaOptions;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::support::{Api, Backend, lambda_options};

/// OTLP's `SpanKind` numbers.
const SERVER: u64 = 2;
const CLIENT: u64 = 3;
/// OTLP's `Status.code` for an error.
const STATUS_ERROR: u64 = 2;

/// The DynamoDB operations docs/storage.md's access-pattern table gives the
/// route in `row` (its first cell, such as "`GET /users/{id}`"), in order.
fn documented_calls(row: &str) -> Vec<String> {
    const OPERATIONS: [&str; 6] = [
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "TransactWriteItems",
    ];
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/storage.md");
    let text = std::fs::read_to_string(path).expect("docs/storage.md is readable");
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("| {row} |")))
        .unwrap_or_else(|| panic!("docs/storage.md has a row for {row}"));
    let calls = line.split('|').nth(2).expect("a second cell");
    calls
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| OPERATIONS.contains(word))
        .map(|word| format!("DynamoDB.{word}"))
        .collect()
}

/// A W3C trace context of this test's own: `(traceparent, trace id, parent
/// span id)`, sampled or not.
fn trace_context(sampled: bool) -> (String, String, String) {
    let trace = format!("{:032x}", fastrand::u128(1..));
    let parent = format!("{:016x}", fastrand::u64(1..));
    let flags = if sampled { "01" } else { "00" };
    (format!("00-{trace}-{parent}-{flags}"), trace, parent)
}

fn attribute<'s>(span: &'s Value, key: &str) -> &'s Value {
    span["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|attribute| attribute["key"] == key)
        .map_or(&Value::Null, |attribute| &attribute["value"])
}

/// The spans of trace `trace` in the traces file's whole lines, once its
/// SERVER span has arrived (the spans of an invocation are exported
/// together, after its response), or after `wait` with none.
async fn spans_of(file: &Path, trace: &str, wait: Duration) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // The receiver may be appending a line as we read: a line counts
        // once its newline is there (a whole line that is not JSON fails).
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        let spans: Vec<Value> = whole
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .filter(|span: &Value| span["traceId"] == trace)
            .collect();
        if spans.iter().any(|span| span["kind"] == SERVER) || started.elapsed() > wait {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `request` with a sampled `traceparent` and `tracestate`, and checks
/// the trace it continues: one SERVER span for `route` answering `status`,
/// child of the client's span, then one CLIENT span per DynamoDB call,
/// children of it, as docs/storage.md's row `row` lists them.
async fn assert_traced(
    file: &Path,
    table: &str,
    request: RequestBuilder,
    route: &str,
    status: u16,
    row: &str,
) -> Value {
    let (traceparent, trace, parent) = trace_context(true);
    let response = request
        .header("traceparent", &traceparent)
        .header("tracestate", "vendor=opaque")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), status, "{route}");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let spans = spans_of(file, &trace, Duration::from_secs(20)).await;
    let servers: Vec<&Value> = spans.iter().filter(|s| s["kind"] == SERVER).collect();
    assert_eq!(servers.len(), 1, "{route}: one SERVER span in {spans:#?}");
    let server = servers[0];
    assert_eq!(server["name"], route);
    assert_eq!(
        server["parentSpanId"], parent,
        "{route}: the client's span is the parent"
    );
    assert_eq!(server["traceState"], "vendor=opaque", "{route}");
    let (method, path) = route.split_once(' ').expect("a method and a path");
    assert_eq!(
        attribute(server, "http.request.method"),
        &json!({ "stringValue": method })
    );
    assert_eq!(
        attribute(server, "http.route"),
        &json!({ "stringValue": path })
    );
    assert_eq!(
        attribute(server, "http.response.status_code"),
        &json!({ "intValue": status.to_string() }),
        "{route}"
    );
    assert!(
        attribute(server, "faas.invocation_id")["stringValue"].is_string(),
        "{route}: {server}"
    );
    assert!(attribute(server, "faas.coldstart")["boolValue"].is_boolean());
    assert!(attribute(server, "cloud.account.id")["stringValue"].is_string());
    assert_ne!(server["status"]["code"], STATUS_ERROR, "{route}: not a 5xx");
    // The invocation's X-Ray trace, another trace than the client's, is a
    // link.
    let links = server["links"].as_array().expect("links");
    assert_eq!(
        links.len(),
        1,
        "{route}: the X-Ray trace is linked: {server}"
    );
    assert_ne!(links[0]["traceId"], trace);

    let mut clients: Vec<&Value> = spans.iter().filter(|s| s["kind"] == CLIENT).collect();
    clients.sort_by_key(|s| {
        s["startTimeUnixNano"]
            .as_str()
            .and_then(|t| t.parse::<u128>().ok())
            .unwrap_or_default()
    });
    let names: Vec<&str> = clients.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, documented_calls(row), "{route}: the DynamoDB calls");
    for client in clients {
        assert_eq!(
            client["parentSpanId"], server["spanId"],
            "{route}: {client}"
        );
        assert_eq!(
            attribute(client, "db.system.name"),
            &json!({ "stringValue": "aws.dynamodb" })
        );
        let operation = client["name"]
            .as_str()
            .and_then(|name| name.strip_prefix("DynamoDB."))
            .expect("DynamoDB.<operation>");
        assert_eq!(
            attribute(client, "rpc.method"),
            &json!({ "stringValue": operation })
        );
        assert_eq!(
            attribute(client, "aws.dynamodb.table_names"),
            &json!({ "arrayValue": { "values": [{ "stringValue": table }] } }),
            "{route}: {client}"
        );
    }
    assert_eq!(
        spans.len(),
        1 + names.len(),
        "{route}: nothing else in the trace"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_continues_the_client_s_trace_with_a_span_per_dynamodb_call() {
    let file = std::env::temp_dir().join(format!("spans-{}.jsonl", ulid::Ulid::new()));
    // One instance of each function: a second invocation waits for the
    // first one's export (Lambda waits for every extension).
    let options = LambdaOptions {
        traces_file: Some(file.clone()),
        instances: 1,
        ..lambda_options()
    };
    let api = Api::local_with(Backend::Lambda, None, options).await;
    let table = api.table().to_owned();
    let post = |path: &str| api.request(Method::POST, path);

    let created = assert_traced(
        &file,
        &table,
        post("/users").json(&json!({ "email": api.email("ada"), "name": "Ada" })),
        "POST /users",
        201,
        "`POST /users`",
    )
    .await;
    let id = created["id"].as_str().expect("an id").to_owned();
    let user = format!("/users/{id}");
    assert_traced(
        &file,
        &table,
        api.request(Method::GET, &user),
        "GET /users/{id}",
        200,
        "`GET /users/{id}`",
    )
    .await;
    assert_traced(
        &file,
        &table,
        api.request(Method::GET, "/users?limit=5"),
        "GET /users",
        200,
        "`GET /users?limit=&cursor=`",
    )
    .await;
    assert_traced(
        &file,
        &table,
        api.request(Method::PATCH, &user)
            .json(&json!({ "name": "Ada Lovelace" })),
        "PATCH /users/{id}",
        200,
        "`PATCH /users/{id}` (name only)",
    )
    .await;
    // The history worker writes the events from the table's stream.
    let events = format!("{user}/events");
    let started = Instant::now();
    while api.get_json(&events).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the history arrives"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_traced(
        &file,
        &table,
        api.request(Method::GET, &events),
        "GET /users/{id}/events",
        200,
        "`GET /users/{id}/events`",
    )
    .await;
    assert_traced(
        &file,
        &table,
        api.request(Method::DELETE, &user),
        "DELETE /users/{id}",
        204,
        "`DELETE /users/{id}`",
    )
    .await;

    // An unsampled client trace: the function records and sends nothing.
    let (traceparent, trace, _) = trace_context(false);
    let response = api
        .request(Method::GET, &user)
        .header("traceparent", &traceparent)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 404);
    // A later sampled request to the same instance: its spans arriving
    // shows that the unsampled one's would have come first.
    assert_traced(
        &file,
        &table,
        api.request(Method::GET, &user),
        "GET /users/{id}",
        404,
        "`GET /users/{id}`",
    )
    .await;
    assert_eq!(
        spans_of(&file, &trace, Duration::ZERO).await,
        Vec::<Value>::new(),
        "nothing of the unsampled trace"
    );
    let _ = std::fs::remove_file(file);
}
