//! Configuration read once from the environment at start-up.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// The longest init waits for [`open_connection`]: a cold start that meets
/// a stalled DynamoDB adds at most this to the request's own budget.
const OPEN_CONNECTION_LIMIT: Duration = Duration::from_secs(1);

/// The time budget of one DynamoDB call (see README, "Time budget"): a
/// connection must open within [`CONNECT_TIMEOUT`], one attempt answer
/// within [`ATTEMPT_TIMEOUT`], and the call, retries and their pauses
/// included, end within [`OPERATION_TIMEOUT`]. A request as a whole is held
/// to [`crate::http::REQUEST_BUDGET`], below the function's 6 s timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for one attempt of a DynamoDB call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one DynamoDB call, its retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
/// Attempts per DynamoDB call: the first and two retries.
pub const MAX_ATTEMPTS: u32 = 3;
/// First pause before the SDK retries a throttled or failed attempt; it
/// grows exponentially with jitter, up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two attempts of a DynamoDB call.
pub const MAX_BACKOFF: Duration = Duration::from_millis(1000);

/// The timeouts every DynamoDB client of the API uses.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The retry policy every DynamoDB client of the API uses: the SDK's
/// standard mode (throttling, 5xx, timeouts and IO errors are retried;
/// `TransactWriteItems` keeps its client request token across retries, so
/// a transaction whose answer was lost is not applied twice).
pub fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Settings every function needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
}

/// A required setting is missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} must be set")]
pub struct ConfigError(&'static str);

impl Config {
    /// Reads the configuration; fails fast when something is missing.
    pub fn from_env() -> Result<Self, ConfigError> {
        let table_name = std::env::var("TABLE_NAME")
            .ok()
            .filter(|name| !name.trim().is_empty())
            .ok_or(ConfigError("TABLE_NAME"))?;
        Ok(Self { table_name })
    }
}

/// A DynamoDB client from the standard AWS configuration chain (Lambda's
/// role credentials and region; `AWS_ENDPOINT_URL_DYNAMODB` to point it
/// elsewhere), with the API's [`timeouts`] and [`retries`].
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// Opens the client's connection to DynamoDB during init, so the first
/// request does not pay for it: the root certificates, the TLS handshake and
/// the first signing all happen on the client's first call, and Lambda runs
/// init at full CPU. The call is `DescribeEndpoints`, and its answer, even a
/// refusal, is ignored; if it fails or takes too long, the first request
/// opens the connection as it would have anyway.
pub async fn open_connection(client: &aws_sdk_dynamodb::Client) {
    let _ = tokio::time::timeout(OPEN_CONNECTION_LIMIT, client.describe_endpoints().send()).await;
}
