//! What each function is invoked with, and the phases of a run: every
//! function cold and warm through the Runtime API, the Node.js and Python
//! create-user peers the same way, DynamoDB requests per API call, list
//! latency on a small and a large table, and the HTTP servers under load.

use std::path::PathBuf;

use common::domain::{Timestamp, UserId};
use local_api::template::Template;

use crate::ddb::DynamoDbLocal;
use crate::events::{self, HttpEvent};
use crate::lambda::{self, Launch, Workload};
use crate::proxy::DynamoProxy;
use crate::report::{DynamoCost, ListScale, Report};
use crate::{Error, Plan, say, settle};
use local_api::runtime_api::Outcome;

/// The table the functions use.
const TABLE: &str = "users-bench";
/// The cursor scope of the users list (see list-users).
const LIST_SCOPE: &str = "users";

/// Where things are, and how much to run.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) root: PathBuf,
    pub(crate) bin_dir: PathBuf,
    pub(crate) work_dir: PathBuf,
    pub(crate) logs: PathBuf,
    pub(crate) venv: Option<PathBuf>,
    pub(crate) plan: Plan,
}

impl Context {
    fn peers(&self) -> PathBuf {
        self.root.join("infra/bench/peers")
    }

    fn python(&self) -> Option<PathBuf> {
        self.venv
            .as_ref()
            .map(|venv| venv.join("bin/python"))
            .filter(|python| python.exists())
    }

    fn node_ready(&self) -> bool {
        self.peers().join("node/node_modules").is_dir()
    }
}

/// The environment that points a process at the metered DynamoDB.
struct Dynamo<'a> {
    proxy: &'a DynamoProxy,
    ca_file: PathBuf,
    bundle_file: PathBuf,
}

impl Dynamo<'_> {
    fn env(&self, table: &str) -> Vec<(String, String)> {
        vec![
            ("TABLE_NAME".to_owned(), table.to_owned()),
            (
                "AWS_ENDPOINT_URL_DYNAMODB".to_owned(),
                self.proxy.endpoint(),
            ),
            (
                "SSL_CERT_FILE".to_owned(),
                self.bundle_file.display().to_string(),
            ),
            (
                "AWS_CA_BUNDLE".to_owned(),
                self.bundle_file.display().to_string(),
            ),
            (
                "NODE_EXTRA_CA_CERTS".to_owned(),
                self.ca_file.display().to_string(),
            ),
        ]
    }
}

fn rust_function(cx: &Context, name: &str, env: Vec<(String, String)>) -> Launch {
    Launch {
        name: name.to_owned(),
        command: vec![cx.bin_dir.join(name).display().to_string()],
        dir: cx.root.clone(),
        env,
    }
}

fn status_is(status: u64) -> Box<dyn Fn(&Outcome) -> bool> {
    Box::new(move |outcome: &Outcome| {
        !outcome.failed && events::status(&outcome.body) == Some(status)
    })
}

fn no_failures() -> Box<dyn Fn(&Outcome) -> bool> {
    Box::new(|outcome: &Outcome| {
        !outcome.failed
            && serde_json::from_slice::<serde_json::Value>(&outcome.body)
                .ok()
                .and_then(|v| v.get("batchItemFailures")?.as_array().map(Vec::is_empty))
                == Some(true)
    })
}

/// Every function, the peers, DynamoDB cost and list scaling.
pub(crate) async fn lambda_phases(cx: &Context, report: &mut Report) -> Result<(), Error> {
    let template = Template::load(&cx.root.join("template.yaml"))
        .map_err(|e| Error::msg(format!("template.yaml: {e}")))?;
    say("starting DynamoDB Local");
    let dynamodb = DynamoDbLocal::start(&cx.root, &cx.logs.join("dynamodb-local.log")).await?;
    let result = with_dynamodb(cx, report, &template, &dynamodb).await;
    dynamodb.stop().await;
    result
}

async fn with_dynamodb(
    cx: &Context,
    report: &mut Report,
    template: &Template,
    dynamodb: &DynamoDbLocal,
) -> Result<(), Error> {
    let plan = cx.plan;
    dynamodb.create_table(template, TABLE).await?;
    let proxy = DynamoProxy::start(&dynamodb.endpoint).await?;
    let ca_file = cx.work_dir.join("bench-ca.pem");
    std::fs::write(&ca_file, proxy.ca_pem())?;
    let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let bundle_file = cx.work_dir.join("ca-bundle.pem");
    std::fs::write(&bundle_file, format!("{system}\n{}", proxy.ca_pem()))?;
    let dynamo = Dynamo {
        proxy: &proxy,
        ca_file,
        bundle_file,
    };
    let env = dynamo.env(TABLE);

    // Users for the functions that need one: one per invocation, and a
    // separate set for delete-user to delete.
    // Enough for the warm-up run and the measured one (see `warm_up`).
    let per_function = 2 * (plan.cold_starts + plan.warm) + 10;
    say(&format!("seeding {} users", 2 * per_function));
    let ids = dynamodb.seed_users(TABLE, 2 * per_function, true).await?;
    let (ids, doomed) = ids.split_at(per_function);
    let pick = |n: usize| ids[n % ids.len()];
    let tag = format!("bench{}", ulid::Ulid::new().to_string().to_lowercase());

    let mut functions: Vec<(Launch, Workload<'_>)> = vec![
        (
            rust_function(cx, "hello-lambda", Vec::new()),
            Workload {
                sent: 0,
                event: Box::new(|_| br#"{"hello":"world"}"#.to_vec()),
                expect: Box::new(|o: &Outcome| !o.failed),
            },
        ),
        (
            rust_function(cx, "create-user", env.clone()),
            Workload {
                sent: 0,
                event: Box::new(|n| events::create(&tag, n).to_json()),
                expect: status_is(201),
            },
        ),
        (
            rust_function(cx, "get-user", env.clone()),
            Workload {
                sent: 0,
                event: Box::new(move |n| {
                    HttpEvent::new("GET /users/{id}", &format!("/users/{}", pick(n)))
                        .id(pick(n))
                        .to_json()
                }),
                expect: status_is(200),
            },
        ),
        (
            rust_function(cx, "list-users", env.clone()),
            Workload {
                sent: 0,
                event: Box::new(|_| {
                    HttpEvent::new("GET /users", "/users")
                        .query("limit", "20")
                        .to_json()
                }),
                expect: status_is(200),
            },
        ),
        (
            rust_function(cx, "update-user", env.clone()),
            Workload {
                sent: 0,
                event: Box::new(move |n| {
                    HttpEvent::new("PATCH /users/{id}", &format!("/users/{}", pick(n)))
                        .id(pick(n))
                        .body(
                            "application/merge-patch+json",
                            format!(r#"{{"name":"Renamed {n}"}}"#),
                        )
                        .to_json()
                }),
                expect: status_is(200),
            },
        ),
        (
            rust_function(cx, "list-user-events", env.clone()),
            Workload {
                sent: 0,
                event: Box::new(move |n| {
                    HttpEvent::new(
                        "GET /users/{id}/events",
                        &format!("/users/{}/events", pick(n)),
                    )
                    .id(pick(n))
                    .to_json()
                }),
                expect: status_is(200),
            },
        ),
        (
            rust_function(cx, "delete-user", env.clone()),
            Workload {
                sent: 0,
                event: Box::new(move |n| {
                    let id = doomed[n % doomed.len()];
                    HttpEvent::new("DELETE /users/{id}", &format!("/users/{id}"))
                        .id(id)
                        .to_json()
                }),
                expect: status_is(204),
            },
        ),
        (
            rust_function(cx, "history-worker", env.clone()),
            Workload {
                sent: 0,
                event: Box::new(events::stream_insert),
                expect: no_failures(),
            },
        ),
    ];
    for (launch, workload) in &mut functions {
        warm_up(cx, launch, workload, Some(&proxy)).await?;
        say(&format!(
            "{}: {} cold starts, {} warm invocations",
            launch.name, plan.cold_starts, plan.warm
        ));
        let mut run = lambda::measure(
            launch,
            workload,
            plan.cold_starts,
            plan.warm,
            Some(&proxy),
            &cx.logs,
        )
        .await?;
        run.load = crate::load_average();
        report.functions.push(run);
        settle().await;
    }
    drop(functions);

    peers(cx, report, &dynamo, &tag).await?;
    dynamo_costs(cx, report, &dynamo, ids, &tag).await?;
    list_scaling(cx, report, dynamodb, &dynamo, template).await?;
    Ok(())
}

/// Runs `launch` as it is about to be measured, and throws the figures
/// away: DynamoDB Local is a JVM, so each operation is slow until the JIT
/// has compiled its path, and the first start of a binary reads it from
/// disk. Without this, whichever function runs first pays for both.
pub(crate) async fn warm_up(
    cx: &Context,
    launch: &Launch,
    workload: &mut Workload<'_>,
    proxy: Option<&DynamoProxy>,
) -> Result<(), Error> {
    lambda::measure(
        launch,
        workload,
        cx.plan.cold_starts,
        cx.plan.warm,
        proxy,
        &cx.logs,
    )
    .await
    .map(drop)
}

/// The Node.js and Python create-user functions, started the same way.
async fn peers(
    cx: &Context,
    report: &mut Report,
    dynamo: &Dynamo<'_>,
    tag: &str,
) -> Result<(), Error> {
    let plan = cx.plan;
    let mut launches = Vec::new();
    if cx.node_ready() {
        launches.push(Launch {
            name: "create-user (Node.js)".to_owned(),
            command: vec!["node".to_owned(), "lambda.js".to_owned()],
            dir: cx.peers().join("node"),
            env: dynamo.env(TABLE),
        });
    } else {
        report.notes.push(
            "The Node.js peer was skipped: infra/bench/peers/node has no node_modules (run.sh installs them).".to_owned(),
        );
    }
    if let Some(python) = cx.python() {
        launches.push(Launch {
            name: "create-user (Python)".to_owned(),
            command: vec![
                python.display().to_string(),
                "-m".to_owned(),
                "awslambdaric".to_owned(),
                "lambda_function.handler".to_owned(),
            ],
            dir: cx.peers().join("python"),
            env: dynamo.env(TABLE),
        });
    } else {
        report.notes.push(
            "The Python peer was skipped: no virtual environment (run.sh makes one).".to_owned(),
        );
    }
    for launch in launches {
        say(&format!(
            "{}: {} cold starts",
            launch.name, plan.cold_starts
        ));
        let peer_tag = format!("{tag}-{}", report.peer_functions.len());
        let mut workload = Workload {
            sent: 0,
            event: Box::new(|n| events::create(&peer_tag, n).to_json()),
            expect: status_is(201),
        };
        let mut run = lambda::measure(
            &launch,
            &mut workload,
            plan.cold_starts,
            plan.warm,
            Some(dynamo.proxy),
            &cx.logs,
        )
        .await?;
        run.load = crate::load_average();
        report.peer_functions.push(run);
        settle().await;
    }
    Ok(())
}

/// DynamoDB requests and consumed capacity per API call, per endpoint and case.
async fn dynamo_costs(
    cx: &Context,
    report: &mut Report,
    dynamo: &Dynamo<'_>,
    ids: &[UserId],
    tag: &str,
) -> Result<(), Error> {
    say("DynamoDB requests per API call");
    let env = dynamo.env(TABLE);
    let user = ids[0];
    let other = ids[1];
    let renamed = ids[2];
    let missing = UserId::new(Timestamp::now());
    let cursor = common::cursor::encode(LIST_SCOPE, ids[5].to_bytes());
    let get = |id: UserId| HttpEvent::new("GET /users/{id}", &format!("/users/{id}")).id(id);
    let patch = |id: UserId, body: &str| {
        HttpEvent::new("PATCH /users/{id}", &format!("/users/{id}"))
            .id(id)
            .body("application/merge-patch+json", body.to_owned())
    };
    let delete = |id: UserId| HttpEvent::new("DELETE /users/{id}", &format!("/users/{id}")).id(id);
    let post =
        |body: String| HttpEvent::new("POST /users", "/users").body("application/json", body);
    let key = format!("{tag}-key");
    let keyed = || {
        post(format!(
            r#"{{"email":"{tag}-keyed@example.com","name":"Keyed"}}"#
        ))
        .header("idempotency-key", &key)
    };
    let cases: Vec<(&str, &str, Vec<u8>, u64)> = vec![
        (
            "create-user",
            "POST /users: new user",
            events::create(&format!("{tag}-cost"), 0).to_json(),
            201,
        ),
        (
            "create-user",
            "POST /users: email taken",
            post(r#"{"email":"seed3@example.com","name":"Taken"}"#.to_owned()).to_json(),
            409,
        ),
        (
            "create-user",
            "POST /users: invalid body",
            post(r#"{"email":"nope"}"#.to_owned()).to_json(),
            422,
        ),
        (
            "create-user",
            "POST /users with Idempotency-Key: first",
            keyed().to_json(),
            201,
        ),
        (
            "create-user",
            "POST /users with Idempotency-Key: replayed",
            keyed().to_json(),
            201,
        ),
        (
            "get-user",
            "GET /users/{id}: found",
            get(user).to_json(),
            200,
        ),
        (
            "get-user",
            "GET /users/{id}: not found",
            get(missing).to_json(),
            404,
        ),
        (
            "get-user",
            "GET /users/{id}: If-None-Match current",
            get(user).header("if-none-match", "*").to_json(),
            304,
        ),
        (
            "list-users",
            "GET /users?limit=20",
            HttpEvent::new("GET /users", "/users")
                .query("limit", "20")
                .to_json(),
            200,
        ),
        (
            "list-users",
            "GET /users?limit=20&cursor=…",
            HttpEvent::new("GET /users", "/users")
                .query("limit", "20")
                .query("cursor", &cursor)
                .to_json(),
            200,
        ),
        (
            "list-users",
            "GET /users?email=…",
            HttpEvent::new("GET /users", "/users")
                .query("email", "seed4@example.com")
                .to_json(),
            200,
        ),
        (
            "update-user",
            "PATCH /users/{id}: name only",
            patch(renamed, r#"{"name":"New Name"}"#).to_json(),
            200,
        ),
        (
            "update-user",
            "PATCH /users/{id}: email",
            patch(user, &format!(r#"{{"email":"{tag}-moved@example.com"}}"#)).to_json(),
            200,
        ),
        (
            "update-user",
            "PATCH /users/{id}: stale If-Match",
            patch(renamed, r#"{"name":"Stale"}"#)
                .header("if-match", "\"1\"")
                .to_json(),
            412,
        ),
        (
            "list-user-events",
            "GET /users/{id}/events",
            HttpEvent::new("GET /users/{id}/events", &format!("/users/{user}/events"))
                .id(user)
                .to_json(),
            200,
        ),
        (
            "delete-user",
            "DELETE /users/{id}: exists",
            delete(other).to_json(),
            204,
        ),
        (
            "delete-user",
            "DELETE /users/{id}: not found",
            delete(missing).to_json(),
            404,
        ),
    ];
    let mut current: Option<(String, lambda::Instance)> = None;
    for (function, case, event, status) in cases {
        if current.as_ref().map(|(name, _)| name.as_str()) != Some(function) {
            if let Some((_, instance)) = current.take() {
                instance.stop().await;
            }
            let instance = rust_function(cx, function, env.clone())
                .start(Some(dynamo.proxy), &cx.logs)
                .await?;
            current = Some((function.to_owned(), instance));
        }
        let Some((_, instance)) = &current else {
            continue;
        };
        let invocation = instance.invoke(event, Some(dynamo.proxy)).await?;
        let answered = events::status(&invocation.outcome.body);
        report.dynamo_costs.push(DynamoCost::new(
            function,
            case,
            answered == Some(status),
            answered,
            &invocation.calls,
        ));
    }
    if let Some((_, instance)) = current.take() {
        instance.stop().await;
    }
    for (records, case) in [
        (1, "stream batch of 1 record"),
        (10, "stream batch of 10 records"),
    ] {
        let instance = rust_function(cx, "history-worker", env.clone())
            .start(Some(dynamo.proxy), &cx.logs)
            .await?;
        let mut event: serde_json::Value = serde_json::from_slice(&events::stream_insert(900_000))?;
        let one = event["Records"][0].clone();
        event["Records"] = serde_json::Value::Array(
            (0..records)
                .map(|i| {
                    let mut record = one.clone();
                    let id = UserId::new(Timestamp::now()).to_string();
                    record["dynamodb"]["Keys"]["pk"]["S"] = format!("USER#{id}").into();
                    record["dynamodb"]["NewImage"]["pk"]["S"] = format!("USER#{id}").into();
                    record["dynamodb"]["NewImage"]["id"]["S"] = id.into();
                    record["eventID"] = format!("{i}").into();
                    record
                })
                .collect(),
        );
        let invocation = instance
            .invoke(serde_json::to_vec(&event)?, Some(dynamo.proxy))
            .await?;
        report.dynamo_costs.push(DynamoCost::new(
            "history-worker",
            case,
            no_failures()(&invocation.outcome),
            None,
            &invocation.calls,
        ));
        instance.stop().await;
    }
    report.dynamo_load = crate::load_average();
    Ok(())
}

/// The first page and a page deep in the list, on a small and a large table.
async fn list_scaling(
    cx: &Context,
    report: &mut Report,
    dynamodb: &DynamoDbLocal,
    dynamo: &Dynamo<'_>,
    template: &Template,
) -> Result<(), Error> {
    let plan = cx.plan;
    for size in plan.list_sizes {
        let table = format!("users-list-{size}");
        dynamodb.create_table(template, &table).await?;
        say(&format!("seeding {size} users into {table}"));
        let ids = dynamodb.seed_users(&table, size, false).await?;
        let middle = ids[ids.len() / 2];
        let cursor = common::cursor::encode(LIST_SCOPE, middle.to_bytes());
        let launch = rust_function(cx, "list-users", dynamo.env(&table));
        let mut pages = Vec::new();
        for (page, cursor) in [
            ("first page", None),
            ("page from the middle", Some(&cursor)),
        ] {
            say(&format!("list-users on {size} users: {page}"));
            let mut workload = Workload {
                sent: 0,
                event: Box::new(move |_| {
                    let event = HttpEvent::new("GET /users", "/users").query("limit", "20");
                    match cursor {
                        Some(cursor) => event.query("cursor", cursor),
                        None => event,
                    }
                    .to_json()
                }),
                expect: status_is(200),
            };
            let run = lambda::measure(
                &launch,
                &mut workload,
                1,
                plan.list_invocations,
                Some(dynamo.proxy),
                &cx.logs,
            )
            .await?;
            pages.push((page.to_owned(), run.warm_ms, run.unexpected));
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
pub(crate) async fn load_phase(cx: &Context, report: &mut Report) -> Result<(), Error> {
    let plan = cx.plan;
    let settings = crate::load::Settings {
        connections: plan.connections,
        duration: std::time::Duration::from_secs(plan.load_seconds),
        warm_up: std::time::Duration::from_secs(plan.warm_up_seconds),
    };
    let mut servers = vec![crate::load::Server {
        name: "Rust (local-api, memory store)".to_owned(),
        command: vec![
            cx.bin_dir.join("local-api").display().to_string(),
            "--port".to_owned(),
            "{port}".to_owned(),
        ],
        dir: cx.root.clone(),
        env: Vec::new(),
    }];
    if cx.node_ready() {
        servers.push(crate::load::Server {
            name: "Node.js (Express + helmet + Zod)".to_owned(),
            command: vec!["node".to_owned(), "server.js".to_owned()],
            dir: cx.peers().join("node"),
            env: vec![("NODE_ENV".to_owned(), "production".to_owned())],
        });
    }
    if let Some(python) = cx.python() {
        servers.push(crate::load::Server {
            name: "Python (FastAPI + Pydantic, uvicorn)".to_owned(),
            command: vec![
                python.display().to_string(),
                "-m".to_owned(),
                "uvicorn".to_owned(),
                "app:app".to_owned(),
                "--port".to_owned(),
                "{port}".to_owned(),
                "--no-access-log".to_owned(),
                "--log-level".to_owned(),
                "warning".to_owned(),
            ],
            dir: cx.peers().join("python"),
            env: Vec::new(),
        });
    }
    for server in servers {
        say(&format!("load: {}", server.name));
        let runs =
            crate::load::run(&server, settings, &cx.root.join("infra/bench"), &cx.logs).await?;
        report.load.extend(runs);
        settle().await;
    }
    Ok(())
}
