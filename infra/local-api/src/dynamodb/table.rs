//! Creates the table in a local DynamoDB from the template's definition, as
//! CloudFormation creates the stack's `AWS::DynamoDB::Table` from it, and
//! configures the clients that talk to that local DynamoDB (its endpoint,
//! and the one access key and region its tables live under).

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};

use crate::stack::template::{KeyElement, TableDefinition};

/// DynamoDB Local keeps separate tables per access key and region, so every
/// client of the local API uses these.
pub const LOCAL_ACCESS_KEY: &str = "local";
const LOCAL_REGION: &str = "us-east-1";

/// The AWS configuration for a DynamoDB at `endpoint` (DynamoDB Local),
/// with the fixed credentials and region the local API and its tests share,
/// and the deployed functions' timeouts and retry policy.
pub async fn local_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .timeout_config(storage::config::timeouts())
        .retry_config(storage::config::retries())
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(Credentials::new(
            LOCAL_ACCESS_KEY,
            LOCAL_ACCESS_KEY,
            None,
            None,
            "local-api",
        ))
        .load()
        .await
}

/// A DynamoDB client for DynamoDB Local at `endpoint`.
pub async fn local_client(endpoint: &str) -> Client {
    Client::new(&local_config(endpoint).await)
}

/// The ARN of the table's stream, if it has one.
pub async fn stream_arn(client: &Client, name: &str) -> Result<Option<String>, TableError> {
    let output = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| TableError::DynamoDb(describe(&e)))?;
    Ok(output.table.and_then(|t| t.latest_stream_arn))
}

/// Why the table could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The definition has a value DynamoDB does not know.
    #[error("table definition: {0}")]
    Definition(String),
    /// A request builder was missing a field.
    #[error("table definition: {0}")]
    Build(#[from] BuildError),
    /// DynamoDB refused or could not be reached.
    #[error("DynamoDB: {0}")]
    DynamoDb(String),
}

/// Creates `name` from `definition` unless a table of that name exists.
/// Returns whether it created the table.
pub async fn create_if_missing(
    client: &Client,
    name: &str,
    definition: &TableDefinition,
) -> Result<bool, TableError> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => return Ok(false),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(error) => return Err(TableError::DynamoDb(describe(&error))),
    }
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&definition.key_schema)?));
    for attribute in &definition.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&attribute.attribute_name)
                .attribute_type(ScalarAttributeType::from(attribute.attribute_type.as_str()))
                .build()?,
        );
    }
    for index in &definition.global_secondary_indexes {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(
                index.projection.projection_type.as_str(),
            ))
            .set_non_key_attributes(
                (!index.projection.non_key_attributes.is_empty())
                    .then(|| index.projection.non_key_attributes.clone()),
            )
            .build();
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.index_name)
                .set_key_schema(Some(key_schema(&index.key_schema)?))
                .projection(projection)
                .build()?,
        );
    }
    if let Some(stream) = &definition.stream_specification {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(stream.stream_view_type.as_str()))
                .build()?,
        );
    }
    match request.send().await {
        Ok(_) => Ok(true),
        // Another process created it between our describe and create.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(false)
        }
        Err(error) => Err(TableError::DynamoDb(describe(&error))),
    }
}

fn describe(error: &impl ProvideErrorMetadata) -> String {
    format!(
        "{} {}",
        error.code().unwrap_or("unreachable or unknown error"),
        error.message().unwrap_or_default()
    )
}

fn key_schema(elements: &[KeyElement]) -> Result<Vec<KeySchemaElement>, TableError> {
    elements
        .iter()
        .map(|element| {
            Ok(KeySchemaElement::builder()
                .attribute_name(&element.attribute_name)
                .key_type(KeyType::from(element.key_type.as_str()))
                .build()?)
        })
        .collect()
}
