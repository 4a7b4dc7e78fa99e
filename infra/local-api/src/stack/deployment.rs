//! The deployed shape of the stack, as the SAM translator turns
//! `template.yaml` into CloudFormation (`infra/sam/translated/*.json`,
//! written by `infra/sam/translate.sh`): each function's settings,
//! environment and role, and the stream's event source mapping. `--lambda`
//! mode runs the functions from this, so what runs locally is what SAM
//! deploys, not a second reading of the template.
//!
//! CloudFormation intrinsics (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`)
//! are resolved against the local stand-ins: the local table, its stream,
//! and made-up but well-formed ARNs for everything else.
//!
//! Versions and aliases: SAM publishes each function as an
//! `AWS::Lambda::Version` behind an `AWS::Lambda::Alias` (`AutoPublishAlias`),
//! and the stream mapping and API Gateway invoke the alias. Locally there is
//! one version of each function, the binary just built, so an alias stands
//! for its function: invoking it runs the function's code, with the
//! function's settings and role, as invoking the function does. The
//! CodeDeploy resources that shift the alias between versions on AWS (the
//! application, one deployment group per function, and their service role,
//! a role no function runs as) are not read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::iam::{Policy, PolicyError};

/// The account id every local ARN carries.
pub const ACCOUNT: &str = "000000000000";
/// The region the local stack is in.
pub const REGION: &str = "us-east-1";
/// The stack name local resource names are made from.
pub const STACK: &str = "local";

/// What went wrong reading the translated template.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The file could not be read.
    #[error("cannot read {path}: {source} (infra/sam/translate.sh writes it)")]
    Read {
        /// Its path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not JSON.
    #[error("{path} is not JSON: {source}")]
    Json {
        /// Its path.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The translation was made from another version of the template.
    #[error(
        "{dir} is the translation of another version of {template}: regenerate it with \
         infra/sam/translate.sh (needs python3), so the twin runs what the template says"
    )]
    Stale {
        /// The translations' folder.
        dir: String,
        /// The template read.
        template: String,
    },
    /// Something the local twin relies on is missing or not supported.
    #[error("translated template: {0}")]
    Content(String),
    /// A policy uses IAM the local evaluator does not implement.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

fn content(text: impl Into<String>) -> DeploymentError {
    DeploymentError::Content(text.into())
}

/// The folder the translations are kept in, beside the workspace.
pub fn default_translation_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/sam/translated"
    ))
}

/// The local resources intrinsics resolve to.
#[derive(Debug, Clone)]
pub struct LocalResources {
    /// The DynamoDB table's name.
    pub table: String,
    /// Its stream's ARN, as the local DynamoDB reports it.
    pub stream_arn: Option<String>,
}

impl LocalResources {
    /// The table's ARN.
    pub fn table_arn(&self) -> String {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}", self.table)
    }
}

/// The translated template, with intrinsics resolvable.
#[derive(Debug, Clone)]
pub struct Deployment {
    resources: serde_json::Map<String, Value>,
    parameters: serde_json::Map<String, Value>,
    conditions: serde_json::Map<String, Value>,
    /// Parameter values given instead of the defaults.
    overrides: BTreeMap<String, String>,
    local: LocalResources,
}

/// One function, as Lambda would run it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Its logical id (`CreateUserFunction`).
    pub logical_id: String,
    /// Its binary, `Metadata.BuildProperties.Binary` (`create-user`).
    pub binary: String,
    /// The function's name (`local-CreateUserFunction`).
    pub name: String,
    /// Its variables (`Environment.Variables`), resolved.
    pub environment: BTreeMap<String, String>,
    /// `MemorySize`, in MB.
    pub memory_mb: u64,
    /// `Timeout`.
    pub timeout: Duration,
    /// `LoggingConfig.LogFormat`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`.
    pub log_level: Option<String>,
    /// `LoggingConfig.LogGroup`, else Lambda's default group.
    pub log_group: String,
    /// `TracingConfig.Mode` is `Active`.
    pub tracing: bool,
    /// Its execution role's logical id.
    pub role: String,
}

impl FunctionSpec {
    /// The function's ARN.
    pub fn arn(&self) -> String {
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.name)
    }
}

/// A role and every policy attached to it.
#[derive(Debug, Clone)]
pub struct Role {
    /// Its logical id.
    pub logical_id: String,
    /// The policies written in the template (inline, or managed policies
    /// the template defines).
    pub own: Vec<Policy>,
    /// AWS managed policies SAM or the template attached.
    pub aws_managed: Vec<Policy>,
}

impl Role {
    /// The ARN its sessions act as, for a function named `session`.
    pub fn session_arn(&self, session: &str) -> String {
        format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{}/{session}",
            self.logical_id
        )
    }

    /// Every policy, own and managed.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.own.iter().chain(&self.aws_managed)
    }
}

/// One policy attached to a role, as its document.
#[derive(Debug, Clone)]
pub struct AttachedPolicy {
    /// The inline policy's name, or the managed policy's ARN or logical id.
    pub name: String,
    /// The document, its intrinsics resolved.
    pub document: Value,
    /// Whether it is an AWS managed policy.
    pub aws_managed: bool,
}

/// A DynamoDB stream event source mapping's settings.
#[derive(Debug, Clone)]
pub struct StreamMapping {
    /// The function it invokes (logical id).
    pub function: String,
    /// `BatchSize`.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// `FilterCriteria.Filters[].Pattern`, parsed.
    pub filters: Vec<Value>,
    /// `FunctionResponseTypes` has `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
    /// `MaximumRetryAttempts` (`-1`: until the record expires).
    pub maximum_retry_attempts: Option<u32>,
    /// `MaximumRecordAgeInSeconds` (`-1`: no limit).
    pub maximum_record_age: Option<Duration>,
    /// `DestinationConfig.OnFailure.Destination`, resolved.
    pub on_failure: Option<String>,
    /// `StartingPosition`.
    pub starting_position: String,
}

/// The AWS managed policies SAM attaches, by ARN: their documents as AWS
/// publishes them (they cannot be read offline).
const AWS_MANAGED_POLICIES: &str = include_str!("../../../sam/aws-managed-policies.json");

/// The file in the translations' folder holding the SHA-256 of the template
/// they were made from (`infra/sam/translate.py` writes it).
const TEMPLATE_DIGEST: &str = "template.sha256";

/// Refuses translations in `dir` made from another version of `template`.
fn check_current(dir: &Path, template: &Path) -> Result<(), DeploymentError> {
    let path = dir.join(TEMPLATE_DIGEST);
    let recorded = std::fs::read_to_string(&path).map_err(|source| DeploymentError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let text = std::fs::read(template).map_err(|source| DeploymentError::Read {
        path: template.display().to_string(),
        source,
    })?;
    let actual: String = Sha256::digest(&text)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if recorded.split_whitespace().next() == Some(actual.as_str()) {
        Ok(())
    } else {
        Err(DeploymentError::Stale {
            dir: dir.display().to_string(),
            template: template.display().to_string(),
        })
    }
}

impl Deployment {
    /// Reads `<dir>/<mode>.json` for `local`, once the translations are
    /// known to come from `template` as it is now.
    pub fn load(
        dir: &Path,
        template: &Path,
        mode: &str,
        local: LocalResources,
    ) -> Result<Self, DeploymentError> {
        check_current(dir, template)?;
        let path = dir.join(format!("{mode}.json"));
        let text = std::fs::read_to_string(&path).map_err(|source| DeploymentError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let document: Value =
            serde_json::from_str(&text).map_err(|source| DeploymentError::Json {
                path: path.display().to_string(),
                source,
            })?;
        Self::from_document(&document, local)
    }

    /// A deployment from a translated template's JSON.
    pub fn from_document(document: &Value, local: LocalResources) -> Result<Self, DeploymentError> {
        let section = |name: &str| {
            document
                .get(name)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        Ok(Self {
            resources: section("Resources"),
            parameters: section("Parameters"),
            conditions: section("Conditions"),
            overrides: BTreeMap::new(),
            local,
        })
    }

    /// The deployment with `overrides` as parameter values, as `sam deploy
    /// --parameter-overrides` gives them. Refused when a parameter is not
    /// the template's, a value is not among its `AllowedValues`, or a value
    /// changes a condition: the translation resolved every `Fn::If` with
    /// the defaults, so such a value would deploy something else than the
    /// translation says.
    pub fn with_parameters(
        mut self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, DeploymentError> {
        for (name, value) in overrides {
            let parameter = self
                .parameters
                .get(name)
                .ok_or_else(|| content(format!("the template has no parameter {name}")))?;
            if let Some(allowed) = parameter["AllowedValues"].as_array()
                && !allowed
                    .iter()
                    .any(|a| self.resolve(a).is_ok_and(|a| a == *value))
            {
                return Err(content(format!(
                    "{name}={value} is not one of its AllowedValues"
                )));
            }
        }
        let before: Vec<(String, Option<bool>)> = self
            .conditions
            .keys()
            .map(|name| (name.clone(), self.condition(name)))
            .collect();
        self.overrides = overrides.clone();
        for (name, was) in before {
            if self.condition(&name) != was {
                return Err(content(format!(
                    "these parameter values change condition {name}, which the translation resolved with the defaults; the twin runs only values that leave every condition as it is"
                )));
            }
        }
        Ok(self)
    }

    /// A condition's value, or `None` if it depends on more than
    /// parameters.
    fn condition(&self, name: &str) -> Option<bool> {
        self.truth(self.conditions.get(name)?)
    }

    fn truth(&self, expression: &Value) -> Option<bool> {
        let (function, argument) = expression.as_object()?.iter().next()?;
        let items = || argument.as_array().into_iter().flatten();
        match function.as_str() {
            "Fn::Equals" => match argument.as_array()?.as_slice() {
                [a, b] => Some(self.resolve(a).ok()? == self.resolve(b).ok()?),
                _ => None,
            },
            "Fn::Or" => items()
                .map(|e| self.truth(e))
                .try_fold(false, |any, t| Some(any || t?)),
            "Fn::And" => items()
                .map(|e| self.truth(e))
                .try_fold(true, |all, t| Some(all && t?)),
            "Fn::Not" => Some(!self.truth(argument.as_array()?.first()?)?),
            "Condition" => self.condition(argument.as_str()?),
            _ => None,
        }
    }

    /// The local resources it resolves against.
    pub fn local(&self) -> &LocalResources {
        &self.local
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.resources
            .iter()
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
    }

    /// Every Lambda function.
    pub fn functions(&self) -> Result<Vec<FunctionSpec>, DeploymentError> {
        self.of_type("AWS::Lambda::Function")
            .map(|(id, resource)| self.function(id, resource))
            .collect()
    }

    fn function(&self, id: &str, resource: &Value) -> Result<FunctionSpec, DeploymentError> {
        let properties = &resource["Properties"];
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .ok_or_else(|| content(format!("{id} has no Metadata.BuildProperties.Binary")))?;
        let mut environment = BTreeMap::new();
        if let Some(variables) = properties["Environment"]["Variables"].as_object() {
            for (name, value) in variables {
                environment.insert(name.clone(), self.resolve(value)?);
            }
        }
        let role = match &properties["Role"] {
            Value::Object(getatt) => getatt
                .get("Fn::GetAtt")
                .and_then(|a| a.get(0))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| {
            content(format!(
                "{id}: Role is not the GetAtt of a role in the stack"
            ))
        })?;
        let logging = &properties["LoggingConfig"];
        let optional = |value: &Value| -> Result<Option<String>, DeploymentError> {
            if value.is_null() {
                Ok(None)
            } else {
                self.resolve(value).map(Some)
            }
        };
        let name = self.function_name(id);
        Ok(FunctionSpec {
            logical_id: id.to_owned(),
            binary: binary.to_owned(),
            environment,
            memory_mb: properties["MemorySize"].as_u64().unwrap_or(128),
            timeout: Duration::from_secs(properties["Timeout"].as_u64().unwrap_or(3)),
            log_format: optional(&logging["LogFormat"])?,
            log_level: optional(&logging["ApplicationLogLevel"])?,
            log_group: optional(&logging["LogGroup"])?
                .unwrap_or_else(|| format!("/aws/lambda/{name}")),
            tracing: properties["TracingConfig"]["Mode"].as_str() == Some("Active"),
            name,
            role,
        })
    }

    /// The role with logical id `id`, its policies resolved.
    pub fn role(&self, id: &str) -> Result<Role, DeploymentError> {
        let mut own = Vec::new();
        let mut aws_managed = Vec::new();
        for attached in self.role_documents(id)? {
            let policy = Policy::parse(&attached.name, &attached.document)?;
            if attached.aws_managed {
                aws_managed.push(policy);
            } else {
                own.push(policy);
            }
        }
        Ok(Role {
            logical_id: id.to_owned(),
            own,
            aws_managed,
        })
    }

    /// The policy documents attached to the role with logical id `id`,
    /// intrinsics resolved: what [`Deployment::role`] parses, and what a
    /// second IAM evaluator is given to check ours.
    pub fn role_documents(&self, id: &str) -> Result<Vec<AttachedPolicy>, DeploymentError> {
        let resource = self
            .resources
            .get(id)
            .filter(|r| r["Type"] == "AWS::IAM::Role")
            .ok_or_else(|| content(format!("no role {id}")))?;
        let properties = &resource["Properties"];
        let mut attached = Vec::new();
        for inline in properties["Policies"].as_array().into_iter().flatten() {
            attached.push(AttachedPolicy {
                name: inline["PolicyName"].as_str().unwrap_or(id).to_owned(),
                document: self.resolve_document(&inline["PolicyDocument"])?,
                aws_managed: false,
            });
        }
        let managed: Value = serde_json::from_str(AWS_MANAGED_POLICIES)
            .map_err(|e| content(format!("aws-managed-policies.json: {e}")))?;
        for arn in properties["ManagedPolicyArns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let arn = self.resolve(arn)?;
            if let Some(document) = managed.get(&arn) {
                attached.push(AttachedPolicy {
                    document: document.clone(),
                    name: arn,
                    aws_managed: true,
                });
            } else if let Some((policy_id, document)) = self.customer_managed(&arn) {
                attached.push(AttachedPolicy {
                    name: policy_id.to_owned(),
                    document: self.resolve_document(document)?,
                    aws_managed: false,
                });
            } else {
                return Err(content(format!(
                    "{id} has the managed policy {arn}, whose document infra/sam/aws-managed-policies.json does not hold"
                )));
            }
        }
        Ok(attached)
    }

    /// An `AWS::IAM::ManagedPolicy` of the stack, by the ARN its `Ref` gives.
    fn customer_managed(&self, arn: &str) -> Option<(&str, &Value)> {
        self.of_type("AWS::IAM::ManagedPolicy")
            .find(|(id, _)| self.managed_policy_arn(id) == arn)
            .map(|(id, resource)| (id.as_str(), &resource["Properties"]["PolicyDocument"]))
    }

    fn managed_policy_arn(&self, id: &str) -> String {
        format!("arn:aws:iam::{ACCOUNT}:policy/{STACK}-{id}")
    }

    /// Every DynamoDB stream event source mapping.
    pub fn stream_mappings(&self) -> Result<Vec<StreamMapping>, DeploymentError> {
        let mut mappings = Vec::new();
        for (id, resource) in self.of_type("AWS::Lambda::EventSourceMapping") {
            let p = &resource["Properties"];
            let function = p["FunctionName"]["Ref"]
                .as_str()
                .ok_or_else(|| content(format!("{id}: FunctionName is not a Ref")))?;
            let function = self.invoked_function(function)?;
            let mut filters = Vec::new();
            for filter in p["FilterCriteria"]["Filters"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let pattern = filter["Pattern"]
                    .as_str()
                    .ok_or_else(|| content(format!("{id}: a filter has no Pattern")))?;
                filters.push(
                    serde_json::from_str(pattern)
                        .map_err(|e| content(format!("{id}: filter pattern: {e}")))?,
                );
            }
            let limit = |value: &Value| value.as_i64().and_then(|n| u64::try_from(n).ok());
            mappings.push(StreamMapping {
                function: function.to_owned(),
                batch_size: p["BatchSize"]
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(100),
                batching_window: Duration::from_secs(
                    p["MaximumBatchingWindowInSeconds"].as_u64().unwrap_or(0),
                ),
                filters,
                report_batch_item_failures: p["FunctionResponseTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
                bisect_on_error: p["BisectBatchOnFunctionError"].as_bool().unwrap_or(false),
                maximum_retry_attempts: limit(&p["MaximumRetryAttempts"])
                    .and_then(|n| u32::try_from(n).ok()),
                maximum_record_age: limit(&p["MaximumRecordAgeInSeconds"]).map(Duration::from_secs),
                on_failure: match &p["DestinationConfig"]["OnFailure"]["Destination"] {
                    Value::Null => None,
                    destination => Some(self.resolve(destination)?),
                },
                starting_position: p["StartingPosition"]
                    .as_str()
                    .unwrap_or("TRIM_HORIZON")
                    .to_owned(),
            });
        }
        Ok(mappings)
    }

    fn function_name(&self, id: &str) -> String {
        format!("{STACK}-{id}")
    }

    /// The logical id of the function that invoking `id` runs: `id` itself
    /// for an `AWS::Lambda::Function`, the function an `AWS::Lambda::Alias`
    /// belongs to (`FunctionName: {Ref: ...}`) for an alias. Locally an
    /// alias runs its function's one version (the module's header says why).
    pub fn invoked_function<'a>(&'a self, id: &'a str) -> Result<&'a str, DeploymentError> {
        let resource = self
            .resources
            .get(id)
            .ok_or_else(|| content(format!("{id} is no resource of the stack")))?;
        match resource["Type"].as_str().unwrap_or_default() {
            "AWS::Lambda::Function" => Ok(id),
            "AWS::Lambda::Alias" => {
                let function = resource["Properties"]["FunctionName"]["Ref"]
                    .as_str()
                    .ok_or_else(|| content(format!("{id}: FunctionName is not a Ref")))?;
                match self.resources.get(function).map(|r| &r["Type"]) {
                    Some(kind) if kind == "AWS::Lambda::Function" => Ok(function),
                    _ => Err(content(format!(
                        "{id} is the alias of {function}, which is no function of the stack"
                    ))),
                }
            }
            kind => Err(content(format!("{id} ({kind}) is no function or alias"))),
        }
    }

    /// The alias `id`'s ARN: its function's, with `:<Name>` appended.
    fn alias_arn(&self, id: &str) -> Result<String, DeploymentError> {
        let function = self.invoked_function(id)?;
        let name = self.resources[id]["Properties"]["Name"]
            .as_str()
            .ok_or_else(|| content(format!("{id}: an alias without a Name")))?;
        Ok(format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}:{name}",
            self.function_name(function)
        ))
    }

    /// A policy document with every intrinsic in it resolved.
    fn resolve_document(&self, value: &Value) -> Result<Value, DeploymentError> {
        Ok(match value {
            Value::Object(map) if is_intrinsic(map) => Value::String(self.resolve(value)?),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve_document(v)?)))
                    .collect::<Result<_, DeploymentError>>()?,
            ),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve_document(v))
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }

    /// The text a scalar value or intrinsic stands for locally.
    pub fn resolve(&self, value: &Value) -> Result<String, DeploymentError> {
        match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Object(map) if map.len() == 1 => {
                let (function, argument) = map.iter().next().ok_or_else(|| content("empty"))?;
                match (function.as_str(), argument) {
                    ("Ref", Value::String(name)) => self.reference(name),
                    ("Fn::GetAtt", Value::Array(parts)) => match parts.as_slice() {
                        [Value::String(id), Value::String(attribute)] => {
                            self.attribute(id, attribute)
                        }
                        _ => Err(content(format!("unsupported GetAtt {argument}"))),
                    },
                    ("Fn::GetAtt", Value::String(dotted)) => match dotted.split_once('.') {
                        Some((id, attribute)) => self.attribute(id, attribute),
                        None => Err(content(format!("unsupported GetAtt {dotted}"))),
                    },
                    ("Fn::Sub", Value::String(text)) => self.substitute(text),
                    ("Fn::Join", Value::Array(parts)) => match parts.as_slice() {
                        [Value::String(separator), Value::Array(items)] => Ok(items
                            .iter()
                            .map(|item| self.resolve(item))
                            .collect::<Result<Vec<_>, _>>()?
                            .join(separator)),
                        _ => Err(content(format!("unsupported Join {argument}"))),
                    },
                    _ => Err(content(format!("the local twin cannot resolve {function}"))),
                }
            }
            other => Err(content(format!("cannot resolve {other}"))),
        }
    }

    fn reference(&self, name: &str) -> Result<String, DeploymentError> {
        match name {
            "AWS::Region" => return Ok(REGION.to_owned()),
            "AWS::AccountId" => return Ok(ACCOUNT.to_owned()),
            "AWS::StackName" => return Ok(STACK.to_owned()),
            "AWS::Partition" => return Ok("aws".to_owned()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".to_owned()),
            _ => {}
        }
        if let Some(value) = self.overrides.get(name) {
            return Ok(value.clone());
        }
        if let Some(parameter) = self.parameters.get(name) {
            return match &parameter["Default"] {
                Value::Null => Err(content(format!("parameter {name} has no default"))),
                Value::Array(items) => Ok(items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(",")),
                value => self.resolve(value),
            };
        }
        let resource = self
            .resources
            .get(name)
            .ok_or_else(|| content(format!("Ref to unknown {name}")))?;
        match resource["Type"].as_str().unwrap_or_default() {
            "AWS::DynamoDB::Table" => Ok(self.local.table.clone()),
            "AWS::Logs::LogGroup" => self.resolve(&resource["Properties"]["LogGroupName"]),
            "AWS::SQS::Queue" => Ok(format!(
                "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-{name}"
            )),
            "AWS::Lambda::Function" => Ok(self.function_name(name)),
            // CloudFormation's Ref of an alias is its ARN.
            "AWS::Lambda::Alias" => self.alias_arn(name),
            "AWS::IAM::ManagedPolicy" => Ok(self.managed_policy_arn(name)),
            "AWS::SNS::Topic" => Ok(format!("arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-{name}")),
            kind => Ok(format!("{STACK}-{name}-{}", kind.replace("::", "-"))),
        }
    }

    fn attribute(&self, id: &str, attribute: &str) -> Result<String, DeploymentError> {
        let kind = self
            .resources
            .get(id)
            .and_then(|r| r["Type"].as_str())
            .ok_or_else(|| content(format!("GetAtt of unknown {id}")))?;
        match (kind, attribute) {
            ("AWS::DynamoDB::Table", "Arn") => Ok(self.local.table_arn()),
            ("AWS::DynamoDB::Table", "StreamArn") => self
                .local
                .stream_arn
                .clone()
                .ok_or_else(|| content("the local table has no stream")),
            ("AWS::SQS::Queue", "Arn") => {
                Ok(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-{id}"))
            }
            ("AWS::IAM::Role", "Arn") => Ok(format!("arn:aws:iam::{ACCOUNT}:role/{STACK}-{id}")),
            ("AWS::Lambda::Function", "Arn") => Ok(format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
                self.function_name(id)
            )),
            // The one local version of every function.
            ("AWS::Lambda::Version", "Version") => Ok("1".to_owned()),
            _ => Err(content(format!(
                "the local twin cannot resolve {id}.{attribute} ({kind})"
            ))),
        }
    }

    /// `Fn::Sub` without a variable map: `${Name}`, `${Id.Attribute}`, and
    /// `${!Literal}` for a literal `${Literal}`.
    fn substitute(&self, text: &str) -> Result<String, DeploymentError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| content(format!("unclosed ${{ in {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some((id, attribute)) =
                name.split_once('.').filter(|_| !name.starts_with("AWS::"))
            {
                out.push_str(&self.attribute(id, attribute)?);
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn is_intrinsic(map: &serde_json::Map<String, Value>) -> bool {
    map.len() == 1 && map.keys().all(|k| k == "Ref" || k.starts_with("Fn::"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Deployment {
        let document = json!({
            "Parameters": {"LogLevel": {"Type": "String", "Default": "INFO"}},
            "Resources": {
                "UsersTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
                "Queue": {"Type": "AWS::SQS::Queue"},
                "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {
                    "LogGroupName": {"Fn::Sub": "/aws/lambda/${AWS::StackName}/get-user"}}}
            }
        });
        with_local_table(&document)
    }

    /// `document` as deployed against the local table `users` and its stream.
    fn with_local_table(document: &Value) -> Deployment {
        Deployment::from_document(
            document,
            LocalResources {
                table: "users".to_owned(),
                stream_arn: Some("arn:stream".to_owned()),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn intrinsics_resolve_to_the_local_resources() {
        let d = deployment();
        let cases = [
            (json!({"Ref": "UsersTable"}), "users"),
            (
                json!({"Fn::GetAtt": ["UsersTable", "Arn"]}),
                "arn:aws:dynamodb:us-east-1:000000000000:table/users",
            ),
            (json!({"Fn::GetAtt": "UsersTable.StreamArn"}), "arn:stream"),
            (
                json!({"Fn::Sub": "${UsersTable.Arn}/index/byEmail"}),
                "arn:aws:dynamodb:us-east-1:000000000000:table/users/index/byEmail",
            ),
            (
                json!({"Fn::Sub": "${!Literal}-${AWS::Region}"}),
                "${Literal}-us-east-1",
            ),
            (json!({"Ref": "LogLevel"}), "INFO"),
            (json!({"Ref": "Logs"}), "/aws/lambda/local/get-user"),
            (
                json!({"Fn::GetAtt": ["Queue", "Arn"]}),
                "arn:aws:sqs:us-east-1:000000000000:local-Queue",
            ),
            (
                json!({"Fn::Join": ["-", ["a", {"Ref": "AWS::AccountId"}]]}),
                "a-000000000000",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(d.resolve(&value).ok().as_deref(), Some(expected), "{value}");
        }
    }

    /// What SAM makes of a function with `AutoPublishAlias: live` and a
    /// stream event (names as in `infra/sam/translated/*.json`).
    fn aliased() -> Deployment {
        let document = json!({
            "Resources": {
                "UsersTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
                "Worker": {"Type": "AWS::Lambda::Function", "Properties": {}},
                "WorkerVersion0123456789": {"Type": "AWS::Lambda::Version",
                    "Properties": {"FunctionName": {"Ref": "Worker"}}},
                "WorkerAliaslive": {"Type": "AWS::Lambda::Alias", "Properties": {
                    "FunctionName": {"Ref": "Worker"},
                    "FunctionVersion": {"Fn::GetAtt": ["WorkerVersion0123456789", "Version"]},
                    "Name": "live"}},
                "StrayAlias": {"Type": "AWS::Lambda::Alias", "Properties": {
                    "FunctionName": {"Ref": "UsersTable"}, "Name": "live"}},
                "WorkerStream": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                    "FunctionName": {"Ref": "WorkerAliaslive"},
                    "EventSourceArn": {"Fn::GetAtt": ["UsersTable", "StreamArn"]}}},
                "ServerlessDeploymentApplication": {"Type": "AWS::CodeDeploy::Application",
                    "Properties": {"ComputePlatform": "Lambda"}}
            }
        });
        with_local_table(&document)
    }

    #[test]
    fn an_alias_runs_its_function_and_refers_to_itself_by_the_alias_arn() {
        let d = aliased();
        assert_eq!(d.invoked_function("WorkerAliaslive").ok(), Some("Worker"));
        assert_eq!(d.invoked_function("Worker").ok(), Some("Worker"));
        assert_eq!(
            d.resolve(&json!({"Ref": "WorkerAliaslive"}))
                .ok()
                .as_deref(),
            Some("arn:aws:lambda:us-east-1:000000000000:function:local-Worker:live")
        );
        assert_eq!(
            d.resolve(&json!({"Fn::Sub": "functions/${WorkerAliaslive}/invocations"}))
                .ok()
                .as_deref(),
            Some(
                "functions/arn:aws:lambda:us-east-1:000000000000:function:local-Worker:live/invocations"
            )
        );
        assert_eq!(
            d.resolve(&json!({"Fn::GetAtt": ["WorkerVersion0123456789", "Version"]}))
                .ok()
                .as_deref(),
            Some("1")
        );
        let mappings = d.stream_mappings().unwrap_or_else(|e| panic!("{e}"));
        let invoked: Vec<&str> = mappings.iter().map(|m| m.function.as_str()).collect();
        assert_eq!(
            invoked,
            ["Worker"],
            "the mapping on the alias invokes the function"
        );
    }

    #[test]
    fn an_alias_of_no_function_and_a_mapping_on_no_function_are_errors() {
        let d = aliased();
        for id in ["StrayAlias", "UsersTable", "Nothing"] {
            assert!(d.invoked_function(id).is_err(), "{id}");
        }
    }

    #[test]
    fn an_unknown_reference_is_an_error_not_a_guess() {
        let d = deployment();
        for value in [
            json!({"Ref": "Nothing"}),
            json!({"Fn::GetAtt": ["Queue", "QueueName"]}),
            json!({"Fn::ImportValue": "x"}),
        ] {
            assert!(d.resolve(&value).is_err(), "{value}");
        }
    }

    #[test]
    fn parameter_values_apply_only_when_they_leave_every_condition_as_translated() {
        let deployment = || {
            let local = LocalResources {
                table: "users".to_owned(),
                stream_arn: None,
            };
            Deployment::load(
                &default_translation_dir(),
                &crate::default_template_path(),
                "none",
                local,
            )
            .expect("the committed translation")
        };
        let with = |name: &str, value: &str| {
            deployment().with_parameters(&BTreeMap::from([(name.to_owned(), value.to_owned())]))
        };
        let level = |d: &Deployment| d.resolve(&json!({"Ref": "LogLevel"})).expect("LogLevel");
        for kept in ["INFO", "WARN", "ERROR"] {
            let d = with("LogLevel", kept).expect(kept);
            assert_eq!(level(&d), kept);
        }
        // LogsBelowInfo turns ApplicationLogLevel to the level itself, which
        // the committed translation resolved at INFO.
        for changed in ["TRACE", "DEBUG"] {
            let refused = with("LogLevel", changed).expect_err(changed).to_string();
            assert!(refused.contains("LogsBelowInfo"), "{refused}");
        }
        assert!(with("LogLevel", "LOUD").is_err(), "not an allowed value");
        assert!(with("NoSuchParameter", "1").is_err());
    }

    #[test]
    fn a_translation_of_another_template_is_refused_naming_the_command_that_renews_it() {
        let local = || LocalResources {
            table: "users".to_owned(),
            stream_arn: None,
        };
        let committed = default_translation_dir();
        let template = crate::default_template_path();
        assert!(
            Deployment::load(&committed, &template, "none", local()).is_ok(),
            "the committed translation is current"
        );
        let dir = std::env::temp_dir().join(format!("translated-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        for name in ["none.json", TEMPLATE_DIGEST] {
            std::fs::copy(committed.join(name), dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
        }
        let edited = dir.join("template.yaml");
        let mut text = std::fs::read_to_string(&template).unwrap_or_else(|e| panic!("{e}"));
        text.push_str("# one more line\n");
        std::fs::write(&edited, text).unwrap_or_else(|e| panic!("{e}"));
        let refused = Deployment::load(&dir, &edited, "none", local());
        let _ = std::fs::remove_dir_all(&dir);
        match refused {
            Err(error @ DeploymentError::Stale { .. }) => {
                assert!(
                    error.to_string().contains("infra/sam/translate.sh"),
                    "{error}"
                );
            }
            other => panic!("a stale translation must be refused: {other:?}"),
        }
    }
}
