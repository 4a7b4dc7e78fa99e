//! Traces: every DynamoDB call made inside a sampled invocation's context is
//! a `CLIENT` span under the invocation's `SERVER` span, with the
//! OpenTelemetry attributes of an AWS SDK call and its error; outside an
//! invocation, or in an unsampled one, nothing is recorded (the calls are
//! still measured for the metrics). Against DynamoDB Local, through the
//! same interceptor the functions' store uses.

use aws_sdk_dynamodb::types::AttributeValue;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use telemetry::dynamodb_calls::{instrument, measure};
use traces::propagation::Propagators;
use traces::{FutureExt, Invocation, Traces, sampling};

use crate::support::{dynamodb_endpoint, fresh_table};

const SAMPLED: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const UNSAMPLED: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";

fn traces() -> Traces {
    Traces::new(
        sampling::sampler(None, None),
        Propagators::default(),
        Resource::builder_empty().build(),
    )
}

fn invocation(xray: &str) -> Invocation<'_> {
    Invocation {
        request_id: "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:get-user",
        xray_trace_id: Some(xray),
    }
}

fn attribute<'s>(span: &'s SpanData, key: &str) -> Option<&'s Value> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| &attribute.value)
}

#[tokio::test]
async fn each_dynamodb_call_is_a_client_span_of_the_invocation() {
    let client = instrument(&local_api::dynamodb::table::local_client(&dynamodb_endpoint()).await);
    let table = fresh_table();
    let traces = traces();
    let context = traces.start_invocation(
        "GET /users/{id}".to_owned(),
        SpanKind::Server,
        &invocation(SAMPLED),
        None,
        Vec::new(),
    );
    let (results, calls) = measure(
        async {
            let listed = client.list_tables().send().await.is_ok();
            let missing = client
                .get_item()
                .table_name(&table)
                .key("pk", AttributeValue::S("x".into()))
                .send()
                .await
                .is_err();
            (listed, missing)
        }
        .with_context(context.clone()),
    )
    .await;
    traces::end_invocation(&context, Some(500), false);
    assert_eq!(results, (true, true));
    assert_eq!(calls.latencies.len(), 2);
    let spans = traces.finished().take();
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_ref()).collect();
    assert_eq!(
        names,
        ["DynamoDB.ListTables", "DynamoDB.GetItem", "GET /users/{id}"]
    );
    let server = &spans[2];
    for span in &spans[..2] {
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(span.parent_span_id, server.span_context.span_id());
        assert_eq!(
            span.span_context.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(
            attribute(span, "db.system.name"),
            Some(&Value::from("aws.dynamodb"))
        );
        assert_eq!(attribute(span, "rpc.system"), Some(&Value::from("aws-api")));
        assert_eq!(
            attribute(span, "rpc.service"),
            Some(&Value::from("DynamoDB"))
        );
        assert_eq!(
            attribute(span, "cloud.region"),
            Some(&Value::from("us-east-1"))
        );
        assert!(span.end_time >= span.start_time);
    }
    let (listed, missing) = (&spans[0], &spans[1]);
    assert_eq!(
        attribute(listed, "rpc.method"),
        Some(&Value::from("ListTables"))
    );
    assert_eq!(attribute(listed, "aws.dynamodb.table_names"), None);
    assert_eq!(
        attribute(listed, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(listed.status, Status::Unset);
    assert_eq!(
        attribute(missing, "rpc.method"),
        Some(&Value::from("GetItem"))
    );
    assert_eq!(
        attribute(missing, "aws.dynamodb.table_names"),
        Some(&Value::Array(vec![StringValue::from(table.clone())].into()))
    );
    assert_eq!(
        attribute(missing, "http.response.status_code"),
        Some(&Value::I64(400))
    );
    assert_eq!(
        attribute(missing, "error.type"),
        Some(&Value::from("ResourceNotFoundException")),
        "a missing table is DynamoDB's error, recorded on the span"
    );
    assert_eq!(missing.status, Status::error("ResourceNotFoundException"));
    assert_eq!(server.status, Status::error(""), "a 5xx answer");
}

#[tokio::test]
async fn nothing_is_recorded_outside_an_invocation_or_in_an_unsampled_one() {
    let client = instrument(&local_api::dynamodb::table::local_client(&dynamodb_endpoint()).await);
    let traces = traces();
    let unsampled = traces.start_invocation(
        "GET /users".to_owned(),
        SpanKind::Server,
        &invocation(UNSAMPLED),
        None,
        Vec::new(),
    );
    let (_, calls) = measure(
        async {
            client.list_tables().send().await.expect("ListTables");
        }
        .with_context(unsampled.clone()),
    )
    .await;
    assert_eq!(calls.latencies.len(), 1, "still measured for the metrics");
    traces::end_invocation(&unsampled, Some(200), false);
    client
        .list_tables()
        .send()
        .await
        .expect("outside any invocation");
    assert_eq!(traces.finished().take().len(), 0);
}
