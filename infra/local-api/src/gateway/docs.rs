//! Interactive documentation for the local API: `GET /openapi.yaml` serves
//! the repository's `openapi.yaml` and `GET /docs` serves Swagger UI on it,
//! whose "try it out" calls this local API. It stands in for nothing: the
//! deployed HTTP API has no such routes; they sit beside the gateway's
//! routes so that they share its port.
//!
//! The document is built into the binary, so it always describes the
//! handlers compiled beside it, wherever the binary runs from. Two things
//! differ from the file, both so that "try it out" works here: `servers`
//! starts with this API (a relative URL, whatever the port), and the
//! OAuth2 client-credentials scheme, whose token endpoint is the deployed
//! stack's, is a bearer token field (paste `local-api dev-token`'s output).
//!
//! Swagger UI's files come from `utoipa-swagger-ui`'s vendored copy, built
//! in: nothing is fetched at build or run time.

use axum::Router;
use axum::http::header;
use axum::routing::get;
use serde_norway::{Mapping, Value};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The repository's `openapi.yaml`, as this binary was built with it.
pub const OPENAPI_YAML: &str = include_str!("../../../../openapi.yaml");

/// Where Swagger UI is served.
pub const DOCS_PATH: &str = "/docs";

/// Where the document is served.
pub const SPEC_PATH: &str = "/openapi.yaml";

/// The security scheme `openapi.yaml`'s operations name.
const SECURITY_SCHEME: &str = "usersAuth";

/// The routes `GET /docs` (Swagger UI) and `GET /openapi.yaml`.
pub fn router() -> Router {
    let spec = match local_document(OPENAPI_YAML) {
        Ok(spec) => spec,
        Err(error) => {
            // Not reachable with the embedded document (a test parses it);
            // the file as it is still documents the API.
            tracing::error!(%error, "cannot adapt openapi.yaml for /docs; serving it unchanged");
            OPENAPI_YAML.to_owned()
        }
    };
    let config = Config::from(SPEC_PATH)
        // Swagger UI's default sends the document to an online validator.
        .validator_url("none")
        .display_operation_id(true)
        .try_it_out_enabled(true)
        .display_request_duration(true);
    Router::new()
        .merge(SwaggerUi::new(DOCS_PATH).config(config))
        .route(
            SPEC_PATH,
            get(move || async move { ([(header::CONTENT_TYPE, "application/yaml")], spec) }),
        )
}

/// `text` (an OpenAPI document) with this local API as its first server and
/// a bearer token field in place of the OAuth2 scheme, written as JSON
/// (which is YAML too): a YAML writer leaves `2024-11-30T12:00:00.000Z`
/// unquoted, and a YAML 1.1 reader (PyYAML, for one) then reads that
/// string example as a date; in JSON every string is quoted.
fn local_document(text: &str) -> Result<String, DocumentError> {
    let mut document: Value = serde_norway::from_str(text)?;
    if let Some(document) = document.as_mapping_mut() {
        let mut servers = vec![server("/", "this local API")];
        // The deployed API stays selectable; only the local entry's fixed port goes.
        if let Some(Value::Sequence(listed)) = document.get("servers") {
            servers.extend(listed.iter().filter(|s| !is_loopback(s)).cloned());
        }
        document.insert("servers".into(), Value::Sequence(servers));
        if let Some(schemes) = document
            .get_mut("components")
            .and_then(|c| c.get_mut("securitySchemes"))
            .and_then(Value::as_mapping_mut)
        {
            schemes.insert(SECURITY_SCHEME.into(), bearer_scheme());
        }
    }
    Ok(serde_json::to_string_pretty(&document)?)
}

/// Why `openapi.yaml` could not be adapted.
#[derive(Debug, thiserror::Error)]
enum DocumentError {
    #[error("not YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("not expressible as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn server(url: &str, description: &str) -> Value {
    let mut server = Mapping::new();
    server.insert("url".into(), url.into());
    server.insert("description".into(), description.into());
    Value::Mapping(server)
}

fn is_loopback(server: &Value) -> bool {
    server
        .get("url")
        .and_then(Value::as_str)
        .is_some_and(|url| {
            url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost")
        })
}

fn bearer_scheme() -> Value {
    let mut scheme = Mapping::new();
    scheme.insert("type".into(), "http".into());
    scheme.insert("scheme".into(), "bearer".into());
    scheme.insert("bearerFormat".into(), "JWT".into());
    scheme.insert(
        "description".into(),
        "A JWT access token. For a local API started with --dev-auth: the \
         output of `cargo run -p local-api -- dev-token`. For the deployed \
         API: a token from the stack's issuer (see the repository's \
         docs/api.md, \"Authorization\")."
            .into(),
    );
    Value::Mapping(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_document_lists_this_api_first_and_asks_for_a_bearer_token() {
        let text = local_document(OPENAPI_YAML).expect("openapi.yaml adapts");
        let document: Value = serde_norway::from_str(&text).expect("the result is YAML");
        let servers = document["servers"].as_sequence().expect("servers");
        assert_eq!(servers[0]["url"].as_str(), Some("/"));
        assert!(
            servers.iter().skip(1).all(|s| !is_loopback(s)),
            "the fixed-port local entry is replaced: {servers:?}"
        );
        let scheme = &document["components"]["securitySchemes"][SECURITY_SCHEME];
        assert_eq!(scheme["type"].as_str(), Some("http"));
        assert_eq!(scheme["scheme"].as_str(), Some("bearer"));
    }

    #[test]
    fn local_document_keeps_every_operation() {
        let original: Value = serde_norway::from_str(OPENAPI_YAML).expect("openapi.yaml is YAML");
        let adapted: Value = serde_norway::from_str(&local_document(OPENAPI_YAML).expect("adapts"))
            .expect("the result is YAML");
        assert_eq!(original["paths"], adapted["paths"]);
        assert_eq!(
            original["components"]["schemas"],
            adapted["components"]["schemas"]
        );
    }

    #[test]
    fn the_served_document_keeps_string_examples_strings_for_yaml_1_1_readers() {
        let text = local_document(OPENAPI_YAML).expect("adapts");
        let document: serde_json::Value = serde_json::from_str(&text).expect("the result is JSON");
        let example = &document["components"]["schemas"]["Timestamp"]["examples"][0];
        assert!(
            example.as_str().is_some_and(|t| t.starts_with("20")),
            "a quoted timestamp string: {example}"
        );
    }
}
