//! Guarantees under concurrency and retries, driven over HTTP through the
//! local API: uniqueness, idempotent creates, `If-Match`, email swaps.

use std::collections::BTreeMap;

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, Backend, body_json, on_every_backend, send_retrying};

fn tally(statuses: &[u16]) -> BTreeMap<u16, usize> {
    statuses.iter().fold(BTreeMap::new(), |mut counts, status| {
        *counts.entry(*status).or_default() += 1;
        counts
    })
}

async fn hundred_creates_of_one_email_store_exactly_one_user(backend: Backend) {
    let api = Api::start(backend).await;
    let names: Vec<String> = (0..100).map(|i| format!("Racer {i}")).collect();
    let race = api.email("race");
    let (api_ref, race_ref) = (&api, &race);
    let responses = join_all(names.iter().map(|name| {
        send_retrying(move || {
            api_ref
                .request(Method::POST, "/users")
                .json(&json!({ "email": race_ref, "name": name }))
        })
    }))
    .await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    println!(
        "{backend:?}: 100 creates of one email -> {:?}",
        tally(&statuses)
    );
    assert_eq!(tally(&statuses), BTreeMap::from([(201, 1), (409, 99)]));
    assert_eq!(api.find(&api.email("race")).await.len(), 1);
    assert_eq!(api.local_user_count().await, Some(1));
}

async fn hundred_creates_with_one_idempotency_key_store_exactly_one_user(backend: Backend) {
    let api = Api::start(backend).await;
    let body = json!({"email": api.email("once"), "name": "Only Once"});
    let responses = join_all((0..100).map(|_| {
        send_retrying(|| {
            api.request(Method::POST, "/users")
                .header("idempotency-key", "create-once-7f3a")
                .json(&body)
        })
    }))
    .await;
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        statuses.push(status);
        let json = body_json(response).await;
        if status == 201 {
            bodies.push(json);
        } else {
            assert_eq!(status, 409, "{json}");
            assert_eq!(json["type"], "/problems/request-in-flight", "{json}");
        }
    }
    println!(
        "{backend:?}: 100 creates with one Idempotency-Key -> {:?}",
        tally(&statuses)
    );
    assert!(!bodies.is_empty(), "at least the first create answers 201");
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every 201 is the same response"
    );
    assert_eq!(api.find(&api.email("once")).await, [bodies[0].clone()]);
    assert_eq!(api.local_user_count().await, Some(1), "exactly one user");
}

async fn fifty_patches_with_one_if_match_let_exactly_one_through(backend: Backend) {
    let api = Api::start(backend).await;
    let user = api.created(&api.email("patched"), "Start").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    let names: Vec<String> = (0..50).map(|i| format!("Writer {i}")).collect();
    let (api_ref, path_ref) = (&api, &path);
    let responses = join_all(names.iter().map(|name| {
        send_retrying(move || {
            api_ref
                .request(Method::PATCH, path_ref)
                .header("if-match", "\"1\"")
                .json(&json!({ "name": name }))
        })
    }))
    .await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    println!(
        "{backend:?}: 50 PATCHes with If-Match \"1\" -> {:?}",
        tally(&statuses)
    );
    assert_eq!(tally(&statuses), BTreeMap::from([(200, 1), (412, 49)]));
    let (_, current) = api.get_json(&path).await;
    assert_eq!(current["version"], 2, "start version + 1");
}

async fn concurrent_email_swaps_never_share_an_address(backend: Backend) {
    let api = Api::start(backend).await;
    let a = api.created(&api.email("a"), "User A").await;
    let b = api.created(&api.email("b"), "User B").await;
    let path_a = format!("/users/{}", a["id"].as_str().expect("id"));
    let path_b = format!("/users/{}", b["id"].as_str().expect("id"));
    let patch = |path: &str, email: &str| {
        let (path, email) = (path.to_owned(), email.to_owned());
        let api = &api;
        async move {
            send_retrying(|| {
                api.request(Method::PATCH, &path)
                    .json(&json!({ "email": email }))
            })
            .await
        }
    };
    let mut outcomes = BTreeMap::<u16, usize>::new();
    for round in 0..10 {
        let (a_now, b_now) = if round % 2 == 0 {
            ("a", "b")
        } else {
            ("b", "a")
        };
        let results = join_all([
            patch(&path_a, &api.email(b_now)),
            patch(&path_b, &api.email(a_now)),
            patch(&path_a, &api.email(&format!("swap{round}"))),
        ])
        .await;
        for result in results {
            *outcomes.entry(result.status().as_u16()).or_default() += 1;
        }
        let (_, ua) = api.get_json(&path_a).await;
        let (_, ub) = api.get_json(&path_b).await;
        assert_ne!(
            ua["email"], ub["email"],
            "round {round}: both users hold one address"
        );
        for user in [&ua, &ub] {
            let email = user["email"].as_str().expect("email").replace('@', "%40");
            let (_, found) = api.get_json(&format!("/users?email={email}")).await;
            assert_eq!(
                found["items"],
                json!([user]),
                "round {round}: the address resolves to its holder"
            );
        }
        // Put both back to a known state for the next round.
        let _ = patch(&path_a, &api.email(&format!("tmp{round}"))).await;
        let _ = patch(&path_b, &api.email(b_now)).await;
        let _ = patch(&path_a, &api.email(a_now)).await;
    }
    println!("{backend:?}: concurrent swap PATCH outcomes -> {outcomes:?}");
    assert!(
        outcomes.keys().all(|s| [200, 409].contains(s)),
        "{outcomes:?}"
    );
}

async fn history_records_create_update_and_delete_within_seconds(backend: Backend) {
    let api = Api::start(backend).await;
    let user = api.created(&api.email("history"), "Ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    let renamed = api
        .request(Method::PATCH, &path)
        .json(&json!({"name": "Countess"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(renamed.status(), 200);
    let deleted = api
        .request(Method::DELETE, &path)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 204);

    let started = std::time::Instant::now();
    let events = loop {
        let (status, page) = api.get_json(&format!("{path}/events")).await;
        if status == 200
            && page["items"]
                .as_array()
                .is_some_and(|items| items.len() == 3)
        {
            break page["items"].clone();
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "history incomplete after 10 s: {status} {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    println!(
        "{backend:?}: history complete after {} ms",
        started.elapsed().as_millis()
    );
    let summary: Vec<(String, u64, Value)> = events
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().expect("type").to_owned(),
                e["version"].as_u64().expect("version"),
                e["changedFields"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("created".to_owned(), 1, json!(["email", "name"])),
            ("updated".to_owned(), 2, json!(["name"])),
            ("deleted".to_owned(), 3, json!([])),
        ]
    );
    if api.is_local() {
        for event in events.as_array().expect("items") {
            assert_eq!(
                event["actor"], "local-developer",
                "the token's client id: {event}"
            );
        }
    }
    let text = events.to_string();
    assert!(
        !text.contains(&api.email("history")) && !text.contains("Countess"),
        "no personal data: {text}"
    );
    let (status, _) = api
        .get_json(&format!("/users/{}/events", ulid::Ulid::new()))
        .await;
    assert_eq!(status, 404, "an id that never had events");
}

async fn idempotent_create_replays_and_refuses_key_reuse(backend: Backend) {
    let api = Api::start(backend).await;
    let post = |key: &str, body: Value| {
        api.request(Method::POST, "/users")
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = post("key-1", json!({"email": api.email("idem"), "name": "Idem"}))
        .await
        .expect("POST");
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"].clone();
    let first_body = body_json(first).await;
    let again = post("key-1", json!({"email": api.email("idem"), "name": "Idem"}))
        .await
        .expect("POST");
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(body_json(again).await, first_body);
    let reused = post(
        "key-1",
        json!({"email": api.email("other"), "name": "Other"}),
    )
    .await
    .expect("POST");
    assert_eq!(reused.status(), 422);
    assert_eq!(
        body_json(reused).await["type"],
        "/problems/idempotency-key-reused"
    );
    let too_long = post(
        &"x".repeat(256),
        json!({"email": api.email("long"), "name": "Long"}),
    )
    .await
    .expect("POST");
    assert_eq!(too_long.status(), 400);
    assert_eq!(api.find(&api.email("idem")).await, [first_body]);
    assert_eq!(
        api.local_user_count().await,
        Some(1),
        "one user, whatever the retries"
    );
    let longest = post(
        &"x".repeat(255),
        json!({"email": api.email("long"), "name": "Long"}),
    )
    .await
    .expect("POST");
    assert_eq!(longest.status(), 201, "a 255-character key is fine");
}

on_every_backend!(
    hundred_creates_of_one_email_store_exactly_one_user,
    hundred_creates_with_one_idempotency_key_store_exactly_one_user,
    fifty_patches_with_one_if_match_let_exactly_one_through,
    concurrent_email_swaps_never_share_an_address,
    history_records_create_update_and_delete_within_seconds,
    idempotent_create_replays_and_refuses_key_reuse,
);
