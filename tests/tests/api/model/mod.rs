//! A model-based test of the whole API: `proptest-state-machine` generates
//! sequences of requests (creates by two callers with and without
//! `Idempotency-Key` and look-alike or quoted addresses, conditional gets,
//! list walks and email lookups, patches with current, stale, weak and `*`
//! `If-Match` and with `If-None-Match`, deletes, history reads), sends each
//! to every backend of the run, and checks every answer against the
//! reference model (`reference.rs`, written from docs/api.md): status,
//! problem type, body, `ETag`, `Location`, `Idempotent-Replayed`. Where a
//! run has two backends, their answers must also be identical, step by
//! step. A failure shrinks to a minimal sequence, printed as curl commands.

mod reference;

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use local_api::gateway::auth::DevToken;
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use reqwest::Method;
use serde_json::{Map, Value};

use self::reference::{Answer, EMAILS, NAMES, Op, Reference, Tags, Target};
use crate::support::{Api, Backend};

/// A well-formed user id no sequence ever creates.
const NEVER_ID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
/// Callers, by their tokens' client ids: keys are private to each.
const CALLERS: [&str; 2] = ["model-caller-a", "model-caller-b"];

/// The generator: sequences drawn from the model's own state, so a patch
/// names a user that exists (or was deleted) and tags name its versions.
#[derive(Debug)]
struct Generator;

fn target(users: usize) -> BoxedStrategy<Target> {
    if users == 0 {
        return prop_oneof![Just(Target::Never), Just(Target::Malformed)].boxed();
    }
    prop_oneof![
        12 => (0..users).prop_map(Target::User),
        1 => Just(Target::Never),
        1 => Just(Target::Malformed),
    ]
    .boxed()
}

/// Tags naming the version a user has at generation time, or others.
fn tags(version: u64) -> BoxedStrategy<Tags> {
    let stale = if version > 1 {
        version - 1
    } else {
        version + 1
    };
    prop_oneof![
        4 => Just(Tags::List(vec![(false, version)])),
        2 => Just(Tags::List(vec![(false, stale)])),
        1 => Just(Tags::List(vec![(false, 7)])),
        1 => Just(Tags::List(vec![(true, version)])),
        1 => Just(Tags::List(vec![(false, 99), (false, version)])),
        1 => Just(Tags::Star),
    ]
    .boxed()
}

fn version_of(state: &Reference, target: Target) -> u64 {
    match target {
        Target::User(i) => state.users.get(i).map_or(1, |u| u.version),
        Target::Never | Target::Malformed => 1,
    }
}

impl ReferenceStateMachine for Generator {
    type State = Reference;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Reference> {
        Just(Reference::default()).boxed()
    }

    fn transitions(state: &Reference) -> BoxedStrategy<Op> {
        let users = state.users.len();
        let state = state.clone();
        let create = (
            0..CALLERS.len(),
            prop::option::weighted(0.4, 0..3usize),
            0..EMAILS.len(),
            0..NAMES.len(),
        )
            .prop_map(|(caller, key, email, name)| Op::Create {
                caller,
                key,
                email,
                name,
            });
        let s = state.clone();
        let get = target(users).prop_flat_map(move |user| {
            let version = version_of(&s, user);
            prop::option::weighted(0.6, tags(version)).prop_map(move |if_none_match| Op::Get {
                user,
                if_none_match,
            })
        });
        let s = state.clone();
        let patch = target(users).prop_flat_map(move |user| {
            let version = version_of(&s, user);
            (
                prop::option::weighted(0.5, 0..EMAILS.len()),
                prop::option::weighted(0.7, 0..NAMES.len()),
                prop::option::weighted(0.6, tags(version)),
                prop::option::weighted(0.15, tags(version)),
            )
                .prop_map(move |(email, name, if_match, if_none_match)| Op::Patch {
                    user,
                    email,
                    name,
                    if_match,
                    if_none_match,
                })
        });
        let s = state;
        let delete = target(users).prop_flat_map(move |user| {
            let version = version_of(&s, user);
            (
                prop::option::weighted(0.6, tags(version)),
                prop::option::weighted(0.15, tags(version)),
            )
                .prop_map(move |(if_match, if_none_match)| Op::Delete {
                    user,
                    if_match,
                    if_none_match,
                })
        });
        prop_oneof![
            4 => create,
            2 => get,
            1 => (1..4usize).prop_map(|limit| Op::List { limit }),
            // Not the last spelling: a query has no JSON null.
            1 => (0..EMAILS.len() - 1).prop_map(|email| Op::Find { email }),
            5 => patch,
            1 => delete,
            1 => target(users).prop_map(|user| Op::Events { user }),
        ]
        .boxed()
    }

    fn apply(mut state: Reference, op: &Op) -> Reference {
        state.step(op);
        state
    }

    /// A shrunk sequence may have lost the create a later step names.
    fn preconditions(state: &Reference, op: &Op) -> bool {
        let user = match op {
            Op::Get { user, .. }
            | Op::Patch { user, .. }
            | Op::Delete { user, .. }
            | Op::Events { user } => *user,
            Op::Create { .. } | Op::List { .. } | Op::Find { .. } => return true,
        };
        match user {
            Target::User(i) => i < state.users.len(),
            Target::Never | Target::Malformed => true,
        }
    }
}

/// The path segment a target names, on a backend whose users have `ids`.
fn id_of(target: Target, ids: &[String]) -> String {
    match target {
        Target::User(i) => ids[i].clone(),
        Target::Never => NEVER_ID.to_owned(),
        Target::Malformed => "not-a-ulid".to_owned(),
    }
}

/// A request, as sent and as printed.
#[derive(Clone)]
struct Request {
    method: Method,
    path: String,
    caller: usize,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Value)>,
}

fn patch_body(email: Option<usize>, name: Option<usize>) -> Value {
    let mut body = Map::new();
    if let Some(email) = email {
        body.insert(
            "email".to_owned(),
            EMAILS[email].0.map_or(Value::Null, Value::from),
        );
    }
    if let Some(name) = name {
        body.insert(
            "name".to_owned(),
            NAMES[name].0.map_or(Value::Null, Value::from),
        );
    }
    Value::Object(body)
}

fn conditional(headers: &mut Vec<(&'static str, String)>, name: &'static str, tags: Option<&Tags>) {
    if let Some(tags) = tags {
        headers.push((name, tags.header()));
    }
}

/// The request `op` makes (a list walk's first page), naming users by `ids`.
fn request(op: &Op, ids: &[String]) -> Request {
    let mut headers = Vec::new();
    let (method, path, caller, body) = match op {
        Op::Create {
            caller,
            key,
            email,
            name,
        } => {
            if let Some(key) = key {
                headers.push(("idempotency-key", format!("model-key-{key}")));
            }
            let body = patch_body(Some(*email), Some(*name));
            (
                Method::POST,
                "/users".to_owned(),
                *caller,
                Some(("application/json", body)),
            )
        }
        Op::Get {
            user,
            if_none_match,
        } => {
            conditional(&mut headers, "if-none-match", if_none_match.as_ref());
            (
                Method::GET,
                format!("/users/{}", id_of(*user, ids)),
                0,
                None,
            )
        }
        Op::List { limit } => (Method::GET, format!("/users?limit={limit}"), 0, None),
        Op::Find { email } => {
            let spelled = EMAILS[*email].0.unwrap_or_default();
            let query: String = url_encode(spelled);
            (Method::GET, format!("/users?email={query}"), 0, None)
        }
        Op::Patch {
            user,
            email,
            name,
            if_match,
            if_none_match,
        } => {
            conditional(&mut headers, "if-match", if_match.as_ref());
            conditional(&mut headers, "if-none-match", if_none_match.as_ref());
            let body = patch_body(*email, *name);
            let path = format!("/users/{}", id_of(*user, ids));
            (
                Method::PATCH,
                path,
                0,
                Some(("application/merge-patch+json", body)),
            )
        }
        Op::Delete {
            user,
            if_match,
            if_none_match,
        } => {
            conditional(&mut headers, "if-match", if_match.as_ref());
            conditional(&mut headers, "if-none-match", if_none_match.as_ref());
            (
                Method::DELETE,
                format!("/users/{}", id_of(*user, ids)),
                0,
                None,
            )
        }
        Op::Events { user } => {
            let path = format!("/users/{}/events?limit=100", id_of(*user, ids));
            (Method::GET, path, 0, None)
        }
    };
    Request {
        method,
        path,
        caller,
        headers,
        body,
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `op` as a curl command, users named `$U0`, `$U1`… in creation order.
impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = (0..64).map(|i| format!("$U{i}")).collect();
        let request = request(self, &names);
        write!(
            f,
            "curl -si -X {} \"$API{}\" -H \"authorization: Bearer $TOKEN_{}\"",
            request.method, request.path, request.caller
        )?;
        for (name, value) in &request.headers {
            write!(f, " -H '{name}: {value}'")?;
        }
        if let Some((media_type, body)) = &request.body {
            write!(f, " -H 'content-type: {media_type}' -d '{body}'")?;
        }
        if let Op::List { .. } = self {
            write!(f, "   # and each nextCursor")?;
        }
        Ok(())
    }
}

/// One answer, as far as the model and the other backends judge it.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    status: u16,
    etag: Option<String>,
    location: Option<String>,
    replayed: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// One backend of a run, with the ids its users got.
struct Subject {
    backend: Backend,
    api: Api,
    ids: Vec<String>,
    /// Each user's last seen (version, createdAt, updatedAt).
    seen: Vec<Option<(u64, Value, Value)>>,
}

impl Subject {
    async fn send(&self, request: &Request, tokens: &[String]) -> Observed {
        let mut builder = self
            .api
            .anonymous(request.method.clone(), &request.path)
            .bearer_auth(&tokens[request.caller]);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some((media_type, body)) = &request.body {
            builder = builder
                .header("content-type", *media_type)
                .body(body.to_string());
        }
        let response = builder.send().await.expect("the API answers");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, location, replayed, content_type) = (
            header("etag"),
            header("location"),
            header("idempotent-replayed"),
            header("content-type"),
        );
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Observed {
            status,
            etag,
            location,
            replayed,
            content_type,
            body,
        }
    }

    /// Every page of `GET /users?limit=`, as one answer whose body is the
    /// list of user indexes (or the first failing page's answer).
    async fn walk(&self, first: Request, tokens: &[String]) -> Observed {
        let mut path = first.path.clone();
        let mut items = Vec::new();
        for _ in 0..100 {
            let page = self
                .send(
                    &Request {
                        path: path.clone(),
                        ..first.clone()
                    },
                    tokens,
                )
                .await;
            if page.status != 200 {
                return page;
            }
            items.extend(page.body["items"].as_array().cloned().unwrap_or_default());
            match page.body["nextCursor"].as_str() {
                Some(cursor) => path = format!("{}&cursor={cursor}", first.path),
                None => {
                    return Observed {
                        body: Value::Array(items),
                        ..page
                    };
                }
            }
        }
        panic!("{:?}: a list walk of over 100 pages", self.backend);
    }

    /// `value` with user ids as `U<index>` and what legitimately differs
    /// between backends (times, request ids, cursors) left out.
    fn normalized(&self, observed: &Observed) -> Observed {
        let mut normalized = observed.clone();
        normalized.location = observed
            .location
            .as_ref()
            .map(|location| self.rename(location));
        normalized.body = self.normalize_value(&observed.body);
        normalized
    }

    fn rename(&self, text: &str) -> String {
        self.ids
            .iter()
            .enumerate()
            .fold(text.to_owned(), |text, (i, id)| {
                text.replace(id, &format!("U{i}"))
            })
    }

    fn normalize_value(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.rename(text)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.normalize_value(v)).collect())
            }
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .filter(|(name, _)| {
                        ![
                            "createdAt",
                            "updatedAt",
                            "occurredAt",
                            "requestId",
                            "instance",
                            "nextCursor",
                        ]
                        .contains(&name.as_str())
                    })
                    .map(|(name, v)| (name.clone(), self.normalize_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Which backends a run checks; more than one means their answers must
/// also be identical.
trait Backends: 'static {
    const LIST: &'static [Backend];
}

/// The system under test: the backends, the model's own copy of the state
/// (to predict each answer), and what was sent so far, for the report.
struct System<B> {
    runtime: tokio::runtime::Runtime,
    subjects: Vec<Subject>,
    tokens: Vec<String>,
    model: Reference,
    transcript: Vec<String>,
    backends: PhantomData<B>,
}

impl<B> System<B> {
    fn fail(&self, why: String) -> ! {
        panic!(
            "{why}\n\nthe sequence, as curl commands ($API the local API; $TOKEN_0 and $TOKEN_1 \
             development tokens of {CALLERS:?}; $U<n> the id of the n-th user created):\n{}",
            self.transcript.join("\n")
        );
    }

    /// Checks one backend's answer against the model's.
    fn check(&mut self, subject: usize, expected: &Answer, observed: &Observed) {
        let backend = self.subjects[subject].backend;
        let step = self.transcript.len();
        let mismatch = |what: &str| {
            format!(
                "step {step} on {backend:?}: {what}\n  expected {expected:?}\n  observed {} {}\n  (etag {:?}, location {:?}, idempotent-replayed {:?})",
                observed.status, observed.body, observed.etag, observed.location, observed.replayed
            )
        };
        let status = match expected {
            Answer::User { status, .. } => *status,
            Answer::NotModified { .. } => 304,
            Answer::NoContent => 204,
            Answer::Users(_) | Answer::History { .. } => 200,
            Answer::Problem(status, _) => *status,
        };
        let history_lags = matches!(expected, Answer::History { .. }) && observed.status == 404;
        if observed.status != status && !history_lags {
            self.fail(mismatch("wrong status"));
        }
        match expected {
            Answer::Problem(_, kind) => {
                if observed.content_type.as_deref() != Some("application/problem+json")
                    || observed.body["type"] != *kind
                {
                    self.fail(mismatch("wrong problem"));
                }
            }
            Answer::User {
                status,
                index,
                replayed,
            } => {
                let index = *index;
                let model = self.model.users[index].clone();
                let body = &observed.body;
                let id = body["id"].as_str().unwrap_or_default().to_owned();
                let ids = &mut self.subjects[subject].ids;
                if index == ids.len() {
                    if ids.contains(&id) || id.len() != 26 {
                        self.fail(mismatch("a new user needs a new id"));
                    }
                    ids.push(id.clone());
                    self.subjects[subject].seen.push(None);
                } else if ids[index] != id {
                    self.fail(mismatch("another user's id"));
                }
                let etag = format!("\"{}\"", model.version);
                if body["email"] != model.email
                    || body["name"] != model.name
                    || body["version"] != model.version
                    || observed.etag.as_deref() != Some(&etag)
                {
                    self.fail(mismatch("wrong user or ETag"));
                }
                let location = format!("/users/{id}");
                if (*status == 201) != (observed.location.as_deref() == Some(&location)) {
                    self.fail(mismatch(
                        "Location is the user's path on a 201, absent otherwise",
                    ));
                }
                if *replayed != (observed.replayed.as_deref() == Some("true")) {
                    self.fail(mismatch("Idempotent-Replayed: true on a replay only"));
                }
                let times = (body["createdAt"].clone(), body["updatedAt"].clone());
                let seen = &mut self.subjects[subject].seen[index];
                if let Some((version, created, updated)) = seen.clone()
                    && (created != times.0 || (version == model.version && updated != times.1))
                {
                    self.fail(mismatch(
                        "createdAt never changes; updatedAt only with the version",
                    ));
                }
                *seen = Some((model.version, times.0, times.1));
            }
            Answer::NotModified { index } => {
                let etag = format!("\"{}\"", self.model.users[*index].version);
                if observed.etag.as_deref() != Some(&etag) {
                    self.fail(mismatch("a 304 carries the current ETag"));
                }
            }
            Answer::NoContent => {}
            Answer::Users(indexes) => {
                let ids = &self.subjects[subject].ids;
                let listed: Vec<&str> = observed
                    .body
                    .as_array()
                    .or_else(|| observed.body["items"].as_array())
                    .map(|items| items.iter().filter_map(|u| u["id"].as_str()).collect())
                    .unwrap_or_default();
                let expected: Vec<&str> = indexes.iter().map(|&i| ids[i].as_str()).collect();
                if listed != expected {
                    self.fail(mismatch("wrong users, or not in creation order"));
                }
            }
            Answer::History { index } => {
                let recorded = history(&observed.body);
                let full = expected_history(&self.model, *index);
                if !full.starts_with(&recorded) {
                    self.fail(mismatch(&format!(
                        "the history must be a prefix of {full:?}, got {recorded:?}"
                    )));
                }
            }
        }
    }
}

type Event = (String, u64, Vec<String>);

fn history(body: &Value) -> Vec<Event> {
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let mut fields: Vec<String> = e["changedFields"]
                        .as_array()
                        .map(|f| {
                            f.iter()
                                .filter_map(|n| n.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    fields.sort();
                    (
                        e["type"].as_str().unwrap_or_default().to_owned(),
                        e["version"].as_u64().unwrap_or_default(),
                        fields,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expected_history(model: &Reference, index: usize) -> Vec<Event> {
    model.users[index]
        .history
        .iter()
        .map(|(kind, version, fields)| {
            let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
            fields.sort();
            ((*kind).to_owned(), *version, fields)
        })
        .collect()
}

struct ModelTest<B>(PhantomData<B>);

impl<B: Backends> StateMachineTest for ModelTest<B> {
    type SystemUnderTest = System<B>;
    type Reference = Generator;

    fn init_test(_: &Reference) -> System<B> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let subjects = runtime.block_on(async {
            let mut subjects = Vec::new();
            for &backend in B::LIST {
                subjects.push(Subject {
                    backend,
                    api: Api::local(backend).await,
                    ids: Vec::new(),
                    seen: Vec::new(),
                });
            }
            subjects
        });
        let tokens = CALLERS
            .iter()
            .map(|caller| {
                DevToken {
                    client_id: (*caller).to_owned(),
                    ..DevToken::default()
                }
                .sign()
                .expect("a development token")
            })
            .collect();
        System {
            runtime,
            subjects,
            tokens,
            model: Reference::default(),
            transcript: Vec::new(),
            backends: PhantomData,
        }
    }

    fn apply(mut system: System<B>, _: &Reference, op: Op) -> System<B> {
        let expected = system.model.step(&op);
        let mut line = format!("{op:?}");
        if let (
            Op::Create { .. },
            Answer::User {
                index,
                replayed: false,
                ..
            },
        ) = (&op, &expected)
        {
            line.push_str(&format!("   # U{index}"));
        }
        system.transcript.push(line);
        let observed: Vec<Observed> = system.runtime.block_on(async {
            let mut observed = Vec::new();
            for subject in &system.subjects {
                let request = request(&op, &subject.ids);
                observed.push(match op {
                    Op::List { .. } => subject.walk(request, &system.tokens).await,
                    _ => subject.send(&request, &system.tokens).await,
                });
            }
            observed
        });
        for (i, answer) in observed.iter().enumerate() {
            system.check(i, &expected, answer);
        }
        // The history worker runs behind each store at its own pace.
        if !matches!(op, Op::Events { .. }) {
            let first = system.subjects[0].normalized(&observed[0]);
            for (subject, answer) in system.subjects.iter().zip(&observed).skip(1) {
                let other = subject.normalized(answer);
                if other != first {
                    let step = system.transcript.len();
                    system.fail(format!(
                        "step {step}: the backends part\n  {:?}: {first:?}\n  {:?}: {other:?}",
                        system.subjects[0].backend, subject.backend
                    ));
                }
            }
        }
        system
    }

    /// Once the history worker has caught up, every user's history is
    /// exactly the model's.
    fn teardown(system: System<B>, _: Reference) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for subject in &system.subjects {
            for index in 0..subject.ids.len() {
                let expected = expected_history(&system.model, index);
                let path = format!("/users/{}/events?limit=100", subject.ids[index]);
                loop {
                    let (_, body) = system.runtime.block_on(subject.api.get_json(&path));
                    let recorded = history(&body);
                    if recorded == expected {
                        break;
                    }
                    if Instant::now() > deadline || !expected.starts_with(&recorded) {
                        system.fail(format!(
                            "{:?}: U{index}'s history is {recorded:?}, the model's {expected:?}",
                            subject.backend
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// The memory store alone (the local API's default).
struct OnMemory;
impl Backends for OnMemory {
    const LIST: &'static [Backend] = &[Backend::Memory];
}

/// Both stores, side by side: the same sequence must get the same answers.
struct OnBothStores;
impl Backends for OnBothStores {
    const LIST: &'static [Backend] = &[Backend::Memory, Backend::DynamoDb];
}

/// The functions as their own binaries under their IAM roles (`--lambda`),
/// beside the memory store.
struct ThroughLambda;
impl Backends for ThroughLambda {
    const LIST: &'static [Backend] = &[Backend::Memory, Backend::Lambda];
}

fn config(cases: u32, shrinks: u32) -> Config {
    Config {
        cases,
        max_shrink_iters: shrinks,
        // A failure is reported with its shrunk sequence; no file to keep.
        failure_persistence: None,
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config(48, 2_000))]
    #[test]
    fn the_api_on_the_memory_store_answers_as_the_model(sequential 1..40 => ModelTest<OnMemory>);
}

prop_state_machine! {
    #![proptest_config(config(12, 300))]
    #[test]
    fn both_stores_answer_every_sequence_as_the_model_and_alike(sequential 1..30 => ModelTest<OnBothStores>);
}

prop_state_machine! {
    #![proptest_config(config(2, 50))]
    #[test]
    fn the_lambda_binaries_answer_as_the_model(sequential 1..20 => ModelTest<ThroughLambda>);
}

#[test]
fn the_model_reads_the_readme_s_examples_as_the_readme_does() {
    // Two spellings of one address are one address; a quoted local part is refused.
    let mut model = Reference::default();
    let create = |email, name| Op::Create {
        caller: 0,
        key: None,
        email,
        name,
    };
    assert!(matches!(
        model.step(&create(0, 0)),
        Answer::User { status: 201, .. }
    ));
    assert_eq!(
        model.step(&create(2, 1)),
        Answer::Problem(409, "/problems/email-taken")
    );
    assert_eq!(
        model.step(&create(9, 1)),
        Answer::Problem(422, "/problems/validation-failed")
    );
}
