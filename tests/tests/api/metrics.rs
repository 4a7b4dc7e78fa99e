//! The request log line is also the request's CloudWatch metrics: one line
//! per request, read back from the log the local API writes, that is both
//! our request log and a valid EMF document; and a DynamoDB call through the
//! store is measured on it.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use common::domain::{PageRequest, PageSize, UserId};
use reqwest::Method;
use serde_json::Value;
use storage::UserStore;
use telemetry::captured_log::CapturedLog;
use telemetry::dynamodb_calls;
use telemetry::metrics::{Metric, NAMESPACE_VAR, emf_violations};

use crate::support::{Api, Backend, dynamo_store};

/// Every log line this test binary writes, once its subscriber is
/// installed.
fn log() -> &'static CapturedLog {
    static LOG: OnceLock<CapturedLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = CapturedLog::default();
        telemetry::log::init_with_writer(log.clone());
        log
    })
}

/// The lines that mention `request_id`.
fn lines_of(request_id: &str) -> Vec<Value> {
    log()
        .text()
        .lines()
        .filter(|line| line.contains(request_id))
        .map(|line| serde_json::from_str(line).expect("each log line is one JSON object"))
        .collect()
}

#[tokio::test]
async fn a_request_writes_one_line_that_is_its_log_and_a_valid_emf_document() {
    log();
    let api = Api::local(Backend::Memory).await;
    let response = api
        .request(Method::GET, "/users/01JDQ7Z3K5N6P8R9S0T1V2W3X4")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 404);
    let request_id = response
        .headers()
        .get("apigw-requestid")
        .and_then(|v| v.to_str().ok())
        .expect("request id header")
        .to_owned();
    let lines = lines_of(&request_id);
    assert_eq!(lines.len(), 1, "one line per request: {lines:?}");
    let line = &lines[0];
    assert_eq!(emf_violations(line), Vec::<String>::new(), "{line}");
    // Our request log's own fields, beside the metrics.
    assert_eq!(line["message"], "request");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["request_id"], request_id.as_str());
    assert_eq!(line["route"], "GET /users/{id}");
    assert_eq!(line["status"], 404);
    assert!(line["latency_us"].is_u64(), "{line}");
    // The metrics, per function and route.
    assert_eq!(line["Route"], "GET /users/{id}");
    assert_eq!(line["Requests"], 1);
    assert_eq!(line["4xx"], 1);
    assert_eq!(line["5xx"], 0);
    assert!(line["Latency"].is_number(), "{line}");
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["FunctionName", "Route"]]),
        "dimensions never carry an id"
    );
}

#[tokio::test]
async fn dynamodb_calls_through_the_store_are_measured() {
    let store = dynamo_store().await;
    let id = UserId::parse("01JDQ7Z3K5N6P8R9S0T1V2W3X4").expect("id");
    let (found, calls) = dynamodb_calls::measure(async {
        let found = store.get(id).await.expect("GetItem");
        let page = store
            .list(PageRequest::first(PageSize::default()))
            .await
            .expect("Query");
        (found, page.items.len())
    })
    .await;
    assert!(found.0.is_none() && found.1 == 0, "an empty table");
    assert_eq!(calls.latencies.len(), 2, "one latency per call: {calls:?}");
    assert!(calls.latencies.iter().all(|l| *l > Duration::ZERO));
    assert_eq!(calls.throttles, 0);
}

#[test]
fn the_template_names_only_metrics_the_functions_write() {
    let text = std::fs::read_to_string(local_api::default_template_path()).expect("template.yaml");
    let lines: Vec<&str> = text.lines().collect();
    let mut used = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        // Alarms: the metric name follows the namespace.
        if line.trim() == "Namespace: !Ref MetricsNamespace"
            && let Some(name) = lines
                .get(i + 1)
                .and_then(|next| next.trim().strip_prefix("MetricName: "))
        {
            used.insert(name.to_owned());
        }
        // The dashboard: ["${MetricsNamespace}", "Latency", ...].
        for rest in line.split(r#"["${MetricsNamespace}", ""#).skip(1) {
            if let Some(name) = rest.split('"').next() {
                used.insert(name.to_owned());
            }
        }
    }
    let written: BTreeSet<String> = Metric::ALL.iter().map(|m| m.name().to_owned()).collect();
    assert!(
        used.len() >= 5,
        "found the template's custom metrics: {used:?}"
    );
    let unknown: Vec<&String> = used.difference(&written).collect();
    assert!(
        unknown.is_empty(),
        "metrics no function writes: {unknown:?}"
    );
    assert!(
        text.contains(&format!("{NAMESPACE_VAR}: !Ref MetricsNamespace")),
        "the functions read their namespace from {NAMESPACE_VAR}, set from MetricsNamespace"
    );
}
