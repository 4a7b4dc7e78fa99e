//! The API calls the benchmarks make, as one table: the DynamoDB cost
//! section makes them all, the cold and warm runs and the handler
//! benchmarks use each route's first call as its workload. Shared with the
//! handler benchmarks (`benches/handlers.rs` includes this file).

use common::testing::ApiGatewayEvent;
use local_api::stack::template::{Route, Template};

/// One API call: what the report calls it, `METHOD path`, body, extra
/// header, expected status. The template's route (and so the function) is
/// the one whose path pattern the path fits. In the path, body and header,
/// `{user}`, `{other}`, `{doomed}` and `{missing}` are user ids, `{tag}` is
/// unique to the run, `{n}` counts the invocations and `{cursor}` points
/// into the list.
pub(crate) type Call = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<Header>,
    u16,
);
type Header = (&'static str, &'static str);

/// The calls whose DynamoDB requests are counted; the first call of each
/// route is also its function's workload in the cold and warm runs.
#[rustfmt::skip]
pub(crate) const CALLS: &[Call] = &[
    ("new user",                  "POST /users",                         Some(NEW_USER), None,      201),
    ("email taken",               "POST /users",                         Some(TAKEN),    None,      409),
    ("invalid body",              "POST /users",                         Some(INVALID),  None,      422),
    ("Idempotency-Key, first",    "POST /users",                         Some(KEYED),    Some(KEY), 201),
    ("Idempotency-Key, replayed", "POST /users",                         Some(KEYED),    Some(KEY), 201),
    ("found",                     "GET /users/{user}",                   None,           None,      200),
    ("not found",                 "GET /users/{missing}",                None,           None,      404),
    ("If-None-Match current",     "GET /users/{user}",                   None,           Some(ANY), 304),
    ("limit=20",                  "GET /users?limit=20",                 None,           None,      200),
    ("limit=20&cursor=…",         "GET /users?limit=20&cursor={cursor}", None,           None,      200),
    ("email=…",                   "GET /users?email=seed4@example.com",  None,           None,      200),
    ("name only",                 "PATCH /users/{other}",                Some(RENAME),   None,      200),
    ("email",                     "PATCH /users/{user}",                 Some(MOVED),    None,      200),
    ("stale If-Match",            "PATCH /users/{other}",                Some(STALE),    Some(OLD), 412),
    ("history",                   "GET /users/{user}/events",            None,           None,      200),
    ("exists",                    "DELETE /users/{doomed}",              None,           None,      204),
    ("not found",                 "DELETE /users/{missing}",             None,           None,      404),
];

const NEW_USER: &str = r#"{"email":"{tag}-{n}@example.com","name":"Bench User {n}"}"#;
const TAKEN: &str = r#"{"email":"seed3@example.com","name":"Taken"}"#;
const KEYED: &str = r#"{"email":"{tag}-keyed@example.com","name":"Keyed"}"#;
const KEY: Header = ("idempotency-key", "{tag}-key");
const MOVED: &str = r#"{"email":"{tag}-moved@example.com"}"#;
const STALE: &str = r#"{"name":"Stale"}"#;
const INVALID: &str = r#"{"email":"nope"}"#;
const RENAME: &str = r#"{"name":"Renamed {n}"}"#;
const ANY: Header = ("if-none-match", "*");
const OLD: Header = ("if-match", "\"1\"");

/// `text` with each `{name}` of `vars` replaced by its value.
pub(crate) fn fill(text: &str, vars: &[(&str, String)]) -> String {
    let fill =
        |text: String, (name, value): &(&str, String)| text.replace(&format!("{{{name}}}"), value);
    vars.iter().fold(text.to_owned(), fill)
}

/// The template's route that `METHOD path` fits.
pub(crate) fn route<'t>(template: &'t Template, request: &str) -> Option<&'t Route> {
    let (method, path) = request.split_once(' ')?;
    let path: Vec<&str> = path.split('?').next()?.split('/').collect();
    template.routes.iter().find(|route| {
        let pattern: Vec<&str> = route.path.split('/').collect();
        let fits = |(p, s): (&&str, &&str)| p == s || p.starts_with('{');
        route.method == method && pattern.len() == path.len() && pattern.iter().zip(&path).all(fits)
    })
}

/// The event of `call`, with `vars` filled in.
pub(crate) fn event(template: &Template, call: &Call, vars: &[(&str, String)]) -> Vec<u8> {
    request(template, call, vars)
        .map(|event| event.to_json())
        .unwrap_or_default()
}

/// The first call of `route`: its workload.
pub(crate) fn workload(template: &Template, route: &Route) -> Option<&'static Call> {
    let fits = |call: &&Call| self::route(template, call.1) == Some(route);
    CALLS.iter().find(fits)
}

/// The event builder of `call`, with `vars` filled in.
pub(crate) fn request(
    template: &Template,
    call: &Call,
    vars: &[(&str, String)],
) -> Option<ApiGatewayEvent> {
    let (_, request, body, header, _) = call;
    let key = route(template, request)?.key();
    let path = fill(request.split_once(' ')?.1, vars);
    let mut event = ApiGatewayEvent::new(&key, &path);
    if let Some(body) = body {
        let media = match key.starts_with("PATCH") {
            true => "application/merge-patch+json",
            false => "application/json",
        };
        event = event.body(media, fill(body, vars));
    }
    if let Some((name, value)) = header {
        event = event.header(name, &fill(value, vars));
    }
    Some(event)
}

/// `POST /users` with a fresh address for invocation `n` of a run tagged `tag`.
pub(crate) fn create_event(template: &Template, tag: &str, n: usize) -> Vec<u8> {
    let vars = [("tag", tag.to_owned()), ("n", n.to_string())];
    event(template, &CALLS[0], &vars)
}
