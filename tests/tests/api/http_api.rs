//! The API over real HTTP, as a client sees it: every documented status
//! code, the headers and a full pagination walk. (Concurrency: `concurrency.rs`.)

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Api, Backend, assert_problem, assert_security_headers, body_json, on_every_backend,
};

fn is_rfc3339_utc_millis(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.len() == 24 && bytes[10] == b'T' && bytes[19] == b'.' && text.ends_with('Z')
}

async fn create_returns_201_with_the_user_location_and_etag(backend: Backend) {
    let api = Api::start(backend).await;
    let response = api
        .create(
            &format!("  {} ", api.email("Ada.Lovelace").to_uppercase()),
            " Ada Lovelace ",
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_security_headers(&response);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let user = body_json(response).await;
    let id = user["id"].as_str().expect("id");
    assert_eq!(id.len(), 26);
    assert_eq!(location, format!("/users/{id}"));
    assert_eq!(user["email"], api.email("ada.lovelace").as_str());
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["version"], 1);
    assert!(
        is_rfc3339_utc_millis(user["createdAt"].as_str().expect("createdAt")),
        "{user}"
    );
    assert_eq!(user["createdAt"], user["updatedAt"]);
    let keys: BTreeSet<&str> = user
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["createdAt", "email", "id", "name", "updatedAt", "version"].into()
    );

    let (status, fetched) = api.get_json(&location).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, user);
}

async fn create_returns_409_when_the_email_is_taken_in_any_case(backend: Backend) {
    let api = Api::start(backend).await;
    api.created(&api.email("ada"), "Ada").await;
    let problem = assert_problem(
        api.create(&api.email("ada").to_uppercase(), "Other Ada")
            .await,
        409,
    )
    .await;
    assert_eq!(problem["type"], "/problems/email-taken");
}

async fn create_reports_every_invalid_field_with_422(backend: Backend) {
    let api = Api::start(backend).await;
    let response = api
        .request(Method::POST, "/users")
        .json(&json!({"email": "Ada <ada@example.com>", "name": 5, "role": "admin"}))
        .send()
        .await
        .expect("POST");
    let problem = assert_problem(response, 422).await;
    let fields: BTreeSet<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["email", "name", "role"].into());
    for error in problem["errors"].as_array().expect("errors") {
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
}

async fn bad_bodies_get_4xx_and_store_nothing(backend: Backend) {
    let api = Api::start(backend).await;
    let valid = json!({"email": api.email("ada"), "name": "Ada"}).to_string();
    let cases: [(&str, Option<&str>, String, u16); 7] = [
        (
            "not JSON",
            Some("application/json"),
            "{\"email\":".to_owned(),
            400,
        ),
        (
            "a JSON array",
            Some("application/json"),
            "[1,2]".to_owned(),
            400,
        ),
        (
            "a JSON string",
            Some("application/json"),
            "\"ada\"".to_owned(),
            400,
        ),
        ("empty", Some("application/json"), String::new(), 400),
        (
            "over 16 KiB",
            Some("application/json"),
            format!(
                "{{\"email\":\"{}\",\"name\":\"{}\"}}",
                api.email("ada"),
                "a".repeat(16 * 1024)
            ),
            413,
        ),
        (
            "not declared as JSON",
            Some("text/plain"),
            valid.to_owned(),
            415,
        ),
        ("no content type", None, valid.to_owned(), 415),
    ];
    for (why, content_type, body, status) in cases {
        let mut request = api.request(Method::POST, "/users").body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("POST");
        assert_eq!(response.status(), status, "{why}");
        assert_problem(response, status).await;
    }
    let (status, page) = api
        .get_json(&format!(
            "/users?email={}",
            api.email("ada").replace('@', "%40")
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"], json!([]), "nothing was stored");
    let accepted = api
        .request(Method::POST, "/users")
        .header("content-type", "application/json; charset=utf-8")
        .body(valid)
        .send()
        .await
        .expect("POST");
    assert_eq!(accepted.status(), 201, "a charset parameter is fine");
}

async fn get_supports_etags_and_not_modified(backend: Backend) {
    let api = Api::start(backend).await;
    let user = api.created(&api.email("ada"), "Ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    let response = api.request(Method::GET, &path).send().await.expect("GET");
    assert_eq!(response.status(), 200);
    assert_security_headers(&response);
    assert_eq!(response.headers()["etag"], "\"1\"");
    assert_eq!(response.headers()["cache-control"], "private, no-cache");

    for tag in ["\"1\"", "W/\"1\"", "\"7\", \"1\"", "*"] {
        let cached = api
            .request(Method::GET, &path)
            .header("if-none-match", tag)
            .send()
            .await
            .expect("GET");
        assert_eq!(cached.status(), 304, "{tag}");
        assert_security_headers(&cached);
        assert_eq!(cached.headers()["etag"], "\"1\"", "{tag}");
        assert!(
            cached.bytes().await.expect("body").is_empty(),
            "304 has no body: {tag}"
        );
    }

    let stale = api
        .request(Method::GET, &path)
        .header("if-none-match", "\"0\"")
        .send()
        .await
        .expect("GET");
    assert_eq!(stale.status(), 200);
}

async fn get_returns_404_for_unknown_and_400_for_malformed_ids(backend: Backend) {
    let api = Api::start(backend).await;
    let unknown = ulid::Ulid::new();
    let response = api
        .request(Method::GET, &format!("/users/{unknown}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        assert_problem(response, 404).await["type"],
        "/problems/not-found"
    );
    let malformed_if_none_match = api
        .request(Method::GET, &format!("/users/{unknown}"))
        .header("if-none-match", "1")
        .send()
        .await
        .expect("GET");
    assert_problem(malformed_if_none_match, 400).await;
    for bad in [
        "not-a-ulid",
        "01ARZ3NDEKTSV4RRFFQ69G5FA",
        "81ARZ3NDEKTSV4RRFFQ69G5FAV",
        "%F0%9F%98%80",
    ] {
        let response = api
            .request(Method::GET, &format!("/users/{bad}"))
            .send()
            .await
            .expect("GET");
        assert_problem(response, 400).await;
    }
}

async fn list_walks_every_user_once_and_late_creations_come_last(backend: Backend) {
    let api = Api::start(backend).await;
    let mut expected = Vec::new();
    for i in 0..11 {
        let user = api
            .created(&api.email(&format!("walker{i}")), &format!("Walker {i}"))
            .await;
        expected.push(user["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut path = "/users?limit=4".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = api.get_json(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for item in page["items"].as_array().expect("items") {
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        if pages == 2 {
            // Created during the walk: must show up at its end.
            let late = api.created(&api.email("late"), "Late Comer").await;
            expected.push(late["id"].as_str().expect("id").to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/users?limit=4&cursor={cursor}"),
            None => {
                assert!(page["nextCursor"].is_null());
                break;
            }
        }
    }
    // A deployed table holds other users too: only ours are compared.
    seen.retain(|id| expected.contains(id));
    assert_eq!(seen, expected, "every user exactly once, in creation order");
    if api.is_local() {
        assert_eq!(pages, 3);
        let (_, default_page) = api.get_json("/users").await;
        let items = default_page["items"].as_array().map(Vec::len);
        assert_eq!(items, Some(12), "default limit is 20");
    }
}

async fn list_rejects_invalid_query_parameters_and_foreign_cursors(backend: Backend) {
    let api = Api::start(backend).await;
    for i in 0..3 {
        api.created(&api.email(&format!("q{i}")), "Query").await;
    }
    let (_, page) = api.get_json("/users?limit=1").await;
    let cursor = page["nextCursor"].as_str().expect("cursor").to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let cases = [
        "/users?limit=0".to_owned(),
        "/users?limit=101".to_owned(),
        "/users?limit=abc".to_owned(),
        "/users?limit=".to_owned(),
        "/users?limit=1&limit=2".to_owned(),
        format!("/users?cursor={tampered}"),
        "/users?cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "/users?cursor=%FF".to_owned(),
        "/users?email=not-an-email".to_owned(),
        format!(
            "/users?cursor={cursor}&email={}",
            api.email("q0").replace('@', "%40")
        ),
        "/users?sort=name".to_owned(),
    ];
    for path in cases {
        let response = api.request(Method::GET, &path).send().await.expect("GET");
        assert_eq!(response.status(), 400, "{path}");
        assert_problem(response, 400).await;
    }
    let (status, _) = api
        .get_json(&format!("/users?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(status, 200, "the genuine cursor still works");
}

async fn list_finds_a_user_by_email_case_insensitively(backend: Backend) {
    let api = Api::start(backend).await;
    let ada = api.created(&api.email("ada"), "Ada").await;
    api.created(&api.email("eve"), "Eve").await;
    let (status, page) = api
        .get_json(&format!(
            "/users?email={}",
            api.email("ADA").replace('@', "%40")
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"], json!([ada]));
    assert_eq!(page["nextCursor"], Value::Null);
    let (_, none) = api
        .get_json(&format!(
            "/users?email={}",
            api.email("nobody").replace('@', "%40")
        ))
        .await;
    assert_eq!(none["items"], json!([]));
}

async fn patch_updates_with_if_match_and_moves_the_email(backend: Backend) {
    let api = Api::start(backend).await;
    let ada = api.created(&api.email("ada"), "Ada").await;
    api.created(&api.email("eve"), "Eve").await;
    let path = format!("/users/{}", ada["id"].as_str().expect("id"));
    let patch = |body: Value| {
        api.request(Method::PATCH, &path)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
    };

    let response = patch(json!({"name": "Countess"}))
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 200);
    assert_security_headers(&response);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let renamed = body_json(response).await;
    assert_eq!(renamed["name"], "Countess");
    assert_eq!(renamed["version"], 2);
    assert_eq!(renamed["createdAt"], ada["createdAt"]);

    let stale = patch(json!({"name": "Stale"}))
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect("PATCH");
    assert_eq!(
        assert_problem(stale, 412).await["type"],
        "/problems/precondition-failed"
    );

    let taken = patch(json!({"email": api.email("eve").to_uppercase()}))
        .send()
        .await
        .expect("PATCH");
    assert_problem(taken, 409).await;

    let moved = patch(json!({"email": api.email("ada-new")}))
        .header("if-match", "\"2\"")
        .send()
        .await
        .expect("PATCH");
    assert_eq!(moved.status(), 200);
    assert_eq!(
        body_json(moved).await["email"],
        api.email("ada-new").as_str()
    );
    api.created(&api.email("ada"), "New Ada").await;

    let (_, current) = api.get_json(&path).await;
    assert_eq!(current["version"], 3, "failed patches changed nothing");
    assert_eq!(current["name"], "Countess");
}

async fn patch_rejects_bad_input_and_unknown_users(backend: Backend) {
    let api = Api::start(backend).await;
    let ada = api.created(&api.email("ada"), "Ada").await;
    let path = format!("/users/{}", ada["id"].as_str().expect("id"));
    let cases: [(&str, &str, String, u16); 6] = [
        ("no field", "application/json", "{}".to_owned(), 422),
        (
            "null name",
            "application/json",
            r#"{"name":null}"#.to_owned(),
            422,
        ),
        (
            "unknown field",
            "application/json",
            r#"{"nickname":"Ad"}"#.to_owned(),
            422,
        ),
        (
            "invalid email",
            "application/json",
            r#"{"email":"ada@localhost"}"#.to_owned(),
            422,
        ),
        ("not an object", "application/json", "[]".to_owned(), 400),
        (
            "form body",
            "application/x-www-form-urlencoded",
            "name=Eve".to_owned(),
            415,
        ),
    ];
    for (why, content_type, body, status) in cases {
        let response = api
            .request(Method::PATCH, &path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("PATCH");
        assert_eq!(response.status(), status, "{why}");
        assert_problem(response, status).await;
    }
    let malformed_if_match = api
        .request(Method::PATCH, &path)
        .header("if-match", "1")
        .json(&json!({"name": "Eve"}))
        .send()
        .await
        .expect("PATCH");
    assert_problem(malformed_if_match, 400).await;
    let missing = api
        .request(Method::PATCH, &format!("/users/{}", ulid::Ulid::new()))
        .json(&json!({"name": "Eve"}))
        .send()
        .await
        .expect("PATCH");
    assert_problem(missing, 404).await;
    let malformed_id = api
        .request(Method::PATCH, "/users/not-a-ulid")
        .json(&json!({"name": "Eve"}))
        .send()
        .await
        .expect("PATCH");
    assert_problem(malformed_id, 400).await;
    let (_, current) = api.get_json(&path).await;
    assert_eq!(current, ada, "nothing changed");
}

async fn delete_returns_204_checks_if_match_and_frees_the_email(backend: Backend) {
    let api = Api::start(backend).await;
    let ada = api.created(&api.email("ada"), "Ada").await;
    let path = format!("/users/{}", ada["id"].as_str().expect("id"));
    let stale = api
        .request(Method::DELETE, &path)
        .header("if-match", "\"7\"")
        .send()
        .await
        .expect("DELETE");
    assert_problem(stale, 412).await;
    let deleted = api
        .request(Method::DELETE, &path)
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 204);
    assert_security_headers(&deleted);
    assert!(deleted.bytes().await.expect("body").is_empty());
    let (status, _) = api.get_json(&path).await;
    assert_eq!(status, 404);
    let again = api
        .request(Method::DELETE, &path)
        .send()
        .await
        .expect("DELETE");
    assert_problem(again, 404).await;
    api.created(&api.email("ada"), "Ada Again").await;
}

async fn conditional_headers_match_only_the_exact_entity_tag(backend: Backend) {
    let api = Api::start(backend).await;
    let ada = api.created("ada@example.com", "Ada").await;
    let path = format!("/users/{}", ada["id"].as_str().expect("id"));
    let cached = api
        .request(Method::GET, &path)
        .header("if-none-match", "\"01\"")
        .send()
        .await
        .expect("GET");
    assert_eq!(cached.status(), 200, "\"01\" is not the ETag \"1\"");
    let patched = api
        .request(Method::PATCH, &path)
        .header("if-match", "\"01\"")
        .json(&json!({"name": "Eve"}))
        .send()
        .await
        .expect("PATCH");
    assert_problem(patched, 412).await;
    let deleted = api
        .request(Method::DELETE, &path)
        .header("if-match", "\"001\"")
        .send()
        .await
        .expect("DELETE");
    assert_problem(deleted, 412).await;
    let (_, current) = api.get_json(&path).await;
    assert_eq!(current, ada, "nothing changed");
}

async fn unknown_routes_answer_like_api_gateway(backend: Backend) {
    let api = Api::start(backend).await;
    for (method, path) in [
        (Method::GET, "/nothing"),
        (Method::PUT, "/users"),
        (Method::POST, "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        (Method::GET, "/users/"),
    ] {
        let response = api
            .request(method.clone(), path)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(
            body_json(response).await,
            json!({"message": "Not Found"}),
            "{method} {path}"
        );
    }
}

async fn events_page_oldest_first_and_refuse_bad_cursors(backend: Backend) {
    let api = Api::start(backend).await;
    let user = api.created(&api.email("paged"), "Ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    for name in ["Countess", "Ada L."] {
        let renamed = api
            .request(Method::PATCH, &path)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("PATCH");
        assert_eq!(renamed.status(), 200);
    }
    let events = format!("{path}/events");
    let versions = |page: &Value| -> Vec<u64> {
        let items = page["items"].as_array().expect("items");
        items.iter().filter_map(|e| e["version"].as_u64()).collect()
    };
    // The history worker records changes shortly after they are made.
    let started = std::time::Instant::now();
    let first = loop {
        let (status, page) = api.get_json(&format!("{events}?limit=2")).await;
        if status == 200 && page["nextCursor"].is_string() {
            break page;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "history incomplete after 10 s: {status} {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(versions(&first), [1, 2]);
    assert_eq!(first["items"][0]["type"], "created");
    let cursor = first["nextCursor"].as_str().expect("cursor");
    let (status, second) = api
        .get_json(&format!("{events}?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(versions(&second), [3]);
    assert!(second["nextCursor"].is_null(), "{second}");

    let mut tampered = cursor.to_owned().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let other = format!("/users/{}/events", ulid::Ulid::new());
    for bad in [
        format!("{other}?cursor={cursor}"),
        format!("{events}?cursor={tampered}"),
        format!("{events}?limit=0"),
        format!("{events}?sort=version"),
        "/users/not-a-ulid/events".to_owned(),
    ] {
        let response = api.request(Method::GET, &bad).send().await.expect("GET");
        assert_problem(response, 400).await;
    }
}

on_every_backend!(
    create_returns_201_with_the_user_location_and_etag,
    create_returns_409_when_the_email_is_taken_in_any_case,
    create_reports_every_invalid_field_with_422,
    bad_bodies_get_4xx_and_store_nothing,
    get_supports_etags_and_not_modified,
    get_returns_404_for_unknown_and_400_for_malformed_ids,
    list_walks_every_user_once_and_late_creations_come_last,
    list_rejects_invalid_query_parameters_and_foreign_cursors,
    list_finds_a_user_by_email_case_insensitively,
    patch_updates_with_if_match_and_moves_the_email,
    patch_rejects_bad_input_and_unknown_users,
    delete_returns_204_checks_if_match_and_frees_the_email,
    conditional_headers_match_only_the_exact_entity_tag,
    unknown_routes_answer_like_api_gateway,
    events_page_oldest_first_and_refuse_bad_cursors,
);

/// DynamoDB out of reach: the client gets a generic 503 with Retry-After,
/// never the cause.
#[tokio::test]
async fn an_unreachable_dynamodb_answers_503_with_retry_after() {
    let client = local_api::dynamodb::table::local_client("http://127.0.0.1:9").await;
    let store = storage::DynamoStore::new(client, "users");
    let request = common::testing::ApiGatewayEvent::new(
        "GET /users/{id}",
        "/users/01ARZ3NDEKTSV4RRFFQ69G5FAV",
    )
    .id("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    .build();
    let response = get_user::handle(&store, request).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = String::from_utf8(response.body().to_vec()).expect("utf-8");
    assert!(
        !body.to_lowercase().contains("dispatch") && !body.contains("127.0.0.1"),
        "{body}"
    );
    let problem: Value = serde_json::from_str(&body).expect("problem");
    assert_eq!(problem["status"], 503);
}
