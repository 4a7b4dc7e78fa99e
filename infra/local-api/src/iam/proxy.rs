//! A proxy in front of the local DynamoDB that enforces each function's
//! role. Every function process gets its own access key; the proxy knows
//! from the request's signature which function is calling, works out what
//! the request needs (see [`super::dynamodb`]) and evaluates that against
//! the function's policies. A refusal gets DynamoDB's own answer (HTTP 400,
//! `AccessDeniedException`); anything allowed is passed on unchanged but
//! for the access key, which becomes the one the local table lives under
//! (DynamoDB Local keeps tables per access key and does not check
//! signatures).
//!
//! It fails closed: a request it cannot read exactly as DynamoDB reads it
//! (an odd body, see [`super::body`]; an operation spelt other than
//! DynamoDB spells it; a parameter outside what [`super::dynamodb`] reads)
//! is refused with DynamoDB's error for it (`SerializationException`,
//! `UnknownOperationException`, `ValidationException`), logged, and
//! recorded as refused with the reason; it is never passed on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::body::read as read_body;
use super::coverage::AccessLog;
use super::dynamodb::{self, KeySchema, Refusal, RequestError, authorizations};
use super::{Decision, Policy, conditioned, decide};
use crate::dynamodb::wire;
use crate::loopback::LoopbackServer;
use crate::stack::deployment::LocalResources;

/// Who a function acts as.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The function's binary name.
    pub function: String,
    /// Its role session's ARN, as AWS names it in a refusal.
    pub session: String,
    /// Its role's policies.
    pub policies: Vec<Policy>,
}

impl Principal {
    /// Decides `request` and records the decision in `log`.
    pub fn authorize(
        &self,
        request: &super::Authorization,
        log: &AccessLog,
        local: &LocalResources,
    ) -> Decision {
        let decision = decide(&self.policies, request);
        log.record(&self.function, request, &decision, local);
        decision
    }
}

struct Shared {
    upstream: String,
    upstream_key: String,
    client: reqwest::Client,
    principals: HashMap<String, Principal>,
    keys: KeySchema,
    local: LocalResources,
    log: Arc<AccessLog>,
    /// The stream each shard iterator handed out reads.
    iterators: Mutex<HashMap<String, String>>,
}

/// The running proxy.
#[derive(Debug)]
pub struct IamProxy {
    server: LoopbackServer,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl IamProxy {
    /// Starts the proxy on a free loopback port, in front of the DynamoDB
    /// at `upstream` whose tables live under `upstream_key`. `principals`
    /// maps each access key to the function that holds it.
    pub async fn start(
        upstream: &str,
        upstream_key: &str,
        principals: HashMap<String, Principal>,
        keys: KeySchema,
        local: LocalResources,
        log: Arc<AccessLog>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            upstream_key: upstream_key.to_owned(),
            client: reqwest::Client::new(),
            principals,
            keys,
            local,
            log,
            iterators: Mutex::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared);
        Ok(Self {
            server: LoopbackServer::start(router).await?,
        })
    }

    /// The URL functions use as their DynamoDB endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.address())
    }
}

/// The access key of a SigV4 `Authorization` header.
fn access_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = value.split("Credential=").nth(1)?;
    credential.split('/').next()
}

fn dynamodb_error(kind: &str, message: &str) -> Response {
    wire::error(
        StatusCode::BAD_REQUEST,
        &format!("com.amazon.coral.service#{kind}"),
        message,
        Value::Null,
    )
}

/// Refuses a request the proxy could not read as DynamoDB reads it: logs
/// it, records it (as refused, with the reason) and answers as DynamoDB
/// answers such a request.
fn refuse(
    shared: &Shared,
    principal: &Principal,
    action: &str,
    resource: &str,
    error: &RequestError,
) -> Response {
    tracing::warn!(
        function = %principal.function,
        action,
        resource,
        reason = %error.message,
        "IAM proxy refused a request it cannot read as DynamoDB does"
    );
    shared.log.refuse(
        &principal.function,
        action,
        resource,
        &error.message,
        &shared.local,
    );
    wire::error(
        StatusCode::BAD_REQUEST,
        error.kind.error_type(),
        &error.message,
        Value::Null,
    )
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(principal) = access_key(&parts.headers).and_then(|k| shared.principals.get(k)) else {
        tracing::warn!("IAM proxy: a request with no function's access key");
        return dynamodb_error(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    };
    let targets = parts.headers.get_all("x-amz-target");
    let target = targets.iter().next().and_then(|v| v.to_str().ok());
    if targets.iter().count() > 1 {
        // DynamoDB Local runs the first; another reader might take the last.
        let error = RequestError {
            kind: Refusal::Validation,
            message: "more than one X-Amz-Target header".to_owned(),
        };
        return refuse(
            &shared,
            principal,
            target.unwrap_or("(no X-Amz-Target)"),
            "*",
            &error,
        );
    }
    let operation = match dynamodb::operation(target) {
        Ok(operation) => operation,
        Err(error) => {
            let action = target.unwrap_or("(no X-Amz-Target)");
            return refuse(&shared, principal, action, "*", &error);
        }
    };
    let action = format!("dynamodb:{operation}");
    let Ok(body) = axum::body::to_bytes(body, wire::MAX_BODY).await else {
        let error = RequestError {
            kind: Refusal::Validation,
            message: "request body too large".to_owned(),
        };
        return refuse(&shared, principal, &action, "*", &error);
    };
    let parsed = match read_body(&body) {
        Ok(map) => Value::Object(map),
        Err(error) => {
            let error = RequestError {
                kind: Refusal::Serialization,
                message: error.0,
            };
            return refuse(&shared, principal, &action, "*", &error);
        }
    };
    let needed = authorizations(operation, &parsed, &shared.keys, |iterator| {
        shared
            .iterators
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(iterator)
            .cloned()
    });
    let needed = match needed {
        Ok(needed) => needed,
        Err(error) => {
            let resource = parsed["TableName"]
                .as_str()
                .map_or_else(|| "*".to_owned(), dynamodb::table_arn);
            return refuse(&shared, principal, &action, &resource, &error);
        }
    };
    for authorization in &needed {
        if dynamodb::is_partiql(operation) && conditioned(&principal.policies, authorization) {
            let error = RequestError {
                kind: Refusal::NotAuthorisable,
                message: format!(
                    "a policy conditions {} on {}, and the IAM proxy does not read the partition keys of a PartiQL statement",
                    authorization.action, authorization.resource
                ),
            };
            return refuse(
                &shared,
                principal,
                &authorization.action,
                &authorization.resource,
                &error,
            );
        }
        let decision = principal.authorize(authorization, &shared.log, &shared.local);
        if !decision.allowed() {
            let why = match decision {
                Decision::ExplicitDeny => {
                    "with an explicit deny in an identity-based policy".to_owned()
                }
                _ => format!(
                    "because no identity-based policy allows the {} action",
                    authorization.action
                ),
            };
            tracing::warn!(
                function = %principal.function,
                action = %authorization.action,
                resource = %authorization.resource,
                "IAM: access denied"
            );
            return dynamodb_error(
                "AccessDeniedException",
                &format!(
                    "User: {} is not authorized to perform: {} on resource: {} {why}",
                    principal.session, authorization.action, authorization.resource
                ),
            );
        }
    }
    forward(&shared, &parts.headers, operation, &parsed, body).await
}

/// Passes the request on under the access key the local table lives
/// under, and notes the stream of any shard iterator in the answer.
async fn forward(
    shared: &Shared,
    headers: &HeaderMap,
    operation: &str,
    parsed: &Value,
    body: Bytes,
) -> Response {
    let mut outgoing = wire::outgoing(headers);
    let rewritten = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .zip(access_key(headers))
        .and_then(|(text, key)| {
            HeaderValue::from_str(&text.replacen(
                &format!("Credential={key}/"),
                &format!("Credential={}/", shared.upstream_key),
                1,
            ))
            .ok()
        });
    match rewritten {
        Some(value) => outgoing.insert(header::AUTHORIZATION, value),
        None => outgoing.remove(header::AUTHORIZATION),
    };
    match wire::send(&shared.client, &shared.upstream, outgoing, body).await {
        Ok(answer) => {
            if answer.status.is_success() {
                remember_iterators(shared, operation, parsed, &answer.body);
            }
            answer.into_response()
        }
        Err(response) => response,
    }
}

/// Notes which stream the iterators in a Streams API answer read, so a
/// later `GetRecords` can be authorised on its stream.
fn remember_iterators(shared: &Shared, operation: &str, request: &Value, answer: &[u8]) {
    let (field, stream) = match operation {
        "GetShardIterator" => (
            "ShardIterator",
            request["StreamArn"].as_str().map(str::to_owned),
        ),
        "GetRecords" => {
            let iterators = shared
                .iterators
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let stream = request["ShardIterator"]
                .as_str()
                .and_then(|i| iterators.get(i))
                .cloned();
            ("NextShardIterator", stream)
        }
        _ => return,
    };
    let Some(stream) = stream else { return };
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return;
    };
    if let Some(iterator) = answer[field].as_str() {
        let mut iterators = shared
            .iterators
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(previous) = request["ShardIterator"].as_str() {
            iterators.remove(previous);
        }
        iterators.insert(iterator.to_owned(), stream);
    }
}
