//! The Lambda Extensions API (version 2020-01-01) for internal extensions,
//! as the AWS Lambda Developer Guide ("Using the Lambda Extensions API to
//! create extensions") and AWS's Runtime Interface Emulator describe it:
//!
//! - `POST /2020-01-01/extension/register`, header `Lambda-Extension-Name`,
//!   body `{"events": [...]}`: "Internal extensions are started and stopped
//!   by the runtime process, so they are not permitted to register for the
//!   `Shutdown` event", so `INVOKE` is the one event accepted (`SHUTDOWN`
//!   is refused with 403 `Extension.InvalidEventType`, as the emulator
//!   does). "You can register up to 10 extensions for a function." The
//!   answer carries `Lambda-Extension-Identifier` and "the function name,
//!   function version, and handler name" (plus `accountId` when
//!   `Lambda-Extension-Accept-Feature: accountId` asks for it, as the
//!   `lambda-extension` crate does). Registration closes when the runtime
//!   sends its first `next` (the end of `Runtime init`).
//! - `GET /2020-01-01/extension/event/next`, header
//!   `Lambda-Extension-Identifier`: "The extension sends a `Next` API
//!   request to signal that it is ready to receive new events. This is a
//!   blocking call." It answers the `INVOKE` event (`eventType`,
//!   `deadlineMs`, `requestId`, `invokedFunctionArn`, `tracing`).
//! - `POST /2020-01-01/extension/init/error` and `.../exit/error`, header
//!   `Lambda-Extension-Function-Error-Type`: 202; an init error fails init,
//!   an exit error fails the invocation under way (the environment is
//!   reset, as after a timeout).
//!
//! Phases: "The `Init` phase completes after the runtime and each
//! registered extension indicate completion by sending a `Next` API
//! request." "The `Invoke` phase ends after the runtime and all extensions
//! signal that they are done by sending a `Next` API request." "The
//! function's timeout setting limits the duration of the entire `Invoke`
//! phase [...] the function and all extensions need to complete within"
//! it. Refusals are 403 with `{"errorMessage", "errorType"}`, the
//! emulator's error types.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{Shared, lock};

/// Lambda's limit on extensions per function.
const MAX_EXTENSIONS: usize = 10;

const NAME_HEADER: &str = "lambda-extension-name";
const ID_HEADER: &str = "lambda-extension-identifier";
const FEATURE_HEADER: &str = "lambda-extension-accept-feature";
const ERROR_TYPE_HEADER: &str = "lambda-extension-function-error-type";

/// One registered extension.
struct Extension {
    name: String,
    /// Subscribed to `INVOKE`.
    invoke: bool,
    /// Events put in its queue.
    delivered: u64,
    /// Events its `next` requests returned.
    taken: u64,
    /// In a `next` request now.
    waiting: bool,
    /// When it last sent `next`.
    ready_at: Option<Instant>,
    queue: mpsc::UnboundedSender<Bytes>,
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Bytes>>>,
}

impl Extension {
    /// Done with every event handed to it, and asking for the next.
    fn ready(&self) -> bool {
        self.waiting && self.taken == self.delivered
    }
}

/// The extensions of one process.
#[derive(Default)]
pub(super) struct Extensions {
    by_id: HashMap<String, Extension>,
    /// Registration is over (the runtime sent its first `next`).
    closed: bool,
    /// What an extension reported through `init/error` or `exit/error`.
    pub(super) error: Option<String>,
}

impl Extensions {
    /// Every extension has sent `next` for every event it was given; with
    /// the last one's time (`None` while not all are ready).
    pub(super) fn ready_since(&self) -> Option<Option<Instant>> {
        self.by_id
            .values()
            .all(Extension::ready)
            .then(|| self.by_id.values().filter_map(|e| e.ready_at).max())
    }

    /// Whether any extension takes `INVOKE` events.
    pub(super) fn any_invoke(&self) -> bool {
        self.by_id.values().any(|e| e.invoke)
    }

    /// Ends registration: the runtime asked for its first event.
    pub(super) fn close(&mut self) {
        self.closed = true;
    }

    /// Hands `event` (an `INVOKE` event's JSON) to every extension that
    /// subscribed to it.
    pub(super) fn deliver(&mut self, event: &Bytes) {
        for extension in self.by_id.values_mut().filter(|e| e.invoke) {
            if extension.queue.send(event.clone()).is_ok() {
                extension.delivered += 1;
            }
        }
    }

    /// The names registered, in no order.
    pub(super) fn names(&self) -> Vec<String> {
        self.by_id.values().map(|e| e.name.clone()).collect()
    }
}

/// A 403 in the shape Lambda's Runtime API gives its refusals.
fn forbidden(error_type: &str, message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [("content-type", "application/json")],
        json!({"errorMessage": message, "errorType": error_type}).to_string(),
    )
        .into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// A random version-4 UUID, the form of Lambda's extension identifiers.
fn uuid() -> String {
    let n = fastrand::u128(..);
    let n = (n & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[derive(Deserialize)]
struct RegisterRequest {
    #[serde(default)]
    events: Vec<String>,
}

pub(super) async fn register(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(name) = header(&headers, NAME_HEADER) else {
        return forbidden("Extension.InvalidExtensionName", "Empty extension name");
    };
    let request: RegisterRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return forbidden("InvalidRequestFormat", &error.to_string()),
    };
    let mut invoke = false;
    for event in &request.events {
        match event.as_str() {
            "INVOKE" => invoke = true,
            "SHUTDOWN" => {
                return forbidden(
                    "Extension.InvalidEventType",
                    "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension",
                );
            }
            other => {
                return forbidden(
                    "Extension.InvalidEventType",
                    &format!("{other}: ErrorInvalidEventType"),
                );
            }
        }
    }
    let id = uuid();
    {
        let mut extensions = lock(&shared.extensions);
        if extensions.closed {
            return forbidden(
                "Extension.RegistrationClosed",
                "Extension registration closed already",
            );
        }
        if extensions.by_id.values().any(|e| e.name == name) {
            return forbidden(
                "Extension.InvalidExtensionState",
                "Extension with this name already registered",
            );
        }
        if extensions.by_id.len() >= MAX_EXTENSIONS {
            return forbidden(
                "Extension.TooManyExtensions",
                &format!("Extension limit ({MAX_EXTENSIONS}) reached"),
            );
        }
        let (queue, events) = mpsc::unbounded_channel();
        extensions.by_id.insert(
            id.clone(),
            Extension {
                name: name.to_owned(),
                invoke,
                delivered: 0,
                taken: 0,
                waiting: false,
                ready_at: None,
                queue,
                events: Arc::new(tokio::sync::Mutex::new(events)),
            },
        );
    }
    tracing::debug!(extension = name, events = ?request.events, "internal extension registered");
    let function = &shared.function;
    let mut answer = json!({
        "functionName": function.name,
        "functionVersion": function.version,
        "handler": function.handler,
    });
    let features = header(&headers, FEATURE_HEADER).unwrap_or_default();
    if features.split(',').any(|f| f.trim() == "accountId") {
        answer["accountId"] = function.account.clone().into();
    }
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(ID_HEADER, value);
    }
    response
}

/// A request's extension was not named or is not registered: its error
/// type and message.
struct Unidentified(&'static str, String);

impl IntoResponse for Unidentified {
    fn into_response(self) -> Response {
        forbidden(self.0, &self.1)
    }
}

/// The extension `headers` name.
fn identified(shared: &Shared, headers: &HeaderMap) -> Result<String, Unidentified> {
    let Some(id) = header(headers, ID_HEADER) else {
        return Err(Unidentified(
            "Extension.MissingExtensionIdentifier",
            "Missing Lambda-Extension-Identifier header".to_owned(),
        ));
    };
    if lock(&shared.extensions).by_id.contains_key(id) {
        Ok(id.to_owned())
    } else {
        Err(Unidentified(
            "Extension.UnknownExtensionIdentifier",
            format!("Unknown extension {id}"),
        ))
    }
}

/// Marks the extension ready while it waits, so that a `next` request
/// dropped by its client does not leave it counted as ready.
struct Waiting<'a> {
    shared: &'a Shared,
    id: &'a str,
    took: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(extension) = lock(&self.shared.extensions).by_id.get_mut(self.id) {
            extension.waiting = false;
            if self.took {
                extension.taken += 1;
            }
        }
        self.shared.changed.notify_waiters();
    }
}

pub(super) async fn next(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    let id = match identified(&shared, &headers) {
        Ok(id) => id,
        Err(refusal) => return refusal.into_response(),
    };
    let events = {
        let mut extensions = lock(&shared.extensions);
        let Some(extension) = extensions.by_id.get_mut(&id) else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        extension.waiting = true;
        extension.ready_at = Some(Instant::now());
        Arc::clone(&extension.events)
    };
    shared.changed.notify_waiters();
    let mut waiting = Waiting {
        shared: &shared,
        id: &id,
        took: false,
    };
    let event = events.lock().await.recv().await;
    let Some(event) = event else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    waiting.took = true;
    drop(waiting);
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json")],
        event,
    )
        .into_response();
    for (name, value) in [
        ("lambda-extension-event-identifier", uuid()),
        (ID_HEADER, id),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn report(shared: &Shared, headers: &HeaderMap, phase: &str, body: &Bytes) -> Response {
    let id = match identified(shared, headers) {
        Ok(id) => id,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(kind) = header(headers, ERROR_TYPE_HEADER) else {
        return forbidden(
            "Extension.MissingHeader",
            "Lambda-Extension-Function-Error-Type not found",
        );
    };
    let name = lock(&shared.extensions)
        .by_id
        .get(&id)
        .map(|e| e.name.clone())
        .unwrap_or_default();
    let report = format!(
        "extension {name} reported an {phase} error: {kind} {}",
        String::from_utf8_lossy(body)
    );
    if phase == "init" && lock(&shared.timeline).init_done.is_none() {
        lock(&shared.timeline).init_error = Some(report.clone());
    }
    lock(&shared.extensions).error.get_or_insert(report);
    shared.changed.notify_waiters();
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

pub(super) async fn init_error(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    report(&shared, &headers, "init", &body).await
}

pub(super) async fn exit_error(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    report(&shared, &headers, "exit", &body).await
}

#[cfg(test)]
mod tests {
    use super::uuid;

    #[test]
    fn an_extension_identifier_is_a_version_4_uuid() {
        let id = uuid();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert_eq!(&id[14..15], "4", "{id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
