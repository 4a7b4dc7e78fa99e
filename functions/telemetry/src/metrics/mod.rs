//! CloudWatch metrics with no call of their own: the log line each request
//! (and each stream batch) already writes is also a CloudWatch Embedded
//! Metric Format document, from which CloudWatch Logs extracts the metrics
//! as it ingests the line.
//!
//! The namespace comes from `METRICS_NAMESPACE` (template.yaml sets it from
//! the `MetricsNamespace` parameter). Dimensions stay low-cardinality: the
//! function's name and, for API functions, the route key; never an id or
//! an address.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::dynamodb_calls::DynamoDbCalls;

#[cfg(any(test, feature = "testing"))]
mod specification;
#[cfg(any(test, feature = "testing"))]
pub use specification::emf_violations;

/// Environment variable naming the CloudWatch namespace.
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";
/// The target of the log lines that carry metrics (each request's, each
/// stream batch's): kept at every log level (see
/// [`crate::log::filter`]), so `LogLevel` WARN quiets the logs
/// without silencing the metrics.
pub const LOG_TARGET: &str = "users_api::metrics";
/// The namespace when [`NAMESPACE_VAR`] is unset (local runs).
pub const DEFAULT_NAMESPACE: &str = "UsersApi";
/// The function dimension's value outside Lambda.
pub const LOCAL_FUNCTION: &str = "local";
/// Most values one metric may carry in one document (an EMF limit).
pub const MAX_VALUES: usize = 100;

/// Dimension: the function's name, as Lambda names it
/// (`AWS_LAMBDA_FUNCTION_NAME`, the `FunctionName` of `AWS/Lambda`).
pub const FUNCTION_NAME: &str = "FunctionName";
/// Dimension: the route key, `GET /users/{id}`.
pub const ROUTE: &str = "Route";

/// Every metric the functions write: its name and unit. template.yaml's
/// alarms and dashboard name these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// API: 1 per request.
    Requests,
    /// API: 1 for a 4xx answer, else 0 (its average is the 4xx rate).
    ClientErrors,
    /// API: 1 for a 5xx answer, else 0 (its average is the 5xx rate).
    ServerErrors,
    /// API: the function's time for the request, in milliseconds.
    Latency,
    /// 1 on the first invocation of a process, else 0.
    ColdStart,
    /// Each DynamoDB call's latency (retries included), in milliseconds.
    DynamoDbLatency,
    /// DynamoDB attempts refused with a throttling error.
    DynamoDbThrottles,
    /// Worker: stream records handled in a batch.
    RecordsProcessed,
    /// Worker: stream records reported as failed (retried, then sent to the
    /// dead-letter queue).
    RecordsFailed,
    /// Worker: from the oldest record's approximate creation time in the
    /// stream to its processing, in milliseconds.
    EventAge,
}

impl Metric {
    /// Every metric, for checks that keep the template in step.
    pub const ALL: [Self; 10] = [
        Self::Requests,
        Self::ClientErrors,
        Self::ServerErrors,
        Self::Latency,
        Self::ColdStart,
        Self::DynamoDbLatency,
        Self::DynamoDbThrottles,
        Self::RecordsProcessed,
        Self::RecordsFailed,
        Self::EventAge,
    ];

    /// The metric's name in CloudWatch (API Gateway's own names for the
    /// error counts).
    pub fn name(self) -> &'static str {
        match self {
            Self::Requests => "Requests",
            Self::ClientErrors => "4xx",
            Self::ServerErrors => "5xx",
            Self::Latency => "Latency",
            Self::ColdStart => "ColdStart",
            Self::DynamoDbLatency => "DynamoDbLatency",
            Self::DynamoDbThrottles => "DynamoDbThrottles",
            Self::RecordsProcessed => "RecordsProcessed",
            Self::RecordsFailed => "RecordsFailed",
            Self::EventAge => "EventAge",
        }
    }

    /// The metric's CloudWatch unit.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Latency | Self::DynamoDbLatency | Self::EventAge => "Milliseconds",
            _ => "Count",
        }
    }
}

/// One EMF document: its dimensions and metric values.
#[derive(Debug, Clone, Default)]
pub struct Emf {
    dimensions: Vec<(&'static str, String)>,
    values: Vec<(Metric, Sample)>,
}

/// A metric's value in a document: one number, or one per event.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Sample {
    Count(u64),
    Milliseconds(f64),
    Each(Vec<f64>),
}

impl Emf {
    /// A document with the function dimension.
    fn for_function() -> Self {
        Self::default().dimension(FUNCTION_NAME, function_name())
    }

    fn dimension(mut self, name: &'static str, value: &str) -> Self {
        // CloudWatch refuses an empty dimension value.
        let value = if value.is_empty() { "unknown" } else { value };
        self.dimensions.push((name, value.to_owned()));
        self
    }

    fn count(&mut self, metric: Metric, value: u64) {
        self.values.push((metric, Sample::Count(value)));
    }

    fn flag(&mut self, metric: Metric, value: bool) {
        self.count(metric, u64::from(value));
    }

    fn milliseconds(&mut self, metric: Metric, value: Duration) {
        self.values
            .push((metric, Sample::Milliseconds(milliseconds(value))));
    }

    fn cold_start(&mut self) {
        self.flag(Metric::ColdStart, first_invocation());
    }

    /// Each call's latency as one value of an array (EMF takes up to
    /// [`MAX_VALUES`]); nothing when there was no call.
    fn dynamodb(&mut self, calls: &DynamoDbCalls) {
        if !calls.latencies.is_empty() {
            let values = calls
                .latencies
                .iter()
                .take(MAX_VALUES)
                .copied()
                .map(milliseconds)
                .collect();
            self.values
                .push((Metric::DynamoDbLatency, Sample::Each(values)));
        }
        self.count(Metric::DynamoDbThrottles, calls.throttles);
    }

    /// The document as it serializes at `at`.
    fn document(&self, at: SystemTime) -> Document<'_> {
        let timestamp = at.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
        Document {
            aws: Aws {
                timestamp,
                cloud_watch_metrics: [Directive {
                    namespace: namespace(),
                    dimensions: [self.dimensions.iter().map(|(name, _)| *name).collect()],
                    metrics: self
                        .values
                        .iter()
                        .map(|(metric, _)| Definition {
                            name: metric.name(),
                            unit: metric.unit(),
                        })
                        .collect(),
                }],
            },
            members: self,
        }
    }

    /// The document's members, to sit at the top level of a log line:
    /// `_aws` (timestamp, namespace, dimension names, metric names and
    /// units), each dimension's value and each metric's value.
    pub fn members(&self, at: SystemTime) -> Map<String, Value> {
        match serde_json::to_value(self.document(at)) {
            Ok(Value::Object(members)) => members,
            _ => Map::new(),
        }
    }

    /// The document at the current time, as a JSON object's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.document(SystemTime::now())).unwrap_or_default()
    }
}

/// An EMF document as it is written: `_aws`, then the dimensions' and the
/// metrics' values as members beside it.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "_aws")]
    aws: Aws<'a>,
    #[serde(flatten)]
    members: &'a Emf,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Aws<'a> {
    timestamp: u64,
    cloud_watch_metrics: [Directive<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'a str,
    dimensions: [Vec<&'static str>; 1],
    metrics: Vec<Definition>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Definition {
    name: &'static str,
    unit: &'static str,
}

impl Serialize for Emf {
    /// The dimensions' and metrics' values, as members of one object.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.dimensions.len() + self.values.len()))?;
        for (name, value) in &self.dimensions {
            map.serialize_entry(name, value)?;
        }
        for (metric, value) in &self.values {
            map.serialize_entry(metric.name(), value)?;
        }
        map.end()
    }
}

/// The metrics of one API request: per function and route, the request, its
/// status class, its latency, whether it was the process's first, and its
/// DynamoDB calls.
pub fn request(route: &str, status: StatusCode, latency: Duration, calls: &DynamoDbCalls) -> Emf {
    let mut emf = Emf::for_function().dimension(ROUTE, route);
    emf.count(Metric::Requests, 1);
    emf.flag(Metric::ClientErrors, status.is_client_error());
    emf.flag(Metric::ServerErrors, status.is_server_error());
    emf.milliseconds(Metric::Latency, latency);
    emf.cold_start();
    emf.dynamodb(calls);
    emf
}

/// The metrics of one stream batch: records handled and failed, the age of
/// its oldest record (none for an empty batch), whether it was the
/// process's first, and its DynamoDB calls.
pub fn batch(
    processed: usize,
    failed: usize,
    oldest: Option<Duration>,
    calls: &DynamoDbCalls,
) -> Emf {
    let mut emf = Emf::for_function();
    emf.count(
        Metric::RecordsProcessed,
        u64::try_from(processed).unwrap_or(u64::MAX),
    );
    emf.count(
        Metric::RecordsFailed,
        u64::try_from(failed).unwrap_or(u64::MAX),
    );
    if let Some(age) = oldest {
        emf.milliseconds(Metric::EventAge, age);
    }
    emf.cold_start();
    emf.dynamodb(calls);
    emf
}

/// Milliseconds with microsecond precision.
fn milliseconds(duration: Duration) -> f64 {
    // Micros fit an f64 exactly for any latency we will see.
    #[allow(clippy::cast_precision_loss, reason = "below 2^53 microseconds")]
    let micros = duration.as_micros() as f64;
    micros / 1000.0
}

static COLD: AtomicBool = AtomicBool::new(true);

/// True once per process: on its first invocation.
fn first_invocation() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

fn namespace() -> &'static str {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    NAMESPACE.get_or_init(|| {
        std::env::var(NAMESPACE_VAR)
            .ok()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
    })
}

fn function_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| LOCAL_FUNCTION.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(emf: &Emf) -> Value {
        Value::Object(emf.members(UNIX_EPOCH + Duration::from_millis(1_764_400_000_123)))
    }

    fn calls(latencies_ms: &[u64], throttles: u64) -> DynamoDbCalls {
        DynamoDbCalls {
            latencies: latencies_ms
                .iter()
                .copied()
                .map(Duration::from_millis)
                .collect(),
            throttles,
        }
    }

    #[test]
    fn a_request_document_follows_the_emf_specification() {
        let emf = request(
            "GET /users/{id}",
            StatusCode::NOT_FOUND,
            Duration::from_micros(2_345),
            &calls(&[3, 4], 1),
        );
        let document = document(&emf);
        assert_eq!(emf_violations(&document), Vec::<String>::new());
        let aws = &document["_aws"];
        assert_eq!(aws["Timestamp"], 1_764_400_000_123_u64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], DEFAULT_NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["FunctionName", "Route"]]));
        assert_eq!(document["Route"], "GET /users/{id}");
        assert_eq!(document["FunctionName"], LOCAL_FUNCTION);
        assert_eq!(document["Requests"], 1);
        assert_eq!(document["4xx"], 1);
        assert_eq!(document["5xx"], 0);
        assert_eq!(document["Latency"], 2.345);
        assert_eq!(document["DynamoDbLatency"], json!([3.0, 4.0]));
        assert_eq!(document["DynamoDbThrottles"], 1);
        let units: Vec<(&str, &str)> = directive["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().expect("name"),
                    m["Unit"].as_str().expect("unit"),
                )
            })
            .collect();
        assert!(units.contains(&("Latency", "Milliseconds")), "{units:?}");
        assert!(units.contains(&("5xx", "Count")), "{units:?}");
        assert!(units.contains(&("ColdStart", "Count")), "{units:?}");
    }

    #[test]
    fn a_request_without_dynamodb_calls_declares_no_dynamodb_latency() {
        let document = document(&request(
            "GET /users",
            StatusCode::OK,
            Duration::ZERO,
            &calls(&[], 0),
        ));
        assert_eq!(emf_violations(&document), Vec::<String>::new());
        assert!(document.get("DynamoDbLatency").is_none());
        let declared = document["_aws"]["CloudWatchMetrics"][0]["Metrics"].to_string();
        assert!(!declared.contains("DynamoDbLatency"), "{declared}");
    }

    #[test]
    fn a_batch_document_follows_the_emf_specification() {
        let document = document(&batch(
            9,
            1,
            Some(Duration::from_millis(1_500)),
            &calls(&[5; 150], 0),
        ));
        assert_eq!(emf_violations(&document), Vec::<String>::new());
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName"]])
        );
        assert_eq!(document["RecordsProcessed"], 9);
        assert_eq!(document["RecordsFailed"], 1);
        assert_eq!(document["EventAge"], 1500.0);
        assert_eq!(
            document["DynamoDbLatency"].as_array().map(Vec::len),
            Some(MAX_VALUES),
            "at most 100 values per metric"
        );
    }

    #[test]
    fn an_empty_route_still_makes_a_valid_dimension() {
        let document = document(&request("", StatusCode::OK, Duration::ZERO, &calls(&[], 0)));
        assert_eq!(emf_violations(&document), Vec::<String>::new());
        assert_eq!(document["Route"], "unknown");
    }

    #[test]
    fn the_checker_catches_what_the_specification_forbids() {
        let broken = json!({
            "_aws": {
                "Timestamp": "yesterday",
                "CloudWatchMetrics": [{
                    "Namespace": " ",
                    "Dimensions": [["UserId"]],
                    "Metrics": [{"Name": "Latency", "Unit": "Hours"}, {"Name": "Missing"}],
                }],
            },
            "Latency": "fast",
        });
        let violations = emf_violations(&broken);
        for expected in [
            "Timestamp",
            "Namespace",
            "dimension",
            "Unit",
            "Latency",
            "Missing",
        ] {
            assert!(
                violations.iter().any(|v| v.contains(expected)),
                "{expected} not caught: {violations:?}"
            );
        }
    }

    #[test]
    fn only_the_first_invocation_is_a_cold_start() {
        // Other tests may have run first in this process; after one call the
        // flag is spent either way.
        let _ = first_invocation();
        assert!(!first_invocation());
        let document = document(&request(
            "GET /users",
            StatusCode::OK,
            Duration::ZERO,
            &calls(&[], 0),
        ));
        assert_eq!(document["ColdStart"], 0);
    }

    #[test]
    fn every_metric_has_a_distinct_name() {
        let names: std::collections::BTreeSet<&str> =
            Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
    }
}
