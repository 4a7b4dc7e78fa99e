//! What every function's `main` does before handing over to the runtime,
//! and the runtime loop beside the extension that exports its traces.

use std::convert::Infallible;

use lambda_http::{Error, IntoResponse, LambdaEvent, Request, Service};
use traces::flush::Signalling;

use crate::DynamoStore;
use crate::config::{self, Config, ConfigError};
use crate::stream::{DynamoDbEventResponse, StreamEvent};

/// Installs logging, reads the configuration and the edge's origin secret
/// (failing fast, so a broken deployment fails at init rather than on a
/// request) and builds the
/// DynamoDB store once for all invocations, its connection already open.
pub async fn init() -> Result<DynamoStore, ConfigError> {
    telemetry::log::init();
    let config = Config::from_env()?;
    common::http::configure_origin_check();
    let client = config::dynamodb_client().await;
    config::open_connection(&client).await;
    Ok(DynamoStore::new(client, config.table_name))
}

/// Runs an HTTP function's `service` on the Lambda runtime, each
/// invocation's spans exported after its response ([`traces::flush`]).
pub async fn run_http<'a, S, R>(service: S) -> Result<(), Error>
where
    S: Service<Request, Response = R, Error = Infallible>,
    S::Future: Send + 'a,
    R: IntoResponse,
{
    traces::flush::run(|done| lambda_http::run(Signalling::new(service, done))).await
}

/// Runs a stream worker's `service` on the Lambda runtime, each
/// invocation's spans exported after its response ([`traces::flush`]).
pub async fn run_stream_worker<'a, S>(service: S) -> Result<(), Error>
where
    S: Service<LambdaEvent<StreamEvent>, Response = DynamoDbEventResponse, Error = Infallible>,
    S::Future: Send + 'a,
{
    traces::flush::run(|done| lambda_http::lambda_runtime::run(Signalling::new(service, done)))
        .await
}
