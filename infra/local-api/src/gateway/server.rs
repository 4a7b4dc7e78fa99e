//! The local stand-in for API Gateway: an HTTP server whose routes come from
//! the template, turning each request into the API Gateway HTTP API event a
//! deployed function receives and handing it to that function: its `handle`
//! in-process, or (in `--lambda` mode) its own process, whose answer is
//! read as API Gateway reads a Lambda proxy response.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request as HttpRequest};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{MethodFilter, MethodRouter, on};
use common::lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest,
};
use common::lambda_http::request::LambdaRequest;
use common::lambda_http::{Body, Request, Response};
use common::testing::ApiGatewayEvent;
use storage::Store;
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::net::TcpListener;

use super::auth::{Authorizer, Denied};
use crate::lambda::instance::Failure;
use crate::lambda::pool::FunctionPool;
use crate::stack::template::Route;

/// API Gateway's own limit on an HTTP API request body.
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// A function's `handle`, as the local API calls it.
pub type Handler =
    for<'a> fn(&'a dyn Store, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// Every function the local API can serve, by binary name.
pub const HANDLERS: &[(&str, Handler)] = &[
    ("create-user", |store, request| {
        Box::pin(create_user::handle(store, request))
    }),
    ("get-user", |store, request| {
        Box::pin(get_user::handle(store, request))
    }),
    ("list-users", |store, request| {
        Box::pin(list_users::handle(store, request))
    }),
    ("update-user", |store, request| {
        Box::pin(update_user::handle(store, request))
    }),
    ("delete-user", |store, request| {
        Box::pin(delete_user::handle(store, request))
    }),
    ("list-user-events", |store, request| {
        Box::pin(list_user_events::handle(store, request))
    }),
];

/// A route names a function the local API does not have.
#[derive(Debug, thiserror::Error)]
#[error("route {route} is served by {function}, which the local API has no handler for")]
pub struct UnknownFunction {
    route: String,
    function: String,
}

/// How the routes' functions run.
#[derive(Clone)]
pub enum Backend {
    /// In this process, over one store.
    InProcess(Arc<dyn Store>),
    /// As their own processes, by binary name.
    Lambda(BTreeMap<String, Arc<FunctionPool>>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::InProcess(_) => f.write_str("InProcess"),
            Backend::Lambda(pools) => f.debug_tuple("Lambda").field(&pools.keys()).finish(),
        }
    }
}

#[derive(Clone)]
enum Call {
    InProcess(Handler, Arc<dyn Store>),
    Lambda(Arc<FunctionPool>),
}

#[derive(Clone)]
struct Target {
    route_key: Arc<str>,
    call: Call,
    /// The JWT authorizer and the route's scopes; `None`: the API is open.
    auth: Option<(Arc<Authorizer>, Arc<[String]>)>,
}

/// The router for `routes`, each served by its function on `backend`.
/// Anything else answers as API Gateway does: 404 `{"message":"Not Found"}`.
pub fn router(
    routes: &[Route],
    backend: &Backend,
    authorizer: Option<Arc<Authorizer>>,
) -> Result<Router, UnknownFunction> {
    let mut paths: BTreeMap<&str, MethodRouter> = BTreeMap::new();
    for route in routes {
        let unknown = || UnknownFunction {
            route: route.key(),
            function: route.function.clone(),
        };
        let call = match backend {
            Backend::InProcess(store) => HANDLERS
                .iter()
                .find(|(name, _)| *name == route.function)
                .map(|(_, handler)| Call::InProcess(*handler, Arc::clone(store))),
            Backend::Lambda(pools) => pools.get(&route.function).cloned().map(Call::Lambda),
        }
        .ok_or_else(unknown)?;
        let method = Method::from_bytes(route.method.as_bytes()).ok();
        let filter = method
            .and_then(|m| MethodFilter::try_from(m).ok())
            .ok_or_else(unknown)?;
        let target = Target {
            route_key: route.key().into(),
            call,
            auth: authorizer
                .as_ref()
                .map(|a| (Arc::clone(a), route.scopes.clone().into())),
        };
        let method_router = on(
            filter,
            move |params: Option<Path<HashMap<String, String>>>, request: HttpRequest| {
                invoke(
                    target.clone(),
                    params.map(|Path(p)| p).unwrap_or_default(),
                    request,
                )
            },
        );
        let entry = paths.remove(route.path.as_str()).unwrap_or_default();
        paths.insert(route.path.as_str(), entry.merge(method_router));
    }
    let router = paths
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods.fallback(not_found))
        });
    Ok(router.fallback(not_found))
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn not_found() -> HttpResponse {
    gateway_error(StatusCode::NOT_FOUND, "Not Found")
}

/// An error written by the local API itself, not by a function, in API
/// Gateway's words, with the security headers every function response
/// carries.
fn gateway_error(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response();
    for (name, value) in common::http::SECURITY_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Makes every header value text, as it must be in the event's JSON.
///
/// HTTP/1.1 allows bytes 0x80-0xFF in a field value (`obs-text`, RFC 9110
/// §5.5), but the payload format 2.0 event carries headers as JSON
/// strings, so API Gateway has to read those bytes as some charset. AWS
/// documents none, and no authoritative account was found (what
/// aws-lambda-rust-runtime's issues show is an ALB passing a `\xEE` escape,
/// which is not JSON at all: lambda_http then fails to read the event,
/// issue #509). The local API picks the closest defensible reading: a value
/// that is valid UTF-8 passes unchanged (as non-ASCII UTF-8 always has, in
/// both modes); any other value is read as ISO-8859-1, byte for character,
/// the charset RFC 9110 §5.5 names as the historical one for field text and
/// the one many proxies decode header bytes with. So `caf\xE9` reaches the
/// function as `café`, in-process and in `--lambda` mode alike, where
/// before `--lambda` could not write the event and answered 500.
fn headers_as_text(headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        if std::str::from_utf8(value.as_bytes()).is_err() {
            let text: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
            if let Ok(decoded) = HeaderValue::from_str(&text) {
                *value = decoded;
            }
        }
    }
}

/// Whether the `Host` and `X-Forwarded-Proto` headers make a URL, as the
/// function's runtime builds one from them (a malformed one would make it
/// panic): a valid authority, and `http` or `https`.
fn well_formed_origin(headers: &HeaderMap, path: &str) -> bool {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().ok());
    let proto = match text("x-forwarded-proto") {
        None => "https",
        Some(Some(proto @ ("http" | "https"))) => proto,
        Some(_) => return false,
    };
    match text("host") {
        None => true,
        Some(None) => false,
        Some(Some(host)) => {
            host.parse::<axum::http::uri::Authority>()
                .is_ok_and(|authority| authority.as_str() == host && !host.contains('@'))
                && reqwest::Url::parse(&format!("{proto}://{host}{path}")).is_ok()
        }
    }
}

async fn invoke(
    target: Target,
    path_parameters: HashMap<String, String>,
    request: HttpRequest,
) -> HttpResponse {
    let request_id = ulid::Ulid::new().to_string();
    let source_ip = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string());
    let (mut parts, body) = request.into_parts();
    headers_as_text(&mut parts.headers);
    if !well_formed_origin(&parts.headers, parts.uri.path()) {
        return gateway_error(StatusCode::BAD_REQUEST, "Bad Request");
    }
    let accepted = match &target.auth {
        None => None,
        Some((authorizer, scopes)) => {
            let authorization = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match authorizer.check(authorization, scopes).await {
                Ok(accepted) => Some(accepted),
                Err(Denied::Unauthorized) => {
                    return gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized");
                }
                Err(Denied::Forbidden) => return gateway_error(StatusCode::FORBIDDEN, "Forbidden"),
            }
        }
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let mut event = event(
        &target.route_key,
        &request_id,
        source_ip,
        &parts,
        path_parameters,
        body,
    );
    if let Some(accepted) = accepted {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = accepted.claims;
        jwt.scopes = Some(accepted.scopes);
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        event.request_context.authorizer = Some(authorizer);
    }
    let mut response = match &target.call {
        Call::InProcess(handler, store) => {
            let response = handler(store.as_ref(), LambdaRequest::ApiGatewayV2(event).into()).await;
            let (parts, body) = response.into_parts();
            HttpResponse::from_parts(parts, axum::body::Body::from(body.to_vec()))
        }
        Call::Lambda(pool) => invoke_lambda(pool, &event).await,
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    response
}

/// Invokes the function's process with `event` and answers as API Gateway
/// does: the function's proxy response, or API Gateway's own error when the
/// function failed (500 for an error, crash, timeout or malformed
/// response; 503 when no instance became free within the integration
/// timeout). Every such error is logged here with its cause.
async fn invoke_lambda(pool: &FunctionPool, event: &ApiGatewayV2httpRequest) -> HttpResponse {
    let internal = || gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    let payload = match serde_json::to_vec(event) {
        Ok(payload) => payload,
        Err(error) => {
            tracing::error!(
                function = pool.name(),
                status = 500,
                error = %common::error::chain(&error),
                "the request could not be written as a Lambda event"
            );
            return internal();
        }
    };
    match pool.invoke(payload.into()).await {
        Ok(outcome) if !outcome.failed => proxy_response(&outcome.body).unwrap_or_else(|| {
            tracing::error!(
                function = pool.name(),
                status = 500,
                "malformed Lambda proxy response"
            );
            internal()
        }),
        Ok(outcome) => {
            tracing::error!(
                function = pool.name(),
                status = 500,
                error = %String::from_utf8_lossy(&outcome.body),
                "the function returned an error"
            );
            internal()
        }
        Err(failure) => {
            let (status, message) = match failure {
                Failure::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
                Failure::Init(_)
                | Failure::Crashed(_)
                | Failure::TimedOut(_)
                | Failure::Extension(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                }
            };
            tracing::error!(
                function = pool.name(),
                status = status.as_u16(),
                error = %common::error::chain(&failure),
                "the invocation failed"
            );
            gateway_error(status, message)
        }
    }
}

/// Reads a Lambda proxy response (payload format 2.0). A JSON answer
/// without `statusCode` is the body of a 200, as API Gateway infers it.
fn proxy_response(body: &[u8]) -> Option<HttpResponse> {
    use base64::Engine as _;
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let Some(status) = value.get("statusCode") else {
        return Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_vec(),
            )
                .into_response(),
        );
    };
    let status = StatusCode::from_u16(u16::try_from(status.as_u64()?).ok()?).ok()?;
    let mut response = HttpResponse::builder().status(status);
    for (name, value) in value["headers"].as_object().into_iter().flatten() {
        response = response.header(name, value.as_str()?);
    }
    for (name, values) in value["multiValueHeaders"].as_object().into_iter().flatten() {
        for value in values.as_array()? {
            response = response.header(name, value.as_str()?);
        }
    }
    for cookie in value["cookies"].as_array().into_iter().flatten() {
        response = response.header(header::SET_COOKIE, cookie.as_str()?);
    }
    let text = value["body"].as_str().unwrap_or_default();
    let bytes = if value["isBase64Encoded"].as_bool().unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?
    } else {
        text.as_bytes().to_vec()
    };
    response.body(axum::body::Body::from(bytes)).ok()
}

/// The event of a request to `route` with every path parameter set to
/// `value` and no body, as a smoke test sends one.
pub(crate) fn synthetic_event(route: &Route, value: &str) -> Option<ApiGatewayV2httpRequest> {
    let mut parameters = HashMap::new();
    let mut path = String::new();
    for segment in route.path.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                parameters.insert(name.to_owned(), value.to_owned());
                path.push_str(value);
            }
            None => path.push_str(segment),
        }
    }
    let (parts, ()) = axum::http::Request::builder()
        .method(route.method.as_str())
        .uri(&path)
        .header(header::HOST, "localhost")
        .body(())
        .ok()?
        .into_parts();
    Some(event(
        &route.key(),
        "boot",
        None,
        &parts,
        parameters,
        Bytes::new(),
    ))
}

/// The API Gateway HTTP API (payload format 2.0) event for a request, as
/// API Gateway makes it: the shared builder's, with this API's context.
fn event(
    route_key: &str,
    request_id: &str,
    source_ip: Option<String>,
    parts: &axum::http::request::Parts,
    path_parameters: HashMap<String, String>,
    body: Bytes,
) -> ApiGatewayV2httpRequest {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut event = ApiGatewayEvent::new(route_key, path)
        .path_parameters(path_parameters)
        .headers(&parts.headers)
        .raw_body(&body)
        .event();
    // Header values are text by now (see `headers_as_text`), non-ASCII
    // included, which `HeaderValue::to_str` would refuse.
    let text = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .map(str::to_owned)
    };
    let http = &mut event.request_context.http;
    http.protocol = Some(format!("{:?}", parts.version));
    http.source_ip = source_ip;
    http.user_agent = text(header::USER_AGENT);
    let context = &mut event.request_context;
    context.account_id = Some("000000000000".to_owned());
    context.apiid = Some("local".to_owned());
    context.request_id = Some(request_id.to_owned());
    context.domain_name = text(header::HOST);
    context.domain_prefix = None;
    context.time = OffsetDateTime::now_utc()
        .format(format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .ok();
    context.time_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_value_outside_utf8_is_read_as_latin1_and_utf8_passes_unchanged() {
        let mut headers = HeaderMap::new();
        let raw = |bytes: &[u8]| HeaderValue::from_bytes(bytes).unwrap_or_else(|e| panic!("{e}"));
        headers.insert("x-latin1", raw(b"caf\xe9"));
        headers.insert("x-utf8", raw("caf\u{e9}".as_bytes()));
        headers.insert("x-ascii", raw(b"plain"));
        headers_as_text(&mut headers);
        let text = |name: &str| headers.get(name).map(|v| v.as_bytes().to_vec());
        assert_eq!(text("x-latin1"), Some("caf\u{e9}".as_bytes().to_vec()));
        assert_eq!(text("x-utf8"), Some("caf\u{e9}".as_bytes().to_vec()));
        assert_eq!(text("x-ascii"), Some(b"plain".to_vec()));
    }
}
