//! The CPU cost of traces per invocation, in the thread's CPU time as
//! `handlers.rs` measures a handler: what an invocation spends on its
//! `SERVER` span and two DynamoDB `CLIENT` spans (a create's `GetItem` and
//! `TransactWriteItems`, one of them retried once), sampled and unsampled,
//! and what the extension then spends turning the sampled spans into the
//! OTLP/HTTP protobuf request body it posts (as `opentelemetry-otlp` does:
//! grouped by resource and scope, then encoded). Sending the body is I/O,
//! after the response, and not measured here.
#![allow(
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture must stop the run loudly"
)]

use std::time::{Duration, SystemTime};

use cpu_time::ThreadTime;
use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use prost::Message as _;
use traces::propagation::Propagators;
use traces::{Attempt, DynamoDbCall, Invocation, Traces};

/// Invocations per measured batch.
const BATCH: u64 = 200;

fn headers(flags: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}")
            .parse()
            .expect("a header value"),
    );
    headers
}

/// One invocation: its span, two DynamoDB calls, its end.
fn invocation(traces: &Traces, headers: &http::HeaderMap) {
    let invocation = Invocation {
        request_id: "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:users-api-CreateUser:live",
        xray_trace_id: Some(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        ),
    };
    let context = traces.start_invocation(
        "POST /users".to_owned(),
        SpanKind::Server,
        &invocation,
        Some(headers),
        vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/users"),
        ],
    );
    let started = SystemTime::now();
    for (operation, attempts) in [("GetItem", 1), ("TransactWriteItems", 2)] {
        let ended = started + Duration::from_millis(4);
        traces::record_dynamodb_call(
            &context,
            &DynamoDbCall {
                operation: operation.to_owned(),
                table_names: vec!["users-api-UsersTable-1ABCDEFGHIJK".to_owned()],
                region: Some("eu-west-1".to_owned()),
                request_id: Some("J1PQ8C0ULD3JQ4S8UKKV7SK9JVVV4KQNSO5AEMVJF66Q9ASUAAJG".to_owned()),
                attempts: (0..attempts)
                    .map(|n| Attempt {
                        status: Some(if n + 1 < attempts { 400 } else { 200 }),
                        error_code: (n + 1 < attempts)
                            .then(|| "TransactionConflictException".to_owned()),
                        ended,
                    })
                    .collect(),
                started,
                ended,
            },
        );
    }
    traces::end_invocation(&context, Some(201), false);
}

fn per_invocation(c: &mut Criterion) {
    let resource = traces::flush::resource(|name| match name {
        "AWS_REGION" => Some("eu-west-1".to_owned()),
        "AWS_LAMBDA_FUNCTION_NAME" => Some("users-api-CreateUser".to_owned()),
        "AWS_LAMBDA_FUNCTION_VERSION" => Some("7".to_owned()),
        _ => None,
    });
    let traces = Traces::new(
        traces::sampling::sampler(None, None),
        Propagators::default(),
        resource.clone(),
    );
    let mut group = c.benchmark_group("traces");
    for (name, flags) in [("unsampled invocation", "00"), ("sampled invocation", "01")] {
        let headers = headers(flags);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters.div_ceil(BATCH) {
                    let started = ThreadTime::now();
                    for _ in 0..BATCH {
                        invocation(&traces, &headers);
                    }
                    spent += started.elapsed();
                    drop(traces.finished().take());
                }
                spent.mul_f64(iters as f64 / (iters.div_ceil(BATCH) * BATCH) as f64)
            });
        });
    }
    // The export's encoding of one sampled invocation's three spans.
    let sampled = headers("01");
    let resource = ResourceAttributesWithSchema::from(&resource);
    group.bench_function("export body of a sampled invocation", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                invocation(&traces, &sampled);
                let spans = traces.finished().take();
                assert_eq!(spans.len(), 3, "a SERVER and two CLIENT spans");
                let started = ThreadTime::now();
                let request = ExportTraceServiceRequest {
                    resource_spans: group_spans_by_resource_and_scope(spans, &resource),
                };
                let body = request.encode_to_vec();
                spent += started.elapsed();
                drop(body);
            }
            spent
        });
    });
    group.finish();
}

criterion_group!(benches, per_invocation);
criterion_main!(benches);
