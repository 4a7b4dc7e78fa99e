//! Exporting each invocation's spans after its response, from an internal
//! Lambda extension in the function's own process ([`crate::extension`], in
//! the shape of the `lambda-extension` crate's `extension-internal-flush`
//! example): Lambda sends the extension each `INVOKE` too, and does not
//! freeze the environment or start the next invocation until the extension
//! asks for its next event.
//! The extension waits until the handler has returned (the runtime then
//! posts the response, so the client does not wait), exports the spans the
//! invocation finished, and only then asks for the next event.
//!
//! Without a [`Destination`], or when Lambda refuses the extension, spans
//! are built unsampled: the logs still carry the trace id, and nothing is
//! kept or sent.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SpanExporter};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tower_service::Service;

use crate::export::Destination;
use crate::extension::{self, Event};
use crate::propagation::Propagators;
use crate::{Finished, Traces, install, sampling};

/// What the runtime and the extension return.
pub type Error = lambda_runtime_api_client::BoxError;

/// The extension's name (internal extensions' names are unique per
/// function).
pub const EXTENSION_NAME: &str = "users-api-traces";

/// Exports the spans kept in a [`Finished`], logging a failure once until
/// an export succeeds again, and never failing anything.
#[derive(Debug)]
pub struct Flusher {
    exporter: opentelemetry_otlp::SpanExporter,
    finished: Finished,
    failing: AtomicBool,
}

impl Flusher {
    /// A flusher of `finished` through `exporter`, its spans described by
    /// `resource`.
    pub fn new(
        mut exporter: opentelemetry_otlp::SpanExporter,
        finished: Finished,
        resource: &Resource,
    ) -> Self {
        exporter.set_resource(resource);
        Self {
            exporter,
            finished,
            failing: AtomicBool::new(false),
        }
    }

    /// Exports the spans finished since the last flush, if any.
    pub async fn flush(&self) {
        let spans = self.finished.take();
        if spans.is_empty() {
            return;
        }
        let count = spans.len();
        match self.exporter.export(spans).await {
            Ok(()) => self.failing.store(false, Ordering::Relaxed),
            Err(error) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, spans = count, "traces export failed; spans dropped until an export succeeds");
                }
            }
        }
    }
}

/// Tells the extension that an invocation's handler has returned.
#[derive(Debug, Clone, Default)]
pub struct Done(Option<UnboundedSender<()>>);

impl Done {
    fn signal(&self) {
        if let Some(sender) = &self.0 {
            let _ = sender.send(());
        }
    }
}

/// `service`, telling the extension when each invocation's handler has
/// returned.
pub struct Signalling<'a, S> {
    inner: S,
    done: Done,
    _lifetime: PhantomData<&'a ()>,
}

impl<S> Signalling<'_, S> {
    /// `service`, signalling `done` after each call.
    pub fn new(service: S, done: Done) -> Self {
        Self {
            inner: service,
            done,
            _lifetime: PhantomData,
        }
    }
}

impl<S> fmt::Debug for Signalling<'_, S> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Signalling")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

type Answer<'a, R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send + 'a>>;

impl<'a, S, T> Service<T> for Signalling<'a, S>
where
    S: Service<T>,
    S::Future: Send + 'a,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Answer<'a, S::Response, S::Error>;

    fn poll_ready(&mut self, context: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: T) -> Self::Future {
        let answer = self.inner.call(request);
        let done = self.done.clone();
        Box::pin(async move {
            let output = answer.await;
            done.signal();
            output
        })
    }
}

/// The process's [`Traces`], installed, and the extension that exports
/// them, registered: what [`start`] prepared during init for [`Started::run`].
#[derive(Debug)]
pub struct Started {
    exporting: Option<Exporting>,
}

/// The registered extension and what it flushes.
#[derive(Debug)]
struct Exporting {
    registered: extension::Registered,
    flusher: Flusher,
    done: UnboundedSender<()>,
    signals: UnboundedReceiver<()>,
}

/// Installs the process's [`Traces`] and, when they have a [`Destination`],
/// builds its exporter and registers the extension that will export each
/// invocation's spans. Call it during init, before the runtime asks for its
/// first event (registration closes then); its one call to the Runtime API
/// may wait beside init's other calls, such as the DynamoDB connection's.
pub async fn start() -> Started {
    let propagators = Propagators::parse(std::env::var("OTEL_PROPAGATORS").ok().as_deref());
    let resource = resource(|name| std::env::var(name).ok());
    if let Some(protocol) = Destination::unsupported_protocol(|name| std::env::var(name).ok()) {
        tracing::warn!(%protocol, "this OTLP protocol is not supported; traces are sent as http/protobuf");
    }
    let exporter = match Destination::from_env().map(|destination| destination.exporter()) {
        Some(Ok(exporter)) => Some(exporter),
        Some(Err(error)) => {
            tracing::warn!(%error, "traces are not exported");
            None
        }
        None => None,
    };
    let Some(exporter) = exporter else {
        install(Traces::new(Sampler::AlwaysOff, propagators, resource));
        return Started { exporting: None };
    };
    match extension::register(EXTENSION_NAME).await {
        Ok(registered) => {
            let traces = Traces::new(sampling::from_env(), propagators, resource.clone());
            let flusher = Flusher::new(exporter, traces.finished().clone(), &resource);
            install(traces);
            let (done, signals) = unbounded_channel::<()>();
            Started {
                exporting: Some(Exporting {
                    registered,
                    flusher,
                    done,
                    signals,
                }),
            }
        }
        Err(error) => {
            tracing::warn!(%error, "the traces extension could not register; traces are not exported");
            install(Traces::new(
                Sampler::AlwaysOff,
                propagators,
                Resource::builder_empty().build(),
            ));
            Started { exporting: None }
        }
    }
}

impl Started {
    /// Runs `runtime` (the Lambda runtime's loop, given the [`Done`] its
    /// service signals, see [`Signalling`]) beside the extension, if any,
    /// that exports each invocation's spans.
    pub async fn run<F, R>(self, runtime: F) -> Result<(), Error>
    where
        F: FnOnce(Done) -> R,
        R: Future<Output = Result<(), Error>>,
    {
        let Some(exporting) = self.exporting else {
            return runtime(Done::default()).await;
        };
        tokio::try_join!(
            biased;
            runtime(Done(Some(exporting.done))),
            flush_after_each_invocation(&exporting.registered, &exporting.flusher, exporting.signals),
        )
        .map(|_| ())
    }
}

/// The extension's loop: for each `INVOKE`, waits for the handler's signal
/// (none only once the runtime has stopped), flushes, and only then asks for
/// the next event, which lets Lambda freeze the environment.
async fn flush_after_each_invocation(
    registered: &extension::Registered,
    flusher: &Flusher,
    mut done: UnboundedReceiver<()>,
) -> Result<(), Error> {
    loop {
        match registered.next().await? {
            Event::Invoke => {
                if done.recv().await.is_none() {
                    return Ok(());
                }
                flusher.flush().await;
            }
            Event::Shutdown => return Ok(()),
        }
    }
}

/// The resource every span belongs to: the function, as the FaaS and cloud
/// semantic conventions name it, from Lambda's environment (read through
/// `var`), with the SDK's own detectors (`telemetry.sdk.*`,
/// `OTEL_RESOURCE_ATTRIBUTES`); `OTEL_SERVICE_NAME`, when set, names the
/// service rather than the function's name.
pub fn resource(var: impl Fn(&str) -> Option<String>) -> Resource {
    let mut attributes = vec![
        KeyValue::new("cloud.provider", "aws"),
        KeyValue::new("cloud.platform", "aws_lambda"),
    ];
    for (variable, key) in [
        ("AWS_REGION", "cloud.region"),
        ("AWS_LAMBDA_FUNCTION_NAME", "faas.name"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "faas.version"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "faas.instance"),
    ] {
        if let Some(value) = var(variable) {
            attributes.push(KeyValue::new(key, value));
        }
    }
    if let Some(megabytes) =
        var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|size| size.trim().parse::<i64>().ok())
    {
        attributes.push(KeyValue::new(
            "faas.max_memory",
            megabytes.saturating_mul(1024 * 1024),
        ));
    }
    let mut builder = Resource::builder().with_attributes(attributes);
    if var("OTEL_SERVICE_NAME").is_none()
        && let Some(name) = var("AWS_LAMBDA_FUNCTION_NAME")
    {
        builder = builder.with_service_name(name);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::SpanKind;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::DynamoDbCall;

    /// Answers one HTTP/1.1 request with `status` and returns its head and
    /// body.
    async fn receive_one(listener: &TcpListener, status: u16) -> (String, Vec<u8>) {
        let (mut stream, _) = listener.accept().await.expect("a connection");
        let mut received = Vec::new();
        let mut buffer = [0_u8; 8192];
        let head_end = loop {
            let read = stream.read(&mut buffer).await.expect("read");
            assert!(read > 0, "the request ended early");
            received.extend_from_slice(&buffer[..read]);
            if let Some(at) = received.windows(4).position(|window| window == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8(received[..head_end].to_vec()).expect("UTF-8 head");
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("a Content-Length");
        while received.len() < head_end + length {
            let read = stream.read(&mut buffer).await.expect("read");
            assert!(read > 0, "the body ended early");
            received.extend_from_slice(&buffer[..read]);
        }
        let answer =
            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        stream.write_all(answer.as_bytes()).await.expect("answer");
        (head, received[head_end..head_end + length].to_vec())
    }

    fn traced(traces: &Traces) {
        let invocation = crate::tests::invocation(Some(crate::tests::XRAY));
        let context = traces.start_invocation(
            "GET /users/{id}".to_owned(),
            SpanKind::Server,
            &invocation,
            None,
            Vec::new(),
        );
        let now = SystemTime::now();
        crate::record_dynamodb_call(
            &context,
            &DynamoDbCall {
                operation: "GetItem".to_owned(),
                table_names: vec!["users".to_owned()],
                region: None,
                request_id: None,
                attempts: Vec::new(),
                started: now,
                ended: now + Duration::from_millis(2),
            },
        );
        crate::end_invocation(&context, Some(200), false);
    }

    fn flusher(endpoint: String, traces: &Traces) -> Flusher {
        let exporter = Destination::Otlp {
            endpoint: Some(endpoint),
        }
        .exporter()
        .expect("an exporter");
        let resource =
            resource(|name| (name == "AWS_LAMBDA_FUNCTION_NAME").then(|| "get-user".to_owned()));
        Flusher::new(exporter, traces.finished().clone(), &resource)
    }

    #[tokio::test]
    async fn the_exporter_posts_an_otlp_protobuf_request_with_the_invocation_s_spans() {
        let flushed = flush_to_a_receiver_answering(200).await;
        let (traces, (head, body)) = (flushed.traces, flushed.request);
        assert_eq!(flushed.requests, 1);
        assert!(head.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/x-protobuf"),
            "{head}"
        );
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("protobuf");
        assert_eq!(request.resource_spans.len(), 1);
        let resource_spans = &request.resource_spans[0];
        let attributes = &resource_spans
            .resource
            .as_ref()
            .expect("a resource")
            .attributes;
        assert!(
            attributes
                .iter()
                .any(|attribute| attribute.key == "service.name"
                    && format!("{:?}", attribute.value).contains("get-user")),
            "{attributes:?}"
        );
        let spans: Vec<_> = resource_spans
            .scope_spans
            .iter()
            .flat_map(|scope| &scope.spans)
            .collect();
        let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
        assert_eq!(names, ["DynamoDB.GetItem", "GET /users/{id}"]);
        let trace_id = hex(&spans[1].trace_id);
        assert_eq!(trace_id, "5759e988bd862e3fe1be46a994272793");
        assert_eq!(
            spans[0].parent_span_id, spans[1].span_id,
            "the call's parent"
        );
        assert_eq!(hex(&spans[1].parent_span_id), "53995c3f42cd8ad8");
        assert!(traces.finished().take().is_empty(), "exported once");
    }

    /// What one traced invocation's flush did against a receiver.
    struct Flushed {
        traces: Traces,
        flusher: Flusher,
        /// The first export request's head and body.
        request: (String, Vec<u8>),
        /// Export requests received: the first, and any retry that came
        /// within a second after it (a retry waits at least 100 ms).
        requests: usize,
    }

    /// Flushes one traced invocation's spans to a receiver that answers
    /// `status`.
    async fn flush_to_a_receiver_answering(status: u16) -> Flushed {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let endpoint = format!(
            "http://{}/v1/traces",
            listener.local_addr().expect("address")
        );
        let traces = Traces::new(
            sampling::sampler(None, None),
            Propagators::default(),
            Resource::builder_empty().build(),
        );
        traced(&traces);
        let flusher = flusher(endpoint, &traces);
        let server = tokio::spawn(async move {
            let request = receive_one(&listener, status).await;
            let retried = tokio::time::timeout(Duration::from_secs(1), listener.accept())
                .await
                .is_ok();
            (request, 1 + usize::from(retried))
        });
        flusher.flush().await;
        let (request, requests) = server.await.expect("the server");
        Flushed {
            traces,
            flusher,
            request,
            requests,
        }
    }

    #[tokio::test]
    async fn a_failed_export_is_logged_dropped_and_not_retried() {
        for status in [400, 503] {
            let flushed = flush_to_a_receiver_answering(status).await;
            assert!(flushed.flusher.failing.load(Ordering::Relaxed), "{status}");
            assert!(
                flushed.traces.finished().take().is_empty(),
                "{status}: dropped, not kept"
            );
            assert_eq!(flushed.requests, 1, "{status}: not retried");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}
