//! One contract, two stores: the in-memory store must behave exactly as the
//! DynamoDB store does against DynamoDB Local.

use common::domain::Page;
use common::domain::{
    ChangeKind, Email, HistoryEvent, Idempotency, IdempotencyKey, PageRequest, PageSize,
    Precondition, Timestamp, User, UserChanges, UserName, Version, Versions, WriteContext,
};
use storage::{Created, StoreError};

use crate::support::{Backend, on_both_backends, store};

fn user(email: &str) -> User {
    User::new(
        Email::parse(email).expect("email"),
        UserName::parse("Ada Lovelace").expect("name"),
        Timestamp::now(),
    )
}

fn rename(name: &str) -> UserChanges {
    UserChanges {
        email: None,
        name: Some(UserName::parse(name).expect("name")),
    }
}

fn move_to(email: &str) -> UserChanges {
    UserChanges {
        email: Some(Email::parse(email).expect("email")),
        name: None,
    }
}

async fn created_users_can_be_read_back(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada, None).await.expect("create");
    assert_eq!(store.get(ada.id).await.expect("get"), Some(ada.clone()));
    assert_eq!(
        store.find_by_email(&ada.email).await.expect("find"),
        Some(ada.clone())
    );
    let missing = user("nobody@example.com");
    assert_eq!(store.get(missing.id).await.expect("get"), None);
    assert_eq!(
        store.find_by_email(&missing.email).await.expect("find"),
        None
    );
}

async fn create_refuses_a_taken_email(backend: Backend) {
    let store = store(backend).await;
    store
        .create(&user("ada@example.com"), None)
        .await
        .expect("first");
    let second = user("ada@example.com");
    assert!(matches!(
        store.create(&second, None).await,
        Err(StoreError::EmailTaken)
    ));
    assert_eq!(
        store.get(second.id).await.expect("get"),
        None,
        "nothing of the loser is stored"
    );
}

async fn list_pages_in_creation_order(backend: Backend) {
    let store = store(backend).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let u = user(&format!("user{i}@example.com"));
        store.create(&u, None).await.expect("create");
        ids.push(u.id);
    }
    let size = PageSize::parse("3").expect("size");
    let ids_of = |page: &Page<User>| page.items.iter().map(|u| u.id).collect::<Vec<_>>();
    let first = store.list(PageRequest::first(size)).await.expect("page 1");
    assert_eq!(ids_of(&first), ids[..3]);
    assert!(first.more);
    let second = store
        .list(PageRequest::after(Some(ids[2]), size))
        .await
        .expect("page 2");
    assert_eq!(ids_of(&second), ids[3..6]);
    assert!(second.more);
    let third = store
        .list(PageRequest::after(Some(ids[5]), size))
        .await
        .expect("page 3");
    assert_eq!(ids_of(&third), ids[6..]);
    assert!(!third.more, "the last page says no more follow");
    let exact = store
        .list(PageRequest::first(PageSize::parse("7").expect("size")))
        .await
        .expect("all");
    assert_eq!(exact.items.len(), 7);
    assert!(
        !exact.more,
        "a page that ends the list exactly says no more follow"
    );
}

async fn update_applies_changes_and_bumps_the_version(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada, None).await.expect("create");
    let later = Timestamp::now();
    let renamed = store
        .update(
            &rename("Countess"),
            &WriteContext {
                now: later,
                ..WriteContext::new(ada.id, Precondition::NONE, Some("editor-app"))
            },
        )
        .await
        .expect("rename");
    assert_eq!(renamed.name.as_str(), "Countess");
    assert_eq!(renamed.version, Version::new(2));
    assert_eq!(renamed.updated_at, later);
    assert_eq!(renamed.created_at, ada.created_at);
    assert_eq!(renamed.changed_by.as_deref(), Some("editor-app"));
    assert_eq!(store.get(ada.id).await.expect("get"), Some(renamed.clone()));

    let moved = store
        .update(
            &move_to("ada@new.example"),
            &WriteContext::new(ada.id, Precondition::one_of(vec![Version::new(2)]), None),
        )
        .await
        .expect("move email");
    assert_eq!(moved.version, Version::new(3));
    assert_eq!(moved.name.as_str(), "Countess");
    let old = Email::parse("ada@example.com").expect("email");
    assert_eq!(
        store.find_by_email(&old).await.expect("find"),
        None,
        "old address freed"
    );
    store
        .create(&user("ada@example.com"), None)
        .await
        .expect("old address can be claimed again");
}

async fn update_checks_preconditions_existence_and_uniqueness(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    let eve = user("eve@example.com");
    store.create(&ada, None).await.expect("create");
    store.create(&eve, None).await.expect("create");
    let stale = Precondition::one_of(vec![Version::new(5)]);
    for changes in [rename("Eve"), move_to("x@example.com")] {
        assert!(matches!(
            store
                .update(&changes, &WriteContext::new(ada.id, stale.clone(), None))
                .await,
            Err(StoreError::PreconditionFailed)
        ));
        assert!(matches!(
            store
                .update(
                    &changes,
                    &WriteContext::new(user("z@example.com").id, Precondition::NONE, None),
                )
                .await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(matches!(
        store
            .update(
                &move_to("eve@example.com"),
                &WriteContext::new(ada.id, Precondition::NONE, None),
            )
            .await,
        Err(StoreError::EmailTaken)
    ));
    assert!(
        matches!(
            store
                .update(
                    &rename("Eve"),
                    &WriteContext::new(ada.id, Precondition::one_of(vec![]), None),
                )
                .await,
            Err(StoreError::PreconditionFailed)
        ),
        "an If-Match naming no version of ours never matches"
    );
    assert_eq!(
        store.get(ada.id).await.expect("get"),
        Some(ada),
        "failed updates change nothing"
    );
}

async fn an_update_to_the_same_email_changes_nothing_and_keeps_the_claim(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada, None).await.expect("create");
    let same = store
        .update(
            &move_to("ADA@example.com"),
            &WriteContext::new(ada.id, Precondition::NONE, None),
        )
        .await
        .expect("same address");
    assert_eq!(same, ada, "a patch that changes nothing writes nothing");
    assert!(matches!(
        store.create(&user("ada@example.com"), None).await,
        Err(StoreError::EmailTaken)
    ));
}

async fn delete_frees_the_email_and_checks_preconditions(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada, None).await.expect("create");
    assert!(matches!(
        store
            .delete(&WriteContext::new(
                ada.id,
                Precondition::one_of(vec![Version::new(2)]),
                None
            ),)
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    store
        .delete(&WriteContext::new(
            ada.id,
            Precondition::one_of(vec![Version::FIRST]),
            None,
        ))
        .await
        .expect("delete");
    assert_eq!(store.get(ada.id).await.expect("get"), None);
    assert!(matches!(
        store
            .delete(&WriteContext::new(ada.id, Precondition::NONE, None))
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .create(&user("ada@example.com"), None)
        .await
        .expect("address free again");
    let listed = store
        .list(PageRequest::first(PageSize::default()))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
}

fn keyed(key: &str, body: &str, now: Timestamp) -> Idempotency {
    keyed_by(Some("client-a"), key, body, now)
}

fn keyed_by(caller: Option<&str>, key: &str, body: &str, now: Timestamp) -> Idempotency {
    let body = serde_json::Map::from_iter([("body".to_owned(), body.into())]);
    Idempotency::new(caller, IdempotencyKey::parse(key).expect("key"), &body, now)
}

async fn a_keyed_create_replays_for_the_same_request_only(backend: Backend) {
    let store = store(backend).await;
    let now = Timestamp::now();
    let ada = user("ada@example.com");
    let request = keyed("key-1", "{ada}", now);
    assert_eq!(
        store.create(&ada, Some(&request)).await.expect("create"),
        Created::New
    );
    let retry = user("ada@example.com");
    assert_eq!(
        store.create(&retry, Some(&request)).await.expect("retry"),
        Created::Replayed(ada.clone())
    );
    assert_eq!(
        store.get(retry.id).await.expect("get"),
        None,
        "a replay stores nothing"
    );
    assert!(matches!(
        store
            .create(
                &user("eve@example.com"),
                Some(&keyed("key-1", "{eve}", now))
            )
            .await,
        Err(StoreError::IdempotencyKeyReused)
    ));
    let other = user("bob@example.com");
    assert_eq!(
        store
            .create(&other, Some(&keyed("key-2", "{bob}", now)))
            .await
            .expect("other key"),
        Created::New
    );
}

async fn an_idempotency_key_is_private_to_its_caller(backend: Backend) {
    let store = store(backend).await;
    let now = Timestamp::now();
    let ada = user("ada@example.com");
    store
        .create(
            &ada,
            Some(&keyed_by(Some("client-a"), "shared", "{ada}", now)),
        )
        .await
        .expect("create by a");
    let bob = user("bob@example.com");
    assert_eq!(
        store
            .create(
                &bob,
                Some(&keyed_by(Some("client-b"), "shared", "{bob}", now))
            )
            .await
            .expect("the same key by b"),
        Created::New,
        "another caller's equal key is another key"
    );
    let cid = user("cid@example.com");
    assert_eq!(
        store
            .create(&cid, Some(&keyed_by(None, "shared", "{cid}", now)))
            .await
            .expect("the same key on an open API"),
        Created::New
    );
    assert_eq!(
        store
            .create(
                &user("ada@example.com"),
                Some(&keyed_by(Some("client-a"), "shared", "{ada}", now))
            )
            .await
            .expect("a's replay"),
        Created::Replayed(ada.clone())
    );
}

async fn a_replay_after_the_user_changed_or_was_deleted_returns_no_erased_data(backend: Backend) {
    let store = store(backend).await;
    let now = Timestamp::now();
    let ada = user("ada@example.com");
    let request = keyed("key-1", "{ada}", now);
    store.create(&ada, Some(&request)).await.expect("create");
    let changes = UserChanges {
        email: Some(Email::parse("lovelace@example.com").expect("email")),
        name: None,
    };
    let changed = store
        .update(
            &changes,
            &WriteContext::new(ada.id, Precondition::NONE, None),
        )
        .await
        .expect("update");
    assert_eq!(
        store
            .create(&user("ada@example.com"), Some(&request))
            .await
            .expect("replay"),
        Created::Replayed(changed),
        "the user as it is now"
    );
    store
        .delete(&WriteContext::new(ada.id, Precondition::NONE, None))
        .await
        .expect("delete");
    assert_eq!(
        store
            .create(&user("ada@example.com"), Some(&request))
            .await
            .expect("replay after delete"),
        Created::ReplayedDeleted,
        "nothing of the deleted user"
    );
    assert_eq!(
        store
            .create(
                &user("ada@example.com"),
                Some(&keyed_by(Some("client-b"), "key-1", "{ada}", now))
            )
            .await
            .expect("another caller"),
        Created::New,
        "another caller with the same key and body creates"
    );
}

async fn an_expired_idempotency_key_can_be_used_again(backend: Backend) {
    let store = store(backend).await;
    let mut expired = keyed("key-1", "{ada}", Timestamp::now());
    expired.expires_at = Timestamp::parse("2020-01-01T00:00:00.000Z").expect("time");
    store
        .create(&user("ada@example.com"), Some(&expired))
        .await
        .expect("first");
    let fresh = keyed("key-1", "{eve}", Timestamp::now());
    assert_eq!(
        store
            .create(&user("eve@example.com"), Some(&fresh))
            .await
            .expect("reuse"),
        Created::New
    );
}

async fn history_records_each_event_once_in_version_order(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    let other = user("eve@example.com");
    let event = |owner: &User, version: u64, kind: ChangeKind| HistoryEvent {
        user_id: owner.id,
        kind,
        version: Version::new(version),
        changed_fields: vec!["name".to_owned()],
        occurred_at: Timestamp::now(),
        actor: Some("worker-test".to_owned()),
    };
    for e in [
        event(&ada, 2, ChangeKind::Updated),
        event(&ada, 1, ChangeKind::Created),
        event(&other, 1, ChangeKind::Created),
        event(&ada, 2, ChangeKind::Updated),
        event(&ada, 3, ChangeKind::Deleted),
    ] {
        store.record(&e).await.expect("record");
    }
    let size = PageSize::parse("2").expect("size");
    let first = store
        .history(ada.id, PageRequest::first(size))
        .await
        .expect("page 1");
    let versions = |page: &Page<HistoryEvent>| {
        page.items
            .iter()
            .map(|e| e.version.get())
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&first), [1, 2]);
    assert!(first.more);
    let second = store
        .history(ada.id, PageRequest::after(Some(Version::new(2)), size))
        .await
        .expect("page 2");
    assert_eq!(versions(&second), [3]);
    assert!(!second.more);
    assert_eq!(second.items[0].kind, ChangeKind::Deleted);
    let none = store
        .history(user("z@example.com").id, PageRequest::first(size))
        .await
        .expect("empty");
    assert!(none.items.is_empty());
}

async fn overlapping_identical_email_changes_all_succeed(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada, None).await.expect("create");
    let changes = UserChanges {
        email: Some(Email::parse("lovelace@example.com").expect("email")),
        name: None,
    };
    let writes: Vec<WriteContext> = (0..6)
        .map(|_| WriteContext::new(ada.id, Precondition::NONE, None))
        .collect();
    let outcomes =
        futures::future::join_all(writes.iter().map(|write| store.update(&changes, write))).await;
    for outcome in outcomes {
        let updated = outcome.expect("no false 409: the address is taken by this very user");
        assert_eq!(updated.email.as_str(), "lovelace@example.com");
    }
    let stored = store.get(ada.id).await.expect("get").expect("user");
    assert_eq!(
        stored.version.get(),
        2,
        "one change; the five that find the address already moved change nothing"
    );
    assert!(matches!(
        store.create(&user("lovelace@example.com"), None).await,
        Err(StoreError::EmailTaken)
    ));
    store
        .create(&user("ada@example.com"), None)
        .await
        .expect("the old address is free");
}

async fn concurrent_writes_of_one_name_admit_only_the_current_if_match(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada, None).await.expect("create");
    let changes = rename("Same Name");
    // Half name the current version, half one that never existed: only
    // one request may win, whatever name the others would write.
    let writes: Vec<WriteContext> = (0..20)
        .map(|i| {
            let version = if i % 2 == 0 { 1 } else { 7 };
            WriteContext::new(
                ada.id,
                Precondition::one_of(vec![Version::new(version)]),
                None,
            )
        })
        .collect();
    let outcomes =
        futures::future::join_all(writes.iter().map(|write| store.update(&changes, write))).await;
    let won: Vec<&WriteContext> = writes
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(write, _)| write)
        .collect();
    assert_eq!(won.len(), 1, "exactly one write wins: {outcomes:?}");
    assert_eq!(
        won[0].precondition,
        Precondition::one_of(vec![Version::FIRST])
    );
    assert!(
        outcomes
            .iter()
            .filter(|outcome| outcome.is_err())
            .all(|outcome| matches!(outcome, Err(StoreError::PreconditionFailed))),
        "the others fail their precondition: {outcomes:?}"
    );
    let stored = store.get(ada.id).await.expect("get").expect("user");
    assert_eq!(
        (stored.version, stored.name.as_str()),
        (Version::new(2), "Same Name")
    );
}

async fn a_name_change_to_the_same_name_changes_nothing(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada, None).await.expect("create");
    let write = WriteContext::new(ada.id, Precondition::NONE, Some("editor-app"));
    let same = store
        .update(&rename("Ada Lovelace"), &write)
        .await
        .expect("no-op");
    assert_eq!(same, ada, "nothing written, not even the actor");
    let stale = WriteContext::new(ada.id, Precondition::one_of(vec![Version::new(2)]), None);
    assert!(
        matches!(
            store.update(&rename("Ada Lovelace"), &stale).await,
            Err(StoreError::PreconditionFailed)
        ),
        "a stale If-Match is a 412 even when nothing would change"
    );
    assert_eq!(store.get(ada.id).await.expect("get"), Some(ada));
}

async fn if_none_match_refuses_writes_to_the_versions_it_names(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada, None).await.expect("create");
    let excluding = |versions: Versions| {
        WriteContext::new(
            ada.id,
            Precondition {
                if_match: None,
                if_none_match: Some(versions),
            },
            None,
        )
    };
    let refused = [
        (excluding(Versions::Any), "*"),
        (
            excluding(Versions::OneOf(vec![Version::FIRST])),
            "the current version",
        ),
    ];
    for (write, why) in &refused {
        for changes in [rename("Other Name"), move_to("other@example.com")] {
            assert!(
                matches!(
                    store.update(&changes, write).await,
                    Err(StoreError::PreconditionFailed)
                ),
                "update with If-None-Match naming {why}: {changes:?}"
            );
        }
        assert!(
            matches!(
                store.delete(write).await,
                Err(StoreError::PreconditionFailed)
            ),
            "delete with If-None-Match naming {why}"
        );
    }
    assert_eq!(store.get(ada.id).await.expect("get"), Some(ada.clone()));
    let other = excluding(Versions::OneOf(vec![Version::new(5)]));
    let renamed = store
        .update(&rename("Other Name"), &other)
        .await
        .expect("If-None-Match naming another version");
    assert_eq!(renamed.version, Version::new(2));
}

async fn a_caller_id_of_any_length_scopes_an_idempotency_key(backend: Backend) {
    let store = store(backend).await;
    let now = Timestamp::now();
    // DynamoDB caps a sort key at 1,024 bytes; a token's client id has no cap.
    let long = "c".repeat(4_096);
    let ada = user("ada@example.com");
    let request = keyed_by(Some(&long), "key-1", "{ada}", now);
    assert_eq!(
        store.create(&ada, Some(&request)).await.expect("create"),
        Created::New
    );
    assert_eq!(
        store
            .create(&user("ada@example.com"), Some(&request))
            .await
            .expect("replay"),
        Created::Replayed(ada)
    );
    let shorter = keyed_by(Some(&long[1..]), "key-1", "{ada}", now);
    assert!(
        matches!(
            store.create(&user("ada@example.com"), Some(&shorter)).await,
            Err(StoreError::EmailTaken)
        ),
        "another caller's equal key is another key"
    );
}

on_both_backends!(
    concurrent_writes_of_one_name_admit_only_the_current_if_match,
    a_name_change_to_the_same_name_changes_nothing,
    if_none_match_refuses_writes_to_the_versions_it_names,
    a_caller_id_of_any_length_scopes_an_idempotency_key,
    overlapping_identical_email_changes_all_succeed,
    an_idempotency_key_is_private_to_its_caller,
    a_replay_after_the_user_changed_or_was_deleted_returns_no_erased_data,
    a_keyed_create_replays_for_the_same_request_only,
    an_expired_idempotency_key_can_be_used_again,
    history_records_each_event_once_in_version_order,
    created_users_can_be_read_back,
    create_refuses_a_taken_email,
    list_pages_in_creation_order,
    update_applies_changes_and_bumps_the_version,
    update_checks_preconditions_existence_and_uniqueness,
    an_update_to_the_same_email_changes_nothing_and_keeps_the_claim,
    delete_frees_the_email_and_checks_preconditions,
);
