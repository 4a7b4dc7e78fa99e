//! Ties `openapi.yaml` to `template.yaml` and to the code: the document
//! describes exactly the routes API Gateway serves, no more and no fewer,
//! and exactly the security headers the functions send.

use std::collections::BTreeSet;

use local_api::stack::template::Template;
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

/// The headers `openapi.yaml` documents on every function response, by
/// their component names.
const DOCUMENTED_SECURITY_HEADERS: [&str; 6] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Content-Security-Policy",
    "Referrer-Policy",
    "Cross-Origin-Resource-Policy",
];

#[test]
fn the_functions_send_exactly_the_security_headers_openapi_documents() {
    let document = openapi();
    let components = document
        .get("components")
        .and_then(|c| c.get("headers"))
        .expect("openapi.yaml has header components");
    let documented: BTreeSet<(String, String)> = DOCUMENTED_SECURITY_HEADERS
        .iter()
        .map(|name| {
            let header = components.get(*name).expect("documented header");
            assert_eq!(
                header.get("required").and_then(Value::as_bool),
                Some(true),
                "{name} is required"
            );
            let value = header
                .get("schema")
                .and_then(|schema| schema.get("const"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{name} has a const value"));
            (name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    let sent: BTreeSet<(String, String)> = common::http::SECURITY_HEADERS
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    assert_eq!(sent, documented);
}

/// CORS-safelisted response header names (Fetch Standard, "CORS-safelisted
/// response-header name"): a browser script reads these without
/// `Access-Control-Expose-Headers`.
const CORS_SAFELISTED: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

/// The names of every header documented on a response, anywhere in the
/// document (operations' responses and response components), lowercased.
fn documented_response_headers(value: &Value, in_responses: bool, names: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(mapping) => {
            for (key, child) in mapping {
                let key = key.as_str().unwrap_or_default();
                if in_responses && key == "headers" {
                    if let Some(headers) = child.as_mapping() {
                        names.extend(
                            headers
                                .keys()
                                .filter_map(Value::as_str)
                                .map(str::to_ascii_lowercase),
                        );
                    }
                } else {
                    documented_response_headers(child, in_responses || key == "responses", names);
                }
            }
        }
        Value::Sequence(items) => {
            for item in items {
                documented_response_headers(item, in_responses, names);
            }
        }
        _ => {}
    }
}

/// Every response header `openapi.yaml` documents is one a browser script
/// may read (`ExposeHeaders`), but for the CORS-safelisted ones (always
/// readable) and the security headers (directives to the browser itself,
/// nothing a script acts on).
#[test]
fn cors_exposes_every_response_header_openapi_documents_for_scripts() {
    let mut documented = BTreeSet::new();
    documented_response_headers(&openapi(), false, &mut documented);
    let expected: BTreeSet<String> = documented
        .into_iter()
        .filter(|name| !CORS_SAFELISTED.contains(&name.as_str()))
        .filter(|name| {
            !common::http::SECURITY_HEADERS
                .iter()
                .any(|(security, _)| security.eq_ignore_ascii_case(name))
        })
        .collect();
    let path = local_api::default_template_path();
    let text = std::fs::read_to_string(path).expect("template.yaml is readable");
    let template: Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    let exposed: BTreeSet<String> = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template.yaml has resources")
        .values()
        .filter_map(|resource| resource.get("Properties")?.get("CorsConfiguration"))
        .flat_map(|cors| {
            cors.get("ExposeHeaders")
                .and_then(Value::as_sequence)
                .expect("CorsConfiguration lists ExposeHeaders")
                .iter()
                .map(|name| name.as_str().expect("a header name").to_ascii_lowercase())
        })
        .collect();
    assert!(
        expected.contains("idempotent-replayed"),
        "the walk finds response headers: {expected:?}"
    );
    assert_eq!(
        exposed, expected,
        "template.yaml's CorsConfiguration.ExposeHeaders must be openapi.yaml's response headers less the CORS-safelisted and security headers"
    );
}

/// The `/problems/…` types a text names.
fn problem_types(text: &str) -> BTreeSet<String> {
    text.match_indices("/problems/")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-' || *c == '/')
                .collect()
        })
        .collect()
}

#[test]
fn the_api_page_s_error_table_lists_every_problem_type_openapi_documents() {
    let openapi = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"))
        .expect("openapi.yaml is readable");
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md is readable");
    // The table's rows: `| status | `type` | when |` under "## Errors".
    let table: String = page
        .split("\n## Errors\n")
        .nth(1)
        .expect("docs/api.md has an Errors section")
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    let documented = problem_types(&openapi);
    assert!(documented.len() >= 10, "{documented:?}");
    assert_eq!(problem_types(&table), documented);
}

/// The user's fields as the document lists them, against the one list in
/// the code (`UserField::ALL`): the create and patch bodies take exactly
/// them, a user carries each, and a history event's `changedFields` names
/// exactly them.
#[test]
fn openapi_names_exactly_the_user_fields_the_code_knows() {
    let document = openapi();
    let schema = |name: &str| &document["components"]["schemas"][name];
    let keys = |value: &Value| -> BTreeSet<String> {
        value
            .as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let fields: BTreeSet<String> = common::domain::UserField::ALL
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(keys(&schema("NewUser")["properties"]), fields, "NewUser");
    assert_eq!(
        keys(&schema("UserPatch")["properties"]),
        fields,
        "UserPatch"
    );
    let user = keys(&schema("User")["properties"]);
    assert!(
        user.is_superset(&fields),
        "User lacks some of {fields:?}: {user:?}"
    );
    let changed: BTreeSet<String> = schema("HistoryEvent")["properties"]["changedFields"]["items"]
        ["enum"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(changed, fields, "HistoryEvent.changedFields");
}
