//! What every function's `main` does before handing over to the runtime.

use crate::config::{self, Config, ConfigError};
use crate::store::DynamoStore;
use crate::telemetry;

/// Installs logging, reads the configuration and the edge's origin secret
/// (failing fast, so a broken deployment fails at init rather than on a
/// request) and builds the
/// DynamoDB store once for all invocations, its connection already open.
pub async fn init() -> Result<DynamoStore, ConfigError> {
    telemetry::init();
    let config = Config::from_env()?;
    crate::http::configure_origin_check();
    let client = config::dynamodb_client().await;
    config::open_connection(&client).await;
    Ok(DynamoStore::new(client, config.table_name))
}
