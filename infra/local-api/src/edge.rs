//! `--edge`: the rules of template.yaml's edge (`Edge=cloudfront`: a
//! CloudFront distribution with a WAF web ACL in front of the HTTP API)
//! applied in front of the local API, as far as they can be emulated.
//!
//! What it emulates, each next to what it follows:
//! - the web ACL's rate-based rules (`EdgeWebAcl`), in priority order, with
//!   their keys (an `Authorization` header value, or the client address),
//!   limits and windows taken from the template's parameters. WAF counts
//!   approximately and acts within seconds ("does not guarantee an exact
//!   limit match"); here each key's requests are counted exactly over the
//!   last window, so the local limit is the stricter one. A request without
//!   a rule's custom key is not counted by that rule, as in WAF.
//! - the rules' block action: the custom response's status, headers and
//!   body (`CustomResponseBodies`), with its content type.
//! - the response-headers policy (`EdgeResponseHeadersPolicy`) on every
//!   response that leaves the edge, overriding the origin's.
//! - the origin check: the edge adds [`common::http::ORIGIN_HEADER`] with a
//!   secret made at start-up, and the API behind it, also served on its
//!   own address (the `execute-api` URL's stand-in), refuses a request
//!   without it as the functions do (403 `/problems/not-from-edge`).
//!
//! What it cannot emulate: the AWS managed rule groups, whose rules AWS
//! does not publish; [`EdgeRules::not_emulated`] names them, and the local
//! API says so at start-up.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_norway::Value;

/// The template's web ACL and response-headers policy, by logical id.
const WEB_ACL: &str = "EdgeWebAcl";
const RESPONSE_HEADERS_POLICY: &str = "EdgeResponseHeadersPolicy";

/// The template's edge could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The template could not be read or parsed.
    #[error("template: {0}")]
    Template(String),
    /// A part of the edge is missing or has an unexpected shape.
    #[error("template.yaml's edge: {0}")]
    Content(String),
}

/// What a rate-based rule counts requests by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// One count per value of this request header (`CUSTOM_KEYS`).
    Header(HeaderName),
    /// One count per client address (`IP`).
    Ip,
}

/// One rate-based rule of the web ACL.
#[derive(Debug, Clone)]
pub struct RateRule {
    /// The rule's name in the template.
    pub name: String,
    /// What it counts by.
    pub key: RateKey,
    /// Requests allowed per window.
    pub limit: usize,
    /// The window it counts over.
    pub window: Duration,
    /// What a request past the limit gets.
    pub block: BlockResponse,
}

/// A rule's custom block response.
#[derive(Debug, Clone)]
pub struct BlockResponse {
    /// Its status (429).
    pub status: StatusCode,
    /// Its headers (`retry-after`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body's content type, as WAF sends it.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// The edge's rules as template.yaml states them.
#[derive(Debug, Clone)]
pub struct EdgeRules {
    /// The rate-based rules, in priority order.
    pub rate_rules: Vec<RateRule>,
    /// The response-headers policy's headers, each overriding the origin's.
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// The rules this emulation does not apply (the managed rule groups).
    pub not_emulated: Vec<String>,
}

impl EdgeRules {
    /// Reads the edge from the template at `path`, its parameters at their
    /// defaults unless `parameters` gives them.
    pub fn load(
        path: &std::path::Path,
        parameters: &BTreeMap<String, String>,
    ) -> Result<Self, EdgeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EdgeError::Template(format!("{}: {e}", path.display())))?;
        Self::parse(&text, parameters)
    }

    /// Reads the edge from template text.
    pub fn parse(text: &str, overrides: &BTreeMap<String, String>) -> Result<Self, EdgeError> {
        let template: Value =
            serde_norway::from_str(text).map_err(|e| EdgeError::Template(e.to_string()))?;
        let mut parameters: BTreeMap<String, String> = template
            .get("Parameters")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(name, spec)| {
                Some((name.as_str()?.to_owned(), scalar(spec.get("Default")?)?))
            })
            .collect();
        for (name, value) in overrides {
            if !parameters.contains_key(name) {
                return Err(EdgeError::Content(format!("no parameter {name}")));
            }
            parameters.insert(name.clone(), value.clone());
        }
        let resolve = |value: Option<&Value>, what: &str| -> Result<String, EdgeError> {
            value
                .and_then(|v| resolved(v, &parameters))
                .ok_or_else(|| EdgeError::Content(format!("{what} is not a value or a parameter")))
        };
        let properties = |id: &str| {
            template
                .get("Resources")
                .and_then(|r| r.get(id))
                .and_then(|r| r.get("Properties"))
                .ok_or_else(|| EdgeError::Content(format!("no resource {id}")))
        };
        let acl = properties(WEB_ACL)?;
        let bodies = acl.get("CustomResponseBodies");
        let mut rules: Vec<(u64, &Value)> = acl
            .get("Rules")
            .and_then(Value::as_sequence)
            .ok_or_else(|| EdgeError::Content(format!("{WEB_ACL} has no Rules")))?
            .iter()
            .map(|rule| {
                (
                    rule.get("Priority")
                        .and_then(Value::as_u64)
                        .unwrap_or(u64::MAX),
                    rule,
                )
            })
            .collect();
        rules.sort_by_key(|(priority, _)| *priority);
        let mut rate_rules = Vec::new();
        let mut not_emulated = Vec::new();
        for (_, rule) in rules {
            let name = rule
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let statement = rule.get("Statement");
            if let Some(group) = statement.and_then(|s| s.get("ManagedRuleGroupStatement")) {
                let group = group
                    .get("Name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                not_emulated.push(format!("{name} ({group})"));
                continue;
            }
            let Some(rate) = statement.and_then(|s| s.get("RateBasedStatement")) else {
                not_emulated.push(name);
                continue;
            };
            let number = |value: String, what: &str| {
                value.parse::<u64>().map_err(|_| {
                    EdgeError::Content(format!("{name}: {what} {value} is not a number"))
                })
            };
            let limit = number(resolve(rate.get("Limit"), "Limit")?, "Limit")?;
            let window = number(
                resolve(rate.get("EvaluationWindowSec"), "EvaluationWindowSec")?,
                "EvaluationWindowSec",
            )?;
            let key = match rate.get("AggregateKeyType").and_then(Value::as_str) {
                Some("IP") => RateKey::Ip,
                Some("CUSTOM_KEYS") => {
                    let keys = rate.get("CustomKeys").and_then(Value::as_sequence);
                    let header = match keys.map(Vec::as_slice) {
                        Some([only]) => only
                            .get("Header")
                            .and_then(|h| h.get("Name"))
                            .and_then(Value::as_str),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        EdgeError::Content(format!("{name}: only one header key is emulated"))
                    })?;
                    RateKey::Header(
                        HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
                            .map_err(|e| EdgeError::Content(format!("{name}: {e}")))?,
                    )
                }
                other => {
                    return Err(EdgeError::Content(format!(
                        "{name}: key {other:?} is not emulated"
                    )));
                }
            };
            let custom = rule
                .get("Action")
                .and_then(|a| a.get("Block"))
                .and_then(|b| b.get("CustomResponse"))
                .ok_or_else(|| {
                    EdgeError::Content(format!("{name} has no custom block response"))
                })?;
            let status = number(
                resolve(custom.get("ResponseCode"), "ResponseCode")?,
                "ResponseCode",
            )?;
            let mut headers = Vec::new();
            for item in custom
                .get("ResponseHeaders")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let header_name = resolve(item.get("Name"), "a response header's Name")?;
                let value = resolve(item.get("Value"), "a response header's Value")?;
                headers.push(header(&header_name, &value)?);
            }
            let key_name = resolve(custom.get("CustomResponseBodyKey"), "CustomResponseBodyKey")?;
            let body = bodies
                .and_then(|b| b.get(key_name.as_str()))
                .ok_or_else(|| EdgeError::Content(format!("no response body {key_name}")))?;
            let content_type = match body.get("ContentType").and_then(Value::as_str) {
                Some("APPLICATION_JSON") => "application/json",
                Some("TEXT_HTML") => "text/html",
                _ => "text/plain",
            };
            rate_rules.push(RateRule {
                key,
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
                window: Duration::from_secs(window),
                block: BlockResponse {
                    status: StatusCode::from_u16(u16::try_from(status).unwrap_or(0))
                        .map_err(|e| EdgeError::Content(format!("{name}: {e}")))?,
                    headers,
                    content_type,
                    body: resolve(body.get("Content"), "a response body's Content")?,
                },
                name,
            });
        }
        Ok(Self {
            rate_rules,
            response_headers: response_headers(properties(RESPONSE_HEADERS_POLICY)?)?,
            not_emulated,
        })
    }
}

/// The policy's headers, as CloudFront writes them on responses.
fn response_headers(policy: &Value) -> Result<Vec<(HeaderName, HeaderValue)>, EdgeError> {
    let config = policy
        .get("ResponseHeadersPolicyConfig")
        .ok_or_else(|| EdgeError::Content("no ResponseHeadersPolicyConfig".to_owned()))?;
    let security = config.get("SecurityHeadersConfig");
    let field = |path: &[&str]| {
        path.iter()
            .try_fold(security?, |v, key| v.get(*key))
            .and_then(scalar)
    };
    let mut headers = Vec::new();
    if let Some(max_age) = field(&["StrictTransportSecurity", "AccessControlMaxAgeSec"]) {
        let mut value = format!("max-age={max_age}");
        if field(&["StrictTransportSecurity", "IncludeSubdomains"]).as_deref() == Some("true") {
            value.push_str("; includeSubDomains");
        }
        if field(&["StrictTransportSecurity", "Preload"]).as_deref() == Some("true") {
            value.push_str("; preload");
        }
        headers.push(header("strict-transport-security", &value)?);
    }
    if security.and_then(|s| s.get("ContentTypeOptions")).is_some() {
        headers.push(header("x-content-type-options", "nosniff")?);
    }
    if let Some(option) = field(&["FrameOptions", "FrameOption"]) {
        headers.push(header("x-frame-options", &option)?);
    }
    if let Some(policy) = field(&["ReferrerPolicy", "ReferrerPolicy"]) {
        headers.push(header("referrer-policy", &policy)?);
    }
    if let Some(csp) = field(&["ContentSecurityPolicy", "ContentSecurityPolicy"]) {
        headers.push(header("content-security-policy", &csp)?);
    }
    let custom = config
        .get("CustomHeadersConfig")
        .and_then(|c| c.get("Items"))
        .and_then(Value::as_sequence);
    for item in custom.into_iter().flatten() {
        let (Some(name), Some(value)) = (
            item.get("Header").and_then(scalar),
            item.get("Value").and_then(scalar),
        ) else {
            return Err(EdgeError::Content(
                "a custom header without Header or Value".to_owned(),
            ));
        };
        headers.push(header(&name, &value)?);
    }
    Ok(headers)
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), EdgeError> {
    Ok((
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|e| EdgeError::Content(format!("header {name}: {e}")))?,
        HeaderValue::from_str(value)
            .map_err(|e| EdgeError::Content(format!("header {name}: {e}")))?,
    ))
}

/// A plain YAML scalar as CloudFormation sees it (a string).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A scalar, or `!Ref` to a parameter resolved to its value.
fn resolved(value: &Value, parameters: &BTreeMap<String, String>) -> Option<String> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => {
            parameters.get(tagged.value.as_str()?).cloned()
        }
        Value::Mapping(mapping) if mapping.len() == 1 => {
            parameters.get(mapping.get("Ref")?.as_str()?).cloned()
        }
        other => scalar(other),
    }
}

/// A rule (its index) and the key value it counts a request under.
type CountKey = (usize, Vec<u8>);

/// The edge's running state: its rules, each key's recent requests, and
/// the secret it proves itself to the origin with.
#[derive(Debug)]
pub struct Edge {
    rules: EdgeRules,
    seen: Mutex<HashMap<CountKey, VecDeque<Instant>>>,
    secret: String,
}

impl Edge {
    /// An edge applying `rules`, with a fresh origin secret.
    pub fn new(rules: EdgeRules) -> Self {
        Self {
            rules,
            seen: Mutex::default(),
            secret: format!("{}{}", ulid::Ulid::new(), ulid::Ulid::new()),
        }
    }

    /// `router` behind the edge, and `router` as the origin alone: each
    /// refuses a request without the edge's secret.
    pub fn wrap(self, router: Router) -> (Router, Router) {
        let edge = Arc::new(self);
        let origin = router.layer(middleware::from_fn_with_state(
            Arc::clone(&edge),
            origin_check,
        ));
        let front = origin
            .clone()
            .layer(middleware::from_fn_with_state(edge, edge_filter));
        (front, origin)
    }

    /// The first rule `request` is past the limit of, counting it.
    fn blocking(&self, request: &Request, client: Option<SocketAddr>) -> Option<&RateRule> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        for (index, rule) in self.rules.rate_rules.iter().enumerate() {
            let key = match &rule.key {
                RateKey::Header(name) => match request.headers().get(name) {
                    Some(value) => value.as_bytes().to_vec(),
                    None => continue,
                },
                RateKey::Ip => match client {
                    Some(address) => address.ip().to_string().into_bytes(),
                    None => continue,
                },
            };
            let times = seen.entry((index, key)).or_default();
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= rule.window)
            {
                times.pop_front();
            }
            times.push_back(now);
            if times.len() > rule.limit {
                return Some(rule);
            }
        }
        None
    }
}

async fn edge_filter(State(edge): State<Arc<Edge>>, mut request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address);
    let mut response = match edge.blocking(&request, client) {
        Some(rule) => {
            tracing::info!(
                rule = rule.name,
                status = rule.block.status.as_u16(),
                "edge blocked a request"
            );
            let mut response = (rule.block.status, rule.block.body.clone()).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(rule.block.content_type),
            );
            for (name, value) in &rule.block.headers {
                headers.insert(name.clone(), value.clone());
            }
            response
        }
        None => {
            if let Ok(secret) = HeaderValue::from_str(&edge.secret) {
                request
                    .headers_mut()
                    .insert(HeaderName::from_static(common::http::ORIGIN_HEADER), secret);
            }
            next.run(request).await
        }
    };
    for (name, value) in &edge.rules.response_headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn origin_check(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let admitted = common::http::OriginSecret::new(&edge.secret).is_some_and(|secret| {
        secret.admits(
            request
                .headers()
                .get(common::http::ORIGIN_HEADER)
                .map(HeaderValue::as_bytes),
        )
    });
    if admitted {
        return next.run(request).await;
    }
    let problem = common::ApiError::NotFromEdge.to_problem("");
    let body = serde_json::to_string(&problem).unwrap_or_default();
    let mut response = (StatusCode::FORBIDDEN, Body::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    // As a function's 403 (common::http::serve) carries them.
    for (name, value) in common::http::SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `--edge`: puts template.yaml's edge in front of `api`, with the API
/// alone on `origin_address`, and says at start-up what it leaves out.
pub async fn put_in_front(
    api: crate::LocalApi,
    template: &std::path::Path,
    origin_address: SocketAddr,
) -> Result<crate::LocalApi, Box<dyn std::error::Error>> {
    let rules = EdgeRules::load(template, &BTreeMap::new())?;
    for rule in &rules.rate_rules {
        tracing::info!(
            rule = rule.name,
            key = ?rule.key,
            limit = rule.limit,
            window_s = rule.window.as_secs(),
            "edge: rate-based rule (counted exactly per window, stricter than WAF)"
        );
    }
    for rule in &rules.not_emulated {
        tracing::warn!(rule, "edge: managed rule group not emulated locally");
    }
    let api = api.with_edge(Edge::new(rules), origin_address).await?;
    if let Some(origin) = api.origin_addr() {
        tracing::info!(origin = %format!("http://{}", origin?), "edge: the API behind it, refusing requests that did not pass it");
    }
    Ok(api)
}
