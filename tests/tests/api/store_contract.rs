//! One contract, two stores: the in-memory store must behave exactly as the
//! DynamoDB store does against DynamoDB Local.

use common::domain::{
    Email, PageSize, Precondition, Timestamp, User, UserChanges, UserName, Version,
};
use common::store::StoreError;

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
    store.create(&ada).await.expect("create");
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
    store.create(&user("ada@example.com")).await.expect("first");
    let second = user("ada@example.com");
    assert!(matches!(
        store.create(&second).await,
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
        store.create(&u).await.expect("create");
        ids.push(u.id);
    }
    let size = PageSize::parse("3").expect("size");
    let first = store.list(None, size).await.expect("page 1");
    assert_eq!(
        first.items.iter().map(|u| u.id).collect::<Vec<_>>(),
        ids[..3]
    );
    assert_eq!(first.last_if_more, Some(ids[2]));
    let second = store.list(first.last_if_more, size).await.expect("page 2");
    assert_eq!(
        second.items.iter().map(|u| u.id).collect::<Vec<_>>(),
        ids[3..6]
    );
    let third = store.list(second.last_if_more, size).await.expect("page 3");
    assert_eq!(
        third.items.iter().map(|u| u.id).collect::<Vec<_>>(),
        ids[6..]
    );
    assert_eq!(third.last_if_more, None, "the last page has no cursor");
    let exact = store
        .list(None, PageSize::parse("7").expect("size"))
        .await
        .expect("all");
    assert_eq!(exact.items.len(), 7);
    assert_eq!(
        exact.last_if_more, None,
        "a page that ends the list exactly has no cursor"
    );
}

async fn update_applies_changes_and_bumps_the_version(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada).await.expect("create");
    let later = Timestamp::now();
    let renamed = store
        .update(ada.id, &rename("Countess"), &Precondition::None, later)
        .await
        .expect("rename");
    assert_eq!(renamed.name.as_str(), "Countess");
    assert_eq!(renamed.version, Version::new(2));
    assert_eq!(renamed.updated_at, later);
    assert_eq!(renamed.created_at, ada.created_at);
    assert_eq!(store.get(ada.id).await.expect("get"), Some(renamed.clone()));

    let moved = store
        .update(
            ada.id,
            &move_to("ada@new.example"),
            &Precondition::OneOf(vec![Version::new(2)]),
            Timestamp::now(),
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
        .create(&user("ada@example.com"))
        .await
        .expect("old address can be claimed again");
}

async fn update_checks_preconditions_existence_and_uniqueness(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    let eve = user("eve@example.com");
    store.create(&ada).await.expect("create");
    store.create(&eve).await.expect("create");
    let stale = Precondition::OneOf(vec![Version::new(5)]);
    for changes in [rename("Eve"), move_to("x@example.com")] {
        assert!(matches!(
            store
                .update(ada.id, &changes, &stale, Timestamp::now())
                .await,
            Err(StoreError::PreconditionFailed)
        ));
        assert!(matches!(
            store
                .update(
                    user("z@example.com").id,
                    &changes,
                    &Precondition::None,
                    Timestamp::now()
                )
                .await,
            Err(StoreError::NotFound)
        ));
    }
    assert!(matches!(
        store
            .update(
                ada.id,
                &move_to("eve@example.com"),
                &Precondition::None,
                Timestamp::now()
            )
            .await,
        Err(StoreError::EmailTaken)
    ));
    assert!(
        matches!(
            store
                .update(
                    ada.id,
                    &rename("Eve"),
                    &Precondition::OneOf(vec![]),
                    Timestamp::now()
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

async fn update_to_the_same_email_keeps_the_claim(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada).await.expect("create");
    let same = store
        .update(
            ada.id,
            &move_to("ADA@example.com"),
            &Precondition::None,
            Timestamp::now(),
        )
        .await
        .expect("same address");
    assert_eq!(same.version, Version::new(2));
    assert!(matches!(
        store.create(&user("ada@example.com")).await,
        Err(StoreError::EmailTaken)
    ));
}

async fn delete_frees_the_email_and_checks_preconditions(backend: Backend) {
    let store = store(backend).await;
    let ada = user("ada@example.com");
    store.create(&ada).await.expect("create");
    assert!(matches!(
        store
            .delete(ada.id, &Precondition::OneOf(vec![Version::new(2)]))
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    store
        .delete(ada.id, &Precondition::OneOf(vec![Version::FIRST]))
        .await
        .expect("delete");
    assert_eq!(store.get(ada.id).await.expect("get"), None);
    assert!(matches!(
        store.delete(ada.id, &Precondition::None).await,
        Err(StoreError::NotFound)
    ));
    store
        .create(&user("ada@example.com"))
        .await
        .expect("address free again");
    let listed = store.list(None, PageSize::default()).await.expect("list");
    assert_eq!(listed.items.len(), 1);
}

on_both_backends!(
    created_users_can_be_read_back,
    create_refuses_a_taken_email,
    list_pages_in_creation_order,
    update_applies_changes_and_bumps_the_version,
    update_checks_preconditions_existence_and_uniqueness,
    update_to_the_same_email_keeps_the_claim,
    delete_frees_the_email_and_checks_preconditions,
);
