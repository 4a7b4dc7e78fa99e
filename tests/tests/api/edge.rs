//! The local API's `--edge`: template.yaml's edge rules (`Edge=cloudfront`)
//! in front of the API, black-box over HTTP. The rules are read from the
//! template, with small limits given as parameters so a test reaches them
//! in a few requests.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use local_api::edge::{Edge, EdgeRules, RateKey};
use local_api::gateway::auth::{AuthConfig, DevToken};
use local_api::{LocalApi, StoreChoice};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::support::{Backend, dynamodb_endpoint, fresh_table, lambda_options};

/// The edge's URL and the URL of the API behind it.
struct EdgeApi {
    edge: String,
    origin: String,
}

async fn start(parameters: &[(&str, &str)]) -> EdgeApi {
    start_on(Backend::Memory, parameters).await
}

/// The edge in front of the local API on `backend` (`Lambda`: every
/// function its own process, as `--edge --lambda`).
async fn start_on(backend: Backend, parameters: &[(&str, &str)]) -> EdgeApi {
    let template = local_api::default_template_path();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let store = match backend {
        Backend::Memory => StoreChoice::Memory,
        Backend::DynamoDb | Backend::Lambda => StoreChoice::DynamoDb {
            endpoint: dynamodb_endpoint(),
            table: fresh_table(),
        },
    };
    let api = LocalApi::bind_with(
        address,
        &template,
        &store,
        Some(AuthConfig::dev()),
        (backend == Backend::Lambda).then(lambda_options),
    )
    .await
    .expect("local API starts");
    let parameters: BTreeMap<String, String> = parameters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let rules = EdgeRules::load(&template, &parameters).expect("the template's edge");
    let api = api
        .with_edge(Edge::new(rules), address)
        .await
        .expect("the origin binds");
    let edge = format!("http://{}", api.local_addr().expect("bound"));
    let origin = format!(
        "http://{}",
        api.origin_addr().expect("an origin").expect("bound")
    );
    tokio::spawn(api.serve(std::future::pending()));
    EdgeApi { edge, origin }
}

/// A token of its own: tokens differ by expiry, so each is its own
/// Authorization value and its own rate budget.
fn token(expires_in: i64) -> String {
    DevToken {
        expires_in,
        ..DevToken::default()
    }
    .sign()
    .expect("development token")
}

async fn get(url: &str, token: Option<&str>) -> Response {
    let request = reqwest::Client::new().get(url);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.expect("the request is answered")
}

/// The security headers of template.yaml's response-headers policy.
fn assert_security_headers(response: &Response, what: &str) {
    for (name, value) in common::http::SECURITY_HEADERS {
        assert_eq!(
            response.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name}"
        );
    }
}

/// `body` is a document of openapi.yaml's schema `name`: its required
/// members present, no member the schema does not name, and each `const` or
/// `enum` member one of its values. (The schemas these bodies follow are
/// flat objects; Schemathesis validates the rest of the contract.)
fn assert_documented(body: &Value, name: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let document: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).expect("openapi.yaml is readable"))
            .expect("openapi.yaml is YAML");
    let schema: Value =
        serde_json::to_value(&document["components"]["schemas"][name]).expect("a schema is JSON");
    let members = body.as_object().expect("an object");
    let properties = schema["properties"].as_object().expect("properties");
    for required in schema["required"].as_array().expect("required") {
        let required = required.as_str().expect("a name");
        assert!(
            members.contains_key(required),
            "{name}: {required} in {body}"
        );
    }
    for (member, value) in members {
        let property = properties
            .get(member)
            .unwrap_or_else(|| panic!("{name} has no member {member}: {body}"));
        if let Some(constant) = property.get("const") {
            assert_eq!(value, constant, "{name}.{member}");
        }
        if let Some(values) = property.get("enum").and_then(Value::as_array) {
            assert!(values.contains(value), "{name}.{member}: {value}");
        }
    }
}

#[test]
fn the_edge_reads_its_rules_and_what_it_cannot_emulate_from_the_template() {
    let rules = EdgeRules::load(&local_api::default_template_path(), &BTreeMap::new())
        .expect("the template's edge");
    let rate: Vec<(&str, &RateKey, usize, u64)> = rules
        .rate_rules
        .iter()
        .map(|r| (r.name.as_str(), &r.key, r.limit, r.window.as_secs()))
        .collect();
    assert_eq!(
        rate,
        [
            (
                "per-client-rate",
                &RateKey::Header(reqwest::header::AUTHORIZATION),
                300,
                60
            ),
            ("per-ip-rate", &RateKey::Ip, 1500, 60),
        ],
        "the template's rate rules at their parameters' defaults"
    );
    assert_eq!(
        rules.not_emulated,
        [
            "aws-ip-reputation (AWSManagedRulesAmazonIpReputationList)",
            "aws-common (AWSManagedRulesCommonRuleSet)",
            "aws-known-bad-inputs (AWSManagedRulesKnownBadInputsRuleSet)",
        ]
    );
}

#[tokio::test]
async fn a_client_past_its_limit_gets_429_with_retry_after_while_another_client_gets_200() {
    let api = start(&[
        ("EdgeClientRateLimit", "10"),
        ("EdgeRateWindowSeconds", "120"),
    ])
    .await;
    let flooding = token(3600);
    let other = token(3599);
    let url = format!("{}/users?limit=1", api.edge);
    for n in 1..=10 {
        let response = get(&url, Some(&flooding)).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "request {n} is within the limit"
        );
    }
    let limited = get(&url, Some(&flooding)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("120"),
        "Retry-After: the window"
    );
    assert_eq!(
        limited
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_security_headers(&limited, "the edge's 429");
    let body: Value = limited.json().await.expect("a JSON body");
    assert_eq!(body["status"], 429);
    assert_eq!(body["title"], "Too Many Requests");
    assert_documented(&body, "EdgeProblem");

    let response = get(&url, Some(&other)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "another token's budget is untouched"
    );
    assert_security_headers(&response, "a function's 200");
}

#[tokio::test]
async fn requests_without_a_token_are_limited_per_address() {
    let api = start(&[("EdgeIpRateLimit", "12")]).await;
    let url = format!("{}/users", api.edge);
    for n in 1..=12 {
        let response = get(&url, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "request {n}");
        assert_security_headers(&response, "the gateway's 401");
    }
    let limited = get(&url, None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_gateways_own_401_and_404_carry_the_security_headers() {
    let api = start(&[]).await;
    let unauthorized = get(&format!("{}/users", api.edge), None).await;
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_security_headers(&unauthorized, "the gateway's 401");
    let missing = get(&format!("{}/no-such-route", api.edge), Some(&token(3600))).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&missing, "the gateway's 404");
}

#[tokio::test]
async fn a_request_that_did_not_pass_the_edge_is_refused() {
    let api = start(&[]).await;
    let token = token(3600);
    let url = format!("{}/users?limit=1", api.origin);
    let forged = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&token)
        .header(common::http::ORIGIN_HEADER, "a-guess")
        .send()
        .await
        .expect("answered");
    for (response, what) in [
        (get(&url, Some(&token)).await, "no header"),
        (forged, "a wrong secret"),
    ] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{what}"
        );
        assert_security_headers(&response, what);
        let problem: Value = response.json().await.expect("a problem document");
        assert_eq!(problem["type"], "/problems/not-from-edge", "{what}");
        assert_documented(&problem, "Problem");
    }
    let through = get(&format!("{}/users?limit=1", api.edge), Some(&token)).await;
    assert_eq!(
        through.status(),
        StatusCode::OK,
        "the same request through the edge"
    );
}

#[tokio::test]
async fn the_edge_works_in_front_of_the_functions_as_processes() {
    let api = start_on(Backend::Lambda, &[("EdgeClientRateLimit", "10")]).await;
    let token = token(3600);
    let url = format!("{}/users?limit=1", api.edge);
    for n in 1..=10 {
        let response = get(&url, Some(&token)).await;
        assert_eq!(response.status(), StatusCode::OK, "request {n}");
        assert_security_headers(&response, "a function's 200");
    }
    let limited = get(&url, Some(&token)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_security_headers(&limited, "the edge's 429");
    let bypass = get(&format!("{}/users?limit=1", api.origin), Some(&token)).await;
    assert_eq!(bypass.status(), StatusCode::FORBIDDEN, "the origin alone");
}
