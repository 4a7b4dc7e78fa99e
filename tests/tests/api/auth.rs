//! The JWT authorizer, as the local API enforces it from the template: 401
//! for missing or bad tokens, 403 for a missing scope, the normal answer
//! with the right scope. (Against a deployed API, API Gateway does this.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use local_api::gateway::auth::DevToken;
use reqwest::Method;
use serde_json::json;

use crate::support::{Api, Backend, body_json, on_every_backend};

const ROUTES: [(&str, &str); 6] = [
    ("POST", "/users"),
    ("GET", "/users"),
    ("GET", "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ("PATCH", "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ("DELETE", "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ("GET", "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV/events"),
];

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("method")
}

async fn status_with(
    api: &Api,
    verb: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = api
        .anonymous(method(verb), path)
        .json(&json!({"email": "a@b.co", "name": "Ada"}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, body_json(response).await)
}

fn unsigned(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

async fn every_route_refuses_a_request_without_a_token(backend: Backend) {
    let api = Api::local(backend).await;
    for (verb, path) in ROUTES {
        let (status, body) = status_with(&api, verb, path, None).await;
        assert_eq!(status, 401, "{verb} {path}");
        assert_eq!(body, json!({"message": "Unauthorized"}), "{verb} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_401() {
    let api = Api::local(Backend::Memory).await;
    let untrusted = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/untrusted-key.pem"
    ))
    .expect("key");
    let valid = DevToken::default().sign().expect("token");
    let mut tampered = valid.clone();
    tampered.insert(valid.find('.').expect("dot") + 5, 'x');
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let cases = [
        (
            "expired",
            DevToken {
                expires_in: -60,
                ..DevToken::default()
            }
            .sign()
            .expect("token"),
        ),
        (
            "another audience",
            DevToken {
                audience: "someone-else".into(),
                client_id: "someone-else".into(),
                ..DevToken::default()
            }
            .sign()
            .expect("token"),
        ),
        (
            "another issuer",
            DevToken {
                issuer: "https://evil.example.com".into(),
                ..DevToken::default()
            }
            .sign()
            .expect("token"),
        ),
        (
            "another key",
            DevToken::default()
                .sign_with(&untrusted, "users-api-local-dev")
                .expect("token"),
        ),
        (
            "alg none",
            unsigned(
                &json!({"iss": local_api::gateway::auth::DEV_ISSUER, "aud": local_api::gateway::auth::DEV_AUDIENCE, "client_id": local_api::gateway::auth::DEV_AUDIENCE, "scope": "users/read users/write", "exp": now + 600}),
            ),
        ),
        ("tampered", tampered),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (why, token) in cases {
        for (verb, path) in [("GET", "/users"), ("POST", "/users")] {
            let (status, body) = status_with(&api, verb, path, Some(&token)).await;
            assert_eq!(status, 401, "{why}: {verb} {path}");
            assert_eq!(body, json!({"message": "Unauthorized"}), "{why}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_route_scope_is_refused_with_403() {
    let api = Api::local(Backend::Memory).await;
    let read_only = DevToken {
        scopes: vec!["users/read".into()],
        ..DevToken::default()
    }
    .sign()
    .expect("token");
    let write_only = DevToken {
        scopes: vec!["users/write".into()],
        ..DevToken::default()
    }
    .sign()
    .expect("token");
    for (verb, path) in ROUTES {
        let (token, other) = if verb == "GET" {
            (&write_only, &read_only)
        } else {
            (&read_only, &write_only)
        };
        let (status, body) = status_with(&api, verb, path, Some(token)).await;
        assert_eq!(status, 403, "{verb} {path} without its scope");
        assert_eq!(body, json!({"message": "Forbidden"}));
        let (status, _) = status_with(&api, verb, path, Some(other)).await;
        assert!(
            ![401, 403].contains(&status),
            "{verb} {path} with its scope answered {status}"
        );
    }
}

async fn the_right_scope_gets_the_normal_response(backend: Backend) {
    let api = Api::local(backend).await;
    let writer = DevToken {
        scopes: vec!["users/write".into()],
        client_id: "writer-app".into(),
        ..DevToken::default()
    };
    let response = api
        .anonymous(Method::POST, "/users")
        .bearer_auth(writer.sign().expect("token"))
        .json(&json!({"email": api.email("scoped"), "name": "Scoped"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201);
}

on_every_backend!(
    every_route_refuses_a_request_without_a_token,
    the_right_scope_gets_the_normal_response,
);

/// Tokens API Gateway's JWT authorizer refuses though their signature is
/// good: its rules on `kid`, `nbf`, `iat` and `aud` before `client_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_api_gateway_refuses_are_refused_with_401() {
    let api = Api::local(Backend::Memory).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = |extra: serde_json::Value| {
        let mut claims = json!({
            "iss": local_api::gateway::auth::DEV_ISSUER,
            "aud": local_api::gateway::auth::DEV_AUDIENCE,
            "client_id": local_api::gateway::auth::DEV_AUDIENCE,
            "scope": "users/read users/write",
            "iat": now,
            "exp": now + 600,
        });
        for (name, value) in extra.as_object().expect("object") {
            if value.is_null() {
                claims.as_object_mut().expect("object").remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    };
    let kid = Some(local_api::gateway::auth::DEV_KEY_ID);
    let sign = |claims: &serde_json::Value, kid: Option<&str>| {
        DevToken::sign_claims(claims, kid).expect("token")
    };
    let cases = [
        ("no kid", sign(&claims(json!({})), None)),
        (
            "an unknown kid",
            sign(&claims(json!({})), Some("rotated-away")),
        ),
        (
            "nbf in the future",
            sign(&claims(json!({"nbf": now + 600})), kid),
        ),
        (
            "iat in the future",
            sign(&claims(json!({"iat": now + 600})), kid),
        ),
        (
            "a wrong aud beside a matching client_id",
            sign(&claims(json!({"aud": "someone-else"})), kid),
        ),
        ("no exp", sign(&claims(json!({"exp": null})), kid)),
    ];
    for (why, token) in cases {
        let (status, body) = status_with(&api, "GET", "/users", Some(&token)).await;
        assert_eq!(status, 401, "{why}");
        assert_eq!(body, json!({"message": "Unauthorized"}), "{why}");
    }
    let client_id_only = sign(&claims(json!({"aud": null})), kid);
    let (status, _) = status_with(&api, "GET", "/users", Some(&client_id_only)).await;
    assert_eq!(status, 200, "client_id counts when there is no aud");
}

/// The local API's own answers carry the security headers, and a `Host`
/// or `X-Forwarded-Proto` that makes no URL is a 400, not a dropped
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_apis_own_answers_are_strict_and_carry_security_headers() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let api = Api::local(Backend::Memory).await;
    let token = DevToken::default().sign().expect("token");
    let read_only = DevToken {
        scopes: vec!["users/read".into()],
        ..DevToken::default()
    }
    .sign()
    .expect("token");
    let own_answers = [
        (api.anonymous(Method::GET, "/nowhere"), 404),
        (api.anonymous(Method::GET, "/users"), 401),
        (
            api.anonymous(Method::POST, "/users")
                .bearer_auth(&read_only),
            403,
        ),
        (
            api.anonymous(Method::POST, "/users")
                .bearer_auth(&token)
                .body(vec![b'x'; 11 * 1024 * 1024]),
            413,
        ),
    ];
    for (request, status) in own_answers {
        let response = request.send().await.expect("answer");
        assert_eq!(response.status(), status);
        crate::support::assert_security_headers(&response);
    }
    let address = api.base().trim_start_matches("http://").to_owned();
    let cases = [
        ("Host: exa mple.com\r\n", "a space in Host"),
        ("Host: [::1\r\n", "an unclosed IPv6 literal"),
        ("Host: user@example.com\r\n", "userinfo in Host"),
        (
            "Host: localhost\r\nX-Forwarded-Proto: ht tp\r\n",
            "a malformed X-Forwarded-Proto",
        ),
        (
            "Host: localhost\r\nX-Forwarded-Proto: gopher\r\n",
            "a scheme API Gateway never sends",
        ),
    ];
    for (headers, why) in cases {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        let request = format!(
            "GET /users HTTP/1.1\r\n{headers}Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{why}: {}",
            answer.lines().next().unwrap_or("(no answer)")
        );
    }
}
