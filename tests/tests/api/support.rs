//! Starts the local API for a test and talks to it over HTTP.

use std::net::{Ipv4Addr, SocketAddr};

use common::store::{DynamoStore, Store};
use local_api::template::Template;
use local_api::{LocalApi, StoreChoice};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

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
    let client = local_api::table::local_client(&dynamodb_endpoint()).await;
    let table = fresh_table();
    let template = Template::load(&local_api::default_template_path()).expect("template.yaml");
    local_api::table::create_if_missing(&client, &table, &template.table)
        .await
        .expect("table created in DynamoDB Local");
    DynamoStore::new(client, table)
}

/// The stores the contract suite and the HTTP tests run on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Memory,
    DynamoDb,
}

/// The local API, started on a free port for one test.
#[derive(Debug)]
pub(crate) struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// Starts the local API on `backend` (a fresh table for DynamoDB).
    pub(crate) async fn start(backend: Backend) -> Self {
        let store = match backend {
            Backend::Memory => StoreChoice::Memory,
            Backend::DynamoDb => StoreChoice::DynamoDb {
                endpoint: dynamodb_endpoint(),
                table: fresh_table(),
            },
        };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let api = LocalApi::bind(address, &local_api::default_template_path(), &store)
            .await
            .expect("local API starts");
        let base = format!("http://{}", api.local_addr().expect("bound"));
        tokio::spawn(api.serve(std::future::pending()));
        Self {
            base,
            client: reqwest::Client::new(),
        }
    }

    /// A request to `path` (which may carry a query string).
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// `POST /users` with a JSON body.
    pub(crate) async fn create(&self, email: &str, name: &str) -> Response {
        self.request(Method::POST, "/users")
            .json(&serde_json::json!({ "email": email, "name": name }))
            .send()
            .await
            .expect("POST /users")
    }

    /// Creates a user and returns its body.
    pub(crate) async fn created(&self, email: &str, name: &str) -> Value {
        let response = self.create(email, name).await;
        assert_eq!(response.status(), 201, "create {email}");
        response.json().await.expect("user JSON")
    }

    /// `GET` of a path, returning status and JSON body (Null when empty).
    pub(crate) async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.request(Method::GET, path).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, body_json(response).await)
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

/// The helmet-equivalent headers every function response carries.
pub(crate) fn assert_security_headers(response: &Response) {
    let expected = [
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-resource-policy", "same-origin"),
    ];
    for (name, value) in expected {
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
        Backend::Memory => Box::new(common::store::MemoryStore::new()),
        Backend::DynamoDb => Box::new(dynamo_store().await),
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
