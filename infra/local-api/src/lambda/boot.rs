//! The deployable binary boots: one function's binary (or an emulator
//! running it, for the arm64 build) started under the local Runtime API
//! with the environment and role the translated template gives it, sent
//! one event, and its answer checked. The deploy checks run it on every
//! `bootstrap` `sam build` makes.
//!
//! It stands in for Lambda's init and first invoke of the deployed
//! artifact, run by the same [`super::instance`] as `--lambda` mode.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::instance::Launch;
use super::{LambdaError, access_key, environment};
use crate::StartError;
use crate::dynamodb::table;
use crate::iam::coverage::AccessLog;
use crate::iam::dynamodb::KeySchema;
use crate::iam::proxy::{IamProxy, Principal};
use crate::stack::deployment::{Deployment, LocalResources};
use crate::stack::template::Template;

/// Why the function did not boot and answer.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The local set-up failed.
    #[error(transparent)]
    Setup(#[from] StartError),
    /// No function of that name.
    #[error("the template has no function {0} (a binary or a logical id)")]
    UnknownFunction(String),
    /// It failed to init or to answer.
    #[error("{function}: {failure}")]
    Failed {
        /// The function.
        function: String,
        /// What went wrong.
        failure: String,
    },
}

impl From<LambdaError> for BootError {
    fn from(error: LambdaError) -> Self {
        Self::Setup(error.into())
    }
}

/// Boots `function` (its binary name or logical id) with `command` against the DynamoDB at `endpoint`,
/// sends it one event (a request to its route with a random id, or an
/// empty stream batch) and returns a line saying how it went. An answer
/// counts when it is a response (not an error) and, for a route, not a 5xx.
pub async fn run(
    function: &str,
    endpoint: &str,
    command: Vec<String>,
    timeout: Duration,
    template_path: &Path,
) -> Result<String, BootError> {
    let template = Template::load(template_path).map_err(StartError::from)?;
    let name = format!("boot-{}", ulid::Ulid::new().to_string().to_lowercase());
    let client = table::local_client(endpoint).await;
    table::create_if_missing(&client, &name, &template.table)
        .await
        .map_err(StartError::from)?;
    let local = LocalResources {
        stream_arn: table::stream_arn(&client, &name)
            .await
            .map_err(StartError::from)?,
        table: name,
    };
    let deployment = Deployment::load(
        &crate::stack::deployment::default_translation_dir(),
        template_path,
        "none",
        local,
    )
    .map_err(LambdaError::from)?;
    let spec = deployment
        .functions()
        .map_err(LambdaError::from)?
        .into_iter()
        .find(|f| f.binary == function || f.logical_id == function)
        .ok_or_else(|| BootError::UnknownFunction(function.to_owned()))?;
    let role = deployment.role(&spec.role).map_err(LambdaError::from)?;
    let principal = Principal {
        function: spec.binary.clone(),
        session: role.session_arn(&spec.name),
        policies: role.policies().cloned().collect(),
    };
    let proxy = IamProxy::start(
        endpoint,
        table::LOCAL_ACCESS_KEY,
        HashMap::from([(access_key(&spec), principal)]),
        KeySchema::of(&template.table),
        deployment.local().clone(),
        Arc::new(AccessLog::default()),
    )
    .await
    .map_err(StartError::from)?;
    let dir = std::env::current_dir().map_err(StartError::from)?;
    let traces = crate::otlp::TraceReceiver::start(None)
        .await
        .map_err(StartError::from)?;
    let launch = Launch {
        name: spec.binary.clone(),
        arn: spec.arn(),
        command,
        env: environment(&spec, &dir, &proxy.url(), &traces.endpoint()),
        dir,
        init_timeout: timeout,
        output: None,
        kept_lines: None,
        cpu: None,
    };
    let failed = |failure: String| BootError::Failed {
        function: function.to_owned(),
        failure,
    };
    let route = template.routes.iter().find(|r| r.function == spec.binary);
    let event = match route {
        Some(route) => {
            let event =
                crate::gateway::server::synthetic_event(route, &ulid::Ulid::new().to_string())
                    .ok_or_else(|| failed("cannot build an event for its route".to_owned()))?;
            serde_json::to_vec(&event).map_err(|e| failed(e.to_string()))?
        }
        None => br#"{"Records":[]}"#.to_vec(),
    };
    let mut instance = launch.start().await.map_err(|e| failed(e.to_string()))?;
    let outcome = instance
        .invoke(event.into(), timeout)
        .await
        .map_err(|e| failed(e.to_string()));
    let init = instance.init;
    instance.stop().await;
    let outcome = outcome?;
    let body = String::from_utf8_lossy(&outcome.body).into_owned();
    if outcome.failed {
        return Err(failed(format!("answered with an error: {body}")));
    }
    let status = match route {
        Some(_) => {
            let status = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["statusCode"].as_u64())
                .ok_or_else(|| failed(format!("not a proxy response: {body}")))?;
            if status >= 500 {
                return Err(failed(format!("answered {status}: {body}")));
            }
            format!("HTTP {status}")
        }
        None => body,
    };
    Ok(format!(
        "{function}: init {:.1} ms, answered {status} in {:.1} ms",
        init.as_secs_f64() * 1000.0,
        outcome.duration.as_secs_f64() * 1000.0
    ))
}
