//! Internal Lambda extensions and OTLP traces through `local-api --lambda`,
//! checked against the AWS Lambda Developer Guide ("Using the Lambda
//! Extensions API to create extensions") and the OTLP specification, not
//! against the functions' own code: a function is swapped for a script
//! whose extension (a background `curl` loop speaking the Extensions API)
//! registers before the real binary starts as the runtime. The twin sees
//! what it sees of an internal extension: a second client of the same
//! `AWS_LAMBDA_RUNTIME_API`.

use std::time::{Duration, Instant, SystemTime};

use local_api::lambda::LambdaOptions;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message as _;
use serde_json::{Value, json};

use crate::lambda::Binaries;
use crate::support::{Api, Backend};

/// A script for get-user: an extension named `test-flush` registers for
/// `INVOKE` as the `lambda-extension` crate does (its headers), runs
/// `before_first_next`, then for each event appends the event and the time
/// it arrived (`date +%s%N`) to `DIR/events` and runs `after_each_event`
/// before asking again; meanwhile the real get-user runs as the runtime.
/// Every request is bounded so that no extension outlives its test long.
fn function_with_extension(before_first_next: &str, after_each_event: &str) -> String {
    format!(
        r#"#!/usr/bin/env bash
api="http://$AWS_LAMBDA_RUNTIME_API/2020-01-01/extension"
id="$(curl -sS --max-time 5 -D - -o 'DIR/registered' -X POST "$api/register" \
  -H 'Lambda-Extension-Name: test-flush' -H 'Lambda-Extension-Accept-Feature: accountId' \
  -H 'Content-Type: application/json' -d '{{"events":["INVOKE"]}}' \
  | tr -d '\r' | awk -F': ' 'tolower($1)=="lambda-extension-identifier" {{print $2}}')"
(
  {before_first_next}
  while event="$(curl -sSf --max-time 30 "$api/event/next" -H "Lambda-Extension-Identifier: $id")"; do
    printf '%s %s\n' "$(date +%s%N)" "$event" >> 'DIR/events'
    {after_each_event}
  done
) &
exec 'REAL'
"#
    )
}

/// `--lambda` options for `binaries`, one instance of each function (so
/// that a second request waits for the first invocation to end instead of
/// starting another instance).
fn one_instance(binaries: &Binaries) -> LambdaOptions {
    LambdaOptions {
        instances: 1,
        ..binaries.options.clone()
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The events the script's extension received: (arrival in ns, event).
fn events(binaries: &Binaries) -> Vec<(u128, Value)> {
    std::fs::read_to_string(binaries.options.dir.join("events"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (at, event) = line.split_once(' ')?;
            Some((at.parse().ok()?, serde_json::from_str(event).ok()?))
        })
        .collect()
}

/// A file the script writes with `date +%s%N`: its time in ns.
fn stamp(binaries: &Binaries, name: &str) -> Option<u128> {
    std::fs::read_to_string(binaries.options.dir.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn get_unknown_user(api: &Api) -> u16 {
    api.get_json(&format!("/users/{}", ulid::Ulid::new()))
        .await
        .0
}

/// "The `Init` phase completes after the runtime and each registered
/// extension indicate completion by sending a `Next` API request." The
/// extension waits 1 s before its first `next`: init lasts at least that,
/// and the register answer is the one the Developer Guide shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_lasts_until_the_registered_extension_asks_for_its_first_event() {
    let script = function_with_extension("sleep 1; date +%s%N > 'DIR/extension-ready'", "");
    let binaries = Binaries::with("get-user", &script);
    let api = Api::local_with(Backend::Lambda, None, one_instance(&binaries)).await;
    assert_eq!(get_unknown_user(&api).await, 404);
    let inits = api.functions().pools["get-user"].inits();
    assert_eq!(inits.len(), 1);
    assert!(
        inits[0] >= Duration::from_secs(1),
        "init ended after {:?}, before the extension's first next",
        inits[0]
    );
    let registered: Value = serde_json::from_slice(
        &std::fs::read(binaries.options.dir.join("registered")).expect("the register answer"),
    )
    .expect("JSON");
    assert_eq!(
        registered,
        json!({
            "functionName": "local-GetUserFunction",
            "functionVersion": "$LATEST",
            "handler": "bootstrap",
            "accountId": "000000000000",
        })
    );
    let events = events(&binaries);
    assert_eq!(events.len(), 1, "one INVOKE event: {events:?}");
    let (at, event) = &events[0];
    assert!(
        stamp(&binaries, "extension-ready").is_some_and(|ready| ready < *at),
        "the event came after the first next"
    );
    assert_eq!(event["eventType"], "INVOKE");
    assert_eq!(
        event["invokedFunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:local-GetUserFunction"
    );
    assert_eq!(event["tracing"]["type"], "X-Amzn-Trace-Id");
    assert!(
        event["tracing"]["value"]
            .as_str()
            .is_some_and(|v| v.starts_with("Root=1-")),
        "{event}"
    );
    assert!(event["requestId"].as_str().is_some_and(|id| !id.is_empty()));
}

/// The response reaches the client as soon as the runtime posts it, while
/// the extension still works (it sleeps 2 s after each event, then writes
/// `DIR/flushed-N`); "The `Invoke` phase ends after the runtime and all
/// extensions signal that they are done by sending a `Next` API request",
/// so the second request, on the same (only) instance, is answered only
/// after the first invocation's flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_precedes_the_extension_s_work_and_the_next_invocation_waits_for_it() {
    let script = function_with_extension(
        "n=0",
        "sleep 2; n=$((n + 1)); date +%s%N > \"DIR/flushed-$n\"",
    );
    let binaries = Binaries::with("get-user", &script);
    let api = Api::local_with(Backend::Lambda, None, one_instance(&binaries)).await;
    assert_eq!(get_unknown_user(&api).await, 404);
    let first_answered = now_ns();
    assert_eq!(
        stamp(&binaries, "flushed-1"),
        None,
        "the response came before the extension was done with the invocation"
    );
    assert_eq!(get_unknown_user(&api).await, 404);
    let second_answered = now_ns();
    let flushed = stamp(&binaries, "flushed-1").expect("the first flush is done");
    assert!(
        first_answered < flushed && flushed < second_answered,
        "first answer {first_answered}, flush {flushed}, second answer {second_answered}"
    );
    let events = events(&binaries);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_ne!(events[0].1["requestId"], events[1].1["requestId"]);
    assert!(
        events[1].0 > flushed,
        "the second INVOKE after the first flush"
    );
    assert_eq!(
        api.functions().pools["get-user"].inits().len(),
        1,
        "one warm instance served both"
    );
}

/// "The function's timeout setting limits the duration of the entire
/// `Invoke` phase [...] the function and all extensions need to complete
/// within" it: an extension that never asks again runs the invocation into
/// the template's 6 s timeout after its response went out, and the instance
/// is replaced, so the next request waits for the timeout and cold-starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_that_never_asks_again_times_the_invocation_out_after_its_response() {
    let script = function_with_extension("", "sleep 20; exit");
    let binaries = Binaries::with("get-user", &script);
    let api = Api::local_with(Backend::Lambda, None, one_instance(&binaries)).await;
    let started = Instant::now();
    assert_eq!(
        get_unknown_user(&api).await,
        404,
        "the response still goes out"
    );
    assert_eq!(get_unknown_user(&api).await, 404);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(6),
        "the second answer came after {took:?}, before the first invocation's 6 s timeout"
    );
    assert_eq!(
        api.functions().pools["get-user"].inits().len(),
        2,
        "the timed-out instance was replaced"
    );
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// Every function is pointed at the twin's receiver (the variables the
/// OpenTelemetry SDKs read), which takes what an OTLP/HTTP exporter sends
/// there (a Protobuf `ExportTraceServiceRequest`), answers 200 with an
/// `ExportTraceServiceResponse`, and appends each span to `--traces-file`
/// as one OTLP JSON line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_export_to_the_twin_s_otlp_receiver_which_writes_each_span_as_otlp_json() {
    let script = "#!/usr/bin/env bash\nenv > 'DIR/env'\nexec 'REAL'\n";
    let binaries = Binaries::with("get-user", script);
    let file = std::env::temp_dir().join(format!("spans-{}.jsonl", ulid::Ulid::new()));
    let options = LambdaOptions {
        traces_file: Some(file.clone()),
        ..binaries.options.clone()
    };
    let api = Api::local_with(Backend::Lambda, None, options).await;
    assert_eq!(get_unknown_user(&api).await, 404);
    let env = std::fs::read_to_string(binaries.options.dir.join("env")).expect("env");
    let endpoint = api.functions().traces_endpoint();
    assert!(
        env.lines()
            .any(|l| l == format!("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={endpoint}")),
        "{env}"
    );
    assert!(
        env.lines()
            .any(|l| l == "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
    );
    assert!(endpoint.starts_with("http://127.0.0.1:") && endpoint.ends_with("/v1/traces"));

    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attribute(
                    "service.name",
                    any_value::Value::StringValue("get-user".to_owned()),
                )],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![0x4b; 16],
                    span_id: vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
                    parent_span_id: vec![0x11; 8],
                    name: "GetItem".to_owned(),
                    kind: span::SpanKind::Client as i32,
                    start_time_unix_nano: 1_764_633_600_000_000_000,
                    end_time_unix_nano: 1_764_633_600_001_500_000,
                    attributes: vec![
                        attribute(
                            "db.system.name",
                            any_value::Value::StringValue("aws.dynamodb".to_owned()),
                        ),
                        attribute("aws.dynamodb.retries", any_value::Value::IntValue(0)),
                    ],
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let response = reqwest::Client::new()
        .post(&endpoint)
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .expect("POST /v1/traces");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let answer =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
            response.bytes().await.expect("body"),
        )
        .expect("an ExportTraceServiceResponse");
    assert_eq!(answer.partial_success, None);

    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .expect("the traces file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let line = lines
        .iter()
        .find(|l| l["spanId"] == "00f067aa0ba902b7")
        .expect("the span posted");
    assert_eq!(line["traceId"], "4b".repeat(16));
    assert_eq!(line["parentSpanId"], "11".repeat(8));
    assert_eq!(line["name"], "GetItem");
    assert_eq!(line["kind"], 3, "SPAN_KIND_CLIENT");
    assert_eq!(line["startTimeUnixNano"], "1764633600000000000");
    assert_eq!(line["endTimeUnixNano"], "1764633600001500000");
    assert_eq!(
        line["attributes"],
        json!([
            {"key": "db.system.name", "value": {"stringValue": "aws.dynamodb"}},
            {"key": "aws.dynamodb.retries", "value": {"intValue": "0"}},
        ])
    );
    assert_eq!(line["links"], json!([]));
    assert_eq!(
        line["resource"]["attributes"],
        json!([{"key": "service.name", "value": {"stringValue": "get-user"}}])
    );
    assert!(
        api.functions().spans.all().contains(line),
        "the span is also kept in memory"
    );
    let _ = std::fs::remove_file(file);
}
