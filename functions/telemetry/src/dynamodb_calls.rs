//! What a request's DynamoDB calls cost: each call's latency (retries
//! included) and each throttled attempt, gathered by an SDK interceptor and
//! accumulated per request, so the request's one log line can carry them.
//!
//! The accumulator is task-local: calls made inside [`measure`] count
//! towards it, calls outside it (the connection opened during init) count
//! nowhere. Concurrent requests in one process (the local API) each see
//! only their own calls.
//!
//! Each call inside a sampled invocation (the OpenTelemetry context its
//! future runs in, see [`traces`]) is also a `CLIENT` span of its trace,
//! with each attempt the SDK made.

use std::cell::RefCell;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::Deserialize;
use serde::de::IgnoredAny;

use traces::TraceContext;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Error codes DynamoDB answers a throttled call with.
const THROTTLING_CODES: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];
/// The cancellation reason of a transaction item that was throttled.
const THROTTLED_ITEM: &str = "ThrottlingError";

tokio::task_local! {
    static CALLS: RefCell<DynamoDbCalls>;
}

/// The DynamoDB calls one request made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamoDbCalls {
    /// Each call's latency, from the SDK's first byte of work to its last,
    /// retries included.
    pub latencies: Vec<Duration>,
    /// Attempts DynamoDB refused with a throttling error (each retry counts).
    pub throttles: u64,
}

/// Runs `work`, counting the DynamoDB calls it makes through a client from
/// [`instrument`].
pub async fn measure<F: Future>(work: F) -> (F::Output, DynamoDbCalls) {
    let measured = async {
        let output = work.await;
        (output, CALLS.with(RefCell::take))
    };
    CALLS
        .scope(RefCell::new(DynamoDbCalls::default()), measured)
        .await
}

/// `client` with the interceptor that feeds [`measure`] and the calls'
/// spans. A client that already has it is returned as it is, so no call
/// counts twice; the rebuilt client shares the original's HTTP client, so a
/// connection it opened stays in use.
pub fn instrument(client: &Client) -> Client {
    let interceptor = CallInterceptor;
    if client
        .config()
        .interceptors()
        .any(|existing| existing.name() == interceptor.name())
    {
        return client.clone();
    }
    Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(interceptor)
            .build(),
    )
}

#[derive(Debug)]
struct CallStarted(Instant, SystemTime);

impl Storable for CallStarted {
    type Storer = StoreReplace<Self>;
}

/// A traced call's span so far: the invocation's context it belongs to,
/// the tables its request names (the body is gone once it is sent), and its
/// attempts.
#[derive(Debug)]
struct CallTrace {
    parent: TraceContext,
    table_names: Option<Vec<String>>,
    attempts: Vec<traces::Attempt>,
}

impl Storable for CallTrace {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug)]
struct CallInterceptor;

impl Intercept for CallInterceptor {
    fn name(&self) -> &'static str {
        "DynamoDbCalls"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(CallStarted(Instant::now(), SystemTime::now()));
        let parent = TraceContext::current();
        if traces::is_traced(&parent) {
            cfg.interceptor_state().store_put(CallTrace {
                parent,
                table_names: None,
                attempts: Vec::new(),
            });
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(trace) = cfg.get_mut_from_interceptor_state::<CallTrace>()
            && trace.table_names.is_none()
        {
            let body = context.request().body().bytes().unwrap_or_default();
            trace.table_names = Some(table_names(body));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if throttled(context) {
            let _ = CALLS.try_with(|calls| calls.borrow_mut().throttles += 1);
        }
        if let Some(trace) = cfg.get_mut_from_interceptor_state::<CallTrace>() {
            let response = context.response();
            trace.attempts.push(traces::Attempt {
                status: response.map(|response| response.status().as_u16()),
                error_code: response
                    .filter(|response| response.status().as_u16() >= 400)
                    .and_then(|response| response.body().bytes())
                    .and_then(error_code),
                ended: SystemTime::now(),
            });
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(CallStarted(started, started_at)) = cfg.load::<CallStarted>() else {
            return Ok(());
        };
        let latency = started.elapsed();
        let _ = CALLS.try_with(|calls| calls.borrow_mut().latencies.push(latency));
        if let Some(trace) = cfg.load::<CallTrace>() {
            let call = traces::DynamoDbCall {
                operation: cfg
                    .load::<Metadata>()
                    .map_or("unknown", Metadata::name)
                    .to_owned(),
                table_names: trace.table_names.clone().unwrap_or_default(),
                region: cfg
                    .load::<Region>()
                    .map(|region| region.as_ref().to_owned()),
                request_id: context
                    .response()
                    .and_then(|response| response.headers().get("x-amzn-requestid"))
                    .map(str::to_owned),
                attempts: trace.attempts.clone(),
                started: *started_at,
                ended: *started_at + latency,
            };
            traces::record_dynamodb_call(&trace.parent, &call);
        }
        Ok(())
    }
}

/// Whether the attempt's answer was a throttling error.
fn throttled(context: &FinalizerInterceptorContextRef<'_>) -> bool {
    context.response().is_some_and(|response| {
        response.status().as_u16() == 400 && response.body().bytes().is_some_and(is_throttling)
    })
}

/// The tables a request's body names: its `TableName`, its transaction
/// items' (`TransactItems[].Put.TableName`…) and its batches' (the keys of
/// `RequestItems`), each once, in order.
fn table_names(body: &[u8]) -> Vec<String> {
    let Ok(request) = serde_json::from_slice::<RequestBody>(body) else {
        return Vec::new();
    };
    let items = request.transact_items.into_iter().flat_map(|item| {
        [
            item.put,
            item.update,
            item.delete,
            item.condition_check,
            item.get,
        ]
        .into_iter()
        .flatten()
        .filter_map(|action| action.table_name)
    });
    let mut names: Vec<String> = Vec::new();
    for name in request
        .table_name
        .into_iter()
        .chain(items)
        .chain(request.request_items.into_keys())
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The fields of a request that name tables.
#[derive(Deserialize)]
struct RequestBody {
    #[serde(rename = "TableName")]
    table_name: Option<String>,
    #[serde(rename = "TransactItems", default)]
    transact_items: Vec<TransactItem>,
    #[serde(rename = "RequestItems", default)]
    request_items: std::collections::BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct TransactItem {
    #[serde(rename = "Put")]
    put: Option<TransactAction>,
    #[serde(rename = "Update")]
    update: Option<TransactAction>,
    #[serde(rename = "Delete")]
    delete: Option<TransactAction>,
    #[serde(rename = "ConditionCheck")]
    condition_check: Option<TransactAction>,
    #[serde(rename = "Get")]
    get: Option<TransactAction>,
}

#[derive(Deserialize)]
struct TransactAction {
    #[serde(rename = "TableName")]
    table_name: Option<String>,
}

/// The error code of a DynamoDB error body (`ConditionalCheckFailedException`).
fn error_code(body: &[u8]) -> Option<String> {
    let error = serde_json::from_slice::<ErrorBody>(body).ok()?;
    let code = error
        .error_type
        .rsplit_once('#')
        .map_or(error.error_type.as_str(), |(_, code)| code);
    (!code.is_empty()).then(|| code.to_owned())
}

/// A DynamoDB error body (JSON 1.0 protocol): its type, and for a cancelled
/// transaction each item's reason.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type", default)]
    error_type: String,
    #[serde(rename = "CancellationReasons", default)]
    cancellation_reasons: Vec<CancellationReason>,
}

#[derive(Deserialize)]
struct CancellationReason {
    #[serde(rename = "Code", default)]
    code: Option<String>,
}

/// Whether an error body says the call was throttled: a throttling error,
/// or a transaction cancelled because one of its items was throttled.
fn is_throttling(body: &[u8]) -> bool {
    let Ok(error) = serde_json::from_slice::<ErrorBody>(body) else {
        return false;
    };
    // `__type` is `com.amazonaws.dynamodb.v20120810#ThrottlingException`.
    let code = error
        .error_type
        .rsplit_once('#')
        .map_or(error.error_type.as_str(), |(_, code)| code);
    THROTTLING_CODES.contains(&code)
        || error
            .cancellation_reasons
            .iter()
            .any(|reason| reason.code.as_deref() == Some(THROTTLED_ITEM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_errors_are_told_from_other_errors() {
        let cases: [(&str, bool, &str); 6] = [
            (
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"…"}"#,
                true,
                "provisioned throughput exceeded",
            ),
            (
                r#"{"__type":"com.amazon.coral.availability#ThrottlingException"}"#,
                true,
                "on-demand throttling",
            ),
            (
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#RequestLimitExceeded"}"#,
                true,
                "account request limit",
            ),
            (
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","CancellationReasons":[{"Code":"None"},{"Code":"ThrottlingError"}]}"#,
                true,
                "a transaction with a throttled item",
            ),
            (
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#,
                false,
                "a failed condition",
            ),
            ("not json", false, "a body that is not JSON"),
        ];
        for (body, throttled, why) in cases {
            assert_eq!(is_throttling(body.as_bytes()), throttled, "{why}");
        }
    }

    #[test]
    fn the_tables_a_request_names_are_found_wherever_it_names_them() {
        let cases: [(&str, &[&str], &str); 5] = [
            (r#"{"TableName":"users","Key":{}}"#, &["users"], "one table"),
            (
                r#"{"TransactItems":[{"Put":{"TableName":"users"}},{"ConditionCheck":{"TableName":"users"}},{"Update":{"TableName":"emails"}}]}"#,
                &["users", "emails"],
                "a transaction, each table once",
            ),
            (
                r#"{"RequestItems":{"events":[],"users":[]}}"#,
                &["events", "users"],
                "a batch",
            ),
            ("{}", &[], "ListTables"),
            ("not json", &[], "no JSON"),
        ];
        for (body, tables, why) in cases {
            assert_eq!(table_names(body.as_bytes()), tables, "{why}");
        }
    }

    #[test]
    fn an_error_body_gives_its_code() {
        assert_eq!(
            error_code(
                br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#
            )
            .as_deref(),
            Some("ConditionalCheckFailedException")
        );
        assert_eq!(error_code(b"{}"), None);
        assert_eq!(error_code(b"<html>"), None);
    }

    #[tokio::test]
    async fn calls_count_only_inside_their_own_measurement() {
        let (value, calls) = measure(async {
            let _ = CALLS.try_with(|calls| calls.borrow_mut().throttles += 2);
            7
        })
        .await;
        assert_eq!(value, 7);
        assert_eq!(calls.throttles, 2);
        let (_, fresh) = measure(async {}).await;
        assert_eq!(fresh, DynamoDbCalls::default(), "nothing carried over");
        assert!(
            CALLS.try_with(|_| ()).is_err(),
            "outside a measurement, calls are not counted"
        );
    }
}
