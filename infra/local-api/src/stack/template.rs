//! Reads what the local API needs from the SAM template: the HTTP routes
//! (which function serves each) and the DynamoDB table definition. The
//! template is the single source of both, locally and deployed: the
//! routes are the `HttpApi` events of its `AWS::Serverless::Function`s,
//! from which SAM makes the HTTP API's routes, and the table is its one
//! `AWS::DynamoDB::Table`, as CloudFormation creates it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_norway::Value;

/// What went wrong reading the template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The template's path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML does not have the expected shape.
    #[error("template is not as expected: {0}")]
    Shape(#[from] serde_norway::Error),
    /// Something the local API relies on is missing or ambiguous.
    #[error("template: {0}")]
    Content(String),
}

/// The parts of the template the local API uses.
#[derive(Debug, Clone)]
pub struct Template {
    /// Every function, in the template's order of logical ids.
    pub functions: Vec<Function>,
    /// Every `HttpApi` event of every function.
    pub routes: Vec<Route>,
    /// The DynamoDB table's definition.
    pub table: TableDefinition,
}

/// One function: `GetUserFunction`, built as `get-user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Its logical id (`sam build` writes it to `.aws-sam/build/<id>/`).
    pub logical_id: String,
    /// Its binary (= crate) name.
    pub binary: String,
}

/// One route: `GET /users/{id}` served by the function built as `get-user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// HTTP method, upper case.
    pub method: String,
    /// Path with `{name}` parameters, as API Gateway writes it.
    pub path: String,
    /// The function's binary (= crate) name.
    pub function: String,
    /// The OAuth scopes the route requires when the API has its JWT
    /// authorizer (any one of them suffices, as in API Gateway).
    pub scopes: Vec<String>,
}

impl Route {
    /// API Gateway's route key: `GET /users/{id}`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The table's `Properties`, as CloudFormation reads them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    /// Key attributes and their types.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// The table's primary key.
    pub key_schema: Vec<KeyElement>,
    /// Global secondary indexes.
    #[serde(default)]
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    /// The stream, if any.
    #[serde(default)]
    pub stream_specification: Option<StreamSpecification>,
}

/// One key attribute.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    /// Its name.
    pub attribute_name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

/// One element of a key schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    /// The attribute.
    pub attribute_name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

/// A global secondary index.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GlobalSecondaryIndex {
    /// Its name.
    pub index_name: String,
    /// Its key.
    pub key_schema: Vec<KeyElement>,
    /// What it projects.
    pub projection: Projection,
}

/// An index projection.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    /// Attributes projected with `INCLUDE`.
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

/// A table stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    /// `NEW_AND_OLD_IMAGES` and the like.
    pub stream_view_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct File {
    resources: BTreeMap<String, Resource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Resource {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    properties: Value,
    #[serde(default)]
    metadata: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FunctionProperties {
    #[serde(default)]
    events: BTreeMap<String, Event>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    properties: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HttpApiEvent {
    method: String,
    path: String,
    #[serde(default)]
    auth: Value,
}

impl Template {
    /// Reads and parses the template at `path`.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses template text.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let file: File = serde_norway::from_str(text)?;
        let mut functions = Vec::new();
        let mut routes = Vec::new();
        let mut tables = Vec::new();
        for (logical_id, resource) in file.resources {
            match resource.kind.as_str() {
                "AWS::Serverless::Function" => {
                    let binary = resource
                        .metadata
                        .get("BuildProperties")
                        .and_then(|p| p.get("Binary"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            TemplateError::Content(format!(
                                "{logical_id} has no Metadata.BuildProperties.Binary"
                            ))
                        })?
                        .to_owned();
                    functions.push(Function {
                        logical_id: logical_id.clone(),
                        binary: binary.clone(),
                    });
                    let properties: FunctionProperties =
                        serde_norway::from_value(resource.properties)?;
                    for event in properties
                        .events
                        .into_values()
                        .filter(|e| e.kind == "HttpApi")
                    {
                        let api: HttpApiEvent = serde_norway::from_value(event.properties)?;
                        routes.push(Route {
                            method: api.method.to_ascii_uppercase(),
                            path: api.path,
                            function: binary.clone(),
                            scopes: authorization_scopes(&api.auth),
                        });
                    }
                }
                "AWS::DynamoDB::Table" => {
                    tables.push(serde_norway::from_value(resource.properties)?)
                }
                _ => {}
            }
        }
        let table = match <[TableDefinition; 1]>::try_from(tables) {
            Ok([table]) => table,
            Err(tables) => {
                return Err(TemplateError::Content(format!(
                    "expected one AWS::DynamoDB::Table, found {}",
                    tables.len()
                )));
            }
        };
        Ok(Self {
            functions,
            routes,
            table,
        })
    }
}

/// The value a condition-dependent setting takes when its condition holds:
/// the first branch of `!If [Condition, WhenTrue, WhenFalse]`.
fn when_enabled(value: &Value) -> &Value {
    let branches = match value {
        Value::Tagged(tagged) if tagged.tag == "If" => tagged.value.as_sequence(),
        Value::Mapping(mapping) => mapping.get("Fn::If").and_then(Value::as_sequence),
        _ => None,
    };
    branches.and_then(|b| b.get(1)).map_or(value, when_enabled)
}

/// A route event's `Auth.AuthorizationScopes`, with auth enabled.
fn authorization_scopes(auth: &Value) -> Vec<String> {
    when_enabled(auth)
        .get("AuthorizationScopes")
        .and_then(Value::as_sequence)
        .map(|scopes| {
            scopes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
