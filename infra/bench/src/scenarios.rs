//! What each function is invoked with, as tables, and the phases of a run:
//! every function of the template (and the Node.js and Python create-user
//! peers) cold and warm through the Runtime API, DynamoDB requests per API
//! call, list latency on a small and a large table, and the HTTP servers
//! under load.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use common::domain::{Email, Timestamp, User, UserId, UserName};
use common::testing::ApiGatewayEvent;
use local_api::lambda::instance::Launch;
use local_api::stack::template::Template;
use storage::stream::StreamEvent;

use crate::calls::{CALLS, create_event, event, route, workload};
use crate::ddb::DynamoDbLocal;
use crate::lambda::{self, Expect, Subject};
use crate::report::{DynamoCost, ListScale, Page, Report};
use crate::{Plan, say, settle};

/// The cold-start baseline: the smallest `lambda_runtime` function.
pub(crate) const HELLO: &str = "hello-lambda";
/// The table the functions use.
pub(crate) const TABLE: &str = "users-bench";
/// The cursor scope of the users list (see list-users).
const LIST_SCOPE: &str = "users";

/// The create-user peers: name, folder in infra/bench/peers, command.
#[rustfmt::skip]
const PEERS: &[(&str, &str, &[&str])] = &[
    ("create-user (Node.js)", "node", &["node", "lambda.js"]),
    ("create-user (Python)", "python", &["{python}", "-m", "awslambdaric", "lambda_function.handler"]),
];

/// The HTTP servers loaded side by side: name, folder in infra/bench/peers
/// (none: the repository), command (`{port}` is the port).
#[rustfmt::skip]
const SERVERS: &[(&str, &str, &[&str])] = &[
    ("Rust (local-api, memory store)", "", &["{local_api}", "--port", "{port}"]),
    ("Node.js (Express + helmet + Zod)", "node", &["node", "server.js"]),
    ("Python (FastAPI + Pydantic, uvicorn)", "python",
        &["{python}", "-m", "uvicorn", "app:app", "--port", "{port}", "--no-access-log", "--log-level", "warning"]),
];

/// Where things are, and how much to run.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) root: PathBuf,
    pub(crate) bin_dir: PathBuf,
    /// The local API's binary (its load test).
    pub(crate) local_api: PathBuf,
    pub(crate) work_dir: PathBuf,
    pub(crate) logs: PathBuf,
    pub(crate) venv: PathBuf,
    pub(crate) plan: Plan,
    /// The single list of functions and routes.
    pub(crate) template: Template,
}

impl Context {
    fn peers(&self) -> PathBuf {
        self.root.join("infra/bench/peers")
    }

    /// `command` with `{python}` (the peers' virtual environment's) and
    /// `{local_api}` filled in.
    fn command(&self, command: &[&str]) -> Vec<String> {
        let python = self.venv.join("bin/python").display().to_string();
        let local_api = self.local_api.display().to_string();
        let fill = |arg: &&str| {
            arg.replace("{python}", &python)
                .replace("{local_api}", &local_api)
        };
        command.iter().map(fill).collect()
    }

    /// Whether `binary` is a function without routes (a stream worker).
    fn is_worker(&self, binary: &str) -> bool {
        !self.template.routes.iter().any(|r| r.function == binary)
    }

    /// A function of ours, by binary name.
    pub(crate) fn function(&self, name: &str, env: &[(String, String)]) -> Launch {
        let binary = self.bin_dir.join(name).display().to_string();
        lambda::launch(name, &[binary], self.root.clone(), env, &self.logs)
    }
}

/// A history worker batch of `records` records, each a new user.
fn stream_batch(n: usize, records: usize) -> Vec<u8> {
    let mut event = StreamEvent::default();
    event.records = (0..records)
        .filter_map(|i| {
            let email = Email::parse(&format!("stream-{n}-{i}@example.com")).ok()?;
            let name = UserName::parse(&format!("Stream User {n}")).ok()?;
            let user = User::new(email, name, Timestamp::now());
            Some(storage::stream::user_record(
                None,
                Some(&user),
                (n * records + i) as u64 + 1,
            ))
        })
        .collect();
    serde_json::to_vec(&event).unwrap_or_default()
}

/// Every function, the peers, DynamoDB cost, list scaling and the levers
/// (create-user built as each build in `levers` lists). On error, DynamoDB
/// Local stops as it is dropped.
pub(crate) async fn lambda_phases(
    cx: &Context,
    report: &mut Report,
    levers: Option<&Path>,
) -> anyhow::Result<()> {
    let dynamo = DynamoDbLocal::start(cx, TABLE).await?;
    let plan = cx.plan;
    let env = dynamo.env(TABLE);
    // One user per invocation, and a separate set for delete-user to delete.
    let per_function = plan.cold_starts + plan.warm / 5 + plan.warm + 10;
    say(&format!("seeding {} users", 2 * per_function));
    let ids = dynamo.seed_users(TABLE, 2 * per_function, true).await?;
    let (ids, doomed) = ids.split_at(per_function);
    let tag = format!("bench{}", ulid::Ulid::new().to_string().to_lowercase());
    let vars = |n: usize| {
        let user = ids[n % ids.len()].to_string();
        let doomed = doomed[n % doomed.len()].to_string();
        vec![
            ("user", user.clone()),
            ("other", user),
            ("doomed", doomed),
            ("tag", tag.clone()),
            ("n", n.to_string()),
        ]
    };
    let hello = Subject::new(cx.function(HELLO, &[]), Expect::Answer, |_| b"{}".to_vec());
    let mut subjects = vec![hello];
    for function in &cx.template.functions {
        let launch = cx.function(&function.binary, &env);
        let mut routes = cx
            .template
            .routes
            .iter()
            .filter(|r| r.function == function.binary);
        subjects.push(
            match routes.find_map(|route| workload(&cx.template, route)) {
                Some(call) => Subject::new(launch, Expect::Status(call.4), move |n| {
                    event(&cx.template, call, &vars(n))
                }),
                None if cx.is_worker(&function.binary) => {
                    Subject::new(launch, Expect::NoBatchFailures, |n| stream_batch(n, 1))
                }
                None => {
                    anyhow::bail!(
                        "{}: none of its routes has a call in calls.rs",
                        function.binary
                    );
                }
            },
        );
    }
    for (name, dir, command) in PEERS {
        let command = cx.command(command);
        let launch = lambda::launch(name, &command, cx.peers().join(dir), &env, &cx.logs);
        let tag = format!("{tag}-{dir}");
        let event = move |n| create_event(&cx.template, &tag, n);
        subjects.push(Subject::new(launch, Expect::Status(201), event));
    }
    let (cold, warm) = (plan.cold_starts, plan.warm);
    say(&format!(
        "{} functions: warm runs of {warm} invocations, then {cold} interleaved rounds of cold starts",
        subjects.len()
    ));
    let runs = lambda::measure(&subjects, cold, warm, &dynamo.proxy).await?;
    report.cold_load = crate::load_average();
    drop(subjects);
    let (peers, ours) = runs
        .into_iter()
        .partition(|run| PEERS.iter().any(|p| p.0 == run.name));
    (report.functions, report.peer_functions) = (ours, peers);
    dynamo_costs(cx, report, &dynamo, ids, doomed, &tag).await?;
    list_scaling(cx, report, &dynamo).await?;
    if let Some(manifest) = levers {
        say("levers: create-user built with each lever undone, interleaved with the reference");
        report.levers = crate::levers::run(cx, &dynamo, manifest).await?;
    }
    dynamo.stop().await;
    Ok(())
}

/// DynamoDB requests and consumed capacity per API call, per endpoint and case.
async fn dynamo_costs(
    cx: &Context,
    report: &mut Report,
    dynamo: &DynamoDbLocal,
    ids: &[UserId],
    doomed: &[UserId],
    tag: &str,
) -> anyhow::Result<()> {
    say("DynamoDB requests per API call");
    let cursor = common::cursor::encode(LIST_SCOPE, ids[5].to_bytes());
    let vars = [
        ("user", ids[0].to_string()),
        ("other", ids[2].to_string()),
        ("doomed", doomed[doomed.len() - 1].to_string()),
        ("missing", UserId::new(Timestamp::now()).to_string()),
        ("cursor", cursor),
        ("tag", format!("{tag}-cost")),
        ("n", "0".to_owned()),
    ];
    let (env, proxy) = (dynamo.env(TABLE), &dynamo.proxy);
    let mut events = Vec::new();
    for call @ (what, request, .., status) in CALLS {
        let route =
            route(&cx.template, request).with_context(|| format!("no route fits {request}"))?;
        let (case, event) = (
            format!("{}: {what}", route.key()),
            event(&cx.template, call, &vars),
        );
        events.push((
            route.function.as_str(),
            case,
            event,
            Expect::Status(*status),
        ));
    }
    let workers = cx
        .template
        .functions
        .iter()
        .filter(|f| cx.is_worker(&f.binary));
    for (worker, records) in workers.flat_map(|worker| [(worker, 1), (worker, 10)]) {
        let (case, batch) = (
            format!("stream batch of {records} record(s)"),
            stream_batch(900_000 + records, records),
        );
        events.push((worker.binary.as_str(), case, batch, Expect::NoBatchFailures));
    }
    // One instance per function, for its consecutive calls.
    for calls in events.chunk_by(|a, b| a.0 == b.0) {
        let (mut instance, _) = lambda::start(&cx.function(calls[0].0, &env), proxy).await?;
        for (function, case, event, expect) in calls {
            let (outcome, calls) = lambda::invoke(&mut instance, event.clone(), proxy).await?;
            report.dynamo_costs.push(DynamoCost {
                function: (*function).to_owned(),
                case: case.clone(),
                as_expected: expect.holds(&outcome),
                status: lambda::status_of(&outcome.body),
                calls,
            });
        }
        instance.stop().await;
    }
    report.dynamo_load = crate::load_average();
    Ok(())
}

/// The first page and a page deep in the list, on a small and a large table.
async fn list_scaling(
    cx: &Context,
    report: &mut Report,
    dynamo: &DynamoDbLocal,
) -> anyhow::Result<()> {
    let list = route(&cx.template, "GET /users").context("no route fits GET /users")?;
    for size in cx.plan.list_sizes {
        let table = format!("users-list-{size}");
        dynamo.create_table(&table, false).await?;
        say(&format!("seeding {size} users into {table}"));
        let ids = dynamo.seed_users(&table, size, false).await?;
        let cursor = common::cursor::encode(LIST_SCOPE, ids[ids.len() / 2].to_bytes());
        let mut pages = Vec::new();
        for (page, query) in [
            ("first page", String::new()),
            ("page from the middle", format!("&cursor={cursor}")),
        ] {
            say(&format!("{} on {size} users: {page}", list.function));
            let path = format!("/users?limit=20{query}");
            let launch = cx.function(&list.function, &dynamo.env(&table));
            let event = |_| ApiGatewayEvent::new(&list.key(), &path).to_json();
            let (mut instance, _) = lambda::start(&launch, &dynamo.proxy).await?;
            let (_, calls) = lambda::invoke(&mut instance, event(0), &dynamo.proxy).await?;
            instance.stop().await;
            let subject = Subject::new(launch, Expect::Status(200), event);
            let runs =
                lambda::measure(&[subject], 0, cx.plan.list_invocations, &dynamo.proxy).await?;
            for run in runs {
                pages.push(Page {
                    name: page.to_owned(),
                    latency: run.warm_ms(),
                    unexpected: run.unexpected,
                    items: calls.iter().filter_map(|c| c.count).sum(),
                    scanned: calls.iter().filter_map(|c| c.scanned).sum(),
                    capacity: calls.iter().map(|c| c.capacity).sum(),
                });
            }
        }
        report.list_scaling.push(ListScale {
            users: size,
            pages,
            load: crate::load_average(),
        });
        settle().await;
    }
    Ok(())
}

/// Ours, Express and FastAPI under the same load.
pub(crate) async fn load_phase(cx: &Context, report: &mut Report) -> anyhow::Result<()> {
    for (name, dir, command) in SERVERS {
        let command = cx.command(command);
        say(&format!("load: {name}"));
        let dir = match *dir {
            "" => cx.root.clone(),
            dir => cx.peers().join(dir),
        };
        let script = cx.root.join("infra/bench/wrk.lua");
        report
            .load
            .extend(crate::load::run(name, &command, &dir, &cx.plan, &script, &cx.logs).await?);
        settle().await;
    }
    Ok(())
}
