//! An OTLP/HTTP traces receiver on loopback, for `--lambda` mode: the
//! functions export their spans to it (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! as they would to a collector, and each span received is kept and
//! appended to `--traces-file` as one JSON line. It stands in for where
//! the deployed functions send their spans: X-Ray's OTLP endpoint, or the
//! endpoint (a vendor's or a collector's) the stack's `OtlpEndpoint` names.
//!
//! It follows the OTLP specification's OTLP/HTTP rules: `POST /v1/traces`
//! with an `ExportTraceServiceRequest` as binary Protobuf
//! (`application/x-protobuf`) or as JSON (`application/json`), on the same
//! port, told apart by `Content-Type`; "The client MAY gzip the content
//! and in that case MUST include `Content-Encoding: gzip`". "On success,
//! the server MUST respond with HTTP 200 OK", with "a Protobuf-encoded
//! ExportTraceServiceResponse" in "the same Content-Type in the response as
//! it received in the request", `partial_success` left unset; a body that
//! cannot be decoded gets "HTTP 400 Bad Request", and every 4xx carries a
//! Protobuf-encoded `google.rpc.Status` (JSON for a JSON request); an
//! unknown content type or encoding gets 415.
//!
//! A line is the span in OTLP JSON exactly as `opentelemetry-proto`'s serde
//! mapping writes it, the OTLP/JSON encoding: `traceId`, `spanId`,
//! `parentSpanId` as lowercase hex (`""` for a root span), `name`, `kind`
//! as the enum's number (`1` internal, `2` server, `3` client, `4`
//! producer, `5` consumer), `startTimeUnixNano` and `endTimeUnixNano` as
//! decimal strings, `attributes` as OTLP's list of `{key, value:
//! {stringValue | intValue | boolValue | doubleValue | arrayValue | ...}}`
//! (`intValue` a decimal string), `events`, `links`, `status` (`code` `0`
//! unset, `1` ok, `2` error) and the counts of dropped items. Two fields
//! are added beside the span's own: `resource` (the `Resource` it came
//! with, in OTLP JSON: `service.name` is among its attributes) and `scope`
//! (its `InstrumentationScope`).

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde_json::{Value, json};

use crate::json_lines::KeptRecords;
use crate::loopback::LoopbackServer;

/// Spans kept in memory at most (the file keeps every one).
const KEPT: usize = 100_000;

/// The largest request body read (the exporters batch 512 spans a request
/// by default, far below it).
const BODY_LIMIT: usize = 16 << 20;

/// `google.rpc.Status`, the body of OTLP/HTTP's error responses.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// `google.rpc.Code.INVALID_ARGUMENT`.
const INVALID_ARGUMENT: i32 = 3;

/// The spans received, in arrival order.
#[derive(Debug, Default)]
pub struct Spans(KeptRecords);

impl Spans {
    /// Spans also appended to `path` as JSON lines, if given.
    pub fn new(path: Option<&Path>) -> std::io::Result<Self> {
        Ok(Self(KeptRecords::new(path, Some(KEPT))?))
    }

    /// Every span received so far (the last 100,000), one line's JSON each.
    pub fn all(&self) -> Vec<Value> {
        self.0.all()
    }

    /// Keeps each span of `request`, with its resource and scope.
    fn record(&self, request: &ExportTraceServiceRequest) -> Result<(), serde_json::Error> {
        let mut lines = Vec::new();
        for resource_spans in &request.resource_spans {
            let resource = serde_json::to_value(&resource_spans.resource)?;
            for scope_spans in &resource_spans.scope_spans {
                let scope = serde_json::to_value(&scope_spans.scope)?;
                for span in &scope_spans.spans {
                    let mut line = serde_json::to_value(span)?;
                    if let Value::Object(fields) = &mut line {
                        fields.insert("resource".to_owned(), resource.clone());
                        fields.insert("scope".to_owned(), scope.clone());
                    }
                    lines.push(line);
                }
            }
        }
        self.0.extend(lines);
        Ok(())
    }
}

/// A running receiver; it stops when dropped.
#[derive(Debug)]
pub struct TraceReceiver {
    server: LoopbackServer,
    spans: Arc<Spans>,
}

impl TraceReceiver {
    /// Starts a receiver on a free loopback port, appending to `path` if
    /// given.
    pub async fn start(path: Option<&Path>) -> std::io::Result<Self> {
        let spans = Arc::new(Spans::new(path)?);
        let router = Router::new()
            .route("/v1/traces", post(export))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(Arc::clone(&spans));
        Ok(Self {
            server: LoopbackServer::start(router).await?,
            spans,
        })
    }

    /// The traces endpoint, the value of `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.server.address())
    }

    /// The spans received.
    pub fn spans(&self) -> Arc<Spans> {
        Arc::clone(&self.spans)
    }
}

/// How a request's body is encoded, and so its answer.
#[derive(Clone, Copy)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// An error answer: `Status` in the request's encoding.
fn failure(status: StatusCode, encoding: Encoding, message: &str) -> Response {
    let body = match encoding {
        Encoding::Protobuf => RpcStatus {
            code: INVALID_ARGUMENT,
            message: message.to_owned(),
        }
        .encode_to_vec(),
        Encoding::Json => json!({"code": INVALID_ARGUMENT, "message": message})
            .to_string()
            .into_bytes(),
    };
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

async fn export(State(spans): State<Arc<Spans>>, headers: HeaderMap, body: Bytes) -> Response {
    let value = |name| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    };
    let encoding = match value(header::CONTENT_TYPE).as_deref() {
        Some("application/x-protobuf") => Encoding::Protobuf,
        Some("application/json") => Encoding::Json,
        other => {
            return failure(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Encoding::Protobuf,
                &format!(
                    "unsupported content type {other:?}: application/x-protobuf or application/json"
                ),
            );
        }
    };
    let body = match value(header::CONTENT_ENCODING).as_deref() {
        None | Some("identity") => body.to_vec(),
        Some("gzip") => {
            let mut plain = Vec::new();
            if let Err(error) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain) {
                return failure(StatusCode::BAD_REQUEST, encoding, &format!("gzip: {error}"));
            }
            plain
        }
        Some(other) => {
            return failure(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                &format!("unsupported content encoding {other}: gzip or none"),
            );
        }
    };
    let request = match encoding {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(&body[..]).map_err(|e| e.to_string())
        }
        Encoding::Json => serde_json::from_slice(&body).map_err(|e| e.to_string()),
    };
    let request = match request {
        Ok(request) => request,
        Err(error) => return failure(StatusCode::BAD_REQUEST, encoding, &error),
    };
    if let Err(error) = spans.record(&request) {
        return failure(StatusCode::BAD_REQUEST, encoding, &error.to_string());
    }
    let answer = match encoding {
        Encoding::Protobuf => ExportTraceServiceResponse::default().encode_to_vec(),
        // `partial_success` unset: an empty object.
        Encoding::Json => b"{}".to_vec(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        answer,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

    use super::*;

    fn attribute(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    /// One SERVER span of `service`, child of a client's span.
    fn request(service: &str) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attribute(
                        "service.name",
                        any_value::Value::StringValue(service.to_owned()),
                    )],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: (1..=16).collect(),
                        span_id: vec![0xab; 8],
                        parent_span_id: vec![0x0c; 8],
                        name: "GET /users/{id}".to_owned(),
                        kind: span::SpanKind::Server as i32,
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_002_000_000,
                        attributes: vec![
                            attribute(
                                "http.request.method",
                                any_value::Value::StringValue("GET".to_owned()),
                            ),
                            attribute("http.response.status_code", any_value::Value::IntValue(404)),
                        ],
                        links: vec![span::Link {
                            trace_id: vec![0x5f; 16],
                            span_id: vec![0x2b; 8],
                            ..span::Link::default()
                        }],
                        status: Some(Status {
                            message: String::new(),
                            code: 0,
                        }),
                        ..Span::default()
                    }],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    async fn post(
        receiver: &TraceReceiver,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut post = reqwest::Client::new()
            .post(receiver.endpoint())
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            post = post.header("content-encoding", encoding);
        }
        post.send().await.expect("POST /v1/traces")
    }

    #[tokio::test]
    async fn a_protobuf_export_is_answered_in_protobuf_and_its_span_kept_in_otlp_json() {
        let file = std::env::temp_dir().join(format!("spans-{}.jsonl", ulid::Ulid::new()));
        let receiver = TraceReceiver::start(Some(&file)).await.expect("receiver");
        let response = post(
            &receiver,
            "application/x-protobuf",
            None,
            request("get-user").encode_to_vec(),
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/x-protobuf");
        let answer = ExportTraceServiceResponse::decode(response.bytes().await.expect("body"))
            .expect("an ExportTraceServiceResponse");
        assert_eq!(answer.partial_success, None, "left unset on full success");
        let line: Value = serde_json::from_str(
            std::fs::read_to_string(&file)
                .expect("the traces file")
                .lines()
                .next()
                .expect("one line"),
        )
        .expect("JSON");
        assert_eq!(receiver.spans().all(), std::slice::from_ref(&line));
        assert_eq!(line["traceId"], "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(line["spanId"], "abababababababab");
        assert_eq!(line["parentSpanId"], "0c0c0c0c0c0c0c0c");
        assert_eq!(line["name"], "GET /users/{id}");
        assert_eq!(line["kind"], 2, "SPAN_KIND_SERVER as its number");
        assert_eq!(line["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(line["endTimeUnixNano"], "1700000000002000000");
        assert_eq!(
            line["attributes"],
            json!([
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "http.response.status_code", "value": {"intValue": "404"}},
            ])
        );
        assert_eq!(line["links"][0]["traceId"], "5f".repeat(16));
        assert_eq!(line["links"][0]["spanId"], "2b".repeat(8));
        assert_eq!(line["status"]["code"], 0);
        assert_eq!(
            line["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "get-user"}})
        );
        let _ = std::fs::remove_file(file);
    }

    #[tokio::test]
    async fn a_json_export_reads_otlp_json_and_is_answered_in_json() {
        let receiver = TraceReceiver::start(None).await.expect("receiver");
        let body = serde_json::to_vec(&request("create-user")).expect("OTLP JSON");
        let response = post(&receiver, "application/json", None, body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.text().await.expect("body"), "{}");
        let spans = receiver.spans().all();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0]["traceId"], "0102030405060708090a0b0c0d0e0f10");
    }

    #[tokio::test]
    async fn a_gzip_body_is_read() {
        let receiver = TraceReceiver::start(None).await.expect("receiver");
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&request("get-user").encode_to_vec())
            .expect("gzip");
        let body = gzip.finish().expect("gzip");
        let response = post(&receiver, "application/x-protobuf", Some("gzip"), body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(receiver.spans().all().len(), 1);
    }

    #[tokio::test]
    async fn an_undecodable_body_gets_400_with_a_status_and_an_unknown_type_415() {
        let receiver = TraceReceiver::start(None).await.expect("receiver");
        let response = post(&receiver, "application/x-protobuf", None, vec![0xff; 7]).await;
        assert_eq!(response.status(), 400);
        let status =
            RpcStatus::decode(response.bytes().await.expect("body")).expect("a google.rpc.Status");
        assert_eq!(status.code, INVALID_ARGUMENT);
        assert!(!status.message.is_empty());
        let response = post(&receiver, "text/plain", None, b"spans".to_vec()).await;
        assert_eq!(response.status(), 415);
        assert!(receiver.spans().all().is_empty());
    }
}
