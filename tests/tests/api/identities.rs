//! Identities over HTTP: look-alike email addresses never make a second
//! user, invisible or bidi names are refused, and `Idempotency-Key`s are
//! private to their caller and never replay a deleted user.

use local_api::gateway::auth::DevToken;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, Backend, body_json, on_every_backend};

async fn look_alike_emails_never_make_a_second_user(backend: Backend) {
    let api = Api::start(backend).await;
    // (first, look-alike, the look-alike's status): 409 when it shares the
    // first's canonical form, 422 when it holds a character no address may.
    let cases = [
        ("josé", "jose\u{301}", 409, "NFC and NFD"),
        ("ada", "ＡＤＡ", 409, "fullwidth letters"),
        ("zw", "z\u{200b}w", 422, "zero-width space"),
        ("bom", "b\u{feff}om", 422, "byte-order mark"),
        ("rlo", "r\u{202e}lo", 422, "right-to-left override"),
        ("shy", "s\u{ad}hy", 422, "soft hyphen"),
    ];
    for (first, other, status, why) in cases {
        assert_eq!(
            api.create(&api.email(first), "Ada").await.status(),
            201,
            "{why}"
        );
        let response = api.create(&api.email(other), "Ada").await;
        assert_eq!(response.status(), status, "{why}: {other:?}");
    }
    let unique = ulid::Ulid::new().to_string().to_lowercase();
    let unicode = format!("{unique}@bücher.de");
    let ascii = format!("{unique}@xn--bcher-kva.de");
    let created = api.created(&unicode, "Ada").await;
    assert_eq!(
        created["email"],
        ascii.as_str(),
        "the domain is stored in ASCII"
    );
    assert_eq!(
        api.create(&ascii, "Ada").await.status(),
        409,
        "U-label and A-label"
    );
    for bad in ["ada@ex_ample.com", "ada@example.123"] {
        assert_eq!(api.create(bad, "Ada").await.status(), 422, "{bad}");
    }
}

async fn invisible_and_bidi_names_are_422(backend: Backend) {
    let api = Api::start(backend).await;
    let names = [
        "\u{200b}\u{200b}",
        "Ada\u{202e}ecilA",
        "Ada\u{2028}Lovelace",
        "Ada\u{ffff}",
        "Ada\u{e0041}",
        "--",
    ];
    for (i, name) in names.into_iter().enumerate() {
        let response = api.create(&api.email(&format!("n{i}")), name).await;
        assert_eq!(response.status(), 422, "{name:?}");
        let problem = body_json(response).await;
        assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    }
    assert_eq!(api.local_user_count().await, Some(0), "nothing stored");
}

async fn an_idempotency_key_is_private_to_its_caller_and_never_replays_a_deleted_user(
    backend: Backend,
) {
    let api = Api::local(backend).await;
    let other = DevToken {
        client_id: "another-client".to_owned(),
        ..DevToken::default()
    }
    .sign()
    .expect("token");
    let mine = DevToken::default().sign().expect("token");
    let post = |token: &str, body: Value| {
        api.anonymous(Method::POST, "/users")
            .bearer_auth(token)
            .header("idempotency-key", "shared-key")
            .json(&body)
            .send()
    };
    let ada = json!({"email": api.email("ada"), "name": "Ada"});
    let first = post(&mine, ada.clone()).await.expect("POST");
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let eve = json!({"email": api.email("eve"), "name": "Eve"});
    let theirs = post(&other, eve).await.expect("POST");
    assert_eq!(theirs.status(), 201, "another caller's key is free");
    let deleted = api
        .request(Method::DELETE, &location)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 204);
    let replay = post(&mine, ada.clone()).await.expect("POST");
    assert_eq!(replay.status(), 410, "the user the key created is gone");
    let text = replay.text().await.expect("body");
    assert!(
        !text.contains(&api.email("ada")) && !text.contains("Ada"),
        "no erased data: {text}"
    );
    let by_other = post(&other, ada).await.expect("POST");
    assert_eq!(
        by_other.status(),
        422,
        "the other caller's key was used with another body"
    );
}

on_every_backend!(
    look_alike_emails_never_make_a_second_user,
    invisible_and_bidi_names_are_422,
    an_idempotency_key_is_private_to_its_caller_and_never_replays_a_deleted_user,
);

/// A user stored under the earlier rules (an address and a name today's
/// rules refuse) still reads: GET, list and its history, no 500 and no
/// poison stream record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_stored_under_the_old_rules_still_reads() {
    use aws_sdk_dynamodb::types::AttributeValue;

    let api = Api::local(Backend::DynamoDb).await;
    let client =
        local_api::dynamodb::table::local_client(&crate::support::dynamodb_endpoint()).await;
    let id = ulid::Ulid::new().to_string();
    let email = "old\u{200b}style@ex_ample.com";
    let s = |text: &str| AttributeValue::S(text.to_owned());
    client
        .put_item()
        .table_name(api.table())
        .item("pk", s(&format!("USER#{id}")))
        .item("sk", s("PROFILE"))
        .item("gsi1pk", s("USERS"))
        .item("gsi1sk", s(&id))
        .item("id", s(&id))
        .item("email", s(email))
        .item("name", s("\u{200b}\u{200b}"))
        .item("createdAt", s("2026-01-01T00:00:00.000Z"))
        .item("updatedAt", s("2026-01-01T00:00:00.000Z"))
        .item("version", AttributeValue::N("1".to_owned()))
        .send()
        .await
        .expect("old item written");
    let (status, user) = api.get_json(&format!("/users/{id}")).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["email"], email);
    let (status, page) = api.get_json("/users").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|u| u["id"] == id.as_str())),
        "{page}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, events) = api.get_json(&format!("/users/{id}/events")).await;
        if status == 200 {
            assert_eq!(events["items"][0]["type"], "created", "{events}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never recorded the old item's creation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
