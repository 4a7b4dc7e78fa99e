//! Configuration read once from the environment at start-up.

use std::time::Duration;

use aws_config::BehaviorVersion;

/// The longest init waits for [`open_connection`].
const OPEN_CONNECTION_LIMIT: Duration = Duration::from_secs(2);

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
/// elsewhere).
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)
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
