//! Starts the local API for a test and talks to it over HTTP.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use local_api::gateway::auth::{AuthConfig, DevToken};
use local_api::lambda::{Functions, LambdaOptions};
use local_api::stack::template::Template;
use local_api::{LocalApi, StoreChoice};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use storage::{DynamoStore, Store};

/// The SQS emulator `./infra/test.sh` starts (moto, infra/sqs-local).
pub(crate) fn sqs_endpoint() -> String {
    std::env::var("SQS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "SQS_ENDPOINT is not set: run the tests with ./infra/test.sh, \
             which starts the SQS emulator (infra/sqs-local/run.sh), or point SQS_ENDPOINT at one"
        )
    })
}

/// DynamoDB Local's URL, from `DYNAMODB_ENDPOINT` (set by `infra/test.sh`).
/// A test that needs DynamoDB fails, never skips, when it is not set.
pub(crate) fn dynamodb_endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "DYNAMODB_ENDPOINT is not set: run the tests with ./infra/test.sh, \
             which starts DynamoDB Local, or point DYNAMODB_ENDPOINT at one"
        )
    })
}

/// A table name no other test uses.
pub(crate) fn fresh_table() -> String {
    format!(
        "users-test-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// A DynamoDB store over a fresh table in DynamoDB Local.
pub(crate) async fn dynamo_store() -> DynamoStore {
    let client = local_api::dynamodb::table::local_client(&dynamodb_endpoint()).await;
    let table = fresh_table();
    let template = Template::load(&local_api::default_template_path()).expect("template.yaml");
    local_api::dynamodb::table::create_if_missing(&client, &table, &template.table)
        .await
        .expect("table created in DynamoDB Local");
    DynamoStore::new(client, table)
}

/// An item as DynamoDB returns it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Every item of `table`, by a strongly consistent scan of all its pages:
/// what the tests that check the table's consistency read.
pub(crate) async fn scan_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// An item's attributes read leniently: a missing or mistyped one reads as
/// empty or 0, for a consistency check to report rather than panic on.
pub(crate) trait Attributes {
    /// A string attribute.
    fn text(&self, name: &str) -> String;
    /// A number attribute that is a `u64`.
    fn number(&self, name: &str) -> u64;
}

impl Attributes for Item {
    fn text(&self, name: &str) -> String {
        self.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    }

    fn number(&self, name: &str) -> u64 {
        self.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_default()
    }
}

/// The stores the contract suite and the HTTP tests run on; `Lambda` is
/// DynamoDB Local with every function run as its own binary under its IAM
/// role (the local API's `--lambda` mode; HTTP tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Memory,
    DynamoDb,
    Lambda,
}

/// `--lambda` mode's options for tests: the functions' binaries as `sam
/// build` builds them (the functions alone, with their own features: the
/// folder in `LOCAL_API_FUNCTIONS_DIR`, where infra/test.sh puts them; else
/// what `cargo build --bins` left in the target folder), and the IAM record
/// the run's least-privilege check reads (`LOCAL_API_IAM_RECORD`, set by
/// infra/test.sh).
pub(crate) fn lambda_options() -> LambdaOptions {
    let defaults = LambdaOptions::default();
    LambdaOptions {
        dir: std::env::var_os("LOCAL_API_FUNCTIONS_DIR").map_or(defaults.dir.clone(), Into::into),
        iam_record: std::env::var_os("LOCAL_API_IAM_RECORD").map(Into::into),
        ..defaults
    }
}

/// The local API on a free loopback port, with `store`, `auth` and
/// `lambda` as [`LocalApi::bind_with`] takes them, serving until the test
/// ends: its base URL, and its functions with `lambda`.
pub(crate) async fn serve_local(
    store: &StoreChoice,
    auth: Option<AuthConfig>,
    lambda: Option<LambdaOptions>,
) -> (String, Option<std::sync::Arc<Functions>>) {
    let api = LocalApi::bind_with(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        &local_api::default_template_path(),
        store,
        auth,
        lambda,
    )
    .await
    .expect("local API starts");
    let base = format!("http://{}", api.local_addr().expect("bound"));
    let functions = api.functions();
    tokio::spawn(api.serve(std::future::pending()));
    (base, functions)
}

/// The API under test: the local API started on a free port for one test
/// (with a fresh store, checking tokens as the deployed API does), or a
/// deployed API when `API_URL` is set (with a token from `API_TOKEN`).
#[derive(Debug)]
pub(crate) struct Api {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
    /// Makes this test's email addresses its own, so tests never collide
    /// on a shared deployed table.
    domain: String,
    local: bool,
    created: Mutex<Vec<String>>,
    functions: Option<std::sync::Arc<Functions>>,
    /// The local DynamoDB table, if any.
    table: Option<String>,
}

impl Api {
    /// Starts the local API on `backend` (a fresh table for DynamoDB), or
    /// targets `API_URL`.
    pub(crate) async fn start(backend: Backend) -> Self {
        match std::env::var("API_URL") {
            Ok(url) => Self {
                base: url.trim_end_matches('/').to_owned(),
                client: reqwest::Client::new(),
                token: std::env::var("API_TOKEN")
                    .ok()
                    .and_then(|tokens| next_token(&tokens)),
                domain: unique_domain(),
                local: false,
                created: Mutex::default(),
                functions: None,
                table: None,
            },
            Err(_) => Self::local(backend).await,
        }
    }

    /// Starts the local API on `backend`, whatever `API_URL` says (for tests
    /// that need to mint tokens the API trusts).
    pub(crate) async fn local(backend: Backend) -> Self {
        Self::local_with(backend, Some(AuthConfig::dev()), lambda_options()).await
    }

    /// Starts the local API on `backend` with `auth` (`None`: open), and
    /// `lambda` options when the backend is `Lambda`.
    pub(crate) async fn local_with(
        backend: Backend,
        auth: Option<AuthConfig>,
        lambda: LambdaOptions,
    ) -> Self {
        let table = (backend != Backend::Memory).then(fresh_table);
        let store = match &table {
            None => StoreChoice::Memory,
            Some(table) => StoreChoice::DynamoDb {
                endpoint: dynamodb_endpoint(),
                table: table.clone(),
            },
        };
        let token = auth
            .is_some()
            .then(|| DevToken::default().sign().expect("development token"));
        let (base, functions) =
            serve_local(&store, auth, (backend == Backend::Lambda).then_some(lambda)).await;
        Self {
            base,
            client: reqwest::Client::new(),
            token,
            domain: unique_domain(),
            local: true,
            created: Mutex::default(),
            functions,
            table,
        }
    }

    /// The local API's DynamoDB table.
    pub(crate) fn table(&self) -> &str {
        self.table.as_deref().expect("a local API on DynamoDB")
    }

    /// In `--lambda` mode, the running functions.
    pub(crate) fn functions(&self) -> &Functions {
        self.functions.as_deref().expect("an API in --lambda mode")
    }

    /// The API's base URL, such as `http://127.0.0.1:41234`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Whether this is the local API (whose store only this test uses).
    pub(crate) fn is_local(&self) -> bool {
        self.local
    }

    /// An email address unique to this test: `local@<test domain>`.
    pub(crate) fn email(&self, local: &str) -> String {
        format!("{local}@{}", self.domain)
    }

    /// A request to `path` (which may carry a query string), with the
    /// test's bearer token.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A request without any token.
    pub(crate) fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// `POST /users` with a JSON body.
    pub(crate) async fn create(&self, email: &str, name: &str) -> Response {
        let response = self
            .request(Method::POST, "/users")
            .json(&serde_json::json!({ "email": email, "name": name }))
            .send()
            .await
            .expect("POST /users");
        if let Some(location) = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
        {
            self.remember(location);
        }
        response
    }

    /// Creates a user and returns its body.
    pub(crate) async fn created(&self, email: &str, name: &str) -> Value {
        let response = self.create(email, name).await;
        assert_eq!(response.status(), 201, "create {email}");
        response.json().await.expect("user JSON")
    }

    /// Notes a user to delete when the test ends (on a deployed API).
    pub(crate) fn remember(&self, location: &str) {
        self.created
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(location.to_owned());
    }

    /// `GET` of a path, returning status and JSON body (Null when empty).
    pub(crate) async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.request(Method::GET, path).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, body_json(response).await)
    }

    /// The users `GET /users?email=` finds.
    pub(crate) async fn find(&self, email: &str) -> Vec<Value> {
        let (status, page) = self
            .get_json(&format!(
                "/users?email={}",
                email.replace('@', "%40").replace('+', "%2B")
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().cloned().unwrap_or_default()
    }

    /// How many users the local API's store holds; `None` on a deployed API,
    /// whose table other clients share.
    pub(crate) async fn local_user_count(&self) -> Option<usize> {
        if !self.local {
            return None;
        }
        let (_, page) = self.get_json("/users?limit=100").await;
        page["items"].as_array().map(Vec::len)
    }
}

/// One of the whitespace-separated tokens in `API_TOKEN`, each test the
/// next: behind the edge (`Edge=cloudfront`), WAF counts each
/// `Authorization` value in its own bucket (`EdgeClientRateLimit`, 300 a
/// minute by default), and the suite sends more than one token's budget.
fn next_token(tokens: &str) -> Option<String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let tokens: Vec<&str> = tokens.split_whitespace().collect();
    let at = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tokens
        .get(at % tokens.len().max(1))
        .map(|token| (*token).to_owned())
}

fn unique_domain() -> String {
    format!(
        "t{}.example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

impl Drop for Api {
    /// Deletes what the test created on a deployed API. (A local API's
    /// store goes with it.)
    fn drop(&mut self) {
        let created = std::mem::take(
            self.created
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if self.local || created.is_empty() {
            return;
        }
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                for location in created {
                    let _ = self.request(Method::DELETE, &location).send().await;
                }
            });
        });
    }
}

/// Sends the request `make` builds and, while the answer is 503, sends it
/// again after its `Retry-After` (at most ten times), as a well-behaved
/// client does: under a burst on a loaded machine the API may shed load
/// within its time budget, and a test of what requests race to do should
/// see where each one ends, not the shedding.
pub(crate) async fn send_retrying(make: impl Fn() -> RequestBuilder) -> Response {
    let mut attempts = 0;
    loop {
        let response = make().send().await.expect("request");
        attempts += 1;
        if response.status() != 503 || attempts == 10 {
            return response;
        }
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}

/// The body as JSON, or `Null` when it is empty.
pub(crate) async fn body_json(response: Response) -> Value {
    let bytes = response.bytes().await.expect("body");
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    }
}

/// Asserts a function response carries the security headers and, for an
/// error, is a problem document naming the request id.
pub(crate) async fn assert_problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_security_headers(&response);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let request_id = response.headers()["apigw-requestid"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let problem = body_json(response).await;
    assert_eq!(problem["status"], status, "{problem}");
    assert_eq!(problem["requestId"], request_id.as_str(), "{problem}");
    for field in ["type", "title", "detail"] {
        assert!(
            problem[field].is_string(),
            "problem lacks {field}: {problem}"
        );
    }
    problem
}

/// The helmet-equivalent headers every function response carries (their
/// values are held against `openapi.yaml` in `openapi.rs`).
pub(crate) fn assert_security_headers(response: &Response) {
    for (name, value) in common::http::SECURITY_HEADERS {
        assert_eq!(
            response.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on a {} response",
            response.status()
        );
    }
}

/// A store of either kind for the contract suite.
pub(crate) async fn store(backend: Backend) -> Box<dyn Store> {
    match backend {
        Backend::Memory => Box::new(storage::MemoryStore::new()),
        Backend::DynamoDb | Backend::Lambda => Box::new(dynamo_store().await),
    }
}

/// Runs each named `async fn(Backend)` as one test per backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::Memory).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::DynamoDb).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// Runs each named `async fn(Backend)` as one test per backend, `--lambda`
/// mode included: for tests over HTTP.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        crate::support::on_both_backends!($($name),*);
        mod lambda {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Backend::Lambda).await;
                }
            )*
        }
    };
}
pub(crate) use on_every_backend;
