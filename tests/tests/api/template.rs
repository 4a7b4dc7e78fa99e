//! Ties the code to `template.yaml`: every route has a handler and every
//! handler a route, and each function's IAM grants are exactly the
//! DynamoDB actions it declares.

use std::collections::BTreeSet;

use local_api::server::HANDLERS;
use local_api::template::Template;

fn template() -> Template {
    Template::load(&local_api::default_template_path()).expect("template.yaml parses")
}

#[test]
fn every_route_has_a_handler_and_every_handler_a_route() {
    let template = template();
    let routed: BTreeSet<&str> = template
        .routes
        .iter()
        .map(|r| r.function.as_str())
        .collect();
    let handled: BTreeSet<&str> = HANDLERS.iter().map(|(name, _)| *name).collect();
    assert_eq!(routed, handled);
    let keys: BTreeSet<String> = template.routes.iter().map(|r| r.key()).collect();
    let expected: BTreeSet<String> = [
        "POST /users",
        "GET /users",
        "GET /users/{id}",
        "PATCH /users/{id}",
        "DELETE /users/{id}",
        "GET /users/{id}/events",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(keys, expected);
}

#[test]
fn each_function_is_granted_exactly_the_dynamodb_actions_it_calls() {
    let template = template();
    let declared: [(&str, &[&str]); 7] = [
        ("create-user", create_user::DYNAMODB_ACTIONS),
        ("get-user", get_user::DYNAMODB_ACTIONS),
        ("list-users", list_users::DYNAMODB_ACTIONS),
        ("update-user", update_user::DYNAMODB_ACTIONS),
        ("delete-user", delete_user::DYNAMODB_ACTIONS),
        ("list-user-events", list_user_events::DYNAMODB_ACTIONS),
        ("history-worker", history_worker::DYNAMODB_ACTIONS),
    ];
    let functions: BTreeSet<&str> = template.grants.keys().map(String::as_str).collect();
    let checked: BTreeSet<&str> = declared.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        functions, checked,
        "every function in the template declares its actions"
    );
    for (function, actions) in declared {
        let grants = &template.grants[function];
        let granted: BTreeSet<&str> = grants.iter().map(|g| g.action.as_str()).collect();
        let expected: BTreeSet<&str> = actions.iter().copied().collect();
        assert_eq!(granted, expected, "actions granted to {function}");
        for grant in grants {
            let allowed: &[&str] = match grant.action.as_str() {
                "dynamodb:Query" if function == "list-users" => &[
                    "${UsersTable.Arn}/index/byCreation",
                    "${UsersTable.Arn}/index/byEmail",
                ],
                "dynamodb:DescribeStream"
                | "dynamodb:GetRecords"
                | "dynamodb:GetShardIterator"
                | "dynamodb:ListStreams" => &["UsersTable.StreamArn"],
                _ => &["UsersTable.Arn"],
            };
            assert!(
                allowed.contains(&grant.resource.as_str()),
                "{function}: {grant:?} is broader than needed"
            );
        }
    }
}

#[test]
fn the_table_definition_has_the_indexes_the_store_queries() {
    let template = template();
    let indexes: BTreeSet<&str> = template
        .table
        .global_secondary_indexes
        .iter()
        .map(|i| i.index_name.as_str())
        .collect();
    assert_eq!(
        indexes,
        [
            common::store::BY_CREATION_INDEX,
            common::store::BY_EMAIL_INDEX
        ]
        .into()
    );
}

#[test]
fn reading_routes_need_users_read_and_changing_routes_users_write() {
    for route in template().routes {
        let expected = if route.method == "GET" {
            "users/read"
        } else {
            "users/write"
        };
        assert_eq!(route.scopes, [expected], "{}", route.key());
    }
}
