//! The Lambda Runtime API on loopback, as Lambda serves it to a function's
//! process: `GET /runtime/invocation/next` hands out one event at a time,
//! `POST .../{id}/response` and `.../{id}/error` take the result, and
//! `POST /runtime/init/error` reports a failed init. The local API's
//! `--lambda` mode and the benchmark harness both run functions under it.
//!
//! It timestamps what Lambda bills: the first `next` request ends the init
//! phase; an invocation lasts from the moment its event is handed out to the
//! moment its response arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::loopback::LoopbackServer;

/// What a function answered to one event.
#[derive(Debug)]
pub struct Outcome {
    /// From handing out the event to receiving the answer (Lambda's billed duration).
    pub duration: Duration,
    /// The response or error body.
    pub body: Bytes,
    /// Whether it was posted to `/error` instead of `/response`.
    pub failed: bool,
}

struct Invocation {
    event: Bytes,
    deadline: SystemTime,
    done: oneshot::Sender<Outcome>,
}

struct Pending {
    delivered: Instant,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Timeline {
    first_next: Option<Instant>,
    init_error: Option<String>,
}

struct Shared {
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, Pending>>,
    timeline: Mutex<Timeline>,
}

/// One Runtime API endpoint, serving one function process.
pub struct RuntimeApi {
    server: LoopbackServer,
    sender: mpsc::Sender<Invocation>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.server.address())
            .finish_non_exhaustive()
    }
}

/// Why an invocation produced no outcome.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function did not answer in time.
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    /// The function process went away.
    #[error("the function stopped before answering")]
    Gone,
}

impl RuntimeApi {
    /// Starts an endpoint on a free loopback port for the function whose
    /// ARN the invocations name (`Lambda-Runtime-Invoked-Function-Arn`).
    pub async fn start(function_arn: impl Into<String>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            function_arn: function_arn.into(),
            queue: tokio::sync::Mutex::new(receiver),
            pending: Mutex::default(),
            timeline: Mutex::default(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        Ok(Self {
            server: LoopbackServer::start(router).await?,
            sender,
            shared,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.server.address().to_string()
    }

    /// When the function first asked for an event (the end of its init).
    pub fn first_next(&self) -> Option<Instant> {
        lock(&self.shared.timeline).first_next
    }

    /// What the function reported through `/runtime/init/error`, if anything.
    pub fn init_error(&self) -> Option<String> {
        lock(&self.shared.timeline).init_error.clone()
    }

    /// Hands `event` to the function and waits up to `timeout` for its
    /// answer; the function sees the matching deadline.
    pub async fn invoke(
        &self,
        event: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Outcome, InvokeError> {
        let (done, answer) = oneshot::channel();
        let invocation = Invocation {
            event: event.into(),
            deadline: SystemTime::now() + timeout,
            done,
        };
        let started = tokio::time::Instant::now();
        let outcome = async {
            self.sender
                .send(invocation)
                .await
                .map_err(|_| InvokeError::Gone)?;
            answer.await.map_err(|_| InvokeError::Gone)
        };
        tokio::time::timeout_at(started + timeout, outcome)
            .await
            .unwrap_or(Err(InvokeError::Timeout(timeout)))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh X-Ray trace header, as Lambda passes one to every invocation.
fn trace_header() -> String {
    let epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "Root=1-{epoch:08x}-{:024x};Parent={:016x};Sampled=0",
        fastrand::u128(..) >> 32,
        fastrand::u64(..)
    )
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    lock(&shared.timeline)
        .first_next
        .get_or_insert_with(Instant::now);
    let Some(invocation) = shared.queue.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let id = ulid::Ulid::new().to_string().to_lowercase();
    let deadline = invocation
        .deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            shared.function_arn.clone(),
        ),
        ("lambda-runtime-trace-id", trace_header()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    lock(&shared.pending).insert(
        id,
        Pending {
            delivered: Instant::now(),
            done: invocation.done,
        },
    );
    (StatusCode::OK, headers, invocation.event)
}

fn finish(shared: &Shared, id: &str, body: Bytes, failed: bool) -> StatusCode {
    let arrived = Instant::now();
    let Some(pending) = lock(&shared.pending).remove(id) else {
        return StatusCode::BAD_REQUEST;
    };
    let _ = pending.done.send(Outcome {
        duration: arrived - pending.delivered,
        body,
        failed,
    });
    StatusCode::ACCEPTED
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, body, false)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, body, true)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    lock(&shared.timeline).init_error = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}
