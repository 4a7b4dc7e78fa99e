//! OpenTelemetry traces of the users API functions: one `SERVER` span per
//! invocation (FaaS and HTTP server semantic conventions) and one `CLIENT`
//! span per DynamoDB call (AWS SDK and database conventions), built with the
//! OpenTelemetry SDK and kept in memory until the invocation's response is
//! posted; then [`flush`] exports them over OTLP/HTTP.
//!
//! The parent of an invocation's span is the request's `traceparent` (or
//! what `OTEL_PROPAGATORS` names, see [`propagation`]); Lambda's X-Ray trace
//! for the invocation is linked, and is the parent when the request names
//! none. Sampling is parent-based ([`sampling`]); an unsampled invocation's
//! spans record nothing and nothing is sent.
//!
//! Permissions: `xray:PutTraceSegments` when the spans go to X-Ray's OTLP
//! endpoint ([`export`]); none otherwise.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Event, Link, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, Span, SpanData, SpanProcessor,
};

pub mod export;
pub mod extension;
pub mod flush;
pub mod propagation;
pub mod sampling;

pub use opentelemetry::Context as TraceContext;
pub use opentelemetry::KeyValue;
pub use opentelemetry::trace::{FutureExt, SpanKind};

use propagation::Propagators;

/// The instrumentation scope of every span.
const SCOPE: &str = "users-api";

/// The process's traces, once [`install`]ed.
static TRACES: OnceLock<Traces> = OnceLock::new();
/// Whether the next invocation is the process's first (`faas.coldstart`).
static COLD_START: AtomicBool = AtomicBool::new(true);

/// What builds the spans: the SDK's tracer with its sampler, the request
/// headers that may name a parent, and the spans finished but not yet
/// exported.
#[derive(Debug)]
pub struct Traces {
    // Kept so that the tracer's provider lives as long as the traces.
    _provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagators: Propagators,
    finished: Finished,
}

impl Traces {
    /// Traces sampled by `sampler`, with parents from `propagators`.
    pub fn new(sampler: Sampler, propagators: Propagators, resource: Resource) -> Self {
        let finished = Finished::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_span_processor(finished.clone())
            .with_resource(resource)
            .build();
        let tracer = provider.tracer(SCOPE);
        Self {
            _provider: provider,
            tracer,
            propagators,
            finished,
        }
    }

    /// The spans finished since the last call, in the order they ended.
    pub fn finished(&self) -> &Finished {
        &self.finished
    }

    /// Starts the span of one invocation, named `name` (`GET /users/{id}`),
    /// with `attributes` besides the FaaS ones, and returns the context
    /// that holds it: run the invocation's work within it
    /// ([`FutureExt::with_context`]) so its DynamoDB calls become its
    /// children, and end it with [`end_invocation`].
    pub fn start_invocation(
        &self,
        name: String,
        kind: SpanKind,
        invocation: &Invocation<'_>,
        headers: Option<&http::HeaderMap>,
        attributes: Vec<KeyValue>,
    ) -> Context {
        let cold_start = COLD_START.swap(false, Ordering::Relaxed);
        let lambda = invocation.xray_trace_id.and_then(propagation::parse_xray);
        let from_request = headers.and_then(|headers| self.propagators.extract(headers));
        let links = match (&from_request, &lambda) {
            (Some(_), Some(lambda)) => vec![Link::with_context(lambda.clone())],
            _ => Vec::new(),
        };
        let parent = from_request.or(lambda).map_or_else(Context::new, |parent| {
            Context::new().with_remote_span_context(parent)
        });
        let mut all = vec![
            KeyValue::new("faas.invocation_id", invocation.request_id.to_owned()),
            KeyValue::new("faas.coldstart", cold_start),
        ];
        if let Some(account) = account_id(invocation.function_arn) {
            all.push(KeyValue::new("cloud.account.id", account.to_owned()));
        }
        all.extend(attributes);
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(all)
            .with_links(links)
            .start_with_context(&self.tracer, &parent);
        parent
            .with_span(span)
            .with_value(CallTracer(self.tracer.clone()))
    }
}

/// The tracer of an invocation's calls, kept in its context.
#[derive(Debug, Clone)]
struct CallTracer(SdkTracer);

/// Whether `context` holds a sampled invocation span, whose calls
/// [`record_dynamodb_call`] records.
pub fn is_traced(context: &Context) -> bool {
    context.span().span_context().is_sampled() && context.get::<CallTracer>().is_some()
}

/// Records one finished DynamoDB call as a `CLIENT` span under the
/// invocation span in `parent`; nothing when that span is not sampled.
pub fn record_dynamodb_call(parent: &Context, call: &DynamoDbCall) {
    let Some(CallTracer(tracer)) = parent.get::<CallTracer>() else {
        return;
    };
    if !parent.span().span_context().is_sampled() {
        return;
    }
    let mut attributes = vec![
        KeyValue::new("db.system.name", "aws.dynamodb"),
        KeyValue::new("rpc.system", "aws-api"),
        KeyValue::new("rpc.service", "DynamoDB"),
        KeyValue::new("rpc.method", call.operation.clone()),
    ];
    if !call.table_names.is_empty() {
        let tables: Vec<StringValue> = call
            .table_names
            .iter()
            .map(|table| StringValue::from(table.clone()))
            .collect();
        attributes.push(KeyValue::new(
            "aws.dynamodb.table_names",
            Value::Array(tables.into()),
        ));
    }
    if let Some(region) = &call.region {
        attributes.push(KeyValue::new("cloud.region", region.clone()));
    }
    if let Some(request_id) = &call.request_id {
        attributes.push(KeyValue::new("aws.request_id", request_id.clone()));
    }
    let last = call.attempts.last();
    if let Some(status) = last.and_then(|attempt| attempt.status) {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    // Each attempt after the first is a resend (HTTP client conventions).
    let resends = call.attempts.len().saturating_sub(1);
    if resends > 0 {
        attributes.push(KeyValue::new(
            "http.request.resend_count",
            i64::try_from(resends).unwrap_or(i64::MAX),
        ));
    }
    let error = last.and_then(Attempt::error_type);
    if let Some(error) = &error {
        attributes.push(KeyValue::new("error.type", error.clone()));
    }
    let events = call
        .attempts
        .iter()
        .filter(|attempt| attempt.error_type().is_some())
        .map(|attempt| {
            let mut attributes = Vec::new();
            if let Some(status) = attempt.status {
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
            }
            if let Some(error) = attempt.error_type() {
                attributes.push(KeyValue::new("error.type", error));
            }
            Event::new("attempt failed", attempt.ended, attributes, 0)
        })
        .collect();
    let mut span = tracer
        .span_builder(format!("DynamoDB.{}", call.operation))
        .with_kind(SpanKind::Client)
        .with_start_time(call.started)
        .with_attributes(attributes)
        .with_events(events)
        .start_with_context(tracer, parent);
    if let Some(error) = error {
        opentelemetry::trace::Span::set_status(&mut span, Status::error(error));
    }
    opentelemetry::trace::Span::end_with_timestamp(&mut span, call.ended);
}

/// Makes `traces` the process's, for [`current`]; `false` (and `traces`
/// dropped) when there already are some.
pub fn install(traces: Traces) -> bool {
    TRACES.set(traces).is_ok()
}

/// The process's traces, if [`install`]ed (a function on Lambda or the
/// local twin); elsewhere (unit tests, the in-process local API) there are
/// none and nothing is traced.
pub fn current() -> Option<&'static Traces> {
    TRACES.get()
}

/// Ends the invocation span in `context` with its response's
/// `http.response.status_code` (when it has one); a 5xx, or `failed`, sets
/// its status to error (HTTP server conventions leave 4xx unset).
pub fn end_invocation(context: &Context, status: Option<u16>, failed: bool) {
    let span = context.span();
    if span.is_recording() {
        if let Some(status) = status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        let server_error = status.filter(|status| *status >= 500);
        if let Some(status) = server_error {
            span.set_attribute(KeyValue::new("error.type", status.to_string()));
        }
        if failed || server_error.is_some() {
            span.set_status(Status::error(""));
        }
    }
    span.end();
}

/// The trace id in `context`, in W3C form, when it holds a span.
pub fn trace_id(context: &Context) -> Option<String> {
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// What Lambda says about one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// Lambda's request id (`faas.invocation_id`).
    pub request_id: &'a str,
    /// The invoked function's ARN, which names its account.
    pub function_arn: &'a str,
    /// The invocation's X-Ray trace header, from its context (the runtime's
    /// `Lambda-Runtime-Trace-Id`).
    pub xray_trace_id: Option<&'a str>,
}

/// The account in a Lambda ARN, `arn:aws:lambda:<region>:<account>:function:…`.
fn account_id(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next()? == "arn").then_some(())?;
    parts
        .nth(3)
        .filter(|account| !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit()))
}

/// One DynamoDB call, as its `CLIENT` span reports it.
#[derive(Debug, Clone)]
pub struct DynamoDbCall {
    /// `GetItem`, `TransactWriteItems`…
    pub operation: String,
    /// The tables the request names.
    pub table_names: Vec<String>,
    /// The region called.
    pub region: Option<String>,
    /// DynamoDB's `x-amzn-requestid` of the last attempt.
    pub request_id: Option<String>,
    /// Each attempt, retries included, in order.
    pub attempts: Vec<Attempt>,
    /// When the SDK started the call.
    pub started: SystemTime,
    /// When it finished, after its last attempt.
    pub ended: SystemTime,
}

/// One attempt of a DynamoDB call.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Its HTTP status; `None` when no response came.
    pub status: Option<u16>,
    /// DynamoDB's error code (`ThrottlingException`), when it answered one.
    pub error_code: Option<String>,
    /// When it ended.
    pub ended: SystemTime,
}

impl Attempt {
    /// Its `error.type`: DynamoDB's error code, else the status of a
    /// refused attempt, else `unanswered` when no response came.
    fn error_type(&self) -> Option<String> {
        match (self.status, &self.error_code) {
            (_, Some(code)) => Some(code.clone()),
            (Some(status), None) if status >= 400 => Some(status.to_string()),
            (Some(_), None) => None,
            (None, None) => Some("unanswered".to_owned()),
        }
    }
}

/// The spans that ended and are not yet exported: the SDK's span processor
/// keeps the sampled ones here, for [`flush`] to take after the response.
#[derive(Debug, Clone, Default)]
pub struct Finished(Arc<Mutex<Vec<SpanData>>>);

impl Finished {
    /// Takes all the spans kept so far.
    pub fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl SpanProcessor for Finished {
    fn on_start(&self, _span: &mut Span, _context: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry::Value;
    use opentelemetry::trace::{SpanId, TraceId};

    use super::*;

    const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:get-user:live";
    pub(crate) const XRAY: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn traces() -> Traces {
        Traces::new(
            sampling::sampler(None, None),
            Propagators::default(),
            Resource::builder_empty().build(),
        )
    }

    /// An invocation of get-user, with Lambda's X-Ray trace header `xray`.
    pub(crate) fn invocation(xray: Option<&str>) -> Invocation<'_> {
        Invocation {
            request_id: "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            function_arn: ARN,
            xray_trace_id: xray,
        }
    }

    fn attribute<'s>(span: &'s SpanData, key: &str) -> Option<&'s Value> {
        span.attributes
            .iter()
            .find(|attribute| attribute.key.as_str() == key)
            .map(|attribute| &attribute.value)
    }

    fn headers(traceparent: &'static str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static(traceparent));
        headers
    }

    #[test]
    fn the_invocation_continues_the_client_s_trace_and_links_lambda_s() {
        let traces = traces();
        let context = traces.start_invocation(
            "GET /users/{id}".to_owned(),
            SpanKind::Server,
            &invocation(Some(XRAY)),
            Some(&headers(TRACEPARENT)),
            vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", "/users/{id}"),
            ],
        );
        assert_eq!(
            trace_id(&context).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        end_invocation(&context, Some(200), false);
        let spans = traces.finished().take();
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.name, "GET /users/{id}");
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(
            span.parent_span_id,
            SpanId::from_hex("00f067aa0ba902b7").expect("hex")
        );
        assert!(span.parent_span_is_remote);
        assert_eq!(span.links.len(), 1, "Lambda's X-Ray trace is linked");
        assert_eq!(
            span.links[0].span_context.trace_id(),
            TraceId::from_hex("5759e988bd862e3fe1be46a994272793").expect("hex")
        );
        for (key, value) in [
            (
                "faas.invocation_id",
                Value::from("8476a536-e9f4-11e8-9739-2dfe598c3fcd"),
            ),
            ("cloud.account.id", Value::from("123456789012")),
            ("http.request.method", Value::from("GET")),
            ("http.route", Value::from("/users/{id}")),
            ("http.response.status_code", Value::I64(200)),
        ] {
            assert_eq!(attribute(span, key), Some(&value), "{key}");
        }
        assert!(matches!(
            attribute(span, "faas.coldstart"),
            Some(Value::Bool(_))
        ));
        assert_eq!(span.status, Status::Unset);
        assert!(traces.finished().take().is_empty(), "taken once");
    }

    #[test]
    fn without_traceparent_lambda_s_x_ray_trace_is_the_parent() {
        let traces = traces();
        let context = traces.start_invocation(
            "GET /users".to_owned(),
            SpanKind::Server,
            &invocation(Some(XRAY)),
            Some(&http::HeaderMap::new()),
            Vec::new(),
        );
        end_invocation(&context, Some(503), false);
        let spans = traces.finished().take();
        assert_eq!(
            spans[0].span_context.trace_id(),
            TraceId::from_hex("5759e988bd862e3fe1be46a994272793").expect("hex")
        );
        assert_eq!(
            spans[0].parent_span_id,
            SpanId::from_hex("53995c3f42cd8ad8").expect("hex")
        );
        assert!(spans[0].links.is_empty());
        assert_eq!(spans[0].status, Status::error(""), "a 5xx is an error");
        assert_eq!(
            attribute(&spans[0], "error.type"),
            Some(&Value::from("503"))
        );
    }

    #[test]
    fn an_unsampled_invocation_keeps_its_trace_id_and_records_nothing() {
        let traces = traces();
        let unsampled =
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";
        let context = traces.start_invocation(
            "GET /users".to_owned(),
            SpanKind::Server,
            &invocation(Some(unsampled)),
            None,
            Vec::new(),
        );
        assert!(!context.span().is_recording());
        assert_eq!(
            trace_id(&context).as_deref(),
            Some("5759e988bd862e3fe1be46a994272793"),
            "the logs still carry it"
        );
        record_dynamodb_call(&context, &call(vec![ok()]));
        end_invocation(&context, Some(200), false);
        assert!(traces.finished().take().is_empty());
    }

    fn ok() -> Attempt {
        Attempt {
            status: Some(200),
            error_code: None,
            ended: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_004),
        }
    }

    fn call(attempts: Vec<Attempt>) -> DynamoDbCall {
        DynamoDbCall {
            operation: "TransactWriteItems".to_owned(),
            table_names: vec!["users".to_owned()],
            region: Some("eu-west-1".to_owned()),
            request_id: Some("R1".to_owned()),
            attempts,
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000),
            ended: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_005),
        }
    }

    #[test]
    fn a_dynamodb_call_is_a_client_span_under_the_invocation_with_its_retries() {
        let traces = traces();
        let context = traces.start_invocation(
            "POST /users".to_owned(),
            SpanKind::Server,
            &invocation(Some(XRAY)),
            None,
            Vec::new(),
        );
        let throttled = Attempt {
            status: Some(400),
            error_code: Some("ThrottlingException".to_owned()),
            ended: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_002),
        };
        record_dynamodb_call(&context, &call(vec![throttled, ok()]));
        let refused = Attempt {
            status: Some(400),
            error_code: Some("TransactionCanceledException".to_owned()),
            ..ok()
        };
        record_dynamodb_call(&context, &call(vec![refused]));
        end_invocation(&context, Some(201), false);
        let spans = traces.finished().take();
        assert_eq!(spans.len(), 3, "two calls, then the invocation");
        let server = &spans[2];
        let (retried, failed) = (&spans[0], &spans[1]);
        for span in [retried, failed] {
            assert_eq!(span.name, "DynamoDB.TransactWriteItems");
            assert_eq!(span.span_kind, SpanKind::Client);
            assert_eq!(span.parent_span_id, server.span_context.span_id());
            assert_eq!(span.span_context.trace_id(), server.span_context.trace_id());
            for (key, value) in [
                ("db.system.name", Value::from("aws.dynamodb")),
                ("rpc.system", Value::from("aws-api")),
                ("rpc.service", Value::from("DynamoDB")),
                ("rpc.method", Value::from("TransactWriteItems")),
                ("aws.request_id", Value::from("R1")),
                (
                    "aws.dynamodb.table_names",
                    Value::Array(vec![StringValue::from("users")].into()),
                ),
            ] {
                assert_eq!(attribute(span, key), Some(&value), "{key}");
            }
            assert_eq!(
                span.start_time,
                SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000)
            );
            assert_eq!(
                span.end_time,
                SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_005)
            );
        }
        assert_eq!(
            attribute(retried, "http.request.resend_count"),
            Some(&Value::I64(1))
        );
        assert_eq!(retried.status, Status::Unset, "the retry succeeded");
        assert_eq!(retried.events.len(), 1, "the throttled attempt");
        assert_eq!(
            attribute(failed, "error.type"),
            Some(&Value::from("TransactionCanceledException"))
        );
        assert_eq!(
            failed.status,
            Status::error("TransactionCanceledException"),
            "a client span's 4xx is an error"
        );
        assert_eq!(attribute(failed, "http.request.resend_count"), None);
    }

    #[test]
    fn the_account_comes_from_the_function_arn() {
        assert_eq!(account_id(ARN), Some("123456789012"));
        assert_eq!(
            account_id("arn:aws:lambda:us-east-1:000000000000:function:f"),
            Some("000000000000")
        );
        assert_eq!(account_id("not an arn"), None);
        assert_eq!(account_id("arn:aws:lambda:us-east-1::function:f"), None);
    }
}
