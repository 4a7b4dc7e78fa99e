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
/// request), builds the DynamoDB store once for all invocations, its
/// connection already open, and meanwhile readies the traces
/// ([`traces::flush::start`]): the two wait on their round trips together.
pub async fn init() -> Result<(DynamoStore, Runtime), ConfigError> {
    telemetry::log::init();
    let config = Config::from_env()?;
    common::http::configure_origin_check();
    let (client, traces) = tokio::join!(
        biased;
        async {
            let client = config::dynamodb_client().await;
            config::open_connection(&client).await;
            client
        },
        traces::flush::start(),
    );
    Ok((
        DynamoStore::new(client, config.table_name),
        Runtime { traces },
    ))
}

/// The Lambda runtime, once [`init`] is done.
#[derive(Debug)]
pub struct Runtime {
    traces: traces::flush::Started,
}

impl Runtime {
    /// Runs an HTTP function's `service`, each invocation's spans exported
    /// after its response ([`traces::flush`]).
    pub async fn run_http<'a, S, R>(self, service: S) -> Result<(), Error>
    where
        S: Service<Request, Response = R, Error = Infallible>,
        S::Future: Send + 'a,
        R: IntoResponse,
    {
        self.traces
            .run(|done| lambda_http::run(Signalling::new(service, done)))
            .await
    }

    /// Runs a stream worker's `service`, each invocation's spans exported
    /// after its response ([`traces::flush`]).
    pub async fn run_stream_worker<'a, S>(self, service: S) -> Result<(), Error>
    where
        S: Service<LambdaEvent<StreamEvent>, Response = DynamoDbEventResponse, Error = Infallible>,
        S::Future: Send + 'a,
    {
        self.traces
            .run(|done| lambda_http::lambda_runtime::run(Signalling::new(service, done)))
            .await
    }
}
