//! Ties `openapi.yaml` to `template.yaml`: the document describes exactly
//! the routes API Gateway serves, no more and no fewer.

use std::collections::BTreeSet;

use local_api::template::Template;
use serde_norway::Value;

/// The keys of an OpenAPI 3.1 Path Item that are operations.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn openapi() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let text = std::fs::read_to_string(path).expect("openapi.yaml is readable");
    serde_norway::from_str(&text).expect("openapi.yaml is YAML")
}

/// Route keys (`GET /users/{id}`) of every operation in the document.
fn documented_routes(document: &Value) -> BTreeSet<String> {
    let paths = document
        .get("paths")
        .and_then(Value::as_mapping)
        .expect("openapi.yaml has paths");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("a path is a string");
        let item = item.as_mapping().expect("a path item is a mapping");
        for key in item.keys().filter_map(Value::as_str) {
            if METHODS.contains(&key) {
                routes.insert(format!("{} {path}", key.to_ascii_uppercase()));
            }
        }
    }
    routes
}

#[test]
fn openapi_documents_exactly_the_routes_of_the_template() {
    let document = openapi();
    let version = document.get("openapi").and_then(Value::as_str);
    assert!(
        version.is_some_and(|v| v.starts_with("3.1.")),
        "openapi.yaml is OpenAPI 3.1, found {version:?}"
    );
    let documented = documented_routes(&document);
    let template = Template::load(&local_api::default_template_path()).expect("template.yaml");
    let served: BTreeSet<String> = template.routes.iter().map(|r| r.key()).collect();
    let undocumented: Vec<&String> = served.difference(&documented).collect();
    let not_served: Vec<&String> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "openapi.yaml and template.yaml disagree: routes in the template but not \
         documented: {undocumented:?}; documented but not in the template: {not_served:?}"
    );
}
