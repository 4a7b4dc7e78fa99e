//! The fault suite: every writing route, through the local API on real
//! DynamoDB Local, behind a proxy that stalls, throttles, fails, cancels,
//! drops connections or loses the answer of an applied write. Each case
//! checks the status, `Retry-After`, that the answer came within the
//! request budget, and then that the table is consistent: every user holds
//! exactly its email claim, no claim or tombstone is orphaned, every
//! idempotency record points at a user that exists or was deleted, and no
//! history is ahead of its user.
//!
//! Each case prints one row of the fault × route table (see with
//! `--nocapture`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use local_api::StoreChoice;
use local_api::dynamodb::fault::{Fault, FaultProxy, Rule};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Attributes, dynamodb_endpoint, fresh_table, scan_table, serve_local};

/// The longest any case may take end to end: the request budget
/// (`common::http::REQUEST_BUDGET`, 5 s) plus slack for a loaded machine;
/// the bound for the local API is 7 s.
const END_TO_END_LIMIT: Duration = Duration::from_secs(7);

/// The local API on a fresh table, its DynamoDB calls through a fault proxy.
struct Rig {
    proxy: FaultProxy,
    base: String,
    http: reqwest::Client,
    table: String,
    direct: aws_sdk_dynamodb::Client,
    /// In `--lambda` mode, the running functions.
    functions: Option<std::sync::Arc<local_api::lambda::Functions>>,
}

impl Rig {
    /// The functions in-process.
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// With `lambda`, each function as its own binary under its role (the
    /// fault proxy sits behind the IAM proxy), with the template's timeout.
    async fn start_with(lambda: Option<local_api::lambda::LambdaOptions>) -> Self {
        let proxy = FaultProxy::start(&dynamodb_endpoint())
            .await
            .expect("fault proxy starts");
        let table = fresh_table();
        let store = StoreChoice::DynamoDb {
            endpoint: proxy.url(),
            table: table.clone(),
        };
        let (base, functions) = serve_local(&store, None, lambda).await;
        Self {
            proxy,
            base,
            http: reqwest::Client::new(),
            table,
            direct: local_api::dynamodb::table::local_client(&dynamodb_endpoint()).await,
            functions,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Creates a user with no fault injected; returns its id.
    async fn user(&self, email: &str) -> String {
        let response = self
            .request(Method::POST, "/users")
            .json(&json!({"email": email, "name": "Ada"}))
            .send()
            .await
            .expect("POST /users");
        assert_eq!(response.status(), 201, "set-up create of {email}");
        let body: Value = response.json().await.expect("user");
        body["id"].as_str().expect("id").to_owned()
    }

    /// The user's history as (type, version) pairs, once it holds `count`
    /// events or after 60 s.
    async fn history_of(&self, id: &str, count: usize) -> Vec<(String, u64)> {
        let started = Instant::now();
        loop {
            let page: Value = self
                .request(Method::GET, &format!("/users/{id}/events"))
                .send()
                .await
                .expect("GET events")
                .json()
                .await
                .unwrap_or_default();
            let events: Vec<(String, u64)> = page["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|e| {
                            (
                                e["type"].as_str().unwrap_or_default().to_owned(),
                                e["version"].as_u64().unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if events.len() >= count || started.elapsed() > Duration::from_secs(60) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What is wrong with the table; empty when it is consistent.
    async fn inconsistencies(&self) -> Vec<String> {
        let mut users = HashMap::new();
        let mut tombstones = HashMap::new();
        let mut claims = HashMap::new();
        let mut keys = Vec::new();
        let mut events: HashMap<String, u64> = HashMap::new();
        // Read directly, not through the proxy.
        for item in scan_table(&self.direct, &self.table).await {
            let (pk, sk) = (item.text("pk"), item.text("sk"));
            if let Some(id) = pk.strip_prefix("USER#") {
                match sk.as_str() {
                    "PROFILE" => {
                        users.insert(id.to_owned(), (item.text("email"), item.number("version")));
                    }
                    "DELETED" => {
                        tombstones.insert(id.to_owned(), item.number("version"));
                    }
                    _ => {
                        let latest = events.entry(id.to_owned()).or_default();
                        *latest = (*latest).max(item.number("version"));
                    }
                }
            } else if let Some(email) = pk.strip_prefix("EMAIL#") {
                claims.insert(email.to_owned(), item.text("userId"));
            } else if pk.starts_with("IDEMPOTENCY#") {
                keys.push(item.text("userId"));
            }
        }
        let mut wrong = Vec::new();
        for (id, (email, _)) in &users {
            if claims.get(email) != Some(id) {
                wrong.push(format!("user {id} does not hold the claim of {email}"));
            }
            if tombstones.contains_key(id) {
                wrong.push(format!("user {id} exists beside its tombstone"));
            }
        }
        for (email, id) in &claims {
            if users.get(id).is_none_or(|(held, _)| held != email) {
                wrong.push(format!("orphan claim of {email} for {id}"));
            }
        }
        for id in keys {
            if !users.contains_key(&id) && !tombstones.contains_key(&id) {
                wrong.push(format!("idempotency record points at no user: {id}"));
            }
        }
        for (id, latest) in events {
            let current = users
                .get(&id)
                .map(|(_, version)| *version)
                .or_else(|| tombstones.get(&id).copied())
                .unwrap_or_default();
            if latest > current {
                wrong.push(format!("history of {id} at {latest}, ahead of {current}"));
            }
        }
        wrong
    }
}

/// A writing route, as the table names it.
#[derive(Debug, Clone, Copy)]
enum Route {
    Create,
    ChangeEmail,
    ChangeName,
    Delete,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Self::Create => "POST /users",
            Self::ChangeEmail => "PATCH email",
            Self::ChangeName => "PATCH name",
            Self::Delete => "DELETE",
        }
    }

    /// The DynamoDB call that writes.
    fn write(self) -> &'static str {
        match self {
            Self::ChangeName => "UpdateItem",
            _ => "TransactWriteItems",
        }
    }

    fn success(self) -> StatusCode {
        match self {
            Self::Create => StatusCode::CREATED,
            Self::ChangeEmail | Self::ChangeName => StatusCode::OK,
            Self::Delete => StatusCode::NO_CONTENT,
        }
    }
}

/// What a fault case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The route's success, the write applied exactly once.
    Success,
    /// 503 with `Retry-After`, nothing written.
    Unavailable,
}

/// The faults every route meets, with what each should answer: a
/// transient fault that clears is absorbed by retries, one that persists
/// becomes a 503.
fn cases(route: Route) -> Vec<(String, Rule, Expect)> {
    let write = Some(route.write());
    let case = |name: &str, rule: Rule, expect: Expect| (name.to_owned(), rule, expect);
    let once_then_always = |name: &str, fault: &dyn Fn() -> Fault| {
        [
            case(
                &format!("{name} once"),
                Rule::once(write, fault()),
                Expect::Success,
            ),
            case(
                &format!("{name} always"),
                Rule::always(write, fault()),
                Expect::Unavailable,
            ),
        ]
    };
    let mut cases = vec![
        case(
            "stalled",
            Rule::always(None, Fault::Stall),
            Expect::Unavailable,
        ),
        case(
            "delayed 300 ms",
            Rule::always(None, Fault::Delay(Duration::from_millis(300))),
            Expect::Success,
        ),
        case(
            "reset once",
            Rule::once(write, Fault::Reset),
            Expect::Success,
        ),
        case(
            "answer lost once (applied)",
            Rule::once(write, Fault::LoseResponse),
            Expect::Success,
        ),
        case(
            "ProvisionedThroughputExceeded always",
            Rule::always(write, Fault::throughput_exceeded()),
            Expect::Unavailable,
        ),
        case(
            "TransactionInProgress always",
            Rule::always(write, Fault::transaction_in_progress()),
            Expect::Unavailable,
        ),
        case(
            "ThrottlingException twice, then through",
            Rule {
                times: Some(2),
                ..Rule::always(write, Fault::throttling())
            },
            Expect::Success,
        ),
    ];
    cases.extend(once_then_always("ThrottlingException", &Fault::throttling));
    cases.extend(once_then_always(
        "InternalServerError (500)",
        &Fault::internal_server_error,
    ));
    if route.write() == "TransactWriteItems" {
        cases.extend(once_then_always("cancelled: TransactionConflict", &|| {
            Fault::cancel(&["None", "TransactionConflict"])
        }));
    }
    cases
}

/// One row of the table of outcomes `--nocapture` prints.
struct Row<'a> {
    what: String,
    fault: &'a str,
    status: StatusCode,
    retry_after: Option<&'a str>,
    took: Duration,
    consistent: bool,
}

impl<'a> Row<'a> {
    /// The row of `response` to a request made under a stall.
    fn stalled(
        what: String,
        response: &'a reqwest::Response,
        took: Duration,
        consistent: bool,
    ) -> Self {
        Self {
            what,
            fault: "stalled",
            status: response.status(),
            retry_after: retry_after(response),
            took,
            consistent,
        }
    }

    fn print(&self) {
        println!(
            "| {} | {} | {} | {} | {} ms | {} |",
            self.what,
            self.fault,
            self.status.as_u16(),
            self.retry_after.unwrap_or("-"),
            self.took.as_millis(),
            if self.consistent { "yes" } else { "NO" }
        );
    }
}

/// The `Retry-After` header of `response`, if any.
fn retry_after(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
}

/// Runs every fault case against `route` and returns the failures.
async fn run(route: Route) {
    let rig = Rig::start().await;
    let mut failures = Vec::new();
    for (i, (fault, rule, expect)) in cases(route).into_iter().enumerate() {
        let email = format!("u{i}@faults.example.com");
        let id = match route {
            Route::Create => String::new(),
            _ => rig.user(&email).await,
        };
        let request = match route {
            Route::Create => rig
                .request(Method::POST, "/users")
                .header("idempotency-key", format!("key-{i}"))
                .json(&json!({"email": email, "name": "Ada"})),
            Route::ChangeEmail => rig
                .request(Method::PATCH, &format!("/users/{id}"))
                .json(&json!({"email": format!("v{i}@faults.example.com")})),
            Route::ChangeName => rig
                .request(Method::PATCH, &format!("/users/{id}"))
                .header("if-match", "\"1\"")
                .json(&json!({"name": "Countess"})),
            Route::Delete => rig
                .request(Method::DELETE, &format!("/users/{id}"))
                .header("if-match", "\"1\""),
        };
        rig.proxy.inject(rule);
        let started = Instant::now();
        let response = request.send().await.expect("the local API answers");
        let took = started.elapsed();
        rig.proxy.clear();
        let status = response.status();
        let retry_after = retry_after(&response).map(str::to_owned);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let wrong = rig.inconsistencies().await;
        let row = Row {
            what: route.label().to_owned(),
            fault: &fault,
            status,
            retry_after: retry_after.as_deref(),
            took,
            consistent: wrong.is_empty(),
        };
        row.print();
        let mut fail = |what: String| failures.push(format!("{} / {fault}: {what}", route.label()));
        let expected = match expect {
            Expect::Success => route.success(),
            Expect::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status != expected {
            fail(format!("answered {status}, expected {expected}: {body}"));
        }
        if expect == Expect::Unavailable {
            if retry_after.is_none() {
                fail("a 503 without Retry-After".to_owned());
            }
            if body["type"] != "/problems/service-unavailable" {
                fail(format!("not our problem document: {body}"));
            }
        }
        if took > END_TO_END_LIMIT {
            fail(format!("took {} ms", took.as_millis()));
        }
        if !wrong.is_empty() {
            fail(format!("table inconsistent: {wrong:?}"));
        }
        if expect == Expect::Success
            && let Some(problem) = written_once(&rig, route, &id, &email, &body).await
        {
            fail(problem);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// After a successful write under a fault, whether it was applied exactly
/// once; `Some(why)` when not.
async fn written_once(
    rig: &Rig,
    route: Route,
    id: &str,
    email: &str,
    body: &Value,
) -> Option<String> {
    match route {
        Route::Create => {
            let response = rig
                .request(
                    Method::GET,
                    &format!("/users?email={}", email.replace('@', "%40")),
                )
                .send()
                .await
                .ok()?;
            let page: Value = response.json().await.ok()?;
            let found = page["items"].as_array().map_or(0, Vec::len);
            (found != 1 || page["items"][0]["id"] != body["id"])
                .then(|| format!("{found} users hold {email}, expected the one answered"))
        }
        Route::ChangeEmail | Route::ChangeName => (body["version"] != 2)
            .then(|| format!("version {} after one change, expected 2", body["version"])),
        Route::Delete => {
            let response = rig
                .request(Method::GET, &format!("/users/{id}"))
                .send()
                .await
                .ok()?;
            (response.status() != StatusCode::NOT_FOUND)
                .then(|| format!("GET after delete answered {}", response.status()))
        }
    }
}

/// A read, too, ends with our 503 within the budget when DynamoDB stalls
/// (it used to hang for as long as the connection did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_from_a_stalled_dynamodb_answers_503_within_the_budget() {
    let rig = Rig::start().await;
    let id = rig.user("reader@faults.example.com").await;
    for path in [format!("/users/{id}"), "/users".to_owned()] {
        rig.proxy.inject(Rule::always(None, Fault::Stall));
        let started = Instant::now();
        let response = rig
            .request(Method::GET, &path)
            .send()
            .await
            .expect("the local API answers");
        let took = started.elapsed();
        rig.proxy.clear();
        Row::stalled(format!("GET {path}"), &response, took, true).print();
        assert_eq!(response.status(), 503, "GET {path}");
        assert_eq!(response.headers()["retry-after"], "1");
        assert!(took <= END_TO_END_LIMIT, "GET {path} took {took:?}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["type"], "/problems/service-unavailable");
    }
}

/// The deployed shape: each function's own binary, its own SDK timeouts
/// and the template's 6 s function timeout are real. A stall still ends in
/// the function's 503, not API Gateway's; a lost answer is still one user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_mode_a_stall_is_our_503_and_a_lost_answer_one_user() {
    let rig = Rig::start_with(Some(crate::support::lambda_options())).await;
    let id = rig.user("lambda@faults.example.com").await;
    let cases = [
        (Method::GET, format!("/users/{id}"), None),
        (
            Method::POST,
            "/users".to_owned(),
            Some(json!({"email": "stalled@faults.example.com", "name": "Ada"})),
        ),
    ];
    for (method, path, body) in cases {
        rig.proxy.inject(Rule::always(None, Fault::Stall));
        let mut request = rig.request(method.clone(), &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let response = request.send().await.expect("the local API answers");
        let took = started.elapsed();
        rig.proxy.clear();
        let consistent = rig.inconsistencies().await.is_empty();
        let what = format!("{method} {path} (--lambda)");
        Row::stalled(what, &response, took, consistent).print();
        assert_eq!(response.status(), 503, "{method} {path}");
        assert_eq!(response.headers()["retry-after"], "1");
        assert!(took <= END_TO_END_LIMIT, "{method} {path} took {took:?}");
        let problem: Value = response
            .json()
            .await
            .expect("our problem, not API Gateway's");
        assert_eq!(problem["type"], "/problems/service-unavailable");
    }
    rig.proxy
        .inject(Rule::once(Some("TransactWriteItems"), Fault::LoseResponse));
    let response = rig
        .request(Method::POST, "/users")
        .json(&json!({"email": "lost@faults.example.com", "name": "Ada"}))
        .send()
        .await
        .expect("POST");
    rig.proxy.clear();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("user");
    assert_eq!(
        written_once(&rig, Route::Create, "", "lost@faults.example.com", &body).await,
        None
    );
    assert_eq!(rig.inconsistencies().await, Vec::<String>::new());
}

/// The history worker's binary under a stalled `PutItem`: each stalled
/// record is reported failed within the invocation (the put's own budget
/// ends it, and the worker would stop before its deadline), the mapping
/// retries it, nothing is dead-lettered, and once the table answers again
/// the user's history is complete and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_mode_a_stalled_history_put_is_retried_until_the_history_is_complete() {
    let rig = Rig::start_with(Some(crate::support::lambda_options())).await;
    // Only the worker writes with PutItem: creates are transactions, name
    // changes UpdateItem.
    rig.proxy
        .inject(Rule::always(Some("PutItem"), Fault::Stall));
    let id = rig.user("worker@faults.example.com").await;
    for name in ["Ada L", "Ada M"] {
        let renamed = rig
            .request(Method::PATCH, &format!("/users/{id}"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("PATCH");
        assert_eq!(renamed.status(), 200);
    }
    // Longer than one put's 4 s budget: at least one attempt is stalled.
    tokio::time::sleep(Duration::from_secs(6)).await;
    rig.proxy.clear();
    let history = rig.history_of(&id, 3).await;
    let expected: Vec<(String, u64)> = [("created", 1), ("updated", 2), ("updated", 3)]
        .map(|(kind, version)| (kind.to_owned(), version))
        .into();
    assert_eq!(history, expected, "complete and in version order");
    let functions = rig.functions.as_ref().expect("--lambda mode");
    assert_eq!(
        functions.dead_letters.all(),
        Vec::<Value>::new(),
        "nothing dead-lettered"
    );
    assert_eq!(rig.inconsistencies().await, Vec::<String>::new());
}

/// A dead letter replayed end to end through `--lambda`: while every
/// history `PutItem` is refused (a grant removed from the worker's role),
/// the worker reports the records failed, the mapping retries them and
/// then sends their coordinates to the on-failure destination. With the
/// cause fixed, `replay-dead-letters` takes the letters from an SQS queue
/// (moto's emulation), reads the records back from the stream and invokes
/// the worker through the local Invoke API: the history is complete, the
/// replayed messages are deleted and the one past retention is kept; a
/// second replay, from a dead-letter file, duplicates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_mode_a_dead_letter_replayed_after_the_fix_completes_the_history() {
    let rig = Rig::start_with(Some(crate::support::lambda_options())).await;
    rig.proxy.inject(Rule::always(
        Some("PutItem"),
        Fault::Error {
            status: 400,
            kind: "AccessDeniedException".to_owned(),
        },
    ));
    let id = rig.user("replay@faults.example.com").await;
    let renamed = rig
        .request(Method::PATCH, &format!("/users/{id}"))
        .json(&json!({ "name": "Ada L" }))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(renamed.status(), 200);
    let functions = rig.functions.as_ref().expect("--lambda mode");
    let started = Instant::now();
    let letters = loop {
        let letters = functions.dead_letters.all();
        let records: u64 = letters
            .iter()
            .map(|l| l["DDBStreamBatchInfo"]["batchSize"].as_u64().unwrap_or(0))
            .sum();
        if records >= 2 {
            break letters;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the two records not dead-lettered after 60 s: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    rig.proxy.clear();
    assert_eq!(rig.history_of(&id, 0).await.len(), 0, "no history yet");

    let replayer = local_api::lambda::replay::Replayer::connect(
        &local_api::lambda::replay::Endpoints {
            dynamodb: Some(dynamodb_endpoint()),
            lambda: Some(rig.base.clone()),
        },
        &local_api::stack::deployment::default_translation_dir(),
        &local_api::default_template_path(),
        None,
    )
    .await
    .expect("replayer");
    let expected: Vec<(String, u64)> = [("created", 1), ("updated", 2)]
        .map(|(kind, version)| (kind.to_owned(), version))
        .into();

    // From the queue, as Lambda's on-failure destination holds them (the
    // letter as the message body), with one letter past retention that
    // must stay in the queue.
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::new()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .endpoint_url(crate::support::sqs_endpoint())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "local", "local", None, None, "test",
            ))
            .build(),
    );
    let url = sqs
        .create_queue()
        .queue_name(format!("dead-letters-{}", ulid::Ulid::new()))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue URL");
    let mut gone = letters[0].clone();
    gone["DDBStreamBatchInfo"]["shardId"] = json!("shardId-00000000000000000000-00000000");
    for letter in letters.iter().chain([&gone]) {
        sqs.send_message()
            .queue_url(&url)
            .message_body(letter.to_string())
            .send()
            .await
            .expect("send");
    }
    let queue = local_api::lambda::replay::Source::Queue {
        sqs: sqs.clone(),
        url: url.clone(),
    };
    assert_eq!(
        replayer.run(&queue).await.expect("replay"),
        1,
        "only the letter past retention is left"
    );
    assert_eq!(rig.history_of(&id, 2).await, expected);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
        attributes
            .get(&name)
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    assert_eq!(
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        1,
        "the replayed messages deleted, the other kept: {attributes:?}"
    );

    // Again from a file, as the twin writes them: nothing duplicated (the
    // worker has answered by then, so whatever it wrote is there).
    let file = std::env::temp_dir().join(format!("dead-letters-{}.jsonl", ulid::Ulid::new()));
    let lines: Vec<String> = letters.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).expect("dead-letter file");
    let source = local_api::lambda::replay::Source::File(file.clone());
    assert_eq!(
        replayer.run(&source).await.expect("replay again"),
        0,
        "every letter replayed"
    );
    assert_eq!(rig.history_of(&id, 0).await, expected, "nothing duplicated");

    // A shard the stream no longer has: past retention (DynamoDB Local
    // keeps every record, so a trimmed range cannot be made here).
    let gone = local_api::lambda::replay::Letter::parse(&gone).expect("a letter");
    let outcome = replayer.replay(&gone).await;
    assert!(
        matches!(
            outcome,
            Err(local_api::lambda::replay::ReplayError::PastRetention { .. })
        ),
        "{gone:?}: {outcome:?}"
    );
    // A sequence number the shard never had is refused, not replayed.
    let mut invalid = local_api::lambda::replay::Letter::parse(&letters[0]).expect("a letter");
    invalid.first = "0".repeat(21);
    let outcome = replayer.replay(&invalid).await;
    assert!(
        matches!(
            outcome,
            Err(local_api::lambda::replay::ReplayError::Stream(_))
        ),
        "{invalid:?}: {outcome:?}"
    );
    std::fs::remove_file(file).ok();
    assert_eq!(rig.inconsistencies().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_fails_well_under_every_fault() {
    run(Route::Create).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_fails_well_under_every_fault() {
    run(Route::ChangeEmail).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_change_fails_well_under_every_fault() {
    run(Route::ChangeName).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_fails_well_under_every_fault() {
    run(Route::Delete).await;
}
