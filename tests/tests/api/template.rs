//! Ties the code to `template.yaml`: every route has a handler and every
//! handler a route, the table has the indexes the store queries, and each
//! route needs its scope. (Each role's grants are checked against what the
//! functions actually call by the `--lambda` run: see `infra/test.sh`.)

use std::collections::BTreeSet;

use local_api::gateway::server::HANDLERS;
use local_api::stack::template::Template;

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
fn every_template_function_is_a_crate_of_the_workspace() {
    let template_path = local_api::default_template_path();
    let root = template_path
        .parent()
        .expect("template.yaml is in the root");
    for function in template().functions {
        let manifest = root
            .join("functions")
            .join(&function.binary)
            .join("Cargo.toml");
        assert!(
            manifest.exists(),
            "{} is built as {}, but {} does not exist",
            function.logical_id,
            function.binary,
            manifest.display()
        );
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
        [storage::BY_CREATION_INDEX, storage::BY_EMAIL_INDEX].into()
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
