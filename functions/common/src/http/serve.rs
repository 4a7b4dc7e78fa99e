//! Serving one request: the time budget, what API Gateway says about the
//! caller, the request's span, and the one log line (also the request's
//! metrics).

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::http::Response;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use traces::{FutureExt, TraceContext};
use tracing::Instrument;

use super::request::path_id;
use super::response::{add_default_headers, problem};
use crate::domain::UserId;
use crate::error::ApiError;
use telemetry::{dynamodb_calls, metrics};

/// Longest a request may run before it answers 503 itself: under the
/// template's 6 s function timeout, so the client always gets our problem
/// document and `Retry-After`, never API Gateway's bare 503/504.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(5);
/// Kept free before the invocation's deadline to write the response.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// Runs a handler's work for `request` and turns its result into the
/// response: problem documents for errors, security headers on everything,
/// and one structured log line, which is also the request's CloudWatch
/// metrics (an EMF document, see [`telemetry::metrics`]). On Lambda, the work
/// runs inside the invocation's `SERVER` span (see [`traces`]), and every
/// line it logs carries the span's trace id.
pub async fn serve<F>(request: &Request, work: F) -> Response<Body>
where
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let context = start_span(request);
    let log_span = tracing::info_span!(
        telemetry::log::TRACE_SPAN,
        trace_id = traces::trace_id(&context)
    );
    let response = respond(request, work)
        .instrument(log_span)
        .with_context(context.clone())
        .await;
    traces::end_invocation(&context, Some(response.status().as_u16()), false);
    response
}

/// The invocation's `SERVER` span, named and described by its route
/// (`GET /users/{id}`) as the HTTP server conventions ask; an empty context
/// where there are no traces (off Lambda) or no invocation.
fn start_span(request: &Request) -> TraceContext {
    let (Some(traces), Some(lambda)) = (traces::current(), request.lambda_context_ref()) else {
        return TraceContext::new();
    };
    let route = gateway(request).route;
    let method = request.method().as_str().to_owned();
    let mut attributes = vec![
        traces::KeyValue::new("faas.trigger", "http"),
        traces::KeyValue::new("http.request.method", method.clone()),
    ];
    // The route key is `METHOD /path/{id}`; `http.route` is its path.
    let path = route.split_once(' ').map_or(route, |(_, path)| path);
    if !path.is_empty() {
        attributes.push(traces::KeyValue::new("http.route", path.to_owned()));
    }
    let name = if route.is_empty() {
        method
    } else {
        route.to_owned()
    };
    traces.start_invocation(
        name,
        traces::SpanKind::Server,
        &traces::Invocation {
            request_id: &lambda.request_id,
            function_arn: &lambda.invoked_function_arn,
            xray_trace_id: lambda.xray_trace_id.as_deref(),
        },
        Some(request.headers()),
        attributes,
    )
}

async fn respond<F>(request: &Request, work: F) -> Response<Body>
where
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let Gateway {
        request_id,
        route,
        actor,
    } = gateway(request);
    // A request that bypassed the edge runs none of the handler's work.
    let work = async {
        super::origin::check(request)?;
        work.await
    };
    let (result, calls) = dynamodb_calls::measure(within_budget(request, work)).await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::error!(request_id, error = %crate::error::chain(&error), "request failed");
            }
            problem(&error, request_id)
        }
    };
    add_default_headers(response.headers_mut());
    let user_id = response
        .extensions()
        .get::<UserId>()
        .copied()
        .or_else(|| path_id(request).ok());
    let latency = started.elapsed();
    let emf = metrics::request(route, response.status(), latency, &calls);
    tracing::info!(
        target: metrics::LOG_TARGET,
        request_id,
        method = %request.method(),
        route,
        status = response.status().as_u16(),
        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        user_id = user_id.map(tracing::field::display),
        actor,
        emf = emf.to_json().as_str(),
        "request"
    );
    response
}

/// Runs `work` for at most [`REQUEST_BUDGET`], and never past the
/// invocation's deadline less [`DEADLINE_MARGIN`]; past that, the work is
/// dropped and the request answers 503. A write it dropped either happened
/// or did not (each is one DynamoDB call or transaction), never half.
async fn within_budget<F>(request: &Request, work: F) -> Result<Response<Body>, ApiError>
where
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let budget = request
        .lambda_context_ref()
        .and_then(|context| context.deadline().duration_since(SystemTime::now()).ok())
        .map_or(REQUEST_BUDGET, |left| {
            left.saturating_sub(DEADLINE_MARGIN).min(REQUEST_BUDGET)
        });
    tokio::time::timeout(budget, work)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Unavailable(
                format!("request ran out of its {} ms budget", budget.as_millis()).into(),
            ))
        })
}

/// What API Gateway says about a request: its id, its route key
/// (`GET /users/{id}`) and the caller its JWT authorizer accepted.
struct Gateway<'r> {
    request_id: &'r str,
    route: &'r str,
    actor: Option<&'r str>,
}

fn gateway(request: &Request) -> Gateway<'_> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => Gateway {
            request_id: context.request_id.as_deref().unwrap_or_default(),
            route: context.route_key.as_deref().unwrap_or_default(),
            actor: actor_of(context),
        },
        _ => Gateway {
            request_id: "",
            route: "",
            actor: None,
        },
    }
}

/// The caller: the verified token's `client_id` (machine clients) or `sub`.
/// Only the authorizer's claims count, never a header the client sets.
fn actor_of(context: &ApiGatewayV2httpRequestContext) -> Option<&str> {
    let claims = &context.authorizer.as_ref()?.jwt.as_ref()?.claims;
    claims
        .get("client_id")
        .or_else(|| claims.get("sub"))
        .map(String::as_str)
}

/// The caller of `request`, as its JWT authorizer accepted it.
pub fn actor(request: &Request) -> Option<&str> {
    gateway(request).actor
}
