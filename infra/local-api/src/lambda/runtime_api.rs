//! The Lambda Runtime API on loopback, as Lambda serves it to a function's
//! process: `GET /runtime/invocation/next` hands out one event at a time,
//! `POST .../{id}/response` and `.../{id}/error` take the result, and
//! `POST /runtime/init/error` reports a failed init. The local API's
//! `--lambda` mode and the benchmark harness both run functions under it.
//!
//! It also serves the Lambda Extensions API (`/2020-01-01/extension/...`)
//! to internal extensions, the only kind a function's own process can have
//! (external ones come from layers, which the template has none of): see
//! [`extensions`] for the rules it follows.
//!
//! It timestamps what Lambda bills: init ends when the runtime and every
//! registered extension have sent their first `next` request; a response
//! is timed from the moment its event is handed out to the moment the
//! runtime posts it (the caller gets it then); the invocation itself lasts
//! until every extension subscribed to `INVOKE` has sent `next` again
//! ([`RuntimeApi::settle`]), all of it within the function's timeout.
//! One simplification: the runtime's own part ends with its response,
//! where Lambda ends it with the runtime's next `next`; `lambda_runtime`
//! sends that right after posting, and work a runtime did between the two
//! would go untimed here.

mod extensions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::{Notify, mpsc, oneshot};

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

/// What the register answer tells an extension about its function.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    /// Its ARN (`Lambda-Runtime-Invoked-Function-Arn`, `invokedFunctionArn`).
    pub arn: String,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`.
    pub version: String,
    /// `_HANDLER`.
    pub handler: String,
    /// The account in its ARN.
    pub account: String,
}

impl FunctionInfo {
    /// The function `arn` names, described by its process's environment
    /// `env` (the ARN's parts where a variable is missing).
    pub fn new(arn: impl Into<String>, env: &[(String, String)]) -> Self {
        let arn = arn.into();
        let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let parts: Vec<&str> = arn.split(':').collect();
        let part = |i: usize| parts.get(i).copied().unwrap_or_default().to_owned();
        Self {
            name: var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| part(6)),
            version: var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|| "$LATEST".to_owned()),
            handler: var("_HANDLER").unwrap_or_default(),
            account: part(4),
            arn,
        }
    }
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
    init_done: Option<Instant>,
    init_error: Option<String>,
    /// When the runtime last posted a response or error.
    responded: Option<Instant>,
}

struct Shared {
    function: FunctionInfo,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, Pending>>,
    timeline: Mutex<Timeline>,
    extensions: Mutex<extensions::Extensions>,
    /// Woken whenever an extension or the runtime changes state.
    changed: Notify,
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
    /// An extension reported an error.
    #[error("{0}")]
    Extension(String),
}

impl RuntimeApi {
    /// Starts an endpoint on a free loopback port for `function`.
    pub async fn start(function: FunctionInfo) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            function,
            queue: tokio::sync::Mutex::new(receiver),
            pending: Mutex::default(),
            timeline: Mutex::default(),
            extensions: Mutex::default(),
            changed: Notify::new(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2020-01-01/extension/register", post(extensions::register))
            .route("/2020-01-01/extension/event/next", get(extensions::next))
            .route(
                "/2020-01-01/extension/init/error",
                post(extensions::init_error),
            )
            .route(
                "/2020-01-01/extension/exit/error",
                post(extensions::exit_error),
            )
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

    /// When the function's init ended: the runtime and every registered
    /// extension have asked for their first event (the later of the two).
    pub fn init_done(&self) -> Option<Instant> {
        let mut timeline = lock(&self.shared.timeline);
        if timeline.init_done.is_none()
            && let Some(runtime) = timeline.first_next
            && let Some(extensions) = lock(&self.shared.extensions).ready_since()
        {
            timeline.init_done = Some(extensions.map_or(runtime, |e| e.max(runtime)));
        }
        timeline.init_done
    }

    /// The names of the extensions registered.
    pub fn extensions(&self) -> Vec<String> {
        lock(&self.shared.extensions).names()
    }

    /// Whether any extension takes `INVOKE` events, so that an invocation
    /// goes on after the runtime's response.
    pub fn has_invoke_extensions(&self) -> bool {
        lock(&self.shared.extensions).any_invoke()
    }

    /// Whether every extension is done with the events it was given (what
    /// [`RuntimeApi::settle`] waits for), without waiting.
    pub fn is_settled(&self) -> bool {
        let extensions = lock(&self.shared.extensions);
        extensions.error.is_none() && extensions.ready_since().is_some()
    }

    /// Waits, until `deadline`, for the end of the invocation whose
    /// response the runtime posted: every extension has sent `next` again.
    /// Answers how long the extensions took after the response (Lambda's
    /// `PostRuntimeExecutionDuration`).
    pub async fn settle(&self, deadline: tokio::time::Instant) -> Result<Duration, InvokeError> {
        loop {
            let changed = self.shared.changed.notified();
            // The timeline before the extensions, as `init_done` locks them.
            let responded = lock(&self.shared.timeline).responded;
            {
                let extensions = lock(&self.shared.extensions);
                if let Some(error) = &extensions.error {
                    return Err(InvokeError::Extension(error.clone()));
                }
                if let Some(last) = extensions.ready_since() {
                    return Ok(match (last, responded) {
                        (Some(last), Some(responded)) => last.saturating_duration_since(responded),
                        _ => Duration::ZERO,
                    });
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                // The caller knows the limit the deadline stands for.
                return Err(InvokeError::Timeout(Duration::ZERO));
            }
        }
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
    lock(&shared.extensions).close();
    shared.changed.notify_waiters();
    let Some(invocation) = shared.queue.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let id = ulid::Ulid::new().to_string().to_lowercase();
    let deadline = invocation
        .deadline
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let trace = trace_header();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            shared.function.arn.clone(),
        ),
        ("lambda-runtime-trace-id", trace.clone()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    // The extensions' INVOKE event: "the type of the event, the time
    // remaining, the `RequestId`, the invoked function ARN, and tracing
    // headers" (the Developer Guide's example payload, field for field).
    let agent_event = serde_json::json!({
        "eventType": "INVOKE",
        "deadlineMs": u64::try_from(deadline).unwrap_or(u64::MAX),
        "requestId": id,
        "invokedFunctionArn": shared.function.arn,
        "tracing": {"type": "X-Amzn-Trace-Id", "value": trace},
    });
    lock(&shared.extensions).deliver(&Bytes::from(agent_event.to_string()));
    shared.changed.notify_waiters();
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
    lock(&shared.timeline).responded = Some(arrived);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:local-get-user";

    async fn api() -> (RuntimeApi, String) {
        let env = [
            ("AWS_LAMBDA_FUNCTION_NAME", "local-get-user"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("_HANDLER", "bootstrap"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let api = RuntimeApi::start(FunctionInfo::new(ARN, &env))
            .await
            .expect("runtime API");
        let base = format!("http://{}", api.host_port());
        (api, base)
    }

    /// Registers as the `lambda-extension` crate does (its headers and body).
    async fn register(base: &str, name: &str, events: &[&str]) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{base}/2020-01-01/extension/register"))
            .header("Lambda-Extension-Name", name)
            .header("Lambda-Extension-Accept-Feature", "accountId")
            .header("Content-Type", "application/json")
            .body(json!({ "events": events }).to_string())
            .send()
            .await
            .expect("register")
    }

    async fn registered(base: &str, name: &str) -> String {
        let response = register(base, name, &["INVOKE"]).await;
        assert_eq!(response.status(), 200);
        response.headers()["lambda-extension-identifier"]
            .to_str()
            .expect("identifier")
            .to_owned()
    }

    fn extension_next(base: &str, id: &str) -> tokio::task::JoinHandle<Value> {
        let (url, id) = (
            format!("{base}/2020-01-01/extension/event/next"),
            id.to_owned(),
        );
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .get(url)
                .header("Lambda-Extension-Identifier", id)
                .send()
                .await
                .expect("extension next");
            assert_eq!(response.status(), 200);
            response.json().await.expect("event JSON")
        })
    }

    /// The runtime's `next`, then its response posted: the request id and
    /// trace header it was given.
    /// A Runtime API with the extension `name` registered, after one
    /// invocation whose response the runtime posted and whose `INVOKE` the
    /// extension received, and that the extension has not yet asked past.
    async fn invoked_with_extension(name: &str) -> (RuntimeApi, String, String) {
        let (api, base) = api().await;
        let id = registered(&base, name).await;
        let first = extension_next(&base, &id);
        let _runtime = runtime_answering(&base);
        eventually("init ended", || api.init_done().is_some()).await;
        api.invoke("{}", Duration::from_secs(5))
            .await
            .expect("response");
        first.await.expect("INVOKE event");
        (api, base, id)
    }

    fn runtime_answering(base: &str) -> tokio::task::JoinHandle<(String, String)> {
        let base = base.to_owned();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let event = client
                .get(format!("{base}/2018-06-01/runtime/invocation/next"))
                .send()
                .await
                .expect("runtime next");
            let header = |name: &str| event.headers()[name].to_str().expect(name).to_owned();
            let (id, trace) = (
                header("lambda-runtime-aws-request-id"),
                header("lambda-runtime-trace-id"),
            );
            client
                .post(format!(
                    "{base}/2018-06-01/runtime/invocation/{id}/response"
                ))
                .body("{}")
                .send()
                .await
                .expect("response");
            (id, trace)
        })
    }

    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        let started = Instant::now();
        while !condition() {
            assert!(started.elapsed() < Duration::from_secs(5), "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn register_answers_an_identifier_and_the_function_as_the_developer_guide_shows() {
        let (_api, base) = api().await;
        let response = register(&base, "internal-flush", &["INVOKE"]).await;
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .contains_key("lambda-extension-identifier")
        );
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            body,
            json!({
                "functionName": "local-get-user",
                "functionVersion": "$LATEST",
                "handler": "bootstrap",
                "accountId": "123456789012",
            }),
            "accountId because Lambda-Extension-Accept-Feature asked for it"
        );
    }

    #[tokio::test]
    async fn an_internal_extension_may_not_register_for_shutdown_nor_twice_nor_after_init() {
        let (api, base) = api().await;
        let refused = register(&base, "flush", &["INVOKE", "SHUTDOWN"]).await;
        assert_eq!(refused.status(), 403);
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["errorType"], "Extension.InvalidEventType", "{body}");
        registered(&base, "flush").await;
        let twice = register(&base, "flush", &["INVOKE"]).await;
        assert_eq!(twice.status(), 403, "a name is registered once");
        let _runtime = runtime_answering(&base);
        eventually("the runtime asked for its first event", || {
            lock(&api.shared.timeline).first_next.is_some()
        })
        .await;
        let late = register(&base, "late", &["INVOKE"]).await;
        assert_eq!(late.status(), 403);
        let body: Value = late.json().await.expect("JSON");
        assert_eq!(body["errorType"], "Extension.RegistrationClosed", "{body}");
    }

    #[tokio::test]
    async fn next_without_a_known_identifier_is_forbidden() {
        let (_api, base) = api().await;
        let client = reqwest::Client::new();
        let url = format!("{base}/2020-01-01/extension/event/next");
        let missing = client.get(&url).send().await.expect("next");
        assert_eq!(missing.status(), 403);
        let unknown = client
            .get(&url)
            .header(
                "Lambda-Extension-Identifier",
                "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
            )
            .send()
            .await
            .expect("next");
        assert_eq!(unknown.status(), 403);
    }

    #[tokio::test]
    async fn init_ends_when_the_runtime_and_every_extension_have_asked_for_an_event() {
        let (api, base) = api().await;
        let id = registered(&base, "flush").await;
        let _runtime = runtime_answering(&base);
        eventually("the runtime asked", || {
            lock(&api.shared.timeline).first_next.is_some()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(api.init_done().is_none(), "the extension has not asked yet");
        let _extension = extension_next(&base, &id);
        eventually("init ended", || api.init_done().is_some()).await;
    }

    #[tokio::test]
    async fn the_response_comes_before_the_extension_is_done_and_the_invocation_ends_with_its_next()
    {
        let (api, base) = api().await;
        let id = registered(&base, "flush").await;
        let first = extension_next(&base, &id);
        let runtime = runtime_answering(&base);
        eventually("init ended", || api.init_done().is_some()).await;
        let outcome = api
            .invoke("{}", Duration::from_secs(5))
            .await
            .expect("the runtime's response, while the extension still works");
        assert_eq!(&outcome.body[..], b"{}");
        let (request_id, trace) = runtime.await.expect("runtime");
        let event = first.await.expect("the extension's INVOKE event");
        assert_eq!(event["eventType"], "INVOKE");
        assert_eq!(event["requestId"], request_id.as_str());
        assert_eq!(event["invokedFunctionArn"], ARN);
        assert_eq!(
            event["tracing"],
            json!({"type": "X-Amzn-Trace-Id", "value": trace})
        );
        assert!(event["deadlineMs"].as_u64().is_some(), "{event}");
        assert!(!api.is_settled(), "the extension has not sent next again");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let settle = api.settle(deadline);
        let _second = extension_next(&base, &id);
        settle
            .await
            .expect("the invocation ends with the extension's next");
        assert!(api.is_settled());
    }

    #[tokio::test]
    async fn an_extension_that_does_not_ask_again_runs_the_invocation_into_its_timeout() {
        let (api, _, _) = invoked_with_extension("stuck").await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        assert!(matches!(
            api.settle(deadline).await,
            Err(InvokeError::Timeout(_))
        ));
    }

    #[tokio::test]
    async fn an_extension_s_exit_error_fails_the_invocation() {
        let (api, base, id) = invoked_with_extension("failing").await;
        let reported = reqwest::Client::new()
            .post(format!("{base}/2020-01-01/extension/exit/error"))
            .header("Lambda-Extension-Identifier", &id)
            .header("Lambda-Extension-Function-Error-Type", "Extension.Failed")
            .send()
            .await
            .expect("exit error");
        assert_eq!(reported.status(), 202);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        assert!(matches!(
            api.settle(deadline).await,
            Err(InvokeError::Extension(_))
        ));
    }
}
