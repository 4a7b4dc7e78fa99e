//! A fault-injecting proxy in front of a local DynamoDB, for proving that
//! requests fail well: it stalls, delays, drops connections, answers
//! DynamoDB's throttling, server and cancellation errors, or applies a
//! request and then loses its answer, for the requests a [`Rule`] picks
//! (by operation and position). Everything else passes through unchanged.
//!
//! Used by the fault suite (`tests/tests/api/faults.rs`); it has no place
//! in a deployment.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::wire;
use crate::loopback::LoopbackServer;

/// What the proxy does to a request a rule picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Never answers (until the client gives up).
    Stall,
    /// Waits this long, then passes the request on.
    Delay(Duration),
    /// Drops the connection without passing the request on.
    Reset,
    /// Answers with DynamoDB's error `kind` (the part of `__type` after the
    /// `#`) and HTTP `status`, without passing the request on.
    Error {
        /// The HTTP status, 400 or 500 as DynamoDB uses them.
        status: u16,
        /// The error's name, such as `ThrottlingException`.
        kind: String,
    },
    /// Answers `TransactionCanceledException` with one cancellation reason
    /// code per item (`None`, `ConditionalCheckFailed`, `TransactionConflict`…).
    Cancel(Vec<String>),
    /// Passes the request on, so DynamoDB applies it, then drops the
    /// connection before the answer reaches the client.
    LoseResponse,
}

impl Fault {
    /// DynamoDB's `ThrottlingException` (HTTP 400).
    pub fn throttling() -> Self {
        Self::error(400, "ThrottlingException")
    }

    /// DynamoDB's `ProvisionedThroughputExceededException` (HTTP 400).
    pub fn throughput_exceeded() -> Self {
        Self::error(400, "ProvisionedThroughputExceededException")
    }

    /// DynamoDB's `InternalServerError` (HTTP 500).
    pub fn internal_server_error() -> Self {
        Self::error(500, "InternalServerError")
    }

    /// DynamoDB's `TransactionInProgressException` (HTTP 400).
    pub fn transaction_in_progress() -> Self {
        Self::error(400, "TransactionInProgressException")
    }

    /// `TransactionCanceledException` with `reasons`, one per item.
    pub fn cancel(reasons: &[&str]) -> Self {
        Self::Cancel(reasons.iter().map(|r| (*r).to_owned()).collect())
    }

    fn error(status: u16, kind: &str) -> Self {
        Self::Error {
            status,
            kind: kind.to_owned(),
        }
    }
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The DynamoDB operation (`TransactWriteItems`, `GetItem`…); `None`:
    /// every operation.
    pub operation: Option<String>,
    /// How many matching requests pass untouched first (the fault hits the
    /// `skip + 1`-th).
    pub skip: usize,
    /// How many matching requests the fault hits after those; `None`: all.
    pub times: Option<usize>,
    /// What it does to them.
    pub fault: Fault,
}

impl Rule {
    /// `fault` on every request of `operation` (`None`: of any operation).
    pub fn always(operation: Option<&str>, fault: Fault) -> Self {
        Self {
            operation: operation.map(str::to_owned),
            skip: 0,
            times: None,
            fault,
        }
    }

    /// `fault` on the next request of `operation` only.
    pub fn once(operation: Option<&str>, fault: Fault) -> Self {
        Self {
            times: Some(1),
            ..Self::always(operation, fault)
        }
    }

    /// `fault` on the `n`-th next request of `operation` only (1-based).
    pub fn nth(operation: Option<&str>, n: usize, fault: Fault) -> Self {
        Self {
            skip: n.saturating_sub(1),
            ..Self::once(operation, fault)
        }
    }
}

/// One request the proxy saw: its operation and the fault it got, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The DynamoDB operation.
    pub operation: String,
    /// The fault applied to it.
    pub fault: Option<Fault>,
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<(Rule, usize)>,
    seen: Vec<Seen>,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    plan: Mutex<Plan>,
}

impl Shared {
    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts the proxy on a free loopback port in front of the DynamoDB at
    /// `upstream`, with no rule yet: everything passes.
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            plan: Mutex::default(),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        Ok(Self {
            server: LoopbackServer::start(router).await?,
            shared,
        })
    }

    /// The URL to use as the DynamoDB endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.address())
    }

    /// Adds `rule`; the first rule that picks a request decides its fault.
    pub fn inject(&self, rule: Rule) {
        self.shared.plan().rules.push((rule, 0));
    }

    /// Removes every rule and forgets the requests seen.
    pub fn clear(&self) {
        let mut plan = self.shared.plan();
        plan.rules.clear();
        plan.seen.clear();
    }

    /// The requests seen since the last [`FaultProxy::clear`], in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.plan().seen.clone()
    }
}

/// The fault for the next request of `operation`, counting it against the
/// rules.
fn pick(shared: &Shared, operation: &str) -> Option<Fault> {
    let mut plan = shared.plan();
    let mut picked = None;
    for (rule, matched) in &mut plan.rules {
        if rule.operation.as_deref().is_some_and(|op| op != operation) {
            continue;
        }
        let position = *matched;
        *matched += 1;
        let hit = position >= rule.skip
            && rule
                .times
                .is_none_or(|times| position < rule.skip.saturating_add(times));
        if hit && picked.is_none() {
            picked = Some(rule.fault.clone());
        }
    }
    plan.seen.push(Seen {
        operation: operation.to_owned(),
        fault: picked.clone(),
    });
    picked
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, wire::MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let operation = wire::operation(&parts.headers);
    match pick(&shared, &operation) {
        None => forward(&shared, &parts.headers, body).await,
        Some(Fault::Stall) => std::future::pending().await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            forward(&shared, &parts.headers, body).await
        }
        Some(Fault::Reset) => dropped_connection(),
        Some(Fault::Error { status, kind }) => dynamodb_error(status, &kind, &[]),
        Some(Fault::Cancel(reasons)) => {
            dynamodb_error(400, "TransactionCanceledException", &reasons)
        }
        Some(Fault::LoseResponse) => {
            let _applied = forward(&shared, &parts.headers, body).await;
            dropped_connection()
        }
    }
}

/// A response whose body fails at once: the server aborts the connection
/// after the status line, so the client reads an incomplete answer, as
/// when a connection is reset.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by the fault proxy",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, wire::AMZ_JSON)
        .header(header::CONTENT_LENGTH, "2")
        .body(Body::from_stream(failing))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

fn dynamodb_error(status: u16, kind: &str, reasons: &[String]) -> Response {
    let fields = if reasons.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!({
            "Message": format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                reasons.join(", ")
            ),
            "CancellationReasons": reasons
                .iter()
                .map(|code| serde_json::json!({ "Code": code }))
                .collect::<Vec<_>>(),
        })
    };
    wire::error(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        &format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        &format!("{kind} injected by the fault proxy"),
        fields,
    )
}

async fn forward(shared: &Shared, headers: &HeaderMap, body: Bytes) -> Response {
    wire::send(
        &shared.client,
        &shared.upstream,
        wire::outgoing(headers),
        body,
    )
    .await
    .map_or_else(|response| response, IntoResponse::into_response)
}
