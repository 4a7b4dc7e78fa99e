//! Lambda's `Invoke` API for the local functions, as `aws lambda invoke
//! --endpoint-url` and the SDKs call it: `POST
//! /2015-03-31/functions/{FunctionName}/invocations`, the payload as the
//! event, the function's answer as the body. A function error (posted to
//! the runtime's `/error`, a crash or a timeout) is still `200`, marked by
//! `X-Amz-Function-Error: Unhandled` as Lambda marks it. The caller is not
//! authorised (locally the operator is trusted); only synchronous
//! invocations (`RequestResponse`, the default) and `DryRun` are served.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::pool::FunctionPool;
use crate::stack::deployment::FunctionSpec;

/// The functions by every name `Invoke` accepts for them.
#[derive(Debug, Clone, Default)]
pub struct Invocable {
    by_name: BTreeMap<String, Arc<FunctionPool>>,
}

impl Invocable {
    /// Adds `function`, run by `pool`, under its name, logical id and
    /// binary.
    pub fn add(&mut self, function: &FunctionSpec, pool: &Arc<FunctionPool>) {
        for name in [&function.name, &function.logical_id, &function.binary] {
            self.by_name.insert(name.clone(), Arc::clone(pool));
        }
    }

    /// The function `FunctionName` names: a name, or an ARN (full or
    /// partial, `123456789012:function:name`), with or without a qualifier.
    pub fn find(&self, function_name: &str) -> Option<&Arc<FunctionPool>> {
        let name = match function_name.rsplit_once("function:") {
            Some((_, rest)) => rest,
            None => function_name,
        };
        let name = name.split_once(':').map_or(name, |(name, _qualifier)| name);
        self.by_name.get(name)
    }

    /// The `Invoke` route.
    pub fn router(self) -> Router {
        Router::new()
            .route("/2015-03-31/functions/{function}/invocations", post(invoke))
            .with_state(Arc::new(self))
    }
}

async fn invoke(
    State(functions): State<Arc<Invocable>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    let Some(pool) = functions.find(&function) else {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {function}"),
        );
    };
    match headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
    {
        "RequestResponse" => {}
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("the local Invoke API serves RequestResponse and DryRun, not {other}"),
            );
        }
    }
    if !payload.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        );
    }
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    let (body, failed) = match pool.invoke(payload).await {
        Ok(outcome) => (outcome.body, outcome.failed),
        Err(failure) => (
            Bytes::from(
                json!({"errorMessage": failure.to_string(), "errorType": "Runtime.Unhandled"})
                    .to_string(),
            ),
            true,
        ),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    if failed {
        headers.insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    response
}

fn error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let mut response = (
        status,
        json!({"Type": "User", "message": message}).to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(kind));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_found_by_name_arn_or_partial_arn_with_or_without_qualifier() {
        let mut functions = Invocable::default();
        let pool = Arc::new(FunctionPool::new(
            super::super::instance::Launch {
                name: "history-worker".to_owned(),
                arn: String::new(),
                command: Vec::new(),
                dir: std::path::PathBuf::new(),
                env: Vec::new(),
                init_timeout: std::time::Duration::from_secs(1),
                output: None,
                kept_lines: None,
                cpu: None,
            },
            std::time::Duration::from_secs(1),
            1,
        ));
        functions
            .by_name
            .insert("local-HistoryWorkerFunction".to_owned(), pool);
        for name in [
            "local-HistoryWorkerFunction",
            "local-HistoryWorkerFunction:live",
            "arn:aws:lambda:us-east-1:123456789012:function:local-HistoryWorkerFunction",
            "arn:aws:lambda:us-east-1:123456789012:function:local-HistoryWorkerFunction:7",
            "123456789012:function:local-HistoryWorkerFunction",
        ] {
            assert!(functions.find(name).is_some(), "{name}");
        }
        assert!(functions.find("local-GetUserFunction").is_none());
    }
}
