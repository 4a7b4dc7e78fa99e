//! What a request's DynamoDB calls cost: each call's latency (retries
//! included) and each throttled attempt, gathered by an SDK interceptor and
//! accumulated per request, so the request's one log line can carry them.
//!
//! The accumulator is task-local: calls made inside [`measure`] count
//! towards it, calls outside it (the connection opened during init) count
//! nowhere. Concurrent requests in one process (the local API) each see
//! only their own calls.
//!
//! Where an X-Ray daemon is configured, each call inside a sampled
//! invocation is also sent as a subsegment of its trace ([`crate::xray`]).

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

use crate::xray::{self, Daemon, TraceHeader};

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
    static TRACE: Option<TraceHeader>;
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
/// [`instrument`], within the invocation's trace (the header the Lambda
/// runtime sets in `_X_AMZN_TRACE_ID`).
pub async fn measure<F: Future>(work: F) -> (F::Output, DynamoDbCalls) {
    measure_traced(TraceHeader::from_env(), work).await
}

/// [`measure`] within the trace `trace`.
pub async fn measure_traced<F: Future>(
    trace: Option<TraceHeader>,
    work: F,
) -> (F::Output, DynamoDbCalls) {
    let measured = async {
        let output = work.await;
        (output, CALLS.with(RefCell::take))
    };
    TRACE
        .scope(
            trace,
            CALLS.scope(RefCell::new(DynamoDbCalls::default()), measured),
        )
        .await
}

/// `client` with the interceptor that feeds [`measure`], sending X-Ray
/// subsegments to the daemon Lambda names, if any. The rebuilt client
/// shares the original's HTTP client, so a connection it opened stays in
/// use.
pub fn instrument(client: &Client) -> Client {
    instrument_with(client, Daemon::from_env())
}

/// [`instrument`], sending subsegments to `daemon`. A client that already
/// has the interceptor is returned as it is, so no call counts twice.
pub fn instrument_with(client: &Client, daemon: Daemon) -> Client {
    let interceptor = CallInterceptor { daemon };
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

/// The table a call names, kept for its subsegment (the request's body is
/// gone once it is sent).
#[derive(Debug)]
struct CallTable(String);

impl Storable for CallTable {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug)]
struct CallInterceptor {
    daemon: Daemon,
}

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
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.daemon.is_enabled() {
            let table = context
                .request()
                .body()
                .bytes()
                .and_then(|body| serde_json::from_slice::<RequestBody>(body).ok())
                .and_then(|body| body.table_name);
            if let Some(table) = table {
                cfg.interceptor_state().store_put(CallTable(table));
            }
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if throttled(context) {
            let _ = CALLS.try_with(|calls| calls.borrow_mut().throttles += 1);
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
        if self.daemon.is_enabled() {
            let _ = TRACE.try_with(|trace| {
                if let Some(trace) = trace {
                    self.trace(trace, context, cfg, *started_at, latency);
                }
            });
        }
        Ok(())
    }
}

impl CallInterceptor {
    /// Sends the call's subsegment to the daemon.
    fn trace(
        &self,
        trace: &TraceHeader,
        context: &FinalizerInterceptorContextRef<'_>,
        cfg: &ConfigBag,
        started: SystemTime,
        latency: Duration,
    ) {
        let response = context.response();
        let call = xray::Call {
            operation: cfg.load::<Metadata>().map_or("unknown", Metadata::name),
            region: cfg.load::<Region>().map(Region::as_ref),
            table: cfg
                .load::<CallTable>()
                .map(|CallTable(table)| table.as_str()),
            request_id: response.and_then(|response| response.headers().get("x-amzn-requestid")),
            status: response.map(|response| response.status().as_u16()),
            throttled: throttled(context),
            started,
            ended: started + latency,
        };
        if let Some(document) = xray::subsegment(trace, &call) {
            self.daemon.send(&document);
        }
    }
}

/// Whether the attempt's answer was a throttling error.
fn throttled(context: &FinalizerInterceptorContextRef<'_>) -> bool {
    context.response().is_some_and(|response| {
        response.status().as_u16() == 400 && response.body().bytes().is_some_and(is_throttling)
    })
}

/// The one field of a request a subsegment reports.
#[derive(Deserialize)]
struct RequestBody {
    #[serde(rename = "TableName")]
    table_name: Option<String>,
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
